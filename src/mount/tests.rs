//! Mounts started in process on temporary directories: real FUSE, no daemon. They need root
//! and /dev/fuse, and say so (and pass) where those are missing.

use std::collections::HashSet;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;

#[derive(Default)]
struct Sink {
    changed: Mutex<Vec<PathBuf>>,
    detached: AtomicUsize,
}

impl ChangeSink for Sink {
    fn changed(&self, paths: Vec<PathBuf>) {
        self.changed.lock().unwrap().extend(paths);
    }

    fn detached(&self) {
        self.detached.fetch_add(1, Ordering::SeqCst);
    }
}

/// A mount of `backing` at `mnt`, both in a temp dir; unmounted (lazily) on drop.
struct Fixture {
    dir: tempfile::TempDir,
    mount: Option<Mount>,
    sink: Arc<Sink>,
}

impl Fixture {
    /// None (the test is skipped) without root or FUSE.
    fn new(options: MountOptions) -> Option<Self> {
        if !nix::unistd::geteuid().is_root() || preflight().is_err() {
            eprintln!("skipped: needs root and /dev/fuse");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("jjfs-mount-test-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(dir.path().join("backing/.jj")).unwrap();
        std::fs::create_dir(dir.path().join("mnt")).unwrap();
        let sink = Arc::new(Sink::default());
        let mount = Mount::start(
            &dir.path().join("mnt"),
            &dir.path().join("backing"),
            sink.clone(),
            &options,
        )
        .unwrap();
        Some(Self {
            dir,
            mount: Some(mount),
            sink,
        })
    }

    fn mnt(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    fn backing(&self) -> PathBuf {
        self.dir.path().join("backing")
    }

    fn mount(&mut self) -> &mut Mount {
        self.mount.as_mut().unwrap()
    }

    fn is_mounted(&self) -> bool {
        is_mount_point(&self.mnt())
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(mount) = self.mount.take() {
            mount.detach();
        }
        if self.is_mounted() {
            let _ = mount_table::unmount(&self.mnt(), MntFlags::MNT_DETACH);
        }
    }
}

fn options() -> MountOptions {
    MountOptions {
        passthrough: true,
        threads: 2,
        owner: None,
    }
}

#[track_caller]
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A process whose current directory is `dir`; killed on drop.
struct Holder(Child);

impl Holder {
    fn in_dir(dir: &Path) -> Self {
        Self(
            Command::new("sleep")
                .arg("60")
                .current_dir(dir)
                .spawn()
                .unwrap(),
        )
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_lazy_unmount_behind_our_back_is_noticed() {
    let Some(mut fx) = Fixture::new(options()) else {
        return;
    };
    assert!(fx.mount().is_attached());
    let out = Command::new("umount")
        .arg("-l")
        .arg(fx.mnt())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    wait_for("the detached callback", || {
        fx.sink.detached.load(Ordering::SeqCst) == 1
    });
    assert!(!fx.mount().is_attached());
    fx.mount().unmount().unwrap();
    assert_eq!(fx.sink.detached.load(Ordering::SeqCst), 1, "once only");
}

#[test]
fn a_lazy_unmount_of_a_busy_mount_is_noticed_at_once() {
    let Some(mut fx) = Fixture::new(options()) else {
        return;
    };
    std::fs::create_dir(fx.mnt().join("sub")).unwrap();
    // The holder keeps the detached mount's session alive: only the mount table tells.
    let _holder = Holder::in_dir(&fx.mnt().join("sub"));
    let out = Command::new("umount")
        .arg("-l")
        .arg(fx.mnt())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    wait_for("the detached callback", || {
        fx.sink.detached.load(Ordering::SeqCst) == 1
    });
    assert!(!fx.mount().is_attached());
    // Closing it does not wait for the holder.
    fx.mount().unmount().unwrap();
    assert_eq!(fx.sink.detached.load(Ordering::SeqCst), 1);
}

#[test]
fn our_own_unmount_is_no_detachment() {
    let Some(mut fx) = Fixture::new(options()) else {
        return;
    };
    fx.mount().unmount().unwrap();
    assert!(!fx.is_mounted());
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(fx.sink.detached.load(Ordering::SeqCst), 0);
}

#[test]
fn a_refused_unmount_leaves_the_mount_as_it_was_and_names_the_holder() {
    let Some(mut fx) = Fixture::new(options()) else {
        return;
    };
    let holder = Holder::in_dir(&fx.mnt());
    let err = fx.mount().unmount().unwrap_err();
    match &err {
        MountError::Busy { holders, .. } => {
            assert!(
                holders
                    .iter()
                    .any(|h| h.pid == holder.0.id() && h.command == "sleep"),
                "{holders:?}"
            );
        }
        other => panic!("expected Busy, got {other}"),
    }
    assert!(
        err.to_string()
            .contains(&format!("held by pid {} (sleep)", holder.0.id())),
        "{err}"
    );
    // Still mounted, served and reporting.
    assert!(fx.is_mounted());
    assert!(fx.mount().is_attached());
    std::fs::write(fx.mnt().join("after-refusal"), "x").unwrap();
    assert_eq!(
        std::fs::read(fx.backing().join("after-refusal")).unwrap(),
        b"x"
    );
    wait_for("the change report", || {
        fx.sink
            .changed
            .lock()
            .unwrap()
            .contains(&PathBuf::from("after-refusal"))
    });
    drop(holder);
    fx.mount().unmount().unwrap();
    assert!(!fx.is_mounted());
    assert_eq!(fx.sink.detached.load(Ordering::SeqCst), 0);
}

/// The engine's syscalls for one new file, as jj's check-out makes them.
fn engine_write(dir: &Path, name: &str, content: &[u8], mode: u32) {
    let dir_fd: OwnedFd = std::fs::File::open(dir).unwrap().into();
    let name = CString::new(name).unwrap();
    let fd = unsafe {
        libc::openat(
            dir_fd.as_raw_fd(),
            name.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o600,
        )
    };
    assert!(fd >= 0, "openat: {}", std::io::Error::last_os_error());
    let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    std::io::Write::write_all(&mut &file, content).unwrap();
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .unwrap();
}

#[test]
fn the_engine_replaces_a_file_whole() {
    let Some(mut fx) = Fixture::new(options()) else {
        return;
    };
    std::fs::write(fx.backing().join("a"), "old").unwrap();
    let updater = fx.mount().updater();
    let fence = updater.change_count();
    updater.begin(fence, HashSet::from([PathBuf::from("a")]));
    std::fs::remove_file(fx.mnt().join("a")).unwrap();
    // Deferred: users still see the old file until the new one is complete.
    assert_eq!(std::fs::read(fx.backing().join("a")).unwrap(), b"old");
    engine_write(&fx.mnt(), "a", b"new", 0o640);
    updater.end().unwrap();
    let meta = std::fs::metadata(fx.backing().join("a")).unwrap();
    assert_eq!(std::fs::read(fx.backing().join("a")).unwrap(), b"new");
    assert_eq!(meta.mode() & 0o777, 0o640);
    assert_eq!(std::fs::read(fx.mnt().join("a")).unwrap(), b"new");
    assert_eq!(
        std::fs::read_dir(fx.backing().join(".jj").join(engine::TEMP_DIR))
            .unwrap()
            .count(),
        0,
        "no temp file left"
    );
    assert!(
        fx.sink.changed.lock().unwrap().is_empty(),
        "the engine's writes are not reported back"
    );
}

#[test]
fn the_engine_never_overwrites_a_users_change_after_the_fence() {
    let Some(mut fx) = Fixture::new(options()) else {
        return;
    };
    std::fs::write(fx.backing().join("a"), "old").unwrap();
    let updater = fx.mount().updater();
    let fence = updater.change_count();
    std::fs::write(fx.mnt().join("a"), "user's").unwrap();
    updater.begin(fence, HashSet::from([PathBuf::from("a")]));
    let refused = std::fs::remove_file(fx.mnt().join("a")).unwrap_err();
    assert_eq!(refused.raw_os_error(), Some(libc::EBUSY));
    assert!(updater.end().unwrap_err().contains("a user changed it"));
    assert_eq!(std::fs::read(fx.backing().join("a")).unwrap(), b"user's");
}

#[test]
fn what_the_engine_creates_belongs_to_the_owner_from_the_start() {
    let owner = (4242, 4343);
    let Some(mut fx) = Fixture::new(MountOptions {
        owner: Some(owner),
        ..options()
    }) else {
        return;
    };
    let updater = fx.mount().updater();
    updater.begin(updater.change_count(), HashSet::new());
    std::fs::create_dir(fx.mnt().join("dir")).unwrap();
    engine_write(&fx.mnt().join("dir"), "file", b"content", 0o644);
    std::os::unix::fs::symlink("file", fx.mnt().join("dir/link")).unwrap();
    let mut node = CString::new(fx.mnt().join("dir/fifo").as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(node.as_ptr(), 0o600) }, 0);
    node = CString::new(fx.mnt().join("dir/existing").as_os_str().as_bytes()).unwrap();
    std::fs::create_dir(fx.backing().join("dir/existing")).unwrap();
    assert_eq!(
        unsafe { libc::mkdir(node.as_ptr(), 0o755) },
        -1,
        "EEXIST kept"
    );
    updater.end().unwrap();
    for name in ["dir", "dir/file", "dir/link", "dir/fifo"] {
        let meta = std::fs::symlink_metadata(fx.backing().join(name)).unwrap();
        assert_eq!((meta.uid(), meta.gid()), owner, "{name}");
    }
    assert_eq!(
        std::fs::read(fx.backing().join("dir/file")).unwrap(),
        b"content"
    );
    // A user's own creates stay the user's.
    std::fs::write(fx.mnt().join("mine"), "x").unwrap();
    assert_eq!(
        std::fs::metadata(fx.backing().join("mine")).unwrap().uid(),
        0
    );
}

#[test]
fn user_creates_honour_the_callers_supplementary_groups() {
    let Some(fx) = Fixture::new(options()) else {
        return;
    };
    // A user (4242, primary group 4242) allowed into `shared` only by supplementary group
    // 4343. Plain ids: the kernel needs no names for them.
    for dir in [fx.dir.path(), &fx.backing(), &fx.mnt()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let shared = fx.backing().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::os::unix::fs::chown(&shared, Some(0), Some(4343)).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o2770)).unwrap();
    let target = fx.mnt().join("shared/by-group");
    let out = Command::new("setpriv")
        .args(["--reuid=4242", "--regid=4242", "--groups=4343", "--"])
        .args(["sh", "-c", "echo hi > \"$1\" && mkdir \"$1.d\"", "sh"])
        .arg(&target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "writing as a member of the folder's group failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta = std::fs::metadata(shared.join("by-group")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (4242, 4343));
    assert_eq!(std::fs::read(shared.join("by-group")).unwrap(), b"hi\n");
    assert!(shared.join("by-group.d").is_dir());
    // Without the group, still refused.
    let out = Command::new("setpriv")
        .args(["--reuid=4242", "--regid=4242", "--clear-groups", "--"])
        .args(["sh", "-c", "echo hi > \"$1\"", "sh"])
        .arg(fx.mnt().join("shared/no-group"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!shared.join("no-group").exists());
}

#[test]
fn ending_updates_while_users_look_the_names_up_never_deadlocks() {
    let Some(mut fx) = Fixture::new(options()) else {
        return;
    };
    std::fs::write(fx.backing().join("a"), "0").unwrap();
    let updater = fx.mount().updater();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let looker = {
        let (stop, path) = (stop.clone(), fx.mnt().join("a"));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = std::fs::symlink_metadata(&path);
            }
        })
    };
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let writer = {
        let mnt = fx.mnt();
        std::thread::spawn(move || {
            for round in 0..200 {
                // A file unlinked to be replaced but kept (invalidated) by the end of the
                // update,
                updater.begin(updater.change_count(), HashSet::from([PathBuf::from("a")]));
                let _ = std::fs::remove_file(mnt.join("a"));
                let _ = updater.end();
                // and a new file put in place (and invalidated) when complete.
                updater.begin(updater.change_count(), HashSet::from([PathBuf::from("a")]));
                let _ = std::fs::remove_file(mnt.join("a"));
                engine_write(&mnt, "a", round.to_string().as_bytes(), 0o644);
                let _ = updater.end();
            }
            let _ = done_tx.send(());
        })
    };
    let finished = done_rx.recv_timeout(Duration::from_secs(60)).is_ok();
    stop.store(true, Ordering::Relaxed);
    if !finished {
        // Free the threads stuck on the mount before failing.
        if let Some(minor) = fx.mount().shared.attachment.connection() {
            let _ = mount_table::abort_connection(minor);
        }
    }
    let _ = writer.join();
    let _ = looker.join();
    assert!(finished, "an update's end deadlocked with a user's lookup");
    assert_eq!(std::fs::read(fx.backing().join("a")).unwrap(), b"199");
}

//! FUSE mounts: each mount serves one backing jj workspace at the user's path through a
//! passthrough filesystem (`fs`), with kernel passthrough for file data where the kernel and
//! privileges allow it. Only this module touches fuser.
//!
//! A mount reports every change a user makes through it to a `ChangeSink` (the sync engine),
//! without waiting. The sync engine applies other mounts' changes *through* the mount, as a
//! client, so that the kernel's caches and every file watcher in the mount see them.

mod fs;
mod inodes;
mod sys;
mod update;

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use fuser::{BackgroundSession, Config, MountOption, Notifier, Session, SessionACL};

pub use fs::HIDDEN;

/// Where a mount sends the workspace-relative paths that users changed through it.
pub trait ChangeSink: Send + Sync + 'static {
    fn changed(&self, paths: Vec<PathBuf>);
}

#[derive(Debug, Clone)]
pub struct MountOptions {
    /// Try kernel passthrough for file data.
    pub passthrough: bool,
    /// FUSE request threads of the session.
    pub threads: usize,
}

impl Default for MountOptions {
    fn default() -> Self {
        Self {
            passthrough: !env_flag("JJFS_NO_PASSTHROUGH"),
            threads: std::env::var("JJFS_FUSE_THREADS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(3),
        }
    }
}

/// Whether an environment variable is set to a true value (`1`, `true`, `yes`).
fn env_flag(name: &str) -> bool {
    std::env::var(name)
        .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("FUSE is not available: {0}")]
    Unavailable(String),
    #[error("cannot mount {path}: {source}")]
    Mount { path: PathBuf, source: io::Error },
    #[error("{path} is busy: a process has files open or its current directory in it")]
    Busy { path: PathBuf },
    #[error("cannot unmount {path}: {source}")]
    Unmount { path: PathBuf, source: io::Error },
    #[error("backing workspace {path}: {source}")]
    Backing { path: PathBuf, source: io::Error },
}

/// The sync engine's side of a mount: it reads the count of users' changes when it plans
/// an update (the fence), then writes through the mount between `begin` and `end` on one
/// thread; files users changed after the fence are never overwritten.
#[derive(Clone)]
pub struct Updater {
    shared: Arc<fs::Shared>,
}

impl Updater {
    /// The count of users' changes so far. A user's change is reported to the sink before
    /// it is counted, so every change up to this count has been sent.
    pub fn change_count(&self) -> u64 {
        self.shared.changes.load(Ordering::SeqCst)
    }

    /// Starts an update from the calling thread; `replaced` are the workspace-relative
    /// paths whose files it replaces (swapped whole).
    pub fn begin(&self, fence: u64, replaced: std::collections::HashSet<PathBuf>) {
        self.shared.updates.begin(fence, replaced);
    }

    /// Ends the update begun on this thread; Err says which user change stopped it.
    pub fn end(&self) -> Result<(), String> {
        self.shared
            .updates
            .end(&self.shared.inodes, self.shared.notifier.get())
    }
}

/// One live FUSE session.
pub struct Mount {
    mountpoint: PathBuf,
    shared: Arc<fs::Shared>,
    session: Option<BackgroundSession>,
    notifier: Notifier,
}

impl Mount {
    /// Mounts `backing` at `mountpoint` (an existing empty directory).
    pub fn start(
        mountpoint: &Path,
        backing: &Path,
        sink: Arc<dyn ChangeSink>,
        options: &MountOptions,
    ) -> Result<Self, MountError> {
        preflight()?;
        let backing_err = |source| MountError::Backing {
            path: backing.to_owned(),
            source,
        };
        let root = backing.canonicalize().map_err(backing_err)?;
        let root_fd = std::fs::File::open(&root).map_err(backing_err)?;
        let root_fd = sys::reopen_path(root_fd.as_fd()).map_err(backing_err)?;
        let root_ino = sys::fstat(root_fd.as_fd()).map_err(backing_err)?.st_ino;
        let updates = update::Updates::new(&root).map_err(backing_err)?;
        let shared = Arc::new(fs::Shared {
            inodes: inodes::InodeTable::new(root_fd, root_ino),
            root: root.clone(),
            passthrough: AtomicBool::new(false),
            changes: AtomicU64::new(0),
            sink,
            updates,
            notifier: std::sync::OnceLock::new(),
        });
        let filesystem = fs::PassthroughFs::new(shared.clone(), options.passthrough);
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName(format!("jjfs:{}", root.display())),
            MountOption::Subtype("jjfs".into()),
            MountOption::DefaultPermissions,
            MountOption::RW,
        ];
        // Other users reach the mount as the modes allow; the kernel checks them.
        config.acl = if nix::unistd::geteuid().is_root() {
            SessionACL::All
        } else {
            SessionACL::Owner
        };
        // At least two: a handler may wait on the kernel while another serves a lookup.
        config.n_threads = Some(options.threads.max(2));
        config.clone_fd = true;
        let session =
            Session::new(filesystem, mountpoint, &config).map_err(|source| MountError::Mount {
                path: mountpoint.to_owned(),
                source,
            })?;
        if shared.passthrough.load(Ordering::Relaxed) && !probe_passthrough(&session, &root) {
            shared.passthrough.store(false, Ordering::Relaxed);
        }
        let notifier = session.notifier();
        let _ = shared.notifier.set(notifier.clone());
        let session = session.spawn().map_err(|source| MountError::Mount {
            path: mountpoint.to_owned(),
            source,
        })?;
        tracing::info!(
            mount = %mountpoint.display(),
            backing = %root.display(),
            io = shared_io_mode(&shared),
            "mounted"
        );
        Ok(Self {
            mountpoint: mountpoint.to_owned(),
            shared,
            session: Some(session),
            notifier,
        })
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// "passthrough" when the kernel moves file data itself, else "userspace".
    pub fn io_mode(&self) -> &'static str {
        shared_io_mode(&self.shared)
    }

    /// A handle through which the sync engine writes into this mount (see `update`).
    pub fn updater(&self) -> Updater {
        Updater {
            shared: self.shared.clone(),
        }
    }

    /// Workspace-relative paths of files that users hold open for writing.
    pub fn user_writers(&self) -> Vec<PathBuf> {
        self.shared
            .inodes
            .with_user_writers()
            .iter()
            .filter_map(|inode| {
                let path = sys::fd_path(inode.fd().as_raw_fd()).ok()?;
                path.strip_prefix(&self.shared.root)
                    .ok()
                    .map(Path::to_owned)
            })
            .collect()
    }

    /// Drops the kernel's cached names and attributes for paths changed directly in the
    /// backing directory (changes made through the mount never need this).
    pub fn invalidate(&self, paths: &[PathBuf]) {
        for path in paths {
            let parent_rel = path.parent().unwrap_or(Path::new(""));
            let Some(name) = path.file_name() else {
                continue;
            };
            if let Some(parent_ino) = self.known_ino(parent_rel) {
                let _ = self.notifier.inval_entry(fuser::INodeNo(parent_ino), name);
            }
            if let Some(ino) = self.known_ino(path) {
                let _ = self.notifier.inval_inode(fuser::INodeNo(ino), 0, 0);
            }
        }
    }

    /// The FUSE inode of a backing path, if the kernel may have it cached.
    fn known_ino(&self, rel: &Path) -> Option<u64> {
        let meta = std::fs::symlink_metadata(self.shared.root.join(rel)).ok()?;
        let ino = self
            .shared
            .inodes
            .fuse_ino(std::os::unix::fs::MetadataExt::ino(&meta));
        self.shared.inodes.get(ino).map(|_| ino)
    }

    /// Unmounts; fails with `Busy` (and stays mounted) while processes use the mount.
    pub fn unmount(mut self) -> Result<(), MountError> {
        self.unmount_inner()
    }

    fn unmount_inner(&mut self) -> Result<(), MountError> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        match nix::mount::umount2(&self.mountpoint, nix::mount::MntFlags::empty()) {
            Ok(()) => {}
            Err(nix::errno::Errno::EBUSY) => {
                self.session = Some(session);
                return Err(MountError::Busy {
                    path: self.mountpoint.clone(),
                });
            }
            // Already gone (unmounted by hand): just wait for the session to end.
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
            Err(err) => {
                self.session = Some(session);
                return Err(MountError::Unmount {
                    path: self.mountpoint.clone(),
                    source: err.into(),
                });
            }
        }
        let _ = session.join();
        tracing::info!(mount = %self.mountpoint.display(), "unmounted");
        Ok(())
    }

    /// Unmounts even while in use (lazily: busy files keep working until closed, then the
    /// mount goes). Used when the daemon stops.
    pub fn detach(mut self) {
        if let Some(session) = self.session.take() {
            let _ = nix::mount::umount2(&self.mountpoint, nix::mount::MntFlags::MNT_DETACH);
            drop(session);
            tracing::info!(mount = %self.mountpoint.display(), "unmounted (detached)");
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            let _ = nix::mount::umount2(&self.mountpoint, nix::mount::MntFlags::MNT_DETACH);
            drop(session);
        }
    }
}

fn shared_io_mode(shared: &fs::Shared) -> &'static str {
    if shared.passthrough.load(Ordering::Relaxed) {
        "passthrough"
    } else {
        "userspace"
    }
}

/// Checks that a FUSE mount can be made here, with one line on what to install or change.
pub fn preflight() -> Result<(), MountError> {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
    {
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(MountError::Unavailable(
                "/dev/fuse is missing: load the module with `modprobe fuse` (in a container, pass --device /dev/fuse)".into(),
            ));
        }
        Err(err) if err.kind() == io::ErrorKind::PermissionDenied => {
            if !nix::unistd::geteuid().is_root() && which("fusermount3").is_none() {
                return Err(MountError::Unavailable(
                    "fusermount3 is missing and /dev/fuse is not open to this user: install fuse3 (`apt-get install fuse3`)".into(),
                ));
            }
        }
        Err(err) => {
            return Err(MountError::Unavailable(format!(
                "cannot open /dev/fuse: {err}"
            )));
        }
    }
    if !nix::unistd::geteuid().is_root() && which("fusermount3").is_none() {
        return Err(MountError::Unavailable(
            "fusermount3 is missing: install fuse3 (`apt-get install fuse3`) or run jjfsd as root"
                .into(),
        ));
    }
    Ok(())
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// Opens (and closes) a kernel passthrough backing for a scratch file: the only reliable
/// test of the kernel, the capability and our privileges together.
fn probe_passthrough<FS: fuser::Filesystem>(session: &Session<FS>, root: &Path) -> bool {
    const FUSE_DEV_IOC_BACKING_CLOSE: libc::c_ulong = 0x4004_e502;
    let probe = root.join(".jj").join("jjfs-passthrough-probe");
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&probe)
    {
        Ok(file) => file,
        Err(_) => return false,
    };
    let result = fuser::BackingId::create_raw(session.as_fd(), &file);
    let _ = std::fs::remove_file(&probe);
    match result {
        Ok(id) => {
            unsafe {
                libc::ioctl(session.as_fd().as_raw_fd(), FUSE_DEV_IOC_BACKING_CLOSE, &id);
            }
            true
        }
        Err(err) => {
            tracing::info!(
                "kernel passthrough not available ({err}); file data goes through the daemon"
            );
            false
        }
    }
}

/// One line of /proc/self/mountinfo that matters here.
struct MountEntry {
    mount_point: PathBuf,
    /// The minor number of the mount's device (a FUSE connection's id).
    device_minor: u32,
    fs_type: String,
    source: String,
}

fn mount_table() -> Vec<MountEntry> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let mount_point = fields.get(4)?;
            let device_minor = fields.get(2)?.split_once(':')?.1.parse().ok()?;
            let mut right = right.split(' ');
            let fs_type = right.next()?;
            let source = right.next()?;
            Some(MountEntry {
                mount_point: unescape_mount_path(mount_point),
                device_minor,
                fs_type: fs_type.to_owned(),
                source: unescape_mount_path(source).to_string_lossy().into_owned(),
            })
        })
        .collect()
}

/// Whether `path` is a mount point (live or dead).
pub fn is_mount_point(path: &Path) -> bool {
    mount_table().iter().any(|m| m.mount_point == path)
}

/// Undoes the octal escapes (`\040` for a space) of /proc/self/mountinfo.
fn unescape_mount_path(raw: &str) -> PathBuf {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && let Ok(code) = u8::from_str_radix(&raw[i + 1..i + 4], 8)
        {
            out.push(code);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// Removes a jjfs mount of `backing` left at `path` by a daemon that was killed (its
/// files fail with "transport endpoint is not connected"). The caller holds the daemon lock,
/// so no live daemon serves it. Returns whether there was one.
pub fn clean_stale(path: &Path, backing: &Path) -> bool {
    let source = format!(
        "jjfs:{}",
        backing
            .canonicalize()
            .unwrap_or_else(|_| backing.to_owned())
            .display()
    );
    let stale = mount_table()
        .iter()
        .any(|m| m.mount_point == path && m.fs_type.starts_with("fuse") && m.source == source);
    if stale {
        force_unmount(path);
        tracing::info!(mount = %path.display(), "cleaned up a stale mount");
    }
    stale
}

/// Aborts the FUSE connection of every jjfs mount whose backing workspace is under `home`
/// (the mounts of a daemon that was killed). A killed daemon whose own thread was waiting
/// on its mount cannot exit until its connections are aborted: this frees it, and programs
/// waiting on the mounts get an error. The mounts stay in place, dead ("transport endpoint is
/// not connected"), so nobody mistakes the empty directory beneath for the files.
pub fn abort_stale_mounts(home: &Path) {
    let prefix = format!(
        "jjfs:{}",
        home.canonicalize()
            .unwrap_or_else(|_| home.to_owned())
            .display()
    );
    for m in mount_table() {
        if m.fs_type.starts_with("fuse") && m.source.starts_with(&prefix) {
            if abort_connection(m.device_minor).is_err() {
                // No fusectl: a forced unmount aborts too (and unmounts when not busy).
                let _ = nix::mount::umount2(&m.mount_point, nix::mount::MntFlags::MNT_FORCE);
            }
            tracing::info!(mount = %m.mount_point.display(), "aborted the mount of a killed daemon");
        }
    }
}

/// Aborts FUSE connection `minor` through fusectl. Where fusectl is not mounted (no systemd
/// mounted it at boot), it is mounted for the abort and unmounted again: the host is left as
/// it was found.
fn abort_connection(minor: u32) -> io::Result<()> {
    let connections = Path::new("/sys/fs/fuse/connections");
    let abort = connections.join(minor.to_string()).join("abort");
    let mounted_here = !abort.exists()
        && nix::mount::mount(
            Some("fusectl"),
            connections,
            Some("fusectl"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .is_ok();
    let result = std::fs::write(abort, "1");
    if mounted_here {
        let _ = nix::mount::umount2(connections, nix::mount::MntFlags::MNT_DETACH);
    }
    result
}

/// A forced unmount aborts the FUSE connection (releasing anything waiting on it); the lazy
/// one then detaches the mount point even while it is busy.
fn force_unmount(path: &Path) {
    let _ = nix::mount::umount2(path, nix::mount::MntFlags::MNT_FORCE);
    let _ = nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_paths_are_unescaped() {
        assert_eq!(
            unescape_mount_path("/a\\040b/caf\u{e9}"),
            Path::new("/a b/caf\u{e9}")
        );
        assert_eq!(unescape_mount_path("/x\\134y"), Path::new("/x\\y"));
    }
}

//! Noticing that a mount stopped being jjfs's mount without jjfs asking (`umount -l` or
//! `fusermount3 -uz` behind its back): its FUSE session ends, or, while a process still holds
//! the detached mount and so keeps the session alive, the mount table stops showing the
//! mount's FUSE connection at its path. Either way its `ChangeSink` hears it once.
//!
//! One thread per daemon watches the mount table (poll on /proc/self/mountinfo wakes it on
//! every mount and unmount) for all mounts at once.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock, Weak};

use super::ChangeSink;
use super::mount_table::{self, MountEntry};

/// Whether one mount is still attached, and who hears when it is not.
pub(crate) struct Attachment {
    /// The canonical mount point.
    mountpoint: PathBuf,
    /// The mount's FUSE connection (the minor of its device), once mounted.
    connection: OnceLock<u32>,
    sink: Arc<dyn ChangeSink>,
    /// jjfs is unmounting it: its end is no news.
    unmounting: AtomicBool,
    session_over: AtomicBool,
    reported: AtomicBool,
}

impl Attachment {
    pub(crate) fn new(mountpoint: PathBuf, sink: Arc<dyn ChangeSink>) -> Arc<Self> {
        Arc::new(Self {
            mountpoint,
            connection: OnceLock::new(),
            sink,
            unmounting: AtomicBool::new(false),
            session_over: AtomicBool::new(false),
            reported: AtomicBool::new(false),
        })
    }

    /// The mount is in place, served by FUSE connection `minor`: from now on its detachment
    /// is watched.
    pub(crate) fn connected(self: &Arc<Self>, minor: u32) {
        let _ = self.connection.set(minor);
        watch(self);
    }

    pub(crate) fn connection(&self) -> Option<u32> {
        self.connection.get().copied()
    }

    /// Whether the session runs and the mount table shows it at its mount point.
    pub(crate) fn is_attached(&self) -> bool {
        !self.session_over.load(Ordering::SeqCst) && self.in_table(&mount_table::mount_table())
    }

    fn in_table(&self, table: &[MountEntry]) -> bool {
        self.connection()
            .is_some_and(|minor| mount_table::serves(table, &self.mountpoint, minor))
    }

    /// jjfs starts unmounting (`false`: the unmount was refused, it stays as it was).
    pub(crate) fn set_unmounting(&self, unmounting: bool) {
        self.unmounting.store(unmounting, Ordering::SeqCst);
    }

    /// The FUSE session ended (called on the session's thread).
    pub(crate) fn session_ended(&self) {
        self.session_over.store(true, Ordering::SeqCst);
        if !self.unmounting.load(Ordering::SeqCst) {
            self.report();
        }
    }

    /// The mount table changed to `table`.
    fn check(&self, table: &[MountEntry]) {
        if !self.unmounting.load(Ordering::SeqCst)
            && self.connection().is_some()
            && !self.in_table(table)
        {
            self.report();
        }
    }

    fn report(&self) {
        if !self.reported.swap(true, Ordering::SeqCst) {
            tracing::warn!(
                mount = %self.mountpoint.display(),
                "the mount was detached behind jjfs's back"
            );
            self.sink.detached();
        }
    }
}

static WATCHED: Mutex<Vec<Weak<Attachment>>> = Mutex::new(Vec::new());

fn watch(attachment: &Arc<Attachment>) {
    static START: Once = Once::new();
    WATCHED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Arc::downgrade(attachment));
    START.call_once(|| {
        let started = std::thread::Builder::new()
            .name("jjfs-mount-table".into())
            .spawn(watch_mount_table);
        if let Err(err) = started {
            tracing::warn!("cannot watch the mount table ({err}): detached mounts are noticed when their session ends");
        }
    });
}

/// Checks every watched mount whenever the mount table changes.
fn watch_mount_table() {
    let Ok(file) = File::open("/proc/self/mountinfo") else {
        return;
    };
    loop {
        let mut poll = libc::pollfd {
            fd: file.as_raw_fd(),
            events: libc::POLLPRI,
            revents: 0,
        };
        if unsafe { libc::poll(&mut poll, 1, -1) } < 0 {
            if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
            continue;
        }
        let live: Vec<Arc<Attachment>> = {
            let mut watched = WATCHED.lock().unwrap_or_else(|e| e.into_inner());
            watched.retain(|w| w.strong_count() > 0);
            watched.iter().filter_map(Weak::upgrade).collect()
        };
        if live.is_empty() {
            continue;
        }
        let table = mount_table::mount_table();
        for attachment in live {
            attachment.check(&table);
        }
    }
}

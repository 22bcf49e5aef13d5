//! The inode table of one mount. A FUSE inode number is the backing file's own inode number
//! (the backing root's swapped with 1, which FUSE reserves for the root), so hard links,
//! `ls -i` and readdir agree. Each known inode keeps an `O_PATH` handle on its backing object
//! until the kernel forgets it; that handle keeps the backing inode number from being reused.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use fuser::BackingId;

pub const ROOT: u64 = 1;

/// One backing object the kernel knows about.
pub struct Inode {
    pub ino: u64,
    fd: OwnedFd,
    /// Lookups the kernel holds (each entry reply adds one, forget subtracts).
    lookups: AtomicU64,
    /// Open handles that may write, from any client.
    pub writers: AtomicU32,
    /// Open writable handles of users (not of the daemon's own sync).
    pub user_writers: AtomicU32,
    /// The mount-wide change counter value at this inode's last change by a user.
    pub user_changed_at: AtomicU64,
    /// The one kernel passthrough backing shared by all open handles of this inode.
    pub backing: Mutex<Weak<BackingId>>,
}

impl Inode {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

pub struct InodeTable {
    /// Backing inode number of the workspace root (served as FUSE inode 1).
    root_backing_ino: u64,
    map: Mutex<HashMap<u64, Arc<Inode>>>,
}

impl InodeTable {
    pub fn new(root_fd: OwnedFd, root_backing_ino: u64) -> Self {
        let root = Arc::new(Inode {
            ino: ROOT,
            fd: root_fd,
            lookups: AtomicU64::new(1),
            writers: AtomicU32::new(0),
            user_writers: AtomicU32::new(0),
            user_changed_at: AtomicU64::new(0),
            backing: Mutex::new(Weak::new()),
        });
        Self {
            root_backing_ino,
            map: Mutex::new(HashMap::from([(ROOT, root)])),
        }
    }

    /// The FUSE inode number of a backing inode number.
    pub fn fuse_ino(&self, backing_ino: u64) -> u64 {
        if backing_ino == self.root_backing_ino {
            ROOT
        } else if backing_ino == ROOT {
            self.root_backing_ino
        } else {
            backing_ino
        }
    }

    pub fn get(&self, ino: u64) -> Option<Arc<Inode>> {
        self.lock().get(&ino).cloned()
    }

    /// Records one more kernel lookup of the object behind `fd` (whose stat is `st`), and
    /// returns its inode. A new `fd` is dropped when the inode is already known.
    pub fn remember(&self, fd: OwnedFd, st: &libc::stat) -> Arc<Inode> {
        let ino = self.fuse_ino(st.st_ino);
        let mut map = self.lock();
        if let Some(inode) = map.get(&ino) {
            inode.lookups.fetch_add(1, Ordering::Relaxed);
            return inode.clone();
        }
        let inode = Arc::new(Inode {
            ino,
            fd,
            lookups: AtomicU64::new(1),
            writers: AtomicU32::new(0),
            user_writers: AtomicU32::new(0),
            user_changed_at: AtomicU64::new(0),
            backing: Mutex::new(Weak::new()),
        });
        map.insert(ino, inode.clone());
        inode
    }

    /// The kernel dropped `n` lookups of `ino`; the inode goes when none remain.
    pub fn forget(&self, ino: u64, n: u64) {
        if ino == ROOT {
            return;
        }
        let mut map = self.lock();
        if let Some(inode) = map.get(&ino) {
            let before = inode.lookups.fetch_sub(
                n.min(inode.lookups.load(Ordering::Relaxed)),
                Ordering::Relaxed,
            );
            if before <= n {
                map.remove(&ino);
            }
        }
    }

    /// Inodes with open writable handles of users.
    pub fn with_user_writers(&self) -> Vec<Arc<Inode>> {
        self.lock()
            .values()
            .filter(|i| i.user_writers.load(Ordering::Relaxed) > 0)
            .cloned()
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Inode>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

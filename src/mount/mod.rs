//! FUSE mounts: each mount serves one backing jj workspace at the user's path through a
//! passthrough filesystem, with kernel passthrough for file data where the kernel and
//! privileges allow it. Only this module touches fuser.
//!
//! A mount reports every change a user makes through it to a `ChangeSink` (the sync engine),
//! without waiting, and tells it when the mount was detached behind jjfs's back. The sync
//! engine applies other mounts' changes *through* the mount, as a client, so that the
//! kernel's caches and every file watcher in the mount see them.
//!
//! - `fuse`: the fuser glue (one call into the core and one reply per request).
//! - `passthrough`: the filesystem's semantics, returning `Result<T, Errno>`.
//! - `engine`: the sync engine's guarded writes through the mount.
//! - `inodes`: the inode table (no descriptor per inode) and the names it tracks.
//! - `sys`: the system calls and per-thread credentials.
//! - `attach`: noticing a mount detached behind jjfs's back.
//! - `mount_table`: /proc/self/mountinfo, stale mounts, unmounts that never follow symlinks.
//! - `holders`: which processes keep a mount busy.

mod attach;
mod engine;
mod fuse;
mod holders;
mod inodes;
mod mount_table;
mod passthrough;
mod sys;
#[cfg(test)]
mod tests;

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use fuser::{Config, MountOption, Notifier, Session, SessionACL};
use nix::errno::Errno;
use nix::mount::MntFlags;

pub use holders::{Holder, holders, writers_under};
pub use mount_table::{abort_stale_mounts, clean_stale, is_mount_point};

use passthrough::Shared;

/// Where a mount sends the workspace-relative paths that users changed through it.
pub trait ChangeSink: Send + Sync + 'static {
    fn changed(&self, paths: Vec<PathBuf>);

    /// The mount stopped being jjfs's mount without jjfs asking (`umount -l` or
    /// `fusermount3 -uz` behind its back): what is at its path now is not the workspace.
    /// Called at most once, from the mount-table watcher or the session's thread.
    fn detached(&self) {}
}

#[derive(Debug, Clone)]
pub struct MountOptions {
    /// Try kernel passthrough for file data.
    pub passthrough: bool,
    /// FUSE request threads of the session.
    pub threads: usize,
    /// Who owns what the sync engine creates through the mount (user, group), when the
    /// daemon is root; None: the daemon's own user.
    pub owner: Option<(u32, u32)>,
}

impl Default for MountOptions {
    fn default() -> Self {
        Self {
            passthrough: !env_flag("JJFS_NO_PASSTHROUGH"),
            threads: std::env::var("JJFS_FUSE_THREADS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(3),
            owner: None,
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
    #[error("{path} is busy: {}", describe_holders(holders))]
    Busy { path: PathBuf, holders: Vec<Holder> },
    #[error("cannot unmount {path}: {source}")]
    Unmount { path: PathBuf, source: io::Error },
    #[error("backing workspace {path}: {source}")]
    Backing { path: PathBuf, source: io::Error },
}

fn describe_holders(holders: &[Holder]) -> String {
    if holders.is_empty() {
        return "a process has files open or its current directory in it".into();
    }
    let list: Vec<String> = holders.iter().map(Holder::to_string).collect();
    format!("held by {}", list.join(", "))
}

/// The sync engine's side of a mount: it reads the count of users' changes when it plans
/// an update (the fence), then writes through the mount between `begin` and `end` on one
/// thread; files users changed after the fence are never overwritten.
#[derive(Clone)]
pub struct Updater {
    shared: Arc<Shared>,
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
        self.shared.end_update()
    }
}

/// One live FUSE session.
pub struct Mount {
    mountpoint: PathBuf,
    /// The mount point as mounted (symlinks resolved), for the mount table and unmounts.
    canonical: PathBuf,
    shared: Arc<Shared>,
    /// The thread running the session; None once unmounted or detached.
    session: Option<JoinHandle<io::Result<()>>>,
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
        let mount_err = |source| MountError::Mount {
            path: mountpoint.to_owned(),
            source,
        };
        let root = backing.canonicalize().map_err(backing_err)?;
        let root_fd = std::fs::File::open(&root).map_err(backing_err)?;
        let root_fd = sys::reopen_path(root_fd.as_fd()).map_err(backing_err)?;
        let root_st = sys::stat_fd(root_fd.as_fd()).map_err(backing_err)?;
        let inodes = inodes::InodeTable::new(root_fd, &root_st, inodes::FdCache::shared());
        let updates = engine::Updates::new(&root, &inodes, options.owner).map_err(backing_err)?;
        let canonical = mountpoint.canonicalize().map_err(mount_err)?;
        let attachment = attach::Attachment::new(canonical.clone(), sink.clone());
        let shared = Arc::new(Shared {
            inodes,
            root: root.clone(),
            passthrough: AtomicBool::new(false),
            changes: AtomicU64::new(0),
            sink,
            updates,
            notifier: std::sync::OnceLock::new(),
            attachment: attachment.clone(),
        });
        let filesystem = fuse::Fuse::new(
            passthrough::Passthrough::new(shared.clone()),
            options.passthrough,
        );
        let source = mount_table::source_of(&root);
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName(source.clone()),
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
        let session = Session::new(filesystem, &canonical, &config).map_err(mount_err)?;
        if shared.passthrough.load(Ordering::Relaxed) && !probe_passthrough(&session, &root) {
            shared.passthrough.store(false, Ordering::Relaxed);
        }
        let notifier = session.notifier();
        let _ = shared.notifier.set(notifier.clone());
        match mount_table::fuse_connection(&canonical, &source) {
            Some(minor) => attachment.connected(minor),
            None => tracing::warn!(
                mount = %mountpoint.display(),
                "the new mount is not in the mount table: its detachment will not be noticed"
            ),
        }
        // The session runs on a thread of ours, not fuser's `spawn`: fuser would unmount the
        // path itself when its handle is dropped (following symlinks, and whatever is
        // mounted there by then). Here only `Mount` unmounts.
        let session_attachment = attachment.clone();
        let session = std::thread::Builder::new()
            .name("jjfs-fuse".into())
            .spawn(move || {
                let result = session.run();
                session_attachment.session_ended();
                result
            })
            .map_err(mount_err)?;
        tracing::info!(
            mount = %mountpoint.display(),
            backing = %root.display(),
            io = shared_io_mode(&shared),
            "mounted"
        );
        Ok(Self {
            mountpoint: mountpoint.to_owned(),
            canonical,
            shared,
            session: Some(session),
            notifier,
        })
    }

    /// "passthrough" when the kernel moves file data itself, else "userspace".
    pub fn io_mode(&self) -> &'static str {
        shared_io_mode(&self.shared)
    }

    /// Whether this is still jjfs's mount at its path: false once it was detached behind
    /// jjfs's back (see `ChangeSink::detached`), or unmounted.
    #[cfg(test)]
    pub fn is_attached(&self) -> bool {
        self.session.is_some() && self.shared.attachment.is_attached()
    }

    /// A handle through which the sync engine writes into this mount (see `engine`).
    pub fn updater(&self) -> Updater {
        Updater {
            shared: self.shared.clone(),
        }
    }

    /// Workspace-relative paths of files that users hold open for writing.
    pub fn user_writers(&self) -> Vec<PathBuf> {
        self.shared.user_writers()
    }

    /// Drops the kernel's cached names and attributes for paths changed directly in the
    /// backing directory (changes made through the mount never need this), and the cached
    /// attributes of their directories (a name came or went there). Called with no lock of
    /// the mount held.
    pub fn invalidate(&self, paths: &[PathBuf]) {
        let mut dirs = std::collections::HashSet::new();
        for path in paths {
            let parent_rel = path.parent().unwrap_or(Path::new(""));
            let Some(name) = path.file_name() else {
                continue;
            };
            if let Some(parent_ino) = self.shared.known_ino(parent_rel) {
                let _ = self.notifier.inval_entry(fuser::INodeNo(parent_ino), name);
                dirs.insert(parent_ino);
            }
            if let Some(ino) = self.shared.known_ino(path) {
                let _ = self.notifier.inval_inode(fuser::INodeNo(ino), 0, 0);
            }
        }
        for dir in dirs {
            let _ = self.notifier.inval_inode(fuser::INodeNo(dir), 0, 0);
        }
    }

    /// Drops everything the kernel may hold cached for this mount: every name and every
    /// inode's attributes and data. The net under the exact invalidations, for a full scan
    /// (`jjfs sync`, the periodic rescan, a watcher overflow): whatever changed in the
    /// backing directory unseen is read afresh after it. Returns how many were dropped.
    pub fn invalidate_all(&self) -> usize {
        let (inodes, names) = self.shared.inodes.known();
        for (dir, name) in &names {
            let _ = self.notifier.inval_entry(fuser::INodeNo(*dir), name);
        }
        for ino in &inodes {
            let _ = self.notifier.inval_inode(fuser::INodeNo(*ino), 0, 0);
        }
        inodes.len() + names.len()
    }

    /// Unmounts. While processes use the mount the unmount is refused with `Busy` (naming
    /// them) and the mount stays exactly as it was: mounted and served.
    pub fn unmount(&mut self) -> Result<(), MountError> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let attachment = &self.shared.attachment;
        attachment.set_unmounting(true);
        if attachment.is_attached() {
            match mount_table::unmount(&self.canonical, MntFlags::empty()) {
                // EINVAL: unmounted by hand meanwhile.
                Ok(()) | Err(Errno::EINVAL | Errno::ENOENT) => {}
                Err(err) => {
                    attachment.set_unmounting(false);
                    self.session = Some(session);
                    return Err(match err {
                        Errno::EBUSY => MountError::Busy {
                            path: self.mountpoint.clone(),
                            holders: holders(&self.canonical),
                        },
                        err => MountError::Unmount {
                            path: self.mountpoint.clone(),
                            source: err.into(),
                        },
                    });
                }
            }
        }
        if !attachment.is_attached()
            && !session.is_finished()
            && let Some(minor) = attachment.connection()
        {
            // Detached behind jjfs's back while a process still holds it: end the session
            // (that process's calls fail from now on; the mount was gone for everyone else).
            let _ = mount_table::abort_connection(minor);
        }
        let _ = session.join();
        tracing::info!(mount = %self.mountpoint.display(), "unmounted");
        Ok(())
    }

    /// Unmounts even while in use (lazily: busy files keep working until closed, then the
    /// mount goes). Used when the daemon stops.
    pub fn detach(mut self) {
        if self.detach_inner() {
            tracing::info!(mount = %self.mountpoint.display(), "unmounted (detached)");
        }
    }

    fn detach_inner(&mut self) -> bool {
        let Some(session) = self.session.take() else {
            return false;
        };
        let attachment = &self.shared.attachment;
        attachment.set_unmounting(true);
        if attachment.is_attached() {
            let _ = mount_table::unmount(&self.canonical, MntFlags::MNT_DETACH);
        }
        // The session ends by itself once the last busy file is closed.
        drop(session);
        true
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        self.detach_inner();
    }
}

fn shared_io_mode(shared: &Shared) -> &'static str {
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
        // fuser opens /dev/fuse itself before it would try fusermount3: a device this user
        // cannot open means no mount at all (direct mounts still work).
        Err(err) if err.kind() == io::ErrorKind::PermissionDenied => {
            return Err(MountError::Unavailable(
                crate::doctor::fuse_access_problem().unwrap_or_else(|| {
                    format!("/dev/fuse cannot be opened ({err}); check `jjfs doctor`")
                }),
            ));
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

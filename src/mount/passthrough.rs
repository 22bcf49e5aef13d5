//! The passthrough filesystem's semantics, without the kernel: every request becomes the same
//! operation on the backing workspace, relative to a directory handle, as the calling user,
//! returning the backing file system's own errno (`Result<T, Errno>`). The workspace's `.jj`
//! is invisible and cannot be created. Users' changes are reported to the mount's
//! `ChangeSink` and counted (the fence of `engine`).
//!
//! Requests of the sync engine's thread are handed to `engine::Engine` (asked in one place:
//! `Passthrough::engine`); `fuse` translates fuser's calls into these methods and their
//! results into replies.

use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{BackingId, Errno, FileAttr, FileType, INodeNo, Notifier, TimeOrNow};

use super::ChangeSink;
use super::attach::Attachment;
use super::engine::{Engine, Updates};
use super::inodes::{Inode, InodeTable, ROOT};
use super::sys::{self, Credentials, DirStream, Stat};

/// The name hidden at the root of every mount.
pub const HIDDEN: &str = ".jj";

type Result<T> = std::result::Result<T, Errno>;

/// How long the kernel may trust names and attributes without asking again. Changes made
/// through the mount keep the kernel's caches true by construction (the engine's swaps of
/// whole files invalidate the names they replace); changes made directly in the backing
/// directory are invalidated by the mount's owner once its watcher sees them
/// (`Mount::invalidate`), and a full scan (`jjfs sync`, the periodic rescan) drops the whole
/// cache (`Mount::invalidate_all`). So the lifetime could be long; it stays 1 s by default
/// because a day-long one measured no faster (benches/small_files.rs: every first stat after
/// a write is a round trip either way) while it would make any missed invalidation last a
/// day. `JJFS_CACHE_TTL_SECS` sets it.
pub(crate) fn ttl() -> Duration {
    static TTL: LazyLock<Duration> = LazyLock::new(|| {
        let secs = std::env::var("JJFS_CACHE_TTL_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        Duration::from_secs(secs)
    });
    *TTL
}

/// Who sent a request: the calling thread and its user and group.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Caller {
    pub(crate) tid: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

impl Caller {
    /// Takes on the caller's credentials for the calls that create files.
    fn credentials(&self) -> Credentials {
        Credentials::assume(self.tid, self.uid, self.gid)
    }
}

/// The attribute changes of one setattr request.
pub(crate) struct SetAttr {
    pub(crate) mode: Option<u32>,
    pub(crate) uid: Option<u32>,
    pub(crate) gid: Option<u32>,
    pub(crate) size: Option<u64>,
    pub(crate) atime: Option<TimeOrNow>,
    pub(crate) mtime: Option<TimeOrNow>,
}

/// A name's entry: its attributes and how long the kernel may cache the name.
pub(crate) struct Entry {
    pub(crate) attr: FileAttr,
    pub(crate) ttl: Duration,
}

/// An open file: its handle, and the kernel passthrough backing when there is one.
pub(crate) struct Opened {
    pub(crate) fh: u64,
    pub(crate) backing: Option<Arc<BackingId>>,
}

/// An extended attribute read: its size when the caller asked for the size only.
pub(crate) enum Xattr {
    Size(u32),
    Data(Vec<u8>),
}

/// State shared between the filesystem (on FUSE threads) and its `Mount`.
pub(crate) struct Shared {
    pub(crate) inodes: InodeTable,
    /// Canonical path of the backing workspace.
    pub(crate) root: PathBuf,
    /// Kernel passthrough for file data: negotiated at init, disabled if opening a backing
    /// file fails.
    pub(crate) passthrough: AtomicBool,
    /// Counts user changes; each changed inode remembers the count of its last change.
    pub(crate) changes: AtomicU64,
    pub(crate) sink: Arc<dyn ChangeSink>,
    /// The sync engine's writes into this mount.
    pub(crate) updates: Updates,
    /// Tells the kernel to drop cached names (set once the session exists).
    pub(crate) notifier: OnceLock<Notifier>,
    pub(crate) attachment: Arc<Attachment>,
}

impl Shared {
    /// Ends the update the engine runs (see `Updates::end`).
    pub(crate) fn end_update(&self) -> std::result::Result<(), String> {
        self.updates.end(&self.inodes, self.notifier.get())
    }

    /// The FUSE inode of a backing path, if the kernel may have it cached.
    pub(crate) fn known_ino(&self, rel: &Path) -> Option<u64> {
        let meta = std::fs::symlink_metadata(self.root.join(rel)).ok()?;
        let ino = self
            .inodes
            .fuse_ino(std::os::unix::fs::MetadataExt::ino(&meta));
        self.inodes.get(ino).map(|_| ino)
    }

    /// Workspace-relative paths of files that users hold open for writing.
    pub(crate) fn user_writers(&self) -> Vec<PathBuf> {
        self.inodes
            .with_user_writers()
            .iter()
            .filter_map(|inode| self.inodes.path_of(inode, &self.root))
            .collect()
    }

    fn report(&self, paths: Vec<PathBuf>) {
        if !paths.is_empty() {
            self.sink.changed(paths);
        }
    }

    fn bump(&self, inode: &Inode) {
        inode
            .user_changed_at
            .store(self.next_change(), Ordering::Relaxed);
    }

    fn next_change(&self) -> u64 {
        // SeqCst: a sync that reads the count must then find the change's report sent.
        self.changes.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// The workspace-relative path of `name` in directory `dir`, if it is still reachable.
    fn rel_path(&self, dir: &Inode, name: &OsStr) -> Option<PathBuf> {
        Some(self.inodes.path_of(dir, &self.root)?.join(name))
    }
}

enum Handle {
    File(OpenFile),
    Dir(Mutex<DirStream>),
}

struct OpenFile {
    inode: Arc<Inode>,
    file: OwnedFd,
    writable: bool,
    /// Opened by the daemon's own sync, not by a user.
    engine: bool,
    _backing: Option<Arc<BackingId>>,
}

/// The passthrough filesystem of one mount.
pub(crate) struct Passthrough {
    shared: Arc<Shared>,
    handles: Mutex<HashMap<u64, Arc<Handle>>>,
    next_fh: AtomicU64,
}

impl Passthrough {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
        }
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// The engine's side of the request, if `caller` is the sync engine's thread.
    fn engine(&self, caller: &Caller) -> Option<Engine<'_>> {
        let shared = &*self.shared;
        shared.updates.engine(
            caller.tid,
            &shared.inodes,
            &shared.root,
            shared.notifier.get(),
        )
    }

    fn inode(&self, ino: u64) -> Result<Arc<Inode>> {
        self.shared.inodes.get(ino).ok_or(Errno::ESTALE)
    }

    fn handle(&self, fh: u64) -> Result<Arc<Handle>> {
        self.lock_handles().get(&fh).cloned().ok_or(Errno::EBADF)
    }

    fn lock_handles(&self) -> MutexGuard<'_, HashMap<u64, Arc<Handle>>> {
        self.handles.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add_handle(&self, handle: Handle) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.lock_handles().insert(fh, Arc::new(handle));
        fh
    }

    fn with_file<T>(&self, fh: u64, f: impl FnOnce(&OpenFile) -> Result<T>) -> Result<T> {
        match &*self.handle(fh)? {
            Handle::File(file) => f(file),
            Handle::Dir(_) => Err(Errno::EISDIR),
        }
    }

    /// `.jj` at the root: never shown, never created.
    fn is_hidden(parent: u64, name: &OsStr) -> bool {
        parent == ROOT && name.as_bytes() == HIDDEN.as_bytes()
    }

    fn attr(&self, st: &Stat) -> FileAttr {
        let time = |(s, ns): (i64, u32)| {
            if s >= 0 {
                UNIX_EPOCH + Duration::new(s as u64, ns)
            } else {
                UNIX_EPOCH - Duration::new(s.unsigned_abs(), 0) + Duration::from_nanos(ns.into())
            }
        };
        FileAttr {
            ino: INodeNo(self.shared.inodes.fuse_ino(st.ino())),
            size: st.size(),
            blocks: st.blocks(),
            atime: time(st.atime()),
            mtime: time(st.mtime()),
            ctime: time(st.ctime()),
            crtime: st.btime().map_or(UNIX_EPOCH, time),
            kind: kind_of_mode(st.mode()),
            perm: (st.mode() & 0o7777) as u16,
            nlink: st.nlink(),
            uid: st.uid(),
            gid: st.gid(),
            rdev: st.rdev() as u32,
            blksize: st.blksize(),
            flags: 0,
        }
    }

    fn stat_inode(&self, inode: &Inode) -> Result<FileAttr> {
        Ok(self.attr(&self.shared.inodes.stat(inode)?))
    }

    // A user's change is reported first and counted second, so that a sync which reads the
    // count and then drains its reports has seen every change it counts (see `engine`).

    /// Reports `names` in `dir` changed by a user (not by the engine) and counts the change
    /// on whatever is at those names now.
    fn report_names(&self, caller: &Caller, dir: &Inode, names: &[&OsStr]) {
        if self.engine(caller).is_some() {
            return;
        }
        let shared = &self.shared;
        let paths = names
            .iter()
            .filter_map(|name| shared.rel_path(dir, name))
            .collect();
        shared.report(paths);
        for name in names {
            if let Some(inode) = shared.inodes.at(dir, name) {
                shared.bump(&inode);
            }
        }
    }

    fn report_inode(&self, caller: &Caller, inode: &Inode) {
        if self.engine(caller).is_some() {
            return;
        }
        let shared = &self.shared;
        if let Some(path) = shared.inodes.path_of(inode, &shared.root) {
            shared.report(vec![path]);
        }
        shared.bump(inode);
    }

    /// A user removed `name` from `dir`: what the engine writes there next must not undo it.
    fn note_removal(&self, dir: &Inode, name: &OsStr) {
        let at = self.shared.next_change();
        self.shared.updates.note_user_removal(dir.ino, name, at);
    }

    pub(crate) fn lookup(&self, caller: &Caller, parent: u64, name: &OsStr) -> Result<Entry> {
        if Self::is_hidden(parent, name) || (parent == ROOT && name == "..") {
            return Err(Errno::ENOENT);
        }
        let dir = self.inode(parent)?;
        if let Some(engine) = self.engine(caller)
            && let Some((_, st)) = engine.lookup(&dir, name)?
        {
            return Ok(Entry {
                attr: self.attr(&st),
                ttl: Duration::ZERO,
            });
        }
        let (_, st) = self.shared.inodes.lookup(&dir, name)?;
        // A name the engine is replacing must be looked up again, not cached.
        let ttl = if self.shared.updates.is_in_flux(parent, name) {
            Duration::ZERO
        } else {
            ttl()
        };
        Ok(Entry {
            attr: self.attr(&st),
            ttl,
        })
    }

    pub(crate) fn forget(&self, ino: u64, lookups: u64) {
        self.shared.inodes.forget(ino, lookups);
    }

    pub(crate) fn getattr(&self, ino: u64, fh: Option<u64>) -> Result<FileAttr> {
        if let Some(Ok(handle)) = fh.map(|fh| self.handle(fh))
            && let Handle::File(f) = &*handle
        {
            return Ok(self.attr(&sys::stat_fd(f.file.as_fd())?));
        }
        self.stat_inode(&*self.inode(ino)?)
    }

    pub(crate) fn setattr(
        &self,
        caller: &Caller,
        ino: u64,
        change: &SetAttr,
        fh: Option<u64>,
    ) -> Result<FileAttr> {
        let inode = self.inode(ino)?;
        let apply = || self.apply_setattr(caller, &inode, change, fh);
        match self.engine(caller) {
            Some(engine) => engine.setattr(&inode, change.mode.is_some(), apply)?,
            None => {
                apply()?;
                if change.mode.is_some()
                    || change.uid.is_some()
                    || change.gid.is_some()
                    || change.size.is_some()
                {
                    self.report_inode(caller, &inode);
                }
            }
        }
        self.stat_inode(&inode)
    }

    fn apply_setattr(
        &self,
        caller: &Caller,
        inode: &Inode,
        change: &SetAttr,
        fh: Option<u64>,
    ) -> Result<()> {
        let fd = self.shared.inodes.fd(inode)?;
        let handle = fh.and_then(|fh| self.handle(fh).ok());
        let open_fd = handle.as_deref().and_then(|h| match h {
            Handle::File(f) => Some(f.file.as_fd()),
            Handle::Dir(_) => None,
        });
        if let Some(mode) = change.mode {
            sys::chmod_fd(fd.as_fd(), mode & 0o7777)?;
        }
        if change.uid.is_some() || change.gid.is_some() {
            sys::chown_fd(fd.as_fd(), change.uid, change.gid)?;
        }
        if let Some(size) = change.size {
            match open_fd {
                Some(open) => sys::ftruncate(open, size)?,
                None => {
                    let _creds = caller.credentials();
                    let file = sys::reopen(fd.as_fd(), libc::O_WRONLY)?;
                    sys::ftruncate(file.as_fd(), size)?;
                }
            }
        }
        if change.atime.is_some() || change.mtime.is_some() {
            let times = [timespec(change.atime), timespec(change.mtime)];
            match open_fd {
                Some(open) => sys::futimens(open, &times)?,
                None => sys::utimens_fd(fd.as_fd(), &times)?,
            }
        }
        Ok(())
    }

    pub(crate) fn readlink(&self, ino: u64) -> Result<Vec<u8>> {
        let inode = self.inode(ino)?;
        Ok(sys::readlink(self.shared.inodes.fd(&inode)?.as_fd())?)
    }

    pub(crate) fn mknod(
        &self,
        caller: &Caller,
        parent: u64,
        name: &OsStr,
        mode: u32,
        rdev: u32,
    ) -> Result<FileAttr> {
        self.make_node(caller, parent, name, |dir, name| {
            sys::mknodat(dir, name, mode, rdev.into())
        })
    }

    pub(crate) fn mkdir(
        &self,
        caller: &Caller,
        parent: u64,
        name: &OsStr,
        mode: u32,
    ) -> Result<FileAttr> {
        self.make_node(caller, parent, name, |dir, name| {
            sys::mkdirat(dir, name, mode)
        })
    }

    pub(crate) fn symlink(
        &self,
        caller: &Caller,
        parent: u64,
        name: &OsStr,
        target: &Path,
    ) -> Result<FileAttr> {
        let target = CString::new(target.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
        self.make_node(caller, parent, name, |dir, name| {
            sys::symlinkat(&target, dir, name)
        })
    }

    /// mkdir, mknod and symlink: create as the caller, then look the new entry up.
    fn make_node(
        &self,
        caller: &Caller,
        parent: u64,
        name: &OsStr,
        make: impl FnOnce(BorrowedFd<'_>, &CStr) -> std::io::Result<()>,
    ) -> Result<FileAttr> {
        if Self::is_hidden(parent, name) {
            return Err(Errno::EPERM);
        }
        let dir = self.inode(parent)?;
        {
            let _creds = caller.credentials();
            match self.engine(caller) {
                Some(engine) => engine.make_node(&dir, name, make)?,
                None => make(self.shared.inodes.fd(&dir)?.as_fd(), &sys::cname(name)?)?,
            }
        }
        let (_, st) = self.shared.inodes.lookup(&dir, name)?;
        self.report_names(caller, &dir, &[name]);
        Ok(self.attr(&st))
    }

    pub(crate) fn unlink(&self, caller: &Caller, parent: u64, name: &OsStr) -> Result<()> {
        self.remove(caller, parent, name, false)
    }

    pub(crate) fn rmdir(&self, caller: &Caller, parent: u64, name: &OsStr) -> Result<()> {
        self.remove(caller, parent, name, true)
    }

    fn remove(&self, caller: &Caller, parent: u64, name: &OsStr, rmdir: bool) -> Result<()> {
        if Self::is_hidden(parent, name) {
            return Err(Errno::ENOENT);
        }
        let dir = self.inode(parent)?;
        if let Some(engine) = self.engine(caller) {
            return engine.remove(&dir, name, rmdir);
        }
        // The path must be resolved before the entry is gone.
        let path = self.shared.rel_path(&dir, name);
        self.shared.inodes.unlink(&dir, name, rmdir)?;
        self.shared.report(path.into_iter().collect());
        self.note_removal(&dir, name);
        Ok(())
    }

    pub(crate) fn rename(
        &self,
        caller: &Caller,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        flags: u32,
    ) -> Result<()> {
        if Self::is_hidden(parent, name) {
            return Err(Errno::ENOENT);
        }
        if Self::is_hidden(new_parent, new_name) {
            return Err(Errno::EPERM);
        }
        let (from, to) = (self.inode(parent)?, self.inode(new_parent)?);
        if let Some(engine) = self.engine(caller) {
            return engine.rename(&from, name, &to, new_name, flags);
        }
        let (old, new) = (sys::cname(name)?, sys::cname(new_name)?);
        self.shared.inodes.rename(&from, &old, &to, &new, flags)?;
        self.report_names(caller, &from, &[name]);
        self.report_names(caller, &to, &[new_name]);
        if flags & libc::RENAME_EXCHANGE == 0 {
            self.note_removal(&from, name);
        }
        Ok(())
    }

    pub(crate) fn link(
        &self,
        caller: &Caller,
        ino: u64,
        new_parent: u64,
        new_name: &OsStr,
    ) -> Result<FileAttr> {
        if Self::is_hidden(new_parent, new_name) {
            return Err(Errno::EPERM);
        }
        let (inode, dir) = (self.inode(ino)?, self.inode(new_parent)?);
        let inodes = &self.shared.inodes;
        let cname = sys::cname(new_name)?;
        sys::link_fd(inodes.fd(&inode)?.as_fd(), inodes.fd(&dir)?.as_fd(), &cname)?;
        let (_, st) = inodes.lookup(&dir, new_name)?;
        self.report_names(caller, &dir, &[new_name]);
        Ok(self.attr(&st))
    }

    pub(crate) fn open(
        &self,
        caller: &Caller,
        ino: u64,
        flags: i32,
        open_backing: impl FnOnce(BorrowedFd<'_>) -> std::io::Result<BackingId>,
    ) -> Result<Opened> {
        let inode = self.inode(ino)?;
        let file = sys::reopen(self.shared.inodes.fd(&inode)?.as_fd(), flags)?;
        self.new_open_file(caller, inode, file, flags, open_backing)
    }

    pub(crate) fn create(
        &self,
        caller: &Caller,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: i32,
        open_backing: impl FnOnce(BorrowedFd<'_>) -> std::io::Result<BackingId>,
    ) -> Result<(Entry, Opened)> {
        if Self::is_hidden(parent, name) {
            return Err(Errno::EPERM);
        }
        let dir = self.inode(parent)?;
        let (inode, st, file, ttl) = match self.engine(caller) {
            // The engine's new file is not in place yet: the kernel must not cache its name.
            Some(engine) => {
                let (inode, st, file) = engine.create(&dir, name, mode, flags)?;
                (inode, st, file, Duration::ZERO)
            }
            None => {
                let file = {
                    let _creds = caller.credentials();
                    let dir_fd = self.shared.inodes.fd(&dir)?;
                    let flags = (flags | libc::O_CREAT) & !libc::O_NOFOLLOW;
                    sys::openat(dir_fd.as_fd(), &sys::cname(name)?, flags, mode)?
                };
                let st = sys::stat_fd(file.as_fd())?;
                let inode = self.shared.inodes.created((dir.ino, name.to_owned()), &st);
                self.report_names(caller, &dir, &[name]);
                (inode, st, file, ttl())
            }
        };
        let entry = Entry {
            attr: self.attr(&st),
            ttl,
        };
        let opened = self.new_open_file(caller, inode, file, flags, open_backing)?;
        Ok((entry, opened))
    }

    fn new_open_file(
        &self,
        caller: &Caller,
        inode: Arc<Inode>,
        file: OwnedFd,
        flags: i32,
        open_backing: impl FnOnce(BorrowedFd<'_>) -> std::io::Result<BackingId>,
    ) -> Result<Opened> {
        self.shared.inodes.opened(&inode, file.as_fd())?;
        let backing = self.backing_for(&inode, file.as_fd(), open_backing);
        let writable = is_writable(flags);
        let engine = self.engine(caller).is_some();
        if writable {
            inode.writers.fetch_add(1, Ordering::Relaxed);
            if !engine {
                inode.user_writers.fetch_add(1, Ordering::Relaxed);
                self.shared.bump(&inode);
            }
        }
        let fh = self.add_handle(Handle::File(OpenFile {
            inode,
            file,
            writable,
            engine,
            _backing: backing.clone(),
        }));
        Ok(Opened { fh, backing })
    }

    /// Opens the kernel passthrough for `file`, sharing one backing per inode.
    fn backing_for(
        &self,
        inode: &Inode,
        file: BorrowedFd<'_>,
        open_backing: impl FnOnce(BorrowedFd<'_>) -> std::io::Result<BackingId>,
    ) -> Option<Arc<BackingId>> {
        if !self.shared.passthrough.load(Ordering::Relaxed) {
            return None;
        }
        let mut slot = inode.backing.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = slot.upgrade() {
            return Some(existing);
        }
        match open_backing(file) {
            Ok(id) => {
                let id = Arc::new(id);
                *slot = Arc::downgrade(&id);
                Some(id)
            }
            Err(err) => {
                if self.shared.passthrough.swap(false, Ordering::Relaxed) {
                    tracing::warn!(
                        "kernel passthrough unavailable ({err}); file data goes through the daemon"
                    );
                }
                None
            }
        }
    }

    pub(crate) fn read(&self, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>> {
        self.with_file(fh, |f| {
            let mut buf = vec![0u8; size as usize];
            let n = sys::pread(f.file.as_fd(), &mut buf, offset)?;
            buf.truncate(n);
            Ok(buf)
        })
    }

    pub(crate) fn write(&self, fh: u64, offset: u64, data: &[u8]) -> Result<u32> {
        self.with_file(
            fh,
            |f| Ok(sys::pwrite(f.file.as_fd(), data, offset)? as u32),
        )
    }

    /// A handle is closed; a user's written file is reported now.
    pub(crate) fn release(&self, fh: u64) {
        let Some(handle) = self.lock_handles().remove(&fh) else {
            return;
        };
        let Handle::File(f) = &*handle else {
            return;
        };
        self.shared.inodes.released(&f.inode);
        if f.writable {
            f.inode.writers.fetch_sub(1, Ordering::Relaxed);
            if !f.engine {
                let shared = &self.shared;
                if let Some(path) = super::inodes::path_in(&shared.root, &f.file) {
                    shared.report(vec![path]);
                }
                shared.bump(&f.inode);
                f.inode.user_writers.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn fsync(&self, fh: u64, datasync: bool) -> Result<()> {
        self.with_file(fh, |f| Ok(sys::fsync(f.file.as_fd(), datasync)?))
    }

    pub(crate) fn opendir(&self, ino: u64) -> Result<u64> {
        let inode = self.inode(ino)?;
        let stream = DirStream::open(self.shared.inodes.fd(&inode)?.as_fd())?;
        Ok(self.add_handle(Handle::Dir(Mutex::new(stream))))
    }

    /// Lists `ino` from `offset`, handing each entry to `add` until it says the reply is
    /// full (`true`).
    pub(crate) fn readdir(
        &self,
        ino: u64,
        fh: u64,
        offset: u64,
        mut add: impl FnMut(u64, u64, FileType, &OsStr) -> bool,
    ) -> Result<()> {
        let inodes = &self.shared.inodes;
        self.read_dir(ino, fh, offset, |entry| {
            Ok(add(
                inodes.fuse_ino(entry.ino),
                entry.next_offset,
                kind_of_dirent(entry.kind),
                OsStr::from_bytes(&entry.name),
            ))
        })
    }

    /// Lists `ino` with each entry's attributes, recording the lookups the reply hands to
    /// the kernel (`add` says whether the reply is full: that entry was not sent).
    pub(crate) fn readdirplus(
        &self,
        ino: u64,
        fh: u64,
        offset: u64,
        mut add: impl FnMut(&OsStr, u64, &FileAttr) -> bool,
    ) -> Result<()> {
        let dir = self.inode(ino)?;
        let inodes = &self.shared.inodes;
        self.read_dir(ino, fh, offset, |entry| {
            let name = OsStr::from_bytes(&entry.name);
            if name == "." || name == ".." {
                // The kernel takes no lookup for these; only their inode number matters.
                let attr = FileAttr {
                    ino: INodeNo(inodes.fuse_ino(entry.ino)),
                    kind: FileType::Directory,
                    ..self.stat_inode(&dir)?
                };
                return Ok(add(name, entry.next_offset, &attr));
            }
            // An entry that vanished since it was listed is skipped, not an error.
            let Ok((inode, st)) = inodes.lookup(&dir, name) else {
                return Ok(false);
            };
            let full = add(name, entry.next_offset, &self.attr(&st));
            if full {
                // Not sent: the kernel holds no lookup for it.
                inodes.forget(inode.ino, 1);
            }
            Ok(full)
        })
    }

    fn read_dir(
        &self,
        ino: u64,
        fh: u64,
        offset: u64,
        mut add: impl FnMut(&sys::DirEntry) -> Result<bool>,
    ) -> Result<()> {
        let handle = self.handle(fh)?;
        let Handle::Dir(stream) = &*handle else {
            return Err(Errno::ENOTDIR);
        };
        let mut stream = stream.lock().unwrap_or_else(|e| e.into_inner());
        stream.seek(offset);
        while let Some(entry) = stream.next_entry()? {
            if ino == ROOT && entry.name == HIDDEN.as_bytes() {
                continue;
            }
            if add(&entry)? {
                break;
            }
        }
        Ok(())
    }

    pub(crate) fn releasedir(&self, fh: u64) {
        self.lock_handles().remove(&fh);
    }

    pub(crate) fn fsyncdir(&self, fh: u64, datasync: bool) -> Result<()> {
        match &*self.handle(fh)? {
            Handle::Dir(stream) => {
                let stream = stream.lock().unwrap_or_else(|e| e.into_inner());
                Ok(sys::fsync(stream.fd(), datasync)?)
            }
            Handle::File(_) => Err(Errno::ENOTDIR),
        }
    }

    pub(crate) fn statfs(&self, ino: u64) -> Result<libc::statvfs> {
        let inode = self.inode(ino)?;
        Ok(sys::fstatvfs(self.shared.inodes.fd(&inode)?.as_fd())?)
    }

    pub(crate) fn setxattr(
        &self,
        caller: &Caller,
        ino: u64,
        name: &OsStr,
        value: &[u8],
        flags: i32,
    ) -> Result<()> {
        let inode = self.xattr_inode(ino)?;
        let fd = self.shared.inodes.fd(&inode)?;
        sys::setxattr(fd.as_fd(), &xattr_name(name)?, value, flags)?;
        self.report_inode(caller, &inode);
        Ok(())
    }

    pub(crate) fn getxattr(&self, ino: u64, name: &OsStr, size: u32) -> Result<Xattr> {
        let inode = self.xattr_inode(ino)?;
        let fd = self.shared.inodes.fd(&inode)?;
        let mut buf = vec![0u8; size as usize];
        let n = sys::getxattr(fd.as_fd(), &xattr_name(name)?, &mut buf)?;
        Ok(xattr_reply(size, n, buf))
    }

    pub(crate) fn listxattr(&self, ino: u64, size: u32) -> Result<Xattr> {
        let inode = self.inode(ino)?;
        if !inode.has_xattrs() {
            return Ok(xattr_reply(size, 0, Vec::new()));
        }
        let fd = self.shared.inodes.fd(&inode)?;
        let mut buf = vec![0u8; size as usize];
        let n = sys::listxattr(fd.as_fd(), &mut buf)?;
        Ok(xattr_reply(size, n, buf))
    }

    pub(crate) fn removexattr(&self, caller: &Caller, ino: u64, name: &OsStr) -> Result<()> {
        let inode = self.xattr_inode(ino)?;
        let fd = self.shared.inodes.fd(&inode)?;
        sys::removexattr(fd.as_fd(), &xattr_name(name)?)?;
        self.report_inode(caller, &inode);
        Ok(())
    }

    fn xattr_inode(&self, ino: u64) -> Result<Arc<Inode>> {
        let inode = self.inode(ino)?;
        if inode.has_xattrs() {
            Ok(inode)
        } else {
            Err(Errno::EOPNOTSUPP)
        }
    }

    /// The kernel checks permissions (default_permissions); only existence is ours.
    pub(crate) fn access(&self, ino: u64) -> Result<()> {
        self.inode(ino).map(drop)
    }

    pub(crate) fn fallocate(&self, fh: u64, offset: u64, length: u64, mode: i32) -> Result<()> {
        self.with_file(fh, |f| {
            sys::fallocate(f.file.as_fd(), mode, offset, length)?;
            if !f.engine {
                self.shared.bump(&f.inode);
            }
            Ok(())
        })
    }

    pub(crate) fn lseek(&self, fh: u64, offset: i64, whence: i32) -> Result<i64> {
        self.with_file(fh, |f| Ok(sys::lseek(f.file.as_fd(), offset, whence)?))
    }

    pub(crate) fn copy_file_range(
        &self,
        (fh_in, offset_in): (u64, u64),
        (fh_out, offset_out): (u64, u64),
        len: u64,
    ) -> Result<u32> {
        self.with_file(fh_in, |input| {
            self.with_file(fh_out, |output| {
                let len = len.min(u32::MAX as u64 & !0xfff) as usize;
                let n = sys::copy_file_range(
                    input.file.as_fd(),
                    offset_in,
                    output.file.as_fd(),
                    offset_out,
                    len,
                )?;
                Ok(n as u32)
            })
        })
    }
}

fn xattr_reply(size: u32, n: usize, mut buf: Vec<u8>) -> Xattr {
    if size == 0 {
        Xattr::Size(n as u32)
    } else {
        buf.truncate(n);
        Xattr::Data(buf)
    }
}

fn xattr_name(name: &OsStr) -> Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| Errno::EINVAL)
}

fn is_writable(flags: i32) -> bool {
    flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0
}

fn kind_of_mode(mode: u32) -> FileType {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => FileType::Directory,
        libc::S_IFLNK => FileType::Symlink,
        libc::S_IFIFO => FileType::NamedPipe,
        libc::S_IFCHR => FileType::CharDevice,
        libc::S_IFBLK => FileType::BlockDevice,
        libc::S_IFSOCK => FileType::Socket,
        _ => FileType::RegularFile,
    }
}

fn kind_of_dirent(d_type: u8) -> FileType {
    match d_type {
        libc::DT_DIR => FileType::Directory,
        libc::DT_LNK => FileType::Symlink,
        libc::DT_FIFO => FileType::NamedPipe,
        libc::DT_CHR => FileType::CharDevice,
        libc::DT_BLK => FileType::BlockDevice,
        libc::DT_SOCK => FileType::Socket,
        _ => FileType::RegularFile,
    }
}

fn timespec(time: Option<TimeOrNow>) -> libc::timespec {
    match time {
        None => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        Some(TimeOrNow::Now) => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        Some(TimeOrNow::SpecificTime(t)) => {
            let (secs, nanos) = match t.duration_since(SystemTime::UNIX_EPOCH) {
                Ok(d) => (d.as_secs() as i64, d.subsec_nanos() as i64),
                Err(e) => {
                    let d = e.duration();
                    if d.subsec_nanos() == 0 {
                        (-(d.as_secs() as i64), 0)
                    } else {
                        (
                            -(d.as_secs() as i64) - 1,
                            1_000_000_000 - d.subsec_nanos() as i64,
                        )
                    }
                }
            };
            libc::timespec {
                tv_sec: secs,
                tv_nsec: nanos,
            }
        }
    }
}

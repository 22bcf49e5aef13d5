//! The passthrough filesystem: every request becomes the same operation on the backing
//! workspace, relative to a directory handle, as the calling user, returning the backing
//! filesystem's own errno. The workspace's `.jj` is invisible and cannot be created.
//!
//! Requests made by the daemon itself (the sync engine writing another mount's change into
//! this one) are recognised by their thread id and are not reported back as user changes.

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    AccessFlags, BackingId, CopyFileRangeFlags, Errno, FileAttr, FileHandle, FileType, Filesystem,
    FopenFlags, Generation, INodeNo, InitFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags,
    ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry,
    ReplyLseek, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use super::ChangeSink;
use super::inodes::{Inode, InodeTable, ROOT};
use super::sys::{self, Credentials, DirStream};
use super::update::{Name, OwnView, Updates};

/// The name hidden at the root of every mount.
pub const HIDDEN: &str = ".jj";

type Result<T> = std::result::Result<T, Errno>;

fn errno(err: std::io::Error) -> Errno {
    Errno::from(err)
}

/// How long the kernel may trust names and attributes without asking again. Changes made
/// through the mount keep the kernel's caches true; changes made directly in the backing
/// directory are invalidated by the mount's owner (see `Mount::invalidate`).
pub const TTL: Duration = Duration::from_secs(1);

/// Open files need no FLUSH round trip on close: writes reach the backing file as they are
/// made, and a user's change is reported when its handle is released.
const OPEN_FLAGS: FopenFlags = FopenFlags::FOPEN_NOFLUSH;

/// The attribute changes of one setattr request.
struct SetAttr {
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    size: Option<u64>,
    atime: Option<TimeOrNow>,
    mtime: Option<TimeOrNow>,
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
    own: bool,
    _backing: Option<Arc<BackingId>>,
}

/// State shared between the filesystem (on FUSE threads) and its `Mount`.
pub struct Shared {
    pub inodes: InodeTable,
    /// Canonical path of the backing workspace.
    pub root: PathBuf,
    /// Kernel passthrough for file data: negotiated at init, disabled if opening a backing
    /// file fails.
    pub passthrough: AtomicBool,
    /// Counts user changes; each changed inode remembers the count of its last change.
    pub changes: AtomicU64,
    pub sink: Arc<dyn ChangeSink>,
    /// The sync engine's writes into this mount.
    pub updates: Updates,
    /// Tells the kernel to drop cached names (set once the session exists).
    pub notifier: std::sync::OnceLock<fuser::Notifier>,
}

impl Shared {
    /// The workspace-relative path of `name` in directory `dir`, if it is still reachable.
    fn rel_path(&self, dir: &Inode, name: &OsStr) -> Option<PathBuf> {
        let dir_path = self.rel_of_fd(dir.fd().as_raw_fd())?;
        Some(dir_path.join(name))
    }

    /// The workspace-relative path of an open fd (None if deleted or outside the root).
    fn rel_of_fd(&self, fd: i32) -> Option<PathBuf> {
        let path = sys::fd_path(fd).ok()?;
        if path.as_os_str().as_bytes().ends_with(b" (deleted)") {
            return None;
        }
        path.strip_prefix(&self.root).ok().map(Path::to_owned)
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
}

pub struct PassthroughFs {
    shared: Arc<Shared>,
    want_passthrough: bool,
    handles: Mutex<HashMap<u64, Arc<Handle>>>,
    next_fh: AtomicU64,
}

impl PassthroughFs {
    pub fn new(shared: Arc<Shared>, want_passthrough: bool) -> Self {
        Self {
            shared,
            want_passthrough,
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
        }
    }

    fn inode(&self, ino: INodeNo) -> Result<Arc<Inode>> {
        self.shared.inodes.get(ino.0).ok_or(Errno::ESTALE)
    }

    fn handle(&self, fh: FileHandle) -> Result<Arc<Handle>> {
        self.lock_handles().get(&fh.0).cloned().ok_or(Errno::EBADF)
    }

    fn file(&self, fh: FileHandle) -> Result<Arc<Handle>> {
        let handle = self.handle(fh)?;
        match &*handle {
            Handle::File(_) => Ok(handle),
            Handle::Dir(_) => Err(Errno::EISDIR),
        }
    }

    fn lock_handles(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Handle>>> {
        self.handles.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add_handle(&self, handle: Handle) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.lock_handles().insert(fh, Arc::new(handle));
        fh
    }

    /// `.jj` at the root: never shown, never created.
    fn is_hidden(parent: INodeNo, name: &OsStr) -> bool {
        parent.0 == ROOT && name.as_bytes() == HIDDEN.as_bytes()
    }

    /// Whether the request comes from the sync engine writing into this mount.
    fn is_own(&self, req: &Request) -> bool {
        self.shared.updates.is_own(req.pid())
    }

    fn attr(&self, st: &libc::stat) -> FileAttr {
        let time = |s: i64, ns: i64| {
            if s >= 0 {
                UNIX_EPOCH + Duration::new(s as u64, ns as u32)
            } else {
                UNIX_EPOCH - Duration::new((-s) as u64, 0) + Duration::from_nanos(ns as u64)
            }
        };
        FileAttr {
            ino: INodeNo(self.shared.inodes.fuse_ino(st.st_ino)),
            size: st.st_size as u64,
            blocks: st.st_blocks as u64,
            atime: time(st.st_atime, st.st_atime_nsec),
            mtime: time(st.st_mtime, st.st_mtime_nsec),
            ctime: time(st.st_ctime, st.st_ctime_nsec),
            crtime: UNIX_EPOCH,
            kind: kind_of_mode(st.st_mode),
            perm: (st.st_mode & 0o7777) as u16,
            nlink: st.st_nlink as u32,
            uid: st.st_uid,
            gid: st.st_gid,
            rdev: st.st_rdev as u32,
            blksize: st.st_blksize as u32,
            flags: 0,
        }
    }

    /// Looks `name` up in `parent` and records the lookup the reply hands to the kernel.
    fn lookup_entry(&self, parent: &Inode, name: &OsStr) -> Result<(Arc<Inode>, FileAttr)> {
        let cname = sys::cname(name).map_err(errno)?;
        self.lookup_in(parent.fd(), &cname)
    }

    fn lookup_in(&self, parent: BorrowedFd<'_>, cname: &CString) -> Result<(Arc<Inode>, FileAttr)> {
        let fd = sys::open_path(parent, cname).map_err(errno)?;
        let st = sys::fstat(fd.as_fd()).map_err(errno)?;
        let attr = self.attr(&st);
        // An inode already known keeps its handle; the new one is dropped.
        let inode = self.shared.inodes.remember(fd, &st);
        Ok((inode, attr))
    }

    fn stat_inode(&self, inode: &Inode) -> Result<FileAttr> {
        sys::fstat(inode.fd())
            .map(|st| self.attr(&st))
            .map_err(errno)
    }

    // A user's change is reported first and counted second, so that a sync which reads the
    // count and then drains its reports has seen every change it counts (see `update`).

    /// Reports `names` in `parent` changed by a user (not by the daemon's own sync) and
    /// counts the change on whatever is at those names now.
    fn report_name(&self, req: &Request, parent: &Inode, names: &[&OsStr]) {
        if self.is_own(req) {
            return;
        }
        let paths = names
            .iter()
            .filter_map(|name| self.shared.rel_path(parent, name))
            .collect();
        self.shared.report(paths);
        for name in names {
            if let Ok(cname) = sys::cname(name)
                && let Ok(st) = sys::statat(parent.fd(), &cname)
                && let Some(inode) = self
                    .shared
                    .inodes
                    .get(self.shared.inodes.fuse_ino(st.st_ino))
            {
                self.shared.bump(&inode);
            }
        }
    }

    fn report_inode(&self, req: &Request, inode: &Inode) {
        if self.is_own(req) {
            return;
        }
        if let Some(path) = self.shared.rel_of_fd(inode.fd().as_raw_fd()) {
            self.shared.report(vec![path]);
        }
        self.shared.bump(inode);
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

    fn new_open_file(
        &self,
        req: &Request,
        inode: Arc<Inode>,
        file: OwnedFd,
        flags: i32,
        backing: Option<Arc<BackingId>>,
    ) -> u64 {
        let writable = is_writable(flags);
        let own = self.is_own(req);
        if writable {
            inode.writers.fetch_add(1, Ordering::Relaxed);
            if !own {
                inode.user_writers.fetch_add(1, Ordering::Relaxed);
                self.shared.bump(&inode);
            }
        }
        self.add_handle(Handle::File(OpenFile {
            inode,
            file,
            writable,
            own,
            _backing: backing,
        }))
    }

    fn do_setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        change: SetAttr,
        fh: Option<FileHandle>,
    ) -> Result<FileAttr> {
        let SetAttr {
            mode,
            uid,
            gid,
            size,
            atime,
            mtime,
        } = change;
        let inode = self.inode(ino)?;
        let own_temp = if self.is_own(req) {
            let updates = &self.shared.updates;
            updates.check_not_tripped()?;
            let temp = self.temp_name_of(&inode);
            if temp.is_none() {
                updates.fence_check_inode(&inode)?;
            }
            temp
        } else {
            None
        };
        let handle = fh.and_then(|fh| self.handle(fh).ok());
        let open_fd = handle.as_deref().and_then(|h| match h {
            Handle::File(f) => Some(f.file.as_fd()),
            Handle::Dir(_) => None,
        });
        if let Some(mode) = mode {
            sys::chmod_fd(inode.fd(), mode & 0o7777).map_err(errno)?;
        }
        if uid.is_some() || gid.is_some() {
            sys::chown_fd(inode.fd(), uid, gid).map_err(errno)?;
        }
        if let Some(size) = size {
            match open_fd {
                Some(fd) => sys::ftruncate(fd, size).map_err(errno)?,
                None => {
                    let _creds = Credentials::assume(req.uid(), req.gid());
                    let fd = sys::reopen(inode.fd(), libc::O_WRONLY).map_err(errno)?;
                    sys::ftruncate(fd.as_fd(), size).map_err(errno)?;
                }
            }
        }
        if atime.is_some() || mtime.is_some() {
            let times = [timespec(atime), timespec(mtime)];
            match open_fd {
                Some(fd) => sys::futimens(fd, &times).map_err(errno)?,
                None => sys::utimens_fd(inode.fd(), &times).map_err(errno)?,
            }
        }
        if let Some(temp) = own_temp
            && mode.is_some()
        {
            // The sync sets a new file's mode last: it is complete and goes in place.
            self.shared
                .updates
                .complete(&self.shared.inodes, self.shared.notifier.get(), &temp);
        }
        if mode.is_some() || uid.is_some() || gid.is_some() || size.is_some() {
            self.report_inode(req, &inode);
        }
        self.stat_inode(&inode)
    }

    fn do_create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        flags: i32,
    ) -> Result<(Arc<Inode>, FileAttr, OwnedFd)> {
        if Self::is_hidden(parent, name) {
            return Err(Errno::EPERM);
        }
        let dir = self.inode(parent)?;
        let cname = sys::cname(name).map_err(errno)?;
        let file = {
            let _creds = Credentials::assume(req.uid(), req.gid());
            sys::openat(
                dir.fd(),
                &cname,
                (flags | libc::O_CREAT) & !libc::O_NOFOLLOW,
                mode,
            )
            .map_err(errno)?
        };
        let path_fd = sys::reopen_path(file.as_fd()).map_err(errno)?;
        let st = sys::fstat(path_fd.as_fd()).map_err(errno)?;
        let attr = self.attr(&st);
        let inode = self.shared.inodes.remember(path_fd, &st);
        self.report_name(req, &dir, &[name]);
        Ok((inode, attr, file))
    }

    /// mkdir, mknod and symlink: create as the caller, then look the new entry up.
    fn make_node(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        make: impl FnOnce(BorrowedFd<'_>, &CString) -> std::io::Result<()>,
    ) -> Result<FileAttr> {
        if Self::is_hidden(parent, name) {
            return Err(Errno::EPERM);
        }
        let dir = self.inode(parent)?;
        let cname = sys::cname(name).map_err(errno)?;
        if self.is_own(req) {
            let updates = &self.shared.updates;
            updates.check_not_tripped()?;
            updates.undefer(&self.shared.inodes, &dir, name)?;
        }
        {
            let _creds = Credentials::assume(req.uid(), req.gid());
            make(dir.fd(), &cname).map_err(errno)?;
        }
        let (_, attr) = self.lookup_entry(&dir, name)?;
        self.report_name(req, &dir, &[name]);
        Ok(attr)
    }

    fn read_dir(
        &self,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut add: impl FnMut(&sys::DirEntry) -> Result<bool>,
    ) -> Result<()> {
        let handle = self.handle(fh)?;
        let Handle::Dir(stream) = &*handle else {
            return Err(Errno::ENOTDIR);
        };
        let mut stream = stream.lock().unwrap_or_else(|e| e.into_inner());
        stream.seek(offset);
        while let Some(entry) = stream.next_entry().map_err(errno)? {
            if ino.0 == ROOT && entry.name == HIDDEN.as_bytes() {
                continue;
            }
            if add(&entry)? {
                break;
            }
        }
        Ok(())
    }

    fn with_file<T>(&self, fh: FileHandle, f: impl FnOnce(&OpenFile) -> Result<T>) -> Result<T> {
        let handle = self.file(fh)?;
        let Handle::File(file) = &*handle else {
            unreachable!("file() returns file handles")
        };
        f(file)
    }
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

impl Filesystem for PassthroughFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Not FUSE_ATOMIC_O_TRUNC: with it the daemon would truncate before the kernel has
        // checked the open (a running program's file opened with O_TRUNC got emptied).
        let _ = config.add_capabilities(
            InitFlags::FUSE_DO_READDIRPLUS
                | InitFlags::FUSE_READDIRPLUS_AUTO
                | InitFlags::FUSE_PARALLEL_DIROPS
                | InitFlags::FUSE_AUTO_INVAL_DATA
                | InitFlags::FUSE_CACHE_SYMLINKS,
        );
        let passthrough = self.want_passthrough
            && config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
            && config.set_max_stack_depth(1).is_ok();
        self.shared
            .passthrough
            .store(passthrough, Ordering::Relaxed);
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if Self::is_hidden(parent, name) || (parent.0 == ROOT && name == "..") {
            return reply.error(Errno::ENOENT);
        }
        let result = self.inode(parent).and_then(|dir| {
            let updates = &self.shared.updates;
            if self.is_own(req) {
                match updates.own_view(parent.0, name) {
                    OwnView::Temp(temp) => {
                        let (_, attr) = self.lookup_in(updates.temp_dir(), &temp)?;
                        return Ok((attr, Duration::ZERO));
                    }
                    OwnView::Removed => return Err(Errno::ENOENT),
                    OwnView::Normal => {}
                }
            }
            let (_, attr) = self.lookup_entry(&dir, name)?;
            // A name the sync is replacing must be looked up again, not cached.
            let entry_ttl = if updates.is_in_flux(parent.0, name) {
                Duration::ZERO
            } else {
                TTL
            };
            Ok((attr, entry_ttl))
        });
        match result {
            Ok((attr, entry_ttl)) => reply.entry_with_ttls(&TTL, &entry_ttl, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.shared.inodes.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let result = match fh.and_then(|fh| self.handle(fh).ok()) {
            Some(handle) => match &*handle {
                Handle::File(f) => sys::fstat(f.file.as_fd())
                    .map(|st| self.attr(&st))
                    .map_err(errno),
                Handle::Dir(_) => self.inode(ino).and_then(|i| self.stat_inode(&i)),
            },
            None => self.inode(ino).and_then(|i| self.stat_inode(&i)),
        };
        match result {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let change = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime,
            mtime,
        };
        match self.do_setattr(req, ino, change, fh) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self
            .inode(ino)
            .and_then(|i| sys::readlink(i.fd()).map_err(errno))
        {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        match self.make_node(req, parent, name, |dir, cname| {
            sys::mknodat(dir, cname, mode, rdev as u64)
        }) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        match self.make_node(req, parent, name, |dir, cname| {
            sys::mkdirat(dir, cname, mode)
        }) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let Ok(target) = CString::new(target.as_os_str().as_bytes()) else {
            return reply.error(Errno::EINVAL);
        };
        match self.make_node(req, parent, link_name, |dir, cname| {
            sys::symlinkat(&target, dir, cname)
        }) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(req, parent, name, false, reply);
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(req, parent, name, true, reply);
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if Self::is_hidden(parent, name) {
            return reply.error(Errno::ENOENT);
        }
        if Self::is_hidden(newparent, newname) {
            return reply.error(Errno::EPERM);
        }
        let result = (|| {
            let (from, to) = (self.inode(parent)?, self.inode(newparent)?);
            let (old, new) = (
                sys::cname(name).map_err(errno)?,
                sys::cname(newname).map_err(errno)?,
            );
            if self.is_own(req) {
                let updates = &self.shared.updates;
                updates.check_not_tripped()?;
                updates.fence_check(&self.shared.inodes, &from, name)?;
                updates.fence_check(&self.shared.inodes, &to, newname)?;
                updates.undefer(&self.shared.inodes, &to, newname)?;
            }
            sys::renameat2(from.fd(), &old, to.fd(), &new, flags.bits()).map_err(errno)?;
            self.report_name(req, &from, &[name]);
            self.report_name(req, &to, &[newname]);
            if !self.is_own(req) && !flags.contains(RenameFlags::RENAME_EXCHANGE) {
                let at = self.shared.next_change();
                self.shared.updates.note_user_removal(from.ino, name, at);
            }
            Ok(())
        })();
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn link(
        &self,
        req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        if Self::is_hidden(newparent, newname) {
            return reply.error(Errno::EPERM);
        }
        let result = (|| {
            let (inode, dir) = (self.inode(ino)?, self.inode(newparent)?);
            let cname = sys::cname(newname).map_err(errno)?;
            sys::link_fd(inode.fd(), dir.fd(), &cname).map_err(errno)?;
            let (_, attr) = self.lookup_entry(&dir, newname)?;
            self.report_name(req, &dir, &[newname]);
            Ok(attr)
        })();
        match result {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let result = (|| {
            let inode = self.inode(ino)?;
            let file = sys::reopen(inode.fd(), flags.0).map_err(errno)?;
            Ok((inode, file))
        })();
        match result {
            Ok((inode, file)) => {
                let backing = self.backing_for(&inode, file.as_fd(), |fd| reply.open_backing(fd));
                let fh = self.new_open_file(req, inode, file, flags.0, backing.clone());
                match backing {
                    Some(id) => reply.opened_passthrough(FileHandle(fh), OPEN_FLAGS, &id),
                    None => reply.opened(FileHandle(fh), OPEN_FLAGS),
                }
            }
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let own = self.is_own(req);
        let created = if own {
            self.own_create(parent, name, mode, flags)
        } else {
            self.do_create(req, parent, name, mode, flags)
        };
        match created {
            Ok((inode, attr, file)) => {
                let backing = self.backing_for(&inode, file.as_fd(), |fd| reply.open_backing(fd));
                let fh = self.new_open_file(req, inode, file, flags, backing.clone());
                // The sync's new file is not in place yet: the kernel must not cache its name.
                let ttl = if own { Duration::ZERO } else { TTL };
                match backing {
                    Some(id) => reply.created_passthrough(
                        &ttl,
                        &attr,
                        Generation(0),
                        FileHandle(fh),
                        OPEN_FLAGS,
                        &id,
                    ),
                    None => reply.created(&ttl, &attr, Generation(0), FileHandle(fh), OPEN_FLAGS),
                }
            }
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let result = self.with_file(fh, |f| {
            let mut buf = vec![0u8; size as usize];
            let n = sys::pread(f.file.as_fd(), &mut buf, offset).map_err(errno)?;
            buf.truncate(n);
            Ok(buf)
        });
        match result {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.with_file(fh, |f| {
            sys::pwrite(f.file.as_fd(), data, offset).map_err(errno)
        }) {
            Ok(n) => reply.written(n as u32),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let handle = self.lock_handles().remove(&fh.0);
        if let Some(handle) = handle
            && let Handle::File(f) = &*handle
            && f.writable
        {
            f.inode.writers.fetch_sub(1, Ordering::Relaxed);
            if !f.own {
                if let Some(path) = self.shared.rel_of_fd(f.file.as_raw_fd()) {
                    self.shared.report(vec![path]);
                }
                self.shared.bump(&f.inode);
                f.inode.user_writers.fetch_sub(1, Ordering::Relaxed);
            }
        }
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.with_file(fh, |f| sys::fsync(f.file.as_fd(), datasync).map_err(errno)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self
            .inode(ino)
            .and_then(|i| DirStream::open(i.fd()).map_err(errno))
        {
            Ok(stream) => {
                let fh = self.add_handle(Handle::Dir(Mutex::new(stream)));
                reply.opened(FileHandle(fh), FopenFlags::empty());
            }
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let inodes = &self.shared.inodes;
        let result = self.read_dir(ino, fh, offset, |entry| {
            Ok(reply.add(
                INodeNo(inodes.fuse_ino(entry.ino)),
                entry.next_offset,
                kind_of_dirent(entry.kind),
                OsStr::from_bytes(&entry.name),
            ))
        });
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let dir = match self.inode(ino) {
            Ok(dir) => dir,
            Err(e) => return reply.error(e),
        };
        let result = self.read_dir(ino, fh, offset, |entry| {
            let name = OsStr::from_bytes(&entry.name);
            if name == "." || name == ".." {
                // The kernel takes no lookup for these; only their inode number matters.
                let attr = FileAttr {
                    ino: INodeNo(self.shared.inodes.fuse_ino(entry.ino)),
                    kind: FileType::Directory,
                    ..self.stat_inode(&dir)?
                };
                return Ok(reply.add(
                    attr.ino,
                    entry.next_offset,
                    name,
                    &TTL,
                    &attr,
                    Generation(0),
                ));
            }
            // An entry that vanished since it was listed is skipped, not an error.
            let Ok((inode, attr)) = self.lookup_entry(&dir, name) else {
                return Ok(false);
            };
            let full = reply.add(
                attr.ino,
                entry.next_offset,
                name,
                &TTL,
                &attr,
                Generation(0),
            );
            if full {
                // Not sent: the kernel holds no lookup for it.
                self.shared.inodes.forget(inode.ino, 1);
            }
            Ok(full)
        });
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.lock_handles().remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let result = self.handle(fh).and_then(|h| match &*h {
            Handle::Dir(stream) => {
                let stream = stream.lock().unwrap_or_else(|e| e.into_inner());
                sys::fsync(stream.fd(), datasync).map_err(errno)
            }
            Handle::File(_) => Err(Errno::ENOTDIR),
        });
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        match self
            .inode(ino)
            .and_then(|i| sys::fstatvfs(i.fd()).map_err(errno))
        {
            Ok(st) => reply.statfs(
                st.f_blocks,
                st.f_bfree,
                st.f_bavail,
                st.f_files,
                st.f_ffree,
                st.f_bsize as u32,
                st.f_namemax as u32,
                st.f_frsize as u32,
            ),
            Err(e) => reply.error(e),
        }
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let result = self.xattr_inode(ino).and_then(|inode| {
            let cname = xattr_name(name)?;
            sys::setxattr(inode.fd(), &cname, value, flags).map_err(errno)?;
            self.report_inode(req, &inode);
            Ok(())
        });
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let result = self.xattr_inode(ino).and_then(|inode| {
            let cname = xattr_name(name)?;
            let mut buf = vec![0u8; size as usize];
            let n = sys::getxattr(inode.fd(), &cname, &mut buf).map_err(errno)?;
            buf.truncate(n);
            Ok((n, buf))
        });
        match result {
            Ok((n, _)) if size == 0 => reply.size(n as u32),
            Ok((_, buf)) => reply.data(&buf),
            Err(e) => reply.error(e),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let result = self.inode(ino).and_then(|inode| {
            if !self.xattrs_supported(&inode) {
                return Ok((0, Vec::new()));
            }
            let mut buf = vec![0u8; size as usize];
            let n = sys::listxattr(inode.fd(), &mut buf).map_err(errno)?;
            buf.truncate(n);
            Ok((n, buf))
        });
        match result {
            Ok((n, _)) if size == 0 => reply.size(n as u32),
            Ok((_, buf)) => reply.data(&buf),
            Err(e) => reply.error(e),
        }
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let result = self.xattr_inode(ino).and_then(|inode| {
            let cname = xattr_name(name)?;
            sys::removexattr(inode.fd(), &cname).map_err(errno)?;
            self.report_inode(req, &inode);
            Ok(())
        });
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        // The kernel checks permissions (default_permissions); only existence is ours.
        match self.inode(ino) {
            Ok(_) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: fuser::IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: fuser::ReplyIoctl,
    ) {
        // Files are not terminals (isatty asks this on every open by some runtimes).
        reply.error(Errno::from_i32(libc::ENOTTY));
    }

    fn fallocate(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let result = self.with_file(fh, |f| {
            sys::fallocate(f.file.as_fd(), mode, offset, length).map_err(errno)?;
            if !f.own {
                self.shared.bump(&f.inode);
            }
            let _ = req;
            Ok(())
        });
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn lseek(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        match self.with_file(fh, |f| {
            sys::lseek(f.file.as_fd(), offset, whence).map_err(errno)
        }) {
            Ok(off) => reply.offset(off),
            Err(e) => reply.error(e),
        }
    }

    fn copy_file_range(
        &self,
        _req: &Request,
        _ino_in: INodeNo,
        fh_in: FileHandle,
        offset_in: u64,
        _ino_out: INodeNo,
        fh_out: FileHandle,
        offset_out: u64,
        len: u64,
        _flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        let result = self.with_file(fh_in, |input| {
            self.with_file(fh_out, |output| {
                let len = len.min(u32::MAX as u64 & !0xfff) as usize;
                sys::copy_file_range(
                    input.file.as_fd(),
                    offset_in,
                    output.file.as_fd(),
                    offset_out,
                    len,
                )
                .map_err(errno)
            })
        });
        match result {
            Ok(n) => reply.written(n as u32),
            Err(e) => reply.error(e),
        }
    }
}

impl PassthroughFs {
    fn remove(&self, req: &Request, parent: INodeNo, name: &OsStr, rmdir: bool, reply: ReplyEmpty) {
        if Self::is_hidden(parent, name) {
            return reply.error(Errno::ENOENT);
        }
        let result = (|| {
            let dir = self.inode(parent)?;
            if self.is_own(req) {
                return self.own_remove(&dir, name, rmdir);
            }
            let cname = sys::cname(name).map_err(errno)?;
            // The path must be resolved before the entry is gone.
            let path = self.shared.rel_path(&dir, name);
            sys::unlinkat(dir.fd(), &cname, rmdir).map_err(errno)?;
            if let Some(path) = path {
                self.shared.report(vec![path]);
            }
            let at = self.shared.next_change();
            self.shared.updates.note_user_removal(dir.ino, name, at);
            Ok(())
        })();
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    /// Regular files and directories carry extended attributes; through `O_PATH` handles of
    /// other kinds the calls would act on the wrong object.
    fn xattrs_supported(&self, inode: &Inode) -> bool {
        sys::fstat(inode.fd())
            .map(|st| matches!(st.st_mode & libc::S_IFMT, libc::S_IFREG | libc::S_IFDIR))
            .unwrap_or(false)
    }

    fn xattr_inode(&self, ino: INodeNo) -> Result<Arc<Inode>> {
        let inode = self.inode(ino)?;
        if self.xattrs_supported(&inode) {
            Ok(inode)
        } else {
            Err(Errno::EOPNOTSUPP)
        }
    }
}

/// The sync engine's requests (see `update`).
impl PassthroughFs {
    /// The sync's new file: created under a temporary name, put in place when closed. A
    /// name that exists (and is not being replaced) is refused as the kernel would.
    fn own_create(
        &self,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        flags: i32,
    ) -> Result<(Arc<Inode>, FileAttr, OwnedFd)> {
        let updates = &self.shared.updates;
        updates.check_not_tripped()?;
        if Self::is_hidden(parent, name) {
            return Err(Errno::EPERM);
        }
        let dir = self.inode(parent)?;
        let cname = sys::cname(name).map_err(errno)?;
        let replacing = matches!(updates.own_view(parent.0, name), OwnView::Removed);
        if !replacing && sys::statat(dir.fd(), &cname).is_ok() {
            // Something is there: if a user put it there since the fence, stop.
            updates.fence_check(&self.shared.inodes, &dir, name)?;
            return Err(Errno::EEXIST);
        }
        let key: Name = (parent.0, name.to_owned());
        if let Some(old) = updates.temp_of(&key) {
            let _ = sys::unlinkat(updates.temp_dir(), &old, false);
            updates.discard(&key);
        }
        let (file, temp) = updates.create_temp(parent.0, name, flags, mode)?;
        let (inode, attr) = self.lookup_in(updates.temp_dir(), &temp)?;
        Ok((inode, attr, file))
    }

    /// The sync removes `name`: a file it is about to replace stays until its replacement
    /// is in place; anything a user changed since the fence is refused.
    fn own_remove(&self, dir: &Inode, name: &OsStr, rmdir: bool) -> Result<()> {
        let updates = &self.shared.updates;
        updates.check_not_tripped()?;
        if !rmdir && updates.discard(&(dir.ino, name.to_owned())) {
            return Ok(());
        }
        updates.fence_check(&self.shared.inodes, dir, name)?;
        if !rmdir && updates.defers_unlink(self.shared.rel_path(dir, name).as_deref()) {
            updates.defer_unlink(dir.ino, name);
            return Ok(());
        }
        let cname = sys::cname(name).map_err(errno)?;
        sys::unlinkat(dir.fd(), &cname, rmdir).map_err(errno)
    }

    /// The temporary name of an inode that is one of the sync's new files.
    fn temp_name_of(&self, inode: &Inode) -> Option<CString> {
        let path = sys::fd_path(inode.fd().as_raw_fd()).ok()?;
        let dir = self.shared.root.join(".jj").join(super::update::TEMP_DIR);
        if path.parent() != Some(dir.as_path()) {
            return None;
        }
        CString::new(path.file_name()?.as_bytes()).ok()
    }
}

fn xattr_name(name: &OsStr) -> Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| Errno::EINVAL)
}

//! The fuser glue, and nothing more: each `Filesystem` method is one call into the
//! passthrough core (`passthrough`) and one reply. Errors reach the kernel as the core's
//! errno through `answer`. Kernel capabilities are negotiated here (`init`).

use std::ffi::OsStr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use fuser::{
    AccessFlags, CopyFileRangeFlags, Errno, FileAttr, FileHandle, Filesystem, FopenFlags,
    Generation, INodeNo, InitFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr,
    ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyLseek,
    ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use super::passthrough::{Caller, Entry, Opened, Passthrough, SetAttr, Xattr, ttl};

/// Open files need no FLUSH round trip on close: writes reach the backing file as they are
/// made, and a user's change is reported when its handle is released.
const OPEN_FLAGS: FopenFlags = FopenFlags::FOPEN_NOFLUSH;

/// Without kernel passthrough, file data is cached by the kernel across opens too: every
/// change made through the mount keeps that cache true, and a change made directly in the
/// backing directory drops it (`Mount::invalidate`). The kernel refuses the flag with
/// passthrough, where data never passes through its cache anyway.
const CACHED_OPEN_FLAGS: FopenFlags = OPEN_FLAGS.union(FopenFlags::FOPEN_KEEP_CACHE);

/// The mount's `fuser::Filesystem`.
pub(crate) struct Fuse {
    core: Passthrough,
    want_passthrough: bool,
}

impl Fuse {
    pub(crate) fn new(core: Passthrough, want_passthrough: bool) -> Self {
        Self {
            core,
            want_passthrough,
        }
    }
}

fn caller(req: &Request) -> Caller {
    Caller {
        tid: req.pid(),
        uid: req.uid(),
        gid: req.gid(),
    }
}

/// The replies that can carry an errno.
trait Fail {
    fn fail(self, err: Errno);
}

macro_rules! fail {
    ($($reply:ty),*) => {
        $(impl Fail for $reply {
            fn fail(self, err: Errno) {
                self.error(err);
            }
        })*
    };
}

fail!(
    ReplyAttr,
    ReplyCreate,
    ReplyData,
    ReplyDirectory,
    ReplyDirectoryPlus,
    ReplyEmpty,
    ReplyEntry,
    ReplyLseek,
    ReplyOpen,
    ReplyStatfs,
    ReplyWrite,
    ReplyXattr
);

/// Replies with `ok` on success, else with the error.
fn answer<R: Fail, T>(reply: R, result: Result<T, Errno>, ok: impl FnOnce(R, T)) {
    match result {
        Ok(value) => ok(reply, value),
        Err(err) => reply.fail(err),
    }
}

fn empty(reply: ReplyEmpty, (): ()) {
    reply.ok();
}

fn attr(reply: ReplyAttr, attr: FileAttr) {
    reply.attr(&ttl(), &attr);
}

fn entry(reply: ReplyEntry, attr: FileAttr) {
    reply.entry(&ttl(), &attr, Generation(0));
}

fn data(reply: ReplyData, data: Vec<u8>) {
    reply.data(&data);
}

fn written(reply: ReplyWrite, n: u32) {
    reply.written(n);
}

fn opened(reply: ReplyOpen, opened: Opened) {
    match opened.backing {
        Some(id) => reply.opened_passthrough(FileHandle(opened.fh), OPEN_FLAGS, &id),
        None => reply.opened(FileHandle(opened.fh), CACHED_OPEN_FLAGS),
    }
}

fn created(reply: ReplyCreate, (entry, opened): (Entry, Opened)) {
    let fh = FileHandle(opened.fh);
    match opened.backing {
        Some(id) => {
            reply.created_passthrough(&entry.ttl, &entry.attr, Generation(0), fh, OPEN_FLAGS, &id)
        }
        None => reply.created(
            &entry.ttl,
            &entry.attr,
            Generation(0),
            fh,
            CACHED_OPEN_FLAGS,
        ),
    }
}

fn xattr(reply: ReplyXattr, xattr: Xattr) {
    match xattr {
        Xattr::Size(n) => reply.size(n),
        Xattr::Data(data) => reply.data(&data),
    }
}

fn statfs(reply: ReplyStatfs, st: libc::statvfs) {
    reply.statfs(
        st.f_blocks,
        st.f_bfree,
        st.f_bavail,
        st.f_files,
        st.f_ffree,
        st.f_bsize as u32,
        st.f_namemax as u32,
        st.f_frsize as u32,
    );
}

impl Filesystem for Fuse {
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
        let shared = self.core.shared();
        shared.passthrough.store(passthrough, Ordering::Relaxed);
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        answer(
            reply,
            self.core.lookup(&caller(req), parent.0, name),
            |r, e| r.entry_with_ttls(&ttl(), &e.ttl, &e.attr, Generation(0)),
        );
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.core.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        answer(reply, self.core.getattr(ino.0, fh.map(|fh| fh.0)), attr);
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
        let result = self
            .core
            .setattr(&caller(req), ino.0, &change, fh.map(|fh| fh.0));
        answer(reply, result, attr);
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        answer(reply, self.core.readlink(ino.0), data);
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
        let result = self.core.mknod(&caller(req), parent.0, name, mode, rdev);
        answer(reply, result, entry);
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
        answer(
            reply,
            self.core.mkdir(&caller(req), parent.0, name, mode),
            entry,
        );
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let result = self.core.symlink(&caller(req), parent.0, link_name, target);
        answer(reply, result, entry);
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        answer(reply, self.core.unlink(&caller(req), parent.0, name), empty);
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        answer(reply, self.core.rmdir(&caller(req), parent.0, name), empty);
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
        let result = self.core.rename(
            &caller(req),
            parent.0,
            name,
            newparent.0,
            newname,
            flags.bits(),
        );
        answer(reply, result, empty);
    }

    fn link(
        &self,
        req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let result = self.core.link(&caller(req), ino.0, newparent.0, newname);
        answer(reply, result, entry);
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let result = self
            .core
            .open(&caller(req), ino.0, flags.0, |fd| reply.open_backing(fd));
        answer(reply, result, opened);
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
        let result = self
            .core
            .create(&caller(req), parent.0, name, mode, flags, |fd| {
                reply.open_backing(fd)
            });
        answer(reply, result, created);
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
        answer(reply, self.core.read(fh.0, offset, size), data);
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
        answer(reply, self.core.write(fh.0, offset, data), written);
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
        self.core.release(fh.0);
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
        answer(reply, self.core.fsync(fh.0, datasync), empty);
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        answer(reply, self.core.opendir(ino.0), |r, fh| {
            r.opened(FileHandle(fh), FopenFlags::empty())
        });
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let result = self
            .core
            .readdir(ino.0, fh.0, offset, |ino, next, kind, name| {
                reply.add(INodeNo(ino), next, kind, name)
            });
        answer(reply, result, |r, ()| r.ok());
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let result = self
            .core
            .readdirplus(ino.0, fh.0, offset, |name, next, attr| {
                reply.add(attr.ino, next, name, &ttl(), attr, Generation(0))
            });
        answer(reply, result, |r, ()| r.ok());
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.core.releasedir(fh.0);
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
        answer(reply, self.core.fsyncdir(fh.0, datasync), empty);
    }

    fn statfs(&self, _req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        answer(reply, self.core.statfs(ino.0), statfs);
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
        let result = self.core.setxattr(&caller(req), ino.0, name, value, flags);
        answer(reply, result, empty);
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        answer(reply, self.core.getxattr(ino.0, name, size), xattr);
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        answer(reply, self.core.listxattr(ino.0, size), xattr);
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        answer(
            reply,
            self.core.removexattr(&caller(req), ino.0, name),
            empty,
        );
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        answer(reply, self.core.access(ino.0), empty);
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
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        answer(
            reply,
            self.core.fallocate(fh.0, offset, length, mode),
            empty,
        );
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
        answer(reply, self.core.lseek(fh.0, offset, whence), |r, off| {
            r.offset(off)
        });
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
        let result = self
            .core
            .copy_file_range((fh_in.0, offset_in), (fh_out.0, offset_out), len);
        answer(reply, result, written);
    }
}

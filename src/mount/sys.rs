//! Thin, safe wrappers over the `*at` system calls the passthrough filesystem makes on the
//! backing directory, and the per-thread credentials it takes on for a caller. Every call is
//! relative to a directory fd and a single name, so no path a client sends can reach outside
//! the workspace; errors keep the kernel's errno. Nothing here knows about FUSE.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// A single path component as a C string; a name with a NUL or a slash is invalid.
pub(crate) fn cname(name: &OsStr) -> io::Result<CString> {
    if name.as_bytes().contains(&b'/') {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    CString::new(name.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

const EMPTY: &CStr = c"";

pub(crate) fn openat(
    dir: BorrowedFd<'_>,
    name: &CStr,
    flags: libc::c_int,
    mode: u32,
) -> io::Result<OwnedFd> {
    let fd = cvt(unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    })?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An `O_PATH` handle on `name` in `dir`, not following a final symlink.
pub(crate) fn open_path(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    openat(dir, name, libc::O_PATH | libc::O_NOFOLLOW, 0)
}

/// The name under which `dir` holds the object with inode number `ino`, if it holds one.
pub(crate) fn find_ino(dir: BorrowedFd<'_>, ino: u64) -> io::Result<Option<CString>> {
    let mut stream = DirStream::open(dir)?;
    while let Some(entry) = stream.next_entry()? {
        if entry.ino == ino && entry.name != b"." && entry.name != b".." {
            return Ok(CString::new(entry.name).ok());
        }
    }
    Ok(None)
}

/// Reopens an `O_PATH` handle for I/O with `flags`, through /proc/self/fd.
pub(crate) fn reopen(fd: BorrowedFd<'_>, flags: libc::c_int) -> io::Result<OwnedFd> {
    let path = proc_fd(fd.as_raw_fd());
    // Truncation arrives as its own setattr once the kernel has checked the open.
    let flags =
        flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY | libc::O_NOFOLLOW | libc::O_TRUNC);
    let fd = cvt(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) })?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(crate) fn proc_fd(fd: RawFd) -> CString {
    CString::new(format!("/proc/self/fd/{fd}")).expect("no NUL")
}

/// What `statx` says about one object: its identity and its attributes.
#[derive(Clone, Copy)]
pub(crate) struct Stat(libc::statx);

impl Stat {
    pub(crate) fn ino(&self) -> u64 {
        self.0.stx_ino
    }

    pub(crate) fn dev(&self) -> u64 {
        libc::makedev(self.0.stx_dev_major, self.0.stx_dev_minor)
    }

    /// The file type and permission bits.
    pub(crate) fn mode(&self) -> u32 {
        u32::from(self.0.stx_mode)
    }

    /// The file type bits (`S_IFMT`).
    pub(crate) fn kind(&self) -> u32 {
        self.mode() & libc::S_IFMT
    }

    pub(crate) fn is_dir(&self) -> bool {
        self.kind() == libc::S_IFDIR
    }

    /// The birth time, where the file system records one (it tells a new object that reuses
    /// an inode number from the one before).
    pub(crate) fn btime(&self) -> Option<(i64, u32)> {
        (self.0.stx_mask & libc::STATX_BTIME != 0)
            .then_some((self.0.stx_btime.tv_sec, self.0.stx_btime.tv_nsec))
    }

    pub(crate) fn size(&self) -> u64 {
        self.0.stx_size
    }

    pub(crate) fn blocks(&self) -> u64 {
        self.0.stx_blocks
    }

    pub(crate) fn nlink(&self) -> u32 {
        self.0.stx_nlink
    }

    pub(crate) fn uid(&self) -> u32 {
        self.0.stx_uid
    }

    pub(crate) fn gid(&self) -> u32 {
        self.0.stx_gid
    }

    pub(crate) fn rdev(&self) -> u64 {
        libc::makedev(self.0.stx_rdev_major, self.0.stx_rdev_minor)
    }

    pub(crate) fn blksize(&self) -> u32 {
        self.0.stx_blksize
    }

    pub(crate) fn atime(&self) -> (i64, u32) {
        (self.0.stx_atime.tv_sec, self.0.stx_atime.tv_nsec)
    }

    pub(crate) fn mtime(&self) -> (i64, u32) {
        (self.0.stx_mtime.tv_sec, self.0.stx_mtime.tv_nsec)
    }

    pub(crate) fn ctime(&self) -> (i64, u32) {
        (self.0.stx_ctime.tv_sec, self.0.stx_ctime.tv_nsec)
    }

    /// The same, with another inode number (for tests of inode number reuse).
    #[cfg(test)]
    pub(crate) fn with_ino(mut self, ino: u64) -> Self {
        self.0.stx_ino = ino;
        self
    }
}

fn statx(dir: RawFd, name: &CStr, flags: libc::c_int) -> io::Result<Stat> {
    let mut st = std::mem::MaybeUninit::<libc::statx>::uninit();
    cvt(unsafe {
        libc::statx(
            dir,
            name.as_ptr(),
            flags | libc::AT_SYMLINK_NOFOLLOW | libc::AT_STATX_SYNC_AS_STAT,
            libc::STATX_BASIC_STATS | libc::STATX_BTIME,
            st.as_mut_ptr(),
        )
    })?;
    Ok(Stat(unsafe { st.assume_init() }))
}

/// The object behind any fd (an `O_PATH` one included).
pub(crate) fn stat_fd(fd: BorrowedFd<'_>) -> io::Result<Stat> {
    statx(fd.as_raw_fd(), EMPTY, libc::AT_EMPTY_PATH)
}

/// `name` in `dir`, not following a final symlink.
pub(crate) fn stat_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Stat> {
    statx(dir.as_raw_fd(), name, 0)
}

pub(crate) fn mkdirat(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> io::Result<()> {
    cvt(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t) }).map(drop)
}

pub(crate) fn mknodat(dir: BorrowedFd<'_>, name: &CStr, mode: u32, rdev: u64) -> io::Result<()> {
    cvt(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t, rdev) })
        .map(drop)
}

pub(crate) fn symlinkat(target: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    cvt(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) }).map(drop)
}

pub(crate) fn unlinkat(dir: BorrowedFd<'_>, name: &CStr, rmdir: bool) -> io::Result<()> {
    let flags = if rmdir { libc::AT_REMOVEDIR } else { 0 };
    cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) }).map(drop)
}

pub(crate) fn renameat2(
    old_dir: BorrowedFd<'_>,
    old: &CStr,
    new_dir: BorrowedFd<'_>,
    new: &CStr,
    flags: u32,
) -> io::Result<()> {
    cvt(unsafe {
        libc::renameat2(
            old_dir.as_raw_fd(),
            old.as_ptr(),
            new_dir.as_raw_fd(),
            new.as_ptr(),
            flags,
        )
    })
    .map(drop)
}

/// A hard link to the object behind an `O_PATH` handle.
pub(crate) fn link_fd(fd: BorrowedFd<'_>, new_dir: BorrowedFd<'_>, new: &CStr) -> io::Result<()> {
    let ret = unsafe {
        libc::linkat(
            fd.as_raw_fd(),
            EMPTY.as_ptr(),
            new_dir.as_raw_fd(),
            new.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    if ret == 0 {
        return Ok(());
    }
    // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; /proc/self/fd works without it.
    let path = proc_fd(fd.as_raw_fd());
    cvt(unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            path.as_ptr(),
            new_dir.as_raw_fd(),
            new.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    })
    .map(drop)
}

pub(crate) fn readlink(fd: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    let n = cvt_size(unsafe {
        libc::readlinkat(
            fd.as_raw_fd(),
            EMPTY.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    })?;
    buf.truncate(n);
    Ok(buf)
}

/// The path the kernel has for an open fd (follows renames; " (deleted)" once unlinked).
pub(crate) fn fd_path(fd: RawFd) -> io::Result<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
}

pub(crate) fn chmod_fd(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    let path = proc_fd(fd.as_raw_fd());
    cvt(unsafe { libc::chmod(path.as_ptr(), mode as libc::mode_t) }).map(drop)
}

/// Changes the owner of `name` in `dir` itself (a symlink, not its target).
pub(crate) fn lchown_at(dir: BorrowedFd<'_>, name: &CStr, uid: u32, gid: u32) -> io::Result<()> {
    cvt(unsafe {
        libc::fchownat(
            dir.as_raw_fd(),
            name.as_ptr(),
            uid,
            gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(drop)
}

pub(crate) fn chown_fd(fd: BorrowedFd<'_>, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    let uid = uid.unwrap_or(u32::MAX);
    let gid = gid.unwrap_or(u32::MAX);
    cvt(unsafe {
        libc::fchownat(
            fd.as_raw_fd(),
            EMPTY.as_ptr(),
            uid,
            gid,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(drop)
}

pub(crate) fn ftruncate(fd: BorrowedFd<'_>, size: u64) -> io::Result<()> {
    cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), size as libc::off_t) }).map(drop)
}

/// `times` as (atime, mtime), each `UTIME_OMIT`, `UTIME_NOW` or a time. Works on an
/// `O_PATH` handle of a file or directory through /proc/self/fd.
pub(crate) fn utimens_fd(fd: BorrowedFd<'_>, times: &[libc::timespec; 2]) -> io::Result<()> {
    let path = proc_fd(fd.as_raw_fd());
    cvt(unsafe { libc::utimensat(libc::AT_FDCWD, path.as_ptr(), times.as_ptr(), 0) }).map(drop)
}

pub(crate) fn futimens(fd: BorrowedFd<'_>, times: &[libc::timespec; 2]) -> io::Result<()> {
    cvt(unsafe { libc::futimens(fd.as_raw_fd(), times.as_ptr()) }).map(drop)
}

pub(crate) fn pread(fd: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    cvt_size(unsafe {
        libc::pread(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            offset as libc::off_t,
        )
    })
}

pub(crate) fn pwrite(fd: BorrowedFd<'_>, buf: &[u8], offset: u64) -> io::Result<usize> {
    cvt_size(unsafe {
        libc::pwrite(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            offset as libc::off_t,
        )
    })
}

pub(crate) fn fsync(fd: BorrowedFd<'_>, datasync: bool) -> io::Result<()> {
    cvt(unsafe {
        if datasync {
            libc::fdatasync(fd.as_raw_fd())
        } else {
            libc::fsync(fd.as_raw_fd())
        }
    })
    .map(drop)
}

pub(crate) fn fallocate(fd: BorrowedFd<'_>, mode: i32, offset: u64, len: u64) -> io::Result<()> {
    cvt(unsafe {
        libc::fallocate(
            fd.as_raw_fd(),
            mode,
            offset as libc::off_t,
            len as libc::off_t,
        )
    })
    .map(drop)
}

pub(crate) fn lseek(fd: BorrowedFd<'_>, offset: i64, whence: i32) -> io::Result<i64> {
    let ret = unsafe { libc::lseek(fd.as_raw_fd(), offset, whence) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

pub(crate) fn copy_file_range(
    fd_in: BorrowedFd<'_>,
    off_in: u64,
    fd_out: BorrowedFd<'_>,
    off_out: u64,
    len: usize,
) -> io::Result<usize> {
    let mut off_in = off_in as libc::loff_t;
    let mut off_out = off_out as libc::loff_t;
    cvt_size(unsafe {
        libc::copy_file_range(
            fd_in.as_raw_fd(),
            &mut off_in,
            fd_out.as_raw_fd(),
            &mut off_out,
            len,
            0,
        )
    })
}

pub(crate) fn fstatvfs(fd: BorrowedFd<'_>) -> io::Result<libc::statvfs> {
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    cvt(unsafe { libc::fstatvfs(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    Ok(unsafe { st.assume_init() })
}

/// Extended attributes go through /proc/self/fd: `O_PATH` handles refuse the f* calls.
pub(crate) fn getxattr(fd: BorrowedFd<'_>, name: &CStr, buf: &mut [u8]) -> io::Result<usize> {
    let path = proc_fd(fd.as_raw_fd());
    cvt_size(unsafe {
        libc::getxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    })
}

pub(crate) fn listxattr(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    let path = proc_fd(fd.as_raw_fd());
    cvt_size(unsafe { libc::listxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) })
}

pub(crate) fn setxattr(
    fd: BorrowedFd<'_>,
    name: &CStr,
    value: &[u8],
    flags: i32,
) -> io::Result<()> {
    let path = proc_fd(fd.as_raw_fd());
    cvt(unsafe {
        libc::setxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    })
    .map(drop)
}

pub(crate) fn removexattr(fd: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    let path = proc_fd(fd.as_raw_fd());
    cvt(unsafe { libc::removexattr(path.as_ptr(), name.as_ptr()) }).map(drop)
}

/// Runs file-creating calls of this thread as the FUSE caller, so that new files belong to
/// whoever made them and the backing file system grants what it grants the caller.
/// fsuid/fsgid and the supplementary groups are per thread (the raw `setgroups` system call,
/// not glibc's, which changes every thread of the process); the umask is made per thread (and
/// zero: the kernel has already applied the caller's) by unsharing this thread's fs
/// attributes. Everything is put back on drop.
pub(crate) struct Credentials {
    uid: u32,
    gid: u32,
    /// This thread's own supplementary groups, when the caller's were taken on.
    groups: Option<Vec<libc::gid_t>>,
}

thread_local! {
    static FS_UNSHARED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl Credentials {
    /// Takes on the credentials of the caller: user `uid`, group `gid`, and the supplementary
    /// groups of its thread `tid` (0 when unknown).
    pub(crate) fn assume(tid: u32, uid: u32, gid: u32) -> Self {
        FS_UNSHARED.with(|done| {
            if !done.get() {
                unsafe {
                    if libc::unshare(libc::CLONE_FS) == 0 {
                        libc::umask(0);
                    }
                }
                done.set(true);
            }
        });
        let own_uid = unsafe { libc::geteuid() };
        let groups = if own_uid == 0 && uid != 0 {
            let own = thread_groups();
            let theirs = caller_groups(tid).unwrap_or_default();
            set_thread_groups(&theirs).ok().map(|()| own)
        } else {
            None
        };
        unsafe {
            libc::setfsgid(gid);
            libc::setfsuid(uid);
        }
        Self {
            uid: own_uid,
            gid: unsafe { libc::getegid() },
            groups,
        }
    }
}

impl Drop for Credentials {
    fn drop(&mut self) {
        unsafe {
            libc::setfsuid(self.uid);
            libc::setfsgid(self.gid);
        }
        if let Some(groups) = &self.groups {
            let _ = set_thread_groups(groups);
        }
    }
}

/// The supplementary groups of the calling thread.
fn thread_groups() -> Vec<libc::gid_t> {
    let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    if n <= 0 {
        return Vec::new();
    }
    let mut groups = vec![0; n as usize];
    let n = unsafe { libc::getgroups(n, groups.as_mut_ptr()) };
    groups.truncate(n.max(0) as usize);
    groups
}

/// Sets the supplementary groups of the calling thread only.
fn set_thread_groups(groups: &[libc::gid_t]) -> io::Result<()> {
    let ret = unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The supplementary groups of thread `tid`, from the `Groups:` line of its status.
fn caller_groups(tid: u32) -> Option<Vec<libc::gid_t>> {
    if tid == 0 {
        return None;
    }
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    parse_groups(&status)
}

fn parse_groups(status: &str) -> Option<Vec<libc::gid_t>> {
    let line = status.lines().find_map(|l| l.strip_prefix("Groups:"))?;
    line.split_ascii_whitespace()
        .map(|g| g.parse().ok())
        .collect()
}

/// A directory stream positioned by the cookies (`d_off`) readdir hands to the kernel.
pub(crate) struct DirStream {
    dir: *mut libc::DIR,
}

// SAFETY: the DIR is only used behind the Mutex of its handle.
unsafe impl Send for DirStream {}

pub(crate) struct DirEntry {
    pub(crate) ino: u64,
    pub(crate) next_offset: u64,
    pub(crate) kind: u8,
    pub(crate) name: Vec<u8>,
}

impl DirStream {
    pub(crate) fn open(fd: BorrowedFd<'_>) -> io::Result<Self> {
        let owned = openat(fd, c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        let raw = std::os::fd::IntoRawFd::into_raw_fd(owned);
        let dir = unsafe { libc::fdopendir(raw) };
        if dir.is_null() {
            let err = io::Error::last_os_error();
            unsafe { libc::close(raw) };
            return Err(err);
        }
        Ok(Self { dir })
    }

    pub(crate) fn seek(&mut self, offset: u64) {
        if offset == 0 {
            unsafe { libc::rewinddir(self.dir) };
        } else {
            unsafe { libc::seekdir(self.dir, offset as libc::c_long) };
        }
    }

    pub(crate) fn next_entry(&mut self) -> io::Result<Option<DirEntry>> {
        unsafe { *libc::__errno_location() = 0 };
        let ent = unsafe { libc::readdir64(self.dir) };
        if ent.is_null() {
            let errno = unsafe { *libc::__errno_location() };
            return if errno == 0 {
                Ok(None)
            } else {
                Err(io::Error::from_raw_os_error(errno))
            };
        }
        let ent = unsafe { &*ent };
        let name = unsafe { CStr::from_ptr(ent.d_name.as_ptr()) };
        Ok(Some(DirEntry {
            ino: ent.d_ino,
            next_offset: ent.d_off as u64,
            kind: ent.d_type,
            name: name.to_bytes().to_vec(),
        }))
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        unsafe { BorrowedFd::borrow_raw(libc::dirfd(self.dir)) }
    }
}

impl Drop for DirStream {
    fn drop(&mut self) {
        unsafe { libc::closedir(self.dir) };
    }
}

/// A new `O_PATH` handle on the object behind any fd.
pub(crate) fn reopen_path(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let path = proc_fd(fd.as_raw_fd());
    let fd = cvt(unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) })?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn groups_are_read_from_a_status_line() {
        let status = "Name:\tbash\nGid:\t100\t100\t100\t100\nGroups:\t4 27 1001 \nNgid:\t0\n";
        assert_eq!(parse_groups(status), Some(vec![4, 27, 1001]));
        assert_eq!(parse_groups("Groups:\t\n"), Some(vec![]));
        assert_eq!(parse_groups("Name:\tx\n"), None);
    }

    #[test]
    fn an_object_is_found_by_its_inode_number() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("moved"), "x").unwrap();
        let fd: OwnedFd = std::fs::File::open(dir.path()).unwrap().into();
        let st = stat_at(fd.as_fd(), c"moved").unwrap();
        assert_eq!(
            find_ino(fd.as_fd(), st.ino()).unwrap().as_deref(),
            Some(c"moved")
        );
        assert_eq!(find_ino(fd.as_fd(), u64::MAX).unwrap(), None);
    }
}

//! File operations confined beneath one root directory. Every path is resolved relative to
//! the root's handle with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, so no path a tree
//! holds (`..`, an absolute path, a symlinked parent, a magic link) can reach outside the
//! root or through a symlink, whatever other programs do to the tree meanwhile; the last
//! component is never followed either. Files are opened with `O_NONBLOCK` and checked with
//! `fstat`, so a file swapped for a FIFO never blocks the caller.

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// What `lstat` says about a path, as the sync engine compares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub kind: Kind,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub ino: u64,
    pub dev: u64,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// A FIFO, socket or device: nothing to sync.
    Special,
}

impl Stat {
    pub fn from_raw(st: &libc::stat) -> Self {
        let kind = match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => Kind::File,
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            _ => Kind::Special,
        };
        Self {
            kind,
            mode: st.st_mode & 0o7777,
            size: st.st_size as u64,
            mtime_ns: st.st_mtime * 1_000_000_000 + st.st_mtime_nsec,
            ctime_ns: st.st_ctime * 1_000_000_000 + st.st_ctime_nsec,
            ino: st.st_ino,
            dev: st.st_dev,
            nlink: st.st_nlink,
            uid: st.st_uid,
            gid: st.st_gid,
        }
    }

    pub fn mtime_millis(&self) -> i64 {
        self.mtime_ns.div_euclid(1_000_000)
    }

    pub fn is_executable(&self) -> bool {
        self.mode & 0o111 != 0
    }
}

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn owned(fd: libc::c_int) -> OwnedFd {
    // SAFETY: a descriptor the kernel just returned, owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// A single path component as a C string; `.`, `..`, empty, `/` and NUL are refused.
pub fn component(name: &OsStr) -> io::Result<CString> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Checks that `rel` is a plain relative path (normal components only) and returns it as a
/// C string; the root itself is `.`.
fn relative(rel: &Path) -> io::Result<CString> {
    if rel.as_os_str().is_empty() {
        return Ok(c".".to_owned());
    }
    for part in rel.components() {
        if !matches!(part, Component::Normal(_)) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
    }
    CString::new(rel.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Splits `rel` into its parent directory and last component.
pub fn split(rel: &Path) -> io::Result<(&Path, &OsStr)> {
    match (rel.parent(), rel.file_name()) {
        (Some(parent), Some(name)) => Ok((parent, name)),
        _ => Err(io::Error::from_raw_os_error(libc::EINVAL)),
    }
}

fn fstatat(dir: BorrowedFd<'_>, name: &CStr, flags: libc::c_int) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    cvt(unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), st.as_mut_ptr(), flags) })?;
    Ok(unsafe { st.assume_init() })
}

pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<Stat> {
    fstatat(fd, c"", libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW).map(|st| Stat::from_raw(&st))
}

/// `ENOENT` and `ENOTDIR` (a parent that is a file now) both mean "not there".
pub fn is_missing(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR))
}

/// A path that leads through a symlink or outside the root.
pub fn is_unsafe(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::ELOOP | libc::EXDEV))
}

/// A directory everything is confined beneath.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

impl Root {
    /// Opens `path` (which may itself be reached through symlinks: only what lies beneath
    /// it is confined).
    pub fn open(path: &Path) -> io::Result<Self> {
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let fd = cvt(unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        })?;
        Ok(Self {
            fd: owned(fd),
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A second handle on the same directory (not reopened by path).
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(Self {
            fd: self.fd.try_clone()?,
            path: self.path.clone(),
        })
    }

    /// Whether the directory at the root's path is still the one this handle holds (false
    /// when it was removed, replaced, or something was mounted over it or unmounted from
    /// it): reading a replaced directory as the workspace would read every file as deleted.
    pub fn is_still_at_path(&self) -> bool {
        let Ok(now) = std::fs::metadata(&self.path) else {
            return false;
        };
        let Ok(held) = fstat(self.fd()) else {
            return false;
        };
        use std::os::unix::fs::MetadataExt as _;
        now.dev() == held.dev && now.ino() == held.ino
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// `openat2` of `rel` beneath the root, retried when a concurrent rename made the
    /// kernel unsure (EAGAIN).
    pub fn open_beneath(&self, rel: &Path, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
        let c = relative(rel)?;
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = (flags | libc::O_CLOEXEC) as u64;
        how.mode = mode as u64;
        how.resolve =
            libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
        for _ in 0..16 {
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_openat2,
                    self.fd.as_raw_fd(),
                    c.as_ptr(),
                    &mut how as *mut libc::open_how,
                    std::mem::size_of::<libc::open_how>(),
                )
            };
            if ret >= 0 {
                return Ok(owned(ret as libc::c_int));
            }
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EAGAIN) {
                return Err(err);
            }
        }
        Err(io::Error::from_raw_os_error(libc::EAGAIN))
    }

    /// The directory `rel` (the root for an empty path), as a handle for `*at` calls.
    pub fn dir(&self, rel: &Path) -> io::Result<Dir> {
        let fd = self.open_beneath(rel, libc::O_PATH | libc::O_DIRECTORY, 0)?;
        Ok(Dir { fd })
    }

    /// The parent directory of `rel` and its last component.
    pub fn parent_of<'p>(&self, rel: &'p Path) -> io::Result<(Dir, &'p OsStr)> {
        let (parent, name) = split(rel)?;
        Ok((self.dir(parent)?, name))
    }

    /// `lstat` of `rel`; None when nothing is there (or a parent is not a directory).
    pub fn lstat(&self, rel: &Path) -> io::Result<Option<Stat>> {
        if rel.as_os_str().is_empty() {
            return fstat(self.fd()).map(Some);
        }
        let (dir, name) = match self.parent_of(rel) {
            Ok(found) => found,
            // A parent that is a file, or a symlink, now: no such path in the workspace.
            Err(err) if is_missing(&err) || is_unsafe(&err) => return Ok(None),
            Err(err) => return Err(err),
        };
        dir.stat(name)
    }

    /// Opens the regular file `rel` for reading. None when it is missing or is not a regular
    /// file (a FIFO swapped in is opened without blocking and refused).
    pub fn read_file(&self, rel: &Path) -> io::Result<Option<(File, Stat)>> {
        let fd = match self.open_beneath(
            rel,
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY,
            0,
        ) {
            Ok(fd) => fd,
            Err(err) if is_missing(&err) || err.raw_os_error() == Some(libc::ELOOP) => {
                return Ok(None);
            }
            Err(err) => return Err(err),
        };
        let stat = fstat(fd.as_fd())?;
        if stat.kind != Kind::File {
            return Ok(None);
        }
        // Reads of regular files never block anyway; drop the flag for the reader.
        let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
        cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK) })?;
        Ok(Some((File::from(fd), stat)))
    }

    /// The target of the symlink `rel`.
    pub fn read_link(&self, rel: &Path) -> io::Result<Vec<u8>> {
        let (dir, name) = self.parent_of(rel)?;
        dir.read_link(name)
    }

    /// The entries of directory `rel` (without `.` and `..`).
    pub fn read_dir(&self, rel: &Path) -> io::Result<Vec<DirEntry>> {
        let fd = self.open_beneath(
            rel,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
        )?;
        read_dir_fd(fd)
    }
}

/// One entry of a directory listing.
#[derive(Debug, Clone)]
pub struct DirEntry {
    pub name: std::ffi::OsString,
    pub ino: u64,
    /// From `d_type`; None when the file system does not say.
    pub kind: Option<Kind>,
}

fn read_dir_fd(fd: OwnedFd) -> io::Result<Vec<DirEntry>> {
    let raw = std::os::fd::IntoRawFd::into_raw_fd(fd);
    let dir = unsafe { libc::fdopendir(raw) };
    if dir.is_null() {
        let err = io::Error::last_os_error();
        unsafe { libc::close(raw) };
        return Err(err);
    }
    let mut out = Vec::new();
    let result = loop {
        unsafe { *libc::__errno_location() = 0 };
        let ent = unsafe { libc::readdir64(dir) };
        if ent.is_null() {
            let errno = unsafe { *libc::__errno_location() };
            break if errno == 0 {
                Ok(())
            } else {
                Err(io::Error::from_raw_os_error(errno))
            };
        }
        let ent = unsafe { &*ent };
        let name = unsafe { CStr::from_ptr(ent.d_name.as_ptr()) }.to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let kind = match ent.d_type {
            libc::DT_REG => Some(Kind::File),
            libc::DT_DIR => Some(Kind::Dir),
            libc::DT_LNK => Some(Kind::Symlink),
            libc::DT_UNKNOWN => None,
            _ => Some(Kind::Special),
        };
        out.push(DirEntry {
            name: OsStr::from_bytes(name).to_owned(),
            ino: ent.d_ino,
            kind,
        });
    };
    unsafe { libc::closedir(dir) };
    result.map(|()| out)
}

/// A directory beneath a root, for operations on its entries by name.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
}

impl Dir {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// `lstat` of entry `name`; None when it does not exist.
    pub fn stat(&self, name: &OsStr) -> io::Result<Option<Stat>> {
        let c = component(name)?;
        match fstatat(self.fd(), &c, libc::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(Stat::from_raw(&st))),
            Err(err) if is_missing(&err) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Creates a new regular file `name` (which must not exist) with exactly `mode`.
    pub fn create_new(&self, name: &OsStr, mode: u32) -> io::Result<File> {
        let c = component(name)?;
        let fd = cvt(unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        })?;
        let file = File::from(owned(fd));
        // The umask may have taken bits away: the file gets exactly `mode`, never more.
        cvt(unsafe { libc::fchmod(file.as_raw_fd(), mode as libc::mode_t) })?;
        Ok(file)
    }

    pub fn unlink(&self, name: &OsStr) -> io::Result<()> {
        let c = component(name)?;
        cvt(unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), 0) }).map(drop)
    }

    pub fn rmdir(&self, name: &OsStr) -> io::Result<()> {
        let c = component(name)?;
        cvt(unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), libc::AT_REMOVEDIR) })
            .map(drop)
    }

    pub fn mkdir(&self, name: &OsStr, mode: u32) -> io::Result<()> {
        let c = component(name)?;
        cvt(unsafe { libc::mkdirat(self.fd.as_raw_fd(), c.as_ptr(), mode as libc::mode_t) })
            .map(drop)
    }

    pub fn symlink(&self, target: &[u8], name: &OsStr) -> io::Result<()> {
        let c = component(name)?;
        let target =
            CString::new(target).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        cvt(unsafe { libc::symlinkat(target.as_ptr(), self.fd.as_raw_fd(), c.as_ptr()) }).map(drop)
    }

    pub fn read_link(&self, name: &OsStr) -> io::Result<Vec<u8>> {
        let c = component(name)?;
        let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
        let n = unsafe {
            libc::readlinkat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        buf.truncate(n as usize);
        Ok(buf)
    }

    /// Renames `name` to `to_name` in `to` (`RENAME_NOREPLACE` when `replace` is false).
    pub fn rename(&self, name: &OsStr, to: &Dir, to_name: &OsStr, replace: bool) -> io::Result<()> {
        let (from, dest) = (component(name)?, component(to_name)?);
        let flags = if replace { 0 } else { libc::RENAME_NOREPLACE };
        cvt(unsafe {
            libc::renameat2(
                self.fd.as_raw_fd(),
                from.as_ptr(),
                to.fd.as_raw_fd(),
                dest.as_ptr(),
                flags,
            )
        })
        .map(drop)
    }

    /// Swaps `name` and `other` atomically (`RENAME_EXCHANGE`): each then names what the
    /// other named. Fails with `EINVAL` where the file system cannot.
    pub fn exchange(&self, name: &OsStr, other: &OsStr) -> io::Result<()> {
        let (a, b) = (component(name)?, component(other)?);
        cvt(unsafe {
            libc::renameat2(
                self.fd.as_raw_fd(),
                a.as_ptr(),
                self.fd.as_raw_fd(),
                b.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        })
        .map(drop)
    }

    /// Sets the permission bits of `name` (never following a symlink: a symlink's own mode
    /// means nothing on Linux and is left alone).
    pub fn chmod(&self, name: &OsStr, mode: u32) -> io::Result<()> {
        let c = component(name)?;
        let fd = cvt(unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        })?;
        let fd = owned(fd);
        if fstat(fd.as_fd())?.kind == Kind::Symlink {
            return Ok(());
        }
        let proc = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL");
        cvt(unsafe { libc::chmod(proc.as_ptr(), mode as libc::mode_t) }).map(drop)
    }

    /// Changes the owner of `name` without following a symlink.
    pub fn chown(&self, name: &OsStr, uid: u32, gid: u32) -> io::Result<()> {
        let c = component(name)?;
        cvt(unsafe {
            libc::fchownat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                uid,
                gid,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })
        .map(drop)
    }
}

/// Changes the owner of an open file.
pub fn fchown(file: &File, uid: u32, gid: u32) -> io::Result<()> {
    cvt(unsafe { libc::fchown(file.as_raw_fd(), uid, gid) }).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_resolves_outside_or_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        let root_path = dir.path().join("root");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::create_dir_all(root_path.join("real")).unwrap();
        std::fs::write(root_path.join("real/f"), "f").unwrap();
        std::os::unix::fs::symlink(&outside, root_path.join("evil")).unwrap();
        std::os::unix::fs::symlink("real", root_path.join("rel-link")).unwrap();
        let root = Root::open(&root_path).unwrap();
        assert!(root.dir(Path::new("evil")).is_err());
        assert!(root.dir(Path::new("rel-link")).is_err());
        assert!(root.dir(Path::new("../outside")).is_err());
        assert!(root.dir(Path::new("/tmp")).is_err());
        assert!(root.parent_of(Path::new("evil/sub")).is_err());
        assert!(
            root.read_file(Path::new("rel-link/f"))
                .unwrap_or(None)
                .is_none()
        );
        let (file, stat) = root.read_file(Path::new("real/f")).unwrap().unwrap();
        drop(file);
        assert_eq!((stat.kind, stat.size), (Kind::File, 1));
        assert_eq!(
            root.lstat(Path::new("evil")).unwrap().unwrap().kind,
            Kind::Symlink
        );
        assert_eq!(root.lstat(Path::new("real/f/x")).unwrap(), None);
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }

    #[test]
    fn a_fifo_is_never_waited_on() {
        let dir = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(&dir.path().join("pipe"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let root = Root::open(dir.path()).unwrap();
        assert!(root.read_file(Path::new("pipe")).unwrap().is_none());
        assert_eq!(
            root.lstat(Path::new("pipe")).unwrap().unwrap().kind,
            Kind::Special
        );
    }

    #[test]
    fn new_files_get_exactly_their_mode() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let d = root.dir(Path::new("")).unwrap();
        drop(d.create_new(OsStr::new("secret"), 0o600).unwrap());
        let st = root.lstat(Path::new("secret")).unwrap().unwrap();
        assert_eq!(st.mode, 0o600);
        assert!(d.create_new(OsStr::new("secret"), 0o600).is_err());
    }
}

//! Writing a workspace through its FUSE mount, as one of the mount's clients, so that the
//! kernel's caches and every file watcher in the mount see the change (create, modify,
//! close, delete, rename) exactly as if a program had made it there.
//!
//! The mount recognises the writing thread (registered by `Fence::begin`) and gives its
//! requests the engine's semantics (see `mount::update`): the unlink of a file being
//! replaced is deferred, the new file is written under a hidden temporary name and goes in
//! place when its mode is set (the last step of a write), and anything a user changed after
//! the step looked trips the update (EBUSY). The syscalls made here are that protocol.

use std::collections::HashSet;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::beneath::{self, Root, Stat};
use super::{Expect, Files, WriteError, copy_content};

/// The mount's side of an update: registers the writing thread and reports whether a user's
/// change stopped it.
pub trait Fence: Send + Sync {
    fn begin(&self, replaced: HashSet<PathBuf>);
    fn end(&self) -> Result<(), String>;
}

pub struct MountFiles {
    root: Root,
    fence: Arc<dyn Fence>,
    /// The backing directory: the mount fences off changes made through it, but an edit
    /// made in the backing directory itself is only seen there.
    backing: Arc<Root>,
}

impl MountFiles {
    /// `root` is the mount point (opened for the step, while mounted).
    pub fn new(root: Root, fence: Arc<dyn Fence>, backing: Arc<Root>) -> Self {
        Self {
            root,
            fence,
            backing,
        }
    }

    /// Refuses to replace or remove what changed in the backing directory since the step
    /// looked (the mount's fence covers changes made through the mount).
    fn check_backing(&self, rel: &Path, expected: Expect) -> Result<(), WriteError> {
        if expected == Expect::Absent || expected == Expect::Unknown {
            return Ok(());
        }
        let found = self.backing.lstat(rel).map_err(WriteError::io(rel))?;
        match found {
            None => Ok(()),
            Some(st) if expected.matches(Some(&st)) => Ok(()),
            Some(_) => Err(super::changed(rel)),
        }
    }
}

/// EBUSY from the mount: a user changed the path after the step looked.
fn mount_error(rel: &Path) -> impl FnOnce(std::io::Error) -> WriteError + '_ {
    move |err| match err.raw_os_error() {
        Some(libc::EBUSY) | Some(libc::EEXIST) => super::changed(rel),
        _ => WriteError::io(rel)(err),
    }
}

impl Files for MountFiles {
    fn root(&self) -> &Root {
        &self.root
    }

    fn begin(&self, replaced: HashSet<PathBuf>) {
        self.fence.begin(replaced);
    }

    fn end(&self) -> Result<(), WriteError> {
        self.fence.end().map_err(WriteError::Busy)
    }

    fn write_file(
        &self,
        rel: &Path,
        content: &mut dyn Read,
        mode: u32,
        expected: Expect,
    ) -> Result<Stat, WriteError> {
        self.check_backing(rel, expected)?;
        let (dir, name) = self.root.parent_of(rel).map_err(WriteError::io(rel))?;
        if expected != Expect::Absent {
            // Deferred by the mount: the old file stays until the new one is in place.
            match dir.unlink(name) {
                Ok(()) => {}
                Err(err) if beneath::is_missing(&err) => {}
                Err(err) => return Err(mount_error(rel)(err)),
            }
        }
        let c = beneath::component(name).map_err(WriteError::io(rel))?;
        // Created with the mode less the daemon's umask (never more open than `mode`); the
        // exact mode is set last, which puts the finished file in place.
        let fd = unsafe {
            libc::openat(
                dir.fd().as_raw_fd(),
                c.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        };
        if fd < 0 {
            return Err(mount_error(rel)(std::io::Error::last_os_error()));
        }
        // SAFETY: a descriptor just returned by openat, owned by nobody else.
        let mut file = std::fs::File::from(unsafe {
            <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd)
        });
        copy_content(content, &mut file).map_err(mount_error(rel))?;
        if unsafe { libc::fchmod(file.as_raw_fd(), mode as libc::mode_t) } < 0 {
            return Err(mount_error(rel)(std::io::Error::last_os_error()));
        }
        beneath::fstat(file.as_fd()).map_err(WriteError::io(rel))
    }

    fn write_symlink(&self, rel: &Path, target: &[u8], expected: Expect) -> Result<(), WriteError> {
        self.check_backing(rel, expected)?;
        let (dir, name) = self.root.parent_of(rel).map_err(WriteError::io(rel))?;
        if expected != Expect::Absent {
            match dir.unlink(name) {
                Ok(()) => {}
                Err(err) if beneath::is_missing(&err) => {}
                Err(err) => return Err(mount_error(rel)(err)),
            }
        }
        dir.symlink(target, name).map_err(mount_error(rel))
    }

    fn remove_file(&self, rel: &Path, expected: Expect) -> Result<(), WriteError> {
        self.check_backing(rel, expected)?;
        let (dir, name) = match self.root.parent_of(rel) {
            Ok(found) => found,
            Err(err) if beneath::is_missing(&err) => return Ok(()),
            Err(err) => return Err(WriteError::io(rel)(err)),
        };
        match dir.unlink(name) {
            Ok(()) => Ok(()),
            Err(err) if beneath::is_missing(&err) => Ok(()),
            Err(err) if err.raw_os_error() == Some(libc::EISDIR) => Ok(()),
            Err(err) => Err(mount_error(rel)(err)),
        }
    }
}

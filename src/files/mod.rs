//! How the sync engine touches a workspace's files: reading them for snapshots and writing
//! other mounts' changes into them. Everything goes through `beneath` (fd-relative, never
//! following a symlink, never leaving the workspace).
//!
//! `Files` is the one seam for "write these files into this workspace", with two
//! implementations:
//! - `PlainFiles` writes a plain directory: each file goes to a temporary file in the same
//!   folder, created with its final mode and owner, and is renamed over the old one only if
//!   the old one is still what the step saw (direct mounts, unmounted workspaces, tests).
//! - `MountFiles` writes through a FUSE mount as one of its clients, so the kernel's caches
//!   and every watcher in the mount see the change; the mount itself swaps files whole and
//!   fences off users' concurrent changes (see `mount::update`).

pub mod beneath;
mod plain;
mod through_mount;

use std::collections::HashSet;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub use beneath::{Kind, Root, Stat};
pub use plain::{PlainFiles, TEMP_PREFIX, is_temp_name};
pub use through_mount::{Fence, MountFiles};

/// Why a write did not happen. Whatever the reason, the old file is still in place.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A user changed the path after the step looked at it: nothing of theirs was touched;
    /// the step is retried and the edits merge.
    #[error("{0}")]
    Busy(String),
    /// The path leads through a symlink or out of the workspace: nothing was written.
    #[error("{}: it leads through a symlink or out of the workspace; not written", .path.display())]
    Unsafe { path: PathBuf },
    #[error("cannot write {}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
}

impl WriteError {
    pub fn io(path: &Path) -> impl FnOnce(io::Error) -> Self + '_ {
        move |source| {
            if beneath::is_unsafe(&source) {
                Self::Unsafe {
                    path: path.to_owned(),
                }
            } else {
                Self::Io {
                    path: path.to_owned(),
                    source,
                }
            }
        }
    }
}

/// What the step believes is at a path it is about to replace or remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Nothing (a new file).
    Absent,
    /// A file or symlink that looked like this when the step last read it. `ctime_ns` and
    /// `ino` are 0 when not known.
    Present {
        size: u64,
        mtime_millis: i64,
        ino: u64,
        ctime_ns: i64,
    },
    /// Not known: do not check.
    Unknown,
}

impl Expect {
    /// Whether what is on disk now (`found`) is still what was expected.
    pub fn matches(&self, found: Option<&Stat>) -> bool {
        match (self, found) {
            (Expect::Unknown, _) => true,
            (Expect::Absent, found) => found.is_none(),
            (Expect::Present { .. }, None) => false,
            (
                Expect::Present {
                    size,
                    mtime_millis,
                    ino,
                    ctime_ns,
                },
                Some(st),
            ) => {
                st.kind != Kind::Dir
                    && *size == st.size
                    && *mtime_millis == st.mtime_millis()
                    && (*ino == 0 || *ino == st.ino)
                    && (*ctime_ns == 0 || *ctime_ns == st.ctime_ns)
            }
        }
    }
}

/// Who owns the files the engine creates in a workspace (a root daemon writing a user's
/// mount).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// A workspace's files as the sync engine writes them (see the module docs).
pub trait Files: Send + Sync {
    /// Where the files are written (the mount, or the plain directory).
    fn root(&self) -> &Root;

    /// Starts an update from the calling thread; `replaced` are the paths whose files it
    /// replaces.
    fn begin(&self, _replaced: HashSet<PathBuf>) {}

    /// Ends the update begun on this thread; `Busy` when a user's change stopped it.
    fn end(&self) -> Result<(), WriteError> {
        Ok(())
    }

    /// Writes a regular file at `rel` with exactly `mode`, replacing what is there (a file
    /// or symlink the step expected, or nothing). Readers see the old file or the new one,
    /// never a part. Returns the new file's stat.
    fn write_file(
        &self,
        rel: &Path,
        content: &mut dyn Read,
        mode: u32,
        expected: Expect,
    ) -> Result<Stat, WriteError>;

    /// Makes `rel` a symlink to `target`, replacing what is there.
    fn write_symlink(&self, rel: &Path, target: &[u8], expected: Expect) -> Result<(), WriteError>;

    /// Removes the file or symlink at `rel` (nothing there is fine).
    fn remove_file(&self, rel: &Path, expected: Expect) -> Result<(), WriteError>;

    /// Sets the permission bits of the file at `rel`.
    fn set_mode(&self, rel: &Path, mode: u32, expected: Expect) -> Result<(), WriteError> {
        let (dir, name) = self.root().parent_of(rel).map_err(WriteError::io(rel))?;
        if !expected.matches(dir.stat(name).map_err(WriteError::io(rel))?.as_ref()) {
            return Err(changed(rel));
        }
        dir.chmod(name, mode).map_err(WriteError::io(rel))
    }

    /// Moves the file at `from` to `to` (which must not exist); false when it could not
    /// (the caller then writes `to` afresh).
    fn rename(&self, from: &Path, to: &Path) -> Result<bool, WriteError> {
        let root = self.root();
        let (from_dir, from_name) = root.parent_of(from).map_err(WriteError::io(from))?;
        let (to_dir, to_name) = root.parent_of(to).map_err(WriteError::io(to))?;
        match from_dir.rename(from_name, &to_dir, to_name, false) {
            Ok(()) => Ok(true),
            Err(err) if err.raw_os_error() == Some(libc::EBUSY) => Err(WriteError::Busy(format!(
                "{} changed meanwhile",
                from.display()
            ))),
            Err(err) => {
                tracing::debug!(
                    "could not move {} to {}: {err}",
                    from.display(),
                    to.display()
                );
                Ok(false)
            }
        }
    }

    /// Creates the directory `rel` and any missing parents (mode 0755 before the umask of
    /// whoever the files belong to); a file or symlink in the way is an error.
    fn make_dirs(&self, rel: &Path) -> Result<(), WriteError> {
        let mut done = PathBuf::new();
        for part in rel.iter() {
            let dir = self.root().dir(&done).map_err(WriteError::io(rel))?;
            match dir.stat(part).map_err(WriteError::io(rel))? {
                Some(st) if st.kind == Kind::Dir => {}
                Some(_) => {
                    return Err(WriteError::Io {
                        path: done.join(part),
                        source: io::Error::from_raw_os_error(libc::ENOTDIR),
                    });
                }
                None => match self.mkdir(&dir, &done.join(part)) {
                    Ok(()) => {}
                    Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(err) => return Err(WriteError::io(rel)(err)),
                },
            }
            done.push(part);
        }
        Ok(())
    }

    /// Creates one directory (the plain writer sets its owner too).
    fn mkdir(&self, parent: &beneath::Dir, rel: &Path) -> io::Result<()> {
        let name = rel
            .file_name()
            .ok_or(io::Error::from_raw_os_error(libc::EINVAL))?;
        parent.mkdir(name, 0o755)
    }

    /// Removes `rel` if it is an empty directory; true when it is gone.
    fn remove_empty_dir(&self, rel: &Path) -> bool {
        match self.root().parent_of(rel) {
            Ok((dir, name)) => match dir.rmdir(name) {
                Ok(()) => true,
                Err(err) => beneath::is_missing(&err),
            },
            Err(_) => false,
        }
    }
}

/// The error for a path a user changed after the step looked at it.
pub fn changed(rel: &Path) -> WriteError {
    WriteError::Busy(format!(
        "{} changed since the sync looked at it",
        rel.display()
    ))
}

/// Copies `content` into `file`, leaving holes where whole blocks are zero (a sparse file
/// arrives sparse), and returns the size written.
pub fn copy_content(content: &mut dyn Read, file: &mut std::fs::File) -> io::Result<u64> {
    const BLOCK: usize = 64 * 1024;
    let mut buf = vec![0u8; BLOCK];
    let mut size = 0u64;
    let mut pending_hole = false;
    loop {
        let mut filled = 0;
        while filled < BLOCK {
            match content.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        if filled == 0 {
            break;
        }
        let chunk = &buf[..filled];
        if filled == BLOCK && chunk.iter().all(|&b| b == 0) {
            file.seek(SeekFrom::Current(BLOCK as i64))?;
            pending_hole = true;
        } else {
            file.write_all(chunk)?;
            pending_hole = false;
        }
        size += filled as u64;
        if filled < BLOCK {
            break;
        }
    }
    if pending_hole {
        file.set_len(size)?;
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_blocks_become_holes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparse");
        let mut file = std::fs::File::create(&path).unwrap();
        let mut data = vec![0u8; 4 << 20];
        data[0] = 1;
        let n = copy_content(&mut &data[..], &mut file).unwrap();
        drop(file);
        assert_eq!(n, data.len() as u64);
        assert_eq!(std::fs::read(&path).unwrap(), data);
        let blocks = std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&path).unwrap());
        assert!(blocks * 512 < 1 << 20, "{blocks} blocks allocated");
    }

    #[test]
    fn expectations() {
        let st = Stat {
            kind: Kind::File,
            mode: 0o644,
            size: 3,
            mtime_ns: 5_000_000,
            ctime_ns: 7,
            ino: 9,
            dev: 1,
            nlink: 1,
            uid: 0,
            gid: 0,
        };
        let seen = Expect::Present {
            size: 3,
            mtime_millis: 5,
            ino: 9,
            ctime_ns: 7,
        };
        assert!(seen.matches(Some(&st)));
        assert!(!seen.matches(Some(&Stat { ctime_ns: 8, ..st })));
        assert!(!Expect::Absent.matches(Some(&st)));
        assert!(Expect::Absent.matches(None));
        assert!(Expect::Unknown.matches(Some(&st)));
    }
}

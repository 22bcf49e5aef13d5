//! Writing a plain directory: a new version goes to a temporary file beside the old one,
//! created with its final mode (and, in a root daemon, its final owner), is checked against
//! what the step saw, and swapped in for it. A file that changed since the step looked is
//! never overwritten; a failed write leaves the old file in place. The temporary names
//! (`.jjfs-<pid>-<n>.tmp`) are the only thing jjfs ever puts in the directory, and only
//! for the time of one write.
//!
//! Nothing here can stop another process between the check and the swap, so the old file
//! is checked once more after it (the swap is atomic, `RENAME_EXCHANGE`, and leaves the old
//! file under the temporary name): a write that slipped in shows in its size or mtime, and
//! the swap is undone. What remains is a writer that opened the file before the swap and
//! writes after it, into the file that was replaced: the engine sees the files processes
//! hold open for writing (from /proc) and leaves them alone, but one opened in the few
//! microseconds of the swap is not seen (the documented limit of direct mounts).

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::beneath::{self, Dir, Kind, Root, Stat};
use super::{Expect, Files, Owner, WriteError, changed, copy_content};

pub struct PlainFiles {
    root: Root,
    owner: Option<Owner>,
    next_temp: AtomicU64,
}

/// The prefix of the engine's temporary files (ignored by snapshots and watchers).
pub const TEMP_PREFIX: &str = ".jjfs-";

impl PlainFiles {
    pub fn new(root: Root, owner: Option<Owner>) -> Self {
        Self {
            root,
            owner,
            next_temp: AtomicU64::new(0),
        }
    }

    fn temp_name(&self) -> OsString {
        let n = self.next_temp.fetch_add(1, Ordering::Relaxed);
        OsString::from(format!("{TEMP_PREFIX}{}-{n}.tmp", std::process::id()))
    }

    /// Removes `name` by moving it to a temporary name first and checking it there: a
    /// write that slipped in after the check brings it back.
    fn take_away(
        &self,
        dir: &Dir,
        name: &OsStr,
        rel: &Path,
        expected: Expect,
    ) -> Result<(), WriteError> {
        let temp = self.temp_name();
        match dir.rename(name, dir, &temp, false) {
            Ok(()) => {}
            Err(err) if beneath::is_missing(&err) => return Ok(()),
            Err(err) => return Err(WriteError::io(rel)(err)),
        }
        let taken = dir.stat(&temp).map_err(WriteError::io(rel))?;
        // A rename changes ctime, not size or mtime.
        if same_content(&expected, taken.as_ref()) {
            return dir.unlink(&temp).map_err(WriteError::io(rel));
        }
        // A write slipped in: the file goes back; if a new one is there already, that one
        // is newer (the one taken was replaced by its own writer).
        if dir.rename(&temp, dir, name, false).is_err() {
            let _ = dir.unlink(&temp);
        }
        Err(changed(rel))
    }

    fn chown(&self, dir: &Dir, name: &OsStr) -> std::io::Result<()> {
        match self.owner {
            Some(owner) => dir.chown(name, owner.uid, owner.gid),
            None => Ok(()),
        }
    }

    /// Puts the finished temp in place of `name` if what is there is still what the step
    /// saw (see the module docs).
    fn put_in_place(
        &self,
        dir: &Dir,
        temp: &OsStr,
        name: &OsStr,
        rel: &Path,
        expected: Expect,
    ) -> Result<(), WriteError> {
        let found = dir.stat(name).map_err(WriteError::io(rel))?;
        if found.is_some_and(|st| st.kind == Kind::Dir) || !expected.matches(found.as_ref()) {
            return Err(changed(rel));
        }
        match expected {
            Expect::Absent => match dir.rename(temp, dir, name, false) {
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Err(changed(rel)),
                other => other.map_err(WriteError::io(rel)),
            },
            Expect::Unknown => dir
                .rename(temp, dir, name, true)
                .map_err(WriteError::io(rel)),
            Expect::Present { .. } => self.swap_in(dir, temp, name, rel, expected),
        }
    }

    /// Swaps the temp in for `name`, then checks the old file (now under the temp's name):
    /// when it changed after the check, the swap is undone and the step retried.
    fn swap_in(
        &self,
        dir: &Dir,
        temp: &OsStr,
        name: &OsStr,
        rel: &Path,
        expected: Expect,
    ) -> Result<(), WriteError> {
        let ours = dir.stat(temp).map_err(WriteError::io(rel))?;
        match dir.exchange(temp, name) {
            Ok(()) => {}
            // A file system without RENAME_EXCHANGE: a plain rename, checked only before.
            Err(err) if err.raw_os_error() == Some(libc::EINVAL) => {
                return dir
                    .rename(temp, dir, name, true)
                    .map_err(WriteError::io(rel));
            }
            Err(err) => return Err(WriteError::io(rel)(err)),
        }
        let old = dir.stat(temp).map_err(WriteError::io(rel))?;
        if same_content(&expected, old.as_ref()) {
            let _ = dir.unlink(temp);
            return Ok(());
        }
        // Changed in between: the user's file goes back, ours is dropped by the caller.
        dir.exchange(temp, name).map_err(WriteError::io(rel))?;
        let is_ours = |st: Option<Stat>| st.is_some_and(|st| ours.is_some_and(|o| o.ino == st.ino));
        if !is_ours(dir.stat(temp).map_err(WriteError::io(rel))?) {
            // Yet another version was renamed there meanwhile: the newest one stays (the
            // one that went back was replaced by its own writer).
            let _ = dir.exchange(temp, name);
            let _ = dir.unlink(temp);
        }
        Err(changed(rel))
    }
}

/// Whether a file found after a swap is still what the step expected, ctime aside (the
/// swap itself changed it).
fn same_content(expected: &Expect, found: Option<&Stat>) -> bool {
    match (expected, found) {
        (
            Expect::Present {
                size,
                mtime_millis,
                ino,
                ..
            },
            Some(st),
        ) => {
            st.kind != Kind::Dir
                && *size == st.size
                && *mtime_millis == st.mtime_millis()
                && (*ino == 0 || *ino == st.ino)
        }
        (Expect::Absent, found) => found.is_none(),
        (Expect::Unknown, _) => true,
        (Expect::Present { .. }, None) => false,
    }
}

/// Whether a name is one of the engine's own temporary files.
pub fn is_temp_name(name: &OsStr) -> bool {
    let name = name.as_encoded_bytes();
    name.starts_with(TEMP_PREFIX.as_bytes()) && name.ends_with(b".tmp")
}

impl Files for PlainFiles {
    fn root(&self) -> &Root {
        &self.root
    }

    fn write_file(
        &self,
        rel: &Path,
        content: &mut dyn Read,
        mode: u32,
        expected: Expect,
    ) -> Result<Stat, WriteError> {
        let (dir, name) = self.root.parent_of(rel).map_err(WriteError::io(rel))?;
        let temp = self.temp_name();
        let mut file = dir.create_new(&temp, mode).map_err(WriteError::io(rel))?;
        let written = (|| {
            if let Some(owner) = self.owner {
                beneath::fchown(&file, owner.uid, owner.gid)?;
            }
            copy_content(content, &mut file)?;
            beneath::fstat(std::os::fd::AsFd::as_fd(&file))
        })();
        let result = written.map_err(WriteError::io(rel)).and_then(|before| {
            self.put_in_place(&dir, &temp, name, rel, expected)?;
            // A rename changes the file's ctime: the state records the file as it is now
            // (unless someone wrote to it already: then its ctime stays unknown, and the
            // next rescan reads it).
            let after = beneath::fstat(std::os::fd::AsFd::as_fd(&file)).unwrap_or(before);
            Ok(
                if after.size == before.size && after.mtime_ns == before.mtime_ns {
                    after
                } else {
                    Stat {
                        ctime_ns: 0,
                        ..before
                    }
                },
            )
        });
        drop(file);
        if result.is_err() {
            let _ = dir.unlink(&temp);
        }
        result
    }

    fn write_symlink(&self, rel: &Path, target: &[u8], expected: Expect) -> Result<(), WriteError> {
        let (dir, name) = self.root.parent_of(rel).map_err(WriteError::io(rel))?;
        let temp = self.temp_name();
        dir.symlink(target, &temp).map_err(WriteError::io(rel))?;
        let result = self
            .chown(&dir, &temp)
            .map_err(WriteError::io(rel))
            .and_then(|()| self.put_in_place(&dir, &temp, name, rel, expected));
        if result.is_err() {
            let _ = dir.unlink(&temp);
        }
        result
    }

    fn remove_file(&self, rel: &Path, expected: Expect) -> Result<(), WriteError> {
        let (dir, name) = match self.root.parent_of(rel) {
            Ok(found) => found,
            Err(err) if beneath::is_missing(&err) => return Ok(()),
            Err(err) => return Err(WriteError::io(rel)(err)),
        };
        match dir.stat(name).map_err(WriteError::io(rel))? {
            None => Ok(()),
            Some(st) if st.kind == Kind::Dir => Ok(()),
            Some(st) if !expected.matches(Some(&st)) => Err(changed(rel)),
            Some(_) if matches!(expected, Expect::Present { .. }) => {
                self.take_away(&dir, name, rel, expected)
            }
            Some(_) => match dir.unlink(name) {
                Ok(()) => Ok(()),
                Err(err) if beneath::is_missing(&err) => Ok(()),
                Err(err) => Err(WriteError::io(rel)(err)),
            },
        }
    }

    fn mkdir(&self, parent: &Dir, rel: &Path) -> std::io::Result<()> {
        let name = rel
            .file_name()
            .ok_or(std::io::Error::from_raw_os_error(libc::EINVAL))?;
        parent.mkdir(name, 0o755)?;
        self.chown(parent, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn present(st: &Stat) -> Expect {
        Expect::Present {
            size: st.size,
            mtime_millis: st.mtime_millis(),
            ino: st.ino,
            ctime_ns: st.ctime_ns,
        }
    }

    #[test]
    fn replaces_whole_and_never_overwrites_a_changed_file() {
        let dir = tempfile::tempdir().unwrap();
        let files = PlainFiles::new(Root::open(dir.path()).unwrap(), None);
        let rel = Path::new("a/b/note.md");
        files.make_dirs(Path::new("a/b")).unwrap();
        let st = files
            .write_file(rel, &mut &b"one"[..], 0o600, Expect::Absent)
            .unwrap();
        assert_eq!(st.mode, 0o600);
        assert_eq!(std::fs::read(dir.path().join(rel)).unwrap(), b"one");
        // A user edits it after the step looked: the write is refused, the edit stays.
        std::fs::write(dir.path().join(rel), "user's edit").unwrap();
        let err = files
            .write_file(rel, &mut &b"two"[..], 0o600, present(&st))
            .unwrap_err();
        assert!(matches!(err, WriteError::Busy(_)), "{err}");
        assert_eq!(std::fs::read(dir.path().join(rel)).unwrap(), b"user's edit");
        let now = files.root().lstat(rel).unwrap().unwrap();
        files
            .write_file(rel, &mut &b"three"[..], 0o640, present(&now))
            .unwrap();
        assert_eq!(std::fs::read(dir.path().join(rel)).unwrap(), b"three");
        let left: Vec<_> = std::fs::read_dir(dir.path().join("a/b")).unwrap().collect();
        assert_eq!(left.len(), 1, "a temporary file was left behind");
    }

    #[test]
    fn the_stat_returned_is_the_file_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let files = PlainFiles::new(Root::open(dir.path()).unwrap(), None);
        let rel = Path::new("note.md");
        let first = files
            .write_file(rel, &mut &b"one"[..], 0o644, Expect::Absent)
            .unwrap();
        assert_eq!(files.root().lstat(rel).unwrap().unwrap(), first);
        let second = files
            .write_file(rel, &mut &b"two!"[..], 0o644, present(&first))
            .unwrap();
        assert_eq!(files.root().lstat(rel).unwrap().unwrap(), second);
        // Something created meanwhile where the step expected nothing is never replaced.
        std::fs::write(dir.path().join("new.md"), "user's").unwrap();
        let err = files
            .write_file(
                Path::new("new.md"),
                &mut &b"ours"[..],
                0o644,
                Expect::Absent,
            )
            .unwrap_err();
        assert!(matches!(err, WriteError::Busy(_)), "{err}");
        assert_eq!(std::fs::read(dir.path().join("new.md")).unwrap(), b"user's");
        files.remove_file(rel, present(&second)).unwrap();
        assert!(!dir.path().join(rel).exists());
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "a temporary file was left behind");
    }

    #[test]
    fn a_removal_never_takes_a_changed_file() {
        let dir = tempfile::tempdir().unwrap();
        let files = PlainFiles::new(Root::open(dir.path()).unwrap(), None);
        let rel = Path::new("keep.md");
        let st = files
            .write_file(rel, &mut &b"one"[..], 0o644, Expect::Absent)
            .unwrap();
        std::fs::write(dir.path().join(rel), "user's edit").unwrap();
        let err = files.remove_file(rel, present(&st)).unwrap_err();
        assert!(matches!(err, WriteError::Busy(_)), "{err}");
        assert_eq!(std::fs::read(dir.path().join(rel)).unwrap(), b"user's edit");
    }

    #[test]
    fn writes_never_pass_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("evil")).unwrap();
        let files = PlainFiles::new(Root::open(dir.path()).unwrap(), None);
        let err = files
            .write_file(Path::new("evil/x"), &mut &b"x"[..], 0o644, Expect::Absent)
            .unwrap_err();
        assert!(matches!(err, WriteError::Unsafe { .. }), "{err}");
        assert!(files.make_dirs(Path::new("evil/sub")).is_err());
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }
}

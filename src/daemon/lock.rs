//! `daemon.lock`: one daemon per `JJFS_HOME`. The file holds the running daemon's pid on its
//! first line and an advisory lock (flock) for as long as the daemon lives; the kernel drops
//! the lock when the process dies, so a killed daemon's lock never blocks the next one.
//! (std's `File::try_lock` is flock: `fs4` or `fd-lock` would add a dependency for nothing.)

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// How long a new daemon waits for a dead daemon's lock to be released.
const DYING_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug)]
pub struct DaemonLock {
    file: File,
    /// The pid a previous daemon left in the file: it did not stop cleanly (a crash or
    /// `kill -9`), since a clean stop empties the file.
    pub(crate) unclean_predecessor: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum LockError {
    #[error("jjfsd is already running{} for {home}", .pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Held { pid: Option<u32>, home: PathBuf },
    #[error("cannot use the lock file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl DaemonLock {
    /// Takes the lock and writes our pid, or says who holds it. When the holder has already
    /// died but not yet let go, `free_dying` is called once to help it on its way.
    pub(crate) fn acquire(path: &Path, free_dying: impl FnOnce()) -> Result<Self, LockError> {
        let mut free_dying = Some(free_dying);
        let io = |source| LockError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        // A daemon that was just killed holds the lock until its last thread is gone.
        let deadline = std::time::Instant::now() + DYING_GRACE;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    let pid = read_pid(&mut file);
                    let dying = pid.is_some_and(|pid| !process_alive(pid));
                    if !dying || std::time::Instant::now() > deadline {
                        return Err(LockError::Held {
                            pid,
                            home: path.parent().unwrap_or(path).to_owned(),
                        });
                    }
                    if let Some(free) = free_dying.take() {
                        free();
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(TryLockError::Error(source)) => return Err(io(source)),
            }
        }
        let unclean_predecessor = read_pid(&mut file);
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(Self {
            file,
            unclean_predecessor,
        })
    }

    /// The pid of the daemon holding the lock at `path`, or None when no daemon holds it.
    pub fn holder(path: &Path) -> Option<u32> {
        let mut file = File::open(path).ok()?;
        match file.try_lock_shared() {
            Ok(()) => None,
            Err(TryLockError::WouldBlock) => read_pid(&mut file),
            Err(TryLockError::Error(_)) => None,
        }
    }
}

impl Drop for DaemonLock {
    /// A clean stop: the pid goes (so the next daemon knows), then the lock.
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.sync_all();
        let _ = self.file.unlock();
    }
}

/// Whether `pid` runs: false once it has exited, even while it is still a zombie (its
/// threads may be finishing, but it serves nothing any more).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may itself hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.lines().next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_and_names_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.lock");
        let first = DaemonLock::acquire(&path, || {}).unwrap();
        // flock locks belong to the open file description, so a second open conflicts even
        // within one process.
        match DaemonLock::acquire(&path, || {}) {
            Err(LockError::Held { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected Held, got {other:?}"),
        }
        assert_eq!(DaemonLock::holder(&path), Some(std::process::id()));
        drop(first);
        assert_eq!(DaemonLock::holder(&path), None);
        DaemonLock::acquire(&path, || {}).unwrap();
    }
}

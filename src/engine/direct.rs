//! A direct mount's folder: a plain directory of the user's that holds the working copy's
//! files itself (its jj state and jjfs's live under `$JJFS_HOME`). What a FUSE mount gives
//! the engine for free, a direct mount checks here:
//! - that the folder at the path is still the one opened (its device and inode), neither
//!   gone nor replaced by another directory (an unmounted volume, a container started
//!   without its bind mount), and not emptied while jjfs believes files are there: such a
//!   folder is never read, since every file would look deleted;
//! - which of its files processes hold open for writing (from /proc, see `mount::holders`);
//! - temporary files a killed daemon left behind.
//!
//! The folder is opened afresh for each step and not held open in between, so that the
//! volume it is on can still be unmounted.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use crate::config::FolderIdentity;
use crate::files::{Kind, Root, beneath};

/// How often the folders of direct mounts are checked when nothing else happens (a folder
/// that came back, or a volume unmounted under it, sends no event).
pub const FOLDER_CHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// The identity of the directory at `path` now.
pub fn identity_of(path: &Path) -> std::io::Result<FolderIdentity> {
    let meta = std::fs::metadata(path)?;
    Ok(FolderIdentity {
        dev: meta.dev(),
        ino: meta.ino(),
    })
}

#[derive(Debug, Clone)]
pub struct DirectFolder {
    path: PathBuf,
    repo: String,
    /// As recorded at `open`; None for a mount recorded without one (taken at start).
    identity: Option<FolderIdentity>,
}

impl DirectFolder {
    pub fn new(path: &Path, repo: &str, identity: Option<FolderIdentity>) -> Self {
        Self {
            path: path.to_owned(),
            repo: repo.to_owned(),
            identity,
        }
    }

    /// Opens the folder if it is still the one opened; else says what is wrong and what to
    /// do, as `status` shows it.
    pub fn open(&mut self) -> Result<Root, String> {
        let root = match Root::open(&self.path) {
            Ok(root) => root,
            Err(err) if beneath::is_missing(&err) => return Err(self.gone()),
            Err(err) if err.raw_os_error() == Some(libc::ENOTDIR) => return Err(self.replaced()),
            Err(err) => {
                return Err(format!(
                    "cannot open {}: {err}; nothing is synced into or out of it until it can",
                    self.path.display()
                ));
            }
        };
        let st = beneath::fstat(root.fd()).map_err(|e| format!("{}: {e}", self.path.display()))?;
        let now = FolderIdentity {
            dev: st.dev,
            ino: st.ino,
        };
        match self.identity {
            Some(identity) if identity != now => Err(self.replaced()),
            Some(_) => Ok(root),
            None => {
                self.identity = Some(now);
                Ok(root)
            }
        }
    }

    fn fix(&self) -> String {
        format!(
            "put the folder back, or `jjfs close {0}` (the repo keeps every synced file) and \
             `jjfs open {1} {0} --mode direct --adopt` to sync what is there now",
            self.path.display(),
            self.repo
        )
    }

    fn gone(&self) -> String {
        format!(
            "{} is gone (removed, moved, or on a volume that is not mounted); nothing is \
             synced into or out of it: {}",
            self.path.display(),
            self.fix()
        )
    }

    fn replaced(&self) -> String {
        format!(
            "{} is not the folder that was opened (another directory is there now: a volume \
             that is not mounted, a container started without its bind mount?); nothing is \
             synced into or out of it: {}",
            self.path.display(),
            self.fix()
        )
    }

    /// The problem of a folder found empty while jjfs wrote files there.
    pub fn emptied(&self) -> String {
        format!(
            "{} is empty, but jjfs had written files there (a volume that is not mounted?); \
             nothing is synced into or out of it, so that the other mounts keep their files: {}",
            self.path.display(),
            self.fix()
        )
    }

    /// The folder's path with symlinks resolved (as /proc shows open files), if it exists.
    pub fn canonical(&self) -> Option<PathBuf> {
        self.path.canonicalize().ok()
    }
}

/// Whether a folder holds nothing but the engine's temporary files.
pub fn is_empty(root: &Root) -> bool {
    match root.read_dir(Path::new("")) {
        Ok(entries) => entries.iter().all(|e| crate::files::is_temp_name(&e.name)),
        Err(_) => false,
    }
}

/// Removes temporary files another jjfs process (a daemon killed in the middle of a write)
/// left at `paths` beneath `root`; this process's own are in use.
pub fn remove_leftovers(root: &Root, paths: &[PathBuf]) {
    let mine = format!("{}{}-", crate::files::TEMP_PREFIX, std::process::id());
    for rel in paths {
        let Some(name) = rel.file_name() else {
            continue;
        };
        if name.as_encoded_bytes().starts_with(mine.as_bytes()) {
            continue;
        }
        let Ok((dir, name)) = root.parent_of(rel) else {
            continue;
        };
        if matches!(dir.stat(name), Ok(Some(st)) if st.kind == Kind::File || st.kind == Kind::Symlink)
        {
            match dir.unlink(name) {
                Ok(()) => tracing::info!(
                    "removed {}, left by an earlier jjfs process",
                    root.path().join(rel).display()
                ),
                Err(err) => {
                    tracing::warn!("cannot remove {}: {err}", root.path().join(rel).display())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_replaced_or_gone_is_never_opened() {
        let base = tempfile::tempdir().unwrap();
        let path = base.path().join("notes");
        std::fs::create_dir(&path).unwrap();
        let mut folder = DirectFolder::new(&path, "default", Some(identity_of(&path).unwrap()));
        assert!(folder.open().is_ok());
        std::fs::rename(&path, base.path().join("moved")).unwrap();
        let gone = folder.open().unwrap_err();
        assert!(gone.contains("is gone"), "{gone}");
        std::fs::create_dir(&path).unwrap();
        let replaced = folder.open().unwrap_err();
        assert!(
            replaced.contains("not the folder that was opened"),
            "{replaced}"
        );
        assert!(replaced.contains("--adopt"), "{replaced}");
        std::fs::remove_dir(&path).unwrap();
        std::fs::rename(base.path().join("moved"), &path).unwrap();
        assert!(folder.open().is_ok(), "the folder is back");
    }

    #[test]
    fn only_temporary_files_count_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        assert!(is_empty(&root));
        std::fs::write(dir.path().join(".jjfs-1-0.tmp"), "").unwrap();
        assert!(is_empty(&root));
        std::fs::write(dir.path().join("note.md"), "").unwrap();
        assert!(!is_empty(&root));
    }

    #[test]
    fn leftovers_of_other_processes_go_and_ours_stay() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let theirs = PathBuf::from(".jjfs-999999999-3.tmp");
        let ours = PathBuf::from(format!(".jjfs-{}-0.tmp", std::process::id()));
        for p in [&theirs, &ours] {
            std::fs::write(dir.path().join(p), "").unwrap();
        }
        remove_leftovers(&root, &[theirs.clone(), ours.clone()]);
        assert!(!dir.path().join(&theirs).exists());
        assert!(dir.path().join(&ours).exists());
    }
}

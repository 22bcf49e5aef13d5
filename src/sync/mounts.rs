//! One mount as its repo's actor holds it: the FUSE session, the watcher on its backing
//! workspace, the paths changed since its last snapshot, and its health.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Utc};
use crossbeam_channel::Sender;
use uuid::Uuid;

use super::Event;
use super::echo::EchoFilter;
use super::status::MountStatus;
use crate::mount::{ChangeSink, Mount, MountOptions};
use crate::repo::working_copy::Scan;
use crate::watch::{WatchEvent, Watcher};

/// Forwards a mount's change reports to its actor. Never blocks (unbounded channel).
struct MountSink {
    id: Uuid,
    tx: Sender<Event>,
}

impl ChangeSink for MountSink {
    fn changed(&self, paths: Vec<PathBuf>) {
        let _ = self.tx.send(Event::Mount { id: self.id, paths });
    }
}

pub struct MountRuntime {
    pub id: Uuid,
    /// Where users see it.
    pub path: PathBuf,
    /// The backing jj workspace.
    pub backing: PathBuf,
    mount: Option<Mount>,
    _watcher: Option<Watcher>,
    /// Paths changed since the last snapshot.
    pending: BTreeSet<PathBuf>,
    /// Of those, the ones the mount reported (changed through it).
    through_mount: BTreeSet<PathBuf>,
    /// Everything must be rescanned (start, watcher overflow, periodic safety net).
    full_scan: bool,
    pub echoes: EchoFilter,
    /// None when healthy, else what is wrong and how to fix it.
    pub problem: Option<String>,
    pub last_sync: Option<DateTime<Utc>>,
}

impl MountRuntime {
    /// A mount known from config but not (yet) mounted.
    pub fn new(id: Uuid, path: PathBuf, backing: PathBuf) -> Self {
        Self {
            id,
            path,
            backing,
            mount: None,
            _watcher: None,
            pending: BTreeSet::new(),
            through_mount: BTreeSet::new(),
            full_scan: true,
            echoes: EchoFilter::default(),
            problem: None,
            last_sync: None,
        }
    }

    /// Mounts the backing workspace at `path` and watches it.
    pub fn start(&mut self, tx: &Sender<Event>) -> Result<(), String> {
        let sink = std::sync::Arc::new(MountSink {
            id: self.id,
            tx: tx.clone(),
        });
        let mount = Mount::start(&self.path, &self.backing, sink, &MountOptions::default())
            .map_err(|e| e.to_string())?;
        let watch_tx = tx.clone();
        let id = self.id;
        let watcher = Watcher::start(&self.backing, move |event| {
            let event = match event {
                WatchEvent::Changed(paths) => Event::Watch { id, paths },
                WatchEvent::Overflow => Event::Overflow { id },
            };
            let _ = watch_tx.send(event);
        })
        .map_err(|e| format!("cannot watch {}: {e}", self.backing.display()))?;
        self.mount = Some(mount);
        self._watcher = Some(watcher);
        self.problem = None;
        Ok(())
    }

    /// Where a sync writes this workspace's files: through the mount when there is one.
    pub fn files_root(&self) -> &Path {
        if self.mount.is_some() {
            &self.path
        } else {
            &self.backing
        }
    }

    /// Changes users made through the mount.
    pub fn note_changes(&mut self, paths: Vec<PathBuf>) {
        self.through_mount.extend(paths.iter().cloned());
        self.pending.extend(paths);
    }

    /// Changes seen by the watcher, minus the engine's own writes.
    pub fn note_watched(&mut self, paths: Vec<PathBuf>, now: Instant) -> bool {
        let before = self.pending.len();
        for path in paths {
            if !self.echoes.is_echo(&self.backing, &path, now) {
                self.pending.insert(path);
            }
        }
        self.pending.len() > before
    }

    /// Paths changed directly in the backing directory (not through the mount) leave the
    /// kernel's caches of the mount stale: drop them.
    fn invalidate_direct_edits(&mut self) {
        if let Some(mount) = &self.mount {
            let direct: Vec<PathBuf> = self
                .pending
                .difference(&self.through_mount)
                .cloned()
                .collect();
            if !direct.is_empty() {
                mount.invalidate(&direct);
            }
        }
        self.through_mount.clear();
    }

    pub fn request_full_scan(&mut self) {
        self.full_scan = true;
    }

    pub fn has_pending(&self) -> bool {
        self.full_scan || !self.pending.is_empty()
    }

    /// Takes what the next snapshot must look at. `tracked_under` lists the files a
    /// directory held, so that a removed or renamed directory's files are seen as gone.
    pub fn take_scan(&mut self, filter: &mut dyn ScanFilter) -> Option<(Scan, Vec<PathBuf>)> {
        self.invalidate_direct_edits();
        if std::mem::take(&mut self.full_scan) {
            self.pending.clear();
            return Some((Scan::Full, Vec::new()));
        }
        if self.pending.is_empty() {
            return None;
        }
        let pending: Vec<PathBuf> = std::mem::take(&mut self.pending).into_iter().collect();
        let files = expand(&self.backing, &pending, filter);
        if files.is_empty() {
            return None;
        }
        Some((Scan::Paths(files), pending))
    }

    /// Puts back what a failed sync took.
    pub fn restore_scan(&mut self, scan: &Scan, pending: Vec<PathBuf>) {
        match scan {
            Scan::Full => self.full_scan = true,
            Scan::Paths(_) => self.pending.extend(pending),
        }
    }

    /// Paths users hold open for writing in this mount.
    pub fn held(&self) -> Vec<PathBuf> {
        self.mount
            .as_ref()
            .map(Mount::user_writers)
            .unwrap_or_default()
    }

    pub fn status(&self) -> MountStatus {
        MountStatus {
            id: self.id,
            path: self.path.clone(),
            workspace: self.backing.clone(),
            problem: self.problem.clone(),
            last_sync: self.last_sync,
            io_mode: self.mount.as_ref().map(Mount::io_mode),
        }
    }

    /// Unmounts cleanly; fails (and stays mounted) while the mount is busy.
    pub fn unmount(&mut self) -> Result<(), String> {
        if let Some(mount) = self.mount.take() {
            self._watcher = None;
            if let Err(err) = mount_unmount(mount) {
                return Err(err.0);
            }
        }
        Ok(())
    }

    /// Unmounts even if busy (daemon shutdown).
    pub fn detach(&mut self) {
        self._watcher = None;
        if let Some(mount) = self.mount.take() {
            mount.detach();
        }
    }

    pub fn mount(&self) -> Option<&Mount> {
        self.mount.as_ref()
    }
}

struct Unmounted(String);

fn mount_unmount(mount: Mount) -> Result<(), Unmounted> {
    mount.unmount().map_err(|e| Unmounted(e.to_string()))
}

/// What the engine knows about a workspace's paths when it plans a snapshot.
pub trait ScanFilter {
    /// Files the workspace tracks under each of `dirs`.
    fn tracked_under(&mut self, dirs: &[PathBuf]) -> Vec<PathBuf>;
    /// Whether a path (a directory when `is_dir`) is ignored and tracks nothing: a
    /// snapshot would skip it anyway.
    fn skips(&mut self, path: &Path, is_dir: bool) -> bool;
}

/// The files a snapshot must look at for a set of changed paths: each path itself, every
/// file under a path that is a directory now, and every file the workspace tracked under a
/// path that is no longer a regular file (a removed or renamed directory). Ignored paths
/// that track nothing are left out, directories included, so a build directory costs nothing.
fn expand(backing: &Path, paths: &[PathBuf], filter: &mut dyn ScanFilter) -> Vec<PathBuf> {
    let mut files = BTreeSet::new();
    let mut gone_dirs = Vec::new();
    for path in paths {
        let full = backing.join(path);
        match std::fs::symlink_metadata(&full) {
            Ok(meta) if meta.is_dir() => {
                if !filter.skips(path, true) {
                    files.insert(path.clone());
                    walk_files(backing, &full, &mut files, filter);
                    gone_dirs.push(path.clone());
                }
            }
            Ok(_) => {
                if !filter.skips(path, false) {
                    files.insert(path.clone());
                }
            }
            Err(_) => {
                files.insert(path.clone());
                gone_dirs.push(path.clone());
            }
        }
    }
    if !gone_dirs.is_empty() {
        files.extend(filter.tracked_under(&gone_dirs));
    }
    files.into_iter().collect()
}

fn walk_files(
    backing: &Path,
    dir: &Path,
    out: &mut BTreeSet<PathBuf>,
    filter: &mut dyn ScanFilter,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        let Ok(rel) = path.strip_prefix(backing) else {
            continue;
        };
        if file_type.is_dir() {
            if entry.file_name() == ".jj" || entry.file_name() == ".git" || filter.skips(rel, true)
            {
                continue;
            }
            walk_files(backing, &path, out, filter);
        } else if !filter.skips(rel, false) {
            out.insert(rel.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake;

    impl ScanFilter for Fake {
        fn tracked_under(&mut self, dirs: &[PathBuf]) -> Vec<PathBuf> {
            assert!(dirs.contains(&PathBuf::from("old")));
            vec![PathBuf::from("old/x"), PathBuf::from("old/y/z")]
        }

        fn skips(&mut self, path: &Path, _is_dir: bool) -> bool {
            path.starts_with("new/build") || path.ends_with("x.swp")
        }
    }

    #[test]
    fn expand_lists_files_of_new_and_removed_directories() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("new/sub")).unwrap();
        std::fs::create_dir_all(dir.path().join("new/build")).unwrap();
        std::fs::write(dir.path().join("new/sub/a"), "a").unwrap();
        std::fs::write(dir.path().join("new/b"), "b").unwrap();
        std::fs::write(dir.path().join("new/build/out"), "o").unwrap();
        std::fs::write(dir.path().join("plain"), "p").unwrap();
        std::fs::write(dir.path().join("x.swp"), "s").unwrap();
        let paths = ["new", "old", "plain", "x.swp"].map(PathBuf::from);
        let files = expand(dir.path(), &paths, &mut Fake);
        let files: Vec<&str> = files.iter().map(|p| p.to_str().unwrap()).collect();
        for expected in ["new/sub/a", "new/b", "old/x", "old/y/z", "plain"] {
            assert!(
                files.contains(&expected),
                "{expected} missing from {files:?}"
            );
        }
        assert!(
            !files
                .iter()
                .any(|f| f.contains("build") || f.ends_with("swp")),
            "{files:?}"
        );
    }
}

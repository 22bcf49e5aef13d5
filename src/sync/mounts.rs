//! One mount as its repo's actor holds it: the FUSE session, the watcher on its backing
//! workspace, the paths changed since its last snapshot, and its health.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Utc};
use crossbeam_channel::Sender;
use uuid::Uuid;

use super::Event;
use super::echo::EchoFilter;
use super::status::MountStatus;
use crate::mount::{ChangeSink, Mount, MountOptions, Updater};
use crate::repo::sync::FilesGuard;
use crate::repo::working_copy::Scan;
use crate::stamp::Stamp;
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
    /// Paths that cannot be synced (special or unreadable files), with why.
    skipped: BTreeMap<PathBuf, String>,
    /// None when healthy, else what is wrong and how to fix it.
    pub problem: Option<String>,
    /// Consecutive failed sync steps.
    pub failures: u32,
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
            skipped: BTreeMap::new(),
            problem: None,
            failures: 0,
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

    /// Takes what the next snapshot must look at: the changed paths, or everything after a
    /// rescan request. Files users hold open for writing (`held`) wait for their release
    /// unless everything is rescanned: a half-written file is not worth a commit. Paths that
    /// cannot be synced (special files, unreadable files) are left out and remembered in
    /// `skipped`.
    pub fn take_scan(&mut self, filter: &mut dyn ScanFilter, held: &[PathBuf]) -> Option<Planned> {
        self.invalidate_direct_edits();
        if std::mem::take(&mut self.full_scan) {
            self.pending.clear();
            let mut found = Found::default();
            walk_files(&self.backing, &self.backing, &mut found, filter);
            found.files.extend(filter.tracked_under(&[PathBuf::new()]));
            let known = std::mem::take(&mut self.skipped);
            for (path, why) in found.skipped {
                if known.contains_key(&path) {
                    self.skipped.insert(path, why);
                } else {
                    self.skip(path, why);
                }
            }
            return Some(Planned {
                scan: Scan::Paths(found.files.into_iter().collect()),
                pending: Vec::new(),
                full: true,
                stamps: Vec::new(),
            });
        }
        if self.pending.is_empty() {
            return None;
        }
        let (waiting, pending): (Vec<PathBuf>, Vec<PathBuf>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| held.contains(p));
        self.pending.extend(waiting);
        let found = expand(&self.backing, &pending, filter);
        for path in &found.examined {
            self.skipped.remove(path);
        }
        for (path, why) in found.skipped {
            self.skip(path, why);
        }
        if found.files.is_empty() {
            return None;
        }
        let stamps = found
            .files
            .iter()
            .map(|p| (p.clone(), Stamp::of(&self.backing.join(p))))
            .collect();
        Some(Planned {
            scan: Scan::Paths(found.files.into_iter().collect()),
            pending,
            full: false,
            stamps,
        })
    }

    /// Puts back what a failed sync took.
    pub fn restore_scan(&mut self, planned: &Planned) {
        if planned.full {
            self.full_scan = true;
        } else {
            self.pending.extend(planned.pending.iter().cloned());
        }
    }

    /// Records a path the snapshot could not sync.
    pub fn skip(&mut self, path: PathBuf, why: String) {
        tracing::warn!(mount = %self.path.display(), "not synced: {}: {why}", path.display());
        self.skipped.insert(path, why);
    }

    /// Paths of this mount that cannot be synced, with why.
    pub fn skipped(&self) -> impl Iterator<Item = (&PathBuf, &String)> {
        self.skipped.iter()
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

    /// Unmounts cleanly; fails (and stays mounted, watched and synced) while the mount is
    /// busy.
    pub fn unmount(&mut self) -> Result<(), String> {
        if let Some(mount) = &mut self.mount {
            mount.unmount().map_err(|e| e.to_string())?;
        }
        self.mount = None;
        self._watcher = None;
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

    /// Reads the mount's change count now, as the fence of the update being planned.
    pub fn fence(&self) -> Option<(Updater, u64)> {
        let updater = self.mount.as_ref()?.updater();
        let fence = updater.change_count();
        Some((updater, fence))
    }
}

/// The guard a mount puts on the sync's writes into it (see `mount::engine`).
pub struct MountGuard {
    pub updater: Updater,
    pub fence: u64,
}

impl FilesGuard for MountGuard {
    fn begin(&self, replaced: std::collections::HashSet<PathBuf>) {
        self.updater.begin(self.fence, replaced);
    }

    fn end(&self) -> Result<(), String> {
        self.updater.end()
    }
}

/// What the engine knows about a workspace's paths when it plans a snapshot.
pub trait ScanFilter {
    /// Files the workspace tracks under each of `dirs`.
    fn tracked_under(&mut self, dirs: &[PathBuf]) -> Vec<PathBuf>;
    /// Whether a path (a directory when `is_dir`) is ignored and tracks nothing: a
    /// snapshot would skip it anyway.
    fn skips(&mut self, path: &Path, is_dir: bool) -> bool;
}

/// What a snapshot will look at.
pub struct Planned {
    pub scan: Scan,
    /// The changed paths it came from (put back if the sync fails).
    pub pending: Vec<PathBuf>,
    /// Everything was rescanned.
    pub full: bool,
    /// How the changed files looked before the snapshot read them: watcher events that
    /// still find them so are echoes of the snapshot's own reading.
    pub stamps: Vec<(PathBuf, Stamp)>,
}

/// What planning found on disk.
#[derive(Default)]
struct Found {
    /// Files the snapshot must look at.
    files: BTreeSet<PathBuf>,
    /// Paths that cannot be synced, with why.
    skipped: BTreeMap<PathBuf, String>,
    /// Every path looked at (so that a path that became syncable again is no longer skipped).
    examined: Vec<PathBuf>,
}

impl Found {
    /// Adds a file that exists, unless it cannot be synced.
    fn file(&mut self, backing: &Path, rel: &Path, meta: &std::fs::Metadata) {
        self.examined.push(rel.to_owned());
        match unsyncable(&backing.join(rel), meta) {
            Some(why) => {
                self.skipped.insert(rel.to_owned(), why);
            }
            None => {
                self.files.insert(rel.to_owned());
            }
        }
    }
}

/// Why a file cannot be synced, if it cannot: only regular files and symlinks are versioned,
/// and a file must be readable to be recorded.
fn unsyncable(full: &Path, meta: &std::fs::Metadata) -> Option<String> {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    let special = if kind.is_fifo() {
        "a named pipe (FIFO)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device file"
    } else if kind.is_file() {
        return match std::fs::File::open(full) {
            Ok(_) => None,
            Err(err) => Some(format!("it cannot be read ({err}), so it is not synced")),
        };
    } else {
        return None;
    };
    Some(format!(
        "{special} holds no content to sync, so it stays in this mount only"
    ))
}

/// The files a snapshot must look at for a set of changed paths: each path itself, every
/// file under a path that is a directory now, and every file the workspace tracked under a
/// path that is no longer a regular file (a removed or renamed directory). Ignored paths
/// that track nothing are left out, directories included, so a build directory costs nothing.
fn expand(backing: &Path, paths: &[PathBuf], filter: &mut dyn ScanFilter) -> Found {
    let mut found = Found::default();
    let mut gone_dirs = Vec::new();
    for path in paths {
        let full = backing.join(path);
        match std::fs::symlink_metadata(&full) {
            Ok(meta) if meta.is_dir() => {
                if !filter.skips(path, true) {
                    found.files.insert(path.clone());
                    walk_files(backing, &full, &mut found, filter);
                    gone_dirs.push(path.clone());
                }
            }
            Ok(meta) => {
                if !filter.skips(path, false) {
                    found.file(backing, path, &meta);
                }
            }
            Err(_) => {
                found.examined.push(path.clone());
                found.files.insert(path.clone());
                gone_dirs.push(path.clone());
            }
        }
    }
    if !gone_dirs.is_empty() {
        found.files.extend(filter.tracked_under(&gone_dirs));
    }
    found
}

fn walk_files(backing: &Path, dir: &Path, found: &mut Found, filter: &mut dyn ScanFilter) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        let Ok(rel) = path.strip_prefix(backing) else {
            continue;
        };
        if meta.is_dir() {
            let name = entry.file_name();
            if name == ".jj" || name == ".git" || filter.skips(rel, true) {
                continue;
            }
            walk_files(backing, &path, found, filter);
        } else if !filter.skips(rel, false) {
            found.file(backing, rel, &meta);
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
        nix::unistd::mkfifo(&dir.path().join("new/pipe"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let paths = ["new", "old", "plain", "x.swp"].map(PathBuf::from);
        let found = expand(dir.path(), &paths, &mut Fake);
        let files: Vec<&str> = found.files.iter().map(|p| p.to_str().unwrap()).collect();
        assert!(
            found.skipped.contains_key(Path::new("new/pipe")),
            "{:?}",
            found.skipped
        );
        assert!(!files.contains(&"new/pipe"));
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

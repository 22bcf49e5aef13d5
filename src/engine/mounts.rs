//! One mount as its repo's actor holds it: the FUSE session and the watcher on its backing
//! workspace (or, for a direct mount, the watcher on its folder and the checks of
//! `direct`), the paths changed since its last snapshot, and its health.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use crossbeam_channel::Sender;
use uuid::Uuid;

use super::Event;
use super::direct::DirectFolder;
use super::echo::EchoFilter;
use super::scan::{self, ScanFilter};
use super::status::MountStatus;
use crate::config::MountConfig;
use crate::files::{Fence, Files, MountFiles, Owner, PlainFiles, Root};
use crate::mount::{ChangeSink, Mount, MountOptions, Updater};
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

    fn detached(&self) {
        let _ = self.tx.send(Event::Detached { id: self.id });
    }
}

pub struct MountRuntime {
    pub id: Uuid,
    /// Where users see it.
    pub path: PathBuf,
    /// Where its files are: the backing jj workspace of a FUSE mount, the folder itself of
    /// a direct mount.
    pub backing: PathBuf,
    /// Its jj workspace (`.jj`): the backing workspace, or a direct mount's state folder.
    pub state_dir: PathBuf,
    /// A direct mount's folder checks.
    direct: Option<DirectFolder>,
    /// A direct mount's folder is gone, replaced or emptied (`problem` says which): nothing
    /// is read from it or written into it until it is back.
    pub folder_lost: bool,
    /// Files processes hold open for writing in a direct mount, as last read from /proc.
    writers: Vec<PathBuf>,
    /// Where the watcher reports (kept to watch a direct mount's folder again once back).
    tx: Option<Sender<Event>>,
    /// Who owns the files the engine creates there.
    owner: Option<Owner>,
    /// The backing workspace, held open: snapshots read its files beneath it.
    read_root: Option<Arc<Root>>,
    mount: Option<Mount>,
    _watcher: Option<Watcher>,
    /// Paths changed since the last snapshot.
    pending: BTreeSet<PathBuf>,
    /// Of those, the ones the mount reported (changed through it).
    through_mount: BTreeSet<PathBuf>,
    /// Everything must be rescanned (start, watcher overflow, periodic safety net).
    full_scan: bool,
    pub echoes: EchoFilter,
    /// Paths that cannot be synced (special or unreadable files, nested repositories).
    skipped: BTreeMap<PathBuf, String>,
    /// Tracked files inside nested repositories, kept as they are on disk.
    nested_held: Vec<PathBuf>,
    /// The repo folders it is to show (None: everything), as config has them.
    pub only: Option<Vec<String>>,
    /// The `.gitignore` files from the repo that apply in its selection, as last planned
    /// with (a change rescans it).
    repo_ignores: Vec<(String, Vec<u8>)>,
    /// None when healthy, else what is wrong and how to fix it.
    pub problem: Option<String>,
    /// Consecutive failed sync steps.
    pub failures: u32,
    /// When a failed update is tried again.
    pub retry_at: Option<Instant>,
    /// Paths the last step left as they are because a user holds them open for writing.
    pub held_back: Vec<String>,
    pub last_sync: Option<DateTime<Utc>>,
    /// `jjfs pause PATH`: left out of every step (its repo may be paused too).
    pub paused: bool,
}

/// What a step took from a mount's pending changes (put back if the step fails).
pub struct Taken {
    pub scan: Scan,
    /// The changed paths it came from.
    pub pending: Vec<PathBuf>,
    /// Everything was rescanned.
    pub full: bool,
}

impl MountRuntime {
    /// A mount known from config but not (yet) mounted.
    pub fn new(config: &MountConfig) -> Self {
        Self {
            id: config.id,
            path: config.path.clone(),
            backing: config.files_dir().to_owned(),
            state_dir: config.workspace.clone(),
            direct: config
                .is_direct()
                .then(|| DirectFolder::new(&config.path, &config.repo, config.identity)),
            folder_lost: false,
            writers: Vec::new(),
            tx: None,
            owner: config.file_owner(),
            read_root: None,
            mount: None,
            _watcher: None,
            pending: BTreeSet::new(),
            through_mount: BTreeSet::new(),
            full_scan: true,
            echoes: EchoFilter::default(),
            skipped: BTreeMap::new(),
            nested_held: Vec::new(),
            only: config.only.clone(),
            repo_ignores: Vec::new(),
            problem: None,
            failures: 0,
            retry_at: None,
            held_back: Vec::new(),
            last_sync: None,
            paused: config.paused,
        }
    }

    /// Mounts the backing workspace at `path` and watches it; a direct mount's folder is
    /// checked and watched.
    pub fn start(&mut self, tx: &Sender<Event>) -> Result<(), String> {
        self.tx = Some(tx.clone());
        if let Some(folder) = &mut self.direct {
            if let Err(problem) = folder.open() {
                self.folder_lost = true;
                return Err(problem);
            }
            self.watch_folder()?;
            self.problem = None;
            return Ok(());
        }
        let read_root = Root::open(&self.backing)
            .map_err(|e| format!("cannot open {}: {e}", self.backing.display()))?;
        let sink = Arc::new(MountSink {
            id: self.id,
            tx: tx.clone(),
        });
        let options = MountOptions {
            owner: self.owner.map(|o| (o.uid, o.gid)),
            ..MountOptions::default()
        };
        let mount =
            Mount::start(&self.path, &self.backing, sink, &options).map_err(|e| e.to_string())?;
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
        self.read_root = Some(Arc::new(read_root));
        self.mount = Some(mount);
        self._watcher = Some(watcher);
        self.problem = None;
        Ok(())
    }

    /// Watches a direct mount's folder (reporting files closed after writing too).
    fn watch_folder(&mut self) -> Result<(), String> {
        let Some(tx) = self.tx.clone() else {
            return Ok(());
        };
        let id = self.id;
        let watcher = Watcher::start_reporting_closes(&self.path, move |event| {
            let event = match event {
                WatchEvent::Changed(paths) => Event::Watch { id, paths },
                WatchEvent::Overflow => Event::Overflow { id },
            };
            let _ = tx.send(event);
        })
        .map_err(|e| format!("cannot watch {}: {e}", self.path.display()))?;
        self._watcher = Some(watcher);
        Ok(())
    }

    pub fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// Checks a direct mount's folder before a step (or on the actor's periodic check):
    /// Some(its root) when it can be read and written, else None with the mount unhealthy
    /// (`folder_lost`). `has_files` tells whether jjfs believes files are there (an empty
    /// folder is then taken for a missing volume). A folder that comes back is watched
    /// again and rescanned whole.
    pub fn check_folder(&mut self, has_files: impl FnOnce() -> bool) -> Option<Arc<Root>> {
        // Files deleted in the folder were reported by its watcher one by one; a folder
        // found empty with nothing reported (a volume gone from under it, or emptied while
        // the daemon was down) is not read.
        let reported = !self.pending.is_empty();
        let folder = self.direct.as_mut()?;
        let mut emptied = false;
        let checked = folder.open().and_then(|root| {
            if !reported && super::direct::is_empty(&root) && has_files() {
                emptied = true;
                Err(folder.emptied())
            } else {
                Ok(root)
            }
        });
        match checked {
            Ok(root) => {
                if self.folder_lost {
                    tracing::info!(mount = %self.path.display(), "the folder is back: rescanning it");
                    self.folder_lost = false;
                    self.problem = None;
                    self.request_full_scan();
                    if let Err(err) = self.watch_folder() {
                        tracing::warn!(mount = %self.path.display(), "{err}");
                    }
                }
                let root = Arc::new(root);
                self.read_root = Some(root.clone());
                Some(root)
            }
            Err(problem) => {
                if self.problem.as_ref() != Some(&problem) {
                    tracing::warn!(mount = %self.path.display(), "unhealthy: {problem}");
                }
                self.folder_lost = true;
                self.problem = Some(problem);
                self.read_root = None;
                if emptied {
                    // Still the folder opened: still watched, and deletions reported in it
                    // later are the user's (then it is read again).
                    return None;
                }
                // What was pending is read again, as a whole, once the folder is back.
                self.pending.clear();
                self.through_mount.clear();
                self.full_scan = true;
                self._watcher = None;
                self.read_root = None;
                None
            }
        }
    }

    /// A direct mount lets go of its folder between steps (so that the volume it is on can
    /// still be unmounted).
    pub fn release_folder(&mut self) {
        if self.direct.is_some() {
            self.read_root = None;
        }
    }

    /// The folder holding this mount's files on disk, canonical (how /proc names them): a
    /// direct mount's own folder (None while it is lost), a FUSE mount's backing workspace.
    pub fn files_canonical(&self) -> Option<PathBuf> {
        match &self.direct {
            Some(direct) => (!self.folder_lost).then(|| direct.canonical()).flatten(),
            None => self.backing.canonicalize().ok(),
        }
    }

    /// Files other processes hold open for writing in this mount's folder on disk (from
    /// /proc; see `files_canonical`).
    pub fn set_writers(&mut self, writers: Vec<PathBuf>) {
        self.writers = writers;
    }

    /// The backing workspace as snapshots read it; None when it is gone or was replaced
    /// (then nothing may be read from it: it would look as if every file was deleted).
    pub fn read_root(&self) -> Option<Arc<Root>> {
        self.read_root
            .as_ref()
            .filter(|root| root.is_still_at_path())
            .cloned()
    }

    /// Where a step writes this workspace's files: through the mount (fenced against users'
    /// concurrent changes from `fence` on) when mounted, else the backing directory.
    pub fn files(&self, fence: Option<(Updater, u64)>) -> Result<Arc<dyn Files>, String> {
        let open = |path: &Path| {
            Root::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))
        };
        Ok(match (&self.mount, fence) {
            (Some(_), Some((updater, fence))) => {
                let root = open(&self.path)?;
                // Unmounted behind jjfs's back (`umount -l`): the path is a bare directory
                // on its parent's file system now, and nothing may be written into it.
                let dev = crate::files::beneath::fstat(root.fd())
                    .ok()
                    .map(|st| st.dev);
                let parent_dev = self
                    .path
                    .parent()
                    .and_then(|p| std::fs::metadata(p).ok())
                    .map(|m| std::os::unix::fs::MetadataExt::dev(&m));
                if dev.is_none() || dev == parent_dev {
                    return Err(self.detached_problem());
                }
                let backing = self
                    .read_root
                    .clone()
                    .ok_or_else(|| format!("{} is not open", self.backing.display()))?;
                Arc::new(MountFiles::new(
                    root,
                    Arc::new(MountGuard { updater, fence }),
                    backing,
                ))
            }
            _ if self.direct.is_some() => {
                // The folder the step checked, never reopened by path.
                let root = self
                    .read_root
                    .as_ref()
                    .ok_or_else(|| format!("{} is not open", self.path.display()))?
                    .try_clone()
                    .map_err(|e| format!("{}: {e}", self.path.display()))?;
                Arc::new(PlainFiles::new(root, self.owner))
            }
            _ => Arc::new(PlainFiles::new(open(&self.backing)?, self.owner)),
        })
    }

    /// The user who owns the files jjfs creates in this mount (for notices).
    pub fn owner_uid(&self) -> Option<u32> {
        self.owner.map(|o| o.uid)
    }

    /// What `status` says of a mount that is no longer jjfs's FUSE mount.
    pub fn detached_problem(&self) -> String {
        format!(
            "{} is no longer mounted by jjfs (unmounted behind its back); nothing is synced \
             into or out of it: run `jjfs close {0}` then `jjfs open <repo> {0}`, or \
             `jjfs stop && jjfs start` to mount it again",
            self.path.display()
        )
    }

    /// Changes users made through the mount.
    pub fn note_changes(&mut self, paths: Vec<PathBuf>) {
        self.through_mount.extend(paths.iter().cloned());
        self.pending.extend(paths);
    }

    /// Changes seen by the watcher, minus the engine's own writes.
    pub fn note_watched(&mut self, paths: Vec<PathBuf>, now: Instant) -> bool {
        let before = self.pending.len();
        let root = match &mut self.direct {
            // Between steps a direct mount's folder is not held open; one that is gone or
            // replaced is not watched.
            Some(folder) if self._watcher.is_some() => folder.open().ok().map(Arc::new),
            Some(_) => None,
            None => self.read_root.clone(),
        };
        if let Some(root) = root {
            for path in paths {
                // The engine's temporary files come and go with each write.
                if path.file_name().is_some_and(crate::files::is_temp_name) {
                    continue;
                }
                if !self.echoes.is_echo(&root, &path, now) {
                    self.pending.insert(path);
                }
            }
        }
        self.pending.len() > before
    }

    /// Paths a failed check-out changed: read again in the next snapshot.
    pub fn note_touched(&mut self, paths: Vec<PathBuf>) {
        self.pending.extend(paths);
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
    /// unless everything is rescanned: a half-written file is not worth a commit.
    pub fn take_scan(&mut self, filter: &mut dyn ScanFilter, held: &[PathBuf]) -> Option<Taken> {
        self.invalidate_direct_edits();
        let root = self.read_root()?;
        if std::mem::take(&mut self.full_scan) {
            // What changed in the backing directory unseen by the watcher is found by this
            // scan: the kernel's long-lived caches of the mount must not outlast it.
            if let Some(mount) = &self.mount {
                mount.invalidate_all();
            }
            self.pending.clear();
            let planned = scan::full(&root, filter);
            if self.direct.is_some() {
                super::direct::remove_leftovers(&root, &planned.temporary);
            }
            self.skipped = planned.skipped;
            self.nested_held = planned.held;
            return Some(Taken {
                scan: planned.scan,
                pending: Vec::new(),
                full: true,
            });
        }
        if self.pending.is_empty() {
            return None;
        }
        let (waiting, pending): (BTreeSet<PathBuf>, BTreeSet<PathBuf>) =
            std::mem::take(&mut self.pending)
                .into_iter()
                .partition(|p| held.contains(p));
        self.pending.extend(waiting);
        let planned = scan::changed(&root, &pending, filter);
        for path in &planned.scan.changed {
            self.skipped.remove(path);
        }
        for path in &pending {
            self.skipped.remove(path);
            // A folder reported for what it holds (outside a selection) is looked at again.
            for folder in path.ancestors().skip(1) {
                self.skipped.remove(folder);
            }
        }
        self.nested_held
            .retain(|p| !planned.scan.changed.contains(p));
        self.nested_held.extend(planned.held);
        for (path, why) in planned.skipped {
            self.skip(path, why);
        }
        if planned.scan.is_empty() {
            return None;
        }
        Some(Taken {
            scan: planned.scan,
            pending: pending.into_iter().collect(),
            full: false,
        })
    }

    /// Puts back what a failed step took.
    pub fn restore_scan(&mut self, taken: &Taken) {
        if taken.full {
            self.full_scan = true;
        } else {
            self.pending.extend(taken.pending.iter().cloned());
        }
    }

    /// The selection's patterns: the repo folders the mount is to show (the root for all).
    pub fn wanted_patterns(&self) -> Vec<String> {
        crate::selection::Selection::of(self.only.as_deref())
            .prefixes()
            .to_vec()
    }

    /// Takes the repo's `.gitignore` files that apply in the selection; a change since the
    /// last plan means files ignored before may not be any more (or the reverse): rescan.
    pub fn note_repo_ignores(&mut self, files: Vec<(String, Vec<u8>)>) {
        if files != self.repo_ignores {
            if !self.repo_ignores.is_empty() || !files.is_empty() {
                self.full_scan = true;
            }
            self.repo_ignores = files;
        }
    }

    /// Records a path that cannot be synced.
    pub fn skip(&mut self, path: PathBuf, why: String) {
        if self.skipped.get(&path) != Some(&why) {
            tracing::warn!(mount = %self.path.display(), "not synced: {}: {why}", path.display());
        }
        self.skipped.insert(path, why);
    }

    /// Paths of this mount that cannot be synced, with why.
    pub fn skipped(&self) -> impl Iterator<Item = (&PathBuf, &String)> {
        self.skipped.iter()
    }

    /// Paths kept as they are on disk: files users hold open for writing in this mount,
    /// and synced files inside nested repositories.
    pub fn held(&self) -> Vec<PathBuf> {
        let mut held = self.user_writers();
        held.extend(self.nested_held.iter().cloned());
        held
    }

    /// Files users hold open for writing in this mount.
    pub fn user_writers(&self) -> Vec<PathBuf> {
        let mut writers = self.writers.clone();
        if let Some(mount) = &self.mount {
            writers.extend(mount.user_writers());
        }
        writers
    }

    /// Remembers how paths looked after the step read or wrote them: watcher events that
    /// still find them so are echoes.
    pub fn remember(&mut self, stamps: impl IntoIterator<Item = (PathBuf, Stamp)>, now: Instant) {
        for (path, stamp) in stamps {
            self.echoes.remember_stamp(&path, stamp, now);
        }
        self.echoes.expire(now);
    }

    pub fn status(&self) -> MountStatus {
        MountStatus {
            id: self.id,
            problem: self.problem.clone(),
            last_sync: self.last_sync,
            io_mode: self.mount.as_ref().map(Mount::io_mode),
            held: self.held_back.clone(),
            pending: self.pending.len(),
        }
    }

    /// How many changed paths wait for a snapshot.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Unmounts cleanly; fails while the mount is busy, leaving it exactly as it was:
    /// mounted, watched and synced. A direct mount stops being watched.
    pub fn unmount(&mut self) -> Result<(), String> {
        if self.direct.is_some() {
            self._watcher = None;
            return Ok(());
        }
        if let Some(mount) = &mut self.mount {
            mount.unmount().map_err(|err| err.to_string())?;
            self.mount = None;
            self._watcher = None;
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

    /// Reads the mount's change count now, as the fence of the update being planned.
    pub fn fence(&self) -> Option<(Updater, u64)> {
        let updater = self.mount.as_ref()?.updater();
        let fence = updater.change_count();
        Some((updater, fence))
    }
}

/// The guard a mount puts on the sync's writes into it (see `mount::update`).
struct MountGuard {
    updater: Updater,
    fence: u64,
}

impl Fence for MountGuard {
    fn begin(&self, replaced: std::collections::HashSet<PathBuf>) {
        self.updater.begin(self.fence, replaced);
    }

    fn end(&self) -> Result<(), String> {
        self.updater.end()
    }
}

//! One mount as its repo's actor holds it: the FUSE session, the watcher on its backing
//! workspace, the paths changed since its last snapshot, and its health.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use crossbeam_channel::Sender;
use uuid::Uuid;

use super::Event;
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
    /// The backing jj workspace.
    pub backing: PathBuf,
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
    /// None when healthy, else what is wrong and how to fix it.
    pub problem: Option<String>,
    /// Consecutive failed sync steps.
    pub failures: u32,
    /// When a failed update is tried again.
    pub retry_at: Option<Instant>,
    /// Paths the last step left as they are because a user holds them open for writing.
    pub held_back: Vec<String>,
    pub last_sync: Option<DateTime<Utc>>,
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
            backing: config.workspace.clone(),
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
            problem: None,
            failures: 0,
            retry_at: None,
            held_back: Vec::new(),
            last_sync: None,
        }
    }

    /// Mounts the backing workspace at `path` and watches it.
    pub fn start(&mut self, tx: &Sender<Event>) -> Result<(), String> {
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
        if let Some(root) = self.read_root.clone() {
            for path in paths {
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
        let mut held = self
            .mount
            .as_ref()
            .map(Mount::user_writers)
            .unwrap_or_default();
        held.extend(self.nested_held.iter().cloned());
        held
    }

    /// Files users hold open for writing in this mount.
    pub fn user_writers(&self) -> Vec<PathBuf> {
        self.mount
            .as_ref()
            .map(Mount::user_writers)
            .unwrap_or_default()
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
            path: self.path.clone(),
            workspace: self.backing.clone(),
            problem: self.problem.clone(),
            last_sync: self.last_sync,
            io_mode: self.mount.as_ref().map(Mount::io_mode),
            held: self.held_back.clone(),
        }
    }

    /// Unmounts cleanly; fails while the mount is busy, leaving it exactly as it was:
    /// mounted, watched and synced.
    pub fn unmount(&mut self) -> Result<(), String> {
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

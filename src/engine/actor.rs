//! The sync actor of one repo: a thread that owns the repo's jj work and mounts, and runs a
//! sync step whenever changes have settled (see `debounce`), on `jjfs sync`, and every
//! `rescan_interval` as a safety net.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::Utc;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use uuid::Uuid;

use super::debounce::{Debounce, QUIET};
use super::direct::FOLDER_CHECK;
use super::events::EventKind;
use super::mounts::{MountRuntime, Taken};
use super::scan::ScanFilter;
use super::status::SharedStatus;
use super::{EngineError, Event, HistoryAnswer};
use crate::config::{MountConfig, RepoConfig};
use crate::history;
use crate::mount;
use crate::repo::ignores::IgnoreRules;
use crate::repo::pack;
use crate::repo::repository::Repository;
use crate::repo::step::{StepReport, WorkspaceFailed, WorkspacePlan};
use crate::repo::{Identity, RepoError, user_settings};
use crate::selection::Selection;
use crate::stamp::Stamp;
use crate::watch::Watcher;

/// Consecutive failed steps after which a mount counts as unhealthy.
const FAILURES_BEFORE_UNHEALTHY: u32 = 3;

/// How often a `jjfs sync` retries a step that a user's concurrent write interrupted.
const BARRIER_RETRIES: usize = 20;

/// How long `jjfs only` keeps trying while users write in the folders leaving a selection.
const SELECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The pause between its tries.
const SELECT_PAUSE: Duration = Duration::from_millis(50);

/// How often, at most, a repo that keeps changing is checked for loose objects to pack.
const PACK_CHECK_INTERVAL: Duration = Duration::from_secs(600);

pub struct Actor {
    name: String,
    config: RepoConfig,
    repo: Repository,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    status: SharedStatus,
    mounts: BTreeMap<Uuid, MountRuntime>,
    debounce: Debounce,
    next_rescan: Instant,
    /// A step was interrupted by a user's write: run another soon.
    retry: bool,
    /// Watches the repo's operation heads for operations made outside the daemon.
    _operations: Option<Watcher>,
    /// Commands that arrived while a step drained change reports; they run next.
    stashed: VecDeque<Event>,
    /// Packing of the store's loose objects (see `repo::pack`): when to look next, the
    /// threshold (`JJFS_PACK_AUTO`, git's `gc.auto`; 0 turns it off), the running pack.
    next_pack_check: Instant,
    pack_threshold: usize,
    packing: Option<std::thread::JoinHandle<()>>,
    /// Events, metrics and notices.
    context: super::EngineContext,
    told: Told,
    /// The remote workers, told when trunk moves (they push it soon after).
    remotes: crate::remote::TrunkWatch,
    /// `jjfs pause --repo`: no mount is synced (each mount has its own flag too).
    repo_paused: bool,
    /// The mount being closed: synced once more even when paused.
    closing: Option<Uuid>,
    /// Trunk's conflicts: since when, and their sides.
    conflicts: super::conflicts::ConflictBook,
    /// When each mount's oldest change not yet synced was reported (propagation latency).
    first_report: BTreeMap<Uuid, Instant>,
    /// `synced` events waiting for a mount whose check-out was deferred by a user's write.
    deferred_synced: Vec<Synced>,
    /// When the folders of direct mounts are checked next (see `direct::FOLDER_CHECK`).
    next_folder_check: Instant,
}

/// A change recorded on trunk, to be told once it is readable in every mount.
struct Synced {
    mount: PathBuf,
    paths: Vec<String>,
    reported: Instant,
}

impl Actor {
    pub fn new(
        name: &str,
        config: RepoConfig,
        identity: Identity,
        (tx, rx): (Sender<Event>, Receiver<Event>),
        status: SharedStatus,
        context: super::EngineContext,
        remotes: crate::remote::TrunkWatch,
    ) -> Result<Self, RepoError> {
        let settings = user_settings(&identity)?;
        let config_paused = config.paused;
        let conflicts =
            super::conflicts::ConflictBook::load(&crate::repo::repository::jjfs_dir(&config.path));
        context.metrics.add_repo(name);
        let repo = Repository::open(name, &config.path, &settings, &config.trunk)?;
        let debounce = Debounce::new(QUIET, Duration::from_secs(config.sync_interval.max(1)));
        let next_rescan = Instant::now() + rescan_interval(&config);
        let op_tx = tx.clone();
        let operations = Watcher::start(&repo.op_heads_dir(), move |_| {
            let _ = op_tx.send(Event::Operations);
        })
        .map_err(|e| tracing::warn!(repo = %name, "cannot watch the operation log: {e}"))
        .ok();
        Ok(Self {
            name: name.to_owned(),
            config,
            repo,
            tx,
            rx,
            status,
            mounts: BTreeMap::new(),
            debounce,
            next_rescan,
            retry: false,
            _operations: operations,
            stashed: VecDeque::new(),
            next_pack_check: Instant::now(),
            pack_threshold: std::env::var("JJFS_PACK_AUTO")
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(pack::DEFAULT_THRESHOLD),
            packing: None,
            context,
            told: Told::default(),
            remotes,
            repo_paused: config_paused,
            closing: None,
            conflicts,
            first_report: BTreeMap::new(),
            deferred_synced: Vec::new(),
            next_folder_check: Instant::now() + FOLDER_CHECK,
        })
    }

    /// Restores `mounts`, calls `ready`, then serves events until shutdown.
    pub fn run(mut self, mounts: Vec<MountConfig>, ready: impl FnOnce()) {
        for config in mounts {
            self.restore_mount(config);
        }
        self.publish();
        ready();
        // Start: everything is rescanned, so that edits made while the daemon was down sync.
        let recovered = self.step_with(false);
        if recovered > 0 {
            let line =
                format!("start: synced {recovered} change(s) made while jjfsd was not running");
            self.announce(line);
        }
        self.check_store();
        self.publish();
        loop {
            let deadline = self.next_deadline();
            let next = match self.stashed.pop_front() {
                Some(event) => Ok(event),
                None => self.rx.recv_deadline(deadline),
            };
            match next {
                Ok(event) => {
                    if !self
                        .guarded("handling a command", |actor| actor.handle(event))
                        .unwrap_or(true)
                    {
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    let now = Instant::now();
                    if self.has_direct_mounts() && now >= self.next_folder_check {
                        self.next_folder_check = now + FOLDER_CHECK;
                        self.guarded("checking folders", Self::check_folders);
                    }
                    if !self.step_due(now) {
                        continue;
                    }
                    if now >= self.next_rescan {
                        self.next_rescan = now + rescan_interval(&self.config);
                        self.mounts
                            .values_mut()
                            .for_each(MountRuntime::request_full_scan);
                    }
                    self.guarded("syncing", Self::step);
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        self.shutdown();
    }

    /// Whether a step is due at `now` (the deadline passed was not only the folder check).
    fn step_due(&self, now: Instant) -> bool {
        now >= self.next_rescan
            || self.retry
            || self.debounce.deadline().is_some_and(|due| due <= now)
            || self
                .mounts
                .values()
                .any(|m| m.retry_at.is_some_and(|at| at <= now))
    }

    fn has_direct_mounts(&self) -> bool {
        self.mounts.values().any(MountRuntime::is_direct)
    }

    /// Checks every direct mount's folder: one that went is unhealthy at once, one that
    /// came back is synced again.
    fn check_folders(&mut self) {
        let mut changed = false;
        for m in self.mounts.values_mut().filter(|m| m.is_direct()) {
            let was = (m.folder_lost, m.problem.clone());
            let state = self.repo.state_paths(&m.id, &m.state_dir);
            let repo = &mut self.repo;
            let id = m.id;
            m.check_folder(|| repo.state_has_files(&id, &state));
            m.release_folder();
            changed |= was != (m.folder_lost, m.problem.clone());
        }
        if changed {
            self.debounce.note(Instant::now());
            self.publish();
        }
    }

    fn next_deadline(&self) -> Instant {
        let mut deadline = self.next_rescan;
        if self.has_direct_mounts() {
            deadline = deadline.min(self.next_folder_check);
        }
        if let Some(due) = self.debounce.deadline() {
            deadline = deadline.min(due);
        }
        if self.retry {
            deadline = deadline.min(Instant::now() + QUIET);
        }
        // A mount whose update failed (a full disk, say) is tried again after its backoff.
        for m in self.mounts.values() {
            if let Some(at) = m.retry_at {
                deadline = deadline.min(at);
            }
        }
        deadline
    }

    /// Runs `work`, turning a panic into a logged error: nothing that goes wrong in one
    /// step may take the repo's actor (or the daemon) down. The working-copy states are
    /// read again from disk afterwards.
    fn guarded<T>(&mut self, what: &str, work: impl FnOnce(&mut Self) -> T) -> Option<T> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(self))) {
            Ok(value) => Some(value),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_owned());
                tracing::error!(repo = %self.name, "internal error in jjfs while {what}: {message}; the repo's sync goes on");
                self.record(format!("internal error while {what}: {message}"));
                self.repo.forget_states();
                self.retry = true;
                None
            }
        }
    }

    /// Handles one event; false when the actor must stop.
    fn handle(&mut self, event: Event) -> bool {
        let now = Instant::now();
        match event {
            Event::Mount { id, paths } => {
                let repo_paused = self.repo_paused;
                if let Some(m) = self.mounts.get_mut(&id) {
                    m.note_changes(paths);
                    // A paused mount's changes wait for its resume (which rescans it).
                    if !(repo_paused || m.paused) {
                        self.first_report.entry(id).or_insert(now);
                        self.debounce.note(now);
                    } else {
                        self.publish_pending(id);
                    }
                }
            }
            Event::Watch { id, paths } => {
                let repo_paused = self.repo_paused;
                if let Some(m) = self.mounts.get_mut(&id)
                    && m.note_watched(paths, now)
                {
                    if !(repo_paused || m.paused) {
                        self.first_report.entry(id).or_insert(now);
                        self.debounce.note(now);
                    } else {
                        self.publish_pending(id);
                    }
                }
            }
            Event::Operations => {
                // Our own operations come back here too; only others' need a step.
                if self.repo.has_new_operations() {
                    self.debounce.note(now);
                }
            }
            Event::Detached { id } => {
                if let Some(m) = self.mounts.get_mut(&id) {
                    let problem = m.detached_problem();
                    tracing::warn!(repo = %self.name, mount = %m.path.display(), "{problem}");
                    m.problem = Some(problem);
                    self.publish();
                }
            }
            Event::Overflow { id } => {
                if let Some(m) = self.mounts.get_mut(&id) {
                    m.request_full_scan();
                    self.debounce.note(now);
                }
            }
            Event::Open {
                mount,
                adopt,
                reply,
            } => {
                let result = self.open(mount, adopt);
                let _ = reply.send(result);
                self.publish();
            }
            Event::Close { id, reply } => {
                let result = self.close(id);
                let _ = reply.send(result);
                self.publish();
            }
            Event::Pause {
                mount,
                paused,
                reply,
            } => {
                let result = self.set_paused(mount, paused);
                let _ = reply.send(result);
                self.publish();
            }
            Event::Select { id, only, reply } => {
                let result = self.select(id, only);
                let _ = reply.send(result);
                self.publish();
            }
            Event::Sync { reply } => {
                let _ = reply.send(self.barrier().map(|()| self.held_warnings()));
            }
            Event::IntegrateRemote { reply } => {
                self.step_with(true);
                let _ = reply.send(Ok(()));
            }
            Event::History { request, reply } => {
                let _ = reply.send(self.history(request));
            }
            Event::Configure(config) => self.configure(config),
            Event::Shutdown { reply } => {
                self.shutdown();
                let _ = reply.send(Ok(()));
                return false;
            }
        }
        true
    }

    /// Mounts a mount from config at daemon start, cleaning a stale mount first.
    fn restore_mount(&mut self, config: MountConfig) {
        let mut runtime = MountRuntime::new(&config);
        if !config.is_direct() {
            mount::clean_stale(&config.path, &config.workspace);
        }
        let fix = format!(
            "recreate it with `jjfs close {0}` then `jjfs open {1} {0}{2}`",
            config.path.display(),
            self.name,
            if config.is_direct() {
                " --mode direct --adopt"
            } else {
                ""
            }
        );
        if !config.workspace.join(".jj").join("working_copy").is_dir() {
            runtime.problem = Some(format!(
                "its workspace {} is missing or broken; {fix}",
                config.workspace.display()
            ));
        } else if !self.repo.has_workspace(&config.id) {
            runtime.problem = Some(format!("its workspace is not in the repo any more; {fix}"));
        } else if let Err(err) = runtime.start(&self.tx) {
            runtime.problem = Some(err);
        }
        match &runtime.problem {
            Some(problem) => {
                tracing::warn!(repo = %self.name, mount = %config.path.display(), "unhealthy: {problem}");
            }
            None if config.is_direct() => {
                tracing::info!(repo = %self.name, mount = %config.path.display(), "watching again (direct mount)")
            }
            None => {
                tracing::info!(repo = %self.name, mount = %config.path.display(), "mounted again")
            }
        }
        self.mounts.insert(config.id, runtime);
    }

    fn open(&mut self, config: MountConfig, adopt: bool) -> Result<&'static str, EngineError> {
        let (id, path, state_dir) = (config.id, config.path.clone(), config.workspace.clone());
        let runtime = MountRuntime::new(&config);
        let direct = config
            .is_direct()
            .then_some(crate::repo::repository::DirectFiles {
                root: &config.path,
                adopt,
            });
        self.repo
            .add_workspace_with(
                &id,
                &state_dir,
                direct,
                config.file_owner(),
                &runtime.wanted_patterns(),
            )
            .map_err(EngineError::repo("cannot create the workspace"))?;
        let mut runtime = runtime;
        if let Err(err) = runtime.start(&self.tx) {
            let _ = self.repo.forget_workspace(&id);
            let _ = std::fs::remove_dir_all(&state_dir);
            return Err(EngineError::Failed(err));
        }
        let io_mode = if config.is_direct() {
            "direct"
        } else {
            runtime.status().io_mode.unwrap_or("userspace")
        };
        runtime.last_sync = Some(Utc::now());
        self.mounts.insert(id, runtime);
        if adopt {
            // The adopted files are this mount's first change: read them now.
            self.debounce.note(Instant::now());
        }
        self.record(format!("opened {} ({io_mode} I/O)", path.display()));
        Ok(io_mode)
    }

    /// Closes a mount: unmounts it (refused, and nothing changes, while processes use it),
    /// then records everything written in its workspace (also what was written while it was
    /// detached, or between the last sync and the unmount) before the workspace goes.
    fn close(&mut self, id: Uuid) -> Result<bool, EngineError> {
        let repo_paused = self.repo_paused;
        let Some(runtime) = self.mounts.get_mut(&id) else {
            return Err(EngineError::User("no such mount".into()));
        };
        let was_paused = repo_paused || runtime.paused;
        runtime.unmount().map_err(EngineError::Busy)?;
        // Unmounted, the workspace is read and written as a plain directory.
        if !runtime.folder_lost {
            runtime.problem = None;
        }
        runtime.retry_at = None;
        runtime.request_full_scan();
        // A paused mount's edits are recorded too: nothing written in a mount is lost.
        self.closing = Some(id);
        self.step_until_settled(false);
        self.closing = None;
        let runtime = self.mounts.get(&id).expect("still there");
        if runtime.folder_lost {
            // A direct mount whose folder is gone or not the one opened: there is nothing
            // of it to record (the repo keeps every file synced from it), and the folder
            // that is there now is left as it is.
            let problem = runtime.problem.clone().unwrap_or_default();
            let runtime = self.mounts.remove(&id).expect("still there");
            self.repo
                .forget_workspace(&id)
                .map_err(EngineError::repo("cannot forget the workspace"))?;
            let _ = std::fs::remove_dir_all(&runtime.state_dir);
            self.announce(format!(
                "closed {} without recording anything from it ({problem})",
                runtime.path.display()
            ));
            self.first_report.remove(&id);
            return Ok(was_paused);
        }
        if let Some(problem) = &runtime.problem {
            return Err(EngineError::Failed(format!(
                "{} is unmounted, but what was written there could not be recorded ({problem}); \
                 its files are kept in {}: run `jjfs close` again",
                runtime.path.display(),
                runtime.backing.display()
            )));
        }
        let runtime = self.mounts.remove(&id).expect("still there");
        if runtime.is_direct() {
            self.repo.remember_closed_folder(&id, &runtime.path);
        }
        self.repo
            .forget_workspace(&id)
            .map_err(EngineError::repo("cannot forget the workspace"))?;
        // A direct mount's files stay where they are; only its state goes.
        let _ = std::fs::remove_dir_all(&runtime.state_dir);
        self.record(format!("closed {}", runtime.path.display()));
        self.first_report.remove(&id);
        Ok(was_paused)
    }

    /// Tells `status` how many changes a paused mount holds, without a whole publish (no
    /// step runs to publish them until it is resumed).
    fn publish_pending(&self, id: Uuid) {
        let Some(m) = self.mounts.get(&id) else {
            return;
        };
        let mut status = crate::engine::status::lock(&self.status);
        if let Some(s) = status.mounts.iter_mut().find(|s| s.id == id) {
            s.pending = m.pending_count();
        }
    }

    /// Whether mount `m` is left out of steps now.
    fn is_paused(&self, m: &MountRuntime) -> bool {
        (self.repo_paused || m.paused) && self.closing != Some(m.id)
    }

    /// Pauses or resumes a mount (`Some(id)`) or the repo; returns the mounts whose syncing
    /// stopped or started. A resumed mount is scanned in full and synced before this returns:
    /// its edits and the others' merge like any concurrent edits.
    fn set_paused(
        &mut self,
        mount: Option<Uuid>,
        paused: bool,
    ) -> Result<Vec<PathBuf>, EngineError> {
        let before: BTreeMap<Uuid, bool> = self
            .mounts
            .values()
            .map(|m| (m.id, self.is_paused(m)))
            .collect();
        match mount {
            Some(id) => {
                let m = self
                    .mounts
                    .get_mut(&id)
                    .ok_or_else(|| EngineError::User("no such mount".into()))?;
                m.paused = paused;
            }
            None => self.repo_paused = paused,
        }
        let mut changed = Vec::new();
        let mut resumed = false;
        for (id, was) in before {
            let now_paused = self.is_paused(&self.mounts[&id]);
            if now_paused == was {
                continue;
            }
            let m = self.mounts.get_mut(&id).expect("listed");
            changed.push(m.path.clone());
            if !now_paused {
                // Everything written meanwhile (and what the watcher saw) is looked at.
                m.request_full_scan();
                m.retry_at = None;
                resumed = true;
            }
        }
        let (kind, what) = if paused {
            (EventKind::Paused, "paused")
        } else {
            (EventKind::Resumed, "resumed")
        };
        match mount {
            Some(_) => {
                for path in &changed {
                    self.announce(format!("{what} {}", path.display()));
                    self.context.events.emit(
                        &self.name,
                        kind,
                        Some(path.clone()),
                        Vec::new(),
                        None,
                    );
                }
            }
            None => {
                self.announce(format!("{what} the repo ({} mount(s))", changed.len()));
                self.context.events.emit(
                    &self.name,
                    kind,
                    None,
                    Vec::new(),
                    Some(format!("repo {what}")),
                );
            }
        }
        if resumed {
            self.step_until_settled(false);
        }
        Ok(changed)
    }

    /// Changes what a mount shows (see `Event::Select`): a full snapshot of what it shows
    /// now and the change of its files happen in one step, under its working-copy lock, so
    /// no edit in a leaving folder is dropped; a step that a user's write interrupts is run
    /// again. Folders entering it arrive with the step after (merged with local files in
    /// their way). Gives up, leaving the selection as it was, when users keep writing in the
    /// leaving folders for `SELECT_TIMEOUT`.
    fn select(&mut self, id: Uuid, only: Option<Vec<String>>) -> Result<(), EngineError> {
        let Some(m) = self.mounts.get_mut(&id) else {
            return Err(EngineError::User("no such mount".into()));
        };
        if let Some(problem) = &m.problem {
            return Err(EngineError::Failed(format!(
                "{} is unhealthy ({problem}); change its selection once it syncs again",
                m.path.display()
            )));
        }
        let wanted = Selection::of(only.as_deref());
        if let Some(open) = m.user_writers().iter().find(|p| !wanted.contains(p)) {
            return Err(EngineError::Busy(format!(
                "{} is open for writing in {}; close it, then change the selection",
                open.display(),
                m.path.display()
            )));
        }
        let before = std::mem::replace(&mut m.only, only);
        let want = m.wanted_patterns();
        let state_paths = self.repo.state_paths(&id, &m.backing);
        let deadline = Instant::now() + SELECT_TIMEOUT;
        let mut why = String::from("users kept writing in the folders it leaves");
        loop {
            if let Some(m) = self.mounts.get_mut(&id) {
                m.retry_at = None;
                m.request_full_scan();
            }
            self.step_with(false);
            let applied =
                crate::selection::collapse(self.repo.sparse_patterns(&id, &state_paths)) == want;
            let Some(m) = self.mounts.get(&id) else {
                return Err(EngineError::User("the mount was closed meanwhile".into()));
            };
            if applied && !self.retry {
                return Ok(());
            }
            if let Some(problem) = &m.problem {
                why = problem.clone();
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(SELECT_PAUSE);
        }
        // Back to what config says: the next steps undo what was done (folders that left
        // come back, merged with what was written there meanwhile).
        if let Some(m) = self.mounts.get_mut(&id) {
            m.only = before;
            m.request_full_scan();
        }
        self.retry = true;
        Err(EngineError::Busy(format!(
            "the selection did not change: {why}; try again"
        )))
    }

    fn configure(&mut self, config: RepoConfig) {
        self.debounce
            .set_ceiling(Duration::from_secs(config.sync_interval.max(1)));
        if config.trunk != self.config.trunk {
            self.repo.set_trunk(&config.trunk);
        }
        if config.ignore != self.config.ignore {
            // A new ignore list changes what is tracked: look at everything again.
            self.mounts
                .values_mut()
                .for_each(MountRuntime::request_full_scan);
            self.debounce.note(Instant::now());
        }
        self.next_rescan = Instant::now() + rescan_interval(&config);
        self.config = config;
    }

    /// Answers a history command. Reads see every change already reported; a restore or an
    /// undo first syncs every mount, so that it acts on what users see, and is checked out
    /// in every mount before it answers.
    fn history(&mut self, request: history::Request) -> Result<HistoryAnswer, EngineError> {
        use history::Request;
        if request.writes() {
            if let Err(err) = self.barrier() {
                tracing::warn!(repo = %self.name, "before a history change: {err}");
            }
        } else if self.mounts.values().any(MountRuntime::has_pending) {
            self.step();
        }
        let repo = &mut self.repo;
        let answer = match request {
            Request::Log { path, since, limit } => repo
                .log(path.as_deref(), since.as_ref(), limit)
                .map(HistoryAnswer::Log),
            Request::Cat { path, at } => repo.cat(&path, &at).map(HistoryAnswer::Cat),
            Request::Diff { path, from, to } => repo
                .diff(&path, from.as_ref(), to.as_ref())
                .map(HistoryAnswer::Diff),
            Request::Restore { paths, at } => repo.restore(&paths, &at).map(HistoryAnswer::Changed),
            Request::Undo { count } => repo.undo(count).map(HistoryAnswer::Changed),
        }?;
        if let HistoryAnswer::Changed(changed) = &answer
            && let Some(change) = &changed.change
        {
            let what = if changed.reverted.is_empty() {
                format!("restored {}", changed.paths.join(", "))
            } else {
                format!("undid {} change(s)", changed.reverted.len())
            };
            self.announce(format!("{what} as change {}", change.change));
            // Checked out in every mount before answering, past users' concurrent writes.
            self.step_until_settled(true);
        }
        Ok(answer)
    }

    /// Syncs everything now (full scans) until no user write interrupts it.
    fn barrier(&mut self) -> Result<(), EngineError> {
        let repo_paused = self.repo_paused;
        for m in self.mounts.values_mut() {
            // A barrier tries failing mounts again at once, whatever their backoff.
            m.retry_at = None;
            if m.problem.is_none() && !(repo_paused || m.paused) {
                m.request_full_scan();
            }
        }
        self.step_until_settled(false);
        let failed: Vec<String> = self
            .mounts
            .values()
            .filter(|m| !self.is_paused(m))
            .filter_map(|m| {
                m.problem
                    .as_ref()
                    .map(|p| format!("{}: {p}", m.path.display()))
            })
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(EngineError::Failed(format!(
                "some mounts did not sync: {}",
                failed.join("; ")
            )))
        }
    }

    /// One line per mount that a file held open for writing keeps behind: which files.
    fn held_warnings(&self) -> Vec<String> {
        self.mounts
            .values()
            .filter(|m| !m.held_back.is_empty())
            .map(|m| {
                format!(
                    "{} is behind on {}: open for writing there; it catches up once closed",
                    m.path.display(),
                    m.held_back.join(", ")
                )
            })
            .collect()
    }

    /// Steps until no user write interrupts one (at most `BARRIER_RETRIES` times).
    fn step_until_settled(&mut self, always: bool) {
        for _ in 0..BARRIER_RETRIES {
            self.step_with(always);
            if !self.retry {
                break;
            }
        }
    }

    /// One sync step over every workspace that can be reached.
    fn step(&mut self) {
        self.step_with(false);
    }

    /// A sync step; `always` runs it even with no mount (to settle trunk after a fetch).
    /// Returns how many commits it made.
    fn step_with(&mut self, always: bool) -> usize {
        self.retry = false;
        // Fences first, then every change report sent before them: the step sees each change
        // a fence counts, and guards against the rest.
        let mut fences: BTreeMap<Uuid, (mount::Updater, u64)> = self
            .mounts
            .values()
            .filter(|m| !self.is_paused(m))
            .filter_map(|m| m.fence().map(|f| (m.id, f)))
            .collect();
        self.drain_changes();
        self.debounce.clear();
        let mut taken = Vec::new();
        let mut plans = Vec::new();
        let now = Instant::now();
        self.read_writers();
        let (repo_paused, closing) = (self.repo_paused, self.closing);
        for m in self.mounts.values_mut() {
            if m.retry_at.is_some_and(|at| at > now) {
                continue;
            }
            // A paused mount keeps its working-copy commit and its files: neither snapshot
            // nor check-out until it is resumed (or closed).
            if (repo_paused || m.paused) && closing != Some(m.id) {
                continue;
            }
            if m.is_direct() {
                let state = self.repo.state_paths(&m.id, &m.state_dir);
                let (repo, id) = (&mut self.repo, m.id);
                if m.check_folder(|| repo.state_has_files(&id, &state))
                    .is_none()
                {
                    continue;
                }
            }
            let Some(read_root) = m.read_root() else {
                continue;
            };
            if !m.state_dir.join(".jj").is_dir() {
                continue;
            }
            // What the workspace holds now (a selection changes in the step's check-out).
            let state_paths = self.repo.state_paths(&m.id, &m.state_dir);
            let selection =
                Selection::from_prefixes(self.repo.sparse_patterns(&m.id, &state_paths));
            let (rules, repo_ignores) = self.repo.ignore_rules_for(&m.id, &m.backing, &selection);
            m.note_repo_ignores(repo_ignores);
            let mut filter = PlanFilter {
                repo: &self.repo,
                id: m.id,
                rules,
                selection,
            };
            let writers = m.user_writers();
            let planned = m.take_scan(&mut filter, &writers);
            let files = match m.files(fences.remove(&m.id)) {
                Ok(files) => files,
                Err(err) => {
                    if let Some(planned) = &planned {
                        m.restore_scan(planned);
                    }
                    m.problem = Some(err);
                    continue;
                }
            };
            let scan = planned.as_ref().map(|p| p.scan.clone());
            if let Some(planned) = planned {
                taken.push((m.id, planned));
            }
            let held = m.held();
            if !held.is_empty() {
                tracing::debug!(mount = %m.path.display(), "held: {held:?}");
            }
            plans.push(WorkspacePlan {
                id: m.id,
                label: m.path.display().to_string(),
                state: state_paths,
                read_root,
                files,
                scan,
                held,
                sparse: Some(m.wanted_patterns()),
            });
        }
        if plans.is_empty() && !always {
            self.release_folders();
            return 0;
        }
        let started = Instant::now();
        let report = self.repo.step(plans, self.repo.settings().signature());
        self.release_folders();
        let commits = report.commits;
        self.apply(report, taken, started);
        release_freed_memory();
        commits
    }

    /// Reads which files other processes hold open for writing in each mount's folder on
    /// disk (a direct mount's folder, a FUSE mount's backing workspace: writes there never
    /// pass through a mount that could count them), one pass over /proc for all of them.
    /// Those files wait like files held open in a mount: not read half-written, not
    /// replaced under their writer.
    fn read_writers(&mut self) {
        let folders: Vec<(Uuid, PathBuf)> = self
            .mounts
            .values()
            .filter_map(|m| Some((m.id, m.files_canonical()?)))
            .collect();
        if folders.is_empty() {
            return;
        }
        let roots: Vec<PathBuf> = folders.iter().map(|(_, p)| p.clone()).collect();
        for ((id, _), writers) in folders.iter().zip(mount::writers_under(&roots)) {
            if let Some(m) = self.mounts.get_mut(id) {
                m.set_writers(writers);
            }
        }
    }

    /// Direct mounts let go of their folders after a step.
    fn release_folders(&mut self) {
        self.mounts
            .values_mut()
            .for_each(MountRuntime::release_folder);
    }

    /// Takes in the change reports already sent; commands wait for the step to end.
    fn drain_changes(&mut self) {
        while let Ok(event) = self.rx.try_recv() {
            match event {
                Event::Mount { .. }
                | Event::Watch { .. }
                | Event::Overflow { .. }
                | Event::Detached { .. }
                | Event::Operations => {
                    self.handle(event);
                }
                command => self.stashed.push_back(command),
            }
        }
    }

    /// Takes a step's results into the mounts' state.
    fn apply(&mut self, report: StepReport, taken: Vec<(Uuid, Taken)>, started: Instant) {
        let now = Instant::now();
        // What each mount's committed change touched, for `synced` events.
        let mut synced: Vec<Synced> = Vec::new();
        // A mount whose check-out a user's write deferred is not up to date yet.
        let mut deferred = false;
        for (id, result) in report.workspaces {
            let Some(m) = self.mounts.get_mut(&id) else {
                continue;
            };
            let taken = taken.iter().find(|(tid, _)| *tid == id).map(|(_, t)| t);
            match result {
                Ok(sync) => {
                    let reported = self.first_report.remove(&id).unwrap_or(started);
                    if sync.committed {
                        synced.push(Synced {
                            mount: m.path.clone(),
                            paths: sync.changed.clone(),
                            reported,
                        });
                    }
                    m.problem = None;
                    m.failures = 0;
                    m.retry_at = None;
                    m.held_back = sync.held.clone();
                    m.last_sync = Some(Utc::now());
                    // What the step read or wrote shows up in watcher events: echoes.
                    let read = sync
                        .read
                        .iter()
                        .map(|(path, st)| (path.clone(), Stamp::from_stat(Some(st))));
                    let written = sync
                        .written
                        .iter()
                        .map(|(path, st)| (path.clone(), Stamp::from_stat(st.as_ref())));
                    m.remember(read.chain(written).collect::<Vec<_>>(), now);
                    for (path, reason) in sync.skipped {
                        m.skip(PathBuf::from(path), reason);
                    }
                    if sync.widened {
                        // Folders entered its selection: the next step brings their files,
                        // merged with what a user left in their way.
                        m.request_full_scan();
                        self.retry = true;
                    }
                }
                Err(WorkspaceFailed { error, touched }) => {
                    if let Some(taken) = taken {
                        m.restore_scan(taken);
                    }
                    m.note_touched(touched);
                    if let RepoError::Busy(what) = &error {
                        // A user changed a file the step was about to replace: nothing of
                        // theirs was touched; the next step snapshots it and merges.
                        tracing::debug!(repo = %self.name, mount = %m.path.display(), "update deferred: {what}");
                        self.retry = true;
                        deferred = true;
                        continue;
                    }
                    m.failures += 1;
                    let wait = retry_backoff(m.failures);
                    m.retry_at = Some(now + wait);
                    // A write that failed (a full disk, say) shows at once; other failures
                    // only when they keep coming back. The old files stay as they were.
                    let visible = matches!(error, RepoError::Io { .. } | RepoError::Unsafe(_));
                    if visible || m.failures >= FAILURES_BEFORE_UNHEALTHY {
                        tracing::error!(repo = %self.name, mount = %m.path.display(), "sync failed: {error}");
                        m.problem = Some(format!(
                            "waiting to update: {error}; retried every {} s (details in sync.log)",
                            wait.as_secs().max(1)
                        ));
                    } else {
                        tracing::warn!(repo = %self.name, mount = %m.path.display(), "sync failed, retrying: {error}");
                    }
                }
            }
        }
        for (from, to) in &report.kept_both {
            self.announce(format!(
                "conflict at {from}: both sides kept, one of them as {to}"
            ));
        }
        // Told once readable everywhere: after the check-outs, and after a deferred one's retry.
        self.deferred_synced.extend(synced);
        if !deferred {
            for done in std::mem::take(&mut self.deferred_synced) {
                let files = done.paths.len();
                self.context.events.emit(
                    &self.name,
                    EventKind::Synced,
                    Some(done.mount),
                    done.paths,
                    None,
                );
                self.context
                    .metrics
                    .synced(&self.name, files, done.reported.elapsed());
            }
        }
        if report.commits > 0 {
            let line = format!(
                "synced {} change(s) in {} ms",
                report.commits,
                started.elapsed().as_millis()
            );
            self.announce(line);
            crate::engine::status::lock(&self.status).last_sync = Some(Utc::now());
            self.check_store();
        }
        self.publish();
    }

    /// Measures the store and packs it on a thread of its own when loose objects have piled
    /// up; looks at most every `PACK_CHECK_INTERVAL`, never while a pack runs.
    fn check_store(&mut self) {
        let now = Instant::now();
        if now < self.next_pack_check || self.packing.as_ref().is_some_and(|p| !p.is_finished()) {
            return;
        }
        self.next_pack_check = now + PACK_CHECK_INTERVAL;
        let root = self.config.path.clone();
        let store = crate::repo::create::repo_dir(&root);
        crate::engine::status::lock(&self.status).history_bytes = Some(pack::disk_usage(&store));
        if self.pack_threshold == 0 || !pack::needs_packing(&root, self.pack_threshold) {
            return;
        }
        let (name, settings, status) = (
            self.name.clone(),
            self.repo.settings().clone(),
            self.status.clone(),
        );
        let thread = std::thread::Builder::new()
            .name(format!("pack-{name}"))
            .spawn(move || {
                let before = crate::engine::status::lock(&status).history_bytes;
                let started = Instant::now();
                let result = pack::pack(&root, &settings);
                let after = pack::disk_usage(&store);
                let line = match result {
                    Ok(()) => format!(
                        "packed the store in {:.1} s: {:.1} MiB on disk, was {:.1} MiB",
                        started.elapsed().as_secs_f64(),
                        after as f64 / 1048576.0,
                        before.unwrap_or_default() as f64 / 1048576.0
                    ),
                    Err(err) => format!("{err}; history is safe, jjfs tries again later"),
                };
                tracing::info!(repo = %name, "{line}");
                let mut status = crate::engine::status::lock(&status);
                status.history_bytes = Some(after);
                status.record(line);
            });
        match thread {
            Ok(thread) => self.packing = Some(thread),
            Err(err) => tracing::warn!(repo = %self.name, "cannot start packing: {err}"),
        }
    }

    /// Logs `line` to sync.log and keeps it in the recent activity of `status --verbose`.
    fn announce(&self, line: String) {
        tracing::info!(repo = %self.name, "{line}");
        self.record(line);
    }

    fn record(&self, line: String) {
        crate::engine::status::lock(&self.status).record(line);
    }

    /// Publishes the mounts' health and the repo's conflicts for `status` and `list`, and
    /// tells the remote workers when trunk moved.
    fn publish(&mut self) {
        let trunk = self.repo.trunk_id();
        if trunk.is_some() && trunk != self.told.trunk {
            self.told.trunk = trunk;
            self.remotes.trunk_moved();
        }
        let conflicts = self.repo.trunk_conflicts();
        self.tell_changes(&conflicts);
        let history_len = self.repo.history_len();
        let paused = self.mounts.values().filter(|m| self.is_paused(m)).count();
        self.context.metrics.set_paused_mounts(&self.name, paused);
        let mut status = crate::engine::status::lock(&self.status);
        status.mounts = self.mounts.values().map(MountRuntime::status).collect();
        status.conflicts = conflicts;
        status.conflict_details = self
            .conflicts
            .entries()
            .iter()
            .map(|(path, record)| (path.clone(), record.clone()))
            .collect();
        status.history_commits = history_len;
        let mut skipped = Vec::new();
        for m in self.mounts.values() {
            for (path, why) in m.skipped() {
                skipped.push(crate::engine::status::SkippedPath {
                    path: path.to_string_lossy().into_owned(),
                    reason: why.clone(),
                    mount: Some(m.path.clone()),
                });
            }
        }
        skipped.sort_by(|a, b| (&a.path, &a.mount).cmp(&(&b.path, &b.mount)));
        status.skipped = skipped;
    }

    fn shutdown(&mut self) {
        // Record what is pending, then let the mounts go.
        if self.mounts.values().any(MountRuntime::has_pending) {
            self.step();
        }
        for m in self.mounts.values_mut() {
            m.detach();
        }
        self.mounts.clear();
        self.publish();
    }
}

impl Actor {
    /// Events for what changed since the last publish: conflicts that appeared or went, and
    /// mounts that became unhealthy or healthy again; the gauges of the metrics.
    fn tell_changes(&mut self, conflicts: &[String]) {
        let events = self.context.events.clone();
        // Each look at a file's history costs a walk of trunk: a step that makes many
        // conflicts names the sides of the first few only.
        let sides: BTreeMap<String, Vec<String>> = self
            .conflicts
            .unknown(conflicts)
            .into_iter()
            .take(SIDES_PER_STEP)
            .map(|path| (path.clone(), self.sides_of(path)))
            .collect();
        let changes = self.conflicts.update(conflicts, Utc::now(), |path| {
            sides.get(path).cloned().unwrap_or_default()
        });
        let (new, gone) = (changes.new, changes.resolved);
        if !new.is_empty() {
            tracing::warn!(repo = %self.name, "new conflict(s), edit the markers away in any mount: {}", new.join(", "));
            events.emit(&self.name, EventKind::Conflict, None, new.clone(), None);
            if let Some(notices) = &self.context.notices {
                let owner = self
                    .mounts
                    .values()
                    .find_map(|m| m.owner_uid())
                    .unwrap_or_else(|| nix::unistd::geteuid().as_raw());
                notices.new_conflicts(&self.name, owner, &new);
            }
        }
        if !gone.is_empty() {
            events.emit(&self.name, EventKind::Resolved, None, gone, None);
        }
        let (mut healthy, mut unhealthy) = (0, 0);
        for m in self.mounts.values() {
            let was = self.told.unhealthy.contains(&m.id);
            match (&m.problem, was) {
                (Some(problem), false) => {
                    events.emit(
                        &self.name,
                        EventKind::Unhealthy,
                        Some(m.path.clone()),
                        Vec::new(),
                        Some(problem.clone()),
                    );
                    self.told.unhealthy.insert(m.id);
                }
                (None, true) => {
                    events.emit(
                        &self.name,
                        EventKind::Healthy,
                        Some(m.path.clone()),
                        Vec::new(),
                        None,
                    );
                    self.told.unhealthy.remove(&m.id);
                }
                _ => {}
            }
            if m.problem.is_some() {
                unhealthy += 1;
            } else {
                healthy += 1;
            }
        }
        self.context
            .metrics
            .set_conflicts(&self.name, conflicts.len());
        self.context
            .metrics
            .set_mounts(&self.name, healthy, unhealthy);
    }
}

impl Actor {
    /// Where the versions of newly conflicted `path` came from: the origins of trunk's latest
    /// changes of it, newest first, until two differ. A change made in one of this repo's
    /// mounts names the mount; one that came from elsewhere (another machine's mount, a
    /// git user) is `remote`; jjfs's own history changes (restore, undo) are passed over.
    fn sides_of(&mut self, path: &str) -> Vec<String> {
        let log =
            match self
                .repo
                .log_within(Some(path), None, Some(SIDES_LOOKBACK), Some(SIDES_WALK))
            {
                Ok(log) => log,
                Err(err) => {
                    tracing::debug!(repo = %self.name, "cannot read the history of {path}: {err}");
                    return Vec::new();
                }
            };
        let mut sides: Vec<String> = Vec::new();
        for entry in log.entries {
            let local = entry
                .mount_id
                .as_deref()
                .and_then(|id| id.parse::<Uuid>().ok())
                .and_then(|id| self.mounts.get(&id))
                .map(|m| m.path.display().to_string());
            let side = match local {
                Some(mount) => mount,
                None if entry.mount.is_none() && entry.description.starts_with("jjfs:") => continue,
                None => "remote".to_owned(),
            };
            if !sides.contains(&side) {
                sides.push(side);
            }
            if sides.len() == 2 {
                break;
            }
        }
        sides.sort();
        sides
    }
}

/// How many of trunk's latest changes of a conflicted file are read for its sides, among
/// how many of trunk's latest commits, for how many new conflicts per step.
const SIDES_LOOKBACK: usize = 20;
const SIDES_WALK: usize = 50;
const SIDES_PER_STEP: usize = 8;

/// What the events already told, to tell only changes (conflicts: see `conflicts`).
#[derive(Default)]
struct Told {
    /// Where trunk pointed when the remote workers last heard of it.
    trunk: Option<String>,
    unhealthy: std::collections::BTreeSet<Uuid>,
}

/// What the actor tells a mount about its paths while planning a snapshot.
struct PlanFilter<'a> {
    repo: &'a Repository,
    id: Uuid,
    rules: IgnoreRules,
    selection: Selection,
}

impl ScanFilter for PlanFilter<'_> {
    fn tracked_under(&mut self, dirs: &[PathBuf]) -> Vec<PathBuf> {
        self.repo.tracked_under(&self.id, dirs)
    }

    fn skips(&mut self, path: &std::path::Path, is_dir: bool) -> bool {
        self.rules.is_ignored(path, is_dir) && !self.repo.tracks(&self.id, path)
    }

    fn selection(&self) -> Option<&Selection> {
        Some(&self.selection)
    }
}

/// A step loads and drops every workspace's state: give the freed memory back to the system
/// rather than keep it for the next step.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::malloc_trim(0);
    }
}

/// How long a mount whose update failed waits before the next attempt: 100 ms, doubling,
/// at most 30 s.
fn retry_backoff(failures: u32) -> Duration {
    Duration::from_millis(100u64 << failures.saturating_sub(1).min(9)).min(Duration::from_secs(30))
}

fn rescan_interval(config: &RepoConfig) -> Duration {
    Duration::from_secs(config.rescan_interval.max(1))
}

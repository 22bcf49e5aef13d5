//! The worker of one remote of a repo: a thread with its own schedule, backoff and last
//! error, so that a dead or stalled remote never holds up another, nor local sync.
//!
//! What it runs, and when (see `plan`):
//! - a **full cycle** (fetch trunk, have the sync actor integrate what arrived, push trunk)
//!   at start, every `push_interval` as a safety net, on `jjfs sync`, and when a failing
//!   remote is retried (1 s, 2 s, 4 s ... at most 60 s);
//! - a **push** once trunk moved here and the repo has been quiet for `push_delay` (at most
//!   `PUSH_CEILING` × `push_delay` after the first change, for a repo that never rests); a
//!   push the remote refuses because it moved becomes a full cycle;
//! - a **check** every `fetch_interval`: where the remote's trunk points now
//!   (`repo::advertise`, a ref advertisement); only when it moved since this worker last saw
//!   it does a full cycle follow.
//!
//! Nothing in a cycle can stop the worker: a panic (in jj-lib or git handling) becomes the
//! cycle's error, and every git call has a deadline (`repo::deadline`), so a remote that never
//! answers fails the cycle instead of holding up `jjfs sync` or the daemon's shutdown.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::Utc;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use jj_lib::settings::UserSettings;

use super::schedule::Schedule;
use crate::engine::events::EventKind;
use crate::engine::{Event, SharedStatus};
use crate::repo::advertise::{self, Check};
use crate::repo::deadline::GitCalls;
use crate::repo::git::{self, Pushed};

/// How often one cycle fetches and integrates again when the remote moved while it pushed.
const PUSH_ATTEMPTS: usize = 3;

/// A repo that keeps changing is still pushed this many `push_delay`s after its first change.
const PUSH_CEILING: u32 = 6;

/// How long a paused or idle worker sleeps between looks at its commands.
const IDLE: Duration = Duration::from_secs(3600);

/// What the worker needs to know about its repo and its remote.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteSettings {
    /// The repo's name.
    pub repo: String,
    pub root: PathBuf,
    /// The remote's name (its git remote in the repo's store).
    pub remote: String,
    pub url: String,
    pub trunk: String,
    pub push_interval: Duration,
    pub push_delay: Duration,
    pub fetch_interval: Duration,
    /// The hook for `jjfs pause --repo`: a paused remote is neither checked, fetched from
    /// nor pushed to; `jjfs sync` gets `Ok(false)` from it at once.
    pub paused: bool,
}

pub enum RemoteCommand {
    /// A full cycle now; replies whether it brought something new into trunk, or the
    /// remote's error.
    SyncNow(Sender<Result<bool, String>>),
    Configure(RemoteSettings),
    /// Trunk moved here (a local change, or what another remote brought): push it soon.
    TrunkMoved,
    Shutdown,
}

/// The daemon's handle on one remote's worker.
pub struct RemoteHandle {
    pub tx: Sender<RemoteCommand>,
    /// Disconnected when the worker's thread ends.
    done: Receiver<()>,
    /// The worker's git calls, to stop the one in progress.
    calls: GitCalls,
}

/// How long stopping waits for a network call in progress before leaving it behind.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// What the worker shares with the daemon: where to report, whom to ask to integrate.
#[derive(Clone)]
pub struct WorkerContext {
    pub user_settings: UserSettings,
    /// The repo's sync actor.
    pub actor: Sender<Event>,
    pub status: SharedStatus,
    /// Events and metrics: pushes, fetches, failures.
    pub engine: crate::engine::EngineContext,
}

impl RemoteHandle {
    /// Starts the worker of one remote; `generation` tells its status entry from that of an
    /// earlier worker of the same name that is still stopping.
    pub fn spawn(
        settings: RemoteSettings,
        context: WorkerContext,
        generation: u64,
    ) -> std::io::Result<Self> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let (done_tx, done) = crossbeam_channel::bounded::<()>(0);
        let calls = GitCalls::from_env();
        let worker_calls = calls.clone();
        let now = Instant::now();
        std::thread::Builder::new()
            .name(format!("remote-{}-{}", settings.repo, settings.remote))
            .spawn(move || {
                let _done = done_tx;
                Worker {
                    schedule: Schedule::new(settings.push_interval, now),
                    next_check: now + settings.fetch_interval,
                    git_dir: crate::repo::create::git_dir(&settings.root),
                    settings,
                    context,
                    push: None,
                    known_tip: None,
                    configured_url: None,
                    calls: worker_calls,
                    generation,
                }
                .run(rx)
            })?;
        Ok(Self { tx, done, calls })
    }

    /// Stops the worker, killing the git of a push or fetch in progress; if the worker still
    /// has not ended after `STOP_GRACE`, it is left to finish on its own (nothing it does can
    /// lose data: it only adds operations).
    pub fn stop(self) {
        let _ = self.tx.send(RemoteCommand::Shutdown);
        self.calls.cancel();
        if let Err(RecvTimeoutError::Timeout) = self.done.recv_timeout(STOP_GRACE) {
            tracing::warn!("a remote is slow to answer; stopping without waiting for it");
        }
    }
}

/// What is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Full,
    Push,
    Check,
}

/// A push waiting for the repo to be quiet.
#[derive(Debug, Clone, Copy)]
struct PendingPush {
    first: Instant,
    at: Instant,
}

struct Worker {
    settings: RemoteSettings,
    context: WorkerContext,
    /// Full cycles: the safety net and the backoff of a failing remote.
    schedule: Schedule,
    next_check: Instant,
    push: Option<PendingPush>,
    /// Where the remote's trunk pointed when this worker last talked to it (None: unknown).
    known_tip: Option<Option<String>>,
    /// The URL last written to the repo's git config.
    configured_url: Option<String>,
    calls: GitCalls,
    generation: u64,
    /// The repo's git store (the ssh check talks to the remote from it).
    git_dir: PathBuf,
}

impl Worker {
    fn run(mut self, rx: Receiver<RemoteCommand>) {
        self.publish(true);
        loop {
            let wait = self.next_wake().saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(RemoteCommand::SyncNow(reply)) => {
                    let result = self.sync_now();
                    let _ = reply.send(result.clone());
                    if !self.answer_waiting(result, &rx) {
                        return;
                    }
                }
                Ok(RemoteCommand::Configure(settings)) => self.configure(settings),
                Ok(RemoteCommand::TrunkMoved) => self.trunk_moved(Instant::now()),
                Ok(RemoteCommand::Shutdown) | Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(kind) = plan(&self.timers(), Instant::now()) {
                        let result = self.cycle(kind);
                        if !self.answer_waiting(result, &rx) {
                            return;
                        }
                    }
                }
            }
        }
    }

    fn timers(&self) -> Timers {
        Timers {
            paused: self.settings.paused,
            failing: self.schedule.is_failing(),
            full: self.schedule.next(),
            check: self.next_check,
            push: self.push.map(|p| p.at),
        }
    }

    fn next_wake(&self) -> Instant {
        next_wake(&self.timers(), Instant::now())
    }

    fn sync_now(&mut self) -> Result<bool, String> {
        if self.settings.paused {
            return Ok(false);
        }
        self.cycle(Kind::Full)
    }

    /// After a failed cycle, answers the `jjfs sync` calls that arrived while it ran with its
    /// error instead of trying a failing remote again right away (which would make them wait
    /// up to twice the deadline), until the remote is changed; other commands are handled as
    /// usual. After a successful cycle they run one of their own, so they see every change
    /// made before they asked. False when the worker must stop.
    fn answer_waiting(
        &mut self,
        result: Result<bool, String>,
        rx: &Receiver<RemoteCommand>,
    ) -> bool {
        let Err(err) = result else {
            return true;
        };
        while let Ok(command) = rx.try_recv() {
            match command {
                RemoteCommand::SyncNow(reply) => {
                    let _ = reply.send(Err(err.clone()));
                }
                RemoteCommand::Configure(settings) => {
                    let new_remote = settings.url != self.settings.url;
                    self.configure(settings);
                    if new_remote {
                        // Later requests are for the new URL: the main loop runs them.
                        return true;
                    }
                }
                RemoteCommand::TrunkMoved => self.trunk_moved(Instant::now()),
                RemoteCommand::Shutdown => return false,
            }
        }
        true
    }

    fn configure(&mut self, settings: RemoteSettings) {
        let now = Instant::now();
        let url_changed = settings.url != self.settings.url;
        self.schedule.set_interval(settings.push_interval, now);
        self.next_check = self.next_check.min(now + settings.fetch_interval);
        let resumed = self.settings.paused && !settings.paused;
        self.settings = settings;
        if url_changed || resumed {
            // A new URL is tried at once (and its old state forgotten); so is a remote that
            // was paused.
            self.schedule = Schedule::new(self.settings.push_interval, now);
            self.known_tip = None;
            self.publish(url_changed);
        }
    }

    fn trunk_moved(&mut self, now: Instant) {
        let delay = self.settings.push_delay;
        self.push = Some(match self.push {
            Some(p) => PendingPush {
                first: p.first,
                at: (now + delay).min(p.first + delay * PUSH_CEILING),
            },
            None => PendingPush {
                first: now,
                at: now + delay,
            },
        });
    }

    /// Runs one cycle of `kind`; errors are recorded for `jjfs status` and retried later.
    fn cycle(&mut self, kind: Kind) -> Result<bool, String> {
        let url = self.settings.url.clone();
        let result = self.guarded(|worker| match kind {
            Kind::Full => worker.exchange(true),
            Kind::Push => worker.exchange(false),
            Kind::Check => worker.check(),
        });
        let now = Instant::now();
        match &result {
            Ok(_) => {
                if self.schedule.is_failing() {
                    let line = format!("remote {} ({url}) works again", self.settings.remote);
                    tracing::info!(repo = %self.settings.repo, "{line}");
                    self.record(line);
                }
                if kind == Kind::Full {
                    self.schedule.succeeded(now);
                }
                // A push says nothing about what others pushed since: the checks keep their
                // own rhythm (else every local change would put the next check off).
                if kind != Kind::Push {
                    self.next_check = now + self.settings.fetch_interval;
                }
            }
            Err(err) => {
                // The git remote is written again at the next try (in case it went missing).
                self.configured_url = None;
                if !self.schedule.is_failing() {
                    self.record(format!(
                        "remote {} sync delayed: {err}",
                        self.settings.remote
                    ));
                    self.tell(EventKind::RemoteError, err);
                }
                self.context
                    .engine
                    .metrics
                    .remote_failed(&self.settings.repo, &self.settings.remote);
                self.schedule.failed(err.clone(), now);
                tracing::warn!(
                    repo = %self.settings.repo,
                    remote = %self.settings.remote,
                    "remote sync delayed: {err} (retrying in {} s)",
                    self.schedule.next().saturating_duration_since(now).as_secs()
                );
            }
        }
        self.publish(false);
        result
    }

    /// `work`, with a panic turned into its error (the worker lives on).
    fn guarded(
        &mut self,
        work: impl FnOnce(&mut Self) -> Result<bool, String>,
    ) -> Result<bool, String> {
        let repo = self.settings.repo.clone();
        let result = without_panics(&repo, || work(self));
        if result.as_ref().is_err_and(|e| e.starts_with(INTERNAL)) {
            // What the panic interrupted is done again from scratch.
            self.configured_url = None;
            self.known_tip = None;
        }
        result
    }

    /// Fetch (with `fetch_first`, or when the remote moved), integrate, push. Returns whether
    /// the fetch brought something into trunk.
    fn exchange(&mut self, fetch_first: bool) -> Result<bool, String> {
        let s = self.settings.clone();
        let us = self.context.user_settings.clone();
        if self.configured_url.as_deref() != Some(s.url.as_str()) {
            git::set_remote(&s.root, &us, &s.remote, Some(&s.url)).map_err(|e| e.to_string())?;
            self.configured_url = Some(s.url.clone());
        }
        // A push that can only be done once there is no pending push for this cycle.
        self.push = None;
        let mut brought = false;
        let mut fetch = fetch_first;
        for attempt in 0..PUSH_ATTEMPTS {
            if fetch {
                let fetched = git::fetch(&s.root, &us, &s.remote, &s.trunk, &self.calls)
                    .map_err(|e| e.to_string())?;
                self.status_mut(|st| st.last_fetch = Some(Utc::now()));
                self.context.engine.metrics.fetched(&s.repo, &s.remote);
                if fetched {
                    self.tell(EventKind::Fetched, &format!("{} {}", s.trunk, s.url));
                }
                // After a refused push, trunk may have to be settled even if nothing came.
                if fetched || attempt > 0 {
                    self.integrate()?;
                    brought |= fetched;
                }
            }
            match git::push(&s.root, &us, &s.remote, &s.trunk, &self.calls)
                .map_err(|e| e.to_string())?
            {
                pushed @ (Pushed::Pushed | Pushed::UpToDate) => {
                    if pushed == Pushed::Pushed {
                        self.record(format!("pushed {} to {} ({})", s.trunk, s.remote, s.url));
                        self.context.engine.metrics.pushed(&s.repo, &s.remote);
                        self.tell(EventKind::Pushed, &format!("{} {}", s.trunk, s.url));
                    }
                    // The remote has trunk as it is here.
                    self.status_mut(|st| st.last_push = Some(Utc::now()));
                    self.known_tip =
                        git::known_remote_trunk(&s.root, &us, &s.remote, &s.trunk).ok();
                    return Ok(brought);
                }
                Pushed::RemoteMoved => fetch = true,
            }
        }
        Err(format!(
            "{} kept changing while jjfs pushed; trying again later",
            s.url
        ))
    }

    /// Looks where the remote's trunk points; a full cycle follows only when it moved since
    /// this worker last saw it (or the check cannot tell).
    fn check(&mut self) -> Result<bool, String> {
        let s = self.settings.clone();
        self.context.engine.metrics.checked(&s.repo, &s.remote);
        let checked = advertise::remote_tip(&s.url, &s.trunk, &self.git_dir, &self.calls);
        // The bench counts these lines (`JJFS_LOG=info,jjfs::remote::worker=debug`).
        tracing::debug!(repo = %s.repo, remote = %s.remote, "remote checked: {checked:?}");
        match checked {
            Ok(Check::Tip(tip)) if self.known_tip.as_ref() == Some(&tip) => {
                self.status_mut(|st| st.last_fetch = Some(Utc::now()));
                Ok(false)
            }
            Ok(_) => self.exchange(true),
            Err(err @ crate::repo::RepoError::RemoteTimeout { .. }) => Err(err.to_string()),
            Err(err) => {
                // git may know better (its own configuration, credential helpers).
                tracing::debug!(repo = %s.repo, remote = %s.remote, "check failed, fetching: {err}");
                self.exchange(true)
            }
        }
    }

    /// Has the sync actor bring what was fetched into trunk and every mount.
    fn integrate(&self) -> Result<(), String> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.context
            .actor
            .send(Event::IntegrateRemote { reply })
            .map_err(|_| "the repo's sync engine has stopped".to_owned())?;
        rx.blocking_recv()
            .map_err(|_| "the repo's sync engine stopped".to_owned())?
            .map_err(|e| e.to_string())
    }

    /// An event about this remote: `detail` starts with the remote's name.
    fn tell(&self, kind: EventKind, detail: &str) {
        self.context.engine.events.emit(
            &self.settings.repo,
            kind,
            None,
            Vec::new(),
            Some(format!("{}: {detail}", self.settings.remote)),
        );
    }

    /// Changes this remote's entry in the repo's status (unless a newer worker owns it).
    fn status_mut(&self, change: impl FnOnce(&mut crate::engine::status::RemoteStatus)) {
        let mut status = crate::engine::status::lock(&self.context.status);
        if let Some(entry) = status.remotes.get_mut(&self.settings.remote)
            && entry.generation == self.generation
        {
            change(entry);
        }
    }

    fn record(&self, line: String) {
        crate::engine::status::lock(&self.context.status).record(line);
    }

    /// Publishes the URL, the last error and the next retry; `fresh` starts the entry over.
    fn publish(&self, fresh: bool) {
        let (error, retry) = (self.schedule.last_error.clone(), self.schedule.next_retry);
        let mut status = crate::engine::status::lock(&self.context.status);
        if fresh {
            let entry = status
                .remotes
                .entry(self.settings.remote.clone())
                .or_default();
            if entry.generation <= self.generation {
                *entry = crate::engine::status::RemoteStatus {
                    generation: self.generation,
                    ..Default::default()
                };
            }
        }
        let Some(entry) = status.remotes.get_mut(&self.settings.remote) else {
            return;
        };
        if entry.generation != self.generation {
            return;
        }
        entry.url = Some(self.settings.url.clone());
        entry.last_error = error;
        entry.next_retry = retry;
    }
}

/// The timers a worker decides by.
#[derive(Debug, Clone, Copy)]
struct Timers {
    paused: bool,
    failing: bool,
    full: Instant,
    check: Instant,
    push: Option<Instant>,
}

/// What is due at `now`, if anything: a failing remote is only retried (as a full cycle) at
/// its backoff; a paused one does nothing.
fn plan(t: &Timers, now: Instant) -> Option<Kind> {
    if t.paused {
        return None;
    }
    if now >= t.full {
        return Some(Kind::Full);
    }
    if t.failing {
        return None;
    }
    if t.push.is_some_and(|at| now >= at) {
        return Some(Kind::Push);
    }
    (now >= t.check).then_some(Kind::Check)
}

/// When the worker has something to do next.
fn next_wake(t: &Timers, now: Instant) -> Instant {
    if t.paused {
        return now + IDLE;
    }
    if t.failing {
        return t.full;
    }
    let mut at = t.full.min(t.check);
    if let Some(push) = t.push {
        at = at.min(push);
    }
    at
}

/// How a panic shows in `status`.
const INTERNAL: &str = "internal error in jjfs";

/// Runs `work`, turning a panic in it into an error (logged with its message).
fn without_panics<T>(repo: &str, work: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        let message = panic_message(panic.as_ref());
        tracing::error!(repo, "the remote worker panicked: {message}");
        Err(format!("{INTERNAL}: {message}; see sync.log"))
    })
}

/// The text a panic was raised with.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with no message".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_the_cycles_error() {
        let result: Result<(), String> = without_panics("notes", || panic!("index out of range"));
        assert_eq!(
            result,
            Err("internal error in jjfs: index out of range; see sync.log".to_owned())
        );
        let result: Result<(), String> =
            without_panics("notes", || panic!("{} went wrong", "something"));
        assert_eq!(
            result,
            Err("internal error in jjfs: something went wrong; see sync.log".to_owned())
        );
        assert_eq!(without_panics("notes", || Ok(())), Ok(()));
    }

    fn timers(now: Instant) -> Timers {
        Timers {
            paused: false,
            failing: false,
            full: now + Duration::from_secs(300),
            check: now + Duration::from_secs(30),
            push: None,
        }
    }

    #[test]
    fn a_push_waits_for_its_delay_and_a_check_for_its_interval() {
        let now = Instant::now();
        let mut t = timers(now);
        assert_eq!(plan(&t, now), None);
        assert_eq!(next_wake(&t, now), now + Duration::from_secs(30));
        t.push = Some(now + Duration::from_secs(5));
        assert_eq!(next_wake(&t, now), now + Duration::from_secs(5));
        assert_eq!(plan(&t, now + Duration::from_secs(5)), Some(Kind::Push));
        assert_eq!(plan(&t, now + Duration::from_secs(31)), Some(Kind::Push));
        t.push = None;
        assert_eq!(plan(&t, now + Duration::from_secs(31)), Some(Kind::Check));
        assert_eq!(plan(&t, now + Duration::from_secs(300)), Some(Kind::Full));
    }

    #[test]
    fn a_failing_remote_waits_for_its_backoff_and_a_paused_one_for_nothing() {
        let now = Instant::now();
        let mut t = timers(now);
        t.failing = true;
        t.full = now + Duration::from_secs(8);
        t.push = Some(now);
        t.check = now;
        assert_eq!(plan(&t, now), None);
        assert_eq!(next_wake(&t, now), now + Duration::from_secs(8));
        assert_eq!(plan(&t, now + Duration::from_secs(8)), Some(Kind::Full));
        t.paused = true;
        assert_eq!(plan(&t, now + Duration::from_secs(8)), None);
        assert_eq!(next_wake(&t, now), now + IDLE);
    }
}

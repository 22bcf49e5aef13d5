//! The remote worker of one repo: its loop, its cycles, and what it publishes for `status`.
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
use crate::engine::{Event, SharedStatus};
use crate::repo::deadline::GitCalls;
use crate::repo::git::{self, Pushed};

/// How often one cycle fetches and integrates again when the remote moved while it pushed.
const PUSH_ATTEMPTS: usize = 3;

/// What the worker needs to know about its repo.
#[derive(Debug, Clone)]
pub struct RemoteSettings {
    pub name: String,
    pub root: PathBuf,
    pub url: Option<String>,
    pub trunk: String,
    pub push_interval: Duration,
    /// `jjfs pause --repo`: no fetch, no push.
    pub paused: bool,
}

pub enum RemoteCommand {
    /// Fetch, integrate and push now; reply with the remote's error, if any.
    SyncNow(crossbeam_channel::Sender<Result<(), String>>),
    Configure(RemoteSettings),
    Shutdown,
}

/// The daemon's handle on a repo's remote worker.
pub struct RemoteHandle {
    pub tx: Sender<RemoteCommand>,
    /// Disconnected when the worker's thread ends.
    done: Receiver<()>,
    /// The worker's git calls, to stop the one in progress.
    calls: GitCalls,
}

/// How long stopping waits for a network call in progress before leaving it behind.
const STOP_GRACE: Duration = Duration::from_secs(10);

impl RemoteHandle {
    pub fn spawn(
        settings: RemoteSettings,
        user_settings: UserSettings,
        actor: Sender<Event>,
        status: SharedStatus,
        context: crate::engine::EngineContext,
    ) -> std::io::Result<Self> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let (done_tx, done) = crossbeam_channel::bounded::<()>(0);
        let name = settings.name.clone();
        let calls = GitCalls::from_env();
        let worker_calls = calls.clone();
        std::thread::Builder::new()
            .name(format!("remote-{name}"))
            .spawn(move || {
                let _done = done_tx;
                Worker {
                    schedule: Schedule::new(settings.push_interval, Instant::now()),
                    settings,
                    user_settings,
                    actor,
                    status,
                    configured_url: None,
                    calls: worker_calls,
                    context,
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
            tracing::warn!("the remote is slow to answer; stopping without waiting for it");
        }
    }
}

/// Has the worker behind `tx` run a cycle now, and waits for it (on a blocking thread).
pub fn sync_now(tx: &Sender<RemoteCommand>) -> Result<(), String> {
    let stopped = || "the remote worker has stopped".to_owned();
    let (reply, rx) = crossbeam_channel::bounded(1);
    tx.send(RemoteCommand::SyncNow(reply))
        .map_err(|_| stopped())?;
    rx.recv().map_err(|_| stopped())?
}

struct Worker {
    /// Events and metrics: pushes, fetches, failures.
    context: crate::engine::EngineContext,
    settings: RemoteSettings,
    user_settings: UserSettings,
    actor: Sender<Event>,
    status: SharedStatus,
    schedule: Schedule,
    /// The URL last written to the repo's git config.
    configured_url: Option<String>,
    calls: GitCalls,
}

impl Worker {
    fn run(mut self, rx: Receiver<RemoteCommand>) {
        self.publish();
        loop {
            let wait = if self.settings.url.is_some() && !self.settings.paused {
                self.schedule
                    .next()
                    .saturating_duration_since(Instant::now())
            } else {
                Duration::from_secs(3600)
            };
            match rx.recv_timeout(wait) {
                Ok(RemoteCommand::SyncNow(reply)) => {
                    let result = self.cycle();
                    let _ = reply.send(result.clone());
                    if !self.answer_waiting(result, &rx) {
                        return;
                    }
                }
                Ok(RemoteCommand::Configure(settings)) => self.configure(settings),
                Ok(RemoteCommand::Shutdown) | Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {
                    if self.settings.url.is_some() && self.schedule.due(Instant::now()) {
                        let result = self.cycle();
                        if !self.answer_waiting(result, &rx) {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// After a failed cycle, answers the `jjfs sync` calls that arrived while it ran with its
    /// error instead of trying a failing remote again right away (which would make them wait
    /// up to twice the deadline), until the remote is changed; other commands are handled as
    /// usual. After a successful
    /// cycle they run one of their own, so they see every change made before they asked.
    /// False when the worker must stop.
    fn answer_waiting(&mut self, result: Result<(), String>, rx: &Receiver<RemoteCommand>) -> bool {
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
                        // Later requests are for the new remote: the main loop runs them.
                        return true;
                    }
                }
                RemoteCommand::Shutdown => return false,
            }
        }
        true
    }

    fn configure(&mut self, settings: RemoteSettings) {
        let url_changed = settings.url != self.settings.url;
        self.schedule
            .set_interval(settings.push_interval, Instant::now());
        self.settings = settings;
        if url_changed {
            // A new remote is tried at once, a removed one forgotten.
            self.schedule = Schedule::new(self.settings.push_interval, Instant::now());
            self.publish();
        }
    }

    /// Fetch, integrate, push. Errors are recorded for `jjfs status` and retried later.
    fn cycle(&mut self) -> Result<(), String> {
        let Some(url) = self.settings.url.clone().filter(|_| !self.settings.paused) else {
            return Ok(());
        };
        let result = self.guarded_exchange(&url);
        let now = Instant::now();
        match &result {
            Ok(()) => {
                if self.schedule.is_failing() {
                    tracing::info!(repo = %self.settings.name, "remote {url} works again");
                    self.record(format!("remote {url} works again"));
                }
                self.schedule.succeeded(now);
            }
            Err(err) => {
                if !self.schedule.is_failing() {
                    self.record(format!("remote sync delayed: {err}"));
                    self.context.events.emit(
                        &self.settings.name,
                        crate::engine::events::EventKind::RemoteError,
                        None,
                        Vec::new(),
                        Some(format!("{url}: {err}")),
                    );
                }
                self.context
                    .metrics
                    .remote_failed(&self.settings.name, git::REMOTE);
                self.schedule.failed(err.clone(), now);
                tracing::warn!(
                    repo = %self.settings.name,
                    "remote sync delayed: {err} (retrying in {} s)",
                    self.schedule.next().saturating_duration_since(now).as_secs()
                );
            }
        }
        self.publish();
        result
    }

    fn tell(&self, kind: crate::engine::events::EventKind, url: &str) {
        self.context.events.emit(
            &self.settings.name,
            kind,
            None,
            Vec::new(),
            Some(format!("{} {url}", self.settings.trunk)),
        );
    }

    /// `exchange`, with a panic turned into its error (the worker lives on).
    fn guarded_exchange(&mut self, url: &str) -> Result<(), String> {
        let repo = self.settings.name.clone();
        let result = without_panics(&repo, || self.exchange(url));
        if result.as_ref().is_err_and(|e| e.starts_with(INTERNAL)) {
            // What the panic interrupted is done again from scratch.
            self.configured_url = None;
        }
        result
    }

    fn exchange(&mut self, url: &str) -> Result<(), String> {
        let (root, trunk) = (self.settings.root.clone(), self.settings.trunk.clone());
        if self.configured_url.as_deref() != Some(url) {
            git::set_remote(&root, &self.user_settings, Some(url)).map_err(|e| e.to_string())?;
            self.configured_url = Some(url.to_owned());
        }
        for _ in 0..PUSH_ATTEMPTS {
            let fetched = git::fetch(&root, &self.user_settings, &trunk, &self.calls)
                .map_err(|e| e.to_string())?;
            self.status_mut(|s| s.last_fetch = Some(Utc::now()));
            self.context
                .metrics
                .fetched(&self.settings.name, git::REMOTE);
            if fetched {
                self.tell(crate::engine::events::EventKind::Fetched, url);
            }
            self.integrate()?;
            match git::push(&root, &self.user_settings, &trunk, &self.calls)
                .map_err(|e| e.to_string())?
            {
                pushed @ (Pushed::Pushed | Pushed::UpToDate) => {
                    if pushed == Pushed::Pushed {
                        self.record(format!("pushed {trunk} to {url}"));
                        self.context
                            .metrics
                            .pushed(&self.settings.name, git::REMOTE);
                        self.tell(crate::engine::events::EventKind::Pushed, url);
                    }
                    self.status_mut(|s| s.last_push = Some(Utc::now()));
                    return Ok(());
                }
                Pushed::RemoteMoved => continue,
            }
        }
        Err(format!(
            "{url} kept changing while jjfs pushed; trying again later"
        ))
    }

    /// Has the sync actor bring what was fetched into trunk and every mount.
    fn integrate(&self) -> Result<(), String> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.actor
            .send(Event::IntegrateRemote { reply })
            .map_err(|_| "the repo's sync engine has stopped".to_owned())?;
        rx.blocking_recv()
            .map_err(|_| "the repo's sync engine stopped".to_owned())?
            .map_err(|e| e.to_string())
    }

    fn status_mut(&self, change: impl FnOnce(&mut crate::engine::status::RemoteStatus)) {
        let mut status = crate::engine::status::lock(&self.status);
        change(&mut status.remote);
    }

    fn record(&self, line: String) {
        crate::engine::status::lock(&self.status).record(line);
    }

    fn publish(&self) {
        let url = self.settings.url.clone();
        let (error, retry) = (self.schedule.last_error.clone(), self.schedule.next_retry);
        self.status_mut(|s| {
            if s.url != url {
                *s = Default::default();
            }
            s.url = url;
            s.last_error = error;
            s.next_retry = retry;
        });
    }
}

/// How a panic shows in `status`.
const INTERNAL: &str = "internal error in jjfs";

/// Runs `work`, turning a panic in it into an error (logged with its message).
fn without_panics(repo: &str, work: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
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
        let result = without_panics("notes", || panic!("index out of range"));
        assert_eq!(
            result,
            Err("internal error in jjfs: index out of range; see sync.log".to_owned())
        );
        let result = without_panics("notes", || panic!("{} went wrong", "something"));
        assert_eq!(
            result,
            Err("internal error in jjfs: something went wrong; see sync.log".to_owned())
        );
        assert_eq!(without_panics("notes", || Ok(())), Ok(()));
    }
}

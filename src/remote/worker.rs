//! The remote worker of one repo.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::Utc;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use jj_lib::settings::UserSettings;

use super::schedule::Schedule;
use crate::repo::git::{self, Pushed};
use crate::engine::{Event, SharedStatus};

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
}

/// How long stopping waits for a network call in progress before leaving it behind.
const STOP_GRACE: Duration = Duration::from_secs(10);

impl RemoteHandle {
    pub fn spawn(
        settings: RemoteSettings,
        user_settings: UserSettings,
        actor: Sender<Event>,
        status: SharedStatus,
    ) -> std::io::Result<Self> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let (done_tx, done) = crossbeam_channel::bounded::<()>(0);
        let name = settings.name.clone();
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
                }
                .run(rx)
            })?;
        Ok(Self { tx, done })
    }

    /// Stops the worker; a push or fetch still running after `STOP_GRACE` is left to finish
    /// on its own (nothing it does can lose data: it only adds operations).
    pub fn stop(self) {
        let _ = self.tx.send(RemoteCommand::Shutdown);
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
    settings: RemoteSettings,
    user_settings: UserSettings,
    actor: Sender<Event>,
    status: SharedStatus,
    schedule: Schedule,
    /// The URL last written to the repo's git config.
    configured_url: Option<String>,
}

impl Worker {
    fn run(mut self, rx: Receiver<RemoteCommand>) {
        self.publish();
        loop {
            let wait = if self.settings.url.is_some() {
                self.schedule
                    .next()
                    .saturating_duration_since(Instant::now())
            } else {
                Duration::from_secs(3600)
            };
            match rx.recv_timeout(wait) {
                Ok(RemoteCommand::SyncNow(reply)) => {
                    let result = self.cycle();
                    let _ = reply.send(result);
                }
                Ok(RemoteCommand::Configure(settings)) => {
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
                Ok(RemoteCommand::Shutdown) | Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {
                    if self.settings.url.is_some() && self.schedule.due(Instant::now()) {
                        let _ = self.cycle();
                    }
                }
            }
        }
    }

    /// Fetch, integrate, push. Errors are recorded for `jjfs status` and retried later.
    fn cycle(&mut self) -> Result<(), String> {
        let Some(url) = self.settings.url.clone() else {
            return Ok(());
        };
        let result = self.exchange(&url);
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
                }
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

    fn exchange(&mut self, url: &str) -> Result<(), String> {
        let (root, trunk) = (self.settings.root.clone(), self.settings.trunk.clone());
        if self.configured_url.as_deref() != Some(url) {
            git::set_remote(&root, &self.user_settings, Some(url)).map_err(|e| e.to_string())?;
            self.configured_url = Some(url.to_owned());
        }
        for _ in 0..PUSH_ATTEMPTS {
            git::fetch(&root, &self.user_settings, &trunk).map_err(|e| e.to_string())?;
            self.status_mut(|s| s.last_fetch = Some(Utc::now()));
            self.integrate()?;
            match git::push(&root, &self.user_settings, &trunk).map_err(|e| e.to_string())? {
                pushed @ (Pushed::Pushed | Pushed::UpToDate) => {
                    if pushed == Pushed::Pushed {
                        self.record(format!("pushed {trunk} to {url}"));
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

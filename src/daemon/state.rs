//! The daemon's state: its config (mirrored to `config.json` on every change), the jj
//! settings it commits with, and the shutdown signal. The daemon owns all state; handlers
//! reach it only through `Daemon`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use jj_lib::settings::UserSettings;
use tokio::sync::watch;

use crate::api::Error;
use crate::config::{Config, RepoConfig};
use crate::engine::{Event, SyncHandle};
use crate::paths::Paths;
use crate::repo::Identity;

/// How the daemon was started, as `jjfs status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunMode {
    /// By the systemd user unit or the launchd agent.
    Service,
    /// By `jjfs start`, autostart or a user.
    Direct,
}

impl RunMode {
    /// systemd sets `INVOCATION_ID` for its services; our units also set `JJFS_SERVICE`.
    pub(crate) fn detect() -> Self {
        if std::env::var_os("JJFS_SERVICE").is_some() || std::env::var_os("INVOCATION_ID").is_some()
        {
            Self::Service
        } else {
            Self::Direct
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Direct => "direct",
        }
    }
}

pub(crate) struct Daemon {
    pub(crate) paths: Paths,
    pub(crate) identity: Identity,
    pub(crate) settings: UserSettings,
    pub(crate) mode: RunMode,
    config: Mutex<Config>,
    /// The sync actor of each repo.
    repos: Mutex<BTreeMap<String, Arc<SyncHandle>>>,
    /// Serializes commands that create or remove repos and mounts.
    pub(crate) admin: tokio::sync::Mutex<()>,
    shutdown: watch::Sender<bool>,
    /// The event stream, metrics and notices every repo's engine reports to.
    pub(crate) context: crate::engine::EngineContext,
    /// `/metrics`, served where `metrics_listen` says.
    pub(crate) metrics_endpoint: tokio::sync::Mutex<crate::metrics::MetricsEndpoint>,
}

impl Daemon {
    pub(crate) fn new(
        paths: Paths,
        identity: Identity,
        settings: UserSettings,
        mode: RunMode,
        config: Config,
        context: crate::engine::EngineContext,
    ) -> Self {
        let metrics_endpoint = tokio::sync::Mutex::new(crate::metrics::MetricsEndpoint::new(
            context.metrics.clone(),
        ));
        Self {
            paths,
            identity,
            settings,
            mode,
            config: Mutex::new(config),
            repos: Mutex::new(BTreeMap::new()),
            admin: tokio::sync::Mutex::new(()),
            shutdown: watch::channel(false).0,
            context,
            metrics_endpoint,
        }
    }

    /// A snapshot of the current config.
    pub(crate) fn config(&self) -> Config {
        self.lock_config().clone()
    }

    fn lock_config(&self) -> MutexGuard<'_, Config> {
        self.config.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `change` to the config and saves it atomically; on any error neither the file
    /// nor the daemon's copy changes.
    pub(crate) fn update_config<R>(
        &self,
        change: impl FnOnce(&mut Config) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let mut current = self.lock_config();
        let mut next = current.clone();
        let result = change(&mut next)?;
        next.save(&self.paths.config())
            .map_err(|e| Error::failed(e.to_string()))?;
        *current = next;
        Ok(result)
    }

    /// Applies the global settings of the config now: desktop notices on or off, and
    /// `/metrics` served where `metrics_listen` says (an error when it cannot be).
    pub(crate) async fn apply_global_settings(&self) -> Result<(), Error> {
        let config = self.config();
        if let Some(notices) = &self.context.notices {
            notices.set_enabled(config.notify);
        }
        let listen = crate::metrics::parse_listen(&config.metrics_listen)
            .map_err(|e| Error::user(e.to_string()))?;
        let mut endpoint = self.metrics_endpoint.lock().await;
        endpoint
            .set_listen(listen)
            .await
            .map_err(|e| Error::failed(e.to_string()))?;
        if let Some(addr) = endpoint.local_addr() {
            tracing::info!("serving metrics at http://{addr}/metrics");
        }
        Ok(())
    }

    pub(crate) fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    pub(crate) fn shutdown_requested(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}

impl Daemon {
    fn lock_repos(&self) -> MutexGuard<'_, BTreeMap<String, Arc<SyncHandle>>> {
        self.repos.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the sync actor of repo `name` (which mounts its mounts from config).
    pub(crate) fn start_repo(&self, name: &str) -> Result<(), String> {
        let config = self.config();
        let repo = config
            .repos
            .get(name)
            .ok_or_else(|| format!("unknown repo {name}"))?
            .clone();
        let mounts = config.mounts_of(name).cloned().collect();
        let handle = SyncHandle::spawn(
            name,
            repo,
            mounts,
            self.identity.clone(),
            self.context.clone(),
        )?;
        self.lock_repos().insert(name.to_owned(), Arc::new(handle));
        Ok(())
    }

    /// Starts every repo in config; a repo that fails to load is logged and left out (its
    /// mounts show as unhealthy).
    pub(crate) fn start_repos(&self) {
        let names: Vec<String> = self.config().repos.keys().cloned().collect();
        for name in names {
            if let Err(err) = self.start_repo(&name) {
                tracing::error!(repo = %name, "cannot start syncing: {err}");
            }
        }
    }

    /// The settings of repo `name`, as config.json has them now.
    pub(crate) fn repo_config(&self, name: &str) -> Result<RepoConfig, Error> {
        self.config()
            .repos
            .get(name)
            .cloned()
            .ok_or_else(|| unknown_repo(name))
    }

    /// The actor of a repo, or a clear error for an unknown one.
    pub(crate) fn repo(&self, name: &str) -> Result<Arc<SyncHandle>, Error> {
        if let Some(handle) = self.lock_repos().get(name) {
            return Ok(handle.clone());
        }
        if self.config().repos.contains_key(name) {
            Err(Error::failed(format!(
                "repo {name} could not be loaded; see {}",
                self.paths.log().display()
            )))
        } else {
            Err(unknown_repo(name))
        }
    }

    pub(crate) fn repo_handles(&self) -> Vec<(String, Arc<SyncHandle>)> {
        self.lock_repos()
            .iter()
            .map(|(name, handle)| (name.clone(), handle.clone()))
            .collect()
    }

    /// Stops every actor: each records pending changes and unmounts its mounts.
    pub(crate) async fn stop_repos(&self) {
        let handles: Vec<(String, Arc<SyncHandle>)> = std::mem::take(&mut *self.lock_repos())
            .into_iter()
            .collect();
        for (name, handle) in handles {
            let stopping = handle.clone();
            tokio::task::spawn_blocking(move || stopping.stop_remote())
                .await
                .ok();
            if let Err(err) = handle.ask(|reply| Event::Shutdown { reply }).await {
                tracing::warn!(repo = %name, "shutdown: {err}");
            }
            if let Ok(handle) = Arc::try_unwrap(handle) {
                tokio::task::spawn_blocking(move || handle.join())
                    .await
                    .ok();
            }
        }
    }
}

fn unknown_repo(name: &str) -> Error {
    Error::user(format!(
        "unknown repo {name} (create it with `jjfs init {name}`)"
    ))
}

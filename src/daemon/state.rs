//! The daemon's state: its config (mirrored to `config.json` on every change), the jj
//! settings it commits with, and the shutdown signal. The daemon owns all state; handlers
//! reach it only through `Daemon`.

use std::sync::{Mutex, MutexGuard};

use jj_lib::settings::UserSettings;
use tokio::sync::watch;

use crate::config::Config;
use crate::paths::Paths;
use crate::rpc::RpcError;

/// How the daemon was started, as `jjfs status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// By the systemd user unit or the launchd agent.
    Service,
    /// By `jjfs start`, autostart or a user.
    Direct,
}

impl RunMode {
    /// systemd sets `INVOCATION_ID` for its services; our units also set `JJFS_SERVICE`.
    pub fn detect() -> Self {
        if std::env::var_os("JJFS_SERVICE").is_some() || std::env::var_os("INVOCATION_ID").is_some()
        {
            Self::Service
        } else {
            Self::Direct
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Direct => "direct",
        }
    }
}

pub struct Daemon {
    pub paths: Paths,
    pub settings: UserSettings,
    pub mode: RunMode,
    config: Mutex<Config>,
    /// Serializes commands that create or remove repos and mounts.
    pub admin: tokio::sync::Mutex<()>,
    shutdown: watch::Sender<bool>,
}

impl Daemon {
    pub fn new(paths: Paths, settings: UserSettings, mode: RunMode, config: Config) -> Self {
        Self {
            paths,
            settings,
            mode,
            config: Mutex::new(config),
            admin: tokio::sync::Mutex::new(()),
            shutdown: watch::channel(false).0,
        }
    }

    /// A snapshot of the current config.
    pub fn config(&self) -> Config {
        self.lock_config().clone()
    }

    fn lock_config(&self) -> MutexGuard<'_, Config> {
        self.config.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `change` to the config and saves it atomically; on any error neither the file
    /// nor the daemon's copy changes.
    pub fn update_config<R>(
        &self,
        change: impl FnOnce(&mut Config) -> Result<R, RpcError>,
    ) -> Result<R, RpcError> {
        let mut current = self.lock_config();
        let mut next = current.clone();
        let result = change(&mut next)?;
        next.save(&self.paths.config())
            .map_err(|e| RpcError::failed(e.to_string()))?;
        *current = next;
        Ok(result)
    }

    pub fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    pub fn shutdown_requested(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}

//! `config`: show and change per-repo settings; changes reach the repo's actor at once.

use std::sync::Arc;

use super::super::state::Daemon;
use super::{blocking, repo_error};
use crate::api::{
    ConfigParams, ConfigResult, Error, GlobalConfigParams, GlobalConfigResult, GlobalSettings,
    Setting,
};
use crate::config::DEFAULT_REPO;
use crate::repo;

pub(super) async fn config(
    daemon: &Arc<Daemon>,
    params: ConfigParams,
) -> Result<ConfigResult, Error> {
    let Some(key) = params.key else {
        return Ok(match params.repo {
            Some(name) => ConfigResult::Repo(daemon.repo_config(&name)?.settings()),
            None => ConfigResult::All {
                repos: daemon
                    .config()
                    .repos
                    .iter()
                    .map(|(name, repo)| (name.clone(), repo.settings()))
                    .collect(),
            },
        });
    };
    let name = params.repo.unwrap_or_else(|| DEFAULT_REPO.to_owned());
    let Some(value) = params.value else {
        return Ok(ConfigResult::One(
            key.get(&daemon.repo_config(&name)?.settings()),
        ));
    };
    let _admin = daemon.admin.lock().await;
    let mut updated = daemon.repo_config(&name)?;
    let mut settings = updated.settings();
    key.set(&mut settings, &value).map_err(Error::user)?;
    updated.apply(settings);
    if key == Setting::Ignore {
        let (root, ignore) = (updated.path.clone(), updated.ignore.clone());
        blocking(move || repo::create::write_excludes(&root, &ignore).map_err(repo_error)).await?;
    }
    daemon.update_config(|config| {
        config.repos.insert(name.clone(), updated.clone());
        Ok(())
    })?;
    if let Ok(handle) = daemon.repo(&name) {
        handle.configure(&name, &updated);
    }
    Ok(ConfigResult::Set)
}

/// `config --global`: show or change the daemon's own settings; a change applies at once
/// (notices on or off, `/metrics` started, moved or stopped).
pub(super) async fn global(
    daemon: &Arc<Daemon>,
    params: GlobalConfigParams,
) -> Result<GlobalConfigResult, Error> {
    let current = |daemon: &Daemon| {
        let config = daemon.config();
        GlobalSettings {
            notify: config.notify,
            metrics_listen: config.metrics_listen,
        }
    };
    let Some(key) = params.key else {
        return Ok(GlobalConfigResult::All(current(daemon)));
    };
    let Some(value) = params.value else {
        return Ok(GlobalConfigResult::One(key.get(&current(daemon))));
    };
    let _admin = daemon.admin.lock().await;
    let before = current(daemon);
    let mut settings = before.clone();
    key.set(&mut settings, &value).map_err(Error::user)?;
    let save = |settings: &GlobalSettings| {
        daemon.update_config(|config| {
            config.notify = settings.notify;
            config.metrics_listen = settings.metrics_listen.clone();
            Ok(())
        })
    };
    save(&settings)?;
    if let Err(err) = daemon.apply_global_settings().await {
        // An address that cannot be served is not kept: config.json says what runs.
        save(&before)?;
        return Err(err);
    }
    Ok(GlobalConfigResult::Set)
}

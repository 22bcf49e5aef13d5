//! `init`: create a repo and start its sync actor.

use std::sync::Arc;

use super::super::state::Daemon;
use super::{blocking, repo_error};
use crate::api::{Error, InitParams, InitResult};
use crate::config::{self, RepoConfig};
use crate::repo::{self, git};
use crate::rpc::server::ProgressSink;

pub(super) async fn init(
    daemon: &Arc<Daemon>,
    params: InitParams,
    progress: ProgressSink,
) -> Result<InitResult, Error> {
    config::validate_repo_name(&params.name).map_err(Error::user)?;
    let from = params
        .from
        .as_deref()
        .map(|url| git::normalize_url(url, std::path::Path::new("/")))
        .transpose()
        .map_err(Error::user)?;
    let _admin = daemon.admin.lock().await;
    if daemon.config().repos.contains_key(&params.name) {
        return Err(Error::user(format!(
            "repo {} already exists (see `jjfs status`)",
            params.name
        )));
    }
    let root = daemon.paths.repo(&params.name);
    let mut repo_config = RepoConfig::new(root.clone());
    let settings = daemon.settings.clone();
    let (trunk, ignore) = (repo_config.trunk.clone(), repo_config.ignore.clone());
    let created_root = root.clone();
    let url = from.clone();
    repo_config.trunk = blocking(move || match &url {
        Some(url) => {
            progress.send(format!("Fetching {url}"));
            let mut sink = Progress(progress);
            repo::create_from(&created_root, &settings, url, &ignore, &mut sink).map_err(|e| {
                match repo_error(e) {
                    Error::Failed(m) => Error::failed(format!("could not import {url}: {m}")),
                    other => other,
                }
            })
        }
        None => repo::create_repo(&created_root, &settings, &trunk, &ignore)
            .map(|()| trunk)
            .map_err(repo_error),
    })
    .await?;
    if let Some(url) = &from {
        repo_config.set_remote(crate::config::DEFAULT_REMOTE, url);
    }
    let trunk = repo_config.trunk.clone();
    let saved = daemon.update_config(|config| {
        config.repos.insert(params.name.clone(), repo_config);
        Ok(())
    });
    if let Err(err) = saved {
        let _ = std::fs::remove_dir_all(&root);
        return Err(err);
    }
    let name = params.name.clone();
    let starter = daemon.clone();
    blocking(move || starter.start_repo(&name).map_err(Error::failed)).await?;
    tracing::info!(repo = %params.name, "created repo at {}", root.display());
    Ok(InitResult {
        name: params.name,
        path: root,
        trunk,
    })
}

/// A long fetch's progress, sent to the client as notifications.
struct Progress(ProgressSink);

impl git::GitProgressSink for Progress {
    fn progress(&mut self, message: &str) {
        self.0.send(message);
    }
}

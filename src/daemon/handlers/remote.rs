//! `remote_add`, `remote_remove`, `remote_show`: a repo's backup remote.

use std::path::Path;
use std::sync::Arc;

use super::super::state::Daemon;
use super::{blocking, repo_error};
use crate::api::{Error, RemoteAddParams, RemoteRemoveParams, RemoteShowParams, RemoteShowResult};
use crate::repo::git;

pub(super) async fn add(
    daemon: &Arc<Daemon>,
    params: RemoteAddParams,
) -> Result<RemoteShowResult, Error> {
    let url = git::normalize_url(&params.url, Path::new("/")).map_err(Error::user)?;
    set(daemon, params.repo, Some(url)).await
}

pub(super) async fn remove(
    daemon: &Arc<Daemon>,
    params: RemoteRemoveParams,
) -> Result<RemoteShowResult, Error> {
    set(daemon, params.repo, None).await
}

/// Sets the remote (or removes it with `url` None), in the repo and in config, and tells the
/// repo's remote worker, which backs up at once to a new remote.
async fn set(
    daemon: &Arc<Daemon>,
    name: String,
    url: Option<String>,
) -> Result<RemoteShowResult, Error> {
    let _admin = daemon.admin.lock().await;
    let handle = daemon.repo(&name)?;
    let root = daemon.repo_config(&name)?.path;
    let settings = daemon.settings.clone();
    let new_url = url.clone();
    blocking(move || {
        git::set_remote(&root, &settings, new_url.as_deref()).map_err(|e| match repo_error(e) {
            Error::Failed(m) => Error::failed(format!("could not set the remote: {m}")),
            other => other,
        })
    })
    .await?;
    let updated = daemon.update_config(|config| {
        let repo = config
            .repos
            .get_mut(&name)
            .ok_or_else(|| Error::user(format!("repo {name} was removed")))?;
        repo.remote = url.clone();
        Ok(repo.clone())
    })?;
    handle.configure(&name, &updated);
    match &url {
        Some(url) => tracing::info!(repo = %name, "backing up to {url}"),
        None => tracing::info!(repo = %name, "remote removed"),
    }
    Ok(RemoteShowResult {
        repo: name,
        remote: url,
    })
}

pub(super) fn show(daemon: &Daemon, params: RemoteShowParams) -> Result<RemoteShowResult, Error> {
    let remote = daemon.repo_config(&params.repo)?.remote;
    Ok(RemoteShowResult {
        repo: params.repo,
        remote,
    })
}

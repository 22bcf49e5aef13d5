//! `remote_add`, `remote_remove`, `remote_show`: a repo's backup remote.

use std::path::Path;
use std::sync::Arc;

use super::super::state::Daemon;
use super::blocking;
use crate::repo::git;
use crate::rpc::RpcError;
use crate::rpc::methods::{RemoteParams, RemoteShowResult};

/// Sets the remote (or removes it with `url` None), in the repo and in config, and tells the
/// repo's remote worker, which backs up at once to a new remote.
pub async fn set(daemon: &Arc<Daemon>, params: RemoteParams) -> Result<RemoteShowResult, RpcError> {
    let url = params
        .url
        .as_deref()
        .map(|url| git::normalize_url(url, Path::new("/")))
        .transpose()
        .map_err(RpcError::invalid_params)?;
    let _admin = daemon.admin.lock().await;
    let handle = daemon.repo(&params.repo)?;
    let root = daemon.repo_config(&params.repo)?.path;
    let settings = daemon.settings.clone();
    let new_url = url.clone();
    blocking(move || {
        git::set_remote(&root, &settings, new_url.as_deref())
            .map_err(|e| RpcError::failed(format!("could not set the remote: {e}")))
    })
    .await?;
    let updated = daemon.update_config(|config| {
        let repo = config
            .repos
            .get_mut(&params.repo)
            .ok_or_else(|| RpcError::failed(format!("repo {} was removed", params.repo)))?;
        repo.remote = url.clone();
        Ok(repo.clone())
    })?;
    handle.configure(&params.repo, &updated);
    match &url {
        Some(url) => tracing::info!(repo = %params.repo, "backing up to {url}"),
        None => tracing::info!(repo = %params.repo, "remote removed"),
    }
    Ok(RemoteShowResult {
        repo: params.repo,
        remote: url,
    })
}

pub fn show(daemon: &Daemon, params: RemoteParams) -> Result<RemoteShowResult, RpcError> {
    let remote = daemon.repo_config(&params.repo)?.remote;
    Ok(RemoteShowResult {
        repo: params.repo,
        remote,
    })
}

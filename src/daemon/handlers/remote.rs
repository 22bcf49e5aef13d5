//! `remote_add`, `remote_remove`, `remote_show`: a repo's named git remotes.

use std::path::Path;
use std::sync::Arc;

use super::super::state::Daemon;
use super::{blocking, repo_error};
use crate::api::{
    Error, RemoteAddParams, RemoteInfo, RemoteRemoveParams, RemoteShowParams, RemoteShowResult,
};
use crate::config::{RepoConfig, validate_remote_name};
use crate::engine::SyncHandle;
use crate::repo::git;

/// Adds remote NAME (or gives it a new URL), in the repo and in config; its worker backs up
/// to it at once.
pub(super) async fn add(
    daemon: &Arc<Daemon>,
    params: RemoteAddParams,
) -> Result<RemoteShowResult, Error> {
    let url = git::normalize_url(&params.url, Path::new("/")).map_err(Error::user)?;
    validate_remote_name(&params.name).map_err(Error::user)?;
    let (repo, name) = (params.repo, params.name);
    let _admin = daemon.admin.lock().await;
    let handle = daemon.repo(&repo)?;
    set_git_remote(daemon, &repo, &name, Some(url.clone())).await?;
    let updated = daemon.update_config(|config| {
        let entry = config
            .repos
            .get_mut(&repo)
            .ok_or_else(|| Error::user(format!("repo {repo} was removed")))?;
        entry.set_remote(&name, &url);
        Ok(entry.clone())
    })?;
    handle.configure(&repo, &updated);
    tracing::info!(repo = %repo, "remote {name}: backing up to {url}");
    Ok(shown(&repo, &updated, &handle))
}

/// Removes remote NAME: its worker stops (a git call in progress is killed), then the git
/// remote and its remote-tracking bookmark go; the remote itself is left as it is.
pub(super) async fn remove(
    daemon: &Arc<Daemon>,
    params: RemoteRemoveParams,
) -> Result<RemoteShowResult, Error> {
    let (repo, name) = (params.repo, params.name);
    let _admin = daemon.admin.lock().await;
    let handle = daemon.repo(&repo)?;
    let config = daemon.repo_config(&repo)?;
    if config.remote_named(&name).is_none() {
        let names: Vec<&str> = config.remotes.iter().map(|r| r.name.as_str()).collect();
        return Err(Error::user(match names.as_slice() {
            [] => format!("repo {repo} has no remote"),
            _ => format!(
                "repo {repo} has no remote named {name} (its remotes: {})",
                names.join(", ")
            ),
        }));
    }
    let stopping = handle.clone();
    let worker = name.clone();
    tokio::task::spawn_blocking(move || stopping.remove_remote(&worker))
        .await
        .map_err(|e| Error::failed(e.to_string()))?;
    set_git_remote(daemon, &repo, &name, None).await?;
    let updated = daemon.update_config(|config| {
        let entry = config
            .repos
            .get_mut(&repo)
            .ok_or_else(|| Error::user(format!("repo {repo} was removed")))?;
        entry.remove_remote(&name);
        Ok(entry.clone())
    })?;
    handle.configure(&repo, &updated);
    tracing::info!(repo = %repo, "remote {name} removed");
    Ok(shown(&repo, &updated, &handle))
}

/// Sets (or removes, with None) git remote `name` in the repo's store.
async fn set_git_remote(
    daemon: &Arc<Daemon>,
    repo: &str,
    name: &str,
    url: Option<String>,
) -> Result<(), Error> {
    let root = daemon.repo_config(repo)?.path;
    let settings = daemon.settings.clone();
    let name = name.to_owned();
    blocking(move || {
        git::set_remote(&root, &settings, &name, url.as_deref()).map_err(|e| match repo_error(e) {
            Error::Failed(m) => Error::failed(format!("could not set remote {name}: {m}")),
            other => other,
        })
    })
    .await
}

pub(super) fn show(daemon: &Daemon, params: RemoteShowParams) -> Result<RemoteShowResult, Error> {
    let config = daemon.repo_config(&params.repo)?;
    let handle = daemon.repo(&params.repo)?;
    Ok(shown(&params.repo, &config, &handle))
}

fn shown(repo: &str, config: &RepoConfig, handle: &SyncHandle) -> RemoteShowResult {
    let live = crate::engine::status::lock(&handle.status).clone();
    let remotes = remote_infos(config, &live);
    RemoteShowResult {
        repo: repo.to_owned(),
        remote: principal(&remotes).map(|r| r.url.clone()),
        remotes,
    }
}

/// Each remote of `config` with what its worker published, in config order.
pub(super) fn remote_infos(
    config: &RepoConfig,
    live: &crate::engine::RepoStatus,
) -> Vec<RemoteInfo> {
    use super::rfc3339;
    config
        .remotes
        .iter()
        .map(|remote| {
            let state = live
                .remotes
                .get(&remote.name)
                .filter(|s| s.url.as_deref() == Some(remote.url.as_str()))
                .cloned()
                .unwrap_or_default();
            RemoteInfo {
                name: remote.name.clone(),
                url: remote.url.clone(),
                state: match state.last_error {
                    Some(_) => crate::api::RemoteState::Delayed,
                    None => crate::api::RemoteState::Ok,
                },
                last_push: rfc3339(state.last_push),
                last_fetch: rfc3339(state.last_fetch),
                last_error: state.last_error.clone(),
                next_retry: rfc3339(state.next_retry),
            }
        })
        .collect()
}

/// The remote the older single-remote fields describe: `origin`, else the first.
pub(super) fn principal(remotes: &[RemoteInfo]) -> Option<&RemoteInfo> {
    remotes
        .iter()
        .find(|r| r.name == crate::config::DEFAULT_REMOTE)
        .or_else(|| remotes.first())
}

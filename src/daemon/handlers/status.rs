//! `status`: the daemon, each repo and each mount, from what the actors published.

use super::super::state::Daemon;
use super::rfc3339;
use crate::api::{
    DaemonInfo, RemoteInfo, RemoteState, RepoStatus, Skipped, StatusParams, StatusResult,
};

pub(super) fn status(daemon: &Daemon, params: StatusParams) -> StatusResult {
    let config = daemon.config();
    let handles: std::collections::HashMap<String, _> = daemon.repo_handles().into_iter().collect();
    let mut recent = Vec::new();
    let repos = config
        .repos
        .iter()
        .map(|(name, repo)| {
            let live = handles
                .get(name)
                .map(|h| crate::engine::status::lock(&h.status).clone())
                .unwrap_or_default();
            if params.verbose {
                recent.extend(live.recent.iter().map(|line| format!("{name}: {line}")));
            }
            let remotes = super::remote::remote_infos(repo, &live);
            let principal = super::remote::principal(&remotes).cloned();
            let field = |get: fn(&RemoteInfo) -> Option<String>| principal.as_ref().and_then(get);
            RepoStatus {
                name: name.clone(),
                trunk: repo.trunk.clone(),
                remote: principal.as_ref().map(|r| r.url.clone()),
                remote_state: principal.as_ref().map_or(RemoteState::None, |r| r.state),
                last_push: field(|r| r.last_push.clone()),
                last_fetch: field(|r| r.last_fetch.clone()),
                last_error: field(|r| r.last_error.clone()),
                next_retry: field(|r| r.next_retry.clone()),
                conflicts: live.conflicts.clone(),
                skipped: live
                    .skipped
                    .iter()
                    .map(|skipped| Skipped {
                        path: skipped.path.clone(),
                        reason: skipped.reason.clone(),
                        mount: skipped.mount.clone(),
                    })
                    .collect(),
                remotes,
                last_sync: rfc3339(live.last_sync),
                history_commits: live.history_commits,
                history_bytes: live.history_bytes,
                paused: repo.paused,
            }
        })
        .collect();
    recent.sort();
    StatusResult {
        daemon: DaemonInfo {
            pid: std::process::id(),
            version: crate::api::VERSION.to_owned(),
            mode: daemon.mode.as_str().to_owned(),
        },
        repos,
        mounts: super::mounts::list(daemon),
        recent,
    }
}

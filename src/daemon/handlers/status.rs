//! `status`: the daemon, each repo and each mount, from what the actors published.

use super::super::state::Daemon;
use super::rfc3339;
use crate::api::{DaemonInfo, RemoteState, RepoStatus, Skipped, StatusParams, StatusResult};

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
            let remote_state = match (&repo.remote, &live.remote.last_error) {
                (None, _) => RemoteState::None,
                (Some(_), Some(_)) => RemoteState::Delayed,
                (Some(_), None) => RemoteState::Ok,
            };
            RepoStatus {
                name: name.clone(),
                trunk: repo.trunk.clone(),
                remote: repo.remote.clone(),
                remote_state,
                last_push: rfc3339(live.remote.last_push),
                last_fetch: rfc3339(live.remote.last_fetch),
                last_error: live.remote.last_error.clone(),
                next_retry: rfc3339(live.remote.next_retry),
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

//! `sync`: a barrier over one repo or all of them.

use std::sync::Arc;

use super::super::state::Daemon;
use crate::api::{Error, SyncParams, SyncResult};
use crate::engine::Event;

pub(super) async fn sync(daemon: &Arc<Daemon>, params: SyncParams) -> Result<SyncResult, Error> {
    let names: Vec<String> = match params.repo {
        Some(name) => {
            daemon.repo(&name)?;
            vec![name]
        }
        None => daemon.config().repos.keys().cloned().collect(),
    };
    let mut failures = Vec::new();
    let mut warnings = Vec::new();
    // Paused mounts are skipped, and said so in one line.
    let config = daemon.config();
    let paused: Vec<String> = config
        .mounts
        .iter()
        .filter(|m| names.contains(&m.repo))
        .filter(|m| m.paused || config.repos.get(&m.repo).is_some_and(|r| r.paused))
        .map(|m| m.path.display().to_string())
        .collect();
    if !paused.is_empty() {
        warnings.push(format!(
            "skipped paused mount(s) {} (`jjfs resume PATH` or `jjfs resume --repo NAME` syncs again)",
            paused.join(", ")
        ));
    }
    for name in &names {
        let handle = match daemon.repo(name) {
            Ok(handle) => handle,
            Err(err) => {
                failures.push(format!("repo {name}: {err}"));
                continue;
            }
        };
        match handle.ask(|reply| Event::Sync { reply }).await {
            Ok(held) => warnings.extend(held),
            Err(err) => {
                failures.push(format!("repo {name}: {err}"));
                continue;
            }
        }
        // The remote after the local barrier: its failure is a warning, not a failed sync.
        let remote = handle.clone();
        let result = tokio::task::spawn_blocking(move || remote.sync_remote())
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        if let Err(err) = result {
            warnings.push(format!("remote of repo {name}: {err}"));
        }
    }
    if !failures.is_empty() {
        return Err(Error::failed(format!(
            "sync failed: {}",
            failures.join("; ")
        )));
    }
    Ok(SyncResult {
        repos: names,
        warnings,
    })
}

//! `sync`: a barrier over one repo or all of them.

use std::sync::Arc;

use super::super::state::Daemon;
use crate::engine::Event;
use crate::rpc::RpcError;
use crate::rpc::methods::{SyncParams, SyncResult};

pub async fn sync(daemon: &Arc<Daemon>, params: SyncParams) -> Result<SyncResult, RpcError> {
    let names: Vec<String> = match params.repo {
        Some(name) => {
            daemon.repo(&name)?;
            vec![name]
        }
        None => daemon.config().repos.keys().cloned().collect(),
    };
    let mut failures = Vec::new();
    let mut warnings = Vec::new();
    for name in &names {
        let handle = match daemon.repo(name) {
            Ok(handle) => handle,
            Err(err) => {
                failures.push(format!("repo {name}: {}", err.message));
                continue;
            }
        };
        if let Err(err) = handle.ask(|reply| Event::Sync { reply }).await {
            failures.push(format!("repo {name}: {err}"));
            continue;
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
        return Err(RpcError::failed(format!(
            "sync failed: {}",
            failures.join("; ")
        )));
    }
    Ok(SyncResult {
        repos: names,
        warnings,
    })
}

//! `sync`: a barrier over one repo or all of them.

use std::sync::Arc;

use super::super::state::Daemon;
use crate::rpc::RpcError;
use crate::rpc::methods::{SyncParams, SyncResult};
use crate::sync::Event;

pub async fn sync(daemon: &Arc<Daemon>, params: SyncParams) -> Result<SyncResult, RpcError> {
    let names: Vec<String> = match params.repo {
        Some(name) => {
            daemon.repo(&name)?;
            vec![name]
        }
        None => daemon.config().repos.keys().cloned().collect(),
    };
    let mut failures = Vec::new();
    for name in &names {
        let result = match daemon.repo(name) {
            Ok(handle) => handle.ask(|reply| Event::Sync { reply }).await,
            Err(err) => Err(err.message),
        };
        if let Err(err) = result {
            failures.push(format!("repo {name}: {err}"));
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
        warnings: Vec::new(),
    })
}

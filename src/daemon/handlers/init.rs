//! `init`: create a repo and start its sync actor.

use std::sync::Arc;

use super::super::server::ProgressSink;
use super::super::state::Daemon;
use super::blocking;
use crate::config::{self, RepoConfig};
use crate::repo;
use crate::rpc::RpcError;
use crate::rpc::methods::{InitParams, InitResult};

pub async fn init(
    daemon: &Arc<Daemon>,
    params: InitParams,
    _progress: ProgressSink,
) -> Result<InitResult, RpcError> {
    config::validate_repo_name(&params.name).map_err(RpcError::invalid_params)?;
    if params.from.is_some() {
        return Err(RpcError::not_implemented("init --from"));
    }
    let _admin = daemon.admin.lock().await;
    if daemon.config().repos.contains_key(&params.name) {
        return Err(RpcError::failed(format!(
            "repo {} already exists (see `jjfs status`)",
            params.name
        )));
    }
    let root = daemon.paths.repo(&params.name);
    let repo_config = RepoConfig::new(root.clone());
    let settings = daemon.settings.clone();
    let (trunk, ignore) = (repo_config.trunk.clone(), repo_config.ignore.clone());
    let created_root = root.clone();
    blocking(move || {
        repo::create_repo(&created_root, &settings, &trunk, &ignore)
            .map(drop)
            .map_err(|e| RpcError::failed(e.to_string()))
    })
    .await?;
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
    blocking(move || starter.start_repo(&name).map_err(RpcError::failed)).await?;
    tracing::info!(repo = %params.name, "created repo at {}", root.display());
    Ok(InitResult {
        name: params.name,
        path: root,
        trunk,
    })
}

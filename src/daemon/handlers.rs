//! One handler per daemon method, the mirror of the CLI's commands: decode the parameters,
//! do the work (blocking jj work on a blocking thread), encode the result.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::server::ProgressSink;
use super::state::Daemon;
use crate::config::{self, RepoConfig};
use crate::repo;
use crate::rpc::methods::*;
use crate::rpc::{ErrorCode, RpcError};

pub async fn dispatch(
    daemon: &Arc<Daemon>,
    method: &str,
    params: Value,
    progress: ProgressSink,
) -> Result<Value, RpcError> {
    match method {
        VERSION => reply(VersionResult {
            version: crate::rpc::VERSION.to_owned(),
            pid: std::process::id(),
        }),
        INIT => init(daemon, decode(params)?, progress)
            .await
            .and_then(reply),
        LIST_MOUNTS => reply(ListResult { mounts: Vec::new() }),
        STATUS => {
            let _: StatusParams = decode_or_default(params)?;
            reply(status(daemon))
        }
        SHUTDOWN => {
            daemon.request_shutdown();
            reply(Value::Null)
        }
        OPEN => Err(RpcError::not_implemented("open")),
        CLOSE => Err(RpcError::not_implemented("close")),
        SYNC => Err(RpcError::not_implemented("sync")),
        REMOTE_ADD | REMOTE_REMOVE | REMOTE_SHOW => Err(RpcError::not_implemented("remote")),
        CONFIG => Err(RpcError::not_implemented("config")),
        LOG => Err(RpcError::not_implemented("log")),
        CAT => Err(RpcError::not_implemented("cat")),
        DIFF => Err(RpcError::not_implemented("diff")),
        RESTORE => Err(RpcError::not_implemented("restore")),
        UNDO => Err(RpcError::not_implemented("undo")),
        other => Err(RpcError::new(
            ErrorCode::MethodNotFound,
            format!("unknown method {other:?}"),
        )),
    }
}

fn reply(value: impl Serialize) -> Result<Value, RpcError> {
    serde_json::to_value(value).map_err(|e| RpcError::new(ErrorCode::Internal, e.to_string()))
}

fn decode<T: DeserializeOwned>(params: Value) -> Result<T, RpcError> {
    serde_json::from_value(params)
        .map_err(|e| RpcError::invalid_params(format!("invalid params: {e}")))
}

fn decode_or_default<T: DeserializeOwned + Default>(params: Value) -> Result<T, RpcError> {
    if params.is_null() {
        Ok(T::default())
    } else {
        decode(params)
    }
}

async fn init(
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
    tokio::task::spawn_blocking(move || {
        repo::create_repo(&created_root, &settings, &trunk, &ignore)
    })
    .await
    .map_err(|e| RpcError::new(ErrorCode::Internal, e.to_string()))?
    .map_err(|e| RpcError::failed(e.to_string()))?;
    let trunk = repo_config.trunk.clone();
    let saved = daemon.update_config(|config| {
        config.repos.insert(params.name.clone(), repo_config);
        Ok(())
    });
    if let Err(err) = saved {
        let _ = std::fs::remove_dir_all(&root);
        return Err(err);
    }
    tracing::info!(repo = %params.name, "created repo at {}", root.display());
    Ok(InitResult {
        name: params.name,
        path: root,
        trunk,
    })
}

fn status(daemon: &Daemon) -> StatusResult {
    let config = daemon.config();
    StatusResult {
        daemon: DaemonInfo {
            pid: std::process::id(),
            version: crate::rpc::VERSION.to_owned(),
            mode: daemon.mode.as_str().to_owned(),
        },
        repos: config
            .repos
            .iter()
            .map(|(name, repo)| RepoStatus {
                name: name.clone(),
                trunk: repo.trunk.clone(),
                remote: repo.remote.clone(),
                remote_state: if repo.remote.is_some() {
                    RemoteState::Ok
                } else {
                    RemoteState::None
                },
                last_push: None,
                last_fetch: None,
                last_error: None,
                next_retry: None,
                conflicts: Vec::new(),
                skipped: Vec::new(),
                last_sync: None,
                history_commits: None,
                history_bytes: None,
            })
            .collect(),
        mounts: Vec::new(),
        recent: Vec::new(),
    }
}

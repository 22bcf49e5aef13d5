//! One handler per daemon method, the mirror of the CLI's commands: decode the parameters,
//! do the work (through the repo's sync actor, or a blocking thread), encode the result.

mod config;
mod history;
mod init;
mod mounts;
mod remote;
mod status;
mod sync;

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::server::ProgressSink;
use super::state::Daemon;
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
        INIT => reply(init::init(daemon, decode(params)?, progress).await?),
        OPEN => reply(mounts::open(daemon, decode(params)?).await?),
        CLOSE => reply(mounts::close(daemon, decode(params)?).await?),
        LIST_MOUNTS => reply(ListResult {
            mounts: mounts::list(daemon),
        }),
        STATUS => reply(status::status(daemon, decode_or_default(params)?)),
        SYNC => reply(sync::sync(daemon, decode_or_default(params)?).await?),
        CONFIG => reply(config::config(daemon, decode_or_default(params)?).await?),
        SHUTDOWN => {
            daemon.request_shutdown();
            reply(Value::Null)
        }
        REMOTE_ADD => {
            let params: RemoteParams = decode(params)?;
            if params.url.is_none() {
                return Err(RpcError::invalid_params("remote_add needs a url"));
            }
            reply(remote::set(daemon, params).await?)
        }
        REMOTE_REMOVE => reply(
            remote::set(
                daemon,
                RemoteParams {
                    url: None,
                    ..decode(params)?
                },
            )
            .await?,
        ),
        REMOTE_SHOW => reply(remote::show(daemon, decode(params)?)?),
        LOG | CAT | DIFF | RESTORE | UNDO => {
            history::run(daemon, method, decode_or_default(params)?).await
        }
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

/// Runs blocking work (jj-lib, the file system) off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, RpcError> + Send + 'static,
) -> Result<T, RpcError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| RpcError::new(ErrorCode::Internal, e.to_string()))?
}

fn rfc3339(time: Option<chrono::DateTime<chrono::Utc>>) -> Option<String> {
    time.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

//! One handler per daemon method, the mirror of the CLI's commands: `dispatch` matches the
//! decoded request exhaustively, each handler does the work (through the repo's sync actor,
//! or a blocking thread) and returns its typed result or an `api::Error` of the right kind.

mod config;
mod control;
mod history;
mod init;
mod mounts;
mod remote;
mod status;
mod sync;

use std::sync::Arc;

use super::state::Daemon;
use crate::api::{self, Error, Request, Response};
use crate::engine::EngineError;
use crate::repo::RepoError;
use crate::rpc::server::ProgressSink;

pub(crate) async fn dispatch(
    daemon: &Arc<Daemon>,
    request: Request,
    progress: ProgressSink,
) -> Result<Response, Error> {
    tracing::debug!(method = request.method(), "request");
    Ok(match request {
        Request::Version(api::Version) => Response::Version(api::VersionResult {
            version: api::VERSION.to_owned(),
            pid: std::process::id(),
        }),
        Request::Init(params) => Response::Init(init::init(daemon, params, progress).await?),
        Request::Open(params) => Response::Open(mounts::open(daemon, params).await?),
        Request::Close(params) => Response::Close(mounts::close(daemon, params).await?),
        Request::Only(params) => Response::Only(mounts::only(daemon, params).await?),
        Request::ListMounts(api::ListMounts) => Response::ListMounts(api::ListResult {
            mounts: mounts::list(daemon),
        }),
        Request::Status(params) => Response::Status(status::status(daemon, params)),
        Request::Sync(params) => Response::Sync(sync::sync(daemon, params).await?),
        Request::RemoteAdd(params) => Response::RemoteAdd(remote::add(daemon, params).await?),
        Request::RemoteRemove(params) => {
            Response::RemoteRemove(remote::remove(daemon, params).await?)
        }
        Request::RemoteShow(params) => Response::RemoteShow(remote::show(daemon, params)?),
        Request::Config(params) => Response::Config(config::config(daemon, params).await?),
        Request::ConfigGlobal(params) => {
            Response::ConfigGlobal(config::global(daemon, params).await?)
        }
        Request::Pause(params) => Response::Pause(control::pause(daemon, params).await?),
        Request::Conflicts(params) => Response::Conflicts(control::conflicts(daemon, params)?),
        Request::Events(params) => {
            Response::Events(control::events(daemon, params, progress).await?)
        }
        Request::Log(params) => Response::Log(history::log(daemon, params).await?),
        Request::Cat(params) => Response::Cat(history::cat(daemon, params).await?),
        Request::Diff(params) => Response::Diff(history::diff(daemon, params).await?),
        Request::Restore(params) => Response::Restore(history::restore(daemon, params).await?),
        Request::Undo(params) => Response::Undo(history::undo(daemon, params).await?),
        Request::Shutdown(api::Shutdown) => {
            daemon.request_shutdown();
            Response::Shutdown(())
        }
    })
}

/// Runs blocking work (jj-lib, the file system) off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::internal(format!("a daemon task failed: {e}")))?
}

/// What a repo operation's failure is to the client.
fn repo_error(err: RepoError) -> Error {
    match err {
        RepoError::Exists(_) | RepoError::Refused(_) => Error::user(err.to_string()),
        RepoError::Busy(_) => Error::busy(err.to_string()),
        RepoError::Io {
            ref path,
            ref source,
        } => Error::io(path.display(), source),
        RepoError::Settings(_)
        | RepoError::Jj(_)
        | RepoError::Remote(_)
        | RepoError::RemoteTimeout { .. }
        | RepoError::UnsafeCommit { .. }
        | RepoError::Unsafe(_) => Error::failed(err.to_string()),
    }
}

/// What the sync actor answered with, to the client: user mistakes, busy and failures
/// keep their kind (and so their error code).
fn engine_error(err: EngineError) -> Error {
    match err {
        EngineError::User(message) => Error::user(message),
        EngineError::Busy(message) => Error::busy(message),
        EngineError::Repo {
            context: Some(context),
            source,
        } => repo_error(source).with_context(&context),
        EngineError::Repo {
            context: None,
            source,
        } => repo_error(source),
        EngineError::Failed(message) => Error::failed(message),
        EngineError::Stopped => Error::failed(err.to_string()),
    }
}

fn rfc3339(time: Option<chrono::DateTime<chrono::Utc>>) -> Option<String> {
    time.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

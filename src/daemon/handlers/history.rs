//! `log`, `cat`, `diff`, `restore`, `undo`: resolve the repo and paths the user named (they
//! may stand in a mount), parse every WHEN before anything runs, then ask the repo's actor.

use std::sync::Arc;

use super::super::state::Daemon;
use super::engine_error;
use crate::api::{
    CatParams, CatResult, ChangeResult, DiffParams, DiffResult, Error, LogParams, LogResult,
    RestoreParams, Scope, UndoParams,
};
use crate::engine::{Event, HistoryAnswer};
use crate::history::paths::{self, Root};
use crate::history::{Request, When};

pub(super) async fn log(daemon: &Arc<Daemon>, params: LogParams) -> Result<LogResult, Error> {
    let (repo, mut paths) = resolve(daemon, &params.scope, params.path.as_slice())?;
    let request = Request::Log {
        path: paths.pop(),
        since: when(params.since.as_deref())?,
        limit: params.limit,
    };
    match ask(daemon, &repo, request).await? {
        HistoryAnswer::Log(result) => Ok(result),
        _ => Err(unexpected()),
    }
}

pub(super) async fn cat(daemon: &Arc<Daemon>, params: CatParams) -> Result<CatResult, Error> {
    let (repo, mut paths) = resolve(daemon, &params.scope, &[params.path])?;
    let request = Request::Cat {
        path: paths.pop().unwrap_or_default(),
        at: When::parse(&params.at, chrono::Utc::now()).map_err(Error::user)?,
    };
    match ask(daemon, &repo, request).await? {
        HistoryAnswer::Cat(result) => Ok(result),
        _ => Err(unexpected()),
    }
}

pub(super) async fn diff(daemon: &Arc<Daemon>, params: DiffParams) -> Result<DiffResult, Error> {
    let (repo, mut paths) = resolve(daemon, &params.scope, &[params.path])?;
    let request = Request::Diff {
        path: paths.pop().unwrap_or_default(),
        from: when(params.from.as_deref())?,
        to: when(params.to.as_deref())?,
    };
    match ask(daemon, &repo, request).await? {
        HistoryAnswer::Diff(result) => Ok(result),
        _ => Err(unexpected()),
    }
}

pub(super) async fn restore(
    daemon: &Arc<Daemon>,
    params: RestoreParams,
) -> Result<ChangeResult, Error> {
    let (repo, paths) = resolve(daemon, &params.scope, &params.paths)?;
    let request = Request::Restore {
        paths,
        at: When::parse(&params.at, chrono::Utc::now()).map_err(Error::user)?,
    };
    changed(ask(daemon, &repo, request).await?)
}

pub(super) async fn undo(daemon: &Arc<Daemon>, params: UndoParams) -> Result<ChangeResult, Error> {
    let (repo, _) = resolve(daemon, &params.scope, &[])?;
    changed(
        ask(
            daemon,
            &repo,
            Request::Undo {
                count: params.count,
            },
        )
        .await?,
    )
}

fn changed(answer: HistoryAnswer) -> Result<ChangeResult, Error> {
    match answer {
        HistoryAnswer::Changed(result) => Ok(result),
        _ => Err(unexpected()),
    }
}

fn when(text: Option<&str>) -> Result<Option<When>, Error> {
    text.map(|t| When::parse(t, chrono::Utc::now()).map_err(Error::user))
        .transpose()
}

async fn ask(daemon: &Daemon, repo: &str, request: Request) -> Result<HistoryAnswer, Error> {
    daemon
        .repo(repo)?
        .ask(|reply| Event::History { request, reply })
        .await
        .map_err(engine_error)
}

/// The actor answered a history request with another kind of answer: a bug.
fn unexpected() -> Error {
    Error::internal("the sync engine answered a history request with another kind of answer")
}

/// The repo and repo paths of a request, from the mounts in config.
fn resolve(
    daemon: &Daemon,
    scope: &Scope,
    given: &[String],
) -> Result<(String, Vec<String>), Error> {
    let config = daemon.config();
    let roots: Vec<Root> = config
        .mounts
        .iter()
        .flat_map(|m| {
            [&m.path, &m.workspace].map(|dir| Root {
                repo: m.repo.clone(),
                dir: dir.clone(),
            })
        })
        .collect();
    let repos: Vec<String> = config.repos.keys().cloned().collect();
    let cwd = scope.cwd.clone().unwrap_or_else(|| "/".into());
    let query = paths::Query {
        cwd: &cwd,
        repo: scope.repo.as_deref(),
        roots: &roots,
        repos: &repos,
    };
    paths::resolve(&query, given).map_err(Error::user)
}

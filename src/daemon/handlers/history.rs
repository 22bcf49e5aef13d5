//! `log`, `cat`, `diff`, `restore`, `undo`: resolve the repo and paths the user named (they
//! may stand in a mount), parse every WHEN before anything runs, then ask the repo's actor.

use std::sync::Arc;

use serde_json::Value;

use super::super::state::Daemon;
use super::reply;
use crate::engine::{Event, HistoryAnswer};
use crate::history::paths::{self, Root};
use crate::history::{Request, When};
use crate::rpc::RpcError;
use crate::rpc::methods::{CAT, DIFF, HistoryParams, LOG, RESTORE, UNDO};

pub async fn run(
    daemon: &Arc<Daemon>,
    method: &str,
    params: HistoryParams,
) -> Result<Value, RpcError> {
    let (repo, paths) = resolve(daemon, &params)?;
    let now = chrono::Utc::now();
    let when = |text: &Option<String>| -> Result<Option<When>, RpcError> {
        text.as_deref()
            .map(|t| When::parse(t, now).map_err(RpcError::invalid_params))
            .transpose()
    };
    let needed = |what: &str| RpcError::invalid_params(format!("{method} needs {what}"));
    let one_path = || -> Result<String, RpcError> {
        match paths.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(needed("one PATH")),
        }
    };
    let request = match method {
        LOG => Request::Log {
            path: match paths.as_slice() {
                [] => None,
                [one] => Some(one.clone()),
                _ => return Err(needed("at most one PATH")),
            },
            since: when(&params.since)?,
            limit: params.limit,
        },
        CAT => Request::Cat {
            path: one_path()?,
            at: when(&params.at)?.ok_or_else(|| needed("--at WHEN"))?,
        },
        DIFF => Request::Diff {
            path: one_path()?,
            from: when(&params.from)?,
            to: when(&params.to)?,
        },
        RESTORE => {
            if paths.is_empty() {
                return Err(needed("at least one PATH"));
            }
            Request::Restore {
                paths,
                at: when(&params.at)?.ok_or_else(|| needed("--at WHEN"))?,
            }
        }
        UNDO => Request::Undo {
            count: params.count.unwrap_or(1),
        },
        other => {
            return Err(RpcError::invalid_params(format!(
                "{other} is not a history method"
            )));
        }
    };
    let handle = daemon.repo(&repo)?;
    let answer = handle
        .ask(|reply| Event::History { request, reply })
        .await
        .map_err(RpcError::failed)?;
    match answer {
        HistoryAnswer::Log(result) => reply(result),
        HistoryAnswer::Cat(result) => reply(result),
        HistoryAnswer::Diff(result) => reply(result),
        HistoryAnswer::Changed(result) => reply(result),
    }
}

/// The repo and repo paths of a request, from the mounts in config.
fn resolve(daemon: &Daemon, params: &HistoryParams) -> Result<(String, Vec<String>), RpcError> {
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
    let cwd = params.cwd.clone().unwrap_or_else(|| "/".into());
    let query = paths::Query {
        cwd: &cwd,
        repo: params.repo.as_deref(),
        roots: &roots,
        repos: &repos,
    };
    paths::resolve(&query, &params.paths).map_err(RpcError::invalid_params)
}

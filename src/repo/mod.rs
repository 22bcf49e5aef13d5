//! Everything jj-lib: creating repos, their workspaces, snapshots, commits, rebases and
//! check-outs, git push and fetch. No other module touches jj-lib.
//!
//! jj-lib is async in 0.45 but does blocking file I/O inside its futures, so every call here
//! is a plain blocking function that drives the future to completion on the caller's thread
//! (a sync actor's thread, or a blocking task of the daemon).

pub mod advertise;
pub mod create;
pub mod deadline;
pub mod git;
pub mod history;
pub mod ignores;
pub mod messages;
pub mod pack;
pub mod settings;
pub mod step;
pub mod tree_edit;

use std::path::PathBuf;

pub use create::{create_from, create_repo, load_repo};
pub use settings::{Identity, user_settings};

/// Runs a jj-lib future to completion on this thread.
pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    pollster::block_on(future)
}

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("invalid jj settings: {0}")]
    Settings(String),
    #[error("repo {0} already exists; pick another name or remove it first")]
    Exists(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("jj: {0}")]
    Jj(String),
    /// The git remote failed; the text is git's own message.
    #[error("remote: {0}")]
    Remote(String),
    /// Git stayed silent for the deadline and was stopped (`deadline`).
    #[error("remote {url} did not answer within {secs} s")]
    RemoteTimeout { url: String, secs: u64 },
    /// A fetched commit holds a path no workspace may have (`validate`); nothing of the
    /// fetch was imported. `then` says what happens now.
    #[error("the remote's {branch} has commit {commit} with {problem}; {then}")]
    UnsafeCommit {
        branch: String,
        commit: String,
        problem: validate::Problem,
        then: &'static str,
    },
    /// A check-out met a file a user changed meanwhile; nothing of theirs was touched.
    #[error("a user changed {0} during the update; it will be retried")]
    Busy(String),
    /// A request that cannot be done as asked (an unknown path or id); nothing was changed.
    #[error("{0}")]
    Refused(String),
    /// A path leads through a symlink or out of the workspace: nothing was written there.
    #[error("{0} leads through a symlink or out of the workspace; it was not written")]
    Unsafe(String),
}

impl RepoError {
    pub(crate) fn jj(err: impl std::fmt::Display) -> Self {
        Self::Jj(err.to_string())
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
pub mod repository;
pub mod revert;
pub mod validate;
pub mod working_copy;

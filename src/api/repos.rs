//! `init` and `remote_add`, `remote_remove`, `remote_show`: creating repos and their named
//! git remotes.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InitParams {
    pub(crate) name: String,
    /// A git repository (path or URL) to create it from.
    #[serde(default)]
    pub(crate) from: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InitResult {
    pub(crate) name: String,
    pub(crate) path: PathBuf,
    pub(crate) trunk: String,
}

fn origin() -> String {
    crate::config::DEFAULT_REMOTE.to_owned()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RemoteAddParams {
    pub(crate) repo: String,
    pub(crate) url: String,
    /// The remote to add or give a new URL (default `origin`).
    #[serde(default = "origin")]
    pub(crate) name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RemoteRemoveParams {
    pub(crate) repo: String,
    /// The remote to remove (default `origin`).
    #[serde(default = "origin")]
    pub(crate) name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RemoteShowParams {
    pub(crate) repo: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RemoteShowResult {
    pub(crate) repo: String,
    /// `origin`'s URL, else the first remote's.
    pub(crate) remote: Option<String>,
    /// Every remote with its state, in the order they were added.
    #[serde(default)]
    pub(crate) remotes: Vec<super::RemoteInfo>,
}

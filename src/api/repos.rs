//! `init` and `remote_add`, `remote_remove`, `remote_show`: creating repos and their backup
//! remote.

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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RemoteAddParams {
    pub(crate) repo: String,
    pub(crate) url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RemoteRemoveParams {
    pub(crate) repo: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RemoteShowParams {
    pub(crate) repo: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RemoteShowResult {
    pub(crate) repo: String,
    pub(crate) remote: Option<String>,
}

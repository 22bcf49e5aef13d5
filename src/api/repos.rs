//! `init` and `remote_add`, `remote_remove`, `remote_show`: creating repos and their backup
//! remote.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitParams {
    pub name: String,
    /// A git repository (path or URL) to create it from.
    #[serde(default)]
    pub from: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitResult {
    pub name: String,
    pub path: PathBuf,
    pub trunk: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteAddParams {
    pub repo: String,
    pub url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteRemoveParams {
    pub repo: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteShowParams {
    pub repo: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteShowResult {
    pub repo: String,
    pub remote: Option<String>,
}

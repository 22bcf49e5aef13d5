//! `open`, `close`, `list_mounts`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OpenParams {
    pub(crate) repo: String,
    /// Absolute path of the mount point.
    pub(crate) path: PathBuf,
    /// Who owns the files jjfs creates there (a user name or uid; a root daemon only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) owner: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OpenResult {
    pub(crate) mount_id: Uuid,
    pub(crate) mount_path: PathBuf,
    pub(crate) workspace: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CloseParams {
    pub(crate) path: PathBuf,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Health {
    Healthy,
    Unhealthy,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MountInfo {
    pub(crate) id: Uuid,
    pub(crate) repo: String,
    pub(crate) path: PathBuf,
    pub(crate) workspace: PathBuf,
    pub(crate) health: Health,
    pub(crate) reason: Option<String>,
    pub(crate) last_sync: Option<String>,
    /// "passthrough" or "userspace": how file data flows (absent when not mounted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) io_mode: Option<String>,
    /// Repo paths this mount is behind on because a user holds them open for writing.
    #[serde(default)]
    pub(crate) held: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ListResult {
    pub(crate) mounts: Vec<MountInfo>,
}

//! `open`, `close`, `only`, `list_mounts`.

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
    /// Only these repo folders (`--only`); None for everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) only: Option<Vec<String>>,
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

/// `only`: change what a mount shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OnlyParams {
    /// The mount's path.
    pub(crate) path: PathBuf,
    /// The repo folders it is to show; None (`--all`) for everything.
    #[serde(default)]
    pub(crate) only: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OnlyResult {
    pub(crate) path: PathBuf,
    /// What it shows now, normalized; None for everything.
    pub(crate) only: Option<Vec<String>>,
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
    /// The repo folders it shows (`--only`, `jjfs only`); None (null) for everything.
    #[serde(default)]
    pub(crate) only: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ListResult {
    pub(crate) mounts: Vec<MountInfo>,
}

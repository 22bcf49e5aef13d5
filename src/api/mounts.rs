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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CloseResult {
    /// The mount was paused: its edits were recorded before it went.
    pub(crate) was_paused: bool,
}

/// `pause` / `resume`: one mount (`path`) or every mount of a repo and its remote (`repo`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PauseParams {
    #[serde(default)]
    pub(crate) path: Option<PathBuf>,
    #[serde(default)]
    pub(crate) repo: Option<String>,
    /// True to pause, false to resume.
    pub(crate) paused: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PauseResult {
    /// The repo of the mount, or the repo paused.
    pub(crate) repo: String,
    /// The mounts whose syncing stopped or started.
    pub(crate) changed: Vec<PathBuf>,
    /// It was already so: nothing changed.
    pub(crate) already: bool,
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
    /// Not synced now: `jjfs pause` of the mount or of its repo.
    #[serde(default)]
    pub(crate) paused: bool,
    /// Changed paths not recorded yet (a paused mount's wait for its resume).
    #[serde(default)]
    pub(crate) pending: usize,
    /// The repo folders it shows (`--only`, `jjfs only`); None (null) for everything.
    #[serde(default)]
    pub(crate) only: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ListResult {
    pub(crate) mounts: Vec<MountInfo>,
}

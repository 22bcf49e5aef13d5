//! `open`, `close`, `list_mounts`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenParams {
    pub repo: String,
    /// Absolute path of the mount point.
    pub path: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenResult {
    pub mount_id: Uuid,
    pub mount_path: PathBuf,
    pub workspace: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CloseParams {
    pub path: PathBuf,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Healthy,
    Unhealthy,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MountInfo {
    pub id: Uuid,
    pub repo: String,
    pub path: PathBuf,
    pub workspace: PathBuf,
    pub health: Health,
    pub reason: Option<String>,
    pub last_sync: Option<String>,
    /// "passthrough" or "userspace": how file data flows (absent when not mounted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_mode: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListResult {
    pub mounts: Vec<MountInfo>,
}

//! `version`, `status`, `sync`: the daemon and what it serves.

use serde::{Deserialize, Serialize};

use super::MountInfo;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionResult {
    pub version: String,
    pub pid: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StatusParams {
    #[serde(default)]
    pub verbose: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaemonInfo {
    pub pid: u32,
    pub version: String,
    /// "service" or "direct".
    pub mode: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RemoteState {
    None,
    Ok,
    Delayed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepoStatus {
    pub name: String,
    pub trunk: String,
    pub remote: Option<String>,
    pub remote_state: RemoteState,
    pub last_push: Option<String>,
    pub last_fetch: Option<String>,
    pub last_error: Option<String>,
    pub next_retry: Option<String>,
    pub conflicts: Vec<String>,
    pub skipped: Vec<Skipped>,
    #[serde(default)]
    pub last_sync: Option<String>,
    /// Number of commits on trunk.
    #[serde(default)]
    pub history_commits: Option<u64>,
    /// Bytes used by the repo's store (objects and operations).
    #[serde(default)]
    pub history_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusResult {
    pub daemon: DaemonInfo,
    pub repos: Vec<RepoStatus>,
    pub mounts: Vec<MountInfo>,
    /// Recent sync activity, newest last (only with `verbose`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SyncParams {
    /// One repo, or every repo when None.
    #[serde(default)]
    pub repo: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncResult {
    pub repos: Vec<String>,
    /// Remote failures: the barrier still holds locally.
    pub warnings: Vec<String>,
}

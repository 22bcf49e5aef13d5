//! `version`, `status`, `sync`: the daemon and what it serves.

use serde::{Deserialize, Serialize};

use super::MountInfo;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct VersionResult {
    pub(crate) version: String,
    pub(crate) pid: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct StatusParams {
    #[serde(default)]
    pub(crate) verbose: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DaemonInfo {
    pub(crate) pid: u32,
    pub(crate) version: String,
    /// "service" or "direct".
    pub(crate) mode: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RemoteState {
    None,
    Ok,
    Delayed,
}

/// One remote of a repo as `status` and `remote show` give it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct RemoteInfo {
    pub(crate) name: String,
    pub(crate) url: String,
    /// "ok" or "delayed".
    pub(crate) state: RemoteState,
    pub(crate) last_push: Option<String>,
    pub(crate) last_fetch: Option<String>,
    pub(crate) last_error: Option<String>,
    pub(crate) next_retry: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Skipped {
    pub(crate) path: String,
    pub(crate) reason: String,
    /// The mount where it is.
    #[serde(default)]
    pub(crate) mount: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RepoStatus {
    pub(crate) name: String,
    pub(crate) trunk: String,
    /// This and the next five fields describe `origin`, else the first remote (`remotes`
    /// has each).
    pub(crate) remote: Option<String>,
    pub(crate) remote_state: RemoteState,
    pub(crate) last_push: Option<String>,
    pub(crate) last_fetch: Option<String>,
    pub(crate) last_error: Option<String>,
    pub(crate) next_retry: Option<String>,
    pub(crate) conflicts: Vec<String>,
    pub(crate) skipped: Vec<Skipped>,
    #[serde(default)]
    pub(crate) remotes: Vec<RemoteInfo>,
    #[serde(default)]
    pub(crate) last_sync: Option<String>,
    /// Number of commits on trunk.
    #[serde(default)]
    pub(crate) history_commits: Option<u64>,
    /// Bytes used by the repo's store (objects and operations).
    #[serde(default)]
    pub(crate) history_bytes: Option<u64>,
    /// `jjfs pause --repo`: no mount syncs, nor the remote.
    #[serde(default)]
    pub(crate) paused: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StatusResult {
    pub(crate) daemon: DaemonInfo,
    pub(crate) repos: Vec<RepoStatus>,
    pub(crate) mounts: Vec<MountInfo>,
    /// Recent sync activity, newest last (only with `verbose`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) recent: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct SyncParams {
    /// One repo, or every repo when None.
    #[serde(default)]
    pub(crate) repo: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SyncResult {
    pub(crate) repos: Vec<String>,
    /// Remote failures: the barrier still holds locally.
    pub(crate) warnings: Vec<String>,
}

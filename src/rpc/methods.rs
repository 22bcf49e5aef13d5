//! Typed parameters and results of each daemon method. The JSON shapes of `list_mounts` and
//! `status` are part of the user-facing contract: add fields, never rename or remove them.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const VERSION: &str = "version";
pub const INIT: &str = "init";
pub const OPEN: &str = "open";
pub const CLOSE: &str = "close";
pub const LIST_MOUNTS: &str = "list_mounts";
pub const STATUS: &str = "status";
pub const SYNC: &str = "sync";
pub const REMOTE_ADD: &str = "remote_add";
pub const REMOTE_REMOVE: &str = "remote_remove";
pub const REMOTE_SHOW: &str = "remote_show";
pub const CONFIG: &str = "config";
pub const LOG: &str = "log";
pub const CAT: &str = "cat";
pub const DIFF: &str = "diff";
pub const RESTORE: &str = "restore";
pub const UNDO: &str = "undo";
pub const SHUTDOWN: &str = "shutdown";
/// Notification a long call may send on its connection before its result.
pub const PROGRESS: &str = "progress";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionResult {
    pub version: String,
    pub pid: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Progress {
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitParams {
    pub name: String,
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
    /// Repo paths this mount is behind on because a user holds them open for writing.
    #[serde(default)]
    pub held: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListResult {
    pub mounts: Vec<MountInfo>,
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
    #[serde(default)]
    pub repo: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncResult {
    pub repos: Vec<String>,
    /// Remote failures: the barrier still holds locally.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteParams {
    pub repo: String,
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteShowResult {
    pub repo: String,
    pub remote: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConfigParams {
    #[serde(default)]
    pub repo: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HistoryParams {
    #[serde(default)]
    pub repo: Option<String>,
    /// Paths relative to the repo root (already resolved by the client).
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub at: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub count: Option<usize>,
    /// The current directory of the client, to resolve PATH inside a mount.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
}

/// A point in a repo's history: the state right after one trunk change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Point {
    /// The commit id (hex), shortened.
    pub commit: String,
    /// The change id (jj's reverse hex), shortened; stays the same when a commit is rebased.
    pub change: String,
    /// When the change was synced (RFC 3339, UTC).
    pub time: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    Added,
    Modified,
    Deleted,
    Renamed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileChange {
    /// Repo path, `/`-separated.
    pub path: String,
    pub status: FileStatus,
    /// The old path of a renamed file.
    #[serde(default)]
    pub from: Option<String>,
    /// The file is conflicted after this change.
    #[serde(default)]
    pub conflict: bool,
}

/// One change on trunk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogEntry {
    #[serde(flatten)]
    pub point: Point,
    /// The mount it was synced from (absolute path), when it came from one.
    pub mount: Option<String>,
    /// That mount's id.
    pub mount_id: Option<String>,
    /// The first line of its description.
    pub description: String,
    pub files: Vec<FileChange>,
    /// It left a conflict in one of its files.
    pub conflict: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogResult {
    pub repo: String,
    /// The repo path the log is about ("" for the whole repo).
    pub path: String,
    /// Newest first.
    pub entries: Vec<LogEntry>,
    /// More entries exist beyond `limit`.
    pub more: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatResult {
    pub repo: String,
    pub path: String,
    pub at: Point,
    /// The content when it is UTF-8 text.
    #[serde(default)]
    pub text: Option<String>,
    /// The content, base64, when it is not.
    #[serde(default)]
    pub base64: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiffResult {
    pub repo: String,
    pub path: String,
    pub from: Point,
    pub to: Point,
    /// A unified diff, as `git diff` prints it; empty when nothing changed.
    pub diff: String,
}

/// What `restore` and `undo` added to trunk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangeResult {
    pub repo: String,
    /// The new change (None when there was nothing to change).
    pub change: Option<Point>,
    /// restore: the state the paths were brought back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Point>,
    /// restore: the repo paths restored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// undo: the changes reverted, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reverted: Vec<LogEntry>,
    /// The files the new change touched.
    pub files: Vec<FileChange>,
}

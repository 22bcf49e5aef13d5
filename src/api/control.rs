//! `conflicts` and `events`: what the daemon tells about conflicts and about what it does.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The notification that carries one event of an `events` call.
pub(crate) const EVENT: &str = "event";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ConflictsParams {
    /// One repo, or every repo when None.
    #[serde(default)]
    pub(crate) repo: Option<String>,
}

/// One conflicted file, as `conflicts --json` prints it (the contract's shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ConflictInfo {
    pub(crate) repo: String,
    /// Relative to the repo root, `/`-separated.
    pub(crate) path: String,
    /// RFC 3339: when it was first seen conflicted.
    pub(crate) since: String,
    /// Where the conflicting versions came from: mount paths, or `remote`.
    pub(crate) sides: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ConflictsResult {
    pub(crate) conflicts: Vec<ConflictInfo>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct EventsParams {
    /// Only this repo's events.
    #[serde(default)]
    pub(crate) repo: Option<String>,
    /// First replay the retained events after this sequence number.
    #[serde(default)]
    pub(crate) after: Option<u64>,
    /// End after this many events (`missed` notes do not count).
    #[serde(default)]
    pub(crate) count: Option<u64>,
}

/// One event, as `events --json` prints it (the contract's shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EventRecord {
    pub(crate) seq: u64,
    pub(crate) time: String,
    pub(crate) repo: String,
    pub(crate) kind: String,
    pub(crate) mount: Option<PathBuf>,
    pub(crate) paths: Vec<String>,
    pub(crate) detail: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EventsResult {
    /// The last sequence number sent.
    pub(crate) last_seq: u64,
}

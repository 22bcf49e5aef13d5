//! What a repo's sync actor publishes for `jjfs status` and `jjfs list`, readable at any time
//! without waiting for the actor (which may be in the middle of a sync).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct MountStatus {
    pub id: Uuid,
    /// None when healthy, else what is wrong and how to fix it.
    pub problem: Option<String>,
    pub last_sync: Option<DateTime<Utc>>,
    pub io_mode: Option<&'static str>,
    /// Repo paths this mount is behind on because a user holds them open for writing.
    pub held: Vec<String>,
    /// Paths changed in it that no step has recorded yet (a paused mount's keep growing).
    pub pending: usize,
}

/// A path that is not synced: where it is and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedPath {
    /// Relative to the repo root, `/`-separated.
    pub path: String,
    pub reason: String,
    /// The mount where it is.
    pub mount: Option<PathBuf>,
}

/// One remote's state, published by its worker.
#[derive(Debug, Clone, Default)]
pub struct RemoteStatus {
    /// Which worker owns the entry: a newer one of the same name wins over one still
    /// stopping.
    pub generation: u64,
    pub url: Option<String>,
    pub last_push: Option<DateTime<Utc>>,
    pub last_fetch: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub next_retry: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default)]
pub struct RepoStatus {
    pub mounts: Vec<MountStatus>,
    pub conflicts: Vec<String>,
    /// Each conflicted path: since when, and where its sides came from.
    pub conflict_details: Vec<(String, super::conflicts::ConflictRecord)>,
    /// Paths a snapshot could not record, with why and in which mount.
    pub skipped: Vec<SkippedPath>,
    pub last_sync: Option<DateTime<Utc>>,
    /// Each remote's state, by name.
    pub remotes: std::collections::BTreeMap<String, RemoteStatus>,
    /// Recent sync activity, oldest first.
    pub recent: Vec<String>,
    pub history_commits: Option<u64>,
    /// What the repo's store takes on disk, measured when it is checked for packing.
    pub history_bytes: Option<u64>,
}

/// Shared between the actor (writer) and the daemon's handlers (readers).
pub type SharedStatus = Arc<Mutex<RepoStatus>>;

/// Locks a shared status, also after a panic elsewhere: it is plain data, which a panic
/// cannot leave half-updated in a way that matters.
pub fn lock(status: &SharedStatus) -> MutexGuard<'_, RepoStatus> {
    status.lock().unwrap_or_else(|e| e.into_inner())
}

/// How many recent activity lines are kept.
pub const RECENT: usize = 50;

impl RepoStatus {
    pub fn record(&mut self, line: String) {
        let stamp = Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
        self.recent.push(format!("{stamp} {line}"));
        if self.recent.len() > RECENT {
            let excess = self.recent.len() - RECENT;
            self.recent.drain(..excess);
        }
    }
}

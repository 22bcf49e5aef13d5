//! One sync step of a repo, in three stages:
//! 1. **prepare** (`prepare.rs`): lock every workspace (jj's working-copy lock) and snapshot
//!    the ones that changed, looking only at the paths the engine names;
//! 2. **integrate** (`integrate.rs`): one transaction records each workspace's changes as a
//!    commit on trunk, keeps both sides of file/folder conflicts (`sides.rs`), and moves
//!    every working-copy commit onto the new trunk;
//! 3. **write** (`write.rs`): each workspace gets the new files, in parallel, through its
//!    `Files` (its mount, or a plain directory).
//!
//! The rules that keep users' writes safe:
//! - Every workspace is locked from its snapshot to its check-out, and each is snapshotted
//!   before anything is written into it.
//! - A workspace's changes are what its files hold relative to its working-copy commit's
//!   parent, applied onto trunk as a three-way merge, so concurrent edits merge the jj way.
//! - A workspace whose working-copy commit someone else rewrote (stale) keeps its edits:
//!   they are merged onto the new commit before it is checked out.
//! - Paths a user holds open for writing (or inside a nested repository) are not replaced:
//!   the workspace's new commit keeps them as they are on disk, on top of a "held" commit.
//! - Commits made by the jj CLI in a workspace are rebased onto trunk with it.

mod conflicts;
mod integrate;
mod prepare;
mod sides;
mod write;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;

use jj_lib::backend::Signature;
use uuid::Uuid;

use super::RepoError;
use super::repository::Repository;
use super::working_copy::{Scan, StatePaths};
use crate::files::{Files, Root, Stat};

pub use sides::{CONFLICT_SUFFIX, is_conflict_copy};
pub(crate) use write::PendingModes;

/// What to do with one workspace in a sync step.
#[derive(Clone)]
pub struct WorkspacePlan {
    pub id: Uuid,
    /// The mount path, named in commit messages.
    pub label: String,
    /// Its jj state.
    pub state: StatePaths,
    /// Where snapshots read its files (the backing directory of a mount).
    pub read_root: Arc<Root>,
    /// Where check-outs write them (through the mount, or the plain directory).
    pub files: Arc<dyn Files>,
    /// What to snapshot; None when nothing is known to have changed.
    pub scan: Option<Scan>,
    /// Paths kept as they are on disk (open for writing, inside a nested repository).
    pub held: Vec<PathBuf>,
    /// The part of the repo its files are to hold (jj's sparse patterns, as repo paths; the
    /// root `""` for all), when it may have changed: set after its check-out (see
    /// `working_copy::sparse`).
    pub sparse: Option<Vec<String>>,
}

/// What happened to one workspace.
#[derive(Debug, Default)]
pub struct WorkspaceSync {
    /// Its changes became a commit on trunk.
    pub committed: bool,
    /// Paths the snapshot could not record, with why.
    pub skipped: Vec<(String, String)>,
    /// Paths left as they are on disk (held).
    pub held: Vec<String>,
    /// Paths the snapshot read, as they looked (watcher events still finding them so are
    /// echoes of the reading).
    pub read: Vec<(PathBuf, Stat)>,
    /// Paths the check-out wrote, moved or removed, as they looked right after.
    pub written: Vec<(PathBuf, Option<Stat>)>,
    /// Repo paths the snapshot found changed (read or removed).
    pub changed: Vec<String>,
    /// Files entered its patterns: the next step, a full snapshot, brings them.
    pub widened: bool,
}

/// A workspace whose step failed; `touched` are paths a check-out changed before it stopped
/// (to be snapshotted again).
#[derive(Debug)]
pub struct WorkspaceFailed {
    pub error: RepoError,
    pub touched: Vec<PathBuf>,
}

impl From<RepoError> for WorkspaceFailed {
    fn from(error: RepoError) -> Self {
        Self {
            error,
            touched: Vec::new(),
        }
    }
}

pub type WorkspaceResult = Result<WorkspaceSync, WorkspaceFailed>;

#[derive(Debug, Default)]
pub struct StepReport {
    pub workspaces: Vec<(Uuid, WorkspaceResult)>,
    /// Commits added to trunk.
    pub commits: usize,
    /// Paths whose conflicting sides were both kept by moving one aside (`from`, `to`).
    pub kept_both: Vec<(String, String)>,
}

impl Repository {
    /// Runs one sync step over `plans` (every reachable workspace of the repo).
    pub fn step(&mut self, mut plans: Vec<WorkspacePlan>, now: Signature) -> StepReport {
        let mut report = StepReport::default();
        let repo = match self.head() {
            Ok(repo) => repo,
            Err(err) => {
                report.workspaces = plans
                    .into_iter()
                    .map(|p| (p.id, Err(RepoError::Jj(err.to_string()).into())))
                    .collect();
                return report;
            }
        };
        plans.sort_by_key(|p| p.id);
        let started = std::time::Instant::now();
        let mut prepared = Vec::new();
        for plan in plans {
            let id = plan.id;
            match self.prepare(&repo, plan) {
                Ok(p) => prepared.push(p),
                Err(err) => report.workspaces.push((id, Err(err.into()))),
            }
        }
        self.record_modes(&prepared);
        // A workspace whose files match its commit goes first: when the jj CLI rewrote a
        // working-copy commit that several workspaces share, the change is credited to the
        // workspace it was made in.
        prepared.sort_by_key(|p| (p.stale, p.plan.id));
        let prepared_at = started.elapsed();
        let integrated = self.integrate(&repo, &mut prepared, &now);
        let integrated_at = started.elapsed();
        let integrated = match integrated {
            Ok(result) => result,
            Err(err) => {
                for p in prepared {
                    report
                        .workspaces
                        .push((p.plan.id, Err(RepoError::Jj(err.to_string()).into())));
                }
                return report;
            }
        };
        report.commits = integrated.commits;
        report.kept_both = integrated.kept_both;
        for (from, to) in &report.kept_both {
            if let Some(mode) = self.modes.get(from) {
                self.modes.record(to, mode);
            }
        }
        // A mount's deletion forgets a mode only if the path is gone from trunk too (a
        // merge may keep it).
        self.forget_modes(&prepared, &integrated.tip.tree());
        self.set_current(integrated.repo.clone());
        let results = self.write_all(prepared, integrated.targets, &integrated.repo);
        if let Err(err) = self.modes.save() {
            tracing::warn!(repo = %self.name, "cannot save file modes: {err}");
        }
        tracing::debug!(
            repo = %self.name,
            "sync step: snapshots {:?}, transaction {:?}, check-outs {:?}",
            prepared_at,
            integrated_at - prepared_at,
            started.elapsed() - integrated_at
        );
        report.workspaces.extend(results);
        report
    }
}

//! The first stage of a step: each workspace locked, snapshotted if it changed, and compared
//! with its working-copy commit (a commit someone else rewrote makes it stale: its edits on
//! disk are merged onto the new commit).

use std::sync::Arc;

use jj_lib::commit::Commit;
use jj_lib::merge::Merge;
use jj_lib::merged_tree::MergedTree;
use jj_lib::repo::{ReadonlyRepo, Repo as _};

use super::{WorkspacePlan, WorkspaceSync};
use crate::repo::repository::{Repository, workspace_name};
use crate::repo::working_copy::LockedWorkingCopy;
use crate::repo::{RepoError, block_on};

/// A locked workspace and what its snapshot found.
pub(super) struct Prepared {
    pub(super) plan: WorkspacePlan,
    pub(super) locked: LockedWorkingCopy,
    /// Its working-copy commit in the repo's view.
    pub(super) wc: Commit,
    /// Its files' tree, with edits made while it was stale merged onto `wc`.
    pub(super) content: MergedTree,
    /// Someone else rewrote its working-copy commit since its files were written.
    pub(super) stale: bool,
    /// Permission bits of the files the snapshot read.
    pub(super) modes: Vec<(String, u32)>,
    /// Tracked paths the snapshot found gone.
    pub(super) removed: Vec<String>,
    pub(super) sync: WorkspaceSync,
}

impl Repository {
    pub(super) fn prepare(
        &mut self,
        repo: &Arc<ReadonlyRepo>,
        plan: WorkspacePlan,
    ) -> Result<Prepared, RepoError> {
        let name = workspace_name(&plan.id);
        let wc_id = repo
            .view()
            .get_wc_commit_id(&name)
            .ok_or_else(|| {
                RepoError::Jj(format!(
                    "workspace {} is missing from the repo (was it forgotten with jj?)",
                    name.as_str()
                ))
            })?
            .clone();
        let wc = repo.store().get_commit(&wc_id).map_err(RepoError::jj)?;
        let store = self.loader.store().clone();
        let cached = self.states.remove(&plan.id);
        let mut locked = LockedWorkingCopy::lock(&store, &plan.state, cached)?;
        let base = locked.tree().clone();
        let mut sync = WorkspaceSync::default();
        let (mut modes, mut removed) = (Vec::new(), Vec::new());
        if let Some(scan) = &plan.scan {
            let report = locked.snapshot(&plan.read_root, &store, scan)?;
            sync.skipped = report.skipped;
            sync.read = report.read;
            modes = report.modes;
            removed = report.removed;
        }
        let disk = locked.tree().clone();
        let stale = wc.tree().tree_ids_and_labels() != base.tree_ids_and_labels();
        let content = if !stale {
            disk
        } else if disk.tree_ids_and_labels() == base.tree_ids_and_labels() {
            wc.tree()
        } else {
            // Stale: someone rewrote this workspace's commit since its files were written.
            // Keep the edits made on disk since then by merging them onto the new commit.
            merge3(
                &wc.tree(),
                &base,
                &disk,
                "working-copy commit",
                "files on disk",
            )?
        };
        Ok(Prepared {
            plan,
            locked,
            wc,
            content,
            stale,
            modes,
            removed,
            sync,
        })
    }

    /// Takes the modes the snapshots saw into the repo's table; returns the files whose mode
    /// changed (a chmod with no other change), with the workspace it changed in, so that it
    /// reaches the others.
    pub(super) fn record_modes(&mut self, prepared: &[Prepared]) -> Vec<(String, u32, uuid::Uuid)> {
        let mut changed = Vec::new();
        for p in prepared {
            for path in &p.removed {
                self.modes.forget(path);
            }
            for (path, mode) in &p.modes {
                if self.modes.record(path, *mode) {
                    changed.push((
                        path.clone(),
                        *mode & crate::modes::TRAVELLING_BITS,
                        p.plan.id,
                    ));
                }
            }
        }
        changed
    }
}

/// `base → side` applied onto `onto`, as jj merges when it rebases.
pub(super) fn merge3(
    onto: &MergedTree,
    base: &MergedTree,
    side: &MergedTree,
    onto_label: &str,
    side_label: &str,
) -> Result<MergedTree, RepoError> {
    block_on(MergedTree::merge(Merge::from_vec(vec![
        (onto.clone(), onto_label.to_owned()),
        (base.clone(), "base".to_owned()),
        (side.clone(), side_label.to_owned()),
    ])))
    .map_err(RepoError::jj)
}

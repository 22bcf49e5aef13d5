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
    pub(super) modes: Vec<(String, u32, bool)>,
    /// Permission bits of the files a rescan found unchanged (and their tree's exec bit).
    pub(super) clean_modes: Vec<(String, u32, bool)>,
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
        let (mut modes, mut removed, mut clean_modes) = (Vec::new(), Vec::new(), Vec::new());
        if let Some(scan) = &plan.scan {
            let report =
                locked.snapshot(&plan.read_root, &store, scan, self.conflict_marker_style)?;
            sync.skipped = report.skipped;
            sync.read = report.read;
            sync.changed = sync
                .read
                .iter()
                .map(|(p, _)| p.to_string_lossy().into_owned())
                .chain(report.removed.iter().cloned())
                .collect();
            modes = report.modes;
            removed = report.removed;
            clean_modes = report.clean_modes;
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
            clean_modes,
            removed,
            sync,
        })
    }

    /// Takes the modes the snapshots saw into the repo's table and queues each mode change
    /// for the workspaces that do not have it yet (the final mode is the last snapshot's,
    /// when two mounts changed it in the same step). A queued change stays pending until a
    /// check-out of that workspace applies it.
    pub(super) fn record_modes(&mut self, prepared: &[Prepared]) {
        let mut changed: std::collections::BTreeMap<String, Vec<(uuid::Uuid, u32)>> =
            Default::default();
        for p in prepared {
            for (path, mode, _) in &p.modes {
                let mode = *mode & crate::modes::TRAVELLING_BITS;
                let was_changed = self.modes.record(path, mode);
                if was_changed || changed.contains_key(path) {
                    changed
                        .entry(path.clone())
                        .or_default()
                        .push((p.plan.id, mode));
                }
            }
        }
        for (path, seen) in &changed {
            let Some(mode) = self.modes.get(path) else {
                continue;
            };
            for p in prepared {
                let pending = self.pending_modes.entry(p.plan.id).or_default();
                if seen.iter().any(|(id, m)| *id == p.plan.id && *m == mode) {
                    pending.remove(path);
                } else {
                    pending.insert(path.clone(), mode);
                }
            }
        }
        // After the above, so that it is not taken for "this workspace has it": a file read
        // whose executable bit the tree does not share (jj keeps a conflict's own bits)
        // gets the tree's, in its own mount too.
        for p in prepared {
            for (path, mode, executable) in &p.modes {
                let Some(want) = self.modes.get(path) else {
                    continue;
                };
                let want = crate::modes::with_executable(want, *executable);
                if want != mode & crate::modes::TRAVELLING_BITS {
                    self.pending_modes
                        .entry(p.plan.id)
                        .or_default()
                        .insert(path.clone(), want);
                }
            }
        }
        // A file a rescan found unchanged but with a mode other than the repo's missed an
        // update: it gets the repo's mode.
        for p in prepared {
            for (path, mode, executable) in &p.clean_modes {
                let Some(want) = self.modes.get(path) else {
                    // Not known yet: the first workspace (in a fixed order) tells.
                    self.modes.record(path, *mode);
                    continue;
                };
                let want = crate::modes::with_executable(want, *executable);
                if want != mode & crate::modes::TRAVELLING_BITS && !changed.contains_key(path) {
                    self.pending_modes
                        .entry(p.plan.id)
                        .or_default()
                        .insert(path.clone(), want);
                }
            }
        }
    }
}

impl Repository {
    /// Forgets the modes of paths the snapshots found removed that `tree` (a new working
    /// copy on trunk) does not hold either.
    pub(super) fn forget_modes(&mut self, prepared: &[Prepared], tree: &MergedTree) {
        for path in prepared.iter().flat_map(|p| &p.removed) {
            let Ok(repo_path) = jj_lib::repo_path::RepoPathBuf::from_internal_string(path.as_str())
            else {
                continue;
            };
            if block_on(tree.path_value(&repo_path)).is_ok_and(|v| v.is_absent()) {
                self.modes.forget(path);
            }
        }
    }
}

/// `base → side` applied onto `onto`, as jj merges when it rebases, with the conflicts
/// kept small (see `conflicts`).
pub(super) fn merge3(
    onto: &MergedTree,
    base: &MergedTree,
    side: &MergedTree,
    onto_label: &str,
    side_label: &str,
) -> Result<MergedTree, RepoError> {
    let (onto, base) = super::conflicts::settle_overwritten(onto, base, side)?;
    let merged = block_on(MergedTree::merge(Merge::from_vec(vec![
        (onto, onto_label.to_owned()),
        (base, "base".to_owned()),
        (side.clone(), side_label.to_owned()),
    ])))
    .map_err(RepoError::jj)?;
    super::conflicts::compact(merged)
}

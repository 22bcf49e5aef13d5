//! The last stage of a step: each workspace's new working-copy commit written into its files.
//! Workspaces are independent (separate locks, states and mounts), so they are written in
//! parallel, on a few threads (check-outs wait on FUSE round trips and fsyncs more than on
//! the CPU).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use jj_lib::commit::Commit;
use jj_lib::repo::ReadonlyRepo;
use jj_lib::repo_path::RepoPathBuf;
use uuid::Uuid;

use super::prepare::Prepared;
use super::{WorkspaceFailed, WorkspaceResult};
use crate::repo::repository::Repository;
use crate::repo::working_copy::{CheckoutContext, WcState};

/// A file's mode changed in one workspace (and nothing else): set it in the others.
pub(super) type ModeChange = (String, u32, Uuid);

impl Repository {
    pub(super) fn write_all(
        &mut self,
        prepared: Vec<Prepared>,
        targets: Vec<Commit>,
        repo: &Arc<ReadonlyRepo>,
        mode_changes: &[ModeChange],
    ) -> Vec<(Uuid, WorkspaceResult)> {
        let op_id = repo.op_id().clone();
        let workers = std::thread::available_parallelism()
            .map_or(2, |n| n.get() * 2)
            .clamp(2, 8);
        let jobs: Vec<(Prepared, Commit)> = prepared.into_iter().zip(targets).collect();
        let queue = Mutex::new(jobs);
        let results = Mutex::new(Vec::new());
        let this: &Repository = self;
        std::thread::scope(|scope| {
            for _ in 0..workers.min(queue.lock().map_or(1, |q| q.len().max(1))) {
                scope.spawn(|| {
                    loop {
                        let job = queue.lock().unwrap_or_else(|e| e.into_inner()).pop();
                        let Some((p, target)) = job else { break };
                        let id = p.plan.id;
                        let (result, state) = this.write_one(p, &target, &op_id, mode_changes);
                        results
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((id, result, state));
                    }
                });
            }
        });
        let mut out = Vec::new();
        for (id, result, state) in results.into_inner().unwrap_or_else(|e| e.into_inner()) {
            if let Some(state) = state {
                self.states.insert(id, state);
            }
            out.push((id, result));
        }
        out
    }

    /// Checks `target` out into one workspace. Returns the result and the state to keep
    /// (None after a failure: it is read again from disk next time).
    fn write_one(
        &self,
        p: Prepared,
        target: &Commit,
        op_id: &jj_lib::op_store::OperationId,
        mode_changes: &[ModeChange],
    ) -> (WorkspaceResult, Option<WcState>) {
        let Prepared {
            plan,
            mut locked,
            mut sync,
            ..
        } = p;
        let modes = self.modes_for(plan.id, mode_changes, &locked.state);
        let cx = CheckoutContext {
            store: self.loader.store(),
            files: plan.files.as_ref(),
            state_root: &plan.read_root,
            modes: &self.modes,
            default_mode: self.default_mode,
            marker_style: self.conflict_marker_style,
            mode_updates: &modes,
        };
        match locked.check_out(&target.tree(), &cx) {
            Ok(report) => sync.written = report.touched,
            Err(failed) => {
                return (
                    Err(WorkspaceFailed {
                        error: failed.error,
                        touched: failed.touched,
                    }),
                    None,
                );
            }
        }
        match locked.finish(op_id) {
            Ok(state) => (Ok(sync), Some(state)),
            Err(error) => (Err(error.into()), None),
        }
    }

    /// The mode changes another workspace made to files this one has.
    fn modes_for(&self, id: Uuid, changes: &[ModeChange], state: &WcState) -> Vec<(PathBuf, u32)> {
        changes
            .iter()
            .filter(|(_, _, from)| *from != id)
            .filter_map(|(path, mode, _)| {
                let repo_path = RepoPathBuf::from_internal_string(path.as_str()).ok()?;
                let entry = state.entry(&repo_path)?;
                let executable = matches!(
                    entry.kind,
                    crate::repo::working_copy::state::EntryKind::File { executable: true }
                );
                Some((
                    PathBuf::from(path),
                    crate::modes::with_executable(*mode, executable),
                ))
            })
            .collect()
    }
}

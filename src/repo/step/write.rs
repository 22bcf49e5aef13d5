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

/// Mode changes a workspace has yet to get (until a check-out applies them).
pub(crate) type PendingModes = std::collections::BTreeMap<String, u32>;

impl Repository {
    pub(super) fn write_all(
        &mut self,
        prepared: Vec<Prepared>,
        targets: Vec<Commit>,
        repo: &Arc<ReadonlyRepo>,
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
                        let pending = this.pending_modes.get(&id).cloned().unwrap_or_default();
                        let (result, state) = this.write_one(p, &target, &op_id, &pending);
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
            if let (Ok(sync), Some(pending)) = (&result, self.pending_modes.get_mut(&id)) {
                // What is still held waits; the rest was set (or written with its mode).
                pending.retain(|path, _| sync.held.iter().any(|h| h == path));
            }
            out.push((id, result));
        }
        out
    }

    /// Checks `target` out into one workspace. Returns the result and the state to keep
    /// (None when it could not be saved: it is read again from disk next time).
    fn write_one(
        &self,
        p: Prepared,
        target: &Commit,
        op_id: &jj_lib::op_store::OperationId,
        pending_modes: &PendingModes,
    ) -> (WorkspaceResult, Option<WcState>) {
        let Prepared {
            plan,
            mut locked,
            mut sync,
            ..
        } = p;
        let mut modes = modes_for(pending_modes, &locked.state);
        // A file a user holds open keeps what it has, its mode too.
        modes.retain(|(path, _)| !plan.held.contains(path));
        let cx = CheckoutContext {
            store: self.loader.store(),
            files: plan.files.as_ref(),
            state_root: &plan.read_root,
            modes: &self.modes,
            default_mode: self.default_mode,
            marker_style: self.conflict_marker_style,
            mode_updates: &modes,
            held: &plan.held,
        };
        let checked_out = locked.check_out(&target.tree(), &cx).and_then(|report| {
            sync.written = report.touched;
            set_sparse(&mut locked, plan.sparse.as_deref(), &cx, &mut sync)
        });
        match checked_out {
            Ok(()) if sync.widened => {
                // The state's tree lacks the entering files until the next step brings
                // them: saved without recording the operation (see `working_copy::sparse`).
                return match locked.keep() {
                    Ok(state) => (Ok(sync), Some(state)),
                    Err(error) => (Err(error.into()), None),
                };
            }
            Ok(()) => {}
            Err(failed) => {
                let state = match locked.keep() {
                    Ok(state) => Some(state),
                    Err(err) => {
                        tracing::warn!("cannot save a workspace's state: {err}");
                        None
                    }
                };
                let failed = WorkspaceFailed {
                    error: failed.error,
                    touched: failed.touched,
                };
                return (Err(failed), state);
            }
        }
        match locked.finish(op_id) {
            Ok(state) => (Ok(sync), Some(state)),
            Err(error) => (Err(error.into()), None),
        }
    }
}

/// Gives the workspace the patterns its plan wants, if they changed.
fn set_sparse(
    locked: &mut crate::repo::working_copy::LockedWorkingCopy,
    want: Option<&[String]>,
    cx: &CheckoutContext<'_>,
    sync: &mut super::WorkspaceSync,
) -> Result<(), crate::repo::working_copy::CheckoutFailed> {
    let Some(want) = want else {
        return Ok(());
    };
    let want = crate::repo::working_copy::sparse::patterns(want);
    let report = locked.set_sparse(&want, cx).map_err(|mut failed| {
        // What the check-out before it wrote is touched too.
        let written = sync.written.iter().map(|(path, _)| path.clone());
        failed.touched = written.chain(failed.touched).collect();
        failed
    })?;
    sync.written.extend(report.touched);
    sync.widened = report.entering;
    Ok(())
}

/// The pending mode changes of files this workspace has, with their executable bit.
fn modes_for(pending: &PendingModes, state: &WcState) -> Vec<(PathBuf, u32)> {
    pending
        .iter()
        .filter_map(|(path, mode)| {
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

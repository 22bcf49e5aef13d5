//! A workspace's working copy as jjfs drives it: its state (`state`), snapshots of the files
//! the engine names (`snapshot`) and check-outs written through the workspace's `Files`
//! (`checkout`), under jj's own working-copy lock and in jj's own on-disk format, so the jj
//! CLI can use the backing workspace too.
//!
//! jjfs does not use jj-lib's `LocalWorkingCopy` for this: it needs snapshots told exactly
//! which paths changed (O(changes), with same-size-same-mtime changes caught), check-outs
//! that write through a FUSE mount (so the mount's caches and watchers see them) or into a
//! plain directory without ever following a symlink, replacing files whole and never over a
//! user's newer edit, and the state kept in memory between steps.

pub mod checkout;
pub mod snapshot;
pub mod sparse;
pub mod state;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jj_lib::backend::TreeValue;
use jj_lib::lock::FileLock;
use jj_lib::merge::Merge;
use jj_lib::merged_tree::MergedTree;
use jj_lib::object_id::ObjectId as _;
use jj_lib::op_store::OperationId;
use jj_lib::ref_name::WorkspaceNameBuf;
use jj_lib::store::Store;
use prost::Message as _;

pub use checkout::{CheckoutContext, CheckoutFailed, CheckoutReport};
pub use snapshot::{Scan, SnapshotReport};
pub use state::WcState;

use super::RepoError;
use crate::files::Root;

/// A tree value in a canonical form: a conflict's sides (and bases) sorted, with pairs that
/// cancel out dropped. A conflict is a sum of sides less its bases, so their order carries
/// no meaning, but jj writes the sides into a file in that order: merges made in different
/// orders would show the same conflict as different text in different mounts.
pub fn canonical(value: &Merge<Option<TreeValue>>) -> Merge<Option<TreeValue>> {
    let value = value.clone().simplify();
    if value.is_resolved() {
        return value;
    }
    let key = |v: &&Option<TreeValue>| format!("{v:?}");
    let mut adds: Vec<&Option<TreeValue>> = value.adds().collect();
    let mut removes: Vec<&Option<TreeValue>> = value.removes().collect();
    adds.sort_by_key(key);
    removes.sort_by_key(key);
    Merge::from_removes_adds(removes.into_iter().cloned(), adds.into_iter().cloned())
}

/// Where one workspace keeps its jj state and jjfs's side table.
#[derive(Debug, Clone)]
pub struct StatePaths {
    /// `.jj/working_copy` of the workspace.
    pub dir: PathBuf,
    /// jjfs's inode/ctime table for it.
    pub side: PathBuf,
}

/// A workspace's working copy under jj's working-copy lock (the one the jj CLI takes).
pub struct LockedWorkingCopy {
    _lock: FileLock,
    pub state: WcState,
    paths: StatePaths,
    op_id: OperationId,
    name: WorkspaceNameBuf,
}

impl LockedWorkingCopy {
    /// Takes the lock and the state: `cached` when the file on disk is still the one it was
    /// read from or written to, else read again.
    pub fn lock(
        store: &Arc<Store>,
        paths: &StatePaths,
        cached: Option<WcState>,
    ) -> Result<Self, RepoError> {
        let lock = FileLock::lock(paths.dir.join("working_copy.lock")).map_err(RepoError::jj)?;
        let (op_id, name) = read_checkout(&paths.dir)?;
        let state = match cached {
            Some(state) if state.is_current() => state,
            _ => WcState::load(store, &paths.dir, &paths.side)?,
        };
        Ok(Self {
            _lock: lock,
            state,
            paths: paths.clone(),
            op_id,
            name,
        })
    }

    /// The tree jjfs believes is on disk.
    pub fn tree(&self) -> &MergedTree {
        &self.state.tree
    }

    pub fn operation(&self) -> &OperationId {
        &self.op_id
    }

    pub fn workspace_name(&self) -> &WorkspaceNameBuf {
        &self.name
    }

    /// Reads what `scan` names from the files beneath `root`.
    pub fn snapshot(
        &mut self,
        root: &Root,
        store: &Arc<Store>,
        scan: &Scan,
        style: jj_lib::conflicts::ConflictMarkerStyle,
    ) -> Result<SnapshotReport, RepoError> {
        snapshot::snapshot(&mut self.state, root, store, scan, style)
    }

    /// Writes `target` into the files; see `checkout::check_out`.
    pub fn check_out(
        &mut self,
        target: &MergedTree,
        cx: &CheckoutContext<'_>,
    ) -> Result<CheckoutReport, CheckoutFailed> {
        checkout::check_out(&mut self.state, target, cx)
    }

    /// Changes the part of the repo the files hold; see `sparse::set_sparse`.
    pub fn set_sparse(
        &mut self,
        want: &[jj_lib::repo_path::RepoPathBuf],
        cx: &CheckoutContext<'_>,
    ) -> Result<sparse::SparseReport, CheckoutFailed> {
        sparse::set_sparse(&mut self.state, want, cx)
    }

    /// Saves what changed and records that the files match operation `op_id`; returns the
    /// state to keep for the next step.
    pub fn finish(mut self, op_id: &OperationId) -> Result<WcState, RepoError> {
        if self.state.dirty {
            self.state.save()?;
            // The operation is recorded only with a new state: jj treats a working copy
            // whose tree matches its commit as fresh, whatever operation it names.
            if &self.op_id != op_id {
                write_checkout(&self.paths.dir, op_id, &self.name)?;
            }
        }
        Ok(self.state)
    }
}

impl LockedWorkingCopy {
    /// Saves what a check-out that stopped part way did, without recording an operation:
    /// the files match no commit, and the next step merges them (as stale).
    pub fn keep(mut self) -> Result<WcState, RepoError> {
        if self.state.dirty {
            self.state.save()?;
        }
        Ok(self.state)
    }
}

fn read_checkout(state_dir: &Path) -> Result<(OperationId, WorkspaceNameBuf), RepoError> {
    let path = state_dir.join("checkout");
    let bytes = std::fs::read(&path).map_err(RepoError::io(&path))?;
    let proto = jj_lib::protos::local_working_copy::Checkout::decode(&*bytes)
        .map_err(|e| RepoError::Jj(format!("{}: {e}", path.display())))?;
    Ok((
        OperationId::new(proto.operation_id),
        proto.workspace_name.into(),
    ))
}

fn write_checkout(
    state_dir: &Path,
    op_id: &OperationId,
    name: &WorkspaceNameBuf,
) -> Result<(), RepoError> {
    let proto = jj_lib::protos::local_working_copy::Checkout {
        operation_id: op_id.to_bytes(),
        workspace_name: name.as_str().to_owned(),
    };
    let path = state_dir.join("checkout");
    crate::atomic_file::write_data(&path, &proto.encode_to_vec()).map_err(RepoError::io(&path))
}

//! One workspace's working copy, in jj's own "local" format so that the jj CLI can use the
//! backing workspace too. jjfs drives jj-lib's `TreeState` directly rather than through
//! `Workspace`, because it needs two things the stock working copy does not offer:
//! snapshots told exactly which paths changed (so they cost O(changes), not O(files)), and
//! check-outs that write through the FUSE mount (so that the mount's caches and file
//! watchers see them) while the state stays in the backing workspace's `.jj/working_copy`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jj_lib::fsmonitor::FsmonitorSettings;
use jj_lib::gitignore::GitIgnoreFile;
use jj_lib::local_working_copy::{TreeState, TreeStateSettings};
use jj_lib::lock::FileLock;
use jj_lib::matchers::{EverythingMatcher, NothingMatcher};
use jj_lib::merged_tree::MergedTree;
use jj_lib::object_id::ObjectId as _;
use jj_lib::op_store::OperationId;
use jj_lib::ref_name::WorkspaceNameBuf;
use jj_lib::store::Store;
use jj_lib::working_copy::{CheckoutStats, SnapshotOptions, SnapshotStats};
use prost::Message as _;

use super::{RepoError, block_on};

/// What a snapshot looks at.
#[derive(Debug, Clone)]
pub enum Scan {
    /// Only these workspace-relative paths (each file, not directories).
    Paths(Vec<PathBuf>),
    /// Every file.
    Full,
}

/// The working-copy state of one backing workspace.
pub struct WorkingCopy {
    store: Arc<Store>,
    /// The backing workspace: where the files really are.
    backing: PathBuf,
    state_path: PathBuf,
    settings: TreeStateSettings,
}

impl WorkingCopy {
    pub fn new(store: Arc<Store>, backing: PathBuf, settings: TreeStateSettings) -> Self {
        let state_path = backing.join(".jj").join("working_copy");
        Self {
            store,
            backing,
            state_path,
            settings,
        }
    }

    pub fn backing(&self) -> &Path {
        &self.backing
    }

    /// Takes the working-copy lock (the same one the jj CLI takes) and reads the state:
    /// set up for a snapshot of `scan` when given (snapshots read the backing files), else
    /// for a check-out into `files_root`.
    pub fn lock(
        self,
        files_root: &Path,
        scan: Option<&Scan>,
    ) -> Result<LockedWorkingCopy, RepoError> {
        let lock =
            FileLock::lock(self.state_path.join("working_copy.lock")).map_err(RepoError::jj)?;
        let (op_id, name) = read_checkout(&self.state_path)?;
        let root = if scan.is_some() {
            self.backing.clone()
        } else {
            files_root.to_owned()
        };
        let state = self.load(&root, scan)?;
        Ok(LockedWorkingCopy {
            wc: self,
            _lock: lock,
            op_id,
            name,
            state,
            state_root: root,
            scanning: scan.is_some(),
            dirty: false,
        })
    }

    fn load(&self, root: &Path, scan: Option<&Scan>) -> Result<TreeState, RepoError> {
        let mut settings = self.settings.clone();
        if let Some(Scan::Paths(paths)) = scan {
            settings.fsmonitor_settings = FsmonitorSettings::Test {
                changed_files: paths.clone(),
            };
        }
        TreeState::load(
            self.store.clone(),
            root.to_owned(),
            self.state_path.clone(),
            &settings,
        )
        .map_err(RepoError::jj)
    }
}

/// A working copy under its lock. Changes to the state are written by `finish`.
pub struct LockedWorkingCopy {
    wc: WorkingCopy,
    _lock: FileLock,
    op_id: OperationId,
    name: WorkspaceNameBuf,
    state: TreeState,
    /// The files root `state` was loaded for.
    state_root: PathBuf,
    /// `state` was loaded with the paths of a snapshot.
    scanning: bool,
    dirty: bool,
}

impl LockedWorkingCopy {
    /// The tree jj believes is on disk.
    pub fn tree(&self) -> &MergedTree {
        self.state.current_tree()
    }

    pub fn operation(&self) -> &OperationId {
        &self.op_id
    }

    pub fn workspace_name(&self) -> &WorkspaceNameBuf {
        &self.name
    }

    /// Snapshots the backing files (the paths given to `lock`) and returns the new tree.
    pub fn snapshot(
        &mut self,
        ignores: Arc<GitIgnoreFile>,
    ) -> Result<(MergedTree, SnapshotStats), RepoError> {
        assert!(self.scanning, "lock() was not given what to scan");
        let options = SnapshotOptions {
            base_ignores: ignores,
            progress: None,
            start_tracking_matcher: &EverythingMatcher,
            force_tracking_matcher: &NothingMatcher,
            max_new_file_size: u64::MAX,
        };
        let (dirty, stats) = block_on(self.state.snapshot(&options)).map_err(RepoError::jj)?;
        self.dirty |= dirty;
        Ok((self.state.current_tree().clone(), stats))
    }

    /// Writes `tree` into the files at `files_root` (the FUSE mount, or the backing
    /// directory when unmounted). Snapshot state not yet saved is saved first.
    pub fn check_out(
        &mut self,
        files_root: &Path,
        tree: &MergedTree,
    ) -> Result<CheckoutStats, RepoError> {
        if self.state.current_tree().tree_ids_and_labels() == tree.tree_ids_and_labels() {
            return Ok(CheckoutStats::default());
        }
        self.reload(files_root)?;
        let stats = self.state.check_out(tree).map_err(|err| {
            if is_busy(&err) {
                RepoError::Busy(err.to_string())
            } else {
                RepoError::jj(err)
            }
        })?;
        self.dirty = true;
        Ok(stats)
    }

    /// Records that the working copy matches operation `op_id` and saves the state.
    pub fn finish(mut self, op_id: &OperationId) -> Result<(), RepoError> {
        if self.dirty {
            self.state.save().map_err(RepoError::jj)?;
        }
        // The operation is recorded only with a new state: jj treats a working copy whose
        // tree matches its commit as fresh, whatever operation it names.
        if &self.op_id != op_id && self.dirty {
            write_checkout(&self.wc.state_path, op_id, &self.name)?;
        }
        Ok(())
    }

    /// Saves what the last snapshot found without recording a new operation (used after the
    /// transaction that recorded the snapshot, before a check-out that may still fail).
    pub fn save(&mut self) -> Result<(), RepoError> {
        if self.dirty {
            self.state.save().map_err(RepoError::jj)?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Loads the state for a check-out into `root`, saving a snapshot's changes first.
    fn reload(&mut self, root: &Path) -> Result<(), RepoError> {
        if self.state_root == root && !self.scanning {
            return Ok(());
        }
        self.save()?;
        self.state = self.wc.load(root, None)?;
        self.state_root = root.to_owned();
        self.scanning = false;
        Ok(())
    }
}

fn read_checkout(state_path: &Path) -> Result<(OperationId, WorkspaceNameBuf), RepoError> {
    let path = state_path.join("checkout");
    let bytes = std::fs::read(&path).map_err(RepoError::io(&path))?;
    let proto = jj_lib::protos::local_working_copy::Checkout::decode(&*bytes)
        .map_err(|e| RepoError::Jj(format!("{}: {e}", path.display())))?;
    Ok((
        OperationId::new(proto.operation_id),
        proto.workspace_name.into(),
    ))
}

fn write_checkout(
    state_path: &Path,
    op_id: &OperationId,
    name: &WorkspaceNameBuf,
) -> Result<(), RepoError> {
    let proto = jj_lib::protos::local_working_copy::Checkout {
        operation_id: op_id.to_bytes(),
        workspace_name: name.as_str().to_owned(),
    };
    let path = state_path.join("checkout");
    crate::atomic_file::write_data(&path, &proto.encode_to_vec()).map_err(RepoError::io(&path))
}

/// Whether an error was caused by the mount refusing to replace a file a user changed (EBUSY).
fn is_busy(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.raw_os_error() == Some(libc::EBUSY)
        {
            return true;
        }
        current = e.source();
    }
    false
}

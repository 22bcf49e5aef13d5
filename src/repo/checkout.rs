//! Writing a sync step's result into each workspace's files. Workspaces are independent
//! (separate locks, states and mounts), so they are written in parallel; each write goes
//! through the workspace's mount, guarded so that a user's concurrent change is never lost.
//!
//! Files that only moved are moved (a rename through the mount), not removed and re-created,
//! so that programs watching the mount see a rename.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::StreamExt as _;
use jj_lib::backend::TreeValue;
use jj_lib::commit::Commit;
use jj_lib::matchers::EverythingMatcher;
use jj_lib::merged_tree::MergedTree;
use jj_lib::repo::ReadonlyRepo;
use uuid::Uuid;

use super::sync::{Prepared, WorkspaceSync};
use super::{RepoError, block_on};
use crate::stamp::Stamp;

/// How the files of one path change between two trees.
struct Change {
    path: PathBuf,
    before: Option<TreeValue>,
    after: Option<TreeValue>,
    /// Either side is a conflict.
    conflicted: bool,
}

pub(super) fn check_out_all(
    prepared: Vec<Prepared>,
    targets: Vec<Commit>,
    repo: &Arc<ReadonlyRepo>,
) -> Vec<(Uuid, Result<WorkspaceSync, RepoError>)> {
    let op_id = repo.op_id().clone();
    // Check-outs wait on fsync and on FUSE round trips more than on the CPU.
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get() * 2)
        .clamp(2, 8);
    let jobs: Vec<(Prepared, Commit)> = prepared.into_iter().zip(targets).collect();
    let queue = Mutex::new(jobs);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let job = queue.lock().unwrap_or_else(|e| e.into_inner()).pop();
                    let Some((p, target)) = job else { break };
                    let id = p.plan.id;
                    let result = check_out_one(p, &target, &op_id);
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((id, result));
                }
            });
        }
    });
    results.into_inner().unwrap_or_else(|e| e.into_inner())
}

fn check_out_one(
    mut p: Prepared,
    target: &Commit,
    op_id: &jj_lib::op_store::OperationId,
) -> Result<WorkspaceSync, RepoError> {
    let new_tree = target.tree();
    let changes = diff(p.locked.tree(), &new_tree)?;
    if changes.is_empty() {
        p.locked.finish(op_id)?;
        return Ok(p.sync);
    }
    let replaced: HashSet<PathBuf> = changes
        .iter()
        .filter(|c| c.before.is_some() && c.after.is_some())
        .map(|c| c.path.clone())
        .collect();
    let guard = p.plan.guard.clone();
    if let Some(guard) = &guard {
        guard.begin(replaced);
    }
    move_renamed_files(&p.plan.files_root, &changes);
    let written = p.locked.check_out(&p.plan.files_root, &new_tree);
    let fenced = guard.map_or(Ok(()), |g| g.end());
    // What the check-out left, for telling its own writes from users' in watcher events.
    p.sync.written = changes
        .iter()
        .map(|c| (c.path.clone(), Stamp::of(&p.plan.backing.join(&c.path))))
        .collect();
    let stats = match (written, fenced) {
        // A user changed something the check-out was about to replace: the state is not
        // saved, so the next step sees the workspace as stale and merges.
        (_, Err(why)) => return Err(RepoError::Busy(why)),
        (Err(err), Ok(())) => return Err(err),
        (Ok(stats), Ok(())) => stats,
    };
    p.locked.finish(op_id)?;
    p.sync.checkout = Some(stats);
    Ok(p.sync)
}

/// The paths that differ between two trees, with their values.
fn diff(old: &MergedTree, new: &MergedTree) -> Result<Vec<Change>, RepoError> {
    if old.tree_ids_and_labels() == new.tree_ids_and_labels() {
        return Ok(Vec::new());
    }
    let entries: Vec<_> = block_on(old.diff_stream(new, &EverythingMatcher).collect());
    let mut changes = Vec::with_capacity(entries.len());
    for entry in entries {
        let values = entry.values.map_err(RepoError::jj)?;
        let conflicted = !values.before.is_resolved() || !values.after.is_resolved();
        changes.push(Change {
            path: PathBuf::from(entry.path.as_internal_file_string()),
            before: values.before.as_resolved().cloned().flatten(),
            after: values.after.as_resolved().cloned().flatten(),
            conflicted,
        });
    }
    Ok(changes)
}

/// Files that were only moved (the same content and mode at a new path) are renamed in
/// place before the check-out, which then finds them already there.
fn move_renamed_files(root: &Path, changes: &[Change]) {
    let mut removed: HashMap<&TreeValue, Vec<&Path>> = HashMap::new();
    for c in changes
        .iter()
        .filter(|c| !c.conflicted && c.after.is_none())
    {
        if let Some(value @ TreeValue::File { .. }) = &c.before {
            removed.entry(value).or_default().push(&c.path);
        }
    }
    if removed.is_empty() {
        return;
    }
    for c in changes
        .iter()
        .filter(|c| !c.conflicted && c.before.is_none())
    {
        let Some(value) = &c.after else { continue };
        let Some(from) = removed.get_mut(value).and_then(Vec::pop) else {
            continue;
        };
        let (from, to) = (root.join(from), root.join(&c.path));
        if let Some(parent) = to.parent()
            && std::fs::create_dir_all(parent).is_ok()
            && std::fs::symlink_metadata(&to).is_err()
            && let Err(err) = std::fs::rename(&from, &to)
        {
            tracing::debug!(
                "could not move {} to {}: {err}",
                from.display(),
                to.display()
            );
        }
    }
}

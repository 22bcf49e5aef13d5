//! Keeping conflicted trees small. jj keeps a conflicted tree as N whole trees ("sides"), and
//! a merge adds the sides of its inputs up. On a trunk where mounts keep writing over
//! conflicts nobody resolved yet, that count grew with every step (3, 13, 63, 313 ...
//! measured with three mounts), and every step took longer than the last. Two rules keep
//! conflicts as small as the edits that made them:
//!
//! - A plain file written over a conflict is a new version of the file, not an edit of one
//!   of its sides: merged as if the file had been added, so that two mounts overwriting the
//!   same conflict make a conflict of their two versions (and the same version twice
//!   merges cleanly), never one that holds every earlier side, or marker text inside
//!   markers.
//! - A merged tree is packed to as many sides as its widest conflict needs.

use jj_lib::merged_tree::MergedTree;

use crate::repo::{RepoError, block_on};

/// `onto` and `base` without each conflict that `side` overwrote with a plain value (in
/// `onto` only where it still holds that conflict).
pub(super) fn settle_overwritten(
    onto: &MergedTree,
    base: &MergedTree,
    side: &MergedTree,
) -> Result<(MergedTree, MergedTree), RepoError> {
    if base.tree_ids().is_resolved() {
        return Ok((onto.clone(), base.clone()));
    }
    let mut onto_builder = crate::repo::tree_edit::TreeEdit::new(onto.clone());
    let mut base_builder = crate::repo::tree_edit::TreeEdit::new(base.clone());
    let mut settled = false;
    for (path, value) in base.conflicts() {
        let value = value.map_err(RepoError::jj)?;
        let side_value = block_on(side.path_value(&path)).map_err(RepoError::jj)?;
        if !side_value.is_resolved() || side_value == value {
            continue;
        }
        if block_on(onto.path_value(&path)).map_err(RepoError::jj)? == value {
            onto_builder.remove(path.clone());
        }
        base_builder.remove(path);
        settled = true;
    }
    if !settled {
        return Ok((onto.clone(), base.clone()));
    }
    Ok((
        block_on(onto_builder.write()).map_err(RepoError::jj)?,
        block_on(base_builder.write()).map_err(RepoError::jj)?,
    ))
}

/// A conflicted tree with as few sides as its widest conflict needs: rebuilt from its
/// resolved part with each conflict set at its path (padded to the widest one).
pub(super) fn compact(tree: MergedTree) -> Result<MergedTree, RepoError> {
    let sides = tree.tree_ids().num_sides();
    if sides <= 2 {
        return Ok(tree);
    }
    let mut conflicts = Vec::new();
    for (path, value) in tree.conflicts() {
        conflicts.push((path, value.map_err(RepoError::jj)?.simplify()));
    }
    let widest = conflicts
        .iter()
        .map(|(_, v)| v.num_sides())
        .max()
        .unwrap_or(1);
    if widest >= sides {
        return Ok(tree);
    }
    let base = MergedTree::resolved(tree.store().clone(), tree.tree_ids().first().clone());
    let mut builder = crate::repo::tree_edit::TreeEdit::new(base);
    for (path, value) in conflicts {
        builder.set(path, value);
    }
    block_on(builder.write()).map_err(RepoError::jj)
}

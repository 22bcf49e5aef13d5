//! Conflicts jj cannot write as markers: one side made a path a folder (or a symlink) while
//! another edited it as a file. jj would check out a file holding only its internal
//! description ("Conflict: Removing file ... Adding tree ..."), hiding both sides. jjfs keeps
//! both where a user finds them, as Syncthing does with its conflict copies: the folder
//! keeps the name (moving a folder would break every path in it), the file moves beside it
//! as `<name>.jjfs-conflict` (`-2`, `-3` ... when taken). Between a file and a symlink, the
//! file keeps the name. `jjfs status` lists the copies as conflicts until one is removed.

use jj_lib::backend::{MergedTreeValueExt as _, Signature, TreeValue};
use jj_lib::commit::Commit;
use jj_lib::merge::{Merge, SameChange};
use jj_lib::merged_tree::MergedTree;
use jj_lib::repo::MutableRepo;
use jj_lib::repo_path::{RepoPath, RepoPathBuf};

use crate::repo::messages;
use crate::repo::{RepoError, block_on};

/// Added to the name of the side moved aside.
pub const CONFLICT_SUFFIX: &str = ".jjfs-conflict";

/// Whether a repo path is a side moved aside by jjfs (`x.jjfs-conflict`, `x.jjfs-conflict-2`).
pub fn is_conflict_copy(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    match name.rfind(CONFLICT_SUFFIX) {
        Some(at) if at > 0 => {
            let rest = &name[at + CONFLICT_SUFFIX.len()..];
            rest.is_empty()
                || rest
                    .strip_prefix('-')
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        }
        _ => false,
    }
}

type Value = Merge<Option<TreeValue>>;

/// The commit that kept both sides (None when nothing needed it) and the moves it made.
type KeptBoth = (Option<Commit>, Vec<(String, String)>);

/// When `tip`'s tree holds conflicts that are not between files only, commits on top of it
/// a tree where both sides are kept. Returns that commit and the moves made.
pub(super) fn keep_both_sides(
    mut_repo: &mut MutableRepo,
    tip: &Commit,
    now: &Signature,
    repo_name: &str,
) -> Result<KeptBoth, RepoError> {
    let tree = tip.tree();
    if tree.tree_ids().is_resolved() {
        return Ok((None, Vec::new()));
    }
    let mut unwritable = Vec::new();
    for (path, value) in tree.conflicts() {
        let value = value.map_err(RepoError::jj)?;
        if value.to_file_merge().is_none() {
            unwritable.push((path, value));
        }
    }
    if unwritable.is_empty() {
        return Ok((None, Vec::new()));
    }
    let mut builder = crate::repo::tree_edit::TreeEdit::new(tree.clone());
    let mut moves = Vec::new();
    for (path, value) in unwritable {
        let (keeper, aside) = split(&value);
        builder.set(path.clone(), keeper);
        if aside.is_present() {
            let sibling = free_sibling(&tree, &path)?;
            moves.push((
                path.as_internal_file_string().to_owned(),
                sibling.as_internal_file_string().to_owned(),
            ));
            builder.set(sibling, aside);
        }
    }
    let kept = block_on(builder.write()).map_err(RepoError::jj)?;
    let commit = block_on(
        mut_repo
            .new_commit(vec![tip.id().clone()], kept)
            .set_description(messages::both_sides(&moves, repo_name))
            .set_author(now.clone())
            .set_committer(now.clone())
            .write(),
    )
    .map_err(RepoError::jj)?;
    Ok((Some(commit), moves))
}

fn is_tree(value: &Option<TreeValue>) -> bool {
    matches!(value, Some(TreeValue::Tree(_)))
}

fn is_file(value: &Option<TreeValue>) -> bool {
    matches!(value, Some(TreeValue::File { .. }))
}

/// The side that keeps the name and the side moved aside.
fn split(value: &Value) -> (Value, Value) {
    if value.iter().any(is_tree) {
        (side(value, is_tree), side(value, |v| !is_tree(v)))
    } else {
        (side(value, is_file), side(value, |v| !is_file(v)))
    }
}

/// The merge of the terms of one kind, as if the others had not changed the path: first
/// with the others absent (a side that made it something else removed this kind), then, when
/// that leaves a modify/remove conflict, with the others as the base of this kind (a
/// conversion is no edit of it). Left as a conflict of that kind when both fail.
fn side(value: &Value, kind: impl Fn(&Option<TreeValue>) -> bool) -> Value {
    let only = value.map(|v| if kind(v) { v.clone() } else { None });
    if let Some(resolved) = only.resolve_trivial(SameChange::Accept) {
        return Merge::resolved(resolved.clone());
    }
    if let Some(base) = value.removes().find(|v| kind(v)) {
        let as_base = value.map(|v| if kind(v) { v.clone() } else { base.clone() });
        if let Some(resolved) = as_base.resolve_trivial(SameChange::Accept) {
            return Merge::resolved(resolved.clone());
        }
    }
    only
}

/// `path.jjfs-conflict`, or the first of `-2`, `-3` ... that the tree does not hold.
fn free_sibling(tree: &MergedTree, path: &RepoPath) -> Result<RepoPathBuf, RepoError> {
    let base = path.as_internal_file_string();
    for n in 1.. {
        let candidate = if n == 1 {
            format!("{base}{CONFLICT_SUFFIX}")
        } else {
            format!("{base}{CONFLICT_SUFFIX}-{n}")
        };
        let candidate = RepoPathBuf::from_internal_string(candidate).map_err(RepoError::jj)?;
        if block_on(tree.path_value(&candidate))
            .map_err(RepoError::jj)?
            .is_absent()
        {
            return Ok(candidate);
        }
    }
    unreachable!("some suffix is free")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_copies_are_recognised() {
        assert!(is_conflict_copy("fd.jjfs-conflict"));
        assert!(is_conflict_copy("a/b/notes.md.jjfs-conflict-12"));
        assert!(!is_conflict_copy(".jjfs-conflict"));
        assert!(!is_conflict_copy("x.jjfs-conflict-"));
        assert!(!is_conflict_copy("x.jjfs-conflicts"));
        assert!(!is_conflict_copy("x.jjfs-conflict/y"));
    }
}

//! Editing a tree path by path, conflicts included. jj-lib's `MergedTreeBuilder` pads a
//! conflicted value only to the widest value being set, not to the base tree's number of
//! sides: a conflict with fewer sides than the base tree would be mixed with the base's own
//! terms at that path (a different conflict than the one set). Every tree jjfs edits goes
//! through here, which pads each conflicted value with neutral (absent) pairs first.

use jj_lib::backend::{BackendResult, MergedTreeValue};
use jj_lib::merge::Merge;
use jj_lib::merged_tree::MergedTree;
use jj_lib::merged_tree_builder::MergedTreeBuilder;
use jj_lib::repo_path::RepoPathBuf;

pub struct TreeEdit {
    builder: MergedTreeBuilder,
    sides: usize,
}

impl TreeEdit {
    pub fn new(base: MergedTree) -> Self {
        let sides = base.tree_ids().num_sides();
        Self {
            builder: MergedTreeBuilder::new(base),
            sides,
        }
    }

    /// Sets `path` to `value` (absent removes it).
    pub fn set(&mut self, path: RepoPathBuf, mut value: MergedTreeValue) {
        if !value.is_resolved() && value.num_sides() < self.sides {
            value.pad_to(self.sides, &None);
        }
        self.builder.set_or_remove(path, value);
    }

    pub fn remove(&mut self, path: RepoPathBuf) {
        self.builder.set_or_remove(path, Merge::absent());
    }

    pub async fn write(self) -> BackendResult<MergedTree> {
        self.builder.write_tree().await
    }
}

#[cfg(test)]
mod tests {
    use jj_lib::backend::{CopyId, TreeValue};
    use jj_lib::repo_path::RepoPath;
    use jj_lib::store::Store;

    use super::*;
    use crate::repo::{Identity, block_on, create_repo, load_repo, user_settings};

    fn file(store: &std::sync::Arc<Store>, text: &str) -> Option<TreeValue> {
        let path = RepoPath::from_internal_string("x").unwrap();
        let id = block_on(store.write_file(path, &mut text.as_bytes())).unwrap();
        Some(TreeValue::File {
            id,
            executable: false,
            copy_id: CopyId::placeholder(),
        })
    }

    fn path(p: &str) -> RepoPathBuf {
        RepoPathBuf::from_internal_string(p).unwrap()
    }

    /// A two-sided conflict set in a tree whose own conflict has three sides reads back as
    /// exactly that conflict, not mixed with the base tree's terms at that path.
    #[test]
    fn a_narrow_conflict_set_in_a_wide_tree_reads_back_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        let settings = user_settings(&Identity {
            name: "Test".into(),
            email: "test@example.com".into(),
        })
        .unwrap();
        create_repo(&root, &settings, "main", &[]).unwrap();
        let repo = load_repo(&root, &settings).unwrap();
        let store = repo.store().clone();
        let (a, b, c, base1, base2) = (
            file(&store, "a\n"),
            file(&store, "b\n"),
            file(&store, "c\n"),
            file(&store, "o1\n"),
            file(&store, "o2\n"),
        );
        let wide = Merge::from_vec(vec![a.clone(), base1.clone(), b.clone(), base2, c.clone()]);
        let mut edit = TreeEdit::new(store.empty_merged_tree());
        edit.set(path("wide.txt"), wide.clone());
        // The other path has a different (three-sided) conflict in the base tree.
        edit.set(
            path("narrow.txt"),
            Merge::from_vec(vec![
                c.clone(),
                a.clone(),
                b.clone(),
                base1.clone(),
                a.clone(),
            ]),
        );
        let base = block_on(edit.write()).unwrap();
        assert_eq!(base.tree_ids().num_sides(), 3);

        let narrow = Merge::from_vec(vec![a.clone(), base1.clone(), b.clone()]);
        let mut edit = TreeEdit::new(base);
        edit.set(path("narrow.txt"), narrow.clone());
        let tree = block_on(edit.write()).unwrap();
        let read = |p: &str| block_on(tree.path_value(&path(p))).unwrap().simplify();
        assert_eq!(read("narrow.txt"), narrow);
        assert_eq!(read("wide.txt"), wide);
    }
}

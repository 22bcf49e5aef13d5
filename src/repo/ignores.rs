//! Which paths a snapshot would leave alone because they are ignored (jjfs's `ignore`
//! setting in git's `info/exclude`, and the repo's `.gitignore` files), so that a burst of
//! ignored files (a build directory, editor swap files) costs the engine next to nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jj_lib::gitignore::GitIgnoreFile;
use jj_lib::repo_path::{RepoPath, RepoPathBuf};

/// Ignore rules of one workspace, with each directory's chain of `.gitignore` files read
/// once.
pub struct IgnoreRules {
    root: PathBuf,
    base: Arc<GitIgnoreFile>,
    chains: HashMap<RepoPathBuf, Arc<GitIgnoreFile>>,
}

impl IgnoreRules {
    pub fn new(root: &Path, base: Arc<GitIgnoreFile>) -> Self {
        Self {
            root: root.to_owned(),
            base,
            chains: HashMap::new(),
        }
    }

    /// Whether `rel` (a file, or a directory when `is_dir`) is ignored.
    pub fn is_ignored(&mut self, rel: &Path, is_dir: bool) -> bool {
        let Ok(path) = RepoPathBuf::from_relative_path(rel) else {
            return false;
        };
        // A path is ignored when it or any of its ancestor directories is.
        let mut ancestors: Vec<&RepoPath> = path.ancestors().skip(1).collect();
        ancestors.reverse();
        for dir in ancestors.iter().skip(1) {
            let parent = dir.parent().unwrap_or(RepoPath::root());
            if self.chain(parent).matches_dir(dir) {
                return true;
            }
        }
        let parent = path.parent().unwrap_or(RepoPath::root());
        let rules = self.chain(parent);
        if is_dir {
            rules.matches_dir(&path)
        } else {
            rules.matches_file(&path)
        }
    }

    /// The rules that apply inside `dir`: the base rules and every `.gitignore` from the
    /// root down to `dir`.
    fn chain(&mut self, dir: &RepoPath) -> Arc<GitIgnoreFile> {
        if let Some(chain) = self.chains.get(dir) {
            return chain.clone();
        }
        let outer = match dir.parent() {
            Some(parent) => self.chain(parent),
            None => self.base.clone(),
        };
        let file = dir.to_fs_path_unchecked(&self.root).join(".gitignore");
        let chain = outer.chain_with_file(dir, file).unwrap_or(outer);
        self.chains.insert(dir.to_owned(), chain.clone());
        chain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_rules_and_gitignore_files_apply() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src/gen")).unwrap();
        std::fs::write(dir.path().join(".gitignore"), "target/\n*.log\n").unwrap();
        std::fs::write(dir.path().join("src/.gitignore"), "gen/\n").unwrap();
        let base = GitIgnoreFile::empty()
            .chain(RepoPath::root(), Path::new(""), b".*.swp\n")
            .unwrap();
        let mut rules = IgnoreRules::new(dir.path(), base);
        assert!(rules.is_ignored(Path::new(".notes.md.swp"), false));
        assert!(rules.is_ignored(Path::new("target"), true));
        assert!(rules.is_ignored(Path::new("target/debug/x"), false));
        assert!(rules.is_ignored(Path::new("a/b.log"), false));
        assert!(rules.is_ignored(Path::new("src/gen/out.rs"), false));
        assert!(!rules.is_ignored(Path::new("src/main.rs"), false));
        assert!(!rules.is_ignored(Path::new("notes.md"), false));
    }
}

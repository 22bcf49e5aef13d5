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
    /// Folders whose `.gitignore` is read from the repo, not from disk (those a selective
    /// mount does not hold), with its content (empty: none).
    from_repo: HashMap<RepoPathBuf, Vec<u8>>,
}

impl IgnoreRules {
    pub fn new(root: &Path, base: Arc<GitIgnoreFile>) -> Self {
        Self {
            root: root.to_owned(),
            base,
            chains: HashMap::new(),
            from_repo: HashMap::new(),
        }
    }

    /// The same rules, with the `.gitignore` of each of `files`' folders (repo paths, the
    /// root `""`) taken from its content there instead of from disk.
    pub fn with_tree_files(mut self, files: &[(String, Vec<u8>)]) -> Self {
        for (dir, content) in files {
            if let Ok(dir) = RepoPathBuf::from_internal_string(dir.as_str()) {
                self.from_repo.insert(dir, content.clone());
            }
        }
        self.chains.clear();
        self
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
        let chain = match self.from_repo.get(dir) {
            Some(content) => outer.chain(dir, &file, content).unwrap_or(outer),
            None => outer.chain_with_file(dir, file).unwrap_or(outer),
        };
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

    #[test]
    fn gitignore_files_from_the_repo_replace_those_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        // On disk, but not what the repo holds for the root: not used.
        std::fs::write(dir.path().join(".gitignore"), "*.md\n").unwrap();
        std::fs::write(dir.path().join("a/b/.gitignore"), "*.out\n").unwrap();
        let files = [
            (String::new(), b"*.log\n".to_vec()),
            ("a".to_owned(), b"*.tmp\n".to_vec()),
        ];
        let mut rules =
            IgnoreRules::new(dir.path(), GitIgnoreFile::empty()).with_tree_files(&files);
        assert!(rules.is_ignored(Path::new("a/b/x.log"), false));
        assert!(rules.is_ignored(Path::new("a/b/x.tmp"), false));
        assert!(
            rules.is_ignored(Path::new("a/b/x.out"), false),
            "disk still counts below"
        );
        assert!(!rules.is_ignored(Path::new("a/b/x.md"), false));
    }
}

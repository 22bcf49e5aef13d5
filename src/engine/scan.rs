//! Planning what a workspace's next snapshot looks at, from the paths its mount and watcher
//! reported (or everything, for a rescan): directories are expanded into their files, paths
//! that are ignored and track nothing are left out (a build directory costs nothing), a
//! changed `.gitignore` brings its whole folder in (files it no longer ignores), and a
//! nested repository (a folder holding `.git` or `.jj`) is left alone: its files stay in the
//! mount where it was made, the files jjfs synced there keep their last synced state
//! everywhere else, and it is reported as skipped. In a selective mount, only the selected
//! folders are snapshotted: what a user puts anywhere else stays in that mount and is
//! reported as skipped (its outermost folder outside the selection). Everything is read
//! beneath the workspace root without following symlinks.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::files::{Kind, Root};
use crate::repo::working_copy::Scan;
use crate::selection::{Place, Selection};

/// What the engine knows about a workspace's paths when it plans a snapshot.
pub trait ScanFilter {
    /// Files the workspace tracks under each of `dirs` (every file for the root).
    fn tracked_under(&mut self, dirs: &[PathBuf]) -> Vec<PathBuf>;
    /// Whether a path (a directory when `is_dir`) is ignored and tracks nothing: a snapshot
    /// would leave it alone anyway.
    fn skips(&mut self, path: &Path, is_dir: bool) -> bool;
    /// The part of the repo the workspace holds (None: everything).
    fn selection(&self) -> Option<&Selection> {
        None
    }
}

/// A planned snapshot.
#[derive(Debug, Default)]
pub struct Planned {
    pub scan: Scan,
    /// Paths left out on purpose (nested repositories), with why.
    pub skipped: BTreeMap<PathBuf, String>,
    /// Tracked files inside nested repositories: kept as they are on disk.
    pub held: Vec<PathBuf>,
    /// The engine's temporary files found on the way (a killed daemon may leave some).
    pub temporary: Vec<PathBuf>,
}

/// Names that are never part of a workspace's files.
fn is_reserved(name: &OsStr) -> bool {
    name == ".jj" || name == ".git" || crate::files::is_temp_name(name)
}

const NESTED_REASON: &str = "a nested repository (it holds .git or .jj): it stays in this mount \
     only; the files jjfs synced there keep their last synced state in the other mounts";

const OUTSIDE_REASON: &str = "outside this mount's selection (--only): it stays in this mount \
     only; `jjfs only` changes what the mount shows";

struct Planner<'a> {
    root: &'a Root,
    filter: &'a mut dyn ScanFilter,
    planned: Planned,
    /// Directories known to be (true) or not to be (false) nested repositories.
    nested: BTreeMap<PathBuf, bool>,
    /// What the workspace holds; None for everything.
    selection: Option<Selection>,
}

impl<'a> Planner<'a> {
    fn new(root: &'a Root, filter: &'a mut dyn ScanFilter) -> Self {
        let selection = filter.selection().filter(|s| !s.is_everything()).cloned();
        Self {
            root,
            filter,
            planned: Planned::default(),
            nested: BTreeMap::new(),
            selection,
        }
    }

    fn place(&self, path: &Path) -> Place {
        self.selection
            .as_ref()
            .map_or(Place::Inside, |s| s.place(path))
    }

    /// Where `path` (a directory when `is_dir`) is not part of the selection: the outermost
    /// path to report as staying in the mount (a file where a leading folder should be is
    /// itself outside). None when it is selected or leads to the selection.
    fn outside_part(&self, path: &Path, is_dir: bool) -> Option<PathBuf> {
        let selection = self.selection.as_ref()?;
        match selection.outermost_outside(path) {
            Some(top) => Some(top),
            None if !is_dir && selection.place(path) == Place::Leading => Some(path.to_owned()),
            None => None,
        }
    }

    /// Reports `path` (outside the selection) as staying in the mount, unless it is ignored.
    fn outside(&mut self, path: &Path, is_dir: bool) {
        if !self.filter.skips(path, is_dir) {
            self.planned
                .skipped
                .insert(path.to_owned(), OUTSIDE_REASON.to_owned());
        }
    }

    /// Keeps only the selected files of `files`.
    fn retain_selected(&self, files: &mut BTreeSet<PathBuf>) {
        if self.selection.is_some() {
            files.retain(|path| self.place(path) == Place::Inside);
        }
    }
}

impl Planner<'_> {
    fn is_nested_repo(&mut self, dir: &Path) -> bool {
        if dir.as_os_str().is_empty() {
            return false;
        }
        if let Some(known) = self.nested.get(dir) {
            return *known;
        }
        let nested = [".git", ".jj"]
            .iter()
            .any(|name| matches!(self.root.lstat(&dir.join(name)), Ok(Some(_))));
        self.nested.insert(dir.to_owned(), nested);
        if nested {
            self.planned
                .skipped
                .insert(dir.to_owned(), NESTED_REASON.to_owned());
            let tracked = self.filter.tracked_under(&[dir.to_owned()]);
            self.planned.held.extend(tracked);
        }
        nested
    }

    /// Whether `path` lies in a nested repository (one of its parent folders is one).
    fn in_nested_repo(&mut self, path: &Path) -> bool {
        let ancestors: Vec<PathBuf> = path
            .ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
            .map(Path::to_owned)
            .collect();
        ancestors.iter().rev().any(|dir| self.is_nested_repo(dir))
    }

    /// Adds every file under `dir` (recursively) to `out`.
    fn walk(&mut self, dir: &Path, out: &mut BTreeSet<PathBuf>) {
        let Ok(entries) = self.root.read_dir(dir) else {
            return;
        };
        for entry in entries {
            if crate::files::is_temp_name(&entry.name) {
                self.planned.temporary.push(dir.join(&entry.name));
                continue;
            }
            if is_reserved(&entry.name) {
                continue;
            }
            let rel = dir.join(&entry.name);
            let kind = match entry.kind {
                Some(kind) => kind,
                None => match self.root.lstat(&rel) {
                    Ok(Some(st)) => st.kind,
                    _ => continue,
                },
            };
            if let Some(outside) = self.outside_part(&rel, kind == Kind::Dir) {
                self.outside(&outside, kind == Kind::Dir);
                continue;
            }
            if kind == Kind::Dir {
                if self.filter.skips(&rel, true) || self.is_nested_repo(&rel) {
                    continue;
                }
                self.walk(&rel, out);
            } else if !self.filter.skips(&rel, false) {
                out.insert(rel);
            }
        }
    }
}

/// Everything: every file on disk and every tracked file (to find the deleted ones); read
/// when its stat differs from the recorded one.
pub fn full(root: &Root, filter: &mut dyn ScanFilter) -> Planned {
    let mut planner = Planner::new(root, filter);
    let mut files = BTreeSet::new();
    planner.walk(Path::new(""), &mut files);
    for tracked in planner.filter.tracked_under(&[PathBuf::new()]) {
        if planner.place(&tracked) == Place::Inside && !planner.in_nested_repo(&tracked) {
            files.insert(tracked);
        }
    }
    planner.retain_selected(&mut files);
    planner.planned.scan.rescan = files;
    planner.planned
}

/// The files a snapshot must read for a set of changed paths: each path itself, every file
/// under a path that is a directory now, every file the workspace tracked under a path that
/// is no longer a directory (a removed or renamed folder), and a changed `.gitignore`'s whole
/// folder. All of them are read whatever their stat says.
pub fn changed(root: &Root, paths: &BTreeSet<PathBuf>, filter: &mut dyn ScanFilter) -> Planned {
    let mut planner = Planner::new(root, filter);
    let mut files = BTreeSet::new();
    let mut gone_dirs = Vec::new();
    for path in paths {
        if path.iter().any(is_reserved) || planner.in_nested_repo(path) {
            continue;
        }
        if planner.place(path) != Place::Inside {
            // Outside the selection: reported while it is there, never snapshotted (the
            // repo's file there is not in this mount: its absence is no deletion).
            let stat = root.lstat(path).ok().flatten();
            let is_dir = stat.is_some_and(|st| st.kind == Kind::Dir);
            if let Some(outside) = planner.outside_part(path, is_dir) {
                if let Ok(Some(st)) = root.lstat(&outside) {
                    planner.outside(&outside, st.kind == Kind::Dir);
                }
                continue;
            }
        }
        match root.lstat(path) {
            Ok(Some(st)) if st.kind == Kind::Dir => {
                if !planner.filter.skips(path, true) && !planner.is_nested_repo(path) {
                    // A folder that was a file (or a file that was a folder) before.
                    files.insert(path.clone());
                    planner.walk(path, &mut files);
                    gone_dirs.push(path.clone());
                }
            }
            Ok(Some(_)) => {
                if path.file_name() == Some(OsStr::new(".gitignore")) {
                    let dir = path.parent().unwrap_or(Path::new("")).to_owned();
                    planner.walk(&dir, &mut files);
                }
                if !planner.filter.skips(path, false) {
                    files.insert(path.clone());
                }
                // A file where a folder was: the folder's files are gone.
                gone_dirs.push(path.clone());
            }
            _ => {
                files.insert(path.clone());
                gone_dirs.push(path.clone());
            }
        }
    }
    if !gone_dirs.is_empty() {
        for tracked in planner.filter.tracked_under(&gone_dirs) {
            if planner.place(&tracked) == Place::Inside && !planner.in_nested_repo(&tracked) {
                files.insert(tracked);
            }
        }
    }
    planner.retain_selected(&mut files);
    planner.planned.scan.changed = files;
    planner.planned
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake;

    impl ScanFilter for Fake {
        fn tracked_under(&mut self, dirs: &[PathBuf]) -> Vec<PathBuf> {
            let mut out = Vec::new();
            if dirs.contains(&PathBuf::from("old")) {
                out.extend([PathBuf::from("old/x"), PathBuf::from("old/y/z")]);
            }
            if dirs.contains(&PathBuf::from("repo")) {
                out.push(PathBuf::from("repo/synced.md"));
            }
            out
        }

        fn skips(&mut self, path: &Path, _is_dir: bool) -> bool {
            path.starts_with("new/build") || path.ends_with("x.swp")
        }
    }

    /// Folders `dirs` and files `files` (each holding "x") under `d`.
    fn make_tree(d: &Path, dirs: &[&str], files: &[&str]) {
        for sub in dirs {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        for file in files {
            std::fs::write(d.join(file), "x").unwrap();
        }
    }

    #[test]
    fn changed_paths_expand_to_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        make_tree(
            d,
            &["new/sub", "new/build", "repo/.git"],
            &[
                "new/sub/a",
                "new/b",
                "new/build/out",
                "plain",
                "x.swp",
                "repo/synced.md",
                "repo/local",
            ],
        );
        let root = Root::open(d).unwrap();
        let paths = ["new", "old", "plain", "x.swp", "repo/local", "repo"].map(PathBuf::from);
        let planned = changed(&root, &paths.into_iter().collect(), &mut Fake);
        let files: Vec<&str> = planned
            .scan
            .changed
            .iter()
            .map(|p| p.to_str().unwrap())
            .collect();
        for expected in ["new/sub/a", "new/b", "old/x", "old/y/z", "plain"] {
            assert!(
                files.contains(&expected),
                "{expected} missing from {files:?}"
            );
        }
        assert!(
            !files
                .iter()
                .any(|f| f.contains("build") || f.ends_with("swp")),
            "{files:?}"
        );
        assert!(
            !files.iter().any(|f| f.starts_with("repo")),
            "nested repo scanned: {files:?}"
        );
        assert!(planned.skipped.contains_key(Path::new("repo")));
        assert_eq!(planned.held, vec![PathBuf::from("repo/synced.md")]);
    }

    /// A workspace that holds only `a/b` and `docs`, tracking `docs/t` and `notes/n`
    /// (outside: the repo has it, the workspace does not).
    struct Selective(Selection);

    impl ScanFilter for Selective {
        fn tracked_under(&mut self, dirs: &[PathBuf]) -> Vec<PathBuf> {
            ["docs/t", "notes/n", "a/b/t"]
                .into_iter()
                .map(PathBuf::from)
                .filter(|p| dirs.iter().any(|d| p.starts_with(d)))
                .collect()
        }

        fn skips(&mut self, path: &Path, _is_dir: bool) -> bool {
            path.extension().is_some_and(|e| e == "log")
        }

        fn selection(&self) -> Option<&Selection> {
            Some(&self.0)
        }
    }

    #[test]
    fn only_the_selection_is_scanned_and_the_rest_reported() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        make_tree(
            d,
            &["docs/sub", "a/b", "a/c", "notes", "junk"],
            &[
                "docs/sub/x",
                "a/b/y",
                "a/top",
                "a/c/z",
                "notes/local",
                "junk/x.log",
                "top.md",
                "top.log",
            ],
        );
        let root = Root::open(d).unwrap();
        let mut filter = Selective(Selection::from_prefixes(vec!["a/b".into(), "docs".into()]));
        let planned = full(&root, &mut filter);
        let files: Vec<&str> = planned
            .scan
            .rescan
            .iter()
            .map(|p| p.to_str().unwrap())
            .collect();
        // `notes/n` is the repo's, outside: never looked at (it is not missing, it is not
        // part of this workspace).
        assert_eq!(files, vec!["a/b/t", "a/b/y", "docs/sub/x", "docs/t"]);
        let skipped: Vec<&str> = planned
            .skipped
            .keys()
            .map(|p| p.to_str().unwrap())
            .collect();
        // Ignored files are left alone, not reported (`top.log`); a folder outside is
        // reported whole, whatever it holds (`junk`).
        assert_eq!(skipped, vec!["a/c", "a/top", "junk", "notes", "top.md"]);

        // Changed paths: outside ones are reported by their outermost folder, gone ones
        // outside are nothing at all (the repo's file there is no deletion).
        let paths = [
            "notes/local",
            "notes/n",
            "a/c/z",
            "docs/sub/x",
            "gone/x",
            "a",
        ]
        .map(PathBuf::from);
        let planned = changed(&root, &paths.into_iter().collect(), &mut filter);
        let files: Vec<&str> = planned
            .scan
            .changed
            .iter()
            .map(|p| p.to_str().unwrap())
            .collect();
        assert_eq!(files, vec!["a/b/t", "a/b/y", "docs/sub/x"]);
        let skipped: Vec<&str> = planned
            .skipped
            .keys()
            .map(|p| p.to_str().unwrap())
            .collect();
        assert_eq!(skipped, vec!["a/c", "a/top", "notes"]);
    }

    #[test]
    fn a_rescan_lists_every_file_but_nested_repositories() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("a/.jj")).unwrap();
        std::fs::create_dir_all(d.join("b")).unwrap();
        std::fs::write(d.join("a/inside"), "x").unwrap();
        std::fs::write(d.join("b/f"), "x").unwrap();
        std::os::unix::fs::symlink("/etc", d.join("link")).unwrap();
        let planned = full(&Root::open(d).unwrap(), &mut Fake);
        let files: Vec<&str> = planned
            .scan
            .rescan
            .iter()
            .map(|p| p.to_str().unwrap())
            .collect();
        assert_eq!(files, vec!["b/f", "link"]);
    }
}

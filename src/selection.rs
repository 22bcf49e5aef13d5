//! A mount's selection (`jjfs open --only`, `jjfs only`): the repo folders it shows, at
//! their repo-relative places. Pure path logic, no I/O: checking and normalizing what a user
//! typed, and telling where a path stands relative to the selection.
//!
//! A selection is a list of path prefixes, matched component by component (jj's sparse
//! patterns): `docs` holds `docs` and everything under it, never `docs2`. The folders
//! leading to a selected folder (`a` for `a/b`, and the root) are shown too, holding only
//! the way there; everything else is outside. The empty prefix (the root) selects
//! everything.

use std::path::{Component, Path, PathBuf};

/// Why a selection cannot be used as typed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    #[error("no folder given: name at least one repo folder, or use --all")]
    Nothing,
    #[error("an empty folder name in the selection: name repo folders like `docs` or `a/b`")]
    Empty,
    #[error("{0:?} is absolute: name folders relative to the repo root, like `docs`")]
    Absolute(String),
    #[error("{0:?} leaves the repo (`..`): name folders inside it, relative to its root")]
    Parent(String),
    #[error("{0:?} is the repo root: use --all to show everything")]
    Root(String),
    #[error("{0:?} names jj's or git's own folder, which no mount shows")]
    Reserved(String),
    #[error("{0:?} is not a usable folder name (it holds a NUL byte or is not UTF-8)")]
    Invalid(String),
}

/// Checks and normalizes the folders a user selected: relative, inside the repo, with `.`
/// parts, repeated and trailing slashes dropped; a folder inside another selected one is
/// covered by it; sorted, without duplicates. Returns them as repo paths (`/`-separated).
pub fn normalize(folders: &[String]) -> Result<Vec<String>, SelectionError> {
    if folders.is_empty() {
        return Err(SelectionError::Nothing);
    }
    let mut out = Vec::with_capacity(folders.len());
    for folder in folders {
        out.push(normalize_one(folder)?);
    }
    Ok(collapse(out))
}

fn normalize_one(folder: &str) -> Result<String, SelectionError> {
    if folder.is_empty() {
        return Err(SelectionError::Empty);
    }
    if folder.contains('\0') {
        return Err(SelectionError::Invalid(folder.to_owned()));
    }
    let mut parts = Vec::new();
    for component in Path::new(folder).components() {
        match component {
            Component::RootDir | Component::Prefix(_) => {
                return Err(SelectionError::Absolute(folder.to_owned()));
            }
            Component::ParentDir => return Err(SelectionError::Parent(folder.to_owned())),
            Component::CurDir => {}
            Component::Normal(name) => {
                let name = name
                    .to_str()
                    .ok_or_else(|| SelectionError::Invalid(folder.to_owned()))?;
                if name == ".jj" || name == ".git" {
                    return Err(SelectionError::Reserved(folder.to_owned()));
                }
                parts.push(name);
            }
        }
    }
    if parts.is_empty() {
        return Err(SelectionError::Root(folder.to_owned()));
    }
    Ok(parts.join("/"))
}

/// Sorts prefixes, drops duplicates and those inside another one (the root covers all).
pub fn collapse(mut prefixes: Vec<String>) -> Vec<String> {
    prefixes.sort();
    prefixes.dedup();
    let mut out: Vec<String> = Vec::with_capacity(prefixes.len());
    for prefix in prefixes {
        // Sorted: a prefix that covers this one sorts before it ("a" < "a/b" < "a0").
        if out.iter().any(|kept| covers(kept, &prefix)) {
            continue;
        }
        out.push(prefix);
    }
    out
}

/// Whether repo path `path` is `prefix` or lies under it (the root prefix covers all).
fn covers(prefix: &str, path: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || (path.len() > prefix.len()
            && path.starts_with(prefix)
            && path.as_bytes()[prefix.len()] == b'/')
}

/// Where a path stands relative to a selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Selected: synced as in a full mount.
    Inside,
    /// A folder on the way to a selected one (or the root): shown, holding only the way.
    Leading,
    /// Neither: not in the mount's part of the repo.
    Outside,
}

/// What part of the repo a workspace shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Collapsed prefixes; `[""]` for everything.
    prefixes: Vec<String>,
}

impl Selection {
    pub fn everything() -> Self {
        Self {
            prefixes: vec![String::new()],
        }
    }

    /// The selection of a mount's `only` setting (None: everything). The folders are taken
    /// as stored (normalized when they were set).
    pub fn of(only: Option<&[String]>) -> Self {
        match only {
            None => Self::everything(),
            Some(folders) => Self::from_prefixes(folders.to_vec()),
        }
    }

    /// From repo-path prefixes (jj's sparse patterns); none at all selects nothing.
    pub fn from_prefixes(prefixes: Vec<String>) -> Self {
        Self {
            prefixes: collapse(prefixes),
        }
    }

    pub fn is_everything(&self) -> bool {
        self.prefixes.iter().any(String::is_empty)
    }

    /// The prefixes, collapsed and sorted (`[""]` for everything).
    pub fn prefixes(&self) -> &[String] {
        &self.prefixes
    }

    /// Where a workspace-relative path stands.
    pub fn place(&self, path: &Path) -> Place {
        let Some(path) = path.to_str() else {
            return Place::Outside;
        };
        let path = path.trim_end_matches('/');
        if self.prefixes.iter().any(|p| covers(p, path)) {
            Place::Inside
        } else if path.is_empty() || self.prefixes.iter().any(|p| covers(path, p)) {
            Place::Leading
        } else {
            Place::Outside
        }
    }

    /// Whether a path is selected (synced).
    pub fn contains(&self, path: &Path) -> bool {
        self.place(path) == Place::Inside
    }

    /// The outermost folder (or the path itself) of `path` that is outside the selection:
    /// what to report as staying in the mount. None when `path` is inside or leading.
    pub fn outermost_outside(&self, path: &Path) -> Option<PathBuf> {
        let mut ancestors: Vec<&Path> = path
            .ancestors()
            .filter(|a| !a.as_os_str().is_empty())
            .collect();
        ancestors.reverse();
        ancestors
            .into_iter()
            .find(|a| self.place(a) == Place::Outside)
            .map(Path::to_owned)
    }

    /// The folders whose `.gitignore` files apply inside the selection without being part
    /// of it: the root and every folder leading to a selected one (repo paths, root `""`).
    pub fn leading_folders(&self) -> Vec<String> {
        if self.is_everything() {
            return Vec::new();
        }
        let mut out = vec![String::new()];
        for prefix in &self.prefixes {
            let mut at = 0;
            while let Some(slash) = prefix[at..].find('/') {
                out.push(prefix[..at + slash].to_owned());
                at += slash + 1;
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// A short description for messages: `docs, notes`, or `everything`.
    pub fn describe(&self) -> String {
        if self.is_everything() {
            "everything".to_owned()
        } else {
            self.prefixes.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn folders_are_normalized() {
        assert_eq!(
            normalize(&strings(&["docs/", "./notes//a/", "b/./c"])).unwrap(),
            strings(&["b/c", "docs", "notes/a"])
        );
    }

    #[test]
    fn overlapping_folders_collapse() {
        assert_eq!(
            normalize(&strings(&["docs/a", "docs", "docs/a/b", "docs2", "docs"])).unwrap(),
            strings(&["docs", "docs2"])
        );
        assert_eq!(
            collapse(strings(&["a/b", "a", "a0", ""])),
            strings(&[""]),
            "the root covers everything"
        );
    }

    #[test]
    fn bad_folders_are_refused() {
        let refused = |s: &str| normalize(&strings(&[s])).unwrap_err();
        assert!(matches!(refused("/etc"), SelectionError::Absolute(_)));
        assert!(matches!(refused("../x"), SelectionError::Parent(_)));
        assert!(matches!(refused("a/../../x"), SelectionError::Parent(_)));
        assert!(matches!(refused("a/.."), SelectionError::Parent(_)));
        assert!(matches!(refused(""), SelectionError::Empty));
        assert!(matches!(refused("."), SelectionError::Root(_)));
        assert!(matches!(refused("./"), SelectionError::Root(_)));
        assert!(matches!(refused(".jj"), SelectionError::Reserved(_)));
        assert!(matches!(refused("a/.git/x"), SelectionError::Reserved(_)));
        assert!(matches!(refused("a\0b"), SelectionError::Invalid(_)));
        assert_eq!(normalize(&[]).unwrap_err(), SelectionError::Nothing);
        // One bad folder refuses the whole selection.
        assert!(normalize(&strings(&["docs", "/x"])).is_err());
    }

    #[test]
    fn places_are_told_by_whole_components() {
        let s = Selection::from_prefixes(strings(&["a/b", "docs"]));
        let place = |p: &str| s.place(Path::new(p));
        assert_eq!(place("docs"), Place::Inside);
        assert_eq!(place("docs/x/y.md"), Place::Inside);
        assert_eq!(place("docs2"), Place::Outside);
        assert_eq!(place("docs2/x"), Place::Outside);
        assert_eq!(place(""), Place::Leading);
        assert_eq!(place("a"), Place::Leading);
        assert_eq!(place("a/b"), Place::Inside);
        assert_eq!(place("a/b/c"), Place::Inside);
        assert_eq!(place("a/bc"), Place::Outside);
        assert_eq!(place("a/x.md"), Place::Outside);
        assert_eq!(place("top.md"), Place::Outside);
        let all = Selection::everything();
        assert!(all.is_everything());
        assert_eq!(all.place(Path::new("anything/at/all")), Place::Inside);
        assert_eq!(all.place(Path::new("")), Place::Inside);
    }

    #[test]
    fn the_outermost_outside_folder_is_reported() {
        let s = Selection::from_prefixes(strings(&["a/b"]));
        let outer = |p: &str| s.outermost_outside(Path::new(p));
        assert_eq!(outer("notes/x/y.md"), Some(PathBuf::from("notes")));
        assert_eq!(outer("a/c/d"), Some(PathBuf::from("a/c")));
        assert_eq!(outer("a/top.md"), Some(PathBuf::from("a/top.md")));
        assert_eq!(outer("a/b/in.md"), None);
        assert_eq!(outer("a"), None);
    }

    #[test]
    fn leading_folders_are_the_root_and_the_ways_there() {
        let s = Selection::from_prefixes(strings(&["a/b/c", "a/d", "docs"]));
        assert_eq!(s.leading_folders(), strings(&["", "a", "a/b"]));
        assert!(Selection::everything().leading_folders().is_empty());
        assert_eq!(s.describe(), "a/b/c, a/d, docs");
        assert_eq!(Selection::of(None), Selection::everything());
    }
}

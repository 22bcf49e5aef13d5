//! Changing which part of the repo a workspace's files hold (jj's sparse patterns, path
//! prefixes), for a selective mount: files leaving the selection are removed from the
//! workspace (never from the repo), files entering it arrive with the next step.
//!
//! Unlike jj's `set_sparse_patterns`, nothing here overwrites or drops a user's edit:
//! - A leaving file is removed through the workspace's `Files`, refused when it changed since
//!   the step read it (or is open for writing): the step is retried, its snapshot records the
//!   edit first. Leaving files not removed yet stay in the patterns, one by one, so they are
//!   still snapshotted and synced until they go.
//! - Entering files are taken out of the state's tree (they are not on disk), so that the
//!   next step finds the workspace stale: its snapshot reads a local file in their way as the
//!   user's, and the repo's files arrive as a merge with it (a conflict where both have one),
//!   never over it. The state is then saved without recording the operation, so the jj CLI
//!   sees a stale working copy meanwhile rather than snapshotting the missing files as
//!   deletions.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;

use jj_lib::backend::MergedTreeValueExt as _;
use jj_lib::matchers::{DifferenceMatcher, PrefixMatcher};
use jj_lib::merge::Merge;
use jj_lib::merged_tree_builder::MergedTreeBuilder;
use jj_lib::repo_path::{RepoPath, RepoPathBuf};

use super::checkout::{CheckoutContext, CheckoutFailed, fs_path};
use super::state::WcState;
use crate::files::{Kind, Stat, WriteError};
use crate::repo::{RepoError, block_on};

/// What a change of patterns did.
#[derive(Debug, Default)]
pub struct SparseReport {
    /// Paths removed or created, as they look now (None: gone).
    pub touched: Vec<(PathBuf, Option<Stat>)>,
    /// Files entered the patterns: the next step brings them (snapshot the workspace fully).
    pub entering: bool,
}

/// Patterns from repo paths (`/`-separated; the root `""`), collapsed.
pub fn patterns(paths: &[String]) -> Vec<RepoPathBuf> {
    crate::selection::collapse(paths.to_vec())
        .into_iter()
        .filter_map(|p| RepoPathBuf::from_internal_string(p).ok())
        .collect()
}

/// Patterns as repo paths.
pub fn strings(patterns: &[RepoPathBuf]) -> Vec<String> {
    patterns
        .iter()
        .map(|p| p.as_internal_file_string().to_owned())
        .collect()
}

/// Whether `path` lies within `patterns`.
pub fn covers(patterns: &[RepoPathBuf], path: &RepoPath) -> bool {
    patterns.iter().any(|p| path.starts_with(p))
}

/// Sets the workspace's patterns to `want` (collapsed prefixes): removes the files leaving
/// them, takes the entering ones out of the state's tree, and creates the wanted folders.
/// When a removal is refused, the files not removed stay in the patterns and the error says
/// why (the state is consistent either way: save it).
pub fn set_sparse(
    state: &mut WcState,
    want: &[RepoPathBuf],
    cx: &CheckoutContext<'_>,
) -> Result<SparseReport, CheckoutFailed> {
    let fail = |error: RepoError| CheckoutFailed {
        error,
        touched: Vec::new(),
    };
    let mut report = SparseReport::default();
    if same_patterns(&state.sparse, want) {
        return Ok(report);
    }
    let old = PrefixMatcher::new(&state.sparse);
    let new = PrefixMatcher::new(want);
    let entering: Vec<RepoPathBuf> = state
        .tree
        .entries_matching(&DifferenceMatcher::new(&new, &old))
        .map(|(path, _)| path)
        .collect();
    let leaving: Vec<RepoPathBuf> = state
        .entries
        .keys()
        .filter(|path| !covers(want, path))
        .cloned()
        .collect();

    cx.files.begin(HashSet::new());
    let mut touched = Vec::new();
    let mut emptied = BTreeSet::new();
    let mut stopped: Option<WriteError> = None;
    for path in &leaving {
        let rel = fs_path(path);
        if cx.held.contains(&rel) {
            stopped = Some(WriteError::Busy(format!(
                "{} is open for writing; it leaves the mount once closed",
                rel.display()
            )));
            break;
        }
        let expect = state.entries[path].expect();
        touched.push(rel.clone());
        if let Err(err) = cx.files.remove_file(&rel, expect) {
            stopped = Some(err);
            break;
        }
        state.entries.remove(path);
        state.dirty = true;
        if let Some(parent) = rel.parent() {
            emptied.insert(parent.to_owned());
        }
        report.touched.push((rel, None));
    }
    if stopped.is_none() {
        for made in create_folders(state, want, cx) {
            touched.push(made.0.clone());
            report.touched.push(made);
        }
    }
    if let Err(err) = cx.files.end() {
        // The mount's verdict first: a tripped update is a Busy.
        stopped = Some(err);
    }
    if stopped.is_none() {
        for dir in emptied.iter().rev() {
            remove_empty_parents(cx, dir, want);
        }
    }

    // The entering files are not on disk: the state's tree must not claim they are.
    if !entering.is_empty() {
        let mut builder = MergedTreeBuilder::new(state.tree.clone());
        for path in entering {
            builder.set_or_remove(path, Merge::absent());
        }
        state.tree = block_on(builder.write_tree()).map_err(|e| fail(RepoError::jj(e)))?;
        report.entering = true;
    }
    // What was not removed stays within the patterns, file by file, until it goes.
    let kept: Vec<String> = want
        .iter()
        .chain(state.entries.keys().filter(|p| !covers(want, p)))
        .map(|p| p.as_internal_file_string().to_owned())
        .collect();
    state.sparse = patterns(&kept);
    state.dirty = true;
    match stopped {
        None => Ok(report),
        Some(err) => Err(CheckoutFailed {
            error: write_error(err),
            touched,
        }),
    }
}

/// Creates the selected folders that are missing (not files in the repo): they are there to
/// write into, also when the repo has none yet. Best effort: a local file in the way stays.
/// Returns the folders made, as they look now.
pub fn create_folders(
    state: &WcState,
    want: &[RepoPathBuf],
    cx: &CheckoutContext<'_>,
) -> Vec<(PathBuf, Option<Stat>)> {
    let mut made = Vec::new();
    for folder in want.iter().filter(|p| !p.is_root()) {
        let rel = fs_path(folder);
        let is_file = block_on(state.tree.path_value(folder))
            .map_or(true, |value| value.is_present() && !value.is_tree());
        if !is_file
            && !matches!(cx.files.root().lstat(&rel), Ok(Some(_)))
            && cx.files.make_dirs(&rel).is_ok()
        {
            let stat = cx.state_root.lstat(&rel).ok().flatten();
            made.push((rel, stat));
        }
    }
    made
}

/// Whether two lists of patterns select the same (jj keeps them in its own order).
pub fn same_patterns(a: &[RepoPathBuf], b: &[RepoPathBuf]) -> bool {
    crate::selection::collapse(strings(a)) == crate::selection::collapse(strings(b))
}

fn write_error(err: WriteError) -> RepoError {
    match err {
        WriteError::Busy(why) => RepoError::Busy(why),
        WriteError::Unsafe { path } => RepoError::Unsafe(path.display().to_string()),
        WriteError::Io { path, source } => RepoError::Io { path, source },
    }
}

/// Removes `dir` and its parents while they are empty, short of the selected folders and
/// the folders leading to them.
fn remove_empty_parents(cx: &CheckoutContext<'_>, dir: &std::path::Path, want: &[RepoPathBuf]) {
    let selection = crate::selection::Selection::from_prefixes(strings(want));
    let mut current = Some(dir);
    while let Some(dir) = current {
        if dir.as_os_str().is_empty()
            || selection.place(dir) != crate::selection::Place::Outside
            || !matches!(cx.files.root().lstat(dir), Ok(Some(st)) if st.kind == Kind::Dir)
            || !cx.files.remove_empty_dir(dir)
        {
            break;
        }
        current = dir.parent();
    }
}

//! Reading a workspace's changed files into the store: the tree its files hold now.
//!
//! Only the paths the engine names are looked at (so a snapshot costs O(changes)): paths
//! reported as changed are read again whatever their stat says (a same-size rewrite with
//! its mtime put back is still a change); paths a rescan lists are read when their stat
//! (type, size, mtime, inode, ctime) differs from the one recorded. Files are read beneath
//! the workspace root without following symlinks or blocking on FIFOs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::io::AllowStdIo;
use jj_lib::backend::{CopyId, MergedTreeValueExt as _, TreeValue};
use jj_lib::conflicts::{self, MIN_CONFLICT_MARKER_LEN};
use jj_lib::merge::Merge;
use jj_lib::merged_tree_builder::MergedTreeBuilder;
use jj_lib::repo_path::{RepoPath, RepoPathBuf};
use jj_lib::store::Store;

use super::state::{Entry, EntryKind, WcState};
use crate::files::{Kind, Root, Stat};
use crate::repo::{RepoError, block_on};

/// What a snapshot looks at (workspace-relative file paths; directories are expanded by the
/// caller).
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// Reported as changed: read again whatever their stat says.
    pub changed: BTreeSet<PathBuf>,
    /// Found or tracked by a rescan: read when their stat differs from the recorded one.
    pub rescan: BTreeSet<PathBuf>,
}

impl Scan {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.rescan.is_empty()
    }

    pub fn len(&self) -> usize {
        self.changed.len() + self.rescan.len()
    }
}

/// What a snapshot found besides the tree.
#[derive(Debug, Default)]
pub struct SnapshotReport {
    /// Paths that cannot be synced, with why.
    pub skipped: Vec<(String, String)>,
    /// Regular files looked at, with their permission bits.
    pub modes: Vec<(String, u32)>,
    /// Tracked paths found gone.
    pub removed: Vec<String>,
    /// Paths read (not found clean), with how they looked.
    pub read: Vec<(PathBuf, Stat)>,
}

/// Updates `state` (its tree and entries) with what the files named by `scan` hold now.
pub fn snapshot(
    state: &mut WcState,
    root: &Root,
    store: &Arc<Store>,
    scan: &Scan,
) -> Result<SnapshotReport, RepoError> {
    let mut report = SnapshotReport::default();
    let mut builder = MergedTreeBuilder::new(state.tree.clone());
    let mut changed_tree = false;
    let paths = scan.changed.iter().map(|p| (p, true)).chain(
        scan.rescan
            .iter()
            .filter(|p| !scan.changed.contains(*p))
            .map(|p| (p, false)),
    );
    for (path, force) in paths {
        let Some(name) = path.to_str() else {
            report.skipped.push((
                path.to_string_lossy().into_owned(),
                "the name is not valid UTF-8".into(),
            ));
            continue;
        };
        let Ok(repo_path) = RepoPathBuf::from_internal_string(name) else {
            continue;
        };
        if repo_path.is_root() {
            continue;
        }
        let stat = root
            .lstat(path)
            .map_err(RepoError::io(root.path().join(path)))?;
        let value = match stat {
            Some(st) if !force && state.entry(&repo_path).is_some_and(|e| e.is_clean(&st)) => {
                continue;
            }
            Some(st) if st.kind == Kind::File => {
                read_file(state, root, store, path, &repo_path, &mut report)?
            }
            Some(st) if st.kind == Kind::Symlink => {
                read_symlink(root, store, path, &repo_path, &st, &mut report)?
            }
            Some(st) if st.kind == Kind::Special => {
                report.skipped.push((
                    name.to_owned(),
                    format!(
                        "{} holds no content to sync, so it stays in this mount only",
                        special_kind(root, path)
                    ),
                ));
                None
            }
            // Gone, or a directory now (its files are listed on their own).
            _ => None,
        };
        match value {
            Some((tree_value, entry)) => {
                if path_value(&state.tree, &repo_path)? != tree_value {
                    builder.set_or_remove(repo_path.clone(), tree_value);
                    changed_tree = true;
                }
                if state.entries.get(&repo_path) != Some(&entry) {
                    state.entries.insert(repo_path, entry);
                    state.dirty = true;
                }
            }
            None => {
                if state.entries.remove(&repo_path).is_some() {
                    state.dirty = true;
                    report.removed.push(name.to_owned());
                }
                // A folder's own path holds a tree, which its files settle on their own;
                // only a file (or conflict) that is gone is removed here.
                let current = path_value(&state.tree, &repo_path)?;
                if current.is_present() && !current.is_tree() {
                    builder.set_or_remove(repo_path, Merge::absent());
                    changed_tree = true;
                }
            }
        }
    }
    if changed_tree {
        state.tree = block_on(builder.write_tree()).map_err(RepoError::jj)?;
        state.dirty = true;
    }
    Ok(report)
}

/// The value of `path` in `tree`.
pub fn path_value(
    tree: &jj_lib::merged_tree::MergedTree,
    path: &RepoPath,
) -> Result<Merge<Option<TreeValue>>, RepoError> {
    block_on(tree.path_value(path)).map_err(RepoError::jj)
}

fn special_kind(root: &Root, path: &Path) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    match std::fs::symlink_metadata(root.path().join(path)).map(|m| m.file_type()) {
        Ok(t) if t.is_fifo() => "a named pipe (FIFO)",
        Ok(t) if t.is_socket() => "a socket",
        Ok(t) if t.is_block_device() || t.is_char_device() => "a device file",
        _ => "a special file",
    }
}

type Read = Option<(Merge<Option<TreeValue>>, Entry)>;

fn read_file(
    state: &WcState,
    root: &Root,
    store: &Arc<Store>,
    path: &Path,
    repo_path: &RepoPath,
    report: &mut SnapshotReport,
) -> Result<Read, RepoError> {
    let name = repo_path.as_internal_file_string();
    let (file, before) = match root.read_file(path) {
        Ok(Some(found)) => found,
        // Replaced by something else (a FIFO, a directory) or gone while we looked.
        Ok(None) => return Ok(None),
        Err(err) => {
            report.skipped.push((
                name.to_owned(),
                format!("it cannot be read ({err}), so it is not synced"),
            ));
            return Ok(None);
        }
    };
    let current = path_value(&state.tree, repo_path)?;
    let executable = before.is_executable();
    let previous = state.entry(repo_path);
    let marker_len = previous
        .and_then(|e| e.conflict_marker_len)
        .map_or(MIN_CONFLICT_MARKER_LEN, |len| len as usize);
    let mut file = file;
    let value = if let Some(old_file_ids) = current
        .as_resolved()
        .is_none()
        .then(|| current.to_file_merge())
        .flatten()
    {
        // A materialized conflict: parse its markers back into the conflict.
        let mut contents = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut contents)
            .map_err(RepoError::io(root.path().join(path)))?;
        let new_ids = block_on(conflicts::update_from_content(
            &old_file_ids,
            store,
            repo_path,
            &contents,
            marker_len,
        ))
        .map_err(RepoError::jj)?;
        match new_ids.into_resolved() {
            Ok(Some(id)) => Merge::normal(TreeValue::File {
                id,
                executable,
                copy_id: CopyId::placeholder(),
            }),
            Ok(None) => Merge::absent(),
            Err(new_ids) => current.with_new_file_ids(&new_ids),
        }
    } else {
        let copy_id = match current.as_normal() {
            Some(TreeValue::File { copy_id, .. }) => copy_id.clone(),
            _ => CopyId::placeholder(),
        };
        let mut reader = AllowStdIo::new(&mut file);
        let id = block_on(store.write_file(repo_path, &mut reader)).map_err(RepoError::jj)?;
        Merge::normal(TreeValue::File {
            id,
            executable,
            copy_id,
        })
    };
    let after = crate::files::beneath::fstat(std::os::fd::AsFd::as_fd(&file))
        .map_err(RepoError::io(root.path().join(path)))?;
    let mut entry = Entry::seen(EntryKind::File { executable }, &before);
    if !value.is_resolved() {
        entry.conflict_marker_len = Some(marker_len as u32);
    }
    if after.size != before.size
        || after.mtime_ns != before.mtime_ns
        || after.ctime_ns != before.ctime_ns
    {
        // Written to while we read it: what we stored may be a mix; read it again next time.
        entry.mtime_millis = 0;
        entry.ctime_ns = 0;
    }
    report.modes.push((name.to_owned(), before.mode));
    report.read.push((path.to_owned(), before));
    Ok(Some((value, entry)))
}

fn read_symlink(
    root: &Root,
    store: &Arc<Store>,
    path: &Path,
    repo_path: &RepoPath,
    stat: &Stat,
    report: &mut SnapshotReport,
) -> Result<Read, RepoError> {
    let name = repo_path.as_internal_file_string();
    let target = match root.read_link(path) {
        Ok(target) => target,
        Err(_) => return Ok(None),
    };
    let Ok(target) = String::from_utf8(target) else {
        report
            .skipped
            .push((name.to_owned(), "its target is not valid UTF-8".into()));
        return Ok(None);
    };
    let id = block_on(store.write_symlink(repo_path, &target)).map_err(RepoError::jj)?;
    report.read.push((path.to_owned(), *stat));
    Ok(Some((
        Merge::normal(TreeValue::Symlink(id)),
        Entry::seen(EntryKind::Symlink, stat),
    )))
}

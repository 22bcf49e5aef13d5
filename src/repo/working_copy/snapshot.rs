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
use jj_lib::conflicts::{
    self, ConflictMarkerStyle, MIN_CONFLICT_MARKER_LEN, MaterializedTreeValue,
    materialize_tree_value,
};
use jj_lib::merge::Merge;
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
    /// Regular files read, with their permission bits (a user may have changed them) and
    /// whether the tree now has them executable.
    pub modes: Vec<(String, u32, bool)>,
    /// Regular files a rescan found unchanged, with their permission bits and whether the
    /// tree has them executable (they should have the repo's mode for them: a mode update
    /// missed is made good).
    pub clean_modes: Vec<(String, u32, bool)>,
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
    style: ConflictMarkerStyle,
) -> Result<SnapshotReport, RepoError> {
    let mut report = SnapshotReport::default();
    let mut builder = crate::repo::tree_edit::TreeEdit::new(state.tree.clone());
    let mut changed_tree = false;
    let mut queue: std::collections::VecDeque<(PathBuf, bool)> = scan
        .changed
        .iter()
        .map(|p| (p.clone(), true))
        .chain(
            scan.rescan
                .iter()
                .filter(|p| !scan.changed.contains(*p))
                .map(|p| (p.clone(), false)),
        )
        .collect();
    let mut examined: BTreeSet<PathBuf> = BTreeSet::new();
    while let Some((path, force)) = queue.pop_front() {
        if !examined.insert(path.clone()) {
            continue;
        }
        let path = path.as_path();
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
        // Outside the workspace's patterns (a selective mount): the repo's file there is not
        // on disk, and whatever a user put there stays theirs.
        if repo_path.is_root() || !super::sparse::covers(&state.sparse, &repo_path) {
            continue;
        }
        let stat = root
            .lstat(path)
            .map_err(RepoError::io(root.path().join(path)))?;
        let value = match stat {
            Some(st) if !force && state.entry(&repo_path).is_some_and(|e| e.is_clean(&st)) => {
                if st.kind == Kind::File {
                    let executable = tree_executable(&path_value(&state.tree, &repo_path)?);
                    report
                        .clean_modes
                        .push((name.to_owned(), st.mode, executable));
                }
                continue;
            }
            Some(st) if st.kind == Kind::File => {
                // A hard link: its other names changed too (the mount reports only the one
                // that was written to).
                if st.nlink > 1 {
                    for other in state.paths_with_inode(st.ino) {
                        let other = PathBuf::from(other.as_internal_file_string());
                        if !examined.contains(&other) {
                            queue.push_back((other, true));
                        }
                    }
                }
                read_file(state, root, store, path, &repo_path, style, &mut report)?
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
                // A file where a folder was (or the reverse): what the state still holds
                // under it, or at its parent, cannot be on disk any more.
                let inside: Vec<RepoPathBuf> = state
                    .paths_under(&repo_path)
                    .filter(|p| **p != repo_path)
                    .cloned()
                    .collect();
                for gone in inside.into_iter().chain(file_parents(state, &repo_path)) {
                    state.entries.remove(&gone);
                    builder.remove(gone.clone());
                    report
                        .removed
                        .push(gone.as_internal_file_string().to_owned());
                    changed_tree = true;
                    state.dirty = true;
                }
                if path_value(&state.tree, &repo_path)? != tree_value {
                    builder.set(repo_path.clone(), tree_value);
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
                    builder.remove(repo_path);
                    changed_tree = true;
                }
            }
        }
    }
    if changed_tree {
        state.tree = block_on(builder.write()).map_err(RepoError::jj)?;
        state.dirty = true;
    }
    tracing::debug!(
        root = %root.path().display(),
        "snapshot of {} path(s): read {:?}, removed {:?}",
        scan.len(),
        report.read.iter().map(|(p, _)| p).collect::<Vec<_>>(),
        report.removed
    );
    Ok(report)
}

/// Whether a tree value is an executable file. For a conflict: what its sides' merge says,
/// or, when that is itself a conflict, executable if any side is (jjfs writes a conflict
/// with this bit in every mount).
pub(crate) fn tree_executable(value: &Merge<Option<TreeValue>>) -> bool {
    match value.as_normal() {
        Some(TreeValue::File { executable, .. }) => *executable,
        _ => value
            .to_executable_merge()
            .as_ref()
            .and_then(conflicts::resolve_file_executable)
            .unwrap_or_else(|| {
                value.adds().any(|v| {
                    matches!(
                        v,
                        Some(TreeValue::File {
                            executable: true,
                            ..
                        })
                    )
                })
            }),
    }
}

/// The parents of `path` that the state tracks as files (a folder now stands there).
fn file_parents(state: &WcState, path: &RepoPath) -> Vec<RepoPathBuf> {
    path.ancestors()
        .skip(1)
        .filter(|p| !p.is_root() && state.entry(p).is_some())
        .map(RepoPath::to_owned)
        .collect()
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
    state: &mut WcState,
    root: &Root,
    store: &Arc<Store>,
    path: &Path,
    repo_path: &RepoPath,
    style: ConflictMarkerStyle,
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
    let canonical = super::canonical(&current);
    let value = if let Some(old_file_ids) = current
        .as_resolved()
        .is_none()
        .then(|| canonical.to_file_merge())
        .flatten()
    {
        // A materialized conflict (jjfs writes it in canonical side order): parse its
        // markers back into the conflict.
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
        let value = if new_ids == old_file_ids {
            current.clone()
        } else {
            match new_ids.into_resolved() {
                Ok(Some(id)) => Merge::normal(TreeValue::File {
                    id,
                    executable,
                    copy_id: CopyId::placeholder(),
                }),
                Ok(None) => Merge::absent(),
                Err(new_ids) => canonical.with_new_file_ids(&new_ids),
            }
        };
        // Still a conflict, but not shown as jjfs shows it: written again at the next
        // check-out, so that every mount has the same text.
        if !value.is_resolved()
            && let Ok(MaterializedTreeValue::FileConflict(file)) = block_on(materialize_tree_value(
                store,
                repo_path,
                super::canonical(&value),
                &jj_lib::conflict_labels::ConflictLabels::unlabeled(),
            ))
            && super::checkout::conflict_text(&file, store, style).0 != contents
        {
            state.rewrite.insert(repo_path.to_owned());
        }
        value
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
    // A conflict keeps its sides' executable bits whatever the file's mode says: the entry
    // records the tree's bit, which is the one mode updates apply.
    let mut entry = Entry::seen(
        EntryKind::File {
            executable: tree_executable(&value),
        },
        &before,
    );
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
    report
        .modes
        .push((name.to_owned(), before.mode, tree_executable(&value)));
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

//! Writing a new tree into a workspace's files: the difference between the tree the files
//! hold (the state's) and the target, applied through the workspace's `Files` (through its
//! mount, or into a plain directory), then recorded in the state.
//!
//! Unlike jj's own check-out, which works by path, removes a file before writing its new
//! version and does not check whether a file changed before overwriting it, every write here
//! is confined beneath the workspace (no symlink is ever followed), replaces a file whole
//! (the old file stays if the write fails), gives the file its mode from the repo's mode
//! table, and is refused when a user changed the file after the step looked at it (the step
//! is retried and the edits merge). Files that only moved are renamed, so watchers see a
//! rename.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use futures::{AsyncRead, StreamExt as _};
use jj_lib::backend::{MergedTreeValueExt as _, TreeValue};
use jj_lib::conflicts::{
    ConflictMarkerStyle, ConflictMaterializeOptions, MaterializedTreeValue,
    choose_materialized_conflict_marker_len, materialize_merge_result_to_bytes,
    materialize_tree_value,
};
use jj_lib::matchers::PrefixMatcher;
use jj_lib::merged_tree::MergedTree;
use jj_lib::repo_path::RepoPathBuf;
use jj_lib::store::Store;

use super::state::{Entry, EntryKind, WcState};
use crate::files::{Expect, Files, Kind, Root, Stat, WriteError};
use crate::modes::ModeTable;
use crate::repo::{RepoError, block_on};

/// What a check-out needs besides the state and the target.
pub struct CheckoutContext<'a> {
    pub store: &'a Arc<Store>,
    /// Where the workspace's files are written.
    pub files: &'a dyn Files,
    /// Where snapshots read them (the backing directory of a mount): the state records
    /// the files as seen there.
    pub state_root: &'a Root,
    pub modes: &'a ModeTable,
    /// The mode of files no mount has told a mode for.
    pub default_mode: u32,
    pub marker_style: ConflictMarkerStyle,
    /// Files whose mode changed elsewhere (a chmod, no content change), with their new mode.
    pub mode_updates: &'a [(PathBuf, u32)],
    /// Files a user holds open for writing: never touched.
    pub held: &'a [PathBuf],
}

/// What a check-out did.
#[derive(Debug, Default)]
pub struct CheckoutReport {
    /// Paths written, moved or removed, as they look now (None: gone).
    pub touched: Vec<(PathBuf, Option<Stat>)>,
}

/// A check-out that stopped; `touched` are the paths it changed before it did (their state
/// is unknown: snapshot them again).
#[derive(Debug)]
pub struct CheckoutFailed {
    pub error: RepoError,
    pub touched: Vec<PathBuf>,
}

struct Change {
    path: RepoPathBuf,
    before: jj_lib::merge::Merge<Option<TreeValue>>,
    after: jj_lib::merge::Merge<Option<TreeValue>>,
}

/// Writes `target` into the workspace and records it in `state`. When it stops part way,
/// the state records exactly what was done (its tree is then neither the old one nor the
/// target, so the next step sees the workspace as stale and merges), and the error says
/// which paths were touched.
pub fn check_out(
    state: &mut WcState,
    target: &MergedTree,
    cx: &CheckoutContext<'_>,
) -> Result<CheckoutReport, CheckoutFailed> {
    let fail = |error: RepoError| CheckoutFailed {
        error,
        touched: Vec::new(),
    };
    let mut changes = diff(&state.tree, target, &state.sparse).map_err(fail)?;
    let mut rewrites = Vec::new();
    for path in std::mem::take(&mut state.rewrite) {
        if changes.iter().any(|c| c.path == path) {
            continue;
        }
        if cx.held.contains(&fs_path(&path)) {
            state.rewrite.insert(path);
            continue;
        }
        let after = crate::repo::working_copy::snapshot::path_value(target, &path).map_err(fail)?;
        if after.is_present() {
            let before = crate::repo::working_copy::snapshot::path_value(&state.tree, &path)
                .map_err(fail)?;
            rewrites.push(path.clone());
            changes.push(Change {
                path,
                before,
                after,
            });
        }
    }
    if changes.is_empty() && cx.mode_updates.is_empty() {
        if state.tree.tree_ids_and_labels() != target.tree_ids_and_labels() {
            state.tree = target.clone();
            state.dirty = true;
        }
        return Ok(CheckoutReport::default());
    }
    let replaced: HashSet<PathBuf> = changes
        .iter()
        .filter(|c| c.before.is_present() && c.after.is_present())
        .map(|c| fs_path(&c.path))
        .collect();
    cx.files.begin(replaced);
    let mut writer = Writer {
        cx,
        state,
        touched: Vec::new(),
        done: Vec::new(),
        emptied_dirs: BTreeSet::new(),
    };
    let applied = writer.apply(&changes);
    let ended = cx.files.end();
    tracing::debug!(
        root = %cx.files.root().path().display(),
        "check-out: {} change(s) {:?}, held {:?}, done {:?}, result {:?} / {:?}",
        changes.len(),
        changes.iter().map(|c| c.path.as_internal_file_string()).collect::<Vec<_>>(),
        cx.held,
        writer.done.iter().map(|(p, w)| (p, w.is_some())).collect::<Vec<_>>(),
        applied.as_ref().err(),
        ended.as_ref().err()
    );
    let Writer {
        touched,
        done,
        emptied_dirs,
        ..
    } = writer;
    let error = match (applied, ended) {
        (Ok(()), Ok(())) => None,
        // The mount's verdict first: a tripped update is a Busy, whatever failed after it.
        (_, Err(err)) | (Err(err), Ok(())) => Some(err),
    };
    if error.is_none() {
        for dir in emptied_dirs.iter().rev() {
            remove_empty_parents(cx.files, dir);
        }
    }
    let mut report = CheckoutReport::default();
    let mut partial = error
        .is_some()
        .then(|| crate::repo::tree_edit::TreeEdit::new(state.tree.clone()));
    for (path, written) in done {
        let stat = cx.state_root.lstat(&path).ok().flatten();
        let repo_path = repo_path_of(&path);
        match &written {
            Some(kind) => {
                // Written, then perhaps gone again before we looked (a user removed it:
                // the mount reports that): a placeholder makes the next snapshot look.
                let mut entry = match &stat {
                    Some(st) => Entry::seen(kind.kind, st),
                    None => Entry::placeholder(kind.kind),
                };
                entry.conflict_marker_len = kind.marker_len;
                state.entries.insert(repo_path.clone(), entry);
            }
            None => {
                state.entries.remove(&repo_path);
            }
        }
        if let Some(builder) = &mut partial {
            let value = match written {
                Some(_) => crate::repo::working_copy::snapshot::path_value(target, &repo_path)
                    .map_err(fail)?,
                None => jj_lib::merge::Merge::absent(),
            };
            builder.set(repo_path, value);
        }
        report.touched.push((path, stat));
    }
    state.dirty = true;
    if let (Some(err), Some(builder)) = (error, partial) {
        // Rewrites the check-out did not reach wait for the next one.
        for path in rewrites {
            if !report.touched.iter().any(|(p, _)| *p == fs_path(&path)) {
                state.rewrite.insert(path);
            }
        }
        state.tree = block_on(builder.write()).map_err(|e| fail(RepoError::jj(e)))?;
        return Err(CheckoutFailed {
            error: write_error(err),
            touched,
        });
    }
    // The folders the check-out created, emptied or removed: the watcher's events for them
    // are echoes too.
    let dirs: BTreeSet<PathBuf> = report
        .touched
        .iter()
        .flat_map(|(path, _)| path.ancestors().skip(1).map(Path::to_owned))
        .filter(|dir| !dir.as_os_str().is_empty())
        .collect();
    for dir in dirs {
        let stat = cx.state_root.lstat(&dir).ok().flatten();
        report.touched.push((dir, stat));
    }
    state.tree = target.clone();
    Ok(report)
}

/// What was written at a path, to record in its entry.
struct Written {
    kind: EntryKind,
    marker_len: Option<u32>,
}

struct Writer<'a, 'c> {
    cx: &'a CheckoutContext<'c>,
    state: &'a mut WcState,
    /// Every path the check-out tried to change, in order.
    touched: Vec<PathBuf>,
    /// What it did: paths written (with what) or removed (None), in order.
    done: Vec<(PathBuf, Option<Written>)>,
    /// Directories that lost a file: removed at the end if empty.
    emptied_dirs: BTreeSet<PathBuf>,
}

impl Writer<'_, '_> {
    fn apply(&mut self, changes: &[Change]) -> Result<(), WriteError> {
        let moved = self.move_renamed_files(changes)?;
        for change in changes {
            if moved.contains(&change.path) {
                continue;
            }
            self.apply_one(change)
                .map_err(|err| self.in_the_way(&change.path, err))?;
        }
        for (path, mode) in self.cx.mode_updates {
            if self.done.iter().any(|(done, _)| done == path) {
                continue;
            }
            let repo_path = repo_path_of(path);
            let Some(entry) = self.state.entry(&repo_path) else {
                continue;
            };
            let (kind, expect, marker_len) =
                (entry.kind, entry.expect(), entry.conflict_marker_len);
            self.touched.push(path.clone());
            self.cx.files.set_mode(path, *mode, expect)?;
            self.done
                .push((path.clone(), Some(Written { kind, marker_len })));
        }
        Ok(())
    }

    /// A write that found something else where the step saw (or made) a folder or a file:
    /// a user changed that part of the tree since the step looked. Nothing of theirs was
    /// touched; the path and the folders leading to it are read again by the next step,
    /// which merges.
    fn in_the_way(&mut self, path: &RepoPathBuf, err: WriteError) -> WriteError {
        let WriteError::Io { source, .. } = &err else {
            return err;
        };
        let in_the_way = matches!(
            source.raw_os_error(),
            Some(libc::ENOTDIR | libc::EISDIR | libc::EEXIST | libc::ENOTEMPTY)
        );
        if !in_the_way {
            return err;
        }
        let path = fs_path(path);
        let why = format!(
            "{} changed since the sync looked at it ({source})",
            path.display()
        );
        self.touched.extend(
            path.ancestors()
                .filter(|p| !p.as_os_str().is_empty())
                .map(Path::to_owned),
        );
        WriteError::Busy(why)
    }

    fn expect(&self, change: &Change) -> Expect {
        if change.before.is_absent() {
            return Expect::Absent;
        }
        self.state
            .entry(&change.path)
            .map_or(Expect::Unknown, Entry::expect)
    }

    fn apply_one(&mut self, change: &Change) -> Result<(), WriteError> {
        let path = fs_path(&change.path);
        let expect = self.expect(change);
        let name = change.path.as_internal_file_string();
        // Conflicts are written without their sides' labels, so that the same conflict is
        // the same text in every mount, whichever merge the labels came from.
        let materialized = block_on(materialize_tree_value(
            self.cx.store,
            &change.path,
            super::canonical(&change.after),
            &jj_lib::conflict_labels::ConflictLabels::unlabeled(),
        ))
        .map_err(|e| io_error(&path, e))?;
        match materialized {
            MaterializedTreeValue::Absent | MaterializedTreeValue::AccessDenied(_) => {
                if change.before.is_present() {
                    self.touched.push(path.clone());
                    self.cx.files.remove_file(&path, expect)?;
                    if let Some(parent) = path.parent() {
                        self.emptied_dirs.insert(parent.to_owned());
                    }
                    self.done.push((path, None));
                }
            }
            MaterializedTreeValue::File(mut file) => {
                let mode = self
                    .cx
                    .modes
                    .mode_for(name, file.executable, self.cx.default_mode);
                let kind = EntryKind::File {
                    executable: file.executable,
                };
                if self.only_mode_changed(change) {
                    self.touched.push(path.clone());
                    self.cx.files.set_mode(&path, mode, expect)?;
                } else {
                    self.prepare_place(&path)?;
                    self.touched.push(path.clone());
                    let mut reader = BlockingReader(&mut file.reader);
                    self.cx.files.write_file(&path, &mut reader, mode, expect)?;
                }
                self.done.push((
                    path,
                    Some(Written {
                        kind,
                        marker_len: None,
                    }),
                ));
            }
            MaterializedTreeValue::FileConflict(file) => {
                let (contents, marker_len) =
                    conflict_text(&file, self.cx.store, self.cx.marker_style);
                let executable =
                    crate::repo::working_copy::snapshot::tree_executable(&change.after);
                let mode = self
                    .cx
                    .modes
                    .mode_for(name, executable, self.cx.default_mode);
                self.prepare_place(&path)?;
                self.touched.push(path.clone());
                self.cx
                    .files
                    .write_file(&path, &mut &contents[..], mode, expect)?;
                self.done.push((
                    path,
                    Some(Written {
                        kind: EntryKind::File { executable },
                        marker_len: Some(marker_len as u32),
                    }),
                ));
            }
            MaterializedTreeValue::Symlink { target, .. } => {
                self.prepare_place(&path)?;
                self.touched.push(path.clone());
                self.cx
                    .files
                    .write_symlink(&path, target.as_bytes(), expect)?;
                self.done.push((
                    path,
                    Some(Written {
                        kind: EntryKind::Symlink,
                        marker_len: None,
                    }),
                ));
            }
            MaterializedTreeValue::OtherConflict { id, labels } => {
                // Conflicts between a file and a folder are resolved before they get here
                // (both sides kept, see `repo::step`); what is left (a symlink against a
                // file, say) is described in a plain file, as jj does.
                let contents = id.describe(&labels);
                self.prepare_place(&path)?;
                self.touched.push(path.clone());
                let mode = self.cx.modes.mode_for(name, false, self.cx.default_mode);
                self.cx
                    .files
                    .write_file(&path, &mut contents.as_bytes(), mode, expect)?;
                self.done.push((
                    path,
                    Some(Written {
                        kind: EntryKind::File { executable: false },
                        marker_len: None,
                    }),
                ));
            }
            MaterializedTreeValue::GitSubmodule(_) => {
                self.cx.files.make_dirs(&path)?;
                self.touched.push(path.clone());
                self.done.push((
                    path,
                    Some(Written {
                        kind: EntryKind::GitSubmodule,
                        marker_len: None,
                    }),
                ));
            }
            MaterializedTreeValue::Tree(_) => {}
        }
        Ok(())
    }

    /// The same content, only the executable bit differs: a chmod, not a new file.
    fn only_mode_changed(&self, change: &Change) -> bool {
        match (change.before.as_normal(), change.after.as_normal()) {
            (Some(TreeValue::File { id: a, .. }), Some(TreeValue::File { id: b, .. })) => {
                a == b && self.state.entry(&change.path).is_some()
            }
            _ => false,
        }
    }

    /// Makes room for a file at `path`: its parent folders exist, and an empty folder in its
    /// place (whose files this check-out removed) is gone.
    fn prepare_place(&mut self, path: &Path) -> Result<(), WriteError> {
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            self.cx.files.make_dirs(parent)?;
        }
        if let Ok(Some(st)) = self.cx.files.root().lstat(path)
            && st.kind == Kind::Dir
        {
            remove_empty_tree(self.cx.files, path);
        }
        Ok(())
    }

    /// Files that only moved (the same content and mode at a new path) are renamed, before
    /// anything else is written. Returns the paths handled.
    fn move_renamed_files(
        &mut self,
        changes: &[Change],
    ) -> Result<HashSet<RepoPathBuf>, WriteError> {
        let mut removed: HashMap<&TreeValue, Vec<&Change>> = HashMap::new();
        for c in changes.iter().filter(|c| c.after.is_absent()) {
            if let Some(value @ TreeValue::File { .. }) = c.before.as_normal()
                && self.state.entry(&c.path).is_some()
            {
                removed.entry(value).or_default().push(c);
            }
        }
        let mut moved = HashSet::new();
        if removed.is_empty() {
            return Ok(moved);
        }
        for c in changes.iter().filter(|c| c.before.is_absent()) {
            let Some(value) = c.after.as_normal() else {
                continue;
            };
            let Some(from) = removed.get_mut(value).and_then(Vec::pop) else {
                continue;
            };
            let (from_path, to_path) = (fs_path(&from.path), fs_path(&c.path));
            if let Some(parent) = to_path.parent()
                && !parent.as_os_str().is_empty()
                && self.cx.files.make_dirs(parent).is_err()
            {
                continue;
            }
            if !self.cx.files.rename(&from_path, &to_path)? {
                continue;
            }
            let executable = matches!(
                value,
                TreeValue::File {
                    executable: true,
                    ..
                }
            );
            // The moved file keeps its old mode; it gets the one known for its new name.
            let mode = self.cx.modes.mode_for(
                c.path.as_internal_file_string(),
                executable,
                self.cx.default_mode,
            );
            if let Ok(Some(st)) = self.cx.files.root().lstat(&to_path)
                && st.mode & crate::modes::TRAVELLING_BITS != mode
            {
                self.cx.files.set_mode(&to_path, mode, Expect::Unknown)?;
            }
            self.touched.push(from_path.clone());
            self.touched.push(to_path.clone());
            self.done.push((from_path.clone(), None));
            self.done.push((
                to_path,
                Some(Written {
                    kind: EntryKind::File { executable },
                    marker_len: None,
                }),
            ));
            if let Some(parent) = from_path.parent() {
                self.emptied_dirs.insert(parent.to_owned());
            }
            moved.insert(from.path.clone());
            moved.insert(c.path.clone());
        }
        Ok(moved)
    }
}

/// A file conflict as jjfs writes it into a mount (and expects to find it): jj's markers,
/// without labels, with a marker length that no line of the sides is mistaken for.
pub(crate) fn conflict_text(
    file: &jj_lib::conflicts::MaterializedFileConflictValue,
    store: &Store,
    style: ConflictMarkerStyle,
) -> (Vec<u8>, usize) {
    let marker_len = choose_materialized_conflict_marker_len(&file.contents);
    let options = ConflictMaterializeOptions {
        marker_style: style,
        marker_len: Some(marker_len),
        merge: store.merge_options().clone(),
    };
    let labels = jj_lib::conflict_labels::ConflictLabels::unlabeled();
    let text = materialize_merge_result_to_bytes(&file.contents, &labels, &options);
    (text.to_vec(), marker_len)
}

/// Removes `dir` if it is an empty folder tree (folders holding only empty folders).
fn remove_empty_tree(files: &dyn Files, dir: &Path) {
    if let Ok(entries) = files.root().read_dir(dir) {
        for entry in entries {
            if entry.kind == Some(Kind::Dir) {
                remove_empty_tree(files, &dir.join(&entry.name));
            }
        }
    }
    files.remove_empty_dir(dir);
}

/// Removes `dir` and its parents while they are empty (a check-out removes the folders it
/// emptied, as jj does).
fn remove_empty_parents(files: &dyn Files, dir: &Path) {
    let mut current = Some(dir);
    while let Some(dir) = current {
        if dir.as_os_str().is_empty() || !files.remove_empty_dir(dir) {
            break;
        }
        current = dir.parent();
    }
}

/// The paths whose values differ between two trees, files in a removed folder before a
/// file that replaces it; only within the sparse patterns.
fn diff(
    old: &MergedTree,
    new: &MergedTree,
    sparse: &[RepoPathBuf],
) -> Result<Vec<Change>, RepoError> {
    if old.tree_ids() == new.tree_ids() {
        return Ok(Vec::new());
    }
    let matcher = PrefixMatcher::new(sparse);
    let entries: Vec<_> = block_on(old.diff_stream_for_file_system(new, &matcher).collect());
    let mut changes = Vec::with_capacity(entries.len());
    for entry in entries {
        let values = entry.values.map_err(RepoError::jj)?;
        // The same value in another shape (a conflict padded to more sides, or with its
        // sides in another order) is no change.
        if super::canonical(&values.before) == super::canonical(&values.after) {
            continue;
        }
        changes.push(Change {
            path: entry.path,
            before: values.before,
            after: values.after,
        });
    }
    Ok(changes)
}

pub(crate) fn fs_path(path: &jj_lib::repo_path::RepoPath) -> PathBuf {
    PathBuf::from(path.as_internal_file_string())
}

fn repo_path_of(path: &Path) -> RepoPathBuf {
    RepoPathBuf::from_internal_string(path.to_string_lossy().into_owned())
        .unwrap_or_else(|_| RepoPathBuf::root())
}

fn io_error(path: &Path, err: impl std::fmt::Display) -> WriteError {
    WriteError::Io {
        path: path.to_owned(),
        source: std::io::Error::other(err.to_string()),
    }
}

fn write_error(err: WriteError) -> RepoError {
    match err {
        WriteError::Busy(why) => RepoError::Busy(why),
        WriteError::Unsafe { path } => RepoError::Unsafe(path.display().to_string()),
        WriteError::Io { path, source } => RepoError::Io { path, source },
    }
}

/// jj's async file reader, read synchronously (the writer's thread drives it).
struct BlockingReader<'a>(&'a mut Pin<Box<dyn AsyncRead + Send>>);

impl Read for BlockingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        block_on(futures::AsyncReadExt::read(&mut self.0, buf))
    }
}

//! What a workspace's files are believed to be on disk: the tree they hold and, per file,
//! the stat seen when it was last read or written. Kept in memory between steps and saved
//! in jj's own format (`.jj/working_copy/tree_state`) so that the jj CLI reads the same
//! state; the file's identity tells when the jj CLI wrote it meanwhile (then it is read
//! again).
//!
//! jj records a file's type, size and mtime. jjfs also keeps its inode and ctime (in a
//! side table beside the repo, `jjfs/stat/<workspace>`), so that a full rescan notices
//! content replaced with the same size and mtime (`cp -p`, `tar x`, a rename swap): a user
//! cannot set a ctime back.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jj_lib::backend::TreeId;
use jj_lib::conflict_labels::ConflictLabels;
use jj_lib::merge::MergeBuilder;
use jj_lib::merged_tree::MergedTree;
use jj_lib::object_id::ObjectId as _;
use jj_lib::protos::local_working_copy as proto;
use jj_lib::repo_path::{RepoPath, RepoPathBuf};
use jj_lib::store::Store;
use prost::Message as _;

use crate::files::Stat;
use crate::repo::RepoError;

/// One tracked path as it was last seen on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: EntryKind,
    pub size: u64,
    pub mtime_millis: i64,
    /// The marker length of the conflict written there, if it holds one.
    pub conflict_marker_len: Option<u32>,
    /// jjfs's own: inode and ctime (0 when not known, which forces a re-read on rescans).
    pub ino: u64,
    pub ctime_ns: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File { executable: bool },
    Symlink,
    GitSubmodule,
}

impl Entry {
    /// The entry of a file or symlink just read or written with this stat.
    pub fn seen(kind: EntryKind, stat: &Stat) -> Self {
        Self {
            kind,
            size: stat.size,
            mtime_millis: stat.mtime_millis(),
            conflict_marker_len: None,
            ino: stat.ino,
            ctime_ns: stat.ctime_ns,
        }
    }

    /// An entry that matches no file on disk: the next snapshot of the path reads it.
    pub fn placeholder(kind: EntryKind) -> Self {
        Self {
            kind,
            size: 0,
            mtime_millis: 0,
            conflict_marker_len: None,
            ino: 0,
            ctime_ns: 0,
        }
    }

    /// Whether `stat` shows the file unchanged since this entry was recorded.
    pub fn is_clean(&self, stat: &Stat) -> bool {
        let kind_matches = match self.kind {
            EntryKind::File { executable } => {
                stat.kind == crate::files::Kind::File && stat.is_executable() == executable
            }
            EntryKind::Symlink => stat.kind == crate::files::Kind::Symlink,
            EntryKind::GitSubmodule => true,
        };
        kind_matches
            && self.size == stat.size
            && self.mtime_millis == stat.mtime_millis()
            && self.ino != 0
            && self.ino == stat.ino
            && self.ctime_ns != 0
            && self.ctime_ns == stat.ctime_ns
    }

    /// What the check-out expects to find before replacing it.
    pub fn expect(&self) -> crate::files::Expect {
        crate::files::Expect::Present {
            size: self.size,
            mtime_millis: self.mtime_millis,
            ino: self.ino,
            ctime_ns: self.ctime_ns,
        }
    }
}

/// The identity of the `tree_state` file as last read or written.
type FileIdentity = (u64, i64, u64);

pub struct WcState {
    pub tree: MergedTree,
    pub entries: BTreeMap<RepoPathBuf, Entry>,
    /// jj's sparse patterns (path prefixes); the root for a full workspace.
    pub sparse: Vec<RepoPathBuf>,
    state_dir: PathBuf,
    side_path: PathBuf,
    identity: Option<FileIdentity>,
    /// Changed in memory since it was saved.
    pub dirty: bool,
    /// Paths whose file shows their conflict in another form than jjfs writes it (sides in
    /// another order, other markers): the next check-out writes them again, so that every
    /// mount shows the same text.
    pub rewrite: std::collections::BTreeSet<RepoPathBuf>,
}

fn identity(path: &Path) -> Option<FileIdentity> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    Some((
        meta.ino(),
        meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        meta.size(),
    ))
}

impl WcState {
    /// Reads the state of the workspace whose jj state is in `state_dir`
    /// (`.jj/working_copy`), with jjfs's side table at `side_path`.
    pub fn load(store: &Arc<Store>, state_dir: &Path, side_path: &Path) -> Result<Self, RepoError> {
        let path = state_dir.join("tree_state");
        let identity = identity(&path);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(err) => return Err(RepoError::io(&path)(err)),
        };
        let state = proto::TreeState::decode(&*bytes)
            .map_err(|e| RepoError::Jj(format!("{}: {e}", path.display())))?;
        #[allow(deprecated)]
        let tree = if state.tree_ids.is_empty() {
            if state.legacy_tree_id.is_empty() {
                store.empty_merged_tree()
            } else {
                MergedTree::resolved(store.clone(), TreeId::new(state.legacy_tree_id.clone()))
            }
        } else {
            let ids: MergeBuilder<TreeId> = state
                .tree_ids
                .iter()
                .map(|id| TreeId::new(id.clone()))
                .collect();
            MergedTree::new(
                store.clone(),
                ids.build(),
                ConflictLabels::from_vec(state.conflict_labels.clone()),
            )
        };
        let side = read_side_table(side_path, identity);
        let mut entries = BTreeMap::new();
        for entry in state.file_states {
            let Ok(repo_path) = RepoPathBuf::from_internal_string(entry.path) else {
                continue;
            };
            let file_state = entry.state.unwrap_or_default();
            let kind = match file_state.file_type() {
                proto::FileType::Symlink => EntryKind::Symlink,
                proto::FileType::Executable => EntryKind::File { executable: true },
                proto::FileType::GitSubmodule => EntryKind::GitSubmodule,
                _ => EntryKind::File { executable: false },
            };
            let (ino, ctime_ns) = side
                .get(repo_path.as_internal_file_string())
                .copied()
                .unwrap_or((0, 0));
            entries.insert(
                repo_path,
                Entry {
                    kind,
                    size: file_state.size,
                    mtime_millis: file_state.mtime_millis_since_epoch,
                    conflict_marker_len: file_state
                        .materialized_conflict_data
                        .map(|d| d.conflict_marker_len),
                    ino,
                    ctime_ns,
                },
            );
        }
        let sparse = match state.sparse_patterns {
            Some(patterns) => patterns
                .prefixes
                .into_iter()
                .filter_map(|p| RepoPathBuf::from_internal_string(p).ok())
                .collect(),
            None => vec![RepoPathBuf::root()],
        };
        Ok(Self {
            tree,
            entries,
            sparse,
            state_dir: state_dir.to_owned(),
            side_path: side_path.to_owned(),
            identity,
            dirty: false,
            rewrite: Default::default(),
        })
    }

    /// Whether the file on disk is still the one this state was read from or written to
    /// (false when the jj CLI wrote it meanwhile).
    pub fn is_current(&self) -> bool {
        identity(&self.state_dir.join("tree_state")) == self.identity
    }

    /// Saves the state in jj's format (atomically, synced as jj syncs it), then the side
    /// table (not synced: after a crash it is either whole, or ignored for not naming the
    /// tree_state it belongs to, or reads as unknown inodes, which only costs a re-read).
    pub fn save(&mut self) -> Result<(), RepoError> {
        let started = std::time::Instant::now();
        let mut state = proto::TreeState {
            tree_ids: self
                .tree
                .tree_ids()
                .iter()
                .map(|id| id.to_bytes())
                .collect(),
            conflict_labels: self.tree.labels().as_slice().to_owned(),
            is_file_states_sorted: true,
            sparse_patterns: Some(proto::SparsePatterns {
                prefixes: self
                    .sparse
                    .iter()
                    .map(|p| p.as_internal_file_string().to_owned())
                    .collect(),
            }),
            ..Default::default()
        };
        state.file_states = self
            .entries
            .iter()
            .map(|(path, entry)| proto::FileStateEntry {
                path: path.as_internal_file_string().to_owned(),
                state: Some(to_proto(entry)),
            })
            .collect();
        let path = self.state_dir.join("tree_state");
        crate::atomic_file::write_data(&path, &state.encode_to_vec())
            .map_err(RepoError::io(&path))?;
        self.identity = identity(&path);
        write_side_table(&self.side_path, self.identity, &self.entries)
            .map_err(RepoError::io(&self.side_path))?;
        self.dirty = false;
        tracing::debug!(
            entries = self.entries.len(),
            ms = started.elapsed().as_secs_f64() * 1e3,
            "saved a working-copy state"
        );
        Ok(())
    }

    pub fn entry(&self, path: &RepoPath) -> Option<&Entry> {
        self.entries.get(path)
    }

    /// Tracked paths under `dir` (every path for the root).
    pub fn paths_under<'a>(
        &'a self,
        dir: &'a RepoPath,
    ) -> impl Iterator<Item = &'a RepoPathBuf> + 'a {
        self.entries
            .range::<RepoPath, _>((std::ops::Bound::Included(dir), std::ops::Bound::Unbounded))
            .take_while(move |(path, _)| path.starts_with(dir))
            .map(|(path, _)| path)
    }

    /// Tracked paths with inode `ino` (the other names of a hard-linked file).
    pub fn paths_with_inode(&self, ino: u64) -> Vec<RepoPathBuf> {
        if ino == 0 {
            return Vec::new();
        }
        self.entries
            .iter()
            .filter(|(_, e)| e.ino == ino)
            .map(|(p, _)| p.clone())
            .collect()
    }
}

fn to_proto(entry: &Entry) -> proto::FileState {
    let file_type = match entry.kind {
        EntryKind::File { executable: false } => proto::FileType::Normal,
        EntryKind::File { executable: true } => proto::FileType::Executable,
        EntryKind::Symlink => proto::FileType::Symlink,
        EntryKind::GitSubmodule => proto::FileType::GitSubmodule,
    };
    let mut state = proto::FileState {
        mtime_millis_since_epoch: entry.mtime_millis,
        size: entry.size,
        materialized_conflict_data: entry.conflict_marker_len.map(|len| {
            proto::MaterializedConflictData {
                conflict_marker_len: len,
            }
        }),
        ..Default::default()
    };
    state.set_file_type(file_type);
    state
}

/// The side table: a header with the tree_state identity it belongs to, then one line per
/// entry with a known inode: `ino ctime path` (paths are UTF-8 repo paths without newlines
/// in practice; a path with a newline is simply left out and re-read on rescans).
fn write_side_table(
    path: &Path,
    identity: Option<FileIdentity>,
    entries: &BTreeMap<RepoPathBuf, Entry>,
) -> std::io::Result<()> {
    let Some((ino, mtime, size)) = identity else {
        return Ok(());
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut out = Vec::with_capacity(entries.len() * 48);
    writeln!(out, "jjfs-stat 1 {ino} {mtime} {size}")?;
    for (repo_path, entry) in entries {
        let p = repo_path.as_internal_file_string();
        if entry.ino != 0 && entry.ctime_ns != 0 && !p.contains('\n') {
            writeln!(out, "{} {} {p}", entry.ino, entry.ctime_ns)?;
        }
    }
    crate::atomic_file::write_unsynced(path, &out)
}

fn read_side_table(
    path: &Path,
    identity: Option<FileIdentity>,
) -> std::collections::HashMap<String, (u64, i64)> {
    let mut table = std::collections::HashMap::new();
    let Ok(text) = std::fs::read_to_string(path) else {
        return table;
    };
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let expected = identity.map(|(ino, mtime, size)| format!("jjfs-stat 1 {ino} {mtime} {size}"));
    // Written for another tree_state (the jj CLI saved one since): trust nothing in it.
    if expected.as_deref() != Some(header) {
        return table;
    }
    for line in lines {
        let mut parts = line.splitn(3, ' ');
        if let (Some(ino), Some(ctime), Some(p)) = (parts.next(), parts.next(), parts.next())
            && let (Ok(ino), Ok(ctime)) = (ino.parse(), ctime.parse())
        {
            table.insert(p.to_owned(), (ino, ctime));
        }
    }
    table
}

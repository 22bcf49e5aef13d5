//! One jjfs repo as the daemon holds it: a single `RepoLoader` (so all its workspaces share
//! one store, as jj-lib requires), the trunk bookmark's name, and the repo loaded at its
//! latest operation. Used only from the repo's sync actor thread.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jj_lib::commit::Commit;
use jj_lib::conflicts::ConflictMarkerStyle;
use jj_lib::gitignore::GitIgnoreFile;
use jj_lib::local_working_copy::TreeStateSettings;
use jj_lib::matchers::PrefixMatcher;
use jj_lib::merged_tree::MergedTree;
use jj_lib::object_id::ObjectId as _;
use jj_lib::op_store::RefTarget;
use jj_lib::ref_name::{RefName, WorkspaceName, WorkspaceNameBuf};
use jj_lib::repo::{ReadonlyRepo, Repo as _, RepoLoader};
use jj_lib::repo_path::{RepoPath, RepoPathBuf};
use jj_lib::settings::UserSettings;
use jj_lib::workspace::Workspace;
use jj_lib::workspace_store::{SimpleWorkspaceStore, WorkspaceStore as _};
use uuid::Uuid;

use super::create::{git_dir, load_repo, repo_dir};
use super::working_copy::{CheckoutContext, LockedWorkingCopy, StatePaths, WcState};
use super::{RepoError, block_on};
use crate::files::{PlainFiles, Root};
use crate::modes::ModeTable;

pub struct Repository {
    pub name: String,
    root: PathBuf,
    pub(super) loader: RepoLoader,
    pub(super) settings: UserSettings,
    pub(super) conflict_marker_style: ConflictMarkerStyle,
    pub(super) repo: Arc<ReadonlyRepo>,
    pub(super) trunk: String,
    /// Trunk's commit and how many changes it holds (see `history_len`).
    pub(super) history_len_cache: Option<(jj_lib::backend::CommitId, u64)>,
    /// Trunk's commit and its conflicted paths (see `trunk_conflicts`).
    conflicts_cache: Option<(jj_lib::backend::CommitId, Vec<String>)>,
    /// Each workspace's working-copy state, kept between steps.
    pub(super) states: std::collections::HashMap<Uuid, WcState>,
    /// Permission bits of the repo's files (see `modes`).
    pub(super) modes: ModeTable,
    /// The mode of files that arrive with no mode known (the `file_mode` setting).
    pub(super) default_mode: u32,
    /// Mode changes each workspace has yet to get.
    pub(super) pending_modes: std::collections::HashMap<Uuid, super::step::PendingModes>,
}

/// `repos/<name>/jjfs`: jjfs's own per-repo state, beside jj's (never pushed).
pub fn jjfs_dir(root: &Path) -> PathBuf {
    root.join("jjfs")
}

/// The working-copy type recorded in a direct mount's state folder. Its files are elsewhere,
/// so the jj CLI must not take the (empty) state folder for its working copy: it would
/// record every file as deleted. jj refuses a working copy of a type it does not know.
pub const DIRECT_WORKING_COPY_TYPE: &str = "jjfs-direct";

/// Where a direct mount's files go when its workspace is created.
#[derive(Debug, Clone, Copy)]
pub struct DirectFiles<'a> {
    /// The mount's folder.
    pub root: &'a Path,
    /// Its files are adopted (recorded as the mount's first change) instead of trunk's
    /// files being written into it.
    pub adopt: bool,
}

/// `jjfs/closed`: the commit each closed direct mount's folder was last synced to, by path.
fn closed_folders_file(root: &Path) -> PathBuf {
    jjfs_dir(root).join("closed")
}

/// Makes a new workspace's state believe its folder holds `tree` (as last synced there),
/// with no file's stat known: the first snapshot reads every file and finds what changed.
fn believe_on_disk(state: &mut WcState, tree: &MergedTree) {
    use super::working_copy::state::{Entry, EntryKind};
    use jj_lib::backend::TreeValue;
    state.entries.clear();
    for (path, value) in tree.entries() {
        let kind = match value.ok().and_then(|v| v.into_resolved().ok()).flatten() {
            Some(TreeValue::Symlink(_)) => EntryKind::Symlink,
            Some(TreeValue::GitSubmodule(_)) => EntryKind::GitSubmodule,
            Some(TreeValue::File { executable, .. }) => EntryKind::File { executable },
            _ => EntryKind::File { executable: false },
        };
        state.entries.insert(path, Entry::placeholder(kind));
    }
    state.tree = tree.clone();
    state.dirty = true;
}

/// Marks a state folder as a direct mount's (see `DIRECT_WORKING_COPY_TYPE`).
fn mark_direct(state_dir: &Path) -> Result<(), RepoError> {
    let path = state_dir.join(".jj").join("working_copy").join("type");
    std::fs::write(&path, DIRECT_WORKING_COPY_TYPE).map_err(RepoError::io(&path))
}

/// The jj workspace name of a mount.
pub fn workspace_name(id: &Uuid) -> WorkspaceNameBuf {
    WorkspaceNameBuf::from(id.to_string())
}

impl Repository {
    pub fn open(
        name: &str,
        root: &Path,
        settings: &UserSettings,
        trunk: &str,
    ) -> Result<Self, RepoError> {
        let loader = load_repo(root, settings)?;
        let repo = block_on(loader.load_at_head()).map_err(RepoError::jj)?;
        let tree_settings =
            TreeStateSettings::try_from_user_settings(settings).map_err(RepoError::jj)?;
        Ok(Self {
            name: name.to_owned(),
            root: root.to_owned(),
            loader,
            settings: settings.clone(),
            conflict_marker_style: tree_settings.conflict_marker_style,
            repo,
            trunk: trunk.to_owned(),
            history_len_cache: None,
            conflicts_cache: None,
            states: Default::default(),
            modes: ModeTable::load(&jjfs_dir(root).join("modes")),
            default_mode: crate::modes::default_file_mode(),
            pending_modes: Default::default(),
        })
    }

    /// Drops the working-copy states kept in memory: they are read again from disk (after
    /// something went wrong in the middle of a step).
    pub fn forget_states(&mut self) {
        self.states.clear();
    }

    /// Sets the mode of files that arrive with no mode known.
    pub fn set_default_mode(&mut self, mode: u32) {
        self.default_mode = mode & crate::modes::TRAVELLING_BITS;
    }

    /// Where workspace `id` keeps its state, given its state folder (the backing workspace
    /// of a mount, or a direct mount's state folder).
    pub fn state_paths(&self, id: &Uuid, workspace: &Path) -> StatePaths {
        StatePaths {
            dir: workspace.join(".jj").join("working_copy"),
            side: jjfs_dir(&self.root).join("stat").join(id.to_string()),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn trunk_name(&self) -> &str {
        &self.trunk
    }

    pub fn set_trunk(&mut self, trunk: &str) {
        self.trunk = trunk.to_owned();
    }

    pub fn settings(&self) -> &UserSettings {
        &self.settings
    }

    /// How conflicts are written into files (jj's `ui.conflict-marker-style`).
    pub(super) fn conflict_marker_style(&self) -> ConflictMarkerStyle {
        self.conflict_marker_style
    }

    /// The repo at its latest operation, merging concurrent operations (from the jj CLI,
    /// or a fetch) on the way. Cheap when nothing else wrote.
    pub fn head(&mut self) -> Result<Arc<ReadonlyRepo>, RepoError> {
        let heads = block_on(self.loader.op_heads_store().get_op_heads()).map_err(RepoError::jj)?;
        if heads.len() != 1 || &heads[0] != self.repo.op_id() {
            self.repo = block_on(self.loader.load_at_head()).map_err(RepoError::jj)?;
        }
        Ok(self.repo.clone())
    }

    /// Whether operations were written since the repo was last loaded (by the jj CLI, or
    /// another process).
    pub fn has_new_operations(&self) -> bool {
        match block_on(self.loader.op_heads_store().get_op_heads()) {
            Ok(heads) => heads.len() != 1 || &heads[0] != self.repo.op_id(),
            Err(_) => true,
        }
    }

    /// Where jj keeps the operation heads (watched for operations made elsewhere).
    pub fn op_heads_dir(&self) -> PathBuf {
        repo_dir(&self.root).join("op_heads").join("heads")
    }

    /// The latest loaded repo, without checking for newer operations.
    pub fn current(&self) -> &Arc<ReadonlyRepo> {
        &self.repo
    }

    pub(super) fn set_current(&mut self, repo: Arc<ReadonlyRepo>) {
        self.repo = repo;
    }

    /// Ignore rules every snapshot applies besides the repo's `.gitignore` files: git's
    /// `info/exclude`, where jjfs keeps its `ignore` setting so the jj CLI agrees.
    pub fn base_ignores(&self) -> Arc<GitIgnoreFile> {
        let exclude = git_dir(&self.root).join("info").join("exclude");
        GitIgnoreFile::empty()
            .chain_with_file(RepoPath::root(), exclude)
            .unwrap_or_else(|_| GitIgnoreFile::empty())
    }

    /// Where trunk points in the latest loaded repo (hex; None if missing or conflicted).
    pub fn trunk_id(&self) -> Option<String> {
        use jj_lib::object_id::ObjectId as _;
        self.repo
            .view()
            .get_local_bookmark(jj_lib::ref_name::RefName::new(&self.trunk))
            .as_normal()
            .map(|id| id.hex())
    }

    /// The commit trunk points at (None if the bookmark is missing or conflicted).
    pub fn trunk_commit(&self, repo: &ReadonlyRepo) -> Result<Option<Commit>, RepoError> {
        super::create::trunk_commit(repo, &self.trunk)
    }

    /// Creates the jj workspace of a new mount at `backing` (which must not exist), with a
    /// working-copy commit on trunk, and checks trunk's files out into it.
    pub fn add_workspace(
        &mut self,
        id: &Uuid,
        backing: &Path,
        owner: Option<crate::files::Owner>,
    ) -> Result<(), RepoError> {
        self.add_workspace_with(id, backing, None, owner, &[String::new()])
    }

    /// Creates the jj workspace of a new mount whose state folder is `state_dir` (which
    /// must not exist), with a working-copy commit on trunk. Its files are written into
    /// `state_dir` itself (a FUSE mount's backing workspace), or into `direct`'s folder;
    /// only the files within `sparse` (jj's sparse patterns: a selective mount).
    pub fn add_workspace_with(
        &mut self,
        id: &Uuid,
        state_dir: &Path,
        direct: Option<DirectFiles<'_>>,
        owner: Option<crate::files::Owner>,
        sparse: &[String],
    ) -> Result<(), RepoError> {
        let sparse = super::working_copy::sparse::patterns(sparse);
        let repo = self.head()?;
        let trunk = self.trunk_commit(&repo)?.ok_or_else(|| {
            RepoError::Jj(format!(
                "the trunk bookmark {} does not point at one commit",
                self.trunk
            ))
        })?;
        std::fs::create_dir_all(state_dir).map_err(RepoError::io(state_dir))?;
        let files_dir = direct.as_ref().map_or(state_dir, |d| d.root);
        let result = (|| {
            let factory = jj_lib::default_backend_factories::default_working_copy_factory();
            let (_workspace, repo) = block_on(Workspace::init_workspace_with_existing_repo(
                state_dir,
                &repo_dir(&self.root),
                &repo,
                &*factory,
                workspace_name(id),
            ))
            .map_err(RepoError::jj)?;
            if direct.is_some() {
                mark_direct(state_dir)?;
            }
            let mut tx = repo.start_transaction();
            let wc = block_on(
                tx.repo_mut()
                    .new_commit(vec![trunk.id().clone()], trunk.tree())
                    .write(),
            )
            .map_err(RepoError::jj)?;
            block_on(tx.repo_mut().edit(workspace_name(id), &wc)).map_err(RepoError::jj)?;
            block_on(tx.repo_mut().rebase_descendants()).map_err(RepoError::jj)?;
            let repo = block_on(tx.commit(super::messages::operation::add_workspace(id)))
                .map_err(RepoError::jj)?;
            let store = self.loader.store().clone();
            let paths = self.state_paths(id, state_dir);
            let mut locked = LockedWorkingCopy::lock(&store, &paths, None)?;
            locked.state.sparse = sparse.clone();
            if let Some(direct) = direct.filter(|d| d.adopt) {
                // Adopted files: the state says the folder holds what was last synced into
                // it before it was closed (or nothing, for a folder never synced), so the
                // first snapshot reads every difference as this mount's change, merged onto
                // trunk like a concurrent edit (the workspace is stale from the start).
                if let Some(base) = self.take_closed_folder(direct.root) {
                    believe_on_disk(&mut locked.state, &base.tree());
                }
                let state = locked.finish(repo.op_id())?;
                self.states.insert(*id, state);
                self.repo = repo;
                return Ok(());
            }
            // The files of the new workspace, written into its (new, empty) directory.
            let root = Root::open(files_dir).map_err(RepoError::io(files_dir))?;
            let files = PlainFiles::new(
                Root::open(files_dir).map_err(RepoError::io(files_dir))?,
                owner,
            );
            let cx = CheckoutContext {
                store: &store,
                files: &files,
                state_root: &root,
                modes: &self.modes,
                default_mode: self.default_mode,
                marker_style: self.conflict_marker_style,
                mode_updates: &[],
                held: &[],
            };
            locked.check_out(&wc.tree(), &cx).map_err(|f| f.error)?;
            super::working_copy::sparse::create_folders(&locked.state, &sparse, &cx);
            let state = locked.finish(repo.op_id())?;
            self.states.insert(*id, state);
            self.repo = repo;
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_dir_all(state_dir);
        }
        result
    }

    /// Remembers what a direct mount being closed holds, as trunk's commit it was last synced
    /// to, for `--adopt` of the same folder later: its files are then merged as edits made
    /// since (not as new files). Nothing is remembered when its files are not a commit of
    /// trunk (files held open for writing kept them apart).
    pub fn remember_closed_folder(&mut self, id: &Uuid, path: &Path) {
        let Some(base) = self.synced_commit(id) else {
            return;
        };
        let mut closed = self.closed_folders();
        closed.insert(path.to_string_lossy().into_owned(), base.hex());
        let file = closed_folders_file(&self.root);
        let text = serde_json::to_vec_pretty(&closed).expect("a map of strings serializes");
        if let Err(err) = crate::atomic_file::write_data(&file, &text) {
            tracing::warn!("cannot write {}: {err}", file.display());
        }
    }

    /// The commit a workspace's files match: its working-copy commit's parent when the
    /// working-copy commit adds nothing and the files hold its tree.
    fn synced_commit(&mut self, id: &Uuid) -> Option<jj_lib::backend::CommitId> {
        let repo = self.head().ok()?;
        let wc_id = repo.view().get_wc_commit_id(&workspace_name(id))?.clone();
        let wc = repo.store().get_commit(&wc_id).ok()?;
        let [parent] = wc.parent_ids() else {
            return None;
        };
        let parent = repo.store().get_commit(parent).ok()?;
        let on_disk = self.states.get(id)?;
        let same =
            |a: &MergedTree, b: &MergedTree| a.tree_ids_and_labels() == b.tree_ids_and_labels();
        (wc.description().is_empty()
            && same(&wc.tree(), &parent.tree())
            && same(&on_disk.tree, &wc.tree()))
        .then(|| parent.id().clone())
    }

    fn closed_folders(&self) -> std::collections::BTreeMap<String, String> {
        std::fs::read(closed_folders_file(&self.root))
            .ok()
            .and_then(|text| serde_json::from_slice(&text).ok())
            .unwrap_or_default()
    }

    /// The commit a closed direct mount at `path` was last synced to, forgotten once taken.
    fn take_closed_folder(&mut self, path: &Path) -> Option<Commit> {
        let mut closed = self.closed_folders();
        let hex = closed.remove(path.to_string_lossy().as_ref())?;
        let file = closed_folders_file(&self.root);
        let text = serde_json::to_vec_pretty(&closed).expect("a map of strings serializes");
        let _ = crate::atomic_file::write_data(&file, &text);
        let id = jj_lib::backend::CommitId::try_from_hex(&hex)?;
        self.repo.store().get_commit(&id).ok()
    }

    /// Whether the working-copy state of workspace `id` says its folder holds files (the
    /// state is loaded, and kept for the next step, when it is not in memory). True when
    /// the state cannot be read: then an empty folder is not taken for granted.
    pub fn state_has_files(&mut self, id: &Uuid, state: &StatePaths) -> bool {
        if let Some(cached) = self.states.get(id)
            && cached.is_current()
        {
            return !cached.entries.is_empty();
        }
        match WcState::load(self.loader.store(), &state.dir, &state.side) {
            Ok(loaded) => {
                let has = !loaded.entries.is_empty();
                self.states.insert(*id, loaded);
                has
            }
            Err(_) => true,
        }
    }

    /// Removes a mount's workspace from the repo (its working-copy commit goes, history
    /// stays), like `jj workspace forget`. The backing files are left for the caller.
    pub fn forget_workspace(&mut self, id: &Uuid) -> Result<(), RepoError> {
        let repo = self.head()?;
        let name = workspace_name(id);
        if repo.view().get_wc_commit_id(&name).is_some() {
            let mut tx = repo.start_transaction();
            block_on(tx.repo_mut().remove_workspace(&name)).map_err(RepoError::jj)?;
            block_on(tx.repo_mut().rebase_descendants()).map_err(RepoError::jj)?;
            self.repo = block_on(tx.commit(super::messages::operation::forget_workspace(id)))
                .map_err(RepoError::jj)?;
        }
        if let Ok(store) = SimpleWorkspaceStore::load(&repo_dir(&self.root)) {
            let _ = store.forget(&[name.as_ref()]);
        }
        self.states.remove(id);
        self.pending_modes.remove(id);
        let _ = std::fs::remove_file(jjfs_dir(&self.root).join("stat").join(id.to_string()));
        Ok(())
    }

    /// Whether the repo knows a workspace for this mount.
    pub fn has_workspace(&self, id: &Uuid) -> bool {
        let name = workspace_name(id);
        self.repo
            .view()
            .get_wc_commit_id(WorkspaceName::new(name.as_str()))
            .is_some()
    }

    /// Paths with conflicts in trunk, relative to the repo root: jj's conflicts (with
    /// markers in the files) and the sides jjfs moved aside (`*.jjfs-conflict`). Cached
    /// per trunk commit.
    pub fn trunk_conflicts(&mut self) -> Vec<String> {
        let Ok(Some(trunk)) = self.trunk_commit(&self.repo) else {
            return Vec::new();
        };
        if let Some((id, conflicts)) = &self.conflicts_cache
            && id == trunk.id()
        {
            return conflicts.clone();
        }
        let tree = trunk.tree();
        let mut conflicts: Vec<String> = tree
            .conflicts()
            .map(|(path, _)| path.as_internal_file_string().to_owned())
            .collect();
        conflicts.extend(
            tree.entries()
                .map(|(path, _)| path.as_internal_file_string().to_owned())
                .filter(|path| super::step::is_conflict_copy(path)),
        );
        conflicts.sort();
        conflicts.dedup();
        self.conflicts_cache = Some((trunk.id().clone(), conflicts.clone()));
        conflicts
    }

    /// Points trunk at `commit` in a new operation.
    pub fn set_trunk_target(
        &mut self,
        commit: &Commit,
        description: &str,
    ) -> Result<(), RepoError> {
        let repo = self.head()?;
        let mut tx = repo.start_transaction();
        tx.repo_mut().set_local_bookmark_target(
            RefName::new(&self.trunk),
            RefTarget::normal(commit.id().clone()),
        );
        self.repo = block_on(tx.commit(description)).map_err(RepoError::jj)?;
        Ok(())
    }
}

impl Repository {
    /// Files the mount's working-copy commit tracks under each of `dirs` (workspace-relative).
    pub fn tracked_under(&self, id: &Uuid, dirs: &[PathBuf]) -> Vec<PathBuf> {
        let Some(wc_id) = self.repo.view().get_wc_commit_id(&workspace_name(id)) else {
            return Vec::new();
        };
        let Ok(wc) = self.repo.store().get_commit(wc_id) else {
            return Vec::new();
        };
        let prefixes: Vec<RepoPathBuf> = dirs
            .iter()
            .filter_map(|d| RepoPathBuf::from_relative_path(d).ok())
            .collect();
        if prefixes.is_empty() {
            return Vec::new();
        }
        let matcher = PrefixMatcher::new(&prefixes);
        wc.tree()
            .entries_matching(&matcher)
            .map(|(path, _)| PathBuf::from(path.as_internal_file_string()))
            .collect()
    }
}

impl Repository {
    /// Whether the mount's working-copy commit tracks `path` or anything under it.
    pub fn tracks(&self, id: &Uuid, path: &Path) -> bool {
        let Ok(repo_path) = RepoPathBuf::from_relative_path(path) else {
            return false;
        };
        let Some(wc_id) = self.repo.view().get_wc_commit_id(&workspace_name(id)) else {
            return false;
        };
        let Ok(wc) = self.repo.store().get_commit(wc_id) else {
            return false;
        };
        let matcher = PrefixMatcher::new([&repo_path]);
        wc.tree().entries_matching(&matcher).next().is_some()
    }

    /// Ignore rules for a workspace's files, for filtering changed paths before a snapshot.
    pub fn ignore_rules(&self, backing: &Path) -> super::ignores::IgnoreRules {
        super::ignores::IgnoreRules::new(backing, self.base_ignores())
    }
}

impl Repository {
    /// The patterns (jj's sparse patterns) workspace `id`'s files hold now: its kept state's,
    /// or read from disk (and kept) when the jj CLI wrote it or none is kept.
    /// As repo paths (the root `""`).
    pub fn sparse_patterns(&mut self, id: &Uuid, paths: &StatePaths) -> Vec<String> {
        use super::working_copy::sparse::strings;
        if let Some(state) = self.states.get(id)
            && state.is_current()
        {
            return strings(&state.sparse);
        }
        match WcState::load(self.loader.store(), &paths.dir, &paths.side) {
            Ok(state) => {
                let sparse = strings(&state.sparse);
                self.states.insert(*id, state);
                sparse
            }
            Err(_) => vec![String::new()],
        }
    }

    /// Ignore rules for a selective mount's files: as `ignore_rules`, with the `.gitignore`
    /// files of the folders outside the selection that lead to it (and the root's) read from
    /// the mount's working-copy commit, since they are not on disk there. Also returns those
    /// files' contents, to notice when they change.
    pub fn ignore_rules_for(
        &self,
        id: &Uuid,
        backing: &Path,
        selection: &crate::selection::Selection,
    ) -> (super::ignores::IgnoreRules, Vec<(String, Vec<u8>)>) {
        let rules = self.ignore_rules(backing);
        let leading = selection.leading_folders();
        if leading.is_empty() {
            return (rules, Vec::new());
        }
        let tree = self
            .repo
            .view()
            .get_wc_commit_id(&workspace_name(id))
            .and_then(|id| self.repo.store().get_commit(id).ok())
            .map(|commit| commit.tree());
        let mut files = Vec::new();
        for folder in leading {
            let Ok(dir) = RepoPathBuf::from_internal_string(folder.as_str()) else {
                continue;
            };
            let content = tree
                .as_ref()
                .and_then(|tree| read_gitignore(tree, &dir))
                .unwrap_or_default();
            files.push((folder, content));
        }
        (rules.with_tree_files(&files), files)
    }
}

/// The content of `dir/.gitignore` in `tree`, if it is a file there.
fn read_gitignore(tree: &jj_lib::merged_tree::MergedTree, dir: &RepoPath) -> Option<Vec<u8>> {
    let path = dir.join(jj_lib::repo_path::RepoPathComponent::new(".gitignore").ok()?);
    let value = block_on(tree.path_value(&path)).ok()?;
    let Some(Some(jj_lib::backend::TreeValue::File { id, .. })) = value.as_resolved() else {
        return None;
    };
    let mut reader = block_on(tree.store().read_file(&path, id)).ok()?;
    let mut content = Vec::new();
    block_on(futures::AsyncReadExt::read_to_end(
        &mut reader,
        &mut content,
    ))
    .ok()?;
    Some(content)
}

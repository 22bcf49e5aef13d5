//! Reading a repo's history: the changes on trunk (newest first), a file at a point in time,
//! the difference between two points. Adding to it is `revert.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use jj_lib::backend::{CommitId, TreeValue};
use jj_lib::commit::Commit;
use jj_lib::conflicts::{
    ConflictMaterializeOptions, MaterializedTreeValue, materialize_merge_result_to_bytes,
    materialize_tree_value,
};
use jj_lib::matchers::{EverythingMatcher, Matcher, PrefixMatcher};
use jj_lib::merged_tree::MergedTree;
use jj_lib::object_id::{HexPrefix, ObjectId as _, PrefixResolution};
use jj_lib::repo::{ReadonlyRepo, Repo as _};
use jj_lib::repo_path::{RepoPath, RepoPathBuf};
use jj_lib::revset::ResolvedRevsetExpression;

use super::repository::Repository;
use super::{RepoError, block_on};
use crate::api::{CatResult, DiffResult, FileChange, FileStatus, LogEntry, LogResult, Point};
use crate::history::When;

/// Characters of the ids shown (jj shows 12 too).
const SHOWN_ID_LEN: usize = 12;

pub(super) fn refused(message: impl Into<String>) -> RepoError {
    RepoError::Refused(message.into())
}

impl Repository {
    /// `jjfs log`: trunk's changes that touched `path` ("" or None: any), newest first.
    pub fn log(
        &mut self,
        path: Option<&str>,
        since: Option<&When>,
        limit: Option<usize>,
    ) -> Result<LogResult, RepoError> {
        self.log_within(path, since, limit, None)
    }

    /// `log`, looking at no more than `commits` of trunk's latest commits (None: all), for a
    /// cheap look at what recently changed a path.
    pub fn log_within(
        &mut self,
        path: Option<&str>,
        since: Option<&When>,
        limit: Option<usize>,
        commits: Option<usize>,
    ) -> Result<LogResult, RepoError> {
        let repo = self.head()?;
        let prefix = path.map(repo_path).transpose()?;
        let since = since.map(|when| self.time_of(&repo, when)).transpose()?;
        let matcher = matcher_for(prefix.as_ref());
        let mut entries = Vec::new();
        let mut more = false;
        // Trunk's order is by sync, and a fetched change may carry another machine's clock:
        // stop only after many changes in a row older than --since.
        let mut older_in_a_row = 0;
        for (walked, commit) in self.trunk_changes(&repo)?.enumerate() {
            if commits.is_some_and(|commits| walked >= commits) {
                more = true;
                break;
            }
            let commit = commit?;
            if let Some(since) = since {
                if commit_time(&commit) < since {
                    older_in_a_row += 1;
                    if older_in_a_row > 100 {
                        break;
                    }
                    continue;
                }
                older_in_a_row = 0;
            }
            let files = changed_files(repo.as_ref(), &commit, matcher.as_ref())?;
            if prefix.is_some() && files.is_empty() {
                continue;
            }
            if limit.is_some_and(|limit| entries.len() >= limit) {
                more = true;
                break;
            }
            entries.push(log_entry(&commit, files));
        }
        if let Some(prefix) = &prefix
            && entries.is_empty()
            && !more
            && since.is_none()
        {
            return Err(refused(format!(
                "{} has no history in repo {}",
                shown(prefix),
                self.name
            )));
        }
        Ok(LogResult {
            repo: self.name.clone(),
            path: path.unwrap_or_default().to_owned(),
            entries,
            more,
        })
    }

    /// `jjfs cat`: a file's content at `at`.
    pub fn cat(&mut self, path: &str, at: &When) -> Result<CatResult, RepoError> {
        let repo = self.head()?;
        let commit = self.resolve(&repo, at)?;
        let path_buf = repo_path(path)?;
        let content = match self.content(&commit.tree(), &path_buf)? {
            Content::File(bytes) => bytes,
            Content::Folder => {
                return Err(refused(format!(
                    "{} is a folder; see its changes with `jjfs log {0}`",
                    shown(&path_buf)
                )));
            }
            Content::Absent => {
                let when = if commit.id() == repo.store().root_commit_id() {
                    "before the repo's first change".to_owned()
                } else {
                    format!("as at {} ({})", point(&commit).change, point(&commit).time)
                };
                return Err(refused(format!(
                    "{} did not exist at {at}: {when}; see `jjfs log {0}`",
                    shown(&path_buf),
                )));
            }
        };
        let (text, base64) = match String::from_utf8(content) {
            Ok(text) => (Some(text), None),
            Err(err) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(err.into_bytes())),
            ),
        };
        Ok(CatResult {
            repo: self.name.clone(),
            path: path.to_owned(),
            at: point(&commit),
            text,
            base64,
        })
    }

    /// `jjfs diff`: what changed under `path` from `from` to `to` (default: trunk now; and
    /// the state before the last change under `path` at or before `to`).
    pub fn diff(
        &mut self,
        path: &str,
        from: Option<&When>,
        to: Option<&When>,
    ) -> Result<DiffResult, RepoError> {
        let repo = self.head()?;
        let prefix = repo_path(path)?;
        let to = match to {
            Some(when) => self.resolve(&repo, when)?,
            None => self.trunk_tip(&repo)?,
        };
        let from = match from {
            Some(when) => self.resolve(&repo, when)?,
            None => self.before_last_change(&repo, &to, &prefix)?,
        };
        let matcher = matcher_for(Some(&prefix));
        let (old_tree, new_tree) = (from.tree(), to.tree());
        let mut diff = String::new();
        let entries: Vec<_> = block_on(
            old_tree
                .diff_stream(&new_tree, matcher.as_ref())
                .collect::<Vec<_>>(),
        );
        if entries.is_empty()
            && matches!(self.content(&new_tree, &prefix)?, Content::Absent)
            && matches!(self.content(&old_tree, &prefix)?, Content::Absent)
        {
            return Err(refused(format!(
                "{} does not exist at either point; see `jjfs log`",
                shown(&prefix)
            )));
        }
        for entry in entries {
            entry.values.map_err(RepoError::jj)?;
            let old = self.content(&old_tree, &entry.path)?.bytes();
            let new = self.content(&new_tree, &entry.path)?.bytes();
            diff.push_str(&crate::history::unified::file_diff(
                entry.path.as_internal_file_string(),
                old.as_deref(),
                new.as_deref(),
            ));
        }
        Ok(DiffResult {
            repo: self.name.clone(),
            path: path.to_owned(),
            from: point(&from),
            to: point(&to),
            diff,
        })
    }

    /// How many changes trunk holds. Counted once, then by what each move of trunk added
    /// (counting all of it again when trunk moved elsewhere than forward).
    pub fn history_len(&mut self) -> Option<u64> {
        let repo = self.current().clone();
        let tip = self.trunk_commit(&repo).ok()??;
        let root = repo.store().root_commit_id().clone();
        let len = match &self.history_len_cache {
            Some((id, len)) if id == tip.id() => return Some(*len),
            Some((old, len))
                if block_on(repo.index().is_ancestor(old, tip.id())).unwrap_or(false) =>
            {
                let added = ResolvedRevsetExpression::commit(old.clone())
                    .range(&ResolvedRevsetExpression::commit(tip.id().clone()));
                len + count(&repo, added)?
            }
            _ => {
                let all = ResolvedRevsetExpression::commit(tip.id().clone())
                    .ancestors()
                    .minus(&ResolvedRevsetExpression::commit(root));
                count(&repo, all)?
            }
        };
        self.history_len_cache = Some((tip.id().clone(), len));
        Some(len)
    }

    /// Trunk's commit, or a clear error when the bookmark is missing or conflicted.
    pub(super) fn trunk_tip(&self, repo: &ReadonlyRepo) -> Result<Commit, RepoError> {
        self.trunk_commit(repo)?.ok_or_else(|| {
            refused(format!(
                "the trunk bookmark {} of repo {} does not point at one commit; run `jjfs sync` and try again",
                self.trunk_name(),
                self.name
            ))
        })
    }

    /// Trunk and its ancestors, newest first (children before parents), without the root.
    pub(super) fn trunk_changes<'a>(
        &self,
        repo: &'a Arc<ReadonlyRepo>,
    ) -> Result<impl Iterator<Item = Result<Commit, RepoError>> + 'a, RepoError> {
        changes_from(repo, self.trunk_tip(repo)?.id().clone())
    }

    /// The commit WHEN names: by id, or the newest trunk change at or before a time (the
    /// root, where nothing exists yet, before the first one).
    pub(super) fn resolve(
        &self,
        repo: &Arc<ReadonlyRepo>,
        when: &When,
    ) -> Result<Commit, RepoError> {
        match when {
            When::Id(id) => self.resolve_id(repo, id),
            When::Time(time) => {
                for commit in self.trunk_changes(repo)? {
                    let commit = commit?;
                    if commit_time(&commit) <= *time {
                        return Ok(commit);
                    }
                }
                Ok(repo.store().root_commit())
            }
        }
    }

    fn resolve_id(&self, repo: &Arc<ReadonlyRepo>, id: &str) -> Result<Commit, RepoError> {
        let not_found = || {
            refused(format!(
                "no change {id} in repo {}; `jjfs log` shows the ids",
                self.name
            ))
        };
        let ambiguous = || {
            refused(format!(
                "{id} is ambiguous in repo {}; give more characters",
                self.name
            ))
        };
        let commit_id: Option<CommitId> = if let Some(prefix) = HexPrefix::try_from_hex(id) {
            match block_on(repo.index().resolve_commit_id_prefix(&prefix)).map_err(RepoError::jj)? {
                PrefixResolution::SingleMatch(id) => Some(id),
                PrefixResolution::AmbiguousMatch => return Err(ambiguous()),
                PrefixResolution::NoMatch => None,
            }
        } else {
            None
        };
        let commit_id = match commit_id {
            Some(id) => id,
            None => {
                let prefix = HexPrefix::try_from_reverse_hex(id).ok_or_else(not_found)?;
                match block_on(repo.resolve_change_id_prefix(&prefix)).map_err(RepoError::jj)? {
                    PrefixResolution::SingleMatch(targets) => targets
                        .visible_with_offsets()
                        .map(|(_, id)| id.clone())
                        .next()
                        .ok_or_else(not_found)?,
                    PrefixResolution::AmbiguousMatch => return Err(ambiguous()),
                    PrefixResolution::NoMatch => return Err(not_found()),
                }
            }
        };
        if commit_id == *repo.store().root_commit_id() {
            return Err(not_found());
        }
        repo.store().get_commit(&commit_id).map_err(RepoError::jj)
    }

    /// The time a WHEN stands for (an id: its change's time).
    fn time_of(&self, repo: &Arc<ReadonlyRepo>, when: &When) -> Result<DateTime<Utc>, RepoError> {
        match when {
            When::Time(time) => Ok(*time),
            When::Id(id) => Ok(commit_time(&self.resolve_id(repo, id)?)),
        }
    }

    /// The state before the newest change under `prefix` at or before `to`.
    fn before_last_change(
        &self,
        repo: &Arc<ReadonlyRepo>,
        to: &Commit,
        prefix: &RepoPath,
    ) -> Result<Commit, RepoError> {
        let matcher = matcher_for(Some(&prefix.to_owned()));
        for commit in changes_from(repo, to.id().clone())? {
            let commit = commit?;
            if !changed_files(repo.as_ref(), &commit, matcher.as_ref())?.is_empty() {
                let parent = commit.parent_ids().first().cloned();
                return match parent {
                    Some(parent) => repo.store().get_commit(&parent).map_err(RepoError::jj),
                    None => Ok(repo.store().root_commit()),
                };
            }
        }
        Ok(repo.store().root_commit())
    }

    /// What `path` holds in `tree`: a file's bytes (conflicts with jj's markers, as the mounts
    /// show them; a symlink's target), a folder, or nothing.
    pub(super) fn content(&self, tree: &MergedTree, path: &RepoPath) -> Result<Content, RepoError> {
        if path.is_root() {
            return Ok(Content::Folder);
        }
        let value = block_on(tree.path_value(path)).map_err(RepoError::jj)?;
        if value.is_absent() {
            return Ok(Content::Absent);
        }
        let store = tree.store();
        let materialized = block_on(materialize_tree_value(store, path, value, tree.labels()))
            .map_err(RepoError::jj)?;
        let bytes = match materialized {
            MaterializedTreeValue::Absent => return Ok(Content::Absent),
            MaterializedTreeValue::Tree(_) => return Ok(Content::Folder),
            MaterializedTreeValue::File(mut file) => {
                block_on(file.read_all(path)).map_err(RepoError::jj)?
            }
            MaterializedTreeValue::Symlink { target, .. } => target.into_bytes(),
            MaterializedTreeValue::FileConflict(file) => {
                let options = ConflictMaterializeOptions {
                    marker_style: self.conflict_marker_style(),
                    marker_len: None,
                    merge: store.merge_options().clone(),
                };
                materialize_merge_result_to_bytes(&file.contents, &file.labels, &options).into()
            }
            MaterializedTreeValue::OtherConflict { id, labels } => {
                use jj_lib::backend::MergedTreeValueExt as _;
                id.describe(&labels).into_bytes()
            }
            MaterializedTreeValue::GitSubmodule(id) => {
                format!("submodule {}\n", id.hex()).into_bytes()
            }
            MaterializedTreeValue::AccessDenied(err) => {
                return Err(RepoError::Jj(format!("{}: {err}", shown(path))));
            }
        };
        Ok(Content::File(bytes))
    }
}

/// `head` and its ancestors, children before parents, without the root.
fn changes_from<'a>(
    repo: &'a Arc<ReadonlyRepo>,
    head: CommitId,
) -> Result<impl Iterator<Item = Result<Commit, RepoError>> + 'a, RepoError> {
    let revset = ResolvedRevsetExpression::commit(head)
        .ancestors()
        .evaluate(repo.as_ref())
        .map_err(RepoError::jj)?;
    let mut stream = revset.stream();
    let root = repo.store().root_commit_id().clone();
    Ok(std::iter::from_fn(move || block_on(stream.next()))
        .filter(move |id| id.as_ref().map_or(true, |id| *id != root))
        .map(move |id| {
            let id = id.map_err(RepoError::jj)?;
            repo.store().get_commit(&id).map_err(RepoError::jj)
        }))
}

/// How many commits a revset holds (walking the index only).
fn count(repo: &ReadonlyRepo, expression: Arc<ResolvedRevsetExpression>) -> Option<u64> {
    let revset = expression.evaluate(repo).ok()?;
    let mut stream = revset.stream();
    let mut len = 0;
    while let Some(id) = block_on(stream.next()) {
        id.ok()?;
        len += 1;
    }
    Some(len)
}

/// What a path holds at one point.
pub(super) enum Content {
    File(Vec<u8>),
    Folder,
    Absent,
}

impl Content {
    fn bytes(self) -> Option<Vec<u8>> {
        match self {
            Self::File(bytes) => Some(bytes),
            Self::Folder | Self::Absent => None,
        }
    }
}

/// The files `commit` changed (under `matcher`), renames found by identical content.
pub(super) fn changed_files(
    repo: &dyn jj_lib::repo::Repo,
    commit: &Commit,
    matcher: &dyn Matcher,
) -> Result<Vec<FileChange>, RepoError> {
    let parent_tree = block_on(commit.parent_tree(repo)).map_err(RepoError::jj)?;
    let entries: Vec<_> = block_on(
        parent_tree
            .diff_stream(&commit.tree(), matcher)
            .collect::<Vec<_>>(),
    );
    let mut files = Vec::with_capacity(entries.len());
    // Deleted files by content, to pair them with added files as renames.
    let mut deleted: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut added = Vec::new();
    for entry in entries {
        let values = entry.values.map_err(RepoError::jj)?;
        let path = entry.path.as_internal_file_string().to_owned();
        let conflict = !values.after.is_resolved();
        let status = if values.before.is_absent() {
            FileStatus::Added
        } else if values.after.is_absent() {
            FileStatus::Deleted
        } else {
            FileStatus::Modified
        };
        let content_id = |value: &jj_lib::merge::Merge<Option<TreeValue>>| match value.as_normal() {
            Some(TreeValue::File { id, .. }) => Some(id.as_bytes().to_vec()),
            _ => None,
        };
        match status {
            FileStatus::Deleted => {
                if let Some(id) = content_id(&values.before) {
                    deleted.insert(id, files.len());
                }
            }
            FileStatus::Added => {
                if let Some(id) = content_id(&values.after) {
                    added.push((id, files.len()));
                }
            }
            _ => {}
        }
        files.push(FileChange {
            path,
            status,
            from: None,
            conflict,
        });
    }
    let mut gone = Vec::new();
    for (id, index) in added {
        if let Some(from) = deleted.remove(&id) {
            files[index].status = FileStatus::Renamed;
            files[index].from = Some(files[from].path.clone());
            gone.push(from);
        }
    }
    gone.sort_unstable();
    for index in gone.into_iter().rev() {
        files.remove(index);
    }
    Ok(files)
}

pub(super) fn log_entry(commit: &Commit, files: Vec<FileChange>) -> LogEntry {
    let first = first_line(commit);
    let (mount, mount_id) = super::messages::sync_origin(commit.description());
    LogEntry {
        point: point(commit),
        mount,
        mount_id,
        description: first.to_owned(),
        conflict: files.iter().any(|f| f.conflict),
        files,
    }
}

pub(super) fn first_line(commit: &Commit) -> &str {
    commit.description().lines().next().unwrap_or_default()
}

pub(super) fn point(commit: &Commit) -> Point {
    Point {
        commit: short(&commit.id().hex()),
        change: short(&commit.change_id().reverse_hex()),
        time: commit_time(commit).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }
}

pub(super) fn short(id: &str) -> String {
    id.chars().take(SHOWN_ID_LEN).collect()
}

fn commit_time(commit: &Commit) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(commit.committer().timestamp.timestamp.0).unwrap_or_default()
}

pub(super) fn repo_path(path: &str) -> Result<RepoPathBuf, RepoError> {
    RepoPathBuf::from_internal_string(path).map_err(|e| refused(format!("{path}: {e}")))
}

fn matcher_for(prefix: Option<&RepoPathBuf>) -> Box<dyn Matcher> {
    match prefix {
        Some(prefix) if !prefix.is_root() => Box::new(PrefixMatcher::new([prefix])),
        _ => Box::new(EverythingMatcher),
    }
}

/// A repo path as users read it ("." for the root).
pub(super) fn shown(path: impl AsRef<RepoPath>) -> String {
    let path = path.as_ref();
    if path.is_root() {
        ".".to_owned()
    } else {
        path.as_internal_file_string().to_owned()
    }
}

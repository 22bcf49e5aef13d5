//! Adding to a repo's history: a change that brings paths back as they were at a point in
//! time, or one that reverts the last changes. History is only ever added to, never
//! rewritten: both are new commits on trunk, which the sync step then checks out everywhere.

use std::sync::Arc;

use jj_lib::commit::Commit;
use jj_lib::matchers::{EverythingMatcher, PrefixMatcher};
use jj_lib::merged_tree::MergedTree;
use jj_lib::object_id::ObjectId as _;
use jj_lib::op_store::RefTarget;
use jj_lib::ref_name::RefName;
use jj_lib::repo::{ReadonlyRepo, Repo as _};
use jj_lib::repo_path::RepoPathBuf;

use super::history::{
    Content, changed_files, first_line, log_entry, point, refused, repo_path, short, shown,
};
use super::repository::Repository;
use super::{RepoError, block_on};
use crate::api::ChangeResult;
use crate::history::When;

impl Repository {
    /// `jjfs restore`: a new change on trunk in which `paths` are as they were at `at`.
    pub fn restore(&mut self, paths: &[String], at: &When) -> Result<ChangeResult, RepoError> {
        let repo = self.head()?;
        let source = self.resolve(&repo, at)?;
        let tip = self.trunk_tip(&repo)?;
        let prefixes: Vec<RepoPathBuf> = paths
            .iter()
            .map(|p| repo_path(p))
            .collect::<Result<_, _>>()?;
        // A path that did not exist then is refused rather than deleted: a mistyped time must
        // not remove files everywhere (`rm` does that, and says so).
        for prefix in &prefixes {
            if matches!(self.content(&source.tree(), prefix)?, Content::Absent) {
                return Err(refused(format!(
                    "{} did not exist in repo {} at {at}; nothing restored (see `jjfs log {0}`)",
                    shown(prefix),
                    self.name
                )));
            }
        }
        let matcher = PrefixMatcher::new(&prefixes);
        let tree = block_on(jj_lib::rewrite::restore_tree(
            &source.tree(),
            &tip.tree(),
            "restored".to_owned(),
            "trunk".to_owned(),
            &matcher,
        ))
        .map_err(RepoError::jj)?;
        let shown_paths: Vec<String> = prefixes.iter().map(shown).collect();
        let message = super::messages::restore(
            &shown_paths,
            &short(&source.id().hex()),
            &source.id().hex(),
            &self.name,
        );
        let change = self.commit_on_trunk(&repo, &tip, tree, &message)?;
        let files = match &change {
            Some(commit) => changed_files(self.current().as_ref(), commit, &EverythingMatcher)?,
            None => Vec::new(),
        };
        Ok(ChangeResult {
            repo: self.name.clone(),
            change: change.as_ref().map(point),
            at: Some(point(&source)),
            paths: prefixes
                .iter()
                .map(|p| p.as_internal_file_string().to_owned())
                .collect(),
            reverted: Vec::new(),
            files,
        })
    }

    /// `jjfs undo`: a new change on trunk that reverts the last `count` changes.
    pub fn undo(&mut self, count: usize) -> Result<ChangeResult, RepoError> {
        if count == 0 {
            return Err(refused(
                "nothing to undo: give a number of changes of 1 or more",
            ));
        }
        let repo = self.head()?;
        let tip = self.trunk_tip(&repo)?;
        // The last changes along trunk's first parents: a merge (from a remote) counts as one
        // change, what it brought in from the other side included.
        let mut reverted: Vec<Commit> = Vec::with_capacity(count);
        let root = repo.store().root_commit_id().clone();
        let mut next = Some(tip.clone());
        while reverted.len() < count
            && let Some(commit) = next.take()
            && *commit.id() != root
        {
            next = match commit.parent_ids().first() {
                Some(parent) => Some(repo.store().get_commit(parent).map_err(RepoError::jj)?),
                None => None,
            };
            reverted.push(commit);
        }
        if reverted.len() < count {
            return Err(refused(format!(
                "repo {} has only {} change(s) to undo",
                self.name,
                reverted.len()
            )));
        }
        // Newest first: each revert applies (change → its first parent) onto what is there.
        let mut tree = tip.tree();
        for commit in &reverted {
            let parents = match commit.parent_ids().first() {
                Some(parent) => repo
                    .store()
                    .get_commit(parent)
                    .map_err(RepoError::jj)?
                    .tree(),
                None => repo.store().root_commit().tree(),
            };
            tree = block_on(MergedTree::merge(jj_lib::merge::Merge::from_vec(vec![
                (tree, "trunk".to_owned()),
                (commit.tree(), "reverted change".to_owned()),
                (parents, "before it".to_owned()),
            ])))
            .map_err(RepoError::jj)?;
        }
        let list: Vec<String> = reverted
            .iter()
            .map(|c| format!("{} {}", short(&c.change_id().reverse_hex()), first_line(c)))
            .collect();
        let ids: Vec<String> = reverted.iter().map(|c| c.id().hex()).collect();
        let message = super::messages::undo(count, &list, &ids, &self.name);
        let change = self.commit_on_trunk(&repo, &tip, tree, &message)?;
        let files = match &change {
            Some(commit) => changed_files(self.current().as_ref(), commit, &EverythingMatcher)?,
            None => Vec::new(),
        };
        let reverted = reverted
            .iter()
            .map(|c| {
                Ok(log_entry(
                    c,
                    changed_files(repo.as_ref(), c, &EverythingMatcher)?,
                ))
            })
            .collect::<Result<_, RepoError>>()?;
        Ok(ChangeResult {
            repo: self.name.clone(),
            change: change.as_ref().map(point),
            at: None,
            paths: Vec::new(),
            reverted,
            files,
        })
    }

    /// Adds a commit with `tree` on top of trunk (`tip`) and moves trunk to it; None when
    /// `tree` is what trunk has already. The sync step then checks it out in every mount.
    ///
    /// The transaction starts from `repo`, where `tip` was read: were trunk moved meanwhile
    /// (a fetch), the two operations merge into a conflicted trunk that the next sync step
    /// settles, rather than this one silently dropping the other's commits.
    fn commit_on_trunk(
        &mut self,
        repo: &Arc<ReadonlyRepo>,
        tip: &Commit,
        tree: MergedTree,
        message: &str,
    ) -> Result<Option<Commit>, RepoError> {
        if tree.tree_ids_and_labels() == tip.tree().tree_ids_and_labels() {
            return Ok(None);
        }
        let now = self.settings().signature();
        let mut tx = repo.start_transaction();
        let commit = block_on(
            tx.repo_mut()
                .new_commit(vec![tip.id().clone()], tree)
                .set_description(message)
                .set_author(now.clone())
                .set_committer(now)
                .write(),
        )
        .map_err(RepoError::jj)?;
        tx.repo_mut().set_local_bookmark_target(
            RefName::new(self.trunk_name()),
            RefTarget::normal(commit.id().clone()),
        );
        let first = message.lines().next().unwrap_or_default().to_owned();
        let repo = block_on(tx.commit(first)).map_err(RepoError::jj)?;
        self.set_current(repo);
        Ok(Some(commit))
    }
}

//! The step's transaction: trunk gains each workspace's changes (and the commits the jj CLI
//! made in it), conflicting file/folder sides are both kept, and every working-copy commit
//! moves onto the new trunk. Pure repository work: no file of any workspace is touched here.

use std::collections::HashSet;
use std::sync::Arc;

use jj_lib::backend::{CommitId, Signature};
use jj_lib::commit::Commit;
use jj_lib::op_store::RefTarget;
use jj_lib::ref_name::RefName;
use jj_lib::repo::{MutableRepo, ReadonlyRepo, Repo as _};
use jj_lib::repo_path::RepoPathBuf;
use jj_lib::rewrite::{CommitRewriter, EmptyBehavior};

use super::prepare::{Prepared, merge3};
use crate::repo::messages;
use crate::repo::repository::{Repository, workspace_name};
use crate::repo::working_copy::canonical;
use crate::repo::{RepoError, block_on};

/// What the transaction did.
pub(super) struct Integrated {
    pub(super) repo: Arc<ReadonlyRepo>,
    /// Each prepared workspace's commit to check out, in order.
    pub(super) targets: Vec<Commit>,
    /// Commits trunk gained.
    pub(super) commits: usize,
    /// Conflicting sides moved aside (`from`, `to`).
    pub(super) kept_both: Vec<(String, String)>,
    /// Trunk after the step.
    pub(super) tip: Commit,
}

impl Repository {
    /// The transaction: trunk gains each workspace's changes; every working-copy commit
    /// moves onto the new trunk.
    pub(super) fn integrate(
        &mut self,
        repo: &Arc<ReadonlyRepo>,
        prepared: &mut [Prepared],
        now: &Signature,
    ) -> Result<Integrated, RepoError> {
        let mut tx = repo.start_transaction();
        let trunk_name = RefName::new(&self.trunk).to_owned();
        let (old_trunk, mut rewritten) =
            resolve_trunk(tx.repo_mut(), &trunk_name, prepared, now, &self.name)?;
        let mut tip = old_trunk.clone();
        let mut commits = 0;
        // Commits that leave the view: old working-copy commits and held commits.
        let mut dropped: HashSet<CommitId> = HashSet::new();
        // `rewritten`: commits rewritten into trunk (they leave the view by being rewritten).
        for p in prepared.iter_mut() {
            let mut_repo = tx.repo_mut();
            dropped.insert(p.wc.id().clone());
            for commit in chain(mut_repo, &p.wc, old_trunk.id())? {
                // Workspaces that shared a working-copy commit when the jj CLI committed in
                // one of them all stand on that commit: it joins trunk once.
                if rewritten.contains(commit.id()) {
                    continue;
                }
                // Held commits, and empty undescribed ones (a working copy the jj CLI moved
                // away from with `jj new`), carry nothing to keep.
                if messages::is_held(commit.description()) || is_discardable(mut_repo, &commit)? {
                    dropped.insert(commit.id().clone());
                    continue;
                }
                rewritten.insert(commit.id().clone());
                tip = block_on(jj_lib::rewrite::rebase_commit(
                    mut_repo,
                    commit,
                    vec![tip.id().clone()],
                ))
                .map_err(RepoError::jj)?;
                commits += 1;
            }
            if rewritten.contains(p.wc.id()) {
                continue;
            }
            // A working-copy commit described with the jj CLI is a user's commit: it joins
            // trunk with its message, even when empty.
            let described = !p.wc.description().trim().is_empty();
            let parent_tree = block_on(p.wc.parent_tree(mut_repo)).map_err(RepoError::jj)?;
            if p.content.tree_ids_and_labels() == parent_tree.tree_ids_and_labels() && !described {
                continue;
            }
            let label = format!("mount {}", p.plan.label);
            let merged = merge3(&tip.tree(), &parent_tree, &p.content, "trunk", &label)?;
            if merged.tree_ids_and_labels() == tip.tree().tree_ids_and_labels() && !described {
                continue;
            }
            let builder = if described {
                rewritten.insert(p.wc.id().clone());
                mut_repo
                    .rewrite_commit(&p.wc)
                    .set_parents(vec![tip.id().clone()])
                    .set_tree(merged)
            } else {
                mut_repo
                    .new_commit(vec![tip.id().clone()], merged)
                    .set_description(messages::sync_from(&p.plan.label, &p.plan.id, &self.name))
            };
            tip = block_on(
                builder
                    .set_author(now.clone())
                    .set_committer(now.clone())
                    .write(),
            )
            .map_err(RepoError::jj)?;
            p.sync.committed = true;
            commits += 1;
        }
        // A conflict between a file and a folder (or a symlink) cannot be written as markers:
        // both sides are kept, one of them under a name beside the other.
        let (kept_tip, kept_both) =
            super::sides::keep_both_sides(tx.repo_mut(), &tip, now, &self.name)?;
        if let Some(kept) = kept_tip {
            tip = kept;
            commits += 1;
        }
        if tip.id() != old_trunk.id()
            || tx.repo().get_local_bookmark(&trunk_name).as_normal() != Some(tip.id())
        {
            tx.repo_mut()
                .set_local_bookmark_target(&trunk_name, RefTarget::normal(tip.id().clone()));
        }
        // Every workspace without held files shares one empty working-copy commit on the new
        // trunk: one commit to write, whatever the number of mounts.
        let mut shared: Option<Commit> = None;
        let mut targets = Vec::with_capacity(prepared.len());
        for p in prepared.iter_mut() {
            let target = self.place_working_copy(tx.repo_mut(), p, &tip, &mut shared)?;
            targets.push(target);
        }
        let still_used: HashSet<CommitId> =
            tx.repo().view().wc_commit_ids().values().cloned().collect();
        for id in dropped {
            if still_used.contains(&id) || rewritten.contains(&id) {
                continue;
            }
            let commit = tx.repo().store().get_commit(&id).map_err(RepoError::jj)?;
            tx.repo_mut().record_abandoned_commit(&commit);
        }
        block_on(tx.repo_mut().rebase_descendants()).map_err(RepoError::jj)?;
        if !tx.repo().has_changes() {
            return Ok(Integrated {
                repo: repo.clone(),
                targets,
                commits: 0,
                kept_both: Vec::new(),
                tip,
            });
        }
        let repo =
            block_on(tx.commit(messages::operation::sync(commits))).map_err(RepoError::jj)?;
        Ok(Integrated {
            repo,
            targets,
            commits,
            kept_both,
            tip,
        })
    }

    /// Moves one workspace onto `tip`: onto the `shared` empty commit, or, when a user holds
    /// files of it open, onto a commit of its own that keeps those files as they are on
    /// disk. Returns the commit to check out.
    fn place_working_copy(
        &self,
        mut_repo: &mut MutableRepo,
        p: &mut Prepared,
        tip: &Commit,
        shared: &mut Option<Commit>,
    ) -> Result<Commit, RepoError> {
        let on_disk = p.locked.tree().clone();
        let mut held_paths = Vec::new();
        let mut builder = crate::repo::tree_edit::TreeEdit::new(tip.tree());
        for path in &p.plan.held {
            let Some(repo_path) = path
                .to_str()
                .and_then(|s| RepoPathBuf::from_internal_string(s).ok())
            else {
                continue;
            };
            let tip_value = block_on(tip.tree().path_value(&repo_path)).map_err(RepoError::jj)?;
            let on_disk_value = block_on(on_disk.path_value(&repo_path)).map_err(RepoError::jj)?;
            // Only a path whose file would change needs holding; it keeps exactly what is on
            // disk (for a stale workspace, not the merge of it: that would be written).
            if canonical(&tip_value) != canonical(&on_disk_value) {
                held_paths.push(repo_path.as_internal_file_string().to_owned());
                builder.set(repo_path, on_disk_value);
            }
        }
        let name = workspace_name(&p.plan.id);
        p.sync.held = held_paths.clone();
        let wc = if held_paths.is_empty() {
            let already_there = p.wc.parent_ids() == [tip.id().clone()]
                && p.wc.tree().tree_ids_and_labels() == tip.tree().tree_ids_and_labels()
                && p.wc.description().is_empty()
                && !p.sync.committed;
            if already_there {
                return Ok(p.wc.clone());
            }
            match shared {
                Some(wc) => wc.clone(),
                None => {
                    let wc = block_on(
                        mut_repo
                            .new_commit(vec![tip.id().clone()], tip.tree())
                            .write(),
                    )
                    .map_err(RepoError::jj)?;
                    shared.insert(wc).clone()
                }
            }
        } else {
            let tree = block_on(builder.write()).map_err(RepoError::jj)?;
            let held = block_on(
                mut_repo
                    .new_commit(vec![tip.id().clone()], tree.clone())
                    .set_description(messages::held(&p.plan.label, &p.plan.id, &held_paths))
                    .write(),
            )
            .map_err(RepoError::jj)?;
            block_on(mut_repo.new_commit(vec![held.id().clone()], tree).write())
                .map_err(RepoError::jj)?
        };
        mut_repo
            .set_wc_commit(name, wc.id().clone())
            .map_err(RepoError::jj)?;
        Ok(wc)
    }
}

/// An empty commit with no description: nothing in it to keep (what jj calls discardable).
fn is_discardable(repo: &MutableRepo, commit: &Commit) -> Result<bool, RepoError> {
    Ok(commit.description().trim().is_empty() && is_empty(repo, commit)?)
}

/// The commit trunk points at, settling a bookmark that concurrent operations (or a fetch
/// that found a remote diverged) left with several sides. Returns trunk and the commits it
/// rewrote on the way.
///
/// Nothing a remote has is ever rewritten (other machines build on it): the sides' commits
/// that some remote's trunk contains stay as they are, joined by a merge commit when they
/// diverged. Only commits no remote has yet are rebased, one after another, onto the result,
/// so a machine's unpushed work lines up after what others pushed (and a change that is
/// already there, pushed twice, is dropped).
fn resolve_trunk(
    mut_repo: &mut MutableRepo,
    trunk: &RefName,
    prepared: &[Prepared],
    now: &Signature,
    repo_name: &str,
) -> Result<(Commit, HashSet<CommitId>), RepoError> {
    let mut rewritten = HashSet::new();
    let target = mut_repo.get_local_bookmark(trunk).clone();
    if let Some(id) = target.as_normal() {
        let commit = mut_repo.store().get_commit(id).map_err(RepoError::jj)?;
        return Ok((commit, rewritten));
    }
    let adds: Vec<CommitId> = target.added_ids().cloned().collect();
    if adds.is_empty() {
        // Deleted: continue from where the first workspace stands.
        let parent = prepared
            .first()
            .and_then(|p| p.wc.parent_ids().first().cloned())
            .unwrap_or_else(|| mut_repo.store().root_commit_id().clone());
        let commit = mut_repo
            .store()
            .get_commit(&parent)
            .map_err(RepoError::jj)?;
        mut_repo.set_local_bookmark_target(trunk, RefTarget::normal(commit.id().clone()));
        return Ok((commit, rewritten));
    }
    let heads = block_on(mut_repo.index().heads(&mut adds.iter())).map_err(RepoError::jj)?;
    let published = published_heads(mut_repo, trunk, &heads)?;
    let mut tip = base_of(mut_repo, &heads, &published, now, repo_name)?;
    for head in &heads {
        let head = mut_repo.store().get_commit(head).map_err(RepoError::jj)?;
        for commit in chain_to(mut_repo, &head, tip.id(), true)? {
            rewritten.insert(commit.id().clone());
            // A second history's "create repository" commit has nothing to bring.
            if commit.description() == messages::CREATE_REPOSITORY && is_empty(mut_repo, &commit)? {
                mut_repo.record_abandoned_commit(&commit);
                continue;
            }
            let rebased = block_on(
                CommitRewriter::new(mut_repo, commit, vec![tip.id().clone()])
                    .rebase_with_empty_behavior(EmptyBehavior::AbandonNewlyEmpty),
            )
            .map_err(RepoError::jj)?;
            if let Some(builder) = rebased {
                tip = block_on(builder.write()).map_err(RepoError::jj)?;
            }
        }
    }
    mut_repo.set_local_bookmark_target(trunk, RefTarget::normal(tip.id().clone()));
    Ok((tip, rewritten))
}

/// The remotes' trunks that trunk's sides (`heads`) contain, without those another of them
/// contains: what has left the machine, as (remote, commit), sorted by commit.
fn published_heads(
    mut_repo: &MutableRepo,
    trunk: &RefName,
    heads: &[CommitId],
) -> Result<Vec<(String, CommitId)>, RepoError> {
    let index = mut_repo.index();
    let mut contained = Vec::new();
    for (remote, id) in
        crate::repo::git::remote_trunks(mut_repo.base_repo().as_ref(), trunk.as_str())
    {
        for head in heads {
            if block_on(index.is_ancestor(&id, head)).map_err(RepoError::jj)? {
                contained.push((remote, id));
                break;
            }
        }
    }
    let ids: Vec<CommitId> = contained.iter().map(|(_, id)| id.clone()).collect();
    let mut tops = block_on(index.heads(&mut ids.iter())).map_err(RepoError::jj)?;
    tops.sort();
    Ok(tops
        .into_iter()
        .map(|id| {
            let remotes: Vec<&str> = contained
                .iter()
                .filter(|(_, c)| *c == id)
                .map(|(r, _)| r.as_str())
                .collect();
            (remotes.join(", "), id)
        })
        .collect())
}

/// Where the settled trunk starts: the first side that contains everything `published`
/// (every side when nothing is), else a merge commit of the published commits.
fn base_of(
    mut_repo: &mut MutableRepo,
    heads: &[CommitId],
    published: &[(String, CommitId)],
    now: &Signature,
    repo_name: &str,
) -> Result<Commit, RepoError> {
    for head in heads {
        let mut contains_all = true;
        for (_, id) in published {
            if !block_on(mut_repo.index().is_ancestor(id, head)).map_err(RepoError::jj)? {
                contains_all = false;
                break;
            }
        }
        if contains_all {
            return mut_repo.store().get_commit(head).map_err(RepoError::jj);
        }
    }
    let parents: Vec<Commit> = published
        .iter()
        .map(|(_, id)| mut_repo.store().get_commit(id))
        .collect::<Result<_, _>>()
        .map_err(RepoError::jj)?;
    let tree =
        block_on(jj_lib::rewrite::merge_commit_trees(mut_repo, &parents)).map_err(RepoError::jj)?;
    let remotes: Vec<&str> = published.iter().map(|(r, _)| r.as_str()).collect();
    block_on(
        mut_repo
            .new_commit(parents.iter().map(|c| c.id().clone()).collect(), tree)
            .set_description(messages::join(&remotes, repo_name))
            .set_author(now.clone())
            .set_committer(now.clone())
            .write(),
    )
    .map_err(RepoError::jj)
}

pub(super) fn is_empty(repo: &MutableRepo, commit: &Commit) -> Result<bool, RepoError> {
    let parent_tree = block_on(commit.parent_tree(repo)).map_err(RepoError::jj)?;
    Ok(parent_tree.tree_ids_and_labels() == commit.tree().tree_ids_and_labels())
}

/// The commits between trunk and a working-copy commit (made with the jj CLI, or held
/// commits), parents before children, without the working-copy commit itself.
fn chain(mut_repo: &MutableRepo, wc: &Commit, trunk: &CommitId) -> Result<Vec<Commit>, RepoError> {
    chain_to(mut_repo, wc, trunk, false)
}

/// Ancestors of `head` that are not ancestors of `base`, parents first; `head` itself too
/// when `include_head`.
fn chain_to(
    mut_repo: &MutableRepo,
    head: &Commit,
    base: &CommitId,
    include_head: bool,
) -> Result<Vec<Commit>, RepoError> {
    let index = mut_repo.index();
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    // Iterative post-order walk: a commit is emitted after all its parents.
    let mut stack: Vec<(Commit, bool)> = if include_head {
        vec![(head.clone(), false)]
    } else {
        head.parent_ids()
            .iter()
            .map(|id| mut_repo.store().get_commit(id).map(|c| (c, false)))
            .collect::<Result<_, _>>()
            .map_err(RepoError::jj)?
    };
    while let Some((commit, expanded)) = stack.pop() {
        if expanded {
            order.push(commit);
            continue;
        }
        if !seen.insert(commit.id().clone()) {
            continue;
        }
        if block_on(index.is_ancestor(commit.id(), base)).map_err(RepoError::jj)? {
            continue;
        }
        let parents: Vec<Commit> = commit
            .parent_ids()
            .iter()
            .map(|id| mut_repo.store().get_commit(id))
            .collect::<Result<_, _>>()
            .map_err(RepoError::jj)?;
        stack.push((commit, true));
        for parent in parents {
            if !seen.contains(parent.id()) {
                stack.push((parent, false));
            }
        }
    }
    Ok(order)
}

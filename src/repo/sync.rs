//! One sync step of a repo, in jj terms: snapshot the workspaces that changed, record each
//! one's changes as a commit on trunk, move every workspace's working-copy commit onto the new
//! trunk, and write the new files into each workspace (through its mount).
//!
//! The rules that keep users' writes safe:
//! - Every workspace is locked (jj's own working-copy lock) from its snapshot to its
//!   check-out, and each is snapshotted before anything is written into it.
//! - A workspace's changes are what its files hold relative to its working-copy commit's
//!   parent, applied onto trunk as a three-way merge, so concurrent edits merge the jj way
//!   and true conflicts are recorded as jj conflicts.
//! - A workspace whose working-copy commit someone else rewrote (stale) keeps its unsnapshotted
//!   edits: they are merged onto the new commit before it is checked out.
//! - A path a user holds open for writing is not replaced: the workspace's new commit keeps
//!   that path as it is on disk, on top of a "held" commit that records what it is based on,
//!   so that the write merges once the file is closed.
//! - Commits made by the jj CLI in a workspace are rebased onto trunk with it.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use jj_lib::backend::{CommitId, Signature};
use jj_lib::commit::Commit;
use jj_lib::merge::Merge;
use jj_lib::merged_tree::MergedTree;
use jj_lib::merged_tree_builder::MergedTreeBuilder;
use jj_lib::op_store::RefTarget;
use jj_lib::ref_name::RefName;
use jj_lib::repo::{MutableRepo, ReadonlyRepo, Repo as _};
use jj_lib::repo_path::RepoPathBuf;
use jj_lib::working_copy::{CheckoutStats, SnapshotStats};
use uuid::Uuid;

use super::repository::{Repository, workspace_name};
use super::working_copy::{LockedWorkingCopy, Scan};
use super::{RepoError, block_on};

/// Trailer of the commits that hold paths a user has open for writing.
const HELD_TRAILER: &str = "Jjfs-Held:";

/// The files of a workspace as the sync writes them: a mount uses this to swap files whole
/// and to refuse overwriting what a user changed meanwhile (see `mount::update`).
pub trait FilesGuard: Send + Sync {
    /// Called on the writing thread before the check-out; `replaced` are the paths whose
    /// files the check-out replaces.
    fn begin(&self, replaced: std::collections::HashSet<PathBuf>);
    /// Called when the check-out is done; Err when a user's change stopped it.
    fn end(&self) -> Result<(), String>;
}

/// What to do with one workspace in a sync step.
#[derive(Clone)]
pub struct WorkspacePlan {
    pub id: Uuid,
    /// The mount path, named in commit messages.
    pub label: String,
    pub backing: PathBuf,
    /// Where new files are written: the mount when mounted, else the backing directory.
    pub files_root: PathBuf,
    /// What to snapshot; None when nothing is known to have changed.
    pub scan: Option<Scan>,
    /// Paths users hold open for writing in this mount: never replaced.
    pub held: Vec<PathBuf>,
    /// The mount's guard over the sync's writes (None when writing the backing directory).
    pub guard: Option<Arc<dyn FilesGuard>>,
}

/// What happened to one workspace.
#[derive(Debug, Default)]
pub struct WorkspaceSync {
    /// Its changes became a commit on trunk.
    pub committed: bool,
    pub checkout: Option<CheckoutStats>,
    /// Paths the snapshot could not record, with why.
    pub skipped: Vec<(String, String)>,
    /// Paths left as they are because a user holds them open for writing.
    pub held: Vec<String>,
    /// Paths the check-out wrote or removed, as they looked right after.
    pub written: Vec<(PathBuf, crate::stamp::Stamp)>,
}

#[derive(Debug, Default)]
pub struct SyncReport {
    pub workspaces: Vec<(Uuid, Result<WorkspaceSync, RepoError>)>,
    /// Commits added to trunk.
    pub commits: usize,
    /// A check-out was refused because a user changed a file meanwhile: sync again.
    pub retry: bool,
}

/// A locked workspace and what its snapshot found.
pub(super) struct Prepared {
    pub(super) plan: WorkspacePlan,
    pub(super) locked: LockedWorkingCopy,
    /// Its working-copy commit in the repo's view.
    wc: Commit,
    /// Its files' tree, with edits made while it was stale merged onto `wc`.
    content: MergedTree,
    /// Someone else rewrote its working-copy commit since its files were written.
    stale: bool,
    pub(super) sync: WorkspaceSync,
}

impl Repository {
    /// Runs one sync step over `plans` (every mounted workspace of the repo).
    pub fn sync(&mut self, plans: Vec<WorkspacePlan>, now: Signature) -> SyncReport {
        let mut report = SyncReport::default();
        let repo = match self.head() {
            Ok(repo) => repo,
            Err(err) => {
                report.workspaces = plans
                    .into_iter()
                    .map(|p| (p.id, Err(RepoError::Jj(err.to_string()))))
                    .collect();
                return report;
            }
        };
        let mut plans = plans;
        plans.sort_by_key(|p| p.id);
        let started = std::time::Instant::now();
        let ignores = self.base_ignores();
        let mut prepared = Vec::new();
        for plan in plans {
            let id = plan.id;
            match self.prepare(&repo, plan, ignores.clone()) {
                Ok(p) => prepared.push(p),
                Err(err) => report.workspaces.push((id, Err(err))),
            }
        }
        // A workspace whose files match its commit goes first: when the jj CLI rewrote a
        // working-copy commit that several workspaces share, the change is credited to the
        // workspace it was made in.
        prepared.sort_by_key(|p| (p.stale, p.plan.id));
        let prepared_at = started.elapsed();
        let integrated = self.integrate(&repo, &mut prepared, &now);
        let integrated_at = started.elapsed();
        let (repo, targets, commits) = match integrated {
            Ok(result) => result,
            Err(err) => {
                for p in prepared {
                    report
                        .workspaces
                        .push((p.plan.id, Err(RepoError::Jj(err.to_string()))));
                }
                return report;
            }
        };
        report.commits = commits;
        self.set_current(repo.clone());
        let results = super::checkout::check_out_all(prepared, targets, &repo);
        tracing::debug!(
            repo = %self.name,
            "sync step: snapshots {:?}, transaction {:?}, check-outs {:?}",
            prepared_at,
            integrated_at - prepared_at,
            started.elapsed() - integrated_at
        );
        for (id, result) in results {
            if let Err(RepoError::Busy(_)) = &result {
                report.retry = true;
            }
            report.workspaces.push((id, result));
        }
        report
    }

    fn prepare(
        &self,
        repo: &Arc<ReadonlyRepo>,
        plan: WorkspacePlan,
        ignores: Arc<jj_lib::gitignore::GitIgnoreFile>,
    ) -> Result<Prepared, RepoError> {
        let name = workspace_name(&plan.id);
        let wc_id = repo
            .view()
            .get_wc_commit_id(&name)
            .ok_or_else(|| {
                RepoError::Jj(format!(
                    "workspace {} is missing from the repo (was it forgotten with jj?)",
                    name.as_str()
                ))
            })?
            .clone();
        let wc = repo.store().get_commit(&wc_id).map_err(RepoError::jj)?;
        let mut locked = self
            .working_copy(&plan.backing)
            .lock(&plan.files_root, plan.scan.as_ref())?;
        let base = locked.tree().clone();
        let mut sync = WorkspaceSync::default();
        let disk = if plan.scan.is_some() {
            let (tree, stats) = locked.snapshot(ignores)?;
            sync.skipped = skipped_paths(&stats);
            tree
        } else {
            base.clone()
        };
        let stale = wc.tree().tree_ids_and_labels() != base.tree_ids_and_labels();
        let content = if !stale {
            disk
        } else if disk.tree_ids_and_labels() == base.tree_ids_and_labels() {
            wc.tree()
        } else {
            // Stale: someone rewrote this workspace's commit since its files were written.
            // Keep the edits made on disk since then by merging them onto the new commit.
            merge3(
                &wc.tree(),
                &base,
                &disk,
                "working-copy commit",
                "files on disk",
            )?
        };
        Ok(Prepared {
            plan,
            locked,
            wc,
            content,
            stale,
            sync,
        })
    }

    /// The transaction: trunk gains each workspace's changes; every working-copy commit
    /// moves onto the new trunk. Returns the new repo, each workspace's target commit and
    /// how many commits trunk gained.
    fn integrate(
        &mut self,
        repo: &Arc<ReadonlyRepo>,
        prepared: &mut [Prepared],
        now: &Signature,
    ) -> Result<(Arc<ReadonlyRepo>, Vec<Commit>, usize), RepoError> {
        let mut tx = repo.start_transaction();
        let trunk_name = RefName::new(&self.trunk).to_owned();
        let (old_trunk, mut rewritten) = resolve_trunk(tx.repo_mut(), &trunk_name, prepared)?;
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
                if is_held(&commit) || is_discardable(mut_repo, &commit)? {
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
                    .set_description(commit_message(&p.plan.label, &p.plan.id, &self.name))
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
            return Ok((repo.clone(), targets, 0));
        }
        let description = if commits > 0 {
            format!("jjfs: sync {commits} change(s)")
        } else {
            "jjfs: update working copies".to_owned()
        };
        let repo = block_on(tx.commit(description)).map_err(RepoError::jj)?;
        Ok((repo, targets, commits))
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
        let mut builder = MergedTreeBuilder::new(tip.tree());
        for path in &p.plan.held {
            let Some(repo_path) = path
                .to_str()
                .and_then(|s| RepoPathBuf::from_internal_string(s).ok())
            else {
                continue;
            };
            let disk_value = block_on(p.content.path_value(&repo_path)).map_err(RepoError::jj)?;
            let tip_value = block_on(tip.tree().path_value(&repo_path)).map_err(RepoError::jj)?;
            let old_value = block_on(on_disk.path_value(&repo_path)).map_err(RepoError::jj)?;
            // Only a path whose content would change on disk needs holding.
            if tip_value != old_value {
                held_paths.push(repo_path.as_internal_file_string().to_owned());
                builder.set_or_remove(repo_path, disk_value);
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
            let tree = block_on(builder.write_tree()).map_err(RepoError::jj)?;
            let held = block_on(
                mut_repo
                    .new_commit(vec![tip.id().clone()], tree.clone())
                    .set_description(held_message(&p.plan.label, &p.plan.id, &held_paths))
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
/// that found the remote diverged) left conflicted, by rebasing the other sides onto the
/// remote's side (so that the result can be pushed without forcing), or onto the first side.
/// Returns trunk and the commits it rewrote on the way.
fn resolve_trunk(
    mut_repo: &mut MutableRepo,
    trunk: &RefName,
    prepared: &[Prepared],
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
    // The side that contains all others wins outright; otherwise the others' commits are
    // rebased, one after another, onto the remote's side when it is one of them.
    let mut heads = block_on(mut_repo.index().heads(&mut adds.iter())).map_err(RepoError::jj)?;
    let remote = super::git::remote_trunk(mut_repo.base_repo(), trunk.as_str());
    heads.sort_by_key(|id| Some(id) != remote.as_ref());
    let mut tip = mut_repo
        .store()
        .get_commit(&heads[0])
        .map_err(RepoError::jj)?;
    for other in &heads[1..] {
        let other = mut_repo.store().get_commit(other).map_err(RepoError::jj)?;
        for commit in chain_to(mut_repo, &other, tip.id(), true)? {
            rewritten.insert(commit.id().clone());
            // A second history's "create repository" commit has nothing to bring.
            if commit.description() == CREATE_MESSAGE && is_empty(mut_repo, &commit)? {
                mut_repo.record_abandoned_commit(&commit);
                continue;
            }
            tip = block_on(jj_lib::rewrite::rebase_commit(
                mut_repo,
                commit,
                vec![tip.id().clone()],
            ))
            .map_err(RepoError::jj)?;
        }
    }
    mut_repo.set_local_bookmark_target(trunk, RefTarget::normal(tip.id().clone()));
    Ok((tip, rewritten))
}

/// The description of a repo's first, empty commit.
pub const CREATE_MESSAGE: &str = "jjfs: create repository\n";

fn is_empty(repo: &MutableRepo, commit: &Commit) -> Result<bool, RepoError> {
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

fn is_held(commit: &Commit) -> bool {
    commit
        .description()
        .lines()
        .any(|l| l.starts_with(HELD_TRAILER))
}

/// `base → side` applied onto `onto`, as jj merges when it rebases.
fn merge3(
    onto: &MergedTree,
    base: &MergedTree,
    side: &MergedTree,
    onto_label: &str,
    side_label: &str,
) -> Result<MergedTree, RepoError> {
    block_on(MergedTree::merge(Merge::from_vec(vec![
        (onto.clone(), onto_label.to_owned()),
        (base.clone(), "base".to_owned()),
        (side.clone(), side_label.to_owned()),
    ])))
    .map_err(RepoError::jj)
}

pub fn commit_message(mount: &str, id: &Uuid, repo: &str) -> String {
    format!("jjfs: sync from {mount}\n\nJjfs-Mount: {id}\nJjfs-Repo: {repo}\n")
}

fn held_message(mount: &str, id: &Uuid, paths: &[String]) -> String {
    format!(
        "jjfs: keep files open for writing in {mount} unchanged until closed\n\n{}\n\n{HELD_TRAILER} {id}\n",
        paths.join("\n")
    )
}

fn skipped_paths(stats: &SnapshotStats) -> Vec<(String, String)> {
    let mut skipped: Vec<(String, String)> = stats
        .untracked_paths
        .iter()
        .map(|(path, reason)| {
            (
                path.as_internal_file_string().to_owned(),
                format!("{reason:?}"),
            )
        })
        .collect();
    for (dir, name) in &stats.invalid_utf8_paths {
        let dir = dir.as_internal_file_string();
        let name = name.to_string_lossy();
        let path = if dir.is_empty() {
            name.into_owned()
        } else {
            format!("{dir}/{name}")
        };
        skipped.push((path, "the name is not valid UTF-8".to_owned()));
    }
    skipped
}

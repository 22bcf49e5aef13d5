//! Creating a jjfs repo: a jj repo with the git backend at `repos/<name>/.jj/repo`, with no
//! working copy of its own (each mount adds one), and a trunk bookmark on a first commit.

use std::path::Path;
use std::sync::Arc;

use jj_lib::git_backend::GitBackend;
use jj_lib::op_store::RefTarget;
use jj_lib::ref_name::RefName;
use jj_lib::repo::{ReadonlyRepo, Repo, RepoLoader};
use jj_lib::settings::UserSettings;
use jj_lib::signing::Signer;

use super::git::GitProgressSink;
use super::{RepoError, block_on};

/// `repos/<name>/.jj/repo`, where jj keeps the store, operations and index.
pub fn repo_dir(root: &Path) -> std::path::PathBuf {
    root.join(".jj").join("repo")
}

/// The bare git repository inside the store.
pub fn git_dir(root: &Path) -> std::path::PathBuf {
    repo_dir(root).join("store").join("git")
}

/// Creates the repo at `root` (which must not exist) with `trunk` on an empty first commit.
/// `ignore` is written to git's `info/exclude`, where both jjfs and the jj CLI read it.
pub fn create_repo(
    root: &Path,
    settings: &UserSettings,
    trunk: &str,
    ignore: &[String],
) -> Result<(), RepoError> {
    create_with(root, settings, ignore, |repo| ensure_trunk(repo, trunk))
}

/// Creates the repo at `root` from the git repository at `url` (history kept, `url` as its
/// remote; see `git::clone_into`), reporting a long fetch's progress. Returns the trunk.
/// History with a path no workspace may hold is refused, and nothing is left behind.
pub fn create_from(
    root: &Path,
    settings: &UserSettings,
    url: &str,
    ignore: &[String],
    progress: &mut dyn GitProgressSink,
) -> Result<String, RepoError> {
    create_with(root, settings, ignore, |_| {
        let calls = super::deadline::GitCalls::from_env();
        let (trunk, found) = super::git::clone_into(root, settings, url, progress, &calls)?;
        if !found {
            // An empty remote: start the history here; the first push fills it.
            ensure_trunk(&super::git::head(root, settings)?, &trunk)?;
        }
        Ok(trunk)
    })
}

/// Creates the store, lets `fill` give it a trunk, and adds what every repo has; on any
/// failure nothing is left behind.
fn create_with<T>(
    root: &Path,
    settings: &UserSettings,
    ignore: &[String],
    fill: impl FnOnce(&Arc<ReadonlyRepo>) -> Result<T, RepoError>,
) -> Result<T, RepoError> {
    if root.exists() {
        return Err(RepoError::Exists(root.display().to_string()));
    }
    let dir = repo_dir(root);
    std::fs::create_dir_all(&dir).map_err(RepoError::io(&dir))?;
    let result = init_store(&dir, settings).and_then(|repo| {
        let filled = fill(&repo)?;
        write_excludes(root, ignore)?;
        std::fs::create_dir_all(root.join("workspaces")).map_err(RepoError::io(root))?;
        Ok(filled)
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(root);
    }
    result
}

fn init_store(dir: &Path, settings: &UserSettings) -> Result<Arc<ReadonlyRepo>, RepoError> {
    let signer = Signer::from_settings(settings).map_err(RepoError::jj)?;
    block_on(ReadonlyRepo::init(
        settings,
        dir,
        &|settings, store_path| {
            Ok(Box::new(GitBackend::init_internal(
                settings,
                store_path,
                gix::hash::Kind::Sha1,
            )?))
        },
        signer,
        ReadonlyRepo::default_op_store_initializer(),
        ReadonlyRepo::default_op_heads_store_initializer(),
        ReadonlyRepo::default_index_store_initializer(),
        ReadonlyRepo::default_submodule_store_initializer(),
    ))
    .map_err(RepoError::jj)
}

/// Points `trunk` at a new, empty first commit unless it exists already.
fn ensure_trunk(repo: &Arc<ReadonlyRepo>, trunk: &str) -> Result<(), RepoError> {
    if repo
        .view()
        .get_local_bookmark(RefName::new(trunk))
        .is_present()
    {
        return Ok(());
    }
    let mut tx = repo.start_transaction();
    let root_id = repo.store().root_commit_id().clone();
    let first = block_on(
        tx.repo_mut()
            .new_commit(vec![root_id], repo.store().empty_merged_tree())
            .set_description(super::messages::CREATE_REPOSITORY)
            .write(),
    )
    .map_err(RepoError::jj)?;
    tx.repo_mut()
        .set_local_bookmark_target(RefName::new(trunk), RefTarget::normal(first.id().clone()));
    block_on(tx.commit("jjfs: create repository")).map_err(RepoError::jj)?;
    Ok(())
}

/// Loads the repo at `root` for the daemon: one loader shared by all its workspaces.
pub fn load_repo(root: &Path, settings: &UserSettings) -> Result<RepoLoader, RepoError> {
    RepoLoader::init_from_file_system(
        settings,
        &repo_dir(root),
        &jj_lib::default_backend_factories::default_backend_factories(),
    )
    .map_err(RepoError::jj)
}

/// Writes jjfs's ignore patterns to git's `info/exclude`, which the jj CLI reads too.
pub fn write_excludes(root: &Path, ignore: &[String]) -> Result<(), RepoError> {
    let path = git_dir(root).join("info").join("exclude");
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(RepoError::io(parent))?;
    }
    let mut text = String::from(
        "# Written by jjfs from the repo's `ignore` setting; edit it with `jjfs config`.\n",
    );
    for pattern in ignore {
        text.push_str(pattern);
        text.push('\n');
    }
    crate::atomic_file::write(&path, text.as_bytes()).map_err(RepoError::io(&path))
}

/// The commit the trunk bookmark points at in `repo`, if it points at exactly one.
pub fn trunk_commit(
    repo: &ReadonlyRepo,
    trunk: &str,
) -> Result<Option<jj_lib::commit::Commit>, RepoError> {
    let target = repo.view().get_local_bookmark(RefName::new(trunk));
    match target.as_normal() {
        Some(id) => Ok(Some(repo.store().get_commit(id).map_err(RepoError::jj)?)),
        None => Ok(None),
    }
}

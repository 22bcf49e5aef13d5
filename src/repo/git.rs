//! A repo's git remotes: configure them, fetch trunk from one, push trunk to one, and create a
//! repo from an existing git repository. jj-lib runs `git` for the network work (so ssh keys,
//! agents and credential helpers work as for git). Each remote is a git remote of the repo's
//! store under its own name, with its own remote-tracking bookmark of trunk (`main@NAME`).
//!
//! A fetch never leaves trunk behind a remote: when the remote's trunk is not in trunk's
//! history, trunk becomes a conflict of both, which the sync actor joins (`step::integrate`)
//! without rewriting anything a remote has.
//!
//! Two guards stand between a remote and the repo: each network call's git has a deadline on
//! silence (`deadline`), and history a fetch brought is checked (`validate`) after git wrote
//! it and before jj-lib imports it; refused history is never imported (the remote-tracking
//! refs are put back), so a bad commit on a remote cannot wedge the repo.
//!
//! Each call works through a fresh `RepoLoader`: jj-lib's store caches the git remote
//! configuration when it loads, so a long-lived one would not see a remote added since. The
//! operations these calls commit are merged by the sync actor when it next loads the repo.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use gix::ObjectId;

use jj_lib::backend::CommitId;
use jj_lib::git::{
    self, GitFetch, GitFetchRefExpression, GitImportOptions, GitProgress, GitPushOptions,
    GitPushRefTargets, GitSettings, GitSidebandLineTerminator, GitSubprocessCallback,
    GitSubprocessOptions,
};
use jj_lib::merge::Merge;
use jj_lib::op_store::RefTarget;
use jj_lib::ref_name::{RefName, RemoteName};
use jj_lib::refs::{LocalAndRemoteRef, RefPushAction, classify_ref_push_action};
use jj_lib::repo::{ReadonlyRepo, Repo as _};
use jj_lib::settings::UserSettings;
use jj_lib::str_util::{StringExpression, StringMatcher};

use super::create::load_repo;
use super::deadline::{GitCalls, Stopped, Watch};
use super::validate::Validator;
use super::{RepoError, block_on};

/// The remote `init --from` sets up.
pub const REMOTE: &str = crate::config::DEFAULT_REMOTE;

fn origin() -> &'static RemoteName {
    RemoteName::new(REMOTE)
}

/// Checks a remote URL as git reads it (a path, file://, ssh://, user@host:path, https://)
/// and returns it with a relative local path made absolute against `cwd`. The remote need
/// not exist yet: until it does, backups are reported as delayed.
pub fn normalize_url(url: &str, cwd: &Path) -> Result<String, String> {
    use gix::url::Scheme;
    let url = url.trim();
    if url.is_empty() {
        return Err("the remote URL is empty".to_owned());
    }
    let parsed = gix::url::parse(gix::bstr::BStr::new(url))
        .map_err(|e| format!("{url:?} is not a git URL: {e}"))?;
    match parsed.scheme {
        Scheme::File if !url.contains("://") => {
            Ok(lexically_absolute(&cwd.join(url)).display().to_string())
        }
        Scheme::File | Scheme::Git | Scheme::Ssh | Scheme::Http | Scheme::Https => {
            Ok(url.to_owned())
        }
        _ => Err(format!(
            "{url:?} is not a URL jjfs can back up to: use a path, file://, ssh://, \
             user@host:path or https://"
        )),
    }
}

/// `path` without `.` and `..` components (the remote may not exist, so no realpath).
fn lexically_absolute(path: &Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Where network progress and git's messages go.
pub trait GitProgressSink {
    fn progress(&mut self, message: &str);
}

/// Collects git's side messages (they explain failures) and forwards progress.
struct Callback<'a> {
    sink: Option<&'a mut dyn GitProgressSink>,
    messages: Vec<String>,
    last_percent: Option<u32>,
}

impl<'a> Callback<'a> {
    fn new(sink: Option<&'a mut dyn GitProgressSink>) -> Self {
        Self {
            sink,
            messages: Vec::new(),
            last_percent: None,
        }
    }

    /// An error with git's own messages attached.
    fn error(&self, err: impl std::fmt::Display) -> RepoError {
        let mut text = err.to_string().trim().replace('\n', " ");
        let extra: Vec<&str> = self
            .messages
            .iter()
            .map(|m| m.trim())
            .filter(|m| !m.is_empty() && !text.contains(*m))
            .collect();
        if !extra.is_empty() {
            text.push_str(&format!(" ({})", extra.join("; ")));
        }
        RepoError::Remote(text)
    }

    fn note(&mut self, message: &[u8]) {
        let text = String::from_utf8_lossy(message).trim().to_owned();
        if !text.is_empty() && self.messages.len() < 20 {
            self.messages.push(text);
        }
    }
}

impl GitSubprocessCallback for Callback<'_> {
    fn needs_progress(&self) -> bool {
        self.sink.is_some()
    }

    fn progress(&mut self, progress: &GitProgress) -> std::io::Result<()> {
        let percent = (progress.overall() * 100.0) as u32;
        if self.last_percent != Some(percent)
            && let Some(sink) = &mut self.sink
        {
            self.last_percent = Some(percent);
            sink.progress(&format!(
                "fetching: {percent}% ({} of {} objects)",
                progress.objects.0, progress.objects.1
            ));
        }
        Ok(())
    }

    fn local_sideband(
        &mut self,
        message: &[u8],
        _: Option<GitSidebandLineTerminator>,
    ) -> std::io::Result<()> {
        self.note(message);
        Ok(())
    }

    fn remote_sideband(
        &mut self,
        message: &[u8],
        _: Option<GitSidebandLineTerminator>,
    ) -> std::io::Result<()> {
        self.note(message);
        Ok(())
    }
}

/// The ssh a daemon runs when the user chose none: never prompting, never waiting long for a
/// host that does not answer.
pub const DEFAULT_SSH_COMMAND: &str = "ssh -o BatchMode=yes -o ConnectTimeout=30";

/// How git runs for a daemon: never waiting for a password or host-key prompt nobody sees,
/// nor long for a host that does not answer (a user's own `GIT_SSH_COMMAND` is kept), and
/// marked for the deadline `watch` keeps.
fn subprocess_options(
    settings: &UserSettings,
    watch: &Watch,
) -> Result<GitSubprocessOptions, RepoError> {
    let mut options = GitSettings::from_settings(settings)
        .map_err(RepoError::jj)?
        .to_subprocess_options();
    options
        .environment
        .insert("GIT_TERMINAL_PROMPT".into(), "0".into());
    if std::env::var_os("GIT_SSH_COMMAND").is_none() {
        options
            .environment
            .insert("GIT_SSH_COMMAND".into(), DEFAULT_SSH_COMMAND.into());
    }
    let (key, value) = watch.env();
    options.environment.insert(key, value);
    Ok(options)
}

/// Starts the deadline of one network call.
fn watch(calls: &GitCalls) -> Result<Watch, RepoError> {
    calls
        .watch()
        .ok_or_else(|| RepoError::Remote("stopped: jjfs is shutting down".to_owned()))
}

/// The error of a network call that failed with `err`: the deadline's if the watchdog
/// stopped it, else git's own message.
fn network_error(
    stopped: Option<Stopped>,
    git_repo: &gix::Repository,
    remote: &RemoteName,
    callback: &Callback,
    err: impl std::fmt::Display,
) -> RepoError {
    match stopped {
        Some(Stopped::Silent(after)) => RepoError::RemoteTimeout {
            url: remote_url(git_repo, remote),
            secs: after.as_secs(),
        },
        Some(Stopped::Cancelled) => RepoError::Remote("stopped: jjfs is shutting down".to_owned()),
        None => callback.error(err),
    }
}

/// A remote's URL as git has it (for messages).
fn remote_url(git_repo: &gix::Repository, remote: &RemoteName) -> String {
    git_repo
        .find_remote(remote.as_str())
        .ok()
        .and_then(|r| r.url(gix::remote::Direction::Fetch).map(|u| u.to_bstring()))
        .map(|u| u.to_string())
        .unwrap_or_else(|| remote.as_str().to_owned())
}

fn git_repo(store: &jj_lib::store::Store) -> Result<gix::Repository, RepoError> {
    Ok(git::get_git_backend(store)
        .map_err(RepoError::jj)?
        .git_repo())
}

/// The remote-tracking refs of `remote` in the git store: full name to commit.
fn remote_refs(
    git_repo: &gix::Repository,
    remote: &RemoteName,
) -> Result<BTreeMap<String, ObjectId>, RepoError> {
    let prefix = format!("refs/remotes/{}/", remote.as_str());
    let platform = git_repo.references().map_err(RepoError::jj)?;
    let mut refs = BTreeMap::new();
    for reference in platform.prefixed(prefix.as_str()).map_err(RepoError::jj)? {
        let reference = reference.map_err(RepoError::jj)?;
        if let Some(id) = reference.target().try_id() {
            refs.insert(reference.name().as_bstr().to_string(), id.to_owned());
        }
    }
    Ok(refs)
}

/// Puts `remote`'s remote-tracking refs back as they were `before` a fetch, so that jj never
/// imports what the fetch brought.
fn restore_remote_refs(
    git_repo: &gix::Repository,
    remote: &RemoteName,
    before: &BTreeMap<String, ObjectId>,
) -> Result<(), RepoError> {
    use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
    let now = remote_refs(git_repo, remote)?;
    let names: std::collections::BTreeSet<&String> = before.keys().chain(now.keys()).collect();
    for name in names {
        let (was, is) = (before.get(name), now.get(name));
        if was == is {
            continue;
        }
        let change = match was {
            Some(id) => Change::Update {
                log: LogChange {
                    mode: RefLog::AndReference,
                    force_create_reflog: false,
                    message: "jjfs: refused fetched history".into(),
                },
                expected: PreviousValue::Any,
                new: gix::refs::Target::Object(*id),
            },
            None => Change::Delete {
                expected: PreviousValue::Any,
                log: RefLog::AndReference,
            },
        };
        git_repo
            .edit_reference(RefEdit {
                change,
                name: name.as_str().try_into().map_err(RepoError::jj)?,
                deref: false,
            })
            .map_err(RepoError::jj)?;
    }
    Ok(())
}

pub(super) fn head(root: &Path, settings: &UserSettings) -> Result<Arc<ReadonlyRepo>, RepoError> {
    let loader = load_repo(root, settings)?;
    block_on(loader.load_at_head()).map_err(RepoError::jj)
}

/// Makes git remote `name` point at `url` (adding or changing it), or removes it (and its
/// remote-tracking bookmarks) when `url` is None.
pub fn set_remote(
    root: &Path,
    settings: &UserSettings,
    name: &str,
    url: Option<&str>,
) -> Result<(), RepoError> {
    // jj-lib reads, edits and rewrites the git config file: two remotes' workers (or a
    // worker and `remote add`) doing so at once would each drop the other's remote.
    static CONFIG_WRITES: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _writing = CONFIG_WRITES.lock().unwrap_or_else(|e| e.into_inner());
    let repo = head(root, settings)?;
    let remote = RemoteName::new(name);
    let names = git::get_all_remote_names(repo.store()).map_err(RepoError::jj)?;
    let exists = names.iter().any(|n| n.as_str() == name);
    match (url, exists) {
        (Some(url), true) => {
            git::set_remote_urls(repo.store(), remote, Some(url), None).map_err(RepoError::jj)
        }
        (Some(url), false) => {
            let mut tx = repo.start_transaction();
            git::add_remote(tx.repo_mut(), remote, url, None).map_err(RepoError::jj)?;
            block_on(tx.commit(format!("jjfs: add git remote {name}"))).map_err(RepoError::jj)?;
            Ok(())
        }
        (None, true) => {
            let mut tx = repo.start_transaction();
            git::remove_remote(tx.repo_mut(), remote).map_err(RepoError::jj)?;
            block_on(tx.commit(format!("jjfs: remove git remote {name}")))
                .map_err(RepoError::jj)?;
            Ok(())
        }
        (None, false) => Ok(()),
    }
}

/// Options for importing what a fetch from `remote` brought: trunk is tracked; commits the
/// remote dropped are kept (a backup never throws history away).
fn import_options(
    settings: &UserSettings,
    remote: &RemoteName,
    trunk: &str,
) -> Result<GitImportOptions, RepoError> {
    let git_settings = GitSettings::from_settings(settings).map_err(RepoError::jj)?;
    Ok(GitImportOptions {
        abandon_unreachable_commits: false,
        record_synthetic_predecessors: git_settings.record_synthetic_predecessors,
        remote_auto_track_bookmarks: HashMap::from([(
            remote.to_owned(),
            StringMatcher::exact(trunk),
        )]),
    })
}

/// What happens to history a fetch refused (the end of `RepoError::UnsafeCommit`'s message).
const NOT_INTEGRATED: &str = "it is not integrated until the remote is fixed";
const NOT_IMPORTED: &str = "nothing was imported; fix the remote and try again";

/// Fetches `bookmarks` from `remote` into `mut_repo` and imports them, unless the new history
/// holds a commit no workspace may check out (see `validate`): then the remote-tracking refs
/// are put back and nothing is imported. `known` says whether jj already has a commit.
/// Returns what the import changed and, when `ask_default_branch` (one more round trip to
/// the remote), the branch the remote's HEAD names.
#[allow(clippy::too_many_arguments)]
fn fetch_remote(
    mut_repo: &mut jj_lib::repo::MutableRepo,
    remote: &RemoteName,
    known: &dyn Fn(&gix::oid) -> bool,
    settings: &UserSettings,
    options: &GitImportOptions,
    bookmarks: StringExpression,
    ask_default_branch: bool,
    callback: &mut Callback,
    calls: &GitCalls,
    refused: &'static str,
) -> Result<(git::GitImportStats, Option<jj_lib::ref_name::RefNameBuf>), RepoError> {
    let refspecs = git::expand_fetch_refspecs(
        remote,
        GitFetchRefExpression {
            bookmark: bookmarks,
            tag: StringExpression::none(),
        },
    )
    .map_err(RepoError::jj)?;
    let git_repo = git_repo(mut_repo.store())?;
    let before = remote_refs(&git_repo, remote)?;
    let watch = watch(calls)?;
    let mut fetch = GitFetch::new(mut_repo, subprocess_options(settings, &watch)?, options)
        .map_err(RepoError::jj)?;
    let network = fetch
        .fetch(remote, refspecs, &mut *callback, None)
        .map_err(|e| e.to_string())
        .and_then(|()| match ask_default_branch {
            true => fetch.get_default_branch(remote).map_err(|e| e.to_string()),
            false => Ok(None),
        });
    let stopped = watch.finish();
    let default_branch =
        network.map_err(|e| network_error(stopped, &git_repo, remote, callback, e))?;

    // Check what arrived before jj reads any of it.
    let after = remote_refs(&git_repo, remote)?;
    let mut validator = Validator::new(&git_repo, known);
    for (name, tip) in &after {
        if before.get(name) == Some(tip) {
            continue;
        }
        if let Err(refused_commit) = validator.check(*tip) {
            restore_remote_refs(&git_repo, remote, &before)?;
            let branch = name
                .strip_prefix(&format!("refs/remotes/{}/", remote.as_str()))
                .unwrap_or(name);
            tracing::warn!(
                "refused {name} at {tip}: commit {} has {}",
                refused_commit.commit,
                refused_commit.problem
            );
            return Err(RepoError::UnsafeCommit {
                branch: branch.to_owned(),
                commit: refused_commit.short_id(),
                problem: refused_commit.problem,
                then: refused,
            });
        }
    }
    let stats = block_on(fetch.import_refs()).map_err(RepoError::jj)?;
    Ok((stats, default_branch))
}

/// Whether the jj index of `repo` has commit `id`.
fn known_to(repo: &ReadonlyRepo) -> impl Fn(&gix::oid) -> bool + '_ {
    move |id| {
        let id = CommitId::from_bytes(id.as_bytes());
        block_on(repo.index().has_id(&id)).unwrap_or(false)
    }
}

/// Fetches trunk from remote `name` and records it in a new operation (the sync actor
/// integrates it). Returns whether trunk has something new to integrate: the remote's trunk
/// moved, or trunk does not contain it yet (it then becomes a conflict of both sides, which
/// the actor joins).
/// A commit whose tree holds an unsafe path is refused (`RepoError::UnsafeCommit`): nothing
/// is imported, and the next fetch tries again.
pub fn fetch(
    root: &Path,
    settings: &UserSettings,
    name: &str,
    trunk: &str,
    calls: &GitCalls,
) -> Result<bool, RepoError> {
    let remote = RemoteName::new(name);
    let repo = head(root, settings)?;
    let options = import_options(settings, remote, trunk)?;
    let mut tx = repo.start_transaction();
    let mut callback = Callback::new(None);
    let (stats, _) = fetch_remote(
        tx.repo_mut(),
        remote,
        &known_to(&repo),
        settings,
        &options,
        StringExpression::exact(trunk),
        false,
        &mut callback,
        calls,
        NOT_INTEGRATED,
    )?;
    let trunk_ref = RefName::new(trunk);
    // The remote deleting trunk must not delete ours: it is pushed back instead.
    let before = repo.view().get_local_bookmark(trunk_ref).clone();
    if tx.repo().get_local_bookmark(trunk_ref).is_absent() && before.is_present() {
        tx.repo_mut().set_local_bookmark_target(trunk_ref, before);
    }
    let joined = include_remote_trunk(tx.repo_mut(), trunk_ref, remote)?;
    block_on(tx.repo_mut().rebase_descendants()).map_err(RepoError::jj)?;
    if !tx.repo().has_changes() {
        return Ok(false);
    }
    let changed = joined || !stats.changed_remote_bookmarks.is_empty();
    block_on(tx.commit(format!("jjfs: fetch {trunk} from git remote {name}")))
        .map_err(RepoError::jj)?;
    Ok(changed)
}

/// Makes sure trunk's history contains `remote`'s trunk: when no side of trunk has it (the
/// histories diverged, or a remote that trunk never met), it becomes one more side of trunk,
/// for the actor to join. Returns whether trunk changed.
fn include_remote_trunk(
    mut_repo: &mut jj_lib::repo::MutableRepo,
    trunk: &RefName,
    remote: &RemoteName,
) -> Result<bool, RepoError> {
    let symbol = trunk.to_remote_symbol(remote);
    let Some(tip) = mut_repo
        .get_remote_bookmark(symbol)
        .target
        .as_normal()
        .cloned()
    else {
        return Ok(false);
    };
    let local = mut_repo.get_local_bookmark(trunk).clone();
    let mut sides: Vec<CommitId> = local.added_ids().cloned().collect();
    for side in &sides {
        if block_on(mut_repo.index().is_ancestor(&tip, side)).map_err(RepoError::jj)? {
            return Ok(false);
        }
    }
    sides.push(tip);
    let target = match sides.as_slice() {
        [only] => RefTarget::normal(only.clone()),
        _ => RefTarget::from_merge(Merge::from_removes_adds(
            vec![None; sides.len() - 1],
            sides.into_iter().map(Some),
        )),
    };
    mut_repo.set_local_bookmark_target(trunk, target);
    Ok(true)
}

/// What a push did.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// The remote already had trunk as it is here.
    UpToDate,
    Pushed,
    /// The remote moved since the last fetch, or trunk is still to be settled: fetch and
    /// integrate, then push again.
    RemoteMoved,
}

/// Pushes trunk to remote `name` if the remote's trunk is an ancestor of ours (never
/// forcing). Nothing runs when the remote already has trunk as it is here.
pub fn push(
    root: &Path,
    settings: &UserSettings,
    name: &str,
    trunk: &str,
    calls: &GitCalls,
) -> Result<Pushed, RepoError> {
    let remote = RemoteName::new(name);
    let repo = head(root, settings)?;
    let trunk_ref = RefName::new(trunk);
    let view = repo.view();
    let refs = LocalAndRemoteRef {
        local_target: view.get_local_bookmark(trunk_ref),
        remote_ref: view.get_remote_bookmark(trunk_ref.to_remote_symbol(remote)),
    };
    let update = match classify_ref_push_action(refs) {
        RefPushAction::Update(update) => update,
        RefPushAction::AlreadyMatches => return Ok(Pushed::UpToDate),
        // Trunk is being joined with another side: the actor settles it.
        RefPushAction::LocalConflicted
        | RefPushAction::RemoteConflicted
        | RefPushAction::RemoteUntracked => {
            return Ok(Pushed::RemoteMoved);
        }
    };
    if let (Some(old), Some(new)) = (&update.before, &update.after)
        && !block_on(repo.index().is_ancestor(old, new)).map_err(RepoError::jj)?
    {
        return Ok(Pushed::RemoteMoved);
    }
    let mut tx = repo.start_transaction();
    let targets = GitPushRefTargets {
        bookmarks: vec![(trunk_ref.to_owned(), update)],
        tags: Vec::new(),
    };
    let mut callback = Callback::new(None);
    let git_repo = git_repo(repo.store())?;
    let watch = watch(calls)?;
    let pushed = git::push_refs(
        tx.repo_mut(),
        subprocess_options(settings, &watch)?,
        remote,
        &targets,
        &mut callback,
        &GitPushOptions::default(),
    );
    let stopped = watch.finish();
    let stats = pushed.map_err(|e| network_error(stopped, &git_repo, remote, &callback, e))?;
    if !stats.remote_rejected.is_empty() {
        let why: Vec<String> = stats
            .remote_rejected
            .iter()
            .map(|(r, why)| {
                format!(
                    "{}: {}",
                    String::from_utf8_lossy(r.as_str().as_bytes()),
                    why.as_deref().unwrap_or("rejected")
                )
            })
            .collect();
        return Err(callback.error(format!("the remote refused the push: {}", why.join(", "))));
    }
    if !stats.rejected.is_empty() {
        return Ok(Pushed::RemoteMoved);
    }
    block_on(tx.commit(format!("jjfs: push {trunk} to git remote {name}")))
        .map_err(RepoError::jj)?;
    Ok(Pushed::Pushed)
}

/// Where each remote's trunk points, as last fetched or pushed: (remote, commit).
pub fn remote_trunks(repo: &dyn jj_lib::repo::Repo, trunk: &str) -> Vec<(String, CommitId)> {
    repo.view()
        .all_remote_bookmarks()
        .filter(|(symbol, _)| {
            symbol.name.as_str() == trunk && symbol.remote != git::REMOTE_NAME_FOR_LOCAL_GIT_REPO
        })
        .filter_map(|(symbol, r)| {
            let id = r.target.as_normal()?.clone();
            Some((symbol.remote.as_str().to_owned(), id))
        })
        .collect()
}

/// Where remote `name`'s trunk points as this repo last saw it (hex), if anywhere.
pub fn known_remote_trunk(
    root: &Path,
    settings: &UserSettings,
    name: &str,
    trunk: &str,
) -> Result<Option<String>, RepoError> {
    let repo = head(root, settings)?;
    let symbol = RefName::new(trunk).to_remote_symbol(RemoteName::new(name));
    Ok(repo
        .view()
        .get_remote_bookmark(symbol)
        .target
        .as_normal()
        .map(jj_lib::object_id::ObjectId::hex))
}

/// Fills a new repo (created without a first commit) from the git repository at `url`:
/// every branch's history, `url` as `origin`, and trunk on the branch the remote's HEAD
/// names, else `main`, else its only branch. Returns the trunk's name, and whether the
/// remote had any branch.
/// A branch with a commit that holds an unsafe path fails it (`RepoError::UnsafeCommit`).
pub fn clone_into(
    root: &Path,
    settings: &UserSettings,
    url: &str,
    progress: &mut dyn GitProgressSink,
    calls: &GitCalls,
) -> Result<(String, bool), RepoError> {
    set_remote(root, settings, REMOTE, Some(url))?;
    let repo = head(root, settings)?;
    let options = GitImportOptions {
        abandon_unreachable_commits: false,
        record_synthetic_predecessors: false,
        remote_auto_track_bookmarks: HashMap::new(),
    };
    let mut tx = repo.start_transaction();
    let mut callback = Callback::new(Some(progress));
    let (_, default_branch) = fetch_remote(
        tx.repo_mut(),
        origin(),
        &known_to(&repo),
        settings,
        &options,
        StringExpression::all(),
        true,
        &mut callback,
        calls,
        NOT_IMPORTED,
    )?;
    let branches: Vec<String> = tx
        .repo()
        .view()
        .remote_bookmarks(origin())
        .filter(|(_, r)| r.is_present())
        .map(|(name, _)| name.as_str().to_owned())
        .collect();
    let trunk = default_branch
        .map(|b| b.as_str().to_owned())
        .filter(|b| branches.contains(b))
        .or_else(|| branches.iter().find(|b| *b == "main").cloned())
        .or_else(|| (branches.len() == 1).then(|| branches[0].clone()))
        .or_else(|| branches.first().cloned());
    let found = trunk.is_some();
    let trunk = trunk.unwrap_or_else(|| crate::config::DEFAULT_TRUNK.to_owned());
    if found {
        let symbol = RefName::new(&trunk).to_remote_symbol(origin());
        block_on(tx.repo_mut().track_remote_bookmark(symbol)).map_err(RepoError::jj)?;
    }
    block_on(tx.repo_mut().rebase_descendants()).map_err(RepoError::jj)?;
    block_on(tx.commit(format!("jjfs: fetch from git remote {REMOTE}"))).map_err(RepoError::jj)?;
    Ok((trunk, found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_git_accepts_are_kept() {
        let cwd = Path::new("/home/me");
        for url in [
            "https://example.com/notes.git",
            "ssh://git@example.com:2222/notes.git",
            "git@example.com:notes.git",
            "file:///srv/notes.git",
            "/srv/notes.git",
        ] {
            assert_eq!(normalize_url(url, cwd).as_deref(), Ok(url));
        }
    }

    #[test]
    fn relative_paths_become_absolute() {
        let cwd = Path::new("/home/me");
        assert_eq!(
            normalize_url("backups/notes.git", cwd).as_deref(),
            Ok("/home/me/backups/notes.git")
        );
        assert_eq!(
            normalize_url("../notes.git", cwd).as_deref(),
            Ok("/home/notes.git")
        );
    }

    #[test]
    fn malformed_urls_are_refused() {
        let cwd = Path::new("/");
        for url in ["", "  ", "ftp://example.com/x.git", "https://", "ssh://"] {
            assert!(normalize_url(url, cwd).is_err(), "{url:?} was accepted");
        }
    }
}

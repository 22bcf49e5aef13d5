//! A repo's git remote: configure it, fetch trunk from it, push trunk to it, and create a repo
//! from an existing git repository. jj-lib runs `git` for the network work (so ssh keys,
//! agents and credential helpers work as for git).
//!
//! Each call works through a fresh `RepoLoader`: jj-lib's store caches the git remote
//! configuration when it loads, so a long-lived one would not see a remote added since. The
//! operations these calls commit are merged by the sync actor when it next loads the repo.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use jj_lib::git::{
    self, GitFetch, GitFetchRefExpression, GitImportOptions, GitProgress, GitPushOptions,
    GitPushRefTargets, GitSettings, GitSidebandLineTerminator, GitSubprocessCallback,
    GitSubprocessOptions,
};
use jj_lib::ref_name::{RefName, RemoteName};
use jj_lib::refs::{LocalAndRemoteRef, RefPushAction, classify_ref_push_action};
use jj_lib::repo::{ReadonlyRepo, Repo as _};
use jj_lib::settings::UserSettings;
use jj_lib::str_util::{StringExpression, StringMatcher};

use super::create::load_repo;
use super::{RepoError, block_on};

/// The name of the git remote jjfs backs a repo up to.
pub const REMOTE: &str = "origin";

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

/// How git runs for a daemon: never waiting for a password or host-key prompt nobody sees,
/// nor long for a host that does not answer (a user's own `GIT_SSH_COMMAND` is kept).
fn subprocess_options(settings: &UserSettings) -> Result<GitSubprocessOptions, RepoError> {
    let mut options = GitSettings::from_settings(settings)
        .map_err(RepoError::jj)?
        .to_subprocess_options();
    options
        .environment
        .insert("GIT_TERMINAL_PROMPT".into(), "0".into());
    if std::env::var_os("GIT_SSH_COMMAND").is_none() {
        options.environment.insert(
            "GIT_SSH_COMMAND".into(),
            "ssh -o BatchMode=yes -o ConnectTimeout=30".into(),
        );
    }
    Ok(options)
}

pub(super) fn head(root: &Path, settings: &UserSettings) -> Result<Arc<ReadonlyRepo>, RepoError> {
    let loader = load_repo(root, settings)?;
    block_on(loader.load_at_head()).map_err(RepoError::jj)
}

/// Makes `origin` point at `url` (adding or changing it), or removes it when `url` is None.
pub fn set_remote(
    root: &Path,
    settings: &UserSettings,
    url: Option<&str>,
) -> Result<(), RepoError> {
    let repo = head(root, settings)?;
    let names = git::get_all_remote_names(repo.store()).map_err(RepoError::jj)?;
    let exists = names.iter().any(|n| n.as_str() == REMOTE);
    match (url, exists) {
        (Some(url), true) => {
            git::set_remote_urls(repo.store(), origin(), Some(url), None).map_err(RepoError::jj)
        }
        (Some(url), false) => {
            let mut tx = repo.start_transaction();
            git::add_remote(tx.repo_mut(), origin(), url, None).map_err(RepoError::jj)?;
            block_on(tx.commit(format!("jjfs: add git remote {REMOTE}"))).map_err(RepoError::jj)?;
            Ok(())
        }
        (None, true) => {
            let mut tx = repo.start_transaction();
            git::remove_remote(tx.repo_mut(), origin()).map_err(RepoError::jj)?;
            block_on(tx.commit(format!("jjfs: remove git remote {REMOTE}")))
                .map_err(RepoError::jj)?;
            Ok(())
        }
        (None, false) => Ok(()),
    }
}

/// Options for importing what a fetch brought: trunk is tracked; commits the remote dropped
/// are kept (a backup never throws history away).
fn import_options(settings: &UserSettings, trunk: &str) -> Result<GitImportOptions, RepoError> {
    let git_settings = GitSettings::from_settings(settings).map_err(RepoError::jj)?;
    Ok(GitImportOptions {
        abandon_unreachable_commits: false,
        record_synthetic_predecessors: git_settings.record_synthetic_predecessors,
        remote_auto_track_bookmarks: HashMap::from([(
            origin().to_owned(),
            StringMatcher::exact(trunk),
        )]),
    })
}

/// Fetches `bookmarks` from `origin` into `mut_repo` and imports them. Returns what the import
/// changed and, when `ask_default_branch` (one more round trip to the remote), the branch the
/// remote's HEAD names.
fn fetch_origin(
    mut_repo: &mut jj_lib::repo::MutableRepo,
    settings: &UserSettings,
    options: &GitImportOptions,
    bookmarks: StringExpression,
    ask_default_branch: bool,
    callback: &mut Callback,
) -> Result<(git::GitImportStats, Option<jj_lib::ref_name::RefNameBuf>), RepoError> {
    let refspecs = git::expand_fetch_refspecs(
        origin(),
        GitFetchRefExpression {
            bookmark: bookmarks,
            tag: StringExpression::none(),
        },
    )
    .map_err(RepoError::jj)?;
    let mut fetch =
        GitFetch::new(mut_repo, subprocess_options(settings)?, options).map_err(RepoError::jj)?;
    fetch
        .fetch(origin(), refspecs, &mut *callback, None)
        .map_err(|e| callback.error(e))?;
    let stats = block_on(fetch.import_refs()).map_err(RepoError::jj)?;
    let default_branch = if ask_default_branch {
        fetch
            .get_default_branch(origin())
            .map_err(|e| callback.error(e))?
    } else {
        None
    };
    Ok((stats, default_branch))
}

/// Fetches trunk from `origin` and records it in a new operation (the sync actor integrates
/// it). Returns whether anything changed.
pub fn fetch(root: &Path, settings: &UserSettings, trunk: &str) -> Result<bool, RepoError> {
    let repo = head(root, settings)?;
    let options = import_options(settings, trunk)?;
    let mut tx = repo.start_transaction();
    let mut callback = Callback::new(None);
    let (stats, _) = fetch_origin(
        tx.repo_mut(),
        settings,
        &options,
        StringExpression::exact(trunk),
        false,
        &mut callback,
    )?;
    let trunk_ref = RefName::new(trunk);
    // The remote deleting trunk must not delete ours: it is pushed back instead.
    let before = repo.view().get_local_bookmark(trunk_ref).clone();
    if tx.repo().get_local_bookmark(trunk_ref).is_absent() && before.is_present() {
        tx.repo_mut().set_local_bookmark_target(trunk_ref, before);
    }
    block_on(tx.repo_mut().rebase_descendants()).map_err(RepoError::jj)?;
    if !tx.repo().has_changes() {
        return Ok(false);
    }
    let changed = !stats.changed_remote_bookmarks.is_empty();
    block_on(tx.commit(format!("jjfs: fetch {trunk} from git remote {REMOTE}")))
        .map_err(RepoError::jj)?;
    Ok(changed)
}

/// What a push did.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// The remote already had trunk as it is here.
    UpToDate,
    Pushed,
    /// The remote moved since the last fetch: fetch and integrate, then push again.
    RemoteMoved,
}

/// Pushes trunk to `origin` if the remote's trunk is an ancestor of ours (never forcing).
pub fn push(root: &Path, settings: &UserSettings, trunk: &str) -> Result<Pushed, RepoError> {
    let repo = head(root, settings)?;
    let trunk_ref = RefName::new(trunk);
    let view = repo.view();
    let refs = LocalAndRemoteRef {
        local_target: view.get_local_bookmark(trunk_ref),
        remote_ref: view.get_remote_bookmark(trunk_ref.to_remote_symbol(origin())),
    };
    let update = match classify_ref_push_action(refs) {
        RefPushAction::Update(update) => update,
        RefPushAction::AlreadyMatches => return Ok(Pushed::UpToDate),
        RefPushAction::LocalConflicted => {
            return Err(RepoError::Remote(format!(
                "{trunk} is conflicted locally; it is settled at the next sync"
            )));
        }
        RefPushAction::RemoteConflicted | RefPushAction::RemoteUntracked => {
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
    let stats = git::push_refs(
        tx.repo_mut(),
        subprocess_options(settings)?,
        origin(),
        &targets,
        &mut callback,
        &GitPushOptions::default(),
    )
    .map_err(|e| callback.error(e))?;
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
    block_on(tx.commit(format!("jjfs: push {trunk} to git remote {REMOTE}")))
        .map_err(RepoError::jj)?;
    Ok(Pushed::Pushed)
}

/// The commit the remote's trunk points at, as last fetched.
pub fn remote_trunk(repo: &ReadonlyRepo, trunk: &str) -> Option<jj_lib::backend::CommitId> {
    repo.view()
        .get_remote_bookmark(RefName::new(trunk).to_remote_symbol(origin()))
        .target
        .as_normal()
        .cloned()
}

/// Fills a new repo (created without a first commit) from the git repository at `url`:
/// every branch's history, `url` as `origin`, and trunk on the branch the remote's HEAD
/// names, else `main`, else its only branch. Returns the trunk's name, and whether the
/// remote had any branch.
pub fn clone_into(
    root: &Path,
    settings: &UserSettings,
    url: &str,
    progress: &mut dyn GitProgressSink,
) -> Result<(String, bool), RepoError> {
    set_remote(root, settings, Some(url))?;
    let repo = head(root, settings)?;
    let options = GitImportOptions {
        abandon_unreachable_commits: false,
        record_synthetic_predecessors: false,
        remote_auto_track_bookmarks: HashMap::new(),
    };
    let mut tx = repo.start_transaction();
    let mut callback = Callback::new(Some(progress));
    let (_, default_branch) = fetch_origin(
        tx.repo_mut(),
        settings,
        &options,
        StringExpression::all(),
        true,
        &mut callback,
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

//! The cheap check of a remote: where does its trunk point now? The remote worker asks every
//! `fetch_interval` and fetches (and integrates) only when the answer differs from what it
//! last saw, so an idle repo costs a ref advertisement per check, not a fetch.
//!
//! Why not jj-lib, and which gix: jj-lib 0.45.1 has no ref listing (its git subprocess runs
//! `fetch`, `push`, `branch --remotes --delete` and `remote show`, which prints only the
//! default branch), so a listing through it would be a full `git fetch`. gix's blocking
//! client does the ls-refs of protocol v2 in-process (feature `blocking-network-client`, no
//! HTTP client), with two choices made here:
//! - **A local remote** (a path or `file://`) is read directly: the remote repository is
//!   opened with gix (isolated from any configuration and the environment) and its
//!   `refs/heads/<trunk>` read. No process runs (gix's file transport would start
//!   `git-upload-pack`), and nothing crosses a network. The read runs on a thread of its own
//!   and is given up on at the same deadline as fetch (a hung network file system).
//! - **An ssh remote** (`ssh://`, `user@host:path`) gets gix's ssh transport: gix starts the
//!   ssh command (`GIT_SSH_COMMAND`, else `GIT_SSH`, else `ssh` with `BatchMode` and a connect
//!   timeout, as for git) through `sh`, which first exports the deadline marker of
//!   `deadline`, so the watchdog that guards every git call of jj-lib kills a silent ssh at
//!   the same deadline. The variant is fixed to OpenSSH's (git's default), so gix never runs
//!   its `-G` feature probe, which a command that never answers would hang.
//!
//! Other URLs (`https://`, `git://`) are not checked this way (`Check::Unsupported`): the
//! worker fetches instead, which costs one `git fetch` per check.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::RepoError;
use super::deadline::{GitCalls, Stopped};

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The commit (hex) the remote's trunk points at, or None when it has no trunk.
    Tip(Option<String>),
    /// This kind of URL is not checked cheaply: fetch to know.
    Unsupported,
}

/// Where remote `url`'s `trunk` points now. `git_dir` is the repo's own git store (gix
/// needs a repository to talk to a remote from; nothing is written to it).
pub fn remote_tip(
    url: &str,
    trunk: &str,
    git_dir: &Path,
    calls: &GitCalls,
) -> Result<Check, RepoError> {
    use gix::url::Scheme;
    let parsed = gix::url::parse(gix::bstr::BStr::new(url))
        .map_err(|e| RepoError::Remote(format!("{url:?} is not a git URL: {e}")))?;
    match parsed.scheme {
        Scheme::File => {
            let path: PathBuf = gix::path::from_bstring(parsed.path.clone());
            local_tip(url, path, trunk, calls.timeout()).map(Check::Tip)
        }
        Scheme::Ssh => ssh_tip(url, parsed, trunk, git_dir, calls).map(Check::Tip),
        _ => Ok(Check::Unsupported),
    }
}

/// Reads `refs/heads/<trunk>` of the repository at `path`, giving up after `timeout`.
fn local_tip(
    url: &str,
    path: PathBuf,
    trunk: &str,
    timeout: Duration,
) -> Result<Option<String>, RepoError> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let branch = format!("refs/heads/{trunk}");
    std::thread::Builder::new()
        .name("remote-check".into())
        .spawn(move || {
            let _ = tx.send(read_ref(&path, &branch));
        })
        .map_err(|e| RepoError::Remote(format!("cannot check {url}: {e}")))?;
    match rx.recv_timeout(timeout) {
        Ok(result) => result.map_err(|e| RepoError::Remote(format!("{url}: {e}"))),
        // The thread is left to finish (or hang) on its own; it holds nothing of ours.
        Err(_) => Err(RepoError::RemoteTimeout {
            url: url.to_owned(),
            secs: timeout.as_secs(),
        }),
    }
}

fn read_ref(path: &Path, name: &str) -> Result<Option<String>, String> {
    let repo = gix::open_opts(path, gix::open::Options::isolated()).map_err(|e| e.to_string())?;
    let Some(mut reference) = repo.try_find_reference(name).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let id = reference.peel_to_id().map_err(|e| e.to_string())?;
    Ok(Some(id.to_hex().to_string()))
}

/// The ssh command git would run, without the marker.
fn ssh_command() -> String {
    std::env::var("GIT_SSH_COMMAND")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| {
            std::env::var("GIT_SSH")
                .ok()
                .filter(|c| !c.trim().is_empty())
        })
        .unwrap_or_else(|| super::git::DEFAULT_SSH_COMMAND.to_owned())
}

/// Lists `refs/heads/<trunk>` of an ssh remote (protocol v2 ls-refs with that prefix).
fn ssh_tip(
    url: &str,
    parsed: gix::Url,
    trunk: &str,
    git_dir: &Path,
    calls: &GitCalls,
) -> Result<Option<String>, RepoError> {
    use gix::protocol::transport::Protocol;
    use gix::protocol::transport::client::blocking_io::ssh;
    let failed = |e: &dyn std::fmt::Display| RepoError::Remote(format!("{url}: {e}"));
    let repo = gix::open_opts(git_dir, gix::open::Options::isolated()).map_err(|e| failed(&e))?;
    let watch = calls
        .watch()
        .ok_or_else(|| RepoError::Remote("stopped: jjfs is shutting down".to_owned()))?;
    let (key, value) = watch.env();
    let command = format!(
        "export {}={}; {}",
        key.to_string_lossy(),
        value.to_string_lossy(),
        ssh_command()
    );
    let options = ssh::connect::Options {
        command: Some(command.into()),
        disallow_shell: false,
        kind: Some(ssh::ProgramKind::Ssh),
    };
    let branch = format!("refs/heads/{trunk}");
    let listed = (|| -> Result<Option<String>, String> {
        let transport = ssh::connect(parsed.clone(), Protocol::V2, options, false)
            .map_err(|e| e.to_string())?;
        let remote = repo
            .remote_at(parsed)
            .map_err(|e| e.to_string())?
            .with_fetch_tags(gix::remote::fetch::Tags::None)
            .with_refspecs([branch.as_str()], gix::remote::Direction::Fetch)
            .map_err(|e| e.to_string())?;
        let (map, _) = remote
            .to_connection_with_transport(transport)
            .ref_map(gix::progress::Discard, Default::default())
            .map_err(|e| e.to_string())?;
        Ok(map.remote_refs.iter().find_map(|r| {
            let (name, target, peeled) = r.unpack();
            (name == branch.as_bytes())
                .then(|| peeled.or(target).map(|id| id.to_hex().to_string()))?
        }))
    })();
    match (listed, watch.finish()) {
        (Ok(tip), _) => Ok(tip),
        (Err(_), Some(Stopped::Silent(after))) => Err(RepoError::RemoteTimeout {
            url: url.to_owned(),
            secs: after.as_secs(),
        }),
        (Err(_), Some(Stopped::Cancelled)) => Err(RepoError::Remote(
            "stopped: jjfs is shutting down".to_owned(),
        )),
        (Err(e), None) => Err(failed(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    #[test]
    fn a_local_remote_is_read_directly() {
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("remote.git");
        git(
            dir.path(),
            &["init", "-q", "--bare", bare.to_str().unwrap()],
        );
        let calls = GitCalls::new(Duration::from_secs(5));
        let url = bare.to_str().unwrap();
        assert_eq!(
            remote_tip(url, "main", dir.path(), &calls).unwrap(),
            Check::Tip(None)
        );
        let tree = git(&bare, &["mktree"]);
        let commit = git(&bare, &["commit-tree", &tree, "-m", "first"]);
        git(&bare, &["update-ref", "refs/heads/main", &commit]);
        assert_eq!(
            remote_tip(url, "main", dir.path(), &calls).unwrap(),
            Check::Tip(Some(commit.clone()))
        );
        // Packed refs and file:// URLs too.
        git(&bare, &["pack-refs", "--all"]);
        let file_url = format!("file://{url}");
        assert_eq!(
            remote_tip(&file_url, "main", dir.path(), &calls).unwrap(),
            Check::Tip(Some(commit))
        );
        assert!(remote_tip("/nowhere/x.git", "main", dir.path(), &calls).is_err());
        assert_eq!(
            remote_tip("https://example.com/x.git", "main", dir.path(), &calls).unwrap(),
            Check::Unsupported
        );
    }
}

use clap::{Parser, Subcommand};

use super::output;
use crate::api::{RemoteAddParams, RemoteRemoveParams, RemoteShowParams, RemoteState};
use crate::config::{DEFAULT_REMOTE, DEFAULT_REPO};

/// Manage the git remotes a repo is backed up to and synced through.
///
/// A repo may have several named remotes; each is fetched from and pushed to on its own, so
/// one that is down never holds up the others.
#[derive(Debug, Parser)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Set remote NAME (default `origin`) of the repo: a path, file://, ssh://,
    /// user@host:path or https URL. An existing remote of that name gets the new URL.
    Add {
        url: String,
        /// The remote's name.
        #[arg(long, default_value = DEFAULT_REMOTE)]
        name: String,
        /// The repo to back up.
        #[arg(long, default_value = DEFAULT_REPO)]
        repo: String,
    },
    /// Stop syncing with remote NAME (default `origin`); the remote itself is left as it is.
    Remove {
        #[arg(default_value = DEFAULT_REMOTE)]
        name: String,
        #[arg(long, default_value = DEFAULT_REPO)]
        repo: String,
    },
    /// Show the repo's remotes and their state. With only `origin`, just its URL.
    Show {
        #[arg(long, default_value = DEFAULT_REPO)]
        repo: String,
        /// Print JSON: {"remotes": [{"name", "url", "state", "last_push", "last_fetch",
        /// "last_error", "next_retry"}]}.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let mut client = super::connect()?;
    match args.command {
        Command::Add { url, name, repo } => {
            let url = checked_url(&url)?;
            client.call(RemoteAddParams {
                repo: repo.clone(),
                url: url.clone(),
                name: name.clone(),
            })?;
            if name == DEFAULT_REMOTE {
                println!("Repo {repo} is backed up to {url}");
            } else {
                println!("Repo {repo} is backed up to {url} (remote {name})");
            }
        }
        Command::Remove { name, repo } => {
            let shown = client.call(RemoteRemoveParams {
                repo: repo.clone(),
                name: name.clone(),
            })?;
            if shown.remotes.is_empty() {
                println!("Repo {repo} has no remote now");
            } else {
                println!("Repo {repo} no longer syncs with remote {name}");
            }
        }
        Command::Show { repo, json } => {
            let shown = client.call(RemoteShowParams { repo })?;
            if json {
                return output::print_json(&serde_json::json!({ "remotes": shown.remotes }));
            }
            match shown.remotes.as_slice() {
                [] => println!("repo {} has no remote", shown.repo),
                [only] if only.name == DEFAULT_REMOTE => println!("{}", only.url),
                remotes => {
                    for remote in remotes {
                        let state = match remote.state {
                            RemoteState::Delayed => format!(
                                "delayed: {}",
                                remote.last_error.as_deref().unwrap_or("failing")
                            ),
                            _ => "ok".to_owned(),
                        };
                        println!("{}\t{}\t{state}", remote.name, remote.url);
                    }
                }
            }
        }
    }
    Ok(())
}

/// The URL checked and, for a relative path, made absolute (the daemon runs elsewhere).
pub(crate) fn checked_url(url: &str) -> anyhow::Result<String> {
    let cwd = std::env::current_dir()?;
    crate::repo::git::normalize_url(url, &cwd).map_err(anyhow::Error::msg)
}

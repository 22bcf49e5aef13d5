use clap::{Parser, Subcommand};

use crate::api::{RemoteAddParams, RemoteRemoveParams, RemoteShowParams};
use crate::config::DEFAULT_REPO;

/// Manage the git remote a repo is backed up to.
#[derive(Debug, Parser)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Set the repo's backup remote: a path, file://, ssh://, user@host:path or https URL.
    Add {
        url: String,
        /// The repo to back up.
        #[arg(long, default_value = DEFAULT_REPO)]
        repo: String,
    },
    /// Stop backing the repo up (the remote itself is left as it is).
    Remove {
        #[arg(long, default_value = DEFAULT_REPO)]
        repo: String,
    },
    /// Show the repo's remote.
    Show {
        #[arg(long, default_value = DEFAULT_REPO)]
        repo: String,
    },
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let mut client = super::connect()?;
    match args.command {
        Command::Add { url, repo } => {
            let url = checked_url(&url)?;
            client.call(RemoteAddParams {
                repo: repo.clone(),
                url: url.clone(),
            })?;
            println!("Repo {repo} is backed up to {url}");
        }
        Command::Remove { repo } => {
            client.call(RemoteRemoveParams { repo: repo.clone() })?;
            println!("Repo {repo} has no remote now");
        }
        Command::Show { repo } => {
            let shown = client.call(RemoteShowParams { repo })?;
            match shown.remote {
                Some(url) => println!("{url}"),
                None => println!("repo {} has no remote", shown.repo),
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

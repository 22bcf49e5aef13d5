use clap::{Parser, Subcommand};

use crate::config::DEFAULT_REPO;
use crate::rpc::methods::{self, RemoteParams, RemoteShowResult};

/// Manage the git remote a repo is backed up to.
#[derive(Debug, Parser)]
pub struct Args {
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

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut client = super::connect()?;
    match args.command {
        Command::Add { url, repo } => {
            let url = checked_url(&url)?;
            let _: serde_json::Value = client.call(
                methods::REMOTE_ADD,
                RemoteParams {
                    repo: repo.clone(),
                    url: Some(url.clone()),
                },
            )?;
            println!("Repo {repo} is backed up to {url}");
        }
        Command::Remove { repo } => {
            let _: serde_json::Value = client.call(
                methods::REMOTE_REMOVE,
                RemoteParams {
                    repo: repo.clone(),
                    url: None,
                },
            )?;
            println!("Repo {repo} has no remote now");
        }
        Command::Show { repo } => {
            let shown: RemoteShowResult =
                client.call(methods::REMOTE_SHOW, RemoteParams { repo, url: None })?;
            match shown.remote {
                Some(url) => println!("{url}"),
                None => println!("repo {} has no remote", shown.repo),
            }
        }
    }
    Ok(())
}

/// The URL checked and, for a relative path, made absolute (the daemon runs elsewhere).
pub fn checked_url(url: &str) -> anyhow::Result<String> {
    let cwd = std::env::current_dir()?;
    crate::repo::git::normalize_url(url, &cwd).map_err(anyhow::Error::msg)
}

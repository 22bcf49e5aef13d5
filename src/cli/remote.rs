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
            let url = normalize_url(&url);
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

/// A relative local path becomes absolute, since the daemon runs elsewhere; URLs stay as given.
pub fn normalize_url(url: &str) -> String {
    let looks_local = !url.contains("://") && !is_scp_like(url);
    if looks_local
        && !url.starts_with('/')
        && let Ok(abs) = std::path::absolute(url)
    {
        return abs.display().to_string();
    }
    url.to_owned()
}

/// `user@host:path` or `host:path`, as git reads it: a colon before any slash.
pub fn is_scp_like(url: &str) -> bool {
    match url.find(':') {
        Some(colon) => !url[..colon].contains('/') && colon > 0,
        None => false,
    }
}

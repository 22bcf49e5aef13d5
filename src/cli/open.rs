use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

use crate::api::OpenParams;

/// Mount a repo at PATH (default ./REPO): a live view that syncs with its other mounts.
///
/// The parent of PATH must exist; PATH is created, and must be empty if it exists. Inside a
/// git work tree (or jj workspace) the mount's path is added to the repository's
/// `info/exclude`, so it stays out of `git status` there; `close` removes that line.
///
/// With --only, the mount shows only those repo folders, at their places in the repo (and
/// the folders leading to them); what you create elsewhere in it stays local. `jjfs only`
/// changes the selection later.
#[derive(Debug, Parser)]
pub(crate) struct Args {
    repo: String,
    path: Option<PathBuf>,
    /// Who owns the files jjfs writes into the mount (a user name or uid), when jjfsd runs
    /// as root; by default the owner of PATH's parent folder.
    #[arg(long, value_name = "USER")]
    owner: Option<String>,
    /// Do not add the mount to the enclosing git repository's `info/exclude`.
    #[arg(long)]
    no_exclude: bool,
    /// Show only these repo folders (relative to the repo root, comma-separated).
    #[arg(long, value_name = "DIR[,DIR...]", value_delimiter = ',', num_args = 1..)]
    only: Vec<String>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let path = args.path.unwrap_or_else(|| PathBuf::from(&args.repo));
    let path = super::close::absolute_mount_path(&path)?;
    let mut client = super::connect()?;
    let opened = client
        .call(OpenParams {
            repo: args.repo,
            path: path.clone(),
            owner: args.owner,
            only: (!args.only.is_empty()).then_some(args.only),
        })
        .context("cannot open the mount")?;
    println!("{}", opened.mount_path.display());
    if !args.no_exclude {
        match crate::exclude::exclude_mount(&path) {
            Ok(Some(done)) => eprintln!("Added {} to {}", done.line, done.exclude_file.display()),
            Ok(None) => {}
            Err(err) => eprintln!("warning: the mount is not excluded from its project: {err}"),
        }
    }
    Ok(())
}

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

use crate::api::{ModeChoice, OpenParams};

/// Mount a repo at PATH (default ./REPO): a live view that syncs with its other mounts.
///
/// The parent of PATH must exist; PATH is created, and must be empty if it exists (unless
/// `--adopt`). Inside a git work tree (or jj workspace) the mount's path is added to the
/// repository's `info/exclude`, so it stays out of `git status` there; `close` removes that
/// line.
///
/// A FUSE mount serves the repo's files from a backing jj workspace under $JJFS_HOME; a
/// direct mount is a plain folder that holds the files itself, watched and written by jjfs
/// (for machines and containers without FUSE; see the README for what it guarantees less).
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
    /// fuse, direct, or auto (FUSE when this machine can mount it, else direct); by default
    /// the repo's `mount_mode` setting (auto unless set). Kept for the mount.
    #[arg(long, value_enum, value_name = "MODE")]
    mode: Option<ModeChoice>,
    /// Sync a non-empty folder in place as a direct mount: its files become the mount's first
    /// change and merge with the repo like a concurrent edit (how a closed direct mount is
    /// opened again).
    #[arg(long)]
    adopt: bool,
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
            mode: args.mode,
            adopt: args.adopt,
        })
        .context("cannot open the mount")?;
    if let Some(note) = &opened.note {
        eprintln!("{note}");
    }
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

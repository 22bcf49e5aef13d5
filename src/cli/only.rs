//! `jjfs only`: change which repo folders a mount shows, or print what it shows.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

use crate::api::{ListMounts, OnlyParams};

/// Change which repo folders a mount shows: only DIR[,DIR...], or everything with --all.
///
/// What the mount holds now is recorded first, so nothing written there is lost. Folders
/// leaving the selection disappear from this mount only (nothing is deleted from the repo);
/// files you created there before stay as local files. Folders entering it arrive merged
/// with any local file in their way, never over it (both versions are kept, as a conflict).
/// Without DIR or --all, prints what the mount shows now.
#[derive(Debug, Parser)]
pub(crate) struct Args {
    /// The mount.
    path: PathBuf,
    /// The repo folders to show, relative to the repo root (comma-separated or repeated).
    #[arg(value_name = "DIR", value_delimiter = ',', conflicts_with = "all")]
    dirs: Vec<String>,
    /// Show the whole repo again.
    #[arg(long)]
    all: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let path = super::close::absolute_mount_path(&args.path)?;
    let mut client = super::connect()?;
    if args.dirs.is_empty() && !args.all {
        let list = client.call(ListMounts)?;
        let Some(mount) = list.mounts.iter().find(|m| m.path == path) else {
            anyhow::bail!("{} is not a jjfs mount (see `jjfs list`)", path.display());
        };
        println!("{}", shows(mount.only.as_deref()));
        return Ok(());
    }
    let changed = client
        .call(OnlyParams {
            path: path.clone(),
            only: (!args.all).then_some(args.dirs),
        })
        .context("cannot change the selection")?;
    println!(
        "{} now shows {}",
        changed.path.display(),
        shows(changed.only.as_deref())
    );
    Ok(())
}

fn shows(only: Option<&[String]>) -> String {
    match only {
        None => "everything".to_owned(),
        Some(folders) => format!("only {}", folders.join(", ")),
    }
}

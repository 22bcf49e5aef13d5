use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;

use crate::api::CloseParams;

/// Unmount PATH and forget its workspace; its pending changes are synced first, and the
/// directory is left empty.
#[derive(Debug, Parser)]
pub(crate) struct Args {
    path: PathBuf,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let path = absolute_mount_path(&args.path)?;
    let mut client = super::connect()?;
    let closed = client
        .call(CloseParams { path: path.clone() })
        .context("cannot close the mount")?;
    if closed.was_paused {
        println!(
            "{} was paused: recorded its edits first (they are on trunk now)",
            path.display()
        );
    }
    println!("Closed {}", path.display());
    match crate::exclude::unexclude_mount(&path) {
        Ok(Some(done)) => println!("Removed {} from {}", done.line, done.exclude_file.display()),
        Ok(None) => {}
        Err(err) => eprintln!("warning: {err}"),
    }
    Ok(())
}

/// The absolute path of a mount point, with its parent's symlinks resolved (the mount point
/// itself may be missing, or a dead mount that cannot be resolved).
pub(crate) fn absolute_mount_path(path: &Path) -> anyhow::Result<PathBuf> {
    let abs = std::path::absolute(path).with_context(|| format!("bad path {}", path.display()))?;
    let (Some(parent), Some(name)) = (abs.parent(), abs.file_name()) else {
        return Ok(abs);
    };
    match parent.canonicalize() {
        Ok(parent) => Ok(parent.join(name)),
        Err(_) => Ok(abs),
    }
}

//! `jjfs pause` and `jjfs resume`: stop and restart syncing one mount, or every mount of a
//! repo and its remote. Kept in config.json, so a pause survives restarts.

use std::path::PathBuf;

use clap::Parser;

use crate::api::PauseParams;

/// Which mount, or which repo.
#[derive(Debug, Parser)]
pub(crate) struct Args {
    /// The mount.
    #[arg(required_unless_present = "repo", conflicts_with = "repo")]
    path: Option<PathBuf>,
    /// Every mount of this repo, and its remote (fetch and push).
    #[arg(long, value_name = "NAME")]
    repo: Option<String>,
}

/// Stop syncing a mount (its edits stay local, other mounts' changes wait), or with
/// `--repo` every mount of a repo and its remote; survives restarts.
#[derive(Debug, Parser)]
pub(crate) struct PauseArgs {
    #[command(flatten)]
    target: Args,
}

/// Sync a paused mount (or repo) again: edits made meanwhile on both sides merge like
/// concurrent edits (conflicts the jj way).
#[derive(Debug, Parser)]
pub(crate) struct ResumeArgs {
    #[command(flatten)]
    target: Args,
}

pub(crate) fn run_pause(args: PauseArgs) -> anyhow::Result<()> {
    run(args.target, true)
}

pub(crate) fn run_resume(args: ResumeArgs) -> anyhow::Result<()> {
    run(args.target, false)
}

fn run(args: Args, paused: bool) -> anyhow::Result<()> {
    let path = args
        .path
        .as_deref()
        .map(super::close::absolute_mount_path)
        .transpose()?;
    let result = super::connect()?.call(PauseParams {
        path: path.clone(),
        repo: args.repo.clone(),
        paused,
    })?;
    let what = match &path {
        Some(path) => path.display().to_string(),
        None => format!("repo {}", result.repo),
    };
    match (paused, result.already) {
        (true, true) => println!("{what} is already paused"),
        (false, true) => println!("{what} is not paused"),
        (true, false) => match &path {
            Some(path) => println!(
                "Paused {what}: its edits stay local and other mounts' changes wait, until \
                 `jjfs resume {}`",
                path.display()
            ),
            None => println!(
                "Paused {what}: {} mount(s) and its remote, until `jjfs resume --repo {}`",
                result.changed.len(),
                result.repo
            ),
        },
        (false, false) => println!(
            "Resumed {what}: {} mount(s) synced again",
            result.changed.len()
        ),
    }
    Ok(())
}

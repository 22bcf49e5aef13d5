use clap::Parser;

use crate::api::SyncParams;

/// Sync now (every repo, or REPO), locally and with the remotes; returns when every healthy
/// mount is up to date, so scripts can use it as a barrier.
///
/// Then every remote of the repos is fetched from and pushed to, all at once. A remote that
/// fails or stays silent does not fail the sync: it prints one `warning: remote ...` line.
/// The wait for the remotes is bounded: at most JJFS_REMOTE_TIMEOUT (the daemon's deadline
/// on a silent remote, 30 s by default) plus 5 s; a remote still busy then goes on in the
/// background.
#[derive(Debug, Parser)]
pub(crate) struct Args {
    repo: Option<String>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let result = super::connect()?.call(SyncParams { repo: args.repo })?;
    for warning in &result.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(())
}

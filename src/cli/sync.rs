use clap::Parser;

use crate::api::SyncParams;

/// Sync now (every repo, or REPO), locally and with the remote; returns when every healthy
/// mount is up to date, so scripts can use it as a barrier.
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

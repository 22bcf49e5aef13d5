use std::path::PathBuf;

use clap::Parser;

use crate::rpc::methods;

/// Show what changed in a file or folder between two points in its history, as a unified diff.
#[derive(Debug, Parser)]
pub struct Args {
    path: PathBuf,
    /// Start point (default: the change before --to).
    #[arg(long, value_name = "WHEN")]
    from: Option<String>,
    /// End point (default: now).
    #[arg(long, value_name = "WHEN")]
    to: Option<String>,
    #[arg(long)]
    repo: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut params = super::history::params(args.repo, &[args.path])?;
    params.from = args.from;
    params.to = args.to;
    let mut client = super::connect()?;
    let diff: String = client.call(methods::DIFF, params)?;
    print!("{diff}");
    Ok(())
}

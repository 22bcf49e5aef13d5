use std::path::PathBuf;

use clap::Parser;

use crate::rpc::methods;

/// The history of the repo, or of one file or folder: newest first.
#[derive(Debug, Parser)]
pub struct Args {
    /// A file or folder: relative to the current directory inside a mount, or a repo path
    /// with --repo.
    path: Option<PathBuf>,
    #[arg(long)]
    repo: Option<String>,
    /// Only changes after TIME (RFC 3339, or relative: 30s, 10m, 2h, 3d, 1w).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// At most N entries.
    #[arg(long, short = 'n', value_name = "N")]
    limit: Option<usize>,
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut params = super::history::params(args.repo, args.path.as_slice())?;
    params.since = args.since;
    params.limit = args.limit;
    let mut client = super::connect()?;
    let result: serde_json::Value = client.call(methods::LOG, params)?;
    if args.json {
        return super::output::print_json(&result);
    }
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}

use std::io::Write;
use std::path::PathBuf;

use clap::Parser;

use crate::rpc::methods;

/// Print a file as it was at WHEN.
#[derive(Debug, Parser)]
pub struct Args {
    path: PathBuf,
    /// A commit or change id from `jjfs log`, an RFC 3339 time, or a relative time (10m, 2h).
    #[arg(long, value_name = "WHEN")]
    at: String,
    #[arg(long)]
    repo: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut params = super::history::params(args.repo, &[args.path])?;
    params.at = Some(args.at);
    let mut client = super::connect()?;
    let content: String = client.call(methods::CAT, params)?;
    std::io::stdout().write_all(content.as_bytes())?;
    Ok(())
}

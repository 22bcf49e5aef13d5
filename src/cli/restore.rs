use std::path::PathBuf;

use clap::Parser;

use crate::rpc::methods;

/// Bring files or folders back as they were at WHEN, as a new change in every mount.
#[derive(Debug, Parser)]
pub struct Args {
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[arg(long, value_name = "WHEN")]
    at: String,
    #[arg(long)]
    repo: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut params = super::history::params(args.repo, &args.paths)?;
    params.at = Some(args.at);
    let mut client = super::connect()?;
    let result: serde_json::Value = client.call(methods::RESTORE, params)?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}

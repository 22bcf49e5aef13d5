use clap::Parser;

use crate::rpc::methods;

/// Revert the last N synced changes of a repo as a new change (history is kept).
#[derive(Debug, Parser)]
pub struct Args {
    #[arg(default_value_t = 1)]
    count: usize,
    #[arg(long)]
    repo: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut params = super::history::params(args.repo, &[] as &[&str])?;
    params.count = Some(args.count);
    let mut client = super::connect()?;
    let result: serde_json::Value = client.call(methods::UNDO, params)?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}

use clap::Parser;

use crate::rpc::methods::{self, ConfigParams};

/// Show all settings, one, or set one: sync_interval, rescan_interval, push_interval, trunk,
/// ignore (a comma-separated list of gitignore patterns). Takes effect without a restart.
#[derive(Debug, Parser)]
pub struct Args {
    /// The repo whose settings to show or change (all repos when showing without it).
    #[arg(long)]
    repo: Option<String>,
    key: Option<String>,
    value: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut client = super::connect()?;
    let shown: serde_json::Value = client.call(
        methods::CONFIG,
        ConfigParams {
            repo: args.repo,
            key: args.key,
            value: args.value,
        },
    )?;
    match shown {
        serde_json::Value::Null => {}
        serde_json::Value::String(s) => println!("{s}"),
        other => println!("{}", serde_json::to_string_pretty(&other)?),
    }
    Ok(())
}

use std::path::PathBuf;

use clap::Parser;

use super::history::{file_text, point_text};
use crate::api::RestoreParams;

/// Bring files or folders back as they were at WHEN, as a new change in every mount.
///
/// A folder comes back whole: files added in it since WHEN go. The restore is a change like
/// any other: `jjfs undo` takes it back.
#[derive(Debug, Parser)]
pub(crate) struct Args {
    /// Files or folders: relative to the current directory inside a mount, or repo paths
    /// with --repo.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// A change or commit id from `jjfs log`, an RFC 3339 time, or a relative time (10m, 2h).
    #[arg(long, value_name = "WHEN")]
    at: String,
    #[arg(long)]
    repo: Option<String>,
    /// Print JSON (the shape is documented in README).
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let params = RestoreParams {
        scope: super::history::scope(args.repo)?,
        paths: args
            .paths
            .iter()
            .map(|p| super::history::given(p))
            .collect(),
        at: args.at,
    };
    let result = super::connect()?.call(params)?;
    if args.json {
        return super::output::print_json(&result);
    }
    let at = result.at.as_ref().map(point_text).unwrap_or_default();
    match &result.change {
        None => println!("nothing to restore: already as at {at}"),
        Some(change) => {
            println!("restored as at {at}, as change {}:", change.change);
            for file in &result.files {
                println!("    {}", file_text(file));
            }
            println!("(`jjfs undo` takes it back)");
        }
    }
    Ok(())
}

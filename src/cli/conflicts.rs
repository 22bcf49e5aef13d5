//! `jjfs conflicts`: every conflicted file now, since when, and where its sides came from.

use clap::Parser;

use super::output;
use crate::api::ConflictsParams;

/// List every conflicted file: repo, path, since when, and where the sides came from (mount
/// paths, or the remote). Edit the markers away in any mount to resolve one.
#[derive(Debug, Parser)]
pub(crate) struct Args {
    /// Only this repo.
    #[arg(long, value_name = "NAME")]
    repo: Option<String>,
    /// Print JSON: {"conflicts": [{"repo", "path", "since", "sides"}]}.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let result = super::connect()?.call(ConflictsParams { repo: args.repo })?;
    if args.json {
        return output::print_json(&result);
    }
    if result.conflicts.is_empty() {
        println!("No conflicts.");
    }
    for c in &result.conflicts {
        let sides = if c.sides.is_empty() {
            "unknown".to_owned()
        } else {
            c.sides.join(", ")
        };
        println!(
            "{}: {}  since {}  sides: {sides}",
            c.repo,
            super::history::quoted(&c.path),
            output::when(Some(&c.since))
        );
    }
    Ok(())
}

use clap::Parser;

use super::history::{entry_text, file_text};
use crate::api::UndoParams;

/// Revert the last N changes of a repo, whichever mount they came from, as a new change
/// (history is kept: `jjfs undo` again takes the undo back).
#[derive(Debug, Parser)]
pub(crate) struct Args {
    /// How many of the last changes to revert.
    #[arg(default_value_t = 1)]
    count: usize,
    /// The repo (default: the one of the mount you are in, or the only one).
    #[arg(long)]
    repo: Option<String>,
    /// Print JSON (the shape is documented in README).
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let params = UndoParams {
        scope: super::history::scope(args.repo)?,
        count: args.count,
    };
    let result = super::connect()?.call(params)?;
    if args.json {
        return super::output::print_json(&result);
    }
    println!("reverted:");
    for entry in &result.reverted {
        for line in entry_text(entry).lines() {
            println!("  {line}");
        }
    }
    match &result.change {
        None => println!("nothing changed: those changes had no effect left to revert"),
        Some(change) => {
            println!("as change {}:", change.change);
            for file in &result.files {
                println!("    {}", file_text(file));
            }
        }
    }
    Ok(())
}

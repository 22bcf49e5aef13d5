use std::path::PathBuf;

use clap::Parser;

use super::history::entry_text;
use crate::api::LogParams;

/// The history of the repo, or of one file or folder: newest first, each change with its
/// time, the mount it came from and the files it added (A), modified (M), deleted (D) or
/// renamed (R).
#[derive(Debug, Parser)]
#[command(
    after_help = "PATH is relative to the current directory inside a mount (the repo \
is then that mount's), absolute, or a path from the repo's root with --repo. \
The first column is the change id that `cat --at`, `diff` and `restore --at` accept."
)]
pub(crate) struct Args {
    /// A file or folder.
    path: Option<PathBuf>,
    /// The repo (default: the one of the mount you are in, or the only one).
    #[arg(long)]
    repo: Option<String>,
    /// Only changes after TIME (RFC 3339, or relative: 30s, 10m, 2h, 3d, 1w).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// At most N entries.
    #[arg(long, short = 'n', value_name = "N")]
    limit: Option<usize>,
    /// Print JSON (the shape is documented in README).
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let params = LogParams {
        scope: super::history::scope(args.repo)?,
        path: args.path.as_deref().map(super::history::given),
        since: args.since,
        limit: args.limit,
    };
    let result = super::connect()?.call(params)?;
    if args.json {
        return super::output::print_json(&result);
    }
    let mut text = String::new();
    for entry in &result.entries {
        text.push_str(&entry_text(entry));
    }
    if result.entries.is_empty() {
        text.push_str("no changes\n");
    }
    if result.more {
        text.push_str("(more: raise --limit)\n");
    }
    super::output::paged(&text)
}

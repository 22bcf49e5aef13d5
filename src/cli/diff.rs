use std::path::PathBuf;

use clap::Parser;

use crate::api::DiffParams;

/// Show what changed in a file or folder between two points in its history, as a unified diff.
///
/// Without --from and --to: the last change to PATH.
#[derive(Debug, Parser)]
pub(crate) struct Args {
    /// A file or folder: relative to the current directory inside a mount, or a repo path
    /// with --repo.
    path: PathBuf,
    /// Start point (default: just before the last change to PATH up to --to).
    #[arg(long, value_name = "WHEN")]
    from: Option<String>,
    /// End point (default: now).
    #[arg(long, value_name = "WHEN")]
    to: Option<String>,
    #[arg(long)]
    repo: Option<String>,
    /// Print JSON (the shape is documented in README).
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let params = DiffParams {
        scope: super::history::scope(args.repo)?,
        path: super::history::given(&args.path),
        from: args.from,
        to: args.to,
    };
    let result = super::connect()?.call(params)?;
    if args.json {
        return super::output::print_json(&result);
    }
    super::output::paged(&result.diff)
}

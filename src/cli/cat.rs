use std::io::Write;
use std::path::PathBuf;

use base64::Engine as _;
use clap::Parser;

use crate::api::CatParams;

/// Print a file as it was at WHEN.
#[derive(Debug, Parser)]
pub(crate) struct Args {
    /// A file: relative to the current directory inside a mount, or a repo path with --repo.
    path: PathBuf,
    /// A change or commit id from `jjfs log`, an RFC 3339 time, or a relative time (10m, 2h).
    #[arg(long, value_name = "WHEN")]
    at: String,
    #[arg(long)]
    repo: Option<String>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let params = CatParams {
        scope: super::history::scope(args.repo)?,
        path: super::history::given(&args.path),
        at: args.at,
    };
    let result = super::connect()?.call(params)?;
    let bytes = match (result.text, result.base64) {
        (Some(text), _) => text.into_bytes(),
        (None, Some(encoded)) => base64::engine::general_purpose::STANDARD.decode(encoded)?,
        (None, None) => Vec::new(),
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(&bytes).and_then(|()| out.flush()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

use clap::Parser;

use crate::api::InitParams;
use crate::config::DEFAULT_REPO;

/// Create a repo (a jj repository that mounts of it share).
#[derive(Debug, Parser)]
pub(crate) struct Args {
    /// Repo name: letters, digits, '.', '_' and '-'.
    #[arg(default_value = DEFAULT_REPO)]
    name: String,
    /// Create it from an existing git repository (a path or URL), keeping its history and
    /// using the URL as its backup remote.
    #[arg(long, value_name = "URL")]
    from: Option<String>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let mut client = super::connect()?;
    let from = args
        .from
        .as_deref()
        .map(super::remote::checked_url)
        .transpose()?;
    let result = client.call_with_progress(
        InitParams {
            name: args.name,
            from,
        },
        |message| eprintln!("{message}"),
    )?;
    println!(
        "Created repo {} (trunk {}) at {}",
        result.name,
        result.trunk,
        result.path.display()
    );
    Ok(())
}

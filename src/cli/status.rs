use clap::Parser;

use super::output;
use crate::api::{RemoteState, StatusParams};

/// Show the daemon, each repo (each remote and its state, conflicts, skipped files) and each
/// mount.
#[derive(Debug, Parser)]
pub(crate) struct Args {
    /// Print JSON (the shape is documented in README).
    #[arg(long)]
    json: bool,
    /// Also show recent sync activity.
    #[arg(long, short)]
    verbose: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let mut client = super::connect()?;
    let status = client.call(StatusParams {
        verbose: args.verbose,
    })?;
    if args.json {
        return output::print_json(&status);
    }
    let d = &status.daemon;
    println!("jjfsd {} running (pid {}, {})", d.version, d.pid, d.mode);
    if status.repos.is_empty() {
        println!("No repos. Create one with `jjfs init [NAME]`.");
    }
    for repo in &status.repos {
        println!();
        println!("repo {} (trunk {})", repo.name, repo.trunk);
        println!("  last sync: {}", output::when(repo.last_sync.as_deref()));
        if let Some(commits) = repo.history_commits {
            let size = repo
                .history_bytes
                .map(|b| format!(", {} on disk", output::size(b)))
                .unwrap_or_default();
            println!("  history: {commits} changes{size}");
        }
        if repo.remotes.is_empty() {
            println!(
                "  remote: none (add one with `jjfs remote add URL --repo {}`)",
                repo.name
            );
        }
        for remote in &repo.remotes {
            match remote.state {
                RemoteState::Delayed => {
                    println!(
                        "  remote {}: {}: remote sync delayed",
                        remote.name, remote.url
                    );
                    if let Some(err) = &remote.last_error {
                        println!("    last error: {err}");
                    }
                    println!(
                        "    next retry: {}",
                        output::when(remote.next_retry.as_deref())
                    );
                }
                _ => println!(
                    "  remote {}: {} (last push {}, last fetch {})",
                    remote.name,
                    remote.url,
                    output::when(remote.last_push.as_deref()),
                    output::when(remote.last_fetch.as_deref())
                ),
            }
        }
        if !repo.conflicts.is_empty() {
            println!("  conflicts (edit the markers away in any mount to resolve):");
            for path in &repo.conflicts {
                println!("    {}", super::history::quoted(path));
            }
        }
        if !repo.skipped.is_empty() {
            println!("  not synced:");
            for skipped in &repo.skipped {
                println!(
                    "    {}: {}",
                    super::history::quoted(&skipped.path),
                    skipped.reason
                );
            }
        }
        for mount in status.mounts.iter().filter(|m| m.repo == repo.name) {
            println!("  mount {}", super::list::mount_line(mount));
        }
    }
    if args.verbose && !status.recent.is_empty() {
        println!();
        println!("recent activity:");
        for line in &status.recent {
            println!("  {line}");
        }
    }
    Ok(())
}

use clap::Parser;

use super::output;
use crate::api::{Health, ListMounts, MountInfo};

/// List the mounts: id, repo, path, health and last sync.
#[derive(Debug, Parser)]
pub(crate) struct Args {
    /// Print JSON: {"mounts": [{"id", "repo", "path", "workspace", "health", "reason", "last_sync", "paused", "pending", "only"}]}.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let mut client = super::connect()?;
    let list = client.call(ListMounts)?;
    if args.json {
        return output::print_json(&list);
    }
    if list.mounts.is_empty() {
        println!("No mounts. Create one with `jjfs open REPO [PATH]`.");
    }
    for mount in &list.mounts {
        println!("{}", mount_line(mount));
    }
    Ok(())
}

/// One line per mount, shared with `jjfs status`.
pub(crate) fn mount_line(mount: &MountInfo) -> String {
    let health = match (mount.health, &mount.reason) {
        (Health::Healthy, _) => "healthy".to_owned(),
        (Health::Unhealthy, Some(reason)) => format!("UNHEALTHY: {reason}"),
        (Health::Unhealthy, None) => "UNHEALTHY".to_owned(),
    };
    let paused = if mount.paused { "  paused" } else { "" };
    let pending = match mount.pending {
        0 => String::new(),
        n => format!("  {n} change(s) pending"),
    };
    let only = match &mount.only {
        Some(folders) => format!("  only {}", folders.join(", ")),
        None => String::new(),
    };
    format!(
        "{}  {}  [{}]  {}{paused}{pending}  last sync {}{only}",
        mount.path.display(),
        mount.repo,
        &mount.id.to_string()[..8],
        health,
        output::when(mount.last_sync.as_deref())
    )
}

//! Every description jjfs writes into a repo, and the parsing of those it reads back: one
//! place for the commit-message protocol (first lines, trailers), so history can be read
//! after the mount that made a change is gone.
//!
//! - `jjfs: sync from <mount path>` + `Jjfs-Mount: <uuid>`, `Jjfs-Repo: <name>`: a change made
//!   in a mount (the contract's format).
//! - `Jjfs-Held: <uuid>`: the commit under a working copy that keeps files a user holds open
//!   for writing (or a nested repository) as they are on disk; never joins trunk.
//! - `Jjfs-Both-Sides:`: the change that kept both sides of a conflict between a file and a
//!   folder (or a symlink) by moving one aside.
//! - `Jjfs-Restored-From:`, `Jjfs-Undone:`: history changes.
//! - `jjfs: join the histories of ...` + `Jjfs-Join:`: the merge commit that joins trunks
//!   that diverged on different remotes (what a remote has is never rewritten).

use uuid::Uuid;

/// The description of a repo's first, empty commit.
pub const CREATE_REPOSITORY: &str = "jjfs: create repository\n";

const SYNC_PREFIX: &str = "jjfs: sync from ";
const MOUNT_TRAILER: &str = "Jjfs-Mount: ";
const REPO_TRAILER: &str = "Jjfs-Repo: ";
const HELD_TRAILER: &str = "Jjfs-Held: ";
const BOTH_SIDES_TRAILER: &str = "Jjfs-Both-Sides: ";

/// A change synced from a mount.
pub fn sync_from(mount: &str, id: &Uuid, repo: &str) -> String {
    format!("{SYNC_PREFIX}{mount}\n\n{MOUNT_TRAILER}{id}\n{REPO_TRAILER}{repo}\n")
}

/// The commit that keeps `paths` of a mount as they are on disk until they are released.
pub fn held(mount: &str, id: &Uuid, paths: &[String]) -> String {
    format!(
        "jjfs: keep files of {mount} as they are on disk until released\n\n{}\n\n{HELD_TRAILER}{id}\n",
        paths.join("\n")
    )
}

pub fn is_held(description: &str) -> bool {
    description.lines().any(|l| l.starts_with(HELD_TRAILER))
}

/// The change that moved one side of each conflict in `moves` aside (`from → to`).
pub fn both_sides(moves: &[(String, String)], repo: &str) -> String {
    let list: Vec<String> = moves
        .iter()
        .map(|(from, to)| format!("{from} -> {to}"))
        .collect();
    format!(
        "jjfs: keep both sides of a conflict at {}\n\n{}\n\n{BOTH_SIDES_TRAILER}{}\n{REPO_TRAILER}{repo}\n",
        moves
            .iter()
            .map(|(from, _)| from.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        list.join("\n"),
        moves.len()
    )
}

/// The merge commit that joins trunk as each of `remotes` has it (one entry per parent,
/// naming the remotes that have that side).
pub fn join(remotes: &[&str], repo: &str) -> String {
    format!(
        "jjfs: join the histories of {}\n\nJjfs-Join: {}\n{REPO_TRAILER}{repo}\n",
        remotes.join(" and "),
        remotes.len()
    )
}

pub fn restore(paths: &[String], short_source: &str, source: &str, repo: &str) -> String {
    format!(
        "jjfs: restore {} as at {short_source}\n\nJjfs-Restored-From: {source}\n{REPO_TRAILER}{repo}\n",
        paths.join(", ")
    )
}

pub fn undo(count: usize, listed: &[String], ids: &[String], repo: &str) -> String {
    format!(
        "jjfs: undo {count} change(s)\n\n{}\n\nJjfs-Undone: {}\n{REPO_TRAILER}{repo}\n",
        listed.join("\n"),
        ids.join(" ")
    )
}

/// The mount a synced change came from: its path (first line) and id (trailer).
pub fn sync_origin(description: &str) -> (Option<String>, Option<String>) {
    let first = description.lines().next().unwrap_or_default();
    let mount = first.strip_prefix(SYNC_PREFIX).map(str::to_owned);
    let id = description
        .lines()
        .find_map(|l| l.strip_prefix(MOUNT_TRAILER))
        .map(|s| s.trim().to_owned());
    (mount, id)
}

/// Operation descriptions (what `jj op log` shows).
pub mod operation {
    pub fn sync(commits: usize) -> String {
        if commits > 0 {
            format!("jjfs: sync {commits} change(s)")
        } else {
            "jjfs: update working copies".to_owned()
        }
    }

    pub fn add_workspace(id: &uuid::Uuid) -> String {
        format!("jjfs: add workspace for mount {id}")
    }

    pub fn forget_workspace(id: &uuid::Uuid) -> String {
        format!("jjfs: forget workspace of mount {id}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synced_changes_name_their_mount() {
        let id = Uuid::nil();
        let message = sync_from("/home/me/notes", &id, "default");
        assert_eq!(
            sync_origin(&message),
            (Some("/home/me/notes".into()), Some(id.to_string()))
        );
        assert!(!is_held(&message));
        assert!(is_held(&held("/m", &id, &["a".into()])));
        assert_eq!(sync_origin("jjfs: undo 1 change(s)"), (None, None));
    }
}

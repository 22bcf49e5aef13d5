//! What the history commands share: the request (PATH is resolved by the daemon, which knows
//! the mounts, against the current directory sent along) and how changes are printed.

use std::path::Path;

use crate::api::{FileChange, FileStatus, LogEntry, Point, Scope};

/// The repo given and the current directory, where the daemon resolves PATHs.
pub(super) fn scope(repo: Option<String>) -> anyhow::Result<Scope> {
    Ok(Scope {
        repo,
        cwd: Some(std::env::current_dir()?),
    })
}

/// A PATH as the user typed it.
pub(super) fn given(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// `kxqpmlzsonwv  2026-11-27 12:34:56  from /home/me/notes` and its files, `git log
/// --name-status` style.
pub(crate) fn entry_text(entry: &LogEntry) -> String {
    let origin = match &entry.mount {
        Some(mount) => format!("from {mount}"),
        None => entry
            .description
            .strip_prefix("jjfs: ")
            .unwrap_or(&entry.description)
            .to_owned(),
    };
    let conflict = if entry.conflict { "  (conflict)" } else { "" };
    let mut text = format!("{}  {}{conflict}\n", point_text(&entry.point), origin);
    for file in &entry.files {
        text.push_str(&format!("    {}\n", file_text(file)));
    }
    text
}

/// `kxqpmlzsonwv 2026-11-27 12:34:56`.
pub(crate) fn point_text(point: &Point) -> String {
    format!(
        "{}  {}",
        point.change,
        super::output::when(Some(&point.time))
    )
}

/// `M notes/todo.md`, `R old.md -> new.md`, with `(conflict)` where it is.
pub(crate) fn file_text(file: &FileChange) -> String {
    let (letter, path) = match (file.status, &file.from) {
        (FileStatus::Added, _) => ("A", file.path.clone()),
        (FileStatus::Modified, _) => ("M", file.path.clone()),
        (FileStatus::Deleted, _) => ("D", file.path.clone()),
        (FileStatus::Renamed, from) => (
            "R",
            format!("{} -> {}", from.as_deref().unwrap_or("?"), file.path),
        ),
    };
    let conflict = if file.conflict { "  (conflict)" } else { "" };
    format!("{letter} {path}{conflict}")
}

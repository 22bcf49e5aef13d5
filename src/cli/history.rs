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
        (FileStatus::Added, _) => ("A", quoted(&file.path)),
        (FileStatus::Modified, _) => ("M", quoted(&file.path)),
        (FileStatus::Deleted, _) => ("D", quoted(&file.path)),
        (FileStatus::Renamed, from) => (
            "R",
            format!(
                "{} -> {}",
                from.as_deref().map_or("?".into(), quoted),
                quoted(&file.path)
            ),
        ),
    };
    let conflict = if file.conflict { "  (conflict)" } else { "" };
    format!("{letter} {path}{conflict}")
}

/// A path as one line: as it is, or, when it holds a control character, a quote or a
/// backslash, in double quotes with C escapes (as `git log` shows such names).
pub(crate) fn quoted(path: &str) -> String {
    if !path
        .chars()
        .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        return path.to_owned();
    }
    let mut out = String::from("\"");
    for c in path.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\{:03o}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_with_control_characters_are_quoted() {
        assert_eq!(super::quoted("plain name.md"), "plain name.md");
        assert_eq!(super::quoted("x\ny"), "\"x\\ny\"");
        assert_eq!(super::quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(super::quoted("bell\u{7}"), "\"bell\\007\"");
    }
}

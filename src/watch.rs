//! File watchers on backing workspaces: catch edits made there directly (by hand, by a
//! tool, by the jj CLI), which never pass through a mount. Only this module touches notify.
//!
//! Changes made through a mount show up here too (the backing files change); the sync engine
//! drops those echoes. An overflowed or failed watch, and the watched folder itself removed
//! or moved, ask for a full rescan. A direct mount's folder is watched the same way, also
//! for files closed after writing (a file held open for writing waits for that).

use std::path::{Path, PathBuf};

use notify::event::{AccessKind, AccessMode, EventKind, Flag, ModifyKind};
use notify::{RecursiveMode, Watcher as _};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// Workspace-relative paths that changed.
    Changed(Vec<PathBuf>),
    /// Events were lost: everything must be rescanned.
    Overflow,
}

pub struct Watcher {
    _inner: notify::RecommendedWatcher,
}

impl Watcher {
    /// Watches `root` recursively, ignoring its `.jj`, and calls `on_event` from the
    /// watcher's own thread.
    pub fn start(
        root: &Path,
        on_event: impl Fn(WatchEvent) + Send + 'static,
    ) -> notify::Result<Self> {
        Self::start_with(root, false, on_event)
    }

    /// Like `start`, and a file closed after writing counts as changed.
    pub fn start_reporting_closes(
        root: &Path,
        on_event: impl Fn(WatchEvent) + Send + 'static,
    ) -> notify::Result<Self> {
        Self::start_with(root, true, on_event)
    }

    fn start_with(
        root: &Path,
        closes: bool,
        on_event: impl Fn(WatchEvent) + Send + 'static,
    ) -> notify::Result<Self> {
        let root = root.canonicalize()?;
        let jj_dir = root.join(".jj");
        let prefix = root.clone();
        let mut inner =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let event = match event {
                    Ok(event) => event,
                    Err(err) => {
                        tracing::warn!("file watcher on {}: {err}; rescanning", prefix.display());
                        return on_event(WatchEvent::Overflow);
                    }
                };
                if event.flag() == Some(Flag::Rescan) {
                    return on_event(WatchEvent::Overflow);
                }
                let closed = matches!(
                    event.kind,
                    EventKind::Access(AccessKind::Close(AccessMode::Write))
                );
                if matches!(event.kind, EventKind::Access(_)) && !(closes && closed) {
                    return;
                }
                // The folder itself went (or moved): what is at its path must be looked at
                // again as a whole.
                if matches!(
                    event.kind,
                    EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
                ) && event.paths.iter().any(|p| p == &prefix)
                {
                    return on_event(WatchEvent::Overflow);
                }
                let paths: Vec<PathBuf> = event
                    .paths
                    .iter()
                    .filter(|p| !p.starts_with(&jj_dir))
                    .filter_map(|p| p.strip_prefix(&prefix).ok())
                    .filter(|p| !p.as_os_str().is_empty())
                    .map(Path::to_owned)
                    .collect();
                if !paths.is_empty() {
                    on_event(WatchEvent::Changed(paths));
                }
            })?;
        inner.watch(&root, RecursiveMode::Recursive)?;
        Ok(Self { _inner: inner })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn reports_relative_paths_and_ignores_dot_jj() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".jj")).unwrap();
        let (tx, rx) = mpsc::channel();
        let _watcher = Watcher::start(dir.path(), move |e| {
            let _ = tx.send(e);
        })
        .unwrap();
        std::fs::write(dir.path().join(".jj").join("state"), "x").unwrap();
        std::fs::write(dir.path().join("note.md"), "hello").unwrap();
        let mut seen = Vec::new();
        while let Ok(event) = rx.recv_timeout(Duration::from_secs(5)) {
            if let WatchEvent::Changed(paths) = event {
                seen.extend(paths);
            }
            if seen.iter().any(|p| p == Path::new("note.md")) {
                break;
            }
        }
        assert!(seen.iter().any(|p| p == Path::new("note.md")), "{seen:?}");
        assert!(seen.iter().all(|p| !p.starts_with(".jj")), "{seen:?}");
    }

    #[test]
    fn the_folder_itself_moved_away_asks_for_a_rescan() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("watched");
        std::fs::create_dir(&dir).unwrap();
        let (tx, rx) = mpsc::channel();
        let _watcher = Watcher::start_reporting_closes(&dir, move |e| {
            let _ = tx.send(e);
        })
        .unwrap();
        std::fs::rename(&dir, base.path().join("elsewhere")).unwrap();
        let mut seen = Vec::new();
        while let Ok(event) = rx.recv_timeout(Duration::from_secs(5)) {
            seen.push(event.clone());
            if event == WatchEvent::Overflow {
                break;
            }
        }
        assert!(seen.contains(&WatchEvent::Overflow), "{seen:?}");
    }
}

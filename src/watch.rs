//! File watchers on backing workspaces: catch edits made there directly (by hand, by a
//! tool, by the jj CLI), which never pass through a mount. Only this module touches notify.
//!
//! Changes made through a mount show up here too (the backing files change); the sync engine
//! drops those echoes. An overflowed or failed watch asks for a full rescan.

use std::path::{Path, PathBuf};

use notify::event::{EventKind, Flag};
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
                if matches!(event.kind, EventKind::Access(_)) {
                    return;
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
}

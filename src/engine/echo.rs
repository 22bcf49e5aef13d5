//! Telling the engine's own writes from users' edits in watcher events. After a sync writes or
//! snapshots a path, its state on disk is remembered; a watcher event for that path whose
//! file still looks exactly like that is an echo of the sync, not a new change.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::files::Root;
use crate::stamp::Stamp;

/// How long a remembered state is trusted to explain events.
const REMEMBER: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
pub struct EchoFilter {
    known: HashMap<PathBuf, (Stamp, Instant)>,
}

impl EchoFilter {
    /// Remembers how `rel` (under `root`) looks now.
    #[cfg(test)]
    pub fn remember(&mut self, root: &Root, rel: &Path, now: Instant) {
        self.remember_stamp(rel, Stamp::of(root, rel), now);
    }

    /// Remembers how `rel` looked when the sync wrote or read it.
    pub fn remember_stamp(&mut self, rel: &Path, stamp: Stamp, now: Instant) {
        self.known.insert(rel.to_owned(), (stamp, now));
    }

    /// Whether an event for `rel` is explained by what was remembered.
    pub fn is_echo(&self, root: &Root, rel: &Path, now: Instant) -> bool {
        match self.known.get(rel) {
            Some((stamp, at)) if now.duration_since(*at) < REMEMBER => {
                *stamp == Stamp::of(root, rel)
            }
            _ => false,
        }
    }

    /// Forgets states too old to explain anything.
    pub fn expire(&mut self, now: Instant) {
        self.known
            .retain(|_, (_, at)| now.duration_since(*at) < REMEMBER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unchanged_file_is_an_echo_and_an_edit_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let now = Instant::now();
        std::fs::write(dir.path().join("a"), "one").unwrap();
        let mut filter = EchoFilter::default();
        filter.remember(&root, Path::new("a"), now);
        assert!(filter.is_echo(&root, Path::new("a"), now));
        std::fs::write(dir.path().join("a"), "two!").unwrap();
        assert!(!filter.is_echo(&root, Path::new("a"), now));
        assert!(!filter.is_echo(&root, Path::new("b"), now));
        filter.remember(&root, Path::new("gone"), now);
        assert!(filter.is_echo(&root, Path::new("gone"), now));
        assert!(!filter.is_echo(&root, Path::new("gone"), now + REMEMBER));
    }
}

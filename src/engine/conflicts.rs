//! The conflicts a repo has, as `jjfs conflicts` tells them: for each conflicted file, since
//! when it is conflicted and where its sides came from (mount paths, or `remote`).
//!
//! Kept in `repos/<name>/jjfs/conflicts.json` (written atomically whenever the set changes),
//! so `since` survives a restart, and a conflict that was already told before a restart is
//! not told again. Only the repo's actor uses it; trunk's conflicted paths come from `repo`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One conflicted file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictRecord {
    /// When it was first seen conflicted.
    pub since: DateTime<Utc>,
    /// Where the conflicting versions came from: mount paths, or `remote`.
    pub sides: Vec<String>,
}

/// What changed when the book was brought up to date.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Paths conflicted now that were not before.
    pub new: Vec<String>,
    /// Paths no longer conflicted.
    pub resolved: Vec<String>,
}

#[derive(Debug)]
pub struct ConflictBook {
    file: PathBuf,
    entries: BTreeMap<String, ConflictRecord>,
}

impl ConflictBook {
    /// The book of the repo whose jjfs state folder is `dir`; empty when there is none yet
    /// (or it cannot be read: the conflicts are then told again, with a new `since`).
    pub fn load(dir: &Path) -> Self {
        let file = dir.join("conflicts.json");
        let entries = std::fs::read(&file)
            .ok()
            .and_then(|text| serde_json::from_slice(&text).ok())
            .unwrap_or_default();
        Self { file, entries }
    }

    pub fn entries(&self) -> &BTreeMap<String, ConflictRecord> {
        &self.entries
    }

    /// The paths of `conflicts` the book does not have yet.
    pub fn unknown<'a>(&self, conflicts: &'a [String]) -> Vec<&'a String> {
        conflicts
            .iter()
            .filter(|path| !self.entries.contains_key(*path))
            .collect()
    }

    /// Brings the book to `conflicts` (trunk's conflicted paths now); a new conflict's sides
    /// come from `sides_of`. Saved when anything changed.
    pub fn update(
        &mut self,
        conflicts: &[String],
        now: DateTime<Utc>,
        mut sides_of: impl FnMut(&str) -> Vec<String>,
    ) -> Changes {
        let mut changes = Changes::default();
        let current: std::collections::BTreeSet<&String> = conflicts.iter().collect();
        self.entries.retain(|path, _| {
            let keep = current.contains(path);
            if !keep {
                changes.resolved.push(path.clone());
            }
            keep
        });
        for path in current {
            if !self.entries.contains_key(path) {
                let sides = sides_of(path);
                self.entries
                    .insert(path.clone(), ConflictRecord { since: now, sides });
                changes.new.push(path.clone());
            }
        }
        if !changes.new.is_empty() || !changes.resolved.is_empty() {
            self.save();
        }
        changes
    }

    fn save(&self) {
        let text = serde_json::to_vec_pretty(&self.entries).expect("serializes");
        if let Some(dir) = self.file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(err) = crate::atomic_file::write(&self.file, &text) {
            tracing::warn!("cannot save {}: {err}", self.file.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_and_sides_survive_a_reload_and_resolved_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = Utc::now();
        let mut book = ConflictBook::load(dir.path());
        let changes = book.update(&["a".into(), "b".into()], t0, |p| vec![format!("/m/{p}")]);
        assert_eq!(changes.new, ["a", "b"]);
        let mut again = ConflictBook::load(dir.path());
        assert_eq!(again.entries()["a"].since, t0);
        assert_eq!(again.entries()["b"].sides, ["/m/b"]);
        let later = t0 + chrono::Duration::seconds(5);
        let changes = again.update(&["b".into(), "c".into()], later, |_| vec!["remote".into()]);
        assert_eq!(changes.new, ["c"]);
        assert_eq!(changes.resolved, ["a"]);
        assert_eq!(again.entries()["b"].since, t0);
        assert_eq!(again.entries()["c"].since, later);
        assert_eq!(
            again.update(&["b".into(), "c".into()], later, |_| unreachable!()),
            Changes::default()
        );
    }
}

//! A repo's permission bits per file. jj records only the executable bit (git trees hold only
//! 644/755), so a file created 0600 in one mount would arrive 0644 in the others. jjfs keeps
//! each file's mode in a table of its own beside the repo (`repos/<name>/jjfs/modes`), never
//! in a commit or anything pushed: modes travel between the mounts of one machine, and are
//! not versioned. Setuid, setgid and sticky bits never travel.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The bits that travel.
pub const TRAVELLING_BITS: u32 = 0o777;

#[derive(Debug, Default, Clone)]
pub struct ModeTable {
    path: PathBuf,
    modes: BTreeMap<String, u32>,
    dirty: bool,
}

impl ModeTable {
    /// Reads the table at `path` (empty when missing or unreadable: modes then fall back to
    /// the defaults, nothing else depends on it).
    pub fn load(path: &Path) -> Self {
        let modes = std::fs::read_to_string(path)
            .ok()
            .map(|text| {
                text.lines()
                    .filter_map(|line| {
                        let (mode, file) = line.split_once(' ')?;
                        Some((file.to_owned(), u32::from_str_radix(mode, 8).ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            path: path.to_owned(),
            modes,
            dirty: false,
        }
    }

    pub fn get(&self, path: &str) -> Option<u32> {
        self.modes.get(path).copied()
    }

    /// Records the mode a file has now; true when it differs from the one known.
    pub fn record(&mut self, path: &str, mode: u32) -> bool {
        let mode = mode & TRAVELLING_BITS;
        match self.modes.insert(path.to_owned(), mode) {
            Some(old) if old == mode => false,
            old => {
                self.dirty = true;
                old.is_some()
            }
        }
    }

    pub fn forget(&mut self, path: &str) {
        if self.modes.remove(path).is_some() {
            self.dirty = true;
        }
    }

    /// The mode a file written at `path` gets: the one known for it, else `default`, with
    /// the executable bits made to agree with the tree.
    pub fn mode_for(&self, path: &str, executable: bool, default: u32) -> u32 {
        let mode = self.get(path).unwrap_or(default) & TRAVELLING_BITS;
        with_executable(mode, executable)
    }

    /// Saves the table if it changed (atomically).
    pub fn save(&mut self) -> std::io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut text = String::new();
        for (path, mode) in &self.modes {
            if !path.contains('\n') {
                text.push_str(&format!("{mode:04o} {path}\n"));
            }
        }
        crate::atomic_file::write_data(&self.path, text.as_bytes())?;
        self.dirty = false;
        Ok(())
    }
}

/// `mode` with an executable bit wherever it has a read bit (when `executable`), or none.
pub fn with_executable(mode: u32, executable: bool) -> u32 {
    let has_exec = mode & 0o111 != 0;
    match (executable, has_exec) {
        (true, false) => mode | ((mode & 0o444) >> 2) | 0o100,
        (false, true) => mode & !0o111,
        _ => mode,
    }
}

/// The mode new files get when no mount has told: 0666 less this process's umask (read
/// from /proc, since setting it to read it would race with other threads).
pub fn default_file_mode() -> u32 {
    let umask = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022);
    0o666 & !umask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_round_trip_and_agree_with_the_exec_bit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("modes");
        let mut table = ModeTable::load(&path);
        assert!(!table.record("secret.md", 0o100600));
        assert!(table.record("secret.md", 0o640));
        assert!(
            !table.record("run.sh", 0o4755),
            "new entries are not changes"
        );
        table.save().unwrap();
        let table = ModeTable::load(&path);
        assert_eq!(table.get("secret.md"), Some(0o640));
        assert_eq!(table.get("run.sh"), Some(0o755), "setuid never travels");
        assert_eq!(table.mode_for("secret.md", false, 0o644), 0o640);
        assert_eq!(table.mode_for("secret.md", true, 0o644), 0o750);
        assert_eq!(table.mode_for("other", false, 0o644), 0o644);
        assert_eq!(table.mode_for("other", true, 0o644), 0o755);
        assert_eq!(table.mode_for("run.sh", false, 0o644), 0o644);
    }
}

//! Packing a repo's git objects. jj-lib writes every object as a loose file, and git's own
//! automatic gc never runs because git does not write them; left alone, a repo of per-save
//! commits takes several times the space it needs. This packs it the way `jj util gc` does
//! (jj-lib's store gc, which runs `git gc`), keeping every commit jj knows and anything
//! written in the last two weeks, so no history is lost and concurrent writers are safe.

use std::path::Path;
use std::time::{Duration, SystemTime};

use jj_lib::repo::Repo as _;
use jj_lib::settings::UserSettings;

use super::create::{git_dir, load_repo};
use super::{RepoError, block_on};

/// Loose objects written less than this long ago are never pruned.
const KEEP_NEWER: Duration = Duration::from_secs(14 * 24 * 3600);

/// git's own threshold (`gc.auto`): pack once about this many loose objects exist.
pub const DEFAULT_THRESHOLD: usize = 6700;

/// Whether the repo holds more than about `threshold` loose objects, estimated as git does
/// from one of the 256 object directories (counted exactly for small thresholds).
pub fn needs_packing(root: &Path, threshold: usize) -> bool {
    let objects = git_dir(root).join("objects");
    let count = |dir: &str| std::fs::read_dir(objects.join(dir)).map_or(0, |e| e.count());
    if threshold < 256 {
        let all: usize = (0..=255u8).map(|i| count(&format!("{i:02x}"))).sum();
        return all > threshold;
    }
    count("17") * 256 > threshold
}

/// Packs the repo at `root` (blocking; runs `git gc`). Loads the repo anew, so that it can run
/// on a thread of its own beside the sync actor, as `jj util gc` runs beside other jj commands.
pub fn pack(root: &Path, settings: &UserSettings) -> Result<(), RepoError> {
    let loader = load_repo(root, settings)?;
    let repo = block_on(loader.load_at_head()).map_err(RepoError::jj)?;
    let keep_newer = SystemTime::now()
        .checked_sub(KEEP_NEWER)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    repo.store()
        .gc(repo.index(), keep_newer)
        .map_err(|e| RepoError::Jj(format!("packing the store failed: {e}")))
}

/// Bytes the files under `dir` take on disk (not following symlinks).
pub fn disk_usage(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(meta) if meta.is_dir() => stack.push(entry.path()),
                Ok(meta) => total += std::os::unix::fs::MetadataExt::blocks(&meta) * 512,
                Err(_) => {}
            }
        }
    }
    total
}

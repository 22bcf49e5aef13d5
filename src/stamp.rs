//! What a path looks like on disk, cheaply: enough to tell whether it changed since.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What a path looked like on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    Absent,
    Present {
        ino: u64,
        size: u64,
        mtime_ns: i128,
        mode: u32,
    },
}

impl Stamp {
    pub fn of(path: &Path) -> Self {
        match std::fs::symlink_metadata(path) {
            Ok(m) => Stamp::Present {
                ino: m.ino(),
                size: m.size(),
                mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
                mode: m.mode(),
            },
            Err(_) => Stamp::Absent,
        }
    }
}

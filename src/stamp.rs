//! What a path looks like on disk, cheaply: enough to tell whether it changed since (a
//! user cannot set a ctime back, so a same-size rewrite with its mtime restored shows too).

use std::path::Path;

use crate::files::{Kind, Root, Stat};

/// What a path looked like on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    Absent,
    Present {
        kind: Kind,
        ino: u64,
        size: u64,
        mtime_ns: i64,
        ctime_ns: i64,
        mode: u32,
    },
}

impl Stamp {
    /// How `rel` looks beneath `root` now.
    pub fn of(root: &Root, rel: &Path) -> Self {
        Self::from_stat(root.lstat(rel).ok().flatten().as_ref())
    }

    pub fn from_stat(stat: Option<&Stat>) -> Self {
        match stat {
            Some(st) => Stamp::Present {
                kind: st.kind,
                ino: st.ino,
                size: st.size,
                mtime_ns: st.mtime_ns,
                ctime_ns: st.ctime_ns,
                mode: st.mode,
            },
            None => Stamp::Absent,
        }
    }
}

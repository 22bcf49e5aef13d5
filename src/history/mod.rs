//! The history commands (`log`, `cat`, `diff`, `restore`, `undo`) in terms users think in:
//! points in time and paths as they typed them. This module turns those into what the repo
//! layer reads and writes (`repo::history`); it touches neither jj-lib nor the daemon.

pub(crate) mod paths;
pub(crate) mod unified;
pub(crate) mod when;

pub(crate) use when::When;

/// One history request, resolved to a repo and repo paths, sent to the repo's sync actor.
#[derive(Debug, Clone)]
pub enum Request {
    Log {
        path: Option<String>,
        since: Option<When>,
        limit: Option<usize>,
    },
    Cat {
        path: String,
        at: When,
    },
    Diff {
        path: String,
        from: Option<When>,
        to: Option<When>,
    },
    Restore {
        paths: Vec<String>,
        at: When,
    },
    Undo {
        count: usize,
    },
}

impl Request {
    /// Whether the request adds a change to trunk (it then syncs every mount first and after).
    pub(crate) fn writes(&self) -> bool {
        matches!(self, Self::Restore { .. } | Self::Undo { .. })
    }
}

//! `log`, `cat`, `diff`, `restore`, `undo`: the repo's history by file and time. Each method
//! has its own parameters; PATHs are sent as typed (the daemon, which knows the mounts,
//! resolves them against the client's directory) and WHENs as the user wrote them (the
//! daemon reads relative times against its clock).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where a history command's paths are resolved.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Scope {
    /// The repo (default: the one of the mount the client stands in, or the only one).
    #[serde(default)]
    pub(crate) repo: Option<String>,
    /// The client's current directory, to resolve a PATH inside a mount.
    #[serde(default)]
    pub(crate) cwd: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LogParams {
    #[serde(flatten)]
    pub(crate) scope: Scope,
    /// A file or folder, or the whole repo.
    #[serde(rename = "paths", default, with = "paths::at_most_one")]
    pub(crate) path: Option<String>,
    /// Only changes after this WHEN.
    #[serde(default)]
    pub(crate) since: Option<String>,
    /// At most this many entries.
    #[serde(default)]
    pub(crate) limit: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CatParams {
    #[serde(flatten)]
    pub(crate) scope: Scope,
    #[serde(rename = "paths", with = "paths::one")]
    pub(crate) path: String,
    pub(crate) at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DiffParams {
    #[serde(flatten)]
    pub(crate) scope: Scope,
    #[serde(rename = "paths", with = "paths::one")]
    pub(crate) path: String,
    /// Default: just before the last change to the path up to `to`.
    #[serde(default)]
    pub(crate) from: Option<String>,
    /// Default: now.
    #[serde(default)]
    pub(crate) to: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RestoreParams {
    #[serde(flatten)]
    pub(crate) scope: Scope,
    #[serde(with = "paths::at_least_one")]
    pub(crate) paths: Vec<String>,
    pub(crate) at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UndoParams {
    #[serde(flatten)]
    pub(crate) scope: Scope,
    /// How many of the last changes to revert.
    #[serde(default = "one_change")]
    pub(crate) count: usize,
}

fn one_change() -> usize {
    1
}

/// The `paths` list on the wire, as each method needs it.
mod paths {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) mod one {
        use super::*;

        pub(crate) fn serialize<S: Serializer>(path: &str, s: S) -> Result<S::Ok, S::Error> {
            [path].serialize(s)
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
            match <[String; 1]>::deserialize(d) {
                Ok([path]) => Ok(path),
                Err(_) => Err(D::Error::custom("give exactly one PATH")),
            }
        }
    }

    pub(crate) mod at_most_one {
        use super::*;

        pub(crate) fn serialize<S: Serializer>(
            path: &Option<String>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            path.as_slice().serialize(s)
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<String>, D::Error> {
            let mut paths = Vec::<String>::deserialize(d)?;
            if paths.len() > 1 {
                return Err(D::Error::custom("give at most one PATH"));
            }
            Ok(paths.pop())
        }
    }

    pub(crate) mod at_least_one {
        use super::*;

        pub(crate) fn serialize<S: Serializer>(paths: &[String], s: S) -> Result<S::Ok, S::Error> {
            paths.serialize(s)
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Vec<String>, D::Error> {
            let paths = Vec::<String>::deserialize(d)?;
            if paths.is_empty() {
                return Err(D::Error::custom("give at least one PATH"));
            }
            Ok(paths)
        }
    }
}

/// A point in a repo's history: the state right after one trunk change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Point {
    /// The commit id (hex), shortened.
    pub(crate) commit: String,
    /// The change id (jj's reverse hex), shortened; stays the same when a commit is rebased.
    pub(crate) change: String,
    /// When the change was synced (RFC 3339, UTC).
    pub(crate) time: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FileStatus {
    Added,
    Modified,
    Deleted,
    Renamed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FileChange {
    /// Repo path, `/`-separated.
    pub(crate) path: String,
    pub(crate) status: FileStatus,
    /// The old path of a renamed file.
    #[serde(default)]
    pub(crate) from: Option<String>,
    /// The file is conflicted after this change.
    #[serde(default)]
    pub(crate) conflict: bool,
}

/// One change on trunk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LogEntry {
    #[serde(flatten)]
    pub(crate) point: Point,
    /// The mount it was synced from (absolute path), when it came from one.
    pub(crate) mount: Option<String>,
    /// That mount's id.
    pub(crate) mount_id: Option<String>,
    /// The first line of its description.
    pub(crate) description: String,
    pub(crate) files: Vec<FileChange>,
    /// It left a conflict in one of its files.
    pub(crate) conflict: bool,
}

// The results are `pub` (not `pub(crate)`) while `repo` and `sync`, which build them, have
// `pub` interfaces.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogResult {
    pub(crate) repo: String,
    /// The repo path the log is about ("" for the whole repo).
    pub(crate) path: String,
    /// Newest first.
    pub(crate) entries: Vec<LogEntry>,
    /// More entries exist beyond `limit`.
    pub(crate) more: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatResult {
    pub(crate) repo: String,
    pub(crate) path: String,
    pub(crate) at: Point,
    /// The content when it is UTF-8 text.
    #[serde(default)]
    pub(crate) text: Option<String>,
    /// The content, base64, when it is not.
    #[serde(default)]
    pub(crate) base64: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiffResult {
    pub(crate) repo: String,
    pub(crate) path: String,
    pub(crate) from: Point,
    pub(crate) to: Point,
    /// A unified diff, as `git diff` prints it; empty when nothing changed.
    pub(crate) diff: String,
}

/// What `restore` and `undo` added to trunk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangeResult {
    pub(crate) repo: String,
    /// The new change (None when there was nothing to change).
    pub(crate) change: Option<Point>,
    /// restore: the state the paths were brought back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) at: Option<Point>,
    /// restore: the repo paths restored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) paths: Vec<String>,
    /// undo: the changes reverted, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) reverted: Vec<LogEntry>,
    /// The files the new change touched.
    pub(crate) files: Vec<FileChange>,
}

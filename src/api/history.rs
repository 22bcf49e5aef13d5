//! `log`, `cat`, `diff`, `restore`, `undo`: the repo's history by file and time. Each method
//! has its own parameters; PATHs are sent as typed (the daemon, which knows the mounts,
//! resolves them against the client's directory) and WHENs as the user wrote them (the
//! daemon reads relative times against its clock).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where a history command's paths are resolved.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Scope {
    /// The repo (default: the one of the mount the client stands in, or the only one).
    #[serde(default)]
    pub repo: Option<String>,
    /// The client's current directory, to resolve a PATH inside a mount.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogParams {
    #[serde(flatten)]
    pub scope: Scope,
    /// A file or folder, or the whole repo.
    #[serde(rename = "paths", default, with = "paths::at_most_one")]
    pub path: Option<String>,
    /// Only changes after this WHEN.
    #[serde(default)]
    pub since: Option<String>,
    /// At most this many entries.
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatParams {
    #[serde(flatten)]
    pub scope: Scope,
    #[serde(rename = "paths", with = "paths::one")]
    pub path: String,
    pub at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiffParams {
    #[serde(flatten)]
    pub scope: Scope,
    #[serde(rename = "paths", with = "paths::one")]
    pub path: String,
    /// Default: just before the last change to the path up to `to`.
    #[serde(default)]
    pub from: Option<String>,
    /// Default: now.
    #[serde(default)]
    pub to: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreParams {
    #[serde(flatten)]
    pub scope: Scope,
    #[serde(with = "paths::at_least_one")]
    pub paths: Vec<String>,
    pub at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UndoParams {
    #[serde(flatten)]
    pub scope: Scope,
    /// How many of the last changes to revert.
    #[serde(default = "one_change")]
    pub count: usize,
}

fn one_change() -> usize {
    1
}

/// The `paths` list on the wire, as each method needs it.
mod paths {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub mod one {
        use super::*;

        pub fn serialize<S: Serializer>(path: &str, s: S) -> Result<S::Ok, S::Error> {
            [path].serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
            match <[String; 1]>::deserialize(d) {
                Ok([path]) => Ok(path),
                Err(_) => Err(D::Error::custom("give exactly one PATH")),
            }
        }
    }

    pub mod at_most_one {
        use super::*;

        pub fn serialize<S: Serializer>(path: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
            path.as_slice().serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
            let mut paths = Vec::<String>::deserialize(d)?;
            if paths.len() > 1 {
                return Err(D::Error::custom("give at most one PATH"));
            }
            Ok(paths.pop())
        }
    }

    pub mod at_least_one {
        use super::*;

        pub fn serialize<S: Serializer>(paths: &[String], s: S) -> Result<S::Ok, S::Error> {
            paths.serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
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
pub struct Point {
    /// The commit id (hex), shortened.
    pub commit: String,
    /// The change id (jj's reverse hex), shortened; stays the same when a commit is rebased.
    pub change: String,
    /// When the change was synced (RFC 3339, UTC).
    pub time: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    Added,
    Modified,
    Deleted,
    Renamed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileChange {
    /// Repo path, `/`-separated.
    pub path: String,
    pub status: FileStatus,
    /// The old path of a renamed file.
    #[serde(default)]
    pub from: Option<String>,
    /// The file is conflicted after this change.
    #[serde(default)]
    pub conflict: bool,
}

/// One change on trunk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogEntry {
    #[serde(flatten)]
    pub point: Point,
    /// The mount it was synced from (absolute path), when it came from one.
    pub mount: Option<String>,
    /// That mount's id.
    pub mount_id: Option<String>,
    /// The first line of its description.
    pub description: String,
    pub files: Vec<FileChange>,
    /// It left a conflict in one of its files.
    pub conflict: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogResult {
    pub repo: String,
    /// The repo path the log is about ("" for the whole repo).
    pub path: String,
    /// Newest first.
    pub entries: Vec<LogEntry>,
    /// More entries exist beyond `limit`.
    pub more: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatResult {
    pub repo: String,
    pub path: String,
    pub at: Point,
    /// The content when it is UTF-8 text.
    #[serde(default)]
    pub text: Option<String>,
    /// The content, base64, when it is not.
    #[serde(default)]
    pub base64: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiffResult {
    pub repo: String,
    pub path: String,
    pub from: Point,
    pub to: Point,
    /// A unified diff, as `git diff` prints it; empty when nothing changed.
    pub diff: String,
}

/// What `restore` and `undo` added to trunk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangeResult {
    pub repo: String,
    /// The new change (None when there was nothing to change).
    pub change: Option<Point>,
    /// restore: the state the paths were brought back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Point>,
    /// restore: the repo paths restored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// undo: the changes reverted, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reverted: Vec<LogEntry>,
    /// The files the new change touched.
    pub files: Vec<FileChange>,
}

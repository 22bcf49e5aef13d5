//! `config.json`: the repos and mounts the daemon serves, in the design seed's schema.
//!
//! Loaded at daemon start, saved atomically after every change. Fields this version does not
//! know are kept as they were, so an older daemon never drops what a newer one wrote. A file
//! that does not parse is reported with its path and the parser's message, never overwritten.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{api, atomic_file};

pub(crate) const DEFAULT_SYNC_INTERVAL: u64 = 2;
pub(crate) const DEFAULT_PUSH_INTERVAL: u64 = 300;
pub(crate) const DEFAULT_PUSH_DELAY: u64 = 5;
pub(crate) const DEFAULT_FETCH_INTERVAL: u64 = 30;
/// The remote `jjfs remote add URL` sets when no name is given.
pub(crate) const DEFAULT_REMOTE: &str = "origin";
pub(crate) const DEFAULT_RESCAN_INTERVAL: u64 = 300;
pub(crate) const DEFAULT_TRUNK: &str = "main";
pub(crate) const DEFAULT_REPO: &str = "default";

/// Editor swap, backup and temp files that stay in the mount where they were written.
pub(crate) const DEFAULT_IGNORE: &[&str] = &[
    ".*.swp",
    ".*.swo",
    ".*.swx",
    "*~",
    "4913",
    ".#*",
    // `#` starts a comment in gitignore syntax: escaped, this is emacs's `#file#`.
    "\\#*#",
    "*___jb_tmp___",
    "*___jb_old___",
    ".DS_Store",
];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Config {
    #[serde(default)]
    pub(crate) repos: BTreeMap<String, RepoConfig>,
    #[serde(default)]
    pub(crate) mounts: Vec<MountConfig>,
    /// Desktop notices of new conflicts (`jjfs config --global notify`).
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub(crate) notify: bool,
    /// Where `/metrics` is served (`HOST:PORT`); empty: not served.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) metrics_listen: String,
    #[serde(flatten)]
    pub(crate) extra: Map<String, Value>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            repos: BTreeMap::new(),
            mounts: Vec::new(),
            notify: true,
            metrics_listen: String::new(),
            extra: Map::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RepoConfig {
    pub(crate) path: PathBuf,
    /// The first remote's URL, for older readers; `remotes` is what this version reads (an
    /// older config has only this field: it is read as the remote `origin`).
    #[serde(default)]
    pub(crate) remote: Option<String>,
    /// Every remote, in the order they were added.
    #[serde(default)]
    pub(crate) remotes: Vec<RemoteConfig>,
    #[serde(default = "default_sync_interval")]
    pub(crate) sync_interval: u64,
    #[serde(default = "default_push_interval")]
    pub(crate) push_interval: u64,
    /// Seconds of quiet after a local change before it is pushed.
    #[serde(default = "default_push_delay")]
    pub(crate) push_delay: u64,
    /// Seconds between checks of each remote for a moved trunk.
    #[serde(default = "default_fetch_interval")]
    pub(crate) fetch_interval: u64,
    #[serde(default = "default_trunk")]
    pub(crate) trunk: String,
    #[serde(default = "default_rescan_interval")]
    pub(crate) rescan_interval: u64,
    #[serde(default = "default_ignore")]
    pub(crate) ignore: Vec<String>,
    /// `jjfs pause --repo`: no mount of the repo syncs, nor its remote.
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) paused: bool,
    /// How `jjfs open` mounts when it is not given `--mode`.
    #[serde(default)]
    pub(crate) mount_mode: api::ModeChoice,
    #[serde(flatten)]
    pub(crate) extra: Map<String, Value>,
}

/// One named git remote of a repo.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RemoteConfig {
    pub(crate) name: String,
    pub(crate) url: String,
    #[serde(flatten)]
    pub(crate) extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MountConfig {
    pub(crate) id: Uuid,
    pub(crate) repo: String,
    pub(crate) path: PathBuf,
    pub(crate) workspace: PathBuf,
    /// Who owns the files the engine creates in the mount (a root daemon writing a user's
    /// folder): the owner of the mount path's parent, or `jjfs open --owner`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) owner: Option<Owner>,
    /// `jjfs pause PATH`: the mount neither sends nor gets changes.
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) paused: bool,
    /// The repo folders the mount shows (`jjfs open --only`, `jjfs only`), normalized;
    /// None for everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) only: Option<Vec<String>>,
    /// FUSE (the default of mounts made before modes existed) or direct; an `auto` open
    /// is resolved once and stored here.
    #[serde(default)]
    pub(crate) mode: api::MountMode,
    /// A direct mount's folder as it was at `open` (device and inode): a folder found
    /// gone or replaced is never read as "everything was deleted".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) identity: Option<FolderIdentity>,
    #[serde(flatten)]
    pub(crate) extra: Map<String, Value>,
}

/// Which directory a path named: its device and inode.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct FolderIdentity {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

/// A user and group, by number.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Owner {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

impl RemoteConfig {
    pub(crate) fn new(name: &str, url: &str) -> Self {
        Self {
            name: name.to_owned(),
            url: url.to_owned(),
            extra: Map::new(),
        }
    }
}

impl MountConfig {
    pub(crate) fn new(id: Uuid, repo: &str, path: PathBuf, workspace: PathBuf) -> Self {
        Self {
            id,
            repo: repo.to_owned(),
            path,
            workspace,
            owner: None,
            paused: false,
            only: None,
            mode: api::MountMode::Fuse,
            identity: None,
            extra: Map::new(),
        }
    }

    pub(crate) fn is_direct(&self) -> bool {
        self.mode == api::MountMode::Direct
    }

    /// Where the mount's files are: the backing workspace of a FUSE mount, the mount's own
    /// folder for a direct one.
    pub(crate) fn files_dir(&self) -> &Path {
        if self.is_direct() {
            &self.path
        } else {
            &self.workspace
        }
    }

    /// The owner of files the engine creates, for the file layer.
    pub(crate) fn file_owner(&self) -> Option<crate::files::Owner> {
        self.owner.map(|o| crate::files::Owner {
            uid: o.uid,
            gid: o.gid,
        })
    }
}

fn default_true() -> bool {
    true
}
fn is_true(value: &bool) -> bool {
    *value
}
fn is_false(value: &bool) -> bool {
    !*value
}
fn default_sync_interval() -> u64 {
    DEFAULT_SYNC_INTERVAL
}
fn default_push_interval() -> u64 {
    DEFAULT_PUSH_INTERVAL
}
fn default_push_delay() -> u64 {
    DEFAULT_PUSH_DELAY
}
fn default_fetch_interval() -> u64 {
    DEFAULT_FETCH_INTERVAL
}
fn default_rescan_interval() -> u64 {
    DEFAULT_RESCAN_INTERVAL
}
fn default_trunk() -> String {
    DEFAULT_TRUNK.to_owned()
}
pub(crate) fn default_ignore() -> Vec<String> {
    DEFAULT_IGNORE.iter().map(|s| (*s).to_owned()).collect()
}

impl RepoConfig {
    /// Settings of a newly created repo.
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            remote: None,
            remotes: Vec::new(),
            sync_interval: DEFAULT_SYNC_INTERVAL,
            push_interval: DEFAULT_PUSH_INTERVAL,
            push_delay: DEFAULT_PUSH_DELAY,
            fetch_interval: DEFAULT_FETCH_INTERVAL,
            trunk: default_trunk(),
            rescan_interval: DEFAULT_RESCAN_INTERVAL,
            ignore: default_ignore(),
            paused: false,
            mount_mode: api::ModeChoice::Auto,
            extra: Map::new(),
        }
    }

    /// The settings `jjfs config` shows.
    pub(crate) fn settings(&self) -> api::RepoSettings {
        api::RepoSettings {
            sync_interval: self.sync_interval,
            rescan_interval: self.rescan_interval,
            push_interval: self.push_interval,
            push_delay: self.push_delay,
            fetch_interval: self.fetch_interval,
            trunk: self.trunk.clone(),
            ignore: self.ignore.clone(),
            mount_mode: self.mount_mode,
            remote: self.remote.clone(),
        }
    }

    /// Reads what an older jjfs wrote: a config with only `remote` has that remote as
    /// `origin`. Otherwise `remotes` wins and `remote` is written again from it.
    pub(crate) fn upgrade(&mut self) {
        if let (Some(url), true) = (&self.remote, self.remotes.is_empty()) {
            self.remotes.push(RemoteConfig::new(DEFAULT_REMOTE, url));
        }
        self.keep_legacy_remote();
    }

    /// The remote named `name`.
    pub(crate) fn remote_named(&self, name: &str) -> Option<&RemoteConfig> {
        self.remotes.iter().find(|r| r.name == name)
    }

    /// Adds remote `name`, or gives it a new URL (it keeps its place).
    pub(crate) fn set_remote(&mut self, name: &str, url: &str) {
        match self.remotes.iter_mut().find(|r| r.name == name) {
            Some(remote) => remote.url = url.to_owned(),
            None => self.remotes.push(RemoteConfig::new(name, url)),
        }
        self.keep_legacy_remote();
    }

    /// Removes remote `name`; whether it was there.
    pub(crate) fn remove_remote(&mut self, name: &str) -> bool {
        let before = self.remotes.len();
        self.remotes.retain(|r| r.name != name);
        self.keep_legacy_remote();
        self.remotes.len() != before
    }

    /// `remote` is the first remote's URL, for older readers.
    fn keep_legacy_remote(&mut self) {
        self.remote = self.remotes.first().map(|r| r.url.clone());
    }

    /// Takes the settings `jjfs config` changes (the remote is `jjfs remote`'s).
    pub(crate) fn apply(&mut self, settings: api::RepoSettings) {
        self.sync_interval = settings.sync_interval;
        self.rescan_interval = settings.rescan_interval;
        self.push_interval = settings.push_interval;
        self.push_delay = settings.push_delay;
        self.fetch_interval = settings.fetch_interval;
        self.trunk = settings.trunk;
        self.ignore = settings.ignore;
        self.mount_mode = settings.mount_mode;
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {source} (fix or move the file; jjfs will not overwrite it)")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Config {
    /// Reads `path`; a missing file is an empty config.
    pub(crate) fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let mut config: Self =
            serde_json::from_slice(&text).map_err(|source| ConfigError::Parse {
                path: path.to_owned(),
                source,
            })?;
        config.repos.values_mut().for_each(RepoConfig::upgrade);
        Ok(config)
    }

    /// Writes the config atomically (temp file, fsync, rename).
    pub(crate) fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let mut text = serde_json::to_vec_pretty(self).expect("config serializes");
        text.push(b'\n');
        atomic_file::write(path, &text).map_err(|source| ConfigError::Write {
            path: path.to_owned(),
            source,
        })
    }

    pub(crate) fn mount_by_path(&self, path: &Path) -> Option<&MountConfig> {
        self.mounts.iter().find(|m| m.path == path)
    }

    pub(crate) fn mounts_of<'a>(
        &'a self,
        repo: &'a str,
    ) -> impl Iterator<Item = &'a MountConfig> + 'a {
        self.mounts.iter().filter(move |m| m.repo == repo)
    }
}

/// Checks a repo name: `[A-Za-z0-9._-]+`, not `.` or `..`.
pub(crate) fn validate_repo_name(name: &str) -> Result<(), String> {
    let plain = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !plain || name == "." || name == ".." {
        return Err(format!(
            "invalid repo name {name:?}: use letters, digits, '.', '_' and '-' (not '.' or '..')"
        ));
    }
    Ok(())
}

/// Checks a remote name: a plain name as for repos, not starting with `-` or `.`, and not
/// `git` (jj keeps that name for the git repository itself).
pub(crate) fn validate_remote_name(name: &str) -> Result<(), String> {
    let plain = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !name.starts_with(['-', '.'])
        && !name.ends_with(".lock");
    if !plain {
        return Err(format!(
            "invalid remote name {name:?}: use letters, digits, '.', '_' and '-', starting with \
             a letter or digit"
        ));
    }
    if name == "git" {
        return Err("the remote name \"git\" is reserved by jj; choose another".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_names() {
        for good in ["origin", "backup-2", "nas.home", "B_1"] {
            assert!(validate_remote_name(good).is_ok(), "{good}");
        }
        for bad in ["", "git", "-x", ".hidden", "a/b", "a b", "x.lock", "é"] {
            assert!(validate_remote_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_old_config_has_its_remote_as_origin_and_keeps_writing_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"repos":{"r":{"path":"/x","remote":"/srv/a.git"}},"mounts":[]}"#,
        )
        .unwrap();
        let mut config = Config::load(&path).unwrap();
        let repo = config.repos.get_mut("r").unwrap();
        assert_eq!(
            repo.remotes,
            vec![RemoteConfig::new("origin", "/srv/a.git")]
        );
        repo.set_remote("backup", "/srv/b.git");
        repo.set_remote("origin", "/srv/a2.git");
        assert_eq!(repo.remote.as_deref(), Some("/srv/a2.git"));
        assert!(repo.remove_remote("origin"));
        assert!(!repo.remove_remote("origin"));
        assert_eq!(repo.remote.as_deref(), Some("/srv/b.git"));
        config.save(&path).unwrap();
        let text: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(text["repos"]["r"]["remote"], "/srv/b.git");
        assert_eq!(text["repos"]["r"]["remotes"][0]["name"], "backup");
        assert_eq!(text["repos"]["r"]["push_delay"], 5);
        assert_eq!(text["repos"]["r"]["fetch_interval"], 30);
    }

    #[test]
    fn repo_names() {
        for good in ["default", "work-notes", "a.b_c", "X1"] {
            assert!(validate_repo_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "é", "../x", "a\0"] {
            assert!(validate_repo_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let text = r#"{"repos":{"r":{"path":"/x","remote":null,"sync_interval":2,
            "push_interval":300,"future":1}},"mounts":[],"version":7}"#;
        let config: Config = serde_json::from_str(text).unwrap();
        let back = serde_json::to_value(&config).unwrap();
        assert_eq!(back["version"], 7);
        assert_eq!(back["repos"]["r"]["future"], 1);
        assert_eq!(back["repos"]["r"]["trunk"], "main");
        assert_eq!(back["repos"]["r"]["mount_mode"], "auto");
    }

    #[test]
    fn mounts_from_before_modes_are_fuse_mounts() {
        let text = r#"{"repos":{},"mounts":[{"id":"00000000-0000-0000-0000-000000000000",
            "repo":"r","path":"/m","workspace":"/w"}]}"#;
        let config: Config = serde_json::from_str(text).unwrap();
        assert_eq!(config.mounts[0].mode, api::MountMode::Fuse);
        assert_eq!(config.mounts[0].files_dir(), Path::new("/w"));
        let back = serde_json::to_value(&config).unwrap();
        assert_eq!(back["mounts"][0]["mode"], "fuse");
        assert!(back["mounts"][0].get("identity").is_none());
    }

    #[test]
    fn corrupt_file_is_reported_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, "{not json").unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(err.contains("config.json"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{not json");
    }

    #[test]
    fn missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            Config::load(&dir.path().join("none.json")).unwrap(),
            Config::default()
        );
    }
}

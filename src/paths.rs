//! The `JJFS_HOME` layout: where the daemon keeps its config, socket, lock, log and repos.
//!
//! Only this module knows file names inside the state directory; everything else asks it.

use std::path::{Path, PathBuf};

/// Environment variable that overrides the state directory (`~/.jjfs` otherwise).
pub(crate) const HOME_ENV: &str = "JJFS_HOME";

/// The state directory and the well-known files inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Paths {
    home: PathBuf,
}

impl Paths {
    /// Uses `$JJFS_HOME` if set and non-empty, else `~/.jjfs`.
    pub(crate) fn from_env() -> Result<Self, PathsError> {
        match std::env::var_os(HOME_ENV) {
            Some(dir) if !dir.is_empty() => Ok(Self::at(absolute(Path::new(&dir))?)),
            _ => {
                let base = directories::BaseDirs::new().ok_or(PathsError::NoHome)?;
                Ok(Self::at(base.home_dir().join(".jjfs")))
            }
        }
    }

    /// A layout rooted at `home` (used by tests and by `from_env`).
    pub(crate) fn at(home: impl Into<PathBuf>) -> Self {
        Self { home: home.into() }
    }

    pub(crate) fn home(&self) -> &Path {
        &self.home
    }

    pub(crate) fn config(&self) -> PathBuf {
        self.home.join("config.json")
    }

    pub(crate) fn socket(&self) -> PathBuf {
        self.home.join("daemon.sock")
    }

    pub(crate) fn lock(&self) -> PathBuf {
        self.home.join("daemon.lock")
    }

    pub(crate) fn log(&self) -> PathBuf {
        self.home.join("sync.log")
    }

    pub(crate) fn repos(&self) -> PathBuf {
        self.home.join("repos")
    }

    /// `repos/<name>`: the jj repository (its `.jj/repo` holds the store).
    pub(crate) fn repo(&self, name: &str) -> PathBuf {
        self.repos().join(name)
    }

    /// `repos/<name>/workspaces/<id>`: the backing jj workspace of one mount.
    pub(crate) fn workspace(&self, repo: &str, id: &uuid::Uuid) -> PathBuf {
        self.repo(repo).join("workspaces").join(id.to_string())
    }

    /// Creates the state directory (mode 0700) if needed and tightens its mode.
    pub(crate) fn ensure_home(&self) -> std::io::Result<()> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.home)?;
        std::fs::set_permissions(&self.home, std::fs::Permissions::from_mode(0o700))
    }
}

/// Makes `path` absolute against the current directory without resolving symlinks.
pub(crate) fn absolute(path: &Path) -> Result<PathBuf, PathsError> {
    std::path::absolute(path).map_err(|source| PathsError::Absolute {
        path: path.to_owned(),
        source,
    })
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum PathsError {
    #[error("cannot find the home directory; set JJFS_HOME")]
    NoHome,
    #[error("cannot make {path} absolute: {source}")]
    Absolute {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_contract() {
        let p = Paths::at("/h");
        assert_eq!(p.config(), Path::new("/h/config.json"));
        assert_eq!(p.socket(), Path::new("/h/daemon.sock"));
        assert_eq!(p.lock(), Path::new("/h/daemon.lock"));
        assert_eq!(p.log(), Path::new("/h/sync.log"));
        let id = uuid::Uuid::nil();
        assert_eq!(
            p.workspace("notes", &id),
            Path::new("/h/repos/notes/workspaces/00000000-0000-0000-0000-000000000000")
        );
    }
}

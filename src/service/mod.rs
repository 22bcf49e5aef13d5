//! The daemon as a user service, started at login and restarted after a crash: a systemd
//! user unit on Linux, a launchd agent on macOS. This module writes and removes the service
//! file and drives the service manager (`systemctl --user`, `launchctl`) for `jjfs install`,
//! `uninstall`, `start`, `stop` and autostart. A service belongs to one state directory: it
//! is used only by `jjfs` commands for the same `JJFS_HOME`.

pub(crate) mod launchd;
pub(crate) mod systemd;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::paths::{HOME_ENV, Paths};

/// Set in the service's environment: the daemon reports that it runs as a service.
pub(crate) const SERVICE_ENV: &str = "JJFS_SERVICE";

/// Variables a service carries over from the `jjfs install` that wrote it: where the state
/// lives, where git 2.41+ is, and the identity, logging and git settings the daemon reads.
const CARRIED_ENV: &[&str] = &[
    "PATH",
    "JJFS_LOG",
    "JJFS_NO_PASSTHROUGH",
    "JJFS_FUSE_THREADS",
    "JJFS_PACK_AUTO",
    "JJ_USER",
    "JJ_EMAIL",
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
    "EMAIL",
    "GIT_SSH_COMMAND",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Manager {
    /// A systemd user unit (Linux).
    Systemd,
    /// A launchd agent (macOS).
    Launchd,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ServiceError {
    #[error("cannot find your home directory (set HOME)")]
    NoHome,
    #[error("{0}")]
    Unavailable(String),
    #[error("`{command}` failed: {message}")]
    Command { command: String, message: String },
}

/// What the service runs: the daemon binary, for one state directory, with some environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spec {
    pub(crate) program: PathBuf,
    pub(crate) env: Vec<(String, String)>,
}

impl Spec {
    /// A service for `paths` running `program`, with this process's carried-over variables.
    pub(crate) fn new(program: &Path, paths: &Paths) -> Self {
        let program = std::fs::canonicalize(program).unwrap_or_else(|_| program.to_owned());
        let mut env = vec![
            (HOME_ENV.to_owned(), paths.home().display().to_string()),
            (SERVICE_ENV.to_owned(), "1".to_owned()),
        ];
        env.extend(
            CARRIED_ENV
                .iter()
                .filter_map(|name| Some((name.to_string(), std::env::var(name).ok()?))),
        );
        Self { program, env }
    }
}

impl std::fmt::Display for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Systemd => "systemd",
            Self::Launchd => "launchd",
        })
    }
}

impl Manager {
    /// The manager of this platform.
    pub(crate) fn native() -> Self {
        if cfg!(target_os = "macos") {
            Self::Launchd
        } else {
            Self::Systemd
        }
    }

    /// Where the service file goes.
    pub(crate) fn file(self) -> Result<PathBuf, ServiceError> {
        let home = directories::BaseDirs::new().ok_or(ServiceError::NoHome)?;
        Ok(match self {
            Self::Systemd => home.config_dir().join("systemd/user").join(systemd::UNIT),
            Self::Launchd => home
                .home_dir()
                .join("Library/LaunchAgents")
                .join(format!("{}.plist", launchd::LABEL)),
        })
    }

    /// The service file's text.
    pub(crate) fn render(self, spec: &Spec) -> String {
        match self {
            Self::Systemd => systemd::render(spec),
            Self::Launchd => launchd::render(spec),
        }
    }

    /// Whether the manager runs for this user, or why not.
    pub(crate) fn check_available(self) -> Result<(), ServiceError> {
        match self {
            Self::Systemd => systemd::check_available(),
            Self::Launchd => launchd::check_available(),
        }
    }

    /// Registers the written file with the manager and starts the service.
    pub(crate) fn enable(self, file: &Path) -> Result<(), ServiceError> {
        match self {
            Self::Systemd => systemd::enable(),
            Self::Launchd => launchd::load(file),
        }
    }

    /// Stops the service and unregisters it (the file is removed by the caller).
    pub(crate) fn disable(self, file: &Path) -> Result<(), ServiceError> {
        match self {
            Self::Systemd => systemd::disable(),
            Self::Launchd => launchd::unload(file),
        }
    }

    /// Starts the installed service; returns once the manager says it started.
    pub(crate) fn start(self) -> Result<(), ServiceError> {
        match self {
            Self::Systemd => systemd::start(),
            Self::Launchd => launchd::start(),
        }
    }

    /// Stops the service (the daemon unmounts everything first), if the manager can.
    pub(crate) fn stop(self) -> Result<(), ServiceError> {
        match self {
            Self::Systemd => systemd::stop(),
            Self::Launchd => launchd::stop(),
        }
    }

    /// Removes what the manager remembers of a file that is gone.
    pub(crate) fn forget(self) {
        if self == Self::Systemd {
            let _ = systemd::daemon_reload();
        }
    }
}

/// The service installed for `paths`, if there is one and its manager runs: then the daemon
/// is started and stopped through it. A service file for another state directory, or one
/// whose manager is not running (a container), does not count.
pub(crate) fn installed(paths: &Paths) -> Option<Manager> {
    let manager = Manager::native();
    let text = std::fs::read_to_string(manager.file().ok()?).ok()?;
    let ours = match manager {
        Manager::Systemd => systemd::names_home(&text, paths.home()),
        Manager::Launchd => launchd::names_home(&text, paths.home()),
    };
    (ours && manager.check_available().is_ok()).then_some(manager)
}

/// Runs a service manager command; its own message when it fails.
fn run(program: &str, args: &[&str]) -> Result<String, ServiceError> {
    let command = format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| ServiceError::Command {
            command: command.clone(),
            message: e.to_string(),
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let message = stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| format!("exited with {}", out.status));
        Err(ServiceError::Command { command, message })
    }
}

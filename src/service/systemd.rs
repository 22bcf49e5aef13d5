//! The systemd user unit: `~/.config/systemd/user/jjfs.service`, `Type=notify` (the daemon
//! says READY=1 once its socket answers and its mounts are back), restarted on failure.

use std::path::Path;

use super::{ServiceError, Spec, run};
use crate::paths::HOME_ENV;

pub(crate) const UNIT: &str = "jjfs.service";

pub(crate) fn render(spec: &Spec) -> String {
    let mut text = String::from(
        "# Written by `jjfs install`; remove it with `jjfs uninstall`.\n\
         [Unit]\n\
         Description=jjfs: live views of jj repositories\n\
         \n\
         [Service]\n\
         Type=notify\n",
    );
    text.push_str(&format!(
        "ExecStart={} --foreground\n",
        quote(&spec.program.display().to_string())
    ));
    for (name, value) in &spec.env {
        text.push_str(&env_line(name, value));
        text.push('\n');
    }
    text.push_str(
        "Restart=on-failure\n\
         RestartSec=1\n\
         # The daemon unmounts everything on SIGTERM; its watchdog process is left to it.\n\
         KillMode=mixed\n\
         TimeoutStopSec=60\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
    );
    text
}

/// `Environment="NAME=value"`, with systemd's quoting and `%` specifiers escaped.
fn env_line(name: &str, value: &str) -> String {
    format!("Environment={}", quote(&format!("{name}={value}")))
}

fn quote(word: &str) -> String {
    let escaped = word
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('%', "%%")
        .replace('\n', "\\n");
    format!("\"{escaped}\"")
}

pub(crate) fn names_home(text: &str, home: &Path) -> bool {
    let line = env_line(HOME_ENV, &home.display().to_string());
    text.lines().any(|l| l.trim() == line)
}

fn systemctl(args: &[&str]) -> Result<String, ServiceError> {
    let mut full = vec!["--user"];
    full.extend_from_slice(args);
    run("systemctl", &full)
}

/// A user manager answers `systemctl --user` (it does not in most containers and CI).
pub(crate) fn check_available() -> Result<(), ServiceError> {
    match systemctl(&["is-system-running"]) {
        Ok(_) => Ok(()),
        // "degraded" (some other unit failed) exits non-zero but the manager runs.
        Err(ServiceError::Command { ref message, .. }) if message == "degraded" => Ok(()),
        Err(ServiceError::Command { message, .. }) => Err(ServiceError::Unavailable(format!(
            "no systemd user manager is running here ({message})"
        ))),
        Err(err) => Err(err),
    }
}

pub(crate) fn daemon_reload() -> Result<(), ServiceError> {
    systemctl(&["daemon-reload"]).map(drop)
}

pub(crate) fn enable() -> Result<(), ServiceError> {
    daemon_reload()?;
    systemctl(&["enable", "--now", UNIT]).map(drop)
}

pub(crate) fn disable() -> Result<(), ServiceError> {
    systemctl(&["disable", "--now", UNIT]).map(drop)
}

pub(crate) fn start() -> Result<(), ServiceError> {
    systemctl(&["start", UNIT]).map(drop)
}

pub(crate) fn stop() -> Result<(), ServiceError> {
    systemctl(&["stop", UNIT]).map(drop)
}

/// Whether the user manager has the unit enabled (started at login) and active (running).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitState {
    pub enabled: bool,
    pub active: bool,
}

/// Asks the user manager about the unit (`is-enabled`, `is-active`); call it once
/// `check_available` passed.
pub fn unit_state() -> Result<UnitState, ServiceError> {
    // Both answer on stdout and exit non-zero for "no", so `run` does not fit.
    let ask = |verb: &str| -> Result<String, ServiceError> {
        let out = std::process::Command::new("systemctl")
            .args(["--user", verb, UNIT])
            .output()
            .map_err(|e| ServiceError::Command {
                command: format!("systemctl --user {verb} {UNIT}"),
                message: e.to_string(),
            })?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    Ok(UnitState {
        enabled: ask("is-enabled")? == "enabled",
        active: ask("is-active")? == "active",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_for_systemd() {
        assert_eq!(
            env_line("GIT_SSH_COMMAND", r#"ssh -i "my key" -o X=50%"#),
            r#"Environment="GIT_SSH_COMMAND=ssh -i \"my key\" -o X=50%%""#
        );
    }

    #[test]
    fn a_unit_names_its_state_directory() {
        let spec = Spec {
            program: "/opt/jjfs bin/jjfsd".into(),
            env: vec![(HOME_ENV.to_owned(), "/home/me/.jjfs".to_owned())],
        };
        let unit = render(&spec);
        assert!(unit.contains("ExecStart=\"/opt/jjfs bin/jjfsd\" --foreground\n"));
        assert!(unit.contains("Type=notify\n"));
        assert!(names_home(&unit, Path::new("/home/me/.jjfs")));
        assert!(!names_home(&unit, Path::new("/home/me/.jjfs2")));
    }
}

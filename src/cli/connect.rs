//! Reaching the daemon: connect to its socket, start it when none answers (autostart, unless
//! `JJFS_NO_AUTOSTART=1`), and check that it runs the same version.

use anyhow::{Context, bail};

use crate::daemon::launch;
use crate::daemon::lock::{DaemonLock, process_alive};
use crate::paths::Paths;
use crate::rpc::{Client, ClientError};
use crate::service;

pub(crate) const NO_AUTOSTART_ENV: &str = "JJFS_NO_AUTOSTART";

pub(crate) fn paths() -> anyhow::Result<Paths> {
    Ok(Paths::from_env()?)
}

/// A client that has passed the version handshake, starting the daemon when needed.
pub(crate) fn connect() -> anyhow::Result<Client> {
    let paths = paths()?;
    if let Some(client) = try_connect(&paths)? {
        return Ok(client);
    }
    if autostart_disabled() {
        bail!(
            "jjfsd is not running for {} (start it with `jjfs start`; autostart is off because {NO_AUTOSTART_ENV}=1)",
            paths.home().display()
        );
    }
    start_daemon(&paths)?;
    try_connect(&paths)?.context("jjfsd started but does not answer")
}

/// Connects if a daemon answers; None when nothing listens (or only a dying daemon's socket
/// is left).
pub(crate) fn try_connect(paths: &Paths) -> anyhow::Result<Option<Client>> {
    // A daemon that was killed can leave its socket accepting connections nobody answers.
    if let Some(pid) = DaemonLock::holder(&paths.lock())
        && !process_alive(pid)
    {
        return Ok(None);
    }
    match Client::connect(&paths.socket()) {
        Ok(mut client) => match client.handshake() {
            Ok(_) => Ok(Some(client)),
            Err(ClientError::Io(_)) => Ok(None),
            Err(err) => Err(err.into()),
        },
        Err(_) => Ok(None),
    }
}

/// Starts the daemon through the installed service when there is one (so that two daemons
/// never race for the lock), else directly; returns its pid once it answers.
pub(crate) fn start_daemon(paths: &Paths) -> anyhow::Result<u32> {
    if let Some(manager) = service::installed(paths) {
        manager.start()?;
        return wait_ready(paths);
    }
    Ok(launch::start_detached(&launch::daemon_binary(), paths)?)
}

/// Waits until a daemon answers on the socket; its pid.
pub(crate) fn wait_ready(paths: &Paths) -> anyhow::Result<u32> {
    let deadline = std::time::Instant::now() + launch::READY_TIMEOUT;
    loop {
        if let Some(mut client) = try_connect(paths)? {
            return Ok(client.handshake()?.pid);
        }
        if std::time::Instant::now() > deadline {
            bail!(
                "jjfsd did not answer on {} within {} s; see {}",
                paths.socket().display(),
                launch::READY_TIMEOUT.as_secs(),
                paths.log().display()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn autostart_disabled() -> bool {
    std::env::var(NO_AUTOSTART_ENV).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

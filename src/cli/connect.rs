//! Reaching the daemon: connect to its socket, start it when none answers (autostart, unless
//! `JJFS_NO_AUTOSTART=1`), and check that it runs the same version.

use anyhow::{Context, bail};

use crate::daemon::launch;
use crate::daemon::lock::{DaemonLock, process_alive};
use crate::paths::Paths;
use crate::rpc::Client;
use crate::rpc::client::ClientError;

pub const NO_AUTOSTART_ENV: &str = "JJFS_NO_AUTOSTART";

pub fn paths() -> anyhow::Result<Paths> {
    Ok(Paths::from_env()?)
}

/// A client that has passed the version handshake, starting the daemon when needed.
pub fn connect() -> anyhow::Result<Client> {
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
pub fn try_connect(paths: &Paths) -> anyhow::Result<Option<Client>> {
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

pub fn start_daemon(paths: &Paths) -> anyhow::Result<u32> {
    let pid = launch::start_detached(&launch::daemon_binary(), paths)?;
    Ok(pid)
}

fn autostart_disabled() -> bool {
    std::env::var(NO_AUTOSTART_ENV).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Parser;

use crate::api::Shutdown;
use crate::daemon::lock::{DaemonLock, process_alive};
use crate::paths::Paths;
use crate::rpc::ClientError;

/// How long `stop` waits for the daemon to unmount everything and exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// Stop the daemon; every mount is synced and unmounted first.
#[derive(Debug, Parser)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> anyhow::Result<()> {
    let paths = super::connect::paths()?;
    let Some(mut client) = super::connect::try_connect(&paths)? else {
        println!("jjfsd is not running");
        return Ok(());
    };
    let pid = client.handshake()?.pid;
    drop(client);
    // Through the service manager, which would otherwise count the exit as its own to handle;
    // a daemon started directly meanwhile is asked itself.
    if let Some(manager) = crate::service::installed(&paths) {
        manager.stop()?;
    }
    stop_direct(&paths)?;
    println!("jjfsd stopped (pid {pid})");
    Ok(())
}

/// Asks a running daemon to shut down and waits until it is gone.
pub(crate) fn stop_direct(paths: &Paths) -> anyhow::Result<()> {
    let Some(mut client) = super::connect::try_connect(paths)? else {
        return Ok(());
    };
    let pid = client.handshake()?.pid;
    // The daemon may close the connection before its answer arrives: it is stopping either way.
    match client.call(Shutdown) {
        Ok(_) | Err(ClientError::Io(_)) => {}
        Err(err) => return Err(err.into()),
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    while DaemonLock::holder(&paths.lock()).is_some() || process_alive(pid) {
        if Instant::now() > deadline {
            bail!(
                "jjfsd (pid {pid}) is still running after {} s; see {}",
                STOP_TIMEOUT.as_secs(),
                paths.log().display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

//! Starting a daemon in the background: `jjfsd --foreground` in its own session, detached
//! from the terminal, and a wait until its socket answers. Used by `jjfs` autostart and
//! `jjfs start`, and by `jjfsd` run without `--foreground`.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::paths::{HOME_ENV, Paths};
use crate::rpc::Client;

/// Set in a daemon that was started detached: once ready it stops writing to stderr.
pub(crate) const DETACHED_ENV: &str = "JJFS_DETACHED";

/// How long a new daemon may take to answer on its socket.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub(crate) enum LaunchError {
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Exited(String),
    #[error("jjfsd did not answer on {socket} within {secs} s; see {log}")]
    Timeout {
        socket: PathBuf,
        log: PathBuf,
        secs: u64,
    },
}

/// The jjfsd binary: the one installed beside this executable, else `jjfsd` on PATH.
pub(crate) fn daemon_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name("jjfsd"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("jjfsd"))
}

/// Starts `program --foreground` detached and waits until it answers `version`.
pub(crate) fn start_detached(program: &Path, paths: &Paths) -> Result<u32, LaunchError> {
    let mut command = Command::new(program);
    command
        .arg("--foreground")
        .env(HOME_ENV, paths.home())
        .env(DETACHED_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: setsid is async-signal-safe; it detaches the daemon from our terminal and
    // process group so that the shell's job control and hangups never reach it.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|source| LaunchError::Spawn {
        program: program.to_owned(),
        source,
    })?;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(mut client) = Client::connect(&paths.socket())
            && let Ok(version) = client.handshake()
        {
            return Ok(version.pid);
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            return Err(LaunchError::Exited(exit_message(&stderr, status)));
        }
        if Instant::now() > deadline {
            return Err(LaunchError::Timeout {
                socket: paths.socket(),
                log: paths.log(),
                secs: READY_TIMEOUT.as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The daemon's own `error:` line when it printed one, else its exit status.
fn exit_message(stderr: &str, status: std::process::ExitStatus) -> String {
    stderr
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("error: "))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("jjfsd exited early ({status}) before it was ready"))
}

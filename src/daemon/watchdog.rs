//! The watchdog: a small process beside the daemon that aborts the daemon's mounts if it dies
//! without shutting down (kill -9, the OOM killer, a crash).
//!
//! Why it is needed: the daemon writes other mounts' changes *through* its own mounts. If it
//! is killed while such a write is in flight, the kernel keeps that thread waiting for an
//! answer nobody will give, the dead daemon keeps its FUSE connections open, and every
//! program using a mount hangs. Aborting the connections (a forced unmount) ends all of that:
//! programs get an error, the dead daemon finishes exiting, and the next daemon remounts.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::paths::{HOME_ENV, Paths};

/// What the daemon writes to the watchdog's stdin when it shuts down cleanly.
const GOODBYE: &[u8] = b"bye\n";

/// The daemon's end: say goodbye before a clean exit.
pub(crate) struct Watchdog {
    child: Child,
}

impl Watchdog {
    /// Starts `jjfsd --watchdog PID` for this daemon.
    pub(crate) fn start(paths: &Paths) -> std::io::Result<Self> {
        let exe = std::env::current_exe()?;
        let child = Command::new(exe)
            .arg("--watchdog")
            .arg(std::process::id().to_string())
            .env(HOME_ENV, paths.home())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(Self { child })
    }

    /// The daemon is stopping cleanly (its mounts are already unmounted).
    pub(crate) fn goodbye(mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = std::io::Write::write_all(&mut stdin, GOODBYE);
        }
        let _ = self.child.wait();
    }
}

/// The watchdog process: waits for daemon `pid` to say goodbye; if it dies instead, aborts
/// every mount of `home`'s repos.
pub(crate) fn run(pid: u32, paths: &Paths) {
    let stdin = std::io::stdin();
    let fd = stdin.as_raw_fd();
    let mut buf = [0u8; 16];
    loop {
        let mut pollfd = [nix::poll::PollFd::new(
            unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
            nix::poll::PollFlags::POLLIN,
        )];
        let ready = nix::poll::poll(&mut pollfd, nix::poll::PollTimeout::from(500u16)).unwrap_or(0);
        if ready > 0 {
            let n = stdin.lock().read(&mut buf).unwrap_or(0);
            if buf[..n].starts_with(GOODBYE) {
                return;
            }
            if n == 0 {
                // The daemon's end closed without a goodbye: it died.
                abort_mounts(&paths.repos());
                return;
            }
        } else if !crate::daemon::lock::process_alive(pid) {
            // Dead, but its files are not closed: a thread of it is stuck on a mount.
            abort_mounts(&paths.repos());
            return;
        }
    }
}

fn abort_mounts(repos: &Path) {
    crate::mount::abort_stale_mounts(repos);
}

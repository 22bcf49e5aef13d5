//! Deadlines for the git processes jj-lib runs for a remote, so a remote that never answers
//! cannot hold up `jjfs sync` or the daemon's shutdown.
//!
//! jj-lib spawns `git` itself and waits for it with no timeout, and git in turn runs ssh or a
//! user's `GIT_SSH_COMMAND`. Each jj-lib call that talks to a remote gets a unique marker
//! variable in its git's environment (every descendant inherits it) and a watchdog thread.
//! The watchdog looks in /proc for the processes holding the marker and at their I/O
//! counters: when none of them has read or written anything for the deadline (or the call is
//! cancelled), it kills every one of them. jj-lib then sees its git's pipes close, the call
//! returns with an error, and the caller reports the deadline instead of git's message.
//!
//! The deadline is on silence, not on the whole call: a large clone that keeps receiving data
//! is never cut off, while a remote that answers nothing is given up on after the deadline.

use std::ffi::OsString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

/// The variable that marks the processes of one call.
pub const MARKER_VAR: &str = "JJFS_GIT_CALL";

/// Overrides the default deadline, in seconds (for tests and slow links).
pub const TIMEOUT_ENV: &str = "JJFS_REMOTE_TIMEOUT";

/// How long a remote may stay silent before its git is killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest the watchdog keeps killing a call's processes (new ones may have forked).
const KILL_FOR: Duration = Duration::from_secs(2);

/// Why the watchdog ended a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Nothing was read or written for the deadline.
    Silent(Duration),
    /// `GitCalls::cancel` was called.
    Cancelled,
}

/// The git calls of one remote: each gets the deadline, and all can be stopped at once.
#[derive(Clone, Debug)]
pub struct GitCalls {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    timeout: Duration,
    cancelled: AtomicBool,
    /// The watchdog of the call in progress.
    current: Mutex<Option<Sender<Signal>>>,
}

enum Signal {
    Done,
    Cancel,
}

impl GitCalls {
    pub fn new(timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                timeout,
                cancelled: AtomicBool::new(false),
                current: Mutex::new(None),
            }),
        }
    }

    /// The deadline from `JJFS_REMOTE_TIMEOUT` (seconds), else 30 s.
    pub fn from_env() -> Self {
        let timeout = std::env::var(TIMEOUT_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&secs| secs > 0)
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_TIMEOUT);
        Self::new(timeout)
    }

    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// Kills the git of the call in progress, if any; every later call fails at once.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        if let Some(tx) = self.lock().as_ref() {
            let _ = tx.send(Signal::Cancel);
        }
    }

    /// Starts watching one call; `None` once cancelled.
    pub(crate) fn watch(&self) -> Option<Watch> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let marker = format!("{MARKER_VAR}={}", uuid::Uuid::new_v4());
        *self.lock() = Some(tx.clone());
        if self.inner.cancelled.load(Ordering::SeqCst) {
            *self.lock() = None;
            return None;
        }
        let timeout = self.inner.timeout;
        let watched = marker.clone();
        let thread = std::thread::Builder::new()
            .name("git-deadline".into())
            .spawn(move || watchdog(&watched, timeout, &rx));
        match thread {
            Ok(thread) => Some(Watch {
                calls: self.clone(),
                marker,
                tx,
                thread: Some(thread),
            }),
            Err(err) => {
                // Without a watchdog the call runs unwatched rather than not at all.
                tracing::warn!("could not start a deadline for git: {err}");
                *self.lock() = None;
                Some(Watch {
                    calls: self.clone(),
                    marker,
                    tx,
                    thread: None,
                })
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Sender<Signal>>> {
        self.inner.current.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One watched call; ending it (`finish` or drop) stops its watchdog.
pub(crate) struct Watch {
    calls: GitCalls,
    marker: String,
    tx: Sender<Signal>,
    thread: Option<JoinHandle<Option<Stopped>>>,
}

impl Watch {
    /// The variable to put in the environment of the call's git.
    pub fn env(&self) -> (OsString, OsString) {
        let (key, value) = self.marker.split_once('=').unwrap_or((MARKER_VAR, ""));
        (key.into(), value.into())
    }

    /// Ends the watch: whether the watchdog stopped the call, and why.
    pub fn finish(mut self) -> Option<Stopped> {
        self.end()
    }

    fn end(&mut self) -> Option<Stopped> {
        let _ = self.tx.send(Signal::Done);
        *self.calls.lock() = None;
        self.thread.take().and_then(|t| t.join().ok().flatten())
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.end();
    }
}

/// Waits for the call to end; kills its processes when they stay silent for `timeout` or
/// the call is cancelled.
fn watchdog(marker: &str, timeout: Duration, rx: &Receiver<Signal>) -> Option<Stopped> {
    let poll = (timeout / 10).clamp(Duration::from_millis(100), Duration::from_secs(1));
    let mut last = Activity::default();
    let mut quiet_since = Instant::now();
    loop {
        match rx.recv_timeout(poll) {
            Ok(Signal::Done) | Err(RecvTimeoutError::Disconnected) => return None,
            Ok(Signal::Cancel) => {
                kill_marked(marker);
                return Some(Stopped::Cancelled);
            }
            Err(RecvTimeoutError::Timeout) => {
                let now = Activity::of(&marked(marker));
                // No git running (between the spawns of one call) is not a silent remote.
                if now != last || now.pids.is_empty() {
                    last = now;
                    quiet_since = Instant::now();
                } else if quiet_since.elapsed() >= timeout {
                    tracing::warn!(
                        "git has been silent for {} s; stopping it",
                        timeout.as_secs()
                    );
                    kill_marked(marker);
                    return Some(Stopped::Silent(timeout));
                }
            }
        }
    }
}

/// What a call's processes have done so far: who they are and how much they read and wrote.
#[derive(Debug, Default, PartialEq, Eq)]
struct Activity {
    pids: Vec<i32>,
    bytes: u64,
}

impl Activity {
    fn of(pids: &[i32]) -> Self {
        Self {
            pids: pids.to_vec(),
            bytes: pids.iter().map(|&pid| io_bytes(pid)).sum(),
        }
    }
}

/// Characters read and written by `pid` (pipes and sockets included), 0 if unreadable.
fn io_bytes(pid: i32) -> u64 {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/io")) else {
        return 0;
    };
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            matches!(key, "rchar" | "wchar")
                .then(|| value.trim().parse::<u64>().ok())
                .flatten()
        })
        .sum()
}

/// The live processes whose environment holds `marker` (`NAME=VALUE`), sorted.
pub fn marked(marker: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|v| v == marker.as_bytes()))
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// Kills every process holding `marker` until none is left (or `KILL_FOR` passed).
fn kill_marked(marker: &str) {
    use nix::sys::signal::{Signal, kill};
    let start = Instant::now();
    loop {
        let pids = marked(marker);
        if pids.is_empty() || start.elapsed() > KILL_FOR {
            return;
        }
        for pid in pids {
            let _ = kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A `sh` that runs `script` with the watch's marker, as jj-lib would run git.
    fn spawn(watch: &Watch, script: &str) -> std::process::Child {
        let (key, value) = watch.env();
        Command::new("sh")
            .args(["-c", script])
            .env(key, value)
            .spawn()
            .unwrap()
    }

    #[test]
    fn a_silent_process_and_its_children_are_killed_at_the_deadline() {
        let calls = GitCalls::new(Duration::from_millis(500));
        let watch = calls.watch().unwrap();
        let marker = watch.marker.clone();
        let mut child = spawn(&watch, "sleep 3600 & sleep 3600; wait");
        let started = Instant::now();
        let status = child.wait().unwrap();
        assert!(!status.success());
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(
            watch.finish(),
            Some(Stopped::Silent(Duration::from_millis(500)))
        );
        assert!(marked(&marker).is_empty(), "a child of the call survived");
    }

    #[test]
    fn a_busy_process_is_left_alone_and_a_finished_call_stops_its_watchdog() {
        let calls = GitCalls::new(Duration::from_millis(400));
        let watch = calls.watch().unwrap();
        // Writes a little every 100 ms for a second: longer than the deadline, never silent.
        let mut child = spawn(
            &watch,
            "i=0; while [ $i -lt 10 ]; do echo x > /dev/null; head -c 4096 /dev/zero > /dev/null; \
             sleep 0.1; i=$((i+1)); done",
        );
        assert!(child.wait().unwrap().success());
        assert_eq!(watch.finish(), None);
    }

    #[test]
    fn cancel_kills_the_call_in_progress_and_refuses_later_ones() {
        let calls = GitCalls::new(Duration::from_secs(3600));
        let watch = calls.watch().unwrap();
        let mut child = spawn(&watch, "sleep 3600");
        let canceller = calls.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            canceller.cancel();
        });
        assert!(!child.wait().unwrap().success());
        assert_eq!(watch.finish(), Some(Stopped::Cancelled));
        assert!(calls.watch().is_none());
    }
}

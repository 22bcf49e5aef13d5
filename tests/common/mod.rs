//! TestEnv: one "machine" for an integration test. It owns a temporary `JJFS_HOME` and a
//! scratch directory, runs the real `jjfs`/`jjfsd` binaries against them, and on drop (also
//! when the test panics) stops the daemon and unmounts whatever is still mounted under them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub const JJFS: &str = env!("CARGO_BIN_EXE_jjfs");
pub const JJFSD: &str = env!("CARGO_BIN_EXE_jjfsd");

/// The longest any condition in these tests may take to become true.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub struct TestEnv {
    /// Holds both the state directory (`home/`) and a scratch area (`work/`).
    dir: tempfile::TempDir,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("jjfs-test-")
            .tempdir()
            .unwrap();
        std::fs::create_dir(dir.path().join("work")).unwrap();
        Self { dir }
    }

    /// `$JJFS_HOME` of this environment (not created until the daemon starts).
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// A scratch directory for mount points and files.
    pub fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// A `jjfs` command with this environment's `JJFS_HOME`, run in `work()`.
    pub fn jjfs_cmd(&self) -> Command {
        let mut cmd = Command::new(JJFS);
        cmd.env("JJFS_HOME", self.home())
            .env_remove("JJFS_NO_AUTOSTART")
            .env("JJFS_LOG", "info")
            .current_dir(self.work());
        cmd
    }

    pub fn jjfsd_cmd(&self) -> Command {
        let mut cmd = Command::new(JJFSD);
        cmd.env("JJFS_HOME", self.home()).current_dir(self.work());
        cmd
    }

    /// Runs `jjfs ARGS` and returns its output, whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.jjfs_cmd().args(args).output().unwrap()
    }

    /// Runs `jjfs ARGS`, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "jjfs {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs `jjfs ARGS`, asserts failure, returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "jjfs {args:?} succeeded but should fail:\nstdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// Parses `jjfs ARGS` stdout as JSON.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    /// The pid of the running daemon, from `daemon.lock`, if one holds it.
    pub fn daemon_pid(&self) -> Option<u32> {
        jjfs::daemon::lock::DaemonLock::holder(&self.home().join("daemon.lock"))
    }

    /// Every mount point under this environment, from /proc/mounts.
    pub fn mounts(&self) -> Vec<PathBuf> {
        mounts_under(self.dir.path())
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if let Some(pid) = self.daemon_pid() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let gone = wait_until(Duration::from_secs(20), || !process_alive(pid));
            if !gone {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                wait_until(Duration::from_secs(5), || !process_alive(pid));
            }
        }
        for mount in self.mounts().into_iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(&mount).output();
        }
    }
}

/// Polls `cond` every 10 ms until it holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Like `wait_until` with the standard deadline, panicking with `what` if it never holds.
#[track_caller]
pub fn wait_for(what: &str, cond: impl FnMut() -> bool) {
    assert!(wait_until(DEADLINE, cond), "timed out waiting for {what}");
}

pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Mount points at or below `dir`, in /proc/mounts order.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    text.lines()
        .filter_map(|line| line.split(' ').nth(1))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect()
}

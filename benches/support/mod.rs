//! What the benchmarks share: a jjfs "machine" run through the real binaries (release build),
//! statistics, and readings of the daemon's CPU and memory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The `jjfs` binary the benchmarks run: this build's, or `jjfs` in the directory
/// `JJFS_BENCH_BIN` names (another build to compare with; its `jjfsd` must sit beside it).
pub fn jjfs_binary() -> PathBuf {
    match std::env::var_os("JJFS_BENCH_BIN") {
        Some(dir) => PathBuf::from(dir).join("jjfs"),
        None => PathBuf::from(env!("CARGO_BIN_EXE_jjfs")),
    }
}

pub struct Env {
    dir: tempfile::TempDir,
    extra_env: Vec<(String, String)>,
    /// `--mode` for `open` (None: the default).
    mode: Option<String>,
}

impl Env {
    /// A fresh state directory under `base` (a directory on the disk to measure).
    pub fn new(base: &Path, extra_env: &[(&str, &str)]) -> Self {
        std::fs::create_dir_all(base).unwrap();
        let dir = tempfile::Builder::new()
            .prefix("jjfs-bench-")
            .tempdir_in(base)
            .unwrap();
        std::fs::create_dir(dir.path().join("work")).unwrap();
        Self {
            dir,
            extra_env: extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            mode: None,
        }
    }

    /// Opens mounts with `--mode MODE` (fuse or direct).
    pub fn with_mode(mut self, mode: &str) -> Self {
        self.mode = Some(mode.to_owned());
        self
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    pub fn jjfs(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(jjfs_binary());
        cmd.env("JJFS_HOME", self.home())
            .current_dir(self.work())
            .args(args);
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "jjfs {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn open(&self, name: &str) -> PathBuf {
        let path = self.work().join(name);
        let mut args = vec!["open", "default", path.to_str().unwrap()];
        if let Some(mode) = &self.mode {
            args.extend(["--mode", mode]);
        }
        self.jjfs(&args);
        path
    }

    pub fn daemon_pid(&self) -> u32 {
        let lock = std::fs::read_to_string(self.home().join("daemon.lock")).unwrap();
        lock.lines().next().unwrap().trim().parse().unwrap()
    }

    /// Number of commits on trunk, through the daemon's own view (`jjfs status`).
    pub fn trunk_commits(&self, workspace_of: &Path) -> usize {
        let _ = workspace_of;
        let repo = self.home().join("repos/default");
        let settings = jjfs::repo::user_settings(&jjfs::repo::Identity::from_env()).unwrap();
        let mut repository =
            jjfs::repo::repository::Repository::open("default", &repo, &settings, "main").unwrap();
        repository.history_len().unwrap() as usize
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = Command::new(jjfs_binary())
            .env("JJFS_HOME", self.home())
            .arg("stop")
            .output();
        let text = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        for line in text.lines() {
            if let Some(mp) = line.split(' ').nth(1)
                && Path::new(mp).starts_with(self.dir.path())
            {
                let _ = Command::new("umount").arg("-l").arg(mp).output();
            }
        }
    }
}

/// The disk to measure on: `JJFS_BENCH_DIR`, default /var/tmp (not a tmpfs).
pub fn bench_dir() -> PathBuf {
    PathBuf::from(std::env::var("JJFS_BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into()))
}

/// A count from environment variable `name`, else `default`.
pub fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The q-quantile (0..=1) of `samples`, in milliseconds.
pub fn quantile_ms(samples: &[Duration], q: f64) -> f64 {
    let mut sorted: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let idx = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[idx]
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

/// Resident memory of `pid` in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024.0
}

/// CPU time (user + system) `pid` has used, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = stat.rsplit_once(')').unwrap().1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the name: state is [0]; utime and stime are [11] and [12].
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks
        / nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .unwrap()
            .unwrap() as f64
}

/// Waits until `cond` holds, polling every `every`; panics after `limit`.
pub fn wait(limit: Duration, every: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(every);
    }
}

/// Drops the page, dentry and inode caches, so reads come from the disk (root only).
pub fn drop_caches() {
    let _ = Command::new("sync").status();
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
}

//! TestEnv: one "machine" for an integration test. It owns a temporary `JJFS_HOME` and a
//! scratch directory, runs the real `jjfs`/`jjfsd` binaries against them, and on drop (also
//! when the test panics) stops the daemon and unmounts whatever is still mounted under them.
//!
//! The mount mode is a test dimension: `JJFS_TEST_MODE=direct` (or `fuse`) makes `open`
//! pass `--mode`, so the same tests run over direct mounts; unset, mounts are opened with
//! the default (`auto`: FUSE here). Tests of what only FUSE mounts have (a backing
//! workspace the jj CLI runs in) return early in direct mode (`fuse_only`).
#![allow(dead_code)]

pub mod bus;

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
    /// Extra environment for `jjfs` (and so for the daemon it starts).
    env: Vec<(String, String)>,
    /// `--mode` for `open` (from `JJFS_TEST_MODE`, or `with_mode`).
    mode: Option<String>,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    pub fn new() -> Self {
        Self::new_in(&std::env::temp_dir())
    }

    /// An environment whose home and scratch area live under `base` (for example a small
    /// tmpfs the test mounted).
    pub fn new_in(base: &Path) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("jjfs-test-")
            .tempdir_in(base)
            .unwrap();
        std::fs::create_dir(dir.path().join("work")).unwrap();
        Self {
            dir,
            env: Vec::new(),
            mode: std::env::var("JJFS_TEST_MODE")
                .ok()
                .filter(|m| !m.is_empty()),
        }
    }

    /// Opens mounts with `--mode MODE` whatever `JJFS_TEST_MODE` says.
    pub fn with_mode(mut self, mode: &str) -> Self {
        self.mode = Some(mode.to_owned());
        self
    }

    /// Whether `open` makes direct mounts.
    pub fn is_direct(&self) -> bool {
        self.mode.as_deref() == Some("direct")
    }

    /// For tests of what only FUSE mounts have: true (after saying so) in direct mode, where
    /// the test returns at once.
    pub fn fuse_only(&self, what: &str) -> bool {
        if self.is_direct() {
            eprintln!("not run in direct mode: {what}");
        }
        self.is_direct()
    }

    /// Sets `key=value` for every `jjfs` this environment runs (and its daemon).
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
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
            .env(
                "JJFS_LOG",
                std::env::var("JJFS_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(self.env.iter().map(|(k, v)| (k, v)))
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
        self.run_in(&self.work(), args)
    }

    /// Runs `jjfs ARGS` with `dir` as the current directory.
    pub fn run_in(&self, dir: &Path, args: &[&str]) -> Output {
        self.jjfs_cmd()
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap()
    }

    /// Runs `jjfs ARGS`, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_in(&self.work(), args)
    }

    /// Runs `jjfs ARGS` in `dir`, asserts success, returns stdout.
    pub fn ok_in(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.run_in(dir, args);
        assert!(
            out.status.success(),
            "jjfs {args:?} failed ({}):\nstdout: {}\nstderr: {}\nsync.log ends:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_tail(30)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The last `n` lines of sync.log, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(self.home().join("sync.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Runs `jjfs ARGS`, asserts failure, returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        self.fails_in(&self.work(), args)
    }

    /// Runs `jjfs ARGS` in `dir`, asserts failure, returns stderr.
    pub fn fails_in(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.run_in(dir, args);
        assert!(
            !out.status.success(),
            "jjfs {args:?} succeeded but should fail:\nstdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// Parses `jjfs ARGS` stdout, run in `dir`, as JSON.
    pub fn json_in(&self, dir: &Path, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok_in(dir, args)).unwrap()
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
        // Forced first: it aborts a connection a killed daemon may be stuck on.
        for mount in self.mounts().into_iter().rev() {
            let _ = Command::new("umount").arg("-f").arg(&mount).output();
            let _ = Command::new("umount").arg("-l").arg(&mount).output();
        }
        // A failed test leaves its state (sync.log, the repo) for a look.
        if std::thread::panicking() {
            self.dir.disable_cleanup(true);
            eprintln!("test state kept in {}", self.dir.path().display());
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

pub use jjfs::daemon::lock::process_alive;

/// Mount points at or below `dir`, in /proc/mounts order.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    // This thread's view: a test may run in a mount namespace of its own.
    let text = std::fs::read_to_string("/proc/thread-self/mounts").unwrap_or_default();
    text.lines()
        .filter_map(|line| line.split(' ').nth(1))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect()
}

impl TestEnv {
    /// `jjfs open REPO work/NAME` (with this environment's `--mode`); returns the mount path.
    pub fn open(&self, repo: &str, name: &str) -> PathBuf {
        let path = self.work().join(name);
        let mut args = vec!["open", repo, path.to_str().unwrap()];
        if let Some(mode) = &self.mode {
            args.extend(["--mode", mode]);
        }
        let out = self.ok(&args);
        assert_eq!(out.trim(), path.to_str().unwrap());
        path
    }

    /// `jjfs init` then `n` mounts of the default repo, `m0`..`m{n-1}`.
    pub fn with_mounts(&self, n: usize) -> Vec<PathBuf> {
        self.ok(&["init"]);
        (0..n)
            .map(|i| self.open("default", &format!("m{i}")))
            .collect()
    }

    /// The mounts as `jjfs list --json` shows them.
    pub fn list(&self) -> Vec<serde_json::Value> {
        self.json(&["list", "--json"])["mounts"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Where the files of the mount at `path` are, to write them behind the mount's back
    /// (while the daemon is down, say): its backing workspace, or a direct mount itself.
    pub fn files_of(&self, path: &Path) -> PathBuf {
        if self.is_direct() {
            path.to_owned()
        } else {
            self.workspace_of(path)
        }
    }

    /// A folder where `jj --ignore-working-copy` reads the repo of the mount at `path`: its
    /// backing workspace; for a direct mount (whose state folder the jj CLI refuses, so
    /// that it never takes the empty folder for deleted files) a fresh read-only stand-in
    /// beside it, with a copy of its working-copy state. Never run jj there without
    /// `--ignore-working-copy`.
    pub fn history_dir(&self, path: &Path) -> PathBuf {
        let ws = self.workspace_of(path);
        if !ws.join(".jj/working_copy/type").is_file()
            || std::fs::read_to_string(ws.join(".jj/working_copy/type")).unwrap() == "local"
        {
            return ws;
        }
        let view = tempfile::Builder::new()
            .prefix("jj-view-")
            .tempdir_in(self.dir.path())
            .unwrap()
            .keep();
        let state = view.join(".jj/working_copy");
        std::fs::create_dir_all(&state).unwrap();
        // `.jj/repo` names the repo relative to `.jj`: the stand-in names it absolutely.
        let repo = std::fs::read_to_string(ws.join(".jj/repo")).unwrap();
        let repo = ws.join(".jj").join(repo.trim()).canonicalize().unwrap();
        std::fs::write(view.join(".jj/repo"), repo.to_str().unwrap()).unwrap();
        for entry in std::fs::read_dir(ws.join(".jj/working_copy")).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), state.join(entry.file_name())).unwrap();
            }
        }
        std::fs::write(state.join("type"), "local").unwrap();
        view
    }

    /// The backing workspace of the mount at `path` (a direct mount's state folder).
    pub fn workspace_of(&self, path: &Path) -> PathBuf {
        let mounts = self.list();
        let m = mounts
            .iter()
            .find(|m| m["path"].as_str() == path.to_str())
            .unwrap_or_else(|| panic!("{} is not in jjfs list", path.display()));
        PathBuf::from(m["workspace"].as_str().unwrap())
    }

    /// Runs the jj CLI (of jjfs's jj-lib version) in `dir`; returns stdout.
    pub fn jj(&self, dir: &Path, args: &[&str]) -> String {
        let out = Command::new(jj_binary())
            .args(args)
            .current_dir(dir)
            .env("JJ_CONFIG", "/dev/null")
            .env("JJ_USER", "Test User")
            .env("JJ_EMAIL", "test@example.com")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "jj {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Number of commits on trunk, read with the jj CLI without touching any working copy.
    pub fn trunk_commits(&self, any_mount: &Path) -> usize {
        let ws = self.history_dir(any_mount);
        self.trunk_log(&ws, "commit_id ++ \"\\n\"").lines().count()
    }

    /// `jj log` of trunk (`::main`) with `template`, run in backing workspace `ws` without
    /// touching its working copy.
    pub fn trunk_log(&self, ws: &Path, template: &str) -> String {
        self.jj(
            ws,
            &[
                "--ignore-working-copy",
                "log",
                "--no-graph",
                "-r",
                "::main",
                "-T",
                template,
            ],
        )
    }

    pub fn kill_daemon(&self) {
        let pid = self.daemon_pid().expect("a daemon runs");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        // A thread of it may be stuck on one of its mounts; the next daemon frees it.
        wait_for("the killed daemon to die", || !process_alive(pid));
    }
}

/// The `jj` example binary built beside the tests.
pub fn jj_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let jj = profile_dir.join("examples").join("jj");
    assert!(
        jj.exists(),
        "{} is missing: build it with `cargo build --example jj`",
        jj.display()
    );
    jj
}

/// The content of `path`, or None if it cannot be read.
pub fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Waits until `path` holds exactly `content`.
#[track_caller]
pub fn wait_content(path: &Path, content: &str) {
    let mut last = None;
    let ok = wait_until(DEADLINE, || {
        last = read(path);
        last.as_deref() == Some(content)
    });
    assert!(
        ok,
        "{} never held {content:?}; last {last:?}",
        path.display()
    );
}

/// Waits until `path` does not exist.
#[track_caller]
pub fn wait_gone(path: &Path) {
    wait_for(&format!("{} to disappear", path.display()), || {
        std::fs::symlink_metadata(path).is_err()
    });
}

/// Every file under `root` (relative path → content), skipping nothing but `.jj`.
pub fn snapshot_tree(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let ft = entry.file_type().unwrap();
            if ft.is_dir() {
                if rel == ".jj" {
                    continue;
                }
                out.insert(format!("{rel}/"), Vec::new());
                walk(root, &path, out);
            } else if ft.is_symlink() {
                out.insert(
                    rel,
                    std::fs::read_link(&path)
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes(),
                );
            } else {
                out.insert(rel, std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    walk(root, root, &mut out);
    out
}

impl TestEnv {
    /// Runs `jjfs ARGS` and returns its output; panics if it takes longer than `limit` (the
    /// command is killed first), so a hang fails the test instead of stalling it.
    #[track_caller]
    pub fn run_within(&self, limit: Duration, args: &[&str]) -> Output {
        let child = self
            .jjfs_cmd()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        match rx.recv_timeout(limit) {
            Ok(output) => output.unwrap(),
            Err(_) => {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                panic!("jjfs {args:?} did not finish within {limit:?}");
            }
        }
    }
}

/// Resident memory of process `pid`, in bytes.
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kib * 1024
}

/// CPU time process `pid` has used so far (user + system), in clock ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command: state is the 3rd field, utime the 14th.
    let rest = stat.rsplit_once(')').unwrap().1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// How many file descriptors process `pid` has open.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Runs `cmd` to completion, or kills it once `limit` has passed; returns its output and how
/// long it took, or None when it had to be killed.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Option<(Output, Duration)> {
    use std::io::Read;
    use std::process::Stdio;
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let output = Output {
                status,
                stdout: stdout.join().unwrap(),
                stderr: stderr.join().unwrap(),
            };
            return Some((output, start.elapsed()));
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl TestEnv {
    /// Runs `jjfs ARGS`, killing it if it takes longer than `limit` (None then).
    pub fn run_timed(&self, args: &[&str], limit: Duration) -> Option<(Output, Duration)> {
        output_within(self.jjfs_cmd().args(args), limit)
    }
}

impl TestEnv {
    /// Starts this environment's daemon with at most `limit` open files (soft and hard), so a
    /// test can show what happens when it runs short of descriptors.
    pub fn start_with_fd_limit(&self, limit: u64) {
        use std::os::unix::process::CommandExt;
        let mut cmd = self.jjfs_cmd();
        cmd.arg("start");
        // SAFETY: setrlimit is async-signal-safe and touches nothing but the child.
        unsafe {
            cmd.pre_exec(move || {
                let rlimit = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "jjfs start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pid = self.daemon_pid().expect("a daemon runs after start");
        let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
        let line = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .unwrap();
        let hard: u64 = line.split_whitespace().nth(4).unwrap().parse().unwrap();
        assert!(
            hard <= limit,
            "the daemon's fd limit was not lowered: {line}"
        );
    }
}

/// What the bare remote's `branch` holds at `file`, if anything.
pub fn remote_file(bare: &Path, branch: &str, file: &str) -> Option<String> {
    let out = Command::new("git")
        .args(["show", &format!("{branch}:{file}")])
        .current_dir(bare)
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap())
}

/// Runs `jjfs ARGS` as the user nobody (HOME `scratch`, JJFS_HOME `home`) on a machine
/// where that user cannot open /dev/fuse: if /dev/fuse is open to everyone here, in a
/// private mount namespace with a 0600 node bound over it (the namespace and the bind
/// mount end with the command).
pub fn jjfs_as_nobody_without_fuse(home: &Path, scratch: &Path, args: &[&str]) -> Output {
    use std::os::unix::fs::PermissionsExt as _;
    let inner: Vec<String> = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "env",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([
        format!("JJFS_HOME={}", home.display()),
        format!("HOME={}", scratch.display()),
        JJFS.to_owned(),
    ])
    .chain(args.iter().map(|a| a.to_string()))
    .collect();
    let mode = std::fs::metadata("/dev/fuse").unwrap().permissions().mode();
    if mode & 0o006 != 0o006 {
        return Command::new(&inner[0])
            .args(&inner[1..])
            .current_dir(scratch)
            .output()
            .unwrap();
    }
    let node = scratch.join("fuse-closed");
    if !node.exists() {
        let made = Command::new("mknod")
            .args(["-m", "0600"])
            .arg(&node)
            .args(["c", "10", "229"])
            .status()
            .unwrap();
        assert!(made.success());
    }
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"node=$1; shift; mount --bind "$node" /dev/fuse && exec "$@""#)
        .arg("sh")
        .arg(&node)
        .args(&inner)
        .current_dir(scratch)
        .output()
        .unwrap()
}

/// Runs git in `dir` with `input` on its stdin (as a git user with a fixed identity); its
/// stdout. Fails the test when git fails.
pub fn git_with_input(dir: &Path, args: &[&str], input: &[u8]) -> String {
    use std::io::Write as _;
    let mut child = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Git User")
        .env("GIT_AUTHOR_EMAIL", "git@example.com")
        .env("GIT_COMMITTER_NAME", "Git User")
        .env("GIT_COMMITTER_EMAIL", "git@example.com")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?} in {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs git in `dir`; its stdout (see `git_with_input`).
pub fn git(dir: &Path, args: &[&str]) -> String {
    git_with_input(dir, args, b"")
}

/// A new bare repository `NAME.git` under `env`'s scratch area, whose HEAD is `main`.
pub fn bare_repo(env: &TestEnv, name: &str) -> std::path::PathBuf {
    let path = env.work().join(format!("{name}.git"));
    git(
        &env.work(),
        &["init", "--bare", "-q", "-b", "main", path.to_str().unwrap()],
    );
    path
}

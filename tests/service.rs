//! The daemon as a user service: `install --dry-run` prints a unit that systemd accepts and a
//! plist that parses; without a user systemd, install says so and `start` runs the daemon
//! directly; under a real systemd user manager the service starts, comes back after
//! `kill -9` with its mounts, stops, and uninstalls.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{TestEnv, process_alive, wait_content, wait_for, wait_until};

#[test]
fn install_dry_run_prints_a_unit_that_systemd_accepts() {
    let env = TestEnv::new();
    let unit = env.ok(&["install", "--dry-run"]);
    let jjfsd = std::fs::canonicalize(common::JJFSD).unwrap();
    for line in [
        "Type=notify".to_owned(),
        format!("ExecStart=\"{}\" --foreground", jjfsd.display()),
        format!("Environment=\"JJFS_HOME={}\"", env.home().display()),
        "Restart=on-failure".to_owned(),
        "WantedBy=default.target".to_owned(),
    ] {
        assert!(unit.lines().any(|l| l == line), "no {line:?} in\n{unit}");
    }
    // Printing installs nothing and starts nothing.
    assert!(env.daemon_pid().is_none());

    let file = env.work().join("jjfs.service");
    std::fs::write(&file, &unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&file)
        .output()
        .expect("systemd-analyze is missing (apt-get install systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
}

#[test]
fn install_dry_run_prints_a_launchd_plist_that_parses() {
    let env = TestEnv::new();
    let plist = env.ok(&["install", "--dry-run", "--manager", "launchd"]);
    let file = env.work().join("com.jjfs.daemon.plist");
    std::fs::write(&file, &plist).unwrap();
    let check = format!(
        "import plistlib, sys\n\
         p = plistlib.load(open(sys.argv[1], 'rb'))\n\
         assert p['Label'] == 'com.jjfs.daemon', p\n\
         assert p['ProgramArguments'][-1] == '--foreground', p\n\
         assert p['ProgramArguments'][0].endswith('/jjfsd'), p\n\
         assert p['RunAtLoad'] is True, p\n\
         assert p['KeepAlive'], p\n\
         assert p['EnvironmentVariables']['JJFS_HOME'] == {:?}, p\n",
        env.home().display().to_string()
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(check)
        .arg(&file)
        .output()
        .expect("python3 is missing");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn without_a_user_systemd_install_says_so_and_start_runs_the_daemon_directly() {
    let env = TestEnv::new();
    let home = env.work().join("user-home");
    let runtime = env.work().join("no-manager-here");
    std::fs::create_dir_all(&runtime).unwrap();
    let env = env
        .with_env("HOME", home.to_str().unwrap())
        .with_env("XDG_CONFIG_HOME", home.join(".config").to_str().unwrap())
        .with_env("XDG_RUNTIME_DIR", runtime.to_str().unwrap())
        .with_env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent");
    let err = env.fails(&["install"]);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("no systemd user manager"), "{err}");
    assert!(err.contains("jjfs start"), "{err}");
    assert!(!home.join(".config/systemd/user/jjfs.service").exists());

    let out = env.ok(&["start"]);
    assert!(out.starts_with("jjfsd started (pid"), "{out}");
    let status = env.json(&["status", "--json"]);
    assert_eq!(status["daemon"]["mode"], "direct");
    assert!(env.ok(&["uninstall"]).contains("not installed"));
}

/// A systemd user manager of our own, in a mount namespace of this test's thread (where
/// `/run/systemd/system` exists, as on a machine booted with systemd) and in cgroups
/// delegated to it below the test's own, so it manages nothing else on the machine.
struct UserSystemd {
    manager: Child,
    env: Vec<(String, String)>,
    cgroups: Vec<(PathBuf, PathBuf)>,
}

impl UserSystemd {
    fn start(dir: &Path) -> Self {
        use nix::mount::{MsFlags, mount};
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
            .expect("cannot make a mount namespace (run the tests as root)");
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .unwrap();
        std::fs::create_dir_all("/run/systemd").unwrap();
        mount(
            Some("tmpfs"),
            "/run/systemd",
            Some("tmpfs"),
            MsFlags::empty(),
            Some("mode=0755"),
        )
        .unwrap();
        std::fs::create_dir("/run/systemd/system").unwrap();
        let cgroups = delegate_cgroups();

        let home = dir.join("user-home");
        let runtime = dir.join("run");
        std::fs::create_dir_all(home.join(".config")).unwrap();
        std::fs::create_dir_all(&runtime).unwrap();
        std::fs::set_permissions(
            &runtime,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let env = vec![
            ("HOME".to_owned(), home.display().to_string()),
            (
                "XDG_CONFIG_HOME".to_owned(),
                home.join(".config").display().to_string(),
            ),
            ("XDG_RUNTIME_DIR".to_owned(), runtime.display().to_string()),
        ];
        let systemd = ["/lib/systemd/systemd", "/usr/lib/systemd/systemd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("systemd is not installed (apt-get install systemd)");
        let manager = Command::new(systemd)
            .arg("--user")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("systemd.log")).unwrap())
            .stderr(std::fs::File::create(dir.join("systemd.err")).unwrap())
            .spawn()
            .unwrap();
        let this = Self {
            manager,
            env,
            cgroups,
        };
        wait_for("the systemd user manager", || {
            let state = this.systemctl(&["is-system-running"]);
            state.starts_with("running") || state.starts_with("degraded")
        });
        this
    }

    /// `systemctl --user ARGS`'s output, whatever its exit status.
    fn systemctl(&self, args: &[&str]) -> String {
        let out = Command::new("systemctl")
            .arg("--user")
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn is_active(&self) -> String {
        self.systemctl(&["is-active", "jjfs.service"])
    }

    /// A TestEnv whose `jjfs` talks to this manager.
    fn attach(&self, env: TestEnv) -> TestEnv {
        self.env
            .iter()
            .fold(env, |env, (k, v)| env.with_env(k, v))
            .with_env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
    }
}

impl Drop for UserSystemd {
    fn drop(&mut self) {
        // The manager stops its units (jjfsd unmounts) and exits.
        let _ = self.systemctl(&["exit"]);
        let exited = wait_until(Duration::from_secs(30), || {
            matches!(self.manager.try_wait(), Ok(Some(_)))
        });
        if !exited {
            let _ = self.manager.kill();
            let _ = self.manager.wait();
        }
        for (ours, parent) in self.cgroups.iter().rev() {
            let _ = std::fs::write(parent.join("cgroup.procs"), std::process::id().to_string());
            remove_cgroup(ours);
        }
    }
}

/// Moves this process into a new child of its cgroup in every hierarchy; returns
/// (child, parent) directories.
fn delegate_cgroups() -> Vec<(PathBuf, PathBuf)> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let name = format!("jjfs-test-{}", std::process::id());
    let mut out = Vec::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
        let Some(root) = cgroup_mount(&mountinfo, controllers) else {
            continue;
        };
        let parent = root.join(path.trim_start_matches('/'));
        let child = parent.join(&name);
        if std::fs::create_dir(&child).is_err() {
            continue;
        }
        // Some v1 hierarchies (cpuset) take no process until configured: left alone.
        if std::fs::write(child.join("cgroup.procs"), std::process::id().to_string()).is_ok() {
            out.push((child, parent));
        } else {
            let _ = std::fs::remove_dir(&child);
        }
    }
    out
}

/// Where the cgroup hierarchy with `controllers` ("" for cgroup v2) is mounted.
fn cgroup_mount(mountinfo: &str, controllers: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (fields, tail) = line.split_once(" - ")?;
        let mount_point = fields.split(' ').nth(4)?;
        let mut tail = tail.split(' ');
        let fstype = tail.next()?;
        let options = tail.nth(1).unwrap_or("");
        let matches = if controllers.is_empty() {
            fstype == "cgroup2"
        } else {
            fstype == "cgroup"
                && controllers
                    .split(',')
                    .all(|c| options.split(',').any(|o| o == c))
        };
        matches.then(|| PathBuf::from(mount_point))
    })
}

/// Removes a cgroup and whatever the manager left below it, deepest first.
fn remove_cgroup(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup(&entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

#[test]
fn the_service_starts_comes_back_after_kill_9_and_stops() {
    let env = TestEnv::new();
    let systemd = UserSystemd::start(&env.work());
    let env = systemd.attach(env);
    let unit = PathBuf::from(&systemd.env[1].1).join("systemd/user/jjfs.service");

    let out = env.ok(&["install"]);
    assert!(
        out.contains("Installed") && out.contains("jjfs.service"),
        "{out}"
    );
    assert!(unit.exists());
    assert_eq!(systemd.is_active(), "active");
    assert_eq!(
        systemd.systemctl(&["is-enabled", "jjfs.service"]),
        "enabled"
    );
    let status = env.json(&["status", "--json"]);
    assert_eq!(status["daemon"]["mode"], "service");

    let mounts = env.with_mounts(2);
    std::fs::write(mounts[0].join("before.md"), "before the crash\n").unwrap();
    wait_content(&mounts[1].join("before.md"), "before the crash\n");

    // kill -9: systemd starts a new daemon, which mounts everything again.
    let first = env.daemon_pid().expect("the service's daemon runs");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for("systemd to restart jjfsd", || {
        env.daemon_pid()
            .is_some_and(|pid| pid != first && process_alive(pid))
    });
    // The mounts come back one by one.
    for mount in &mounts {
        wait_content(&mount.join("before.md"), "before the crash\n");
    }
    std::fs::write(mounts[1].join("after.md"), "after the crash\n").unwrap();
    wait_content(&mounts[0].join("after.md"), "after the crash\n");
    assert_eq!(systemd.is_active(), "active");
    let log = std::fs::read_to_string(env.home().join("sync.log")).unwrap();
    assert!(log.contains("did not stop cleanly"), "{}", env.log_tail(20));

    // stop goes through systemd, and unmounts; start brings it all back.
    let out = env.ok(&["stop"]);
    assert!(out.starts_with("jjfsd stopped"), "{out}");
    assert_eq!(systemd.is_active(), "inactive");
    assert!(env.mounts().is_empty(), "{:?}", env.mounts());
    let out = env.ok(&["start"]);
    assert!(out.contains("by the systemd service"), "{out}");
    assert_eq!(systemd.is_active(), "active");
    wait_content(&mounts[1].join("after.md"), "after the crash\n");

    // uninstall stops and removes the service; the next start is direct.
    let out = env.ok(&["uninstall"]);
    assert!(out.starts_with("Removed"), "{out}");
    assert!(!unit.exists());
    assert_ne!(systemd.is_active(), "active");
    assert!(env.daemon_pid().is_none());
    let out = env.ok(&["start"]);
    assert!(out.starts_with("jjfsd started (pid"), "{out}");
    assert_eq!(env.json(&["status", "--json"])["daemon"]["mode"], "direct");
    env.ok(&["stop"]);
}

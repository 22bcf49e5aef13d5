//! `jjfs doctor`: what jjfs needs from this machine and this user, one check each, with the
//! fix for every miss. These are the checks that need no daemon (`cli/doctor.rs` adds the
//! daemon's and each mount's health): `/dev/fuse`, `fusermount3`, kernel passthrough, git,
//! the inotify limits, the state directory and the service unit.
//!
//! Nothing here changes anything; every check only looks. The JSON shape of a `Report` is
//! part of the contract: `{"ok", "checks": [{"name", "ok", "required", "detail", "fix"}]}`.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::config::Config;
use crate::paths::Paths;
use crate::service::{self, Manager};

/// The git that jj-lib's push and fetch need.
pub const MIN_GIT: (u32, u32) = (2, 41);
/// Kernel FUSE passthrough arrived in Linux 6.9.
pub const MIN_PASSTHROUGH_KERNEL: (u32, u32) = (6, 9);
const CAP_SYS_ADMIN: u32 = 21;

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    /// Whether jjfs cannot work without it (a failed optional check is a warning).
    pub required: bool,
    pub detail: String,
    /// What to do, when it failed.
    pub fix: Option<String>,
}

impl Check {
    pub fn pass(name: &str, required: bool, detail: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            ok: true,
            required,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn fail(
        name: &str,
        required: bool,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            name: name.to_owned(),
            ok: false,
            required,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// `ok   name: detail`, `FAIL name: detail; fix: ...` (required) or `warn ...`.
    pub fn line(&self) -> String {
        let mark = match (self.ok, self.required) {
            (true, _) => "ok  ",
            (false, true) => "FAIL",
            (false, false) => "warn",
        };
        match (&self.fix, self.ok) {
            (Some(fix), false) => format!("{mark} {}: {}; fix: {fix}", self.name, self.detail),
            _ => format!("{mark} {}: {}", self.name, self.detail),
        }
    }
}

/// Every check, and whether nothing required is missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub ok: bool,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn new(checks: Vec<Check>) -> Self {
        Self {
            ok: checks.iter().all(|c| c.ok || !c.required),
            checks,
        }
    }
}

/// The checks that need no daemon, in the order `jjfs doctor` prints them.
pub fn system_checks(paths: &Paths) -> Vec<Check> {
    let config = Config::load(&paths.config()).ok();
    let has_remote = config.as_ref().is_some_and(|c| {
        c.repos.values().any(|r| {
            r.remote.is_some()
                || r.extra
                    .get("remotes")
                    .is_some_and(|v| v.as_array().is_some_and(|a| !a.is_empty()) || v.is_object())
        })
    });
    let workspaces: Vec<PathBuf> = config
        .iter()
        .flat_map(|c| c.mounts.iter().map(|m| m.workspace.clone()))
        .collect();
    vec![
        fuse_device(),
        fusermount(),
        passthrough(),
        git(has_remote),
        inotify(&workspaces),
        state_dir(paths),
        service_unit(paths),
    ]
}

/// This process's user, by name when it has one.
fn user_name() -> String {
    let uid = nix::unistd::geteuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => user.name,
        _ => format!("uid {uid}"),
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `/dev/fuse` opens for reading and writing as this user (jjfs's FUSE library opens it
/// itself before it would try `fusermount3`).
pub fn fuse_device() -> Check {
    const NAME: &str = "fuse";
    let dev = Path::new("/dev/fuse");
    match std::fs::OpenOptions::new().read(true).write(true).open(dev) {
        Ok(_) => Check::pass(
            NAME,
            true,
            format!("/dev/fuse is usable by {}", user_name()),
        ),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Check::fail(
            NAME,
            true,
            "/dev/fuse is missing",
            "load the module with `sudo modprobe fuse` (in a container, start it with `--device /dev/fuse`)",
        ),
        Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => Check::fail(
            NAME,
            true,
            format!(
                "/dev/fuse cannot be opened by {} ({}{})",
                user_name(),
                err.kind(),
                describe_node(dev)
                    .map(|d| format!("; it is {d}"))
                    .unwrap_or_default()
            ),
            "make it usable by every user with `sudo chmod 0666 /dev/fuse` (the mode udev gives it on most systems; \
             make it last with the udev rule `KERNEL==\"fuse\", MODE=\"0666\"`), or run jjfsd as root",
        ),
        Err(err) => Check::fail(
            NAME,
            true,
            format!("/dev/fuse cannot be opened: {err}"),
            "in a container, allow the device (`--device /dev/fuse`, and `--cap-add SYS_ADMIN` to mount as root)",
        ),
    }
}

/// Why this user cannot use FUSE, as one line naming the cause and the fix; None when
/// `/dev/fuse` is usable.
pub fn fuse_access_problem() -> Option<String> {
    let check = fuse_device();
    if check.ok {
        return None;
    }
    Some(match check.fix {
        Some(fix) => format!("{}: {fix}", check.detail),
        None => check.detail,
    })
}

/// `crw------- root:root`.
fn describe_node(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    let mode = meta.permissions().mode();
    let mut text = String::from("c");
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 0o7;
        text.push(if bits & 4 != 0 { 'r' } else { '-' });
        text.push(if bits & 2 != 0 { 'w' } else { '-' });
        text.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    let owner = nix::unistd::User::from_uid(meta.uid().into())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| meta.uid().to_string());
    let group = nix::unistd::Group::from_gid(meta.gid().into())
        .ok()
        .flatten()
        .map(|g| g.name)
        .unwrap_or_else(|| meta.gid().to_string());
    Some(format!("{text} {owner}:{group}"))
}

/// `fusermount3` on PATH, setuid root: how a user other than root mounts.
pub fn fusermount() -> Check {
    const NAME: &str = "fusermount3";
    let found = which("fusermount3");
    if is_root() {
        let detail = match &found {
            Some(path) => format!("{} (not needed as root)", path.display()),
            None => "not installed (not needed as root)".to_owned(),
        };
        return Check::pass(NAME, false, detail);
    }
    let Some(path) = found else {
        return Check::fail(
            NAME,
            true,
            "fusermount3 is not on PATH; users other than root mount through it",
            "install fuse3 (`sudo apt-get install fuse3`)",
        );
    };
    match std::fs::metadata(&path) {
        Ok(meta) if meta.uid() == 0 && meta.permissions().mode() & 0o4000 != 0 => {
            Check::pass(NAME, true, format!("{} is setuid root", path.display()))
        }
        Ok(_) => Check::fail(
            NAME,
            true,
            format!("{} is not setuid root, so it cannot mount", path.display()),
            format!(
                "`sudo chown root {0} && sudo chmod u+s {0}` (or reinstall fuse3)",
                path.display()
            ),
        ),
        Err(err) => Check::fail(
            NAME,
            true,
            format!("{}: {err}", path.display()),
            "reinstall fuse3",
        ),
    }
}

fn which(program: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Kernel passthrough (file data moved by the kernel): Linux 6.9+ and CAP_SYS_ADMIN.
/// Optional: without it file data goes through the daemon.
pub fn passthrough() -> Check {
    const NAME: &str = "passthrough";
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let kernel = parse_kernel(&release);
    let cap = std::fs::read_to_string("/proc/self/status")
        .ok()
        .is_some_and(|s| has_capability(&s, CAP_SYS_ADMIN));
    let new_enough = kernel.is_some_and(|k| k >= MIN_PASSTHROUGH_KERNEL);
    let off = std::env::var_os("JJFS_NO_PASSTHROUGH").is_some_and(|v| !v.is_empty() && v != "0");
    let optional = "optional: without it file data goes through the daemon, which is slower";
    match (new_enough, cap, off) {
        (true, true, false) => Check::pass(
            NAME,
            false,
            format!("kernel {release} and CAP_SYS_ADMIN: available"),
        ),
        (true, true, true) => Check::fail(
            NAME,
            false,
            format!("available (kernel {release}) but turned off by JJFS_NO_PASSTHROUGH"),
            format!("unset JJFS_NO_PASSTHROUGH ({optional})"),
        ),
        (false, _, _) => Check::fail(
            NAME,
            false,
            format!("kernel {release} has none (it needs Linux 6.9 or newer)"),
            format!("upgrade the kernel ({optional})"),
        ),
        (true, false, _) => Check::fail(
            NAME,
            false,
            format!(
                "kernel {release} has it, but {} lacks CAP_SYS_ADMIN",
                user_name()
            ),
            format!("run jjfsd as root ({optional})"),
        ),
    }
}

/// `6.18.44-fc-v1045` → (6, 18).
pub fn parse_kernel(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Whether the effective capability set (`CapEff:` of /proc/PID/status) holds `cap`.
pub fn has_capability(status: &str, cap: u32) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|set| set & (1 << cap) != 0)
}

/// git 2.41+ on PATH: jj-lib runs it for push and fetch, so it is required once a repo has a
/// remote.
pub fn git(has_remote: bool) -> Check {
    const NAME: &str = "git";
    let fix = "install git 2.41 or newer and put it first on PATH (Debian 12's own git is 2.39)";
    let use_ = if has_remote {
        "your remotes need it"
    } else {
        "remotes will need it"
    };
    let out = match Command::new("git").arg("--version").output() {
        Ok(out) if out.status.success() => out,
        Ok(out) => {
            return Check::fail(
                NAME,
                has_remote,
                format!("`git --version` failed ({})", out.status),
                fix,
            );
        }
        Err(err) => {
            return Check::fail(
                NAME,
                has_remote,
                format!("no git on PATH ({err}); {use_}"),
                fix,
            );
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    match parse_git_version(&text) {
        Some(v) if v >= MIN_GIT => Check::pass(NAME, has_remote, format!("git {}.{}", v.0, v.1)),
        Some(v) => Check::fail(
            NAME,
            has_remote,
            format!("git {}.{} is older than 2.41; {use_}", v.0, v.1),
            fix,
        ),
        None => Check::fail(
            NAME,
            has_remote,
            format!("cannot read the version in {:?}", text.trim()),
            fix,
        ),
    }
}

/// `git version 2.47.3`, `git version 2.39.5 (Apple Git-154)` → (2, 47), (2, 39).
pub fn parse_git_version(text: &str) -> Option<(u32, u32)> {
    let version = text.trim().strip_prefix("git version ")?;
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Each mount's backing workspace is watched recursively: one inotify watch per folder and
/// one inotify instance per workspace, against this user's limits.
pub fn inotify(workspaces: &[PathBuf]) -> Check {
    const NAME: &str = "inotify";
    let read = |name: &str| -> Option<u64> {
        std::fs::read_to_string(format!("/proc/sys/fs/inotify/{name}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let (Some(watches), Some(instances)) = (read("max_user_watches"), read("max_user_instances"))
    else {
        return Check::fail(
            NAME,
            true,
            "cannot read /proc/sys/fs/inotify (no inotify?)",
            "use a Linux kernel with inotify",
        );
    };
    let folders: u64 = workspaces.iter().map(|w| count_folders(w)).sum();
    let detail = format!(
        "{folders} folders in {} workspaces; max_user_watches {watches}, max_user_instances {instances}",
        workspaces.len()
    );
    if folders >= watches {
        return Check::fail(
            NAME,
            true,
            format!("{detail}: too few watches, changes made outside the mounts go unseen"),
            format!(
                "raise the limit: `echo fs.inotify.max_user_watches={} | sudo tee /etc/sysctl.d/90-jjfs.conf && sudo sysctl --system`",
                (folders * 2).max(524_288)
            ),
        );
    }
    if workspaces.len() as u64 >= instances {
        return Check::fail(
            NAME,
            true,
            format!("{detail}: too few instances for one watcher per mount"),
            format!(
                "raise the limit: `echo fs.inotify.max_user_instances={} | sudo tee /etc/sysctl.d/90-jjfs.conf && sudo sysctl --system`",
                (workspaces.len() as u64 * 2).max(1024)
            ),
        );
    }
    Check::pass(NAME, true, detail)
}

/// Folders at and below `root` (not following symlinks); 0 when it is missing.
pub fn count_folders(root: &Path) -> u64 {
    let mut count = 0;
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        count += 1;
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(entry.path());
            }
        }
    }
    count
}

/// The state directory is this user's alone (mode 0700): it holds the repos and the socket.
pub fn state_dir(paths: &Paths) -> Check {
    const NAME: &str = "state_dir";
    let home = paths.home();
    let meta = match std::fs::symlink_metadata(home) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Check::pass(
                NAME,
                true,
                format!(
                    "{} does not exist yet (the daemon creates it, mode 0700)",
                    home.display()
                ),
            );
        }
        Err(err) => {
            return Check::fail(
                NAME,
                true,
                format!("{}: {err}", home.display()),
                "set JJFS_HOME to a directory of yours",
            );
        }
    };
    let me = nix::unistd::geteuid().as_raw();
    let mode = meta.permissions().mode() & 0o7777;
    if !meta.is_dir() {
        return Check::fail(
            NAME,
            true,
            format!("{} is not a directory", home.display()),
            "move it away, or set JJFS_HOME elsewhere",
        );
    }
    if meta.uid() != me {
        return Check::fail(
            NAME,
            true,
            format!(
                "{} is owned by uid {}, not by {}",
                home.display(),
                meta.uid(),
                user_name()
            ),
            format!("`sudo chown -R {} {}`", user_name(), home.display()),
        );
    }
    if mode & 0o077 != 0 {
        return Check::fail(
            NAME,
            true,
            format!(
                "{} has mode {mode:04o}: other users can reach your repos",
                home.display()
            ),
            format!("`chmod 700 {}`", home.display()),
        );
    }
    Check::pass(NAME, true, format!("{} (mode {mode:04o})", home.display()))
}

/// The service unit: installed for this state directory, enabled and running. Optional:
/// without it the CLI starts the daemon when needed.
pub fn service_unit(paths: &Paths) -> Check {
    const NAME: &str = "service";
    let manager = Manager::native();
    let optional = "optional: without it jjfs starts the daemon on demand, but not at login";
    if let Err(err) = manager.check_available() {
        return Check::fail(
            NAME,
            false,
            err.to_string(),
            format!("log in to a session with a {manager} user manager ({optional})"),
        );
    }
    if service::installed(paths).is_none() {
        return Check::fail(
            NAME,
            false,
            format!("no {manager} service for {}", paths.home().display()),
            format!("`jjfs install` ({optional})"),
        );
    }
    if manager != Manager::Systemd {
        return Check::pass(NAME, false, format!("{manager} service installed"));
    }
    match service::systemd::unit_state() {
        Ok(state) if state.enabled && state.active => Check::pass(
            NAME,
            false,
            format!("{} installed, enabled, running", service::systemd::UNIT),
        ),
        Ok(state) => Check::fail(
            NAME,
            false,
            format!(
                "{} installed, {}, {}",
                service::systemd::UNIT,
                if state.enabled {
                    "enabled"
                } else {
                    "not enabled"
                },
                if state.active {
                    "running"
                } else {
                    "not running"
                }
            ),
            format!("`systemctl --user enable --now {}`", service::systemd::UNIT),
        ),
        Err(err) => Check::fail(NAME, false, err.to_string(), "`jjfs install` again"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read() {
        assert_eq!(parse_git_version("git version 2.47.3\n"), Some((2, 47)));
        assert_eq!(
            parse_git_version("git version 2.39.5 (Apple Git-154)"),
            Some((2, 39))
        );
        assert_eq!(
            parse_git_version("git version 2.45.1.windows.1"),
            Some((2, 45))
        );
        assert_eq!(parse_git_version("hg 6"), None);
        assert_eq!(parse_kernel("6.18.44-fc-v1045"), Some((6, 18)));
        assert_eq!(parse_kernel("6.9"), Some((6, 9)));
        assert_eq!(parse_kernel("5.15.0-91-generic"), Some((5, 15)));
        assert!((6, 10) >= MIN_PASSTHROUGH_KERNEL && (5, 19) < MIN_PASSTHROUGH_KERNEL);
    }

    #[test]
    fn capabilities_are_read_from_status() {
        let root = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert!(has_capability(root, CAP_SYS_ADMIN));
        let user = "CapEff:\t0000000000000000\n";
        assert!(!has_capability(user, CAP_SYS_ADMIN));
        assert!(!has_capability("", CAP_SYS_ADMIN));
    }

    #[test]
    fn folders_are_counted_without_following_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("ws");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir_all(root.join(".jj/repo")).unwrap();
        std::fs::write(root.join("a/f"), "x").unwrap();
        std::os::unix::fs::symlink(tmp.path(), root.join("loop")).unwrap();
        assert_eq!(count_folders(&root), 5);
        assert_eq!(count_folders(&tmp.path().join("missing")), 0);
    }

    #[test]
    fn a_state_dir_open_to_others_fails_with_the_fix() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = Paths::at(tmp.path().join("home"));
        assert!(state_dir(&paths).ok, "missing is fine: it is created 0700");
        paths.ensure_home().unwrap();
        assert!(state_dir(&paths).ok);
        std::fs::set_permissions(paths.home(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let check = state_dir(&paths);
        assert!(!check.ok && check.required);
        assert_eq!(
            check.fix.as_deref(),
            Some(format!("`chmod 700 {}`", paths.home().display()).as_str())
        );
        assert!(
            check.line().starts_with("FAIL state_dir: "),
            "{}",
            check.line()
        );
    }

    #[test]
    fn a_report_is_ok_unless_a_required_check_fails() {
        let warn = Check::fail("service", false, "none", "`jjfs install`");
        let pass = Check::pass("git", true, "git 2.47");
        assert!(Report::new(vec![warn.clone(), pass.clone()]).ok);
        let fail = Check::fail("fuse", true, "closed", "chmod");
        let report = Report::new(vec![warn, pass, fail]);
        assert!(!report.ok);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["ok"], false);
        assert_eq!(
            json["checks"][0],
            serde_json::json!({"name": "service", "ok": false, "required": false,
                "detail": "none", "fix": "`jjfs install`"})
        );
        assert_eq!(json["checks"][1]["fix"], serde_json::Value::Null);
    }
}

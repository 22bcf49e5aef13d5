//! `jjfs doctor`: passes on this machine (root, FUSE, git 2.41+), names the fix for what is
//! missing, and never starts a daemon.

mod common;

use std::os::unix::fs::PermissionsExt as _;

use common::*;

fn checks<'a>(report: &'a serde_json::Value, name: &str) -> Vec<&'a serde_json::Value> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == name)
        .collect()
}

fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    let found = checks(report, name);
    assert_eq!(found.len(), 1, "one {name} check in {report:#}");
    found[0]
}

#[test]
fn doctor_passes_here_and_checks_each_mount() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(2);
    std::fs::create_dir_all(mounts[0].join("a/b")).unwrap();

    let out = env.run(&["doctor", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{report:#}");
    assert_eq!(report["ok"], true);
    for name in [
        "fuse",
        "fusermount3",
        "git",
        "inotify",
        "state_dir",
        "daemon",
    ] {
        let c = check(&report, name);
        assert_eq!(c["ok"], true, "{c}");
        assert_eq!(c["fix"], serde_json::Value::Null, "{c}");
    }
    // Optional: kernel passthrough (Linux 6.9+ as root, unless JJFS_NO_PASSTHROUGH) and the
    // service (there is no user manager in this container).
    assert_eq!(check(&report, "passthrough")["required"], false);
    assert_eq!(check(&report, "service")["required"], false);
    let inotify = check(&report, "inotify")["detail"].as_str().unwrap();
    assert!(inotify.contains(" folders in 2 workspaces"), "{inotify}");
    let mount_checks = checks(&report, "mount");
    assert_eq!(mount_checks.len(), 2);
    for (c, path) in mount_checks.iter().zip(&mounts) {
        assert_eq!(c["ok"], true);
        let detail = c["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(&format!("{} (repo default): healthy", path.display())),
            "{detail}"
        );
    }

    // One line per check, as people read it.
    let text = env.ok(&["doctor"]);
    assert_eq!(
        text.lines().count(),
        report["checks"].as_array().unwrap().len()
    );
    assert!(
        text.lines()
            .all(|l| l.starts_with("ok   ") || l.starts_with("warn ")),
        "{text}"
    );

    // A state directory others can read fails, naming the fix.
    std::fs::set_permissions(env.home(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = env.run(&["doctor"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains("state_dir")).unwrap();
    assert!(line.starts_with("FAIL state_dir: "), "{line}");
    assert!(
        line.ends_with(&format!("fix: `chmod 700 {}`", env.home().display())),
        "{line}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: 1 required check(s) failed"));
    std::fs::set_permissions(env.home(), std::fs::Permissions::from_mode(0o700)).unwrap();
}

#[test]
fn doctor_never_starts_the_daemon() {
    let env = TestEnv::new();
    let out = env.run(&["doctor", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{report:#}");
    let daemon = check(&report, "daemon");
    assert_eq!(daemon["ok"], true);
    assert!(
        daemon["detail"]
            .as_str()
            .unwrap()
            .starts_with("not running")
    );
    assert!(checks(&report, "mount").is_empty());
    assert_eq!(env.daemon_pid(), None);
    assert!(!env.home().exists());
}

#[test]
fn doctor_names_the_fix_when_dev_fuse_is_closed_to_the_user() {
    let scratch = tempfile::Builder::new()
        .prefix("jjfs-nobody-")
        .tempdir()
        .unwrap();
    std::os::unix::fs::chown(scratch.path(), Some(65534), Some(65534)).unwrap();
    let home = scratch.path().join("home");
    let out = common::jjfs_as_nobody_without_fuse(&home, scratch.path(), &["doctor", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(!out.status.success(), "{report:#}");
    assert_eq!(report["ok"], false);
    let fuse = check(&report, "fuse");
    assert_eq!(fuse["ok"], false);
    assert_eq!(fuse["required"], true);
    let detail = fuse["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("/dev/fuse cannot be opened by nobody (permission denied"),
        "{detail}"
    );
    let fix = fuse["fix"].as_str().unwrap();
    assert!(fix.contains("`sudo chmod 0666 /dev/fuse`"), "{fix}");
    // Not root: no passthrough, and fusermount3 is needed (it is setuid here).
    assert_eq!(check(&report, "passthrough")["ok"], false);
    assert_eq!(check(&report, "passthrough")["required"], false);
    assert_eq!(check(&report, "fusermount3")["required"], true);
    assert!(!home.exists(), "doctor created nothing");
}

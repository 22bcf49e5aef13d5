//! Mounts as users meet them: open, close, list, refusals, passthrough both ways, the hidden
//! `.jj`, remounting after a crash, and an unhealthy mount among healthy ones.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{TestEnv, read, wait_content, wait_for};

fn is_mounted(path: &Path) -> bool {
    common::mounts_under(path).iter().any(|m| m == path)
}

#[test]
fn open_list_close() {
    let env = TestEnv::new();
    env.ok(&["init"]);
    let path = env.open("default", "notes");
    assert!(is_mounted(&path));

    let mounts = env.list();
    assert_eq!(mounts.len(), 1);
    let m = &mounts[0];
    assert_eq!(m["repo"], "default");
    assert_eq!(m["path"], path.to_str().unwrap());
    assert_eq!(m["health"], "healthy");
    assert!(m["reason"].is_null());
    let id = m["id"].as_str().unwrap().to_owned();
    let workspace = env.workspace_of(&path);
    assert_eq!(
        workspace,
        env.home().join("repos/default/workspaces").join(&id)
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.home().join("config.json")).unwrap()).unwrap();
    assert_eq!(config["mounts"][0]["id"], id.as_str());

    std::fs::write(path.join("unsaved.md"), "closing must keep this").unwrap();
    env.ok(&["close", path.to_str().unwrap()]);
    assert!(!is_mounted(&path));
    assert!(path.is_dir(), "close leaves the directory");
    assert_eq!(
        std::fs::read_dir(&path).unwrap().count(),
        0,
        "and leaves it empty"
    );
    assert!(!workspace.exists(), "the backing workspace is removed");
    assert!(env.list().is_empty());
    let config = std::fs::read_to_string(env.home().join("config.json")).unwrap();
    assert!(!config.contains(&id));

    // jj-lib no longer knows the workspace, and what was written before close was kept.
    let settings = jjfs::repo::user_settings(&jjfs::repo::Identity::from_env()).unwrap();
    let repo = jjfs::repo::repository::Repository::open(
        "default",
        &env.home().join("repos/default"),
        &settings,
        "main",
    )
    .unwrap();
    assert!(!repo.has_workspace(&id.parse().unwrap()));
    let again = env.open("default", "again");
    assert_eq!(
        read(&again.join("unsaved.md")).as_deref(),
        Some("closing must keep this")
    );
}

#[test]
fn refusals_change_nothing() {
    let env = TestEnv::new();
    env.ok(&["init"]);
    let busy = env.work().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("precious.txt"), "keep me").unwrap();
    let file = env.work().join("a-file");
    std::fs::write(&file, "i am a file").unwrap();
    let mounted = env.open("default", "mounted");
    let before = common::snapshot_tree(&env.work());

    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["open".into(), "default".into(), busy.display().to_string()],
            "not empty",
        ),
        (
            vec![
                "open".into(),
                "default".into(),
                env.work().join("no/such/parent").display().to_string(),
            ],
            "does not exist",
        ),
        (
            vec![
                "open".into(),
                "nosuchrepo".into(),
                env.work().join("x").display().to_string(),
            ],
            "unknown repo",
        ),
        (
            vec![
                "open".into(),
                "default".into(),
                mounted.display().to_string(),
            ],
            "already a mount",
        ),
        (
            vec!["open".into(), "default".into(), file.display().to_string()],
            "not a directory",
        ),
        (
            vec!["close".into(), busy.display().to_string()],
            "not a jjfs mount",
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let stderr = env.fails(&args);
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: expected {expected:?} in {stderr}"
        );
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?}: one line: {stderr}"
        );
    }
    assert_eq!(
        common::snapshot_tree(&env.work()),
        before,
        "a refusal changed files"
    );
    assert_eq!(env.list().len(), 1);
    assert_eq!(read(&busy.join("precious.txt")).as_deref(), Some("keep me"));
}

#[test]
fn files_pass_through_both_ways() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(1);
    let mount = &mounts[0];
    let backing = env.workspace_of(mount);

    std::fs::write(mount.join("through-mount.txt"), "written in the mount").unwrap();
    assert_eq!(
        read(&backing.join("through-mount.txt")).as_deref(),
        Some("written in the mount")
    );

    std::fs::create_dir(backing.join("dir")).unwrap();
    std::fs::write(
        backing.join("dir/in-backing.txt"),
        "written in the backing dir",
    )
    .unwrap();
    wait_content(
        &mount.join("dir/in-backing.txt"),
        "written in the backing dir",
    );

    // Metadata goes through too.
    std::fs::set_permissions(
        mount.join("through-mount.txt"),
        std::fs::Permissions::from_mode(0o751),
    )
    .unwrap();
    let mode = std::fs::metadata(backing.join("through-mount.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o751);
    std::os::unix::fs::symlink("through-mount.txt", mount.join("link")).unwrap();
    assert_eq!(
        std::fs::read_link(backing.join("link")).unwrap(),
        Path::new("through-mount.txt")
    );
    std::fs::hard_link(mount.join("through-mount.txt"), mount.join("hard")).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::nlink(&std::fs::metadata(mount.join("hard")).unwrap()),
        2
    );
    std::fs::rename(mount.join("hard"), mount.join("dir/moved")).unwrap();
    assert!(backing.join("dir/moved").exists() && !backing.join("hard").exists());
}

#[test]
fn the_jj_directory_is_hidden() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(1);
    let mount = &mounts[0];
    assert!(env.workspace_of(mount).join(".jj").is_dir());
    let names: Vec<String> = std::fs::read_dir(mount)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.contains(&".jj".to_owned()), "{names:?}");
    assert_eq!(
        std::fs::symlink_metadata(mount.join(".jj"))
            .unwrap_err()
            .kind(),
        std::io::ErrorKind::NotFound
    );
    assert!(std::fs::create_dir(mount.join(".jj")).is_err());
    assert!(std::fs::write(mount.join(".jj"), "x").is_err());
    std::fs::write(mount.join("f"), "x").unwrap();
    assert!(std::fs::rename(mount.join("f"), mount.join(".jj")).is_err());
    assert!(std::fs::read_dir(mount.join(".jj/working_copy")).is_err());
    // Below the root, .jj is an ordinary name.
    std::fs::create_dir_all(mount.join("sub/.jj")).unwrap();
}

#[test]
fn mounts_come_back_after_the_daemon_is_killed() {
    let env = TestEnv::new();
    let fusectl_before = fusectl_mounted();
    let mounts = env.with_mounts(2);
    std::fs::write(mounts[0].join("before.txt"), "before the crash").unwrap();
    env.ok(&["sync"]);
    let pid = env.daemon_pid().unwrap();
    env.kill_daemon();
    // The watchdog aborts the dead mounts through fusectl, and leaves the host's fusectl
    // mount as it found it.
    common::wait_for("the watchdog to finish", || !watchdog_running(pid));
    // (Another test's watchdog may hold it mounted for an instant: wait, not assert.)
    common::wait_for("fusectl as it was before", || {
        fusectl_mounted() == fusectl_before
    });
    // The kernel keeps a dead mount ("transport endpoint is not connected", or "connection
    // aborted" for what was open).
    let err = std::fs::metadata(&mounts[0]).unwrap_err();
    assert!(
        matches!(
            err.raw_os_error(),
            Some(libc::ENOTCONN | libc::ECONNABORTED)
        ),
        "{err}"
    );

    let listed = env.list(); // autostarts a new daemon
    assert!(
        listed.iter().all(|m| m["health"] == "healthy"),
        "{listed:?}"
    );
    for m in &mounts {
        assert!(is_mounted(m));
        assert_eq!(
            read(&m.join("before.txt")).as_deref(),
            Some("before the crash")
        );
    }
    std::fs::write(mounts[1].join("after.txt"), "after the restart").unwrap();
    wait_content(&mounts[0].join("after.txt"), "after the restart");
}

#[test]
fn a_broken_workspace_is_unhealthy_and_the_others_keep_working() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(3);
    let broken = env.workspace_of(&mounts[2]);
    env.ok(&["stop"]);
    assert!(mounts.iter().all(|m| !is_mounted(m)));
    std::fs::remove_dir_all(broken.join(".jj")).unwrap();

    let listed = env.list();
    let health = |p: &Path| {
        listed
            .iter()
            .find(|m| m["path"] == p.to_str().unwrap())
            .map(|m| {
                (
                    m["health"].as_str().unwrap().to_owned(),
                    m["reason"].clone(),
                )
            })
            .unwrap()
    };
    let (state, reason) = health(&mounts[2]);
    assert_eq!(state, "unhealthy");
    let reason = reason.as_str().unwrap();
    assert!(
        reason.contains("jjfs close"),
        "the reason says how to fix it: {reason}"
    );
    assert_eq!(health(&mounts[0]).0, "healthy");
    assert!(
        env.json(&["status", "--json"])["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["health"] == "unhealthy")
    );

    std::fs::write(mounts[0].join("still.txt"), "syncing").unwrap();
    wait_content(&mounts[1].join("still.txt"), "syncing");

    // close + open recreates it, with the repo's history.
    env.ok(&["close", mounts[2].to_str().unwrap()]);
    env.ok(&["open", "default", mounts[2].to_str().unwrap()]);
    wait_content(&mounts[2].join("still.txt"), "syncing");
    wait_for("all mounts healthy", || {
        env.list().iter().all(|m| m["health"] == "healthy")
    });
}

#[test]
fn stop_unmounts_everything() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(2);
    env.ok(&["stop"]);
    assert!(env.mounts().is_empty(), "left mounted: {:?}", env.mounts());
    assert!(mounts.iter().all(|m| m.is_dir()));
}

/// Whether the FUSE control file system is mounted (on the host, outside any test's doing).
fn fusectl_mounted() -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(2) == Some("fusectl"))
}

/// Whether the watchdog of daemon `pid` (`jjfsd --watchdog PID`) still runs.
fn watchdog_running(pid: u32) -> bool {
    let wanted = format!("--watchdog\0{pid}\0");
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(&wanted))
    })
}

/// A process with its current directory somewhere; killed on drop.
struct Holder(std::process::Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_refused_close_leaves_the_mount_as_it_was_and_names_who_holds_it() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(2);
    let (a, b) = (&mounts[0], &mounts[1]);
    let holder = Holder(
        std::process::Command::new("sleep")
            .arg("60")
            .current_dir(a)
            .spawn()
            .unwrap(),
    );
    let err = env.fails(&["close", a.to_str().unwrap()]);
    assert!(
        err.contains(&format!("held by pid {} (sleep)", holder.0.id())),
        "{err}"
    );
    assert!(is_mounted(a), "the refused close left the mount in place");
    let listed = env.list();
    assert_eq!(listed.len(), 2);
    assert!(
        listed.iter().all(|m| m["health"] == "healthy"),
        "{listed:?}"
    );
    // Still watched and synced, both ways.
    std::fs::write(a.join("after-refusal.txt"), "from a").unwrap();
    wait_content(&b.join("after-refusal.txt"), "from a");
    std::fs::write(b.join("to-a.txt"), "from b").unwrap();
    wait_content(&a.join("to-a.txt"), "from b");
    drop(holder);
    env.ok(&["close", a.to_str().unwrap()]);
    assert!(!is_mounted(a));
    assert_eq!(env.list().len(), 1);
}

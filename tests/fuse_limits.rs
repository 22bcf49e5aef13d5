//! The daemon's resources stay bounded however many files the kernel looks up: a folder of
//! 20,000 files listed with `ls -l` (which stats every file) costs a bounded number of the
//! daemon's file descriptors, and writes keep syncing afterwards.

mod common;

use std::path::Path;
use std::process::Command;

use common::{JJFS, TestEnv, wait_content};

/// The daemon's fd limit in this test (soft and hard).
const FD_LIMIT: usize = 4096;
const FILES: usize = 20_000;

/// Open file descriptors of process `pid`.
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// `ls -l DIR` (every file stat'ed); returns the number of entries listed.
fn ls_l(dir: &Path) -> usize {
    let out = Command::new("ls").arg("-l").arg(dir).output().unwrap();
    assert!(
        out.status.success(),
        "ls -l {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    // The first line is "total N".
    String::from_utf8_lossy(&out.stdout).lines().count() - 1
}

#[test]
fn listing_a_huge_folder_keeps_the_daemon_within_its_fd_limit() {
    let env = TestEnv::new();
    let start = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -Hn {FD_LIMIT} -Sn {FD_LIMIT} && exec \"$0\" start"
        ))
        .arg(JJFS)
        .env("JJFS_HOME", env.home())
        .env_remove("JJFS_NO_AUTOSTART")
        .env("JJFS_LOG", "info")
        .current_dir(env.work())
        .output()
        .unwrap();
    assert!(
        start.status.success(),
        "jjfs start failed: {}",
        String::from_utf8_lossy(&start.stderr)
    );
    let mounts = env.with_mounts(2);
    let (a, b) = (&mounts[0], &mounts[1]);
    let pid = env.daemon_pid().expect("the daemon runs");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max open files") && l.contains(&FD_LIMIT.to_string())),
        "the daemon runs with the test's fd limit:\n{limits}"
    );
    // Not synced: the point is the mount's inodes, not a 20,000-file commit.
    env.ok(&["config", "ignore", "big/"]);

    let big = a.join("big");
    std::fs::create_dir(&big).unwrap();
    for i in 0..FILES {
        let path = big.join(format!("file-{i:05}"));
        if let Err(err) = std::fs::write(&path, "x") {
            panic!(
                "creating file {i} of {FILES} through the mount failed: {err} (daemon fds: {})",
                fd_count(pid)
            );
        }
    }
    for round in 0..2 {
        assert_eq!(ls_l(&big), FILES, "ls -l round {round} lists every file");
    }
    let fds = fd_count(pid);
    eprintln!("daemon fds after listing {FILES} files twice: {fds}");
    assert!(
        fds < FD_LIMIT / 2,
        "the daemon holds {fds} fds after listing {FILES} files (limit {FD_LIMIT})"
    );

    std::fs::write(a.join("after.txt"), "still syncing").unwrap();
    wait_content(&b.join("after.txt"), "still syncing");
    env.ok(&["status"]);
    assert!(fd_count(pid) < FD_LIMIT / 2);
}

//! No silent divergence (issue 15), with the tools people use every day: a mount detached
//! behind jjfs's back is noticed and never synced as empty; content changes that keep size
//! and mtime still arrive; a file/folder conflict keeps both sides; listing a huge folder
//! does not exhaust the daemon's descriptors; what cannot sync is said, never dropped in
//! silence; hard links stay coherent; and `jjfs log` never prints a raw newline in a name.

mod common;

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{TestEnv, read, snapshot_tree, wait_content, wait_gone};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// The default repo's entry in `jjfs status --json`.
fn repo_status(env: &TestEnv) -> serde_json::Value {
    let status = env.json(&["status", "--json"]);
    status["repos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "default")
        .unwrap_or_else(|| panic!("no default repo in status: {status}"))
        .clone()
}

/// The mount at `path` as `jjfs status --json` shows it.
fn mount_status(env: &TestEnv, path: &Path) -> serde_json::Value {
    let status = env.json(&["status", "--json"]);
    status["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["path"].as_str() == path.to_str())
        .unwrap_or_else(|| panic!("{} is not in status: {status}", path.display()))
        .clone()
}

fn conflicts(env: &TestEnv) -> Vec<String> {
    repo_status(env)["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

/// What a file on trunk holds, read with the jj CLI in backing workspace `ws`.
fn on_trunk(ws: &Path, file: &str) -> Option<String> {
    let out = Command::new(common::jj_binary())
        .args(["--ignore-working-copy", "file", "show", "-r", "main", file])
        .current_dir(ws)
        .env("JJ_CONFIG", "/dev/null")
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[track_caller]
fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sets `path`'s access and modification time to `when` (seconds since the epoch), as
/// `touch -d @WHEN` does.
fn set_mtime(path: &Path, when: i64) {
    run_ok(
        Command::new("touch")
            .arg("-d")
            .arg(format!("@{when}"))
            .arg(path),
    );
}

/// A time well in the past, whole seconds.
const OLD_TIME: i64 = 1_700_000_000;

// ---------------------------------------------------------------------------------------
// A detached mount is noticed, never synced as empty
// ---------------------------------------------------------------------------------------

fn a_detached_mount_is_noticed_and_loses_nothing(detach: &[&str]) {
    let env = TestEnv::new();
    let mounts = env.with_mounts(3);
    let (a, b, c) = (&mounts[0], &mounts[1], &mounts[2]);
    std::fs::write(a.join("before-a.txt"), "written in A before\n").unwrap();
    std::fs::create_dir(b.join("dir")).unwrap();
    std::fs::write(b.join("dir/before-b.txt"), "written in B before\n").unwrap();
    env.ok(&["sync"]);
    wait_content(&c.join("dir/before-b.txt"), "written in B before\n");

    // Behind jjfs's back.
    run_ok(Command::new(detach[0]).args(&detach[1..]).arg(c));
    assert!(
        !env.mounts().contains(c),
        "{} is still mounted",
        c.display()
    );
    std::fs::write(a.join("after-a.txt"), "written in A after\n").unwrap();
    std::fs::write(b.join("dir/after-b.txt"), "written in B after\n").unwrap();
    for i in 0..3 {
        let out = env.run_timed(&["sync"], Duration::from_secs(60));
        assert!(
            out.is_some(),
            "sync {i} did not return with a detached mount"
        );
    }
    let files = [
        ("before-a.txt", "written in A before\n"),
        ("dir/before-b.txt", "written in B before\n"),
        ("after-a.txt", "written in A after\n"),
        ("dir/after-b.txt", "written in B after\n"),
    ];
    let ws = env.workspace_of(a);
    for (file, content) in files {
        for m in [a, b] {
            wait_content(&m.join(file), content);
        }
        assert_eq!(
            on_trunk(&ws, file).as_deref(),
            Some(content),
            "{file} is not on trunk"
        );
    }
    let left: Vec<_> = std::fs::read_dir(c)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.is_empty(),
        "jjfs wrote into the directory under the detached mount: {left:?}"
    );
    // It is shown unhealthy, saying how to recover.
    let mut last = serde_json::Value::Null;
    let noticed = common::wait_until(common::DEADLINE, || {
        last = env
            .list()
            .into_iter()
            .find(|m| m["path"].as_str() == c.to_str())
            .unwrap_or_default();
        let reason = last["reason"].as_str().unwrap_or_default();
        last["health"] == "unhealthy"
            && ["jjfs close", "jjfs open", "jjfs start"]
                .iter()
                .any(|how| reason.contains(how))
    });
    assert!(
        noticed,
        "the detached mount is not shown unhealthy with how to recover: {last}"
    );

    // Still nothing vanishes after more syncs.
    env.run_timed(&["sync"], Duration::from_secs(60));
    for (file, content) in files {
        assert_eq!(read(&a.join(file)).as_deref(), Some(content), "{file}");
        assert_eq!(read(&b.join(file)).as_deref(), Some(content), "{file}");
    }
}

#[test]
fn a_lazily_unmounted_mount_is_noticed_and_loses_nothing() {
    a_detached_mount_is_noticed_and_loses_nothing(&["umount", "-l"]);
}

#[test]
fn a_mount_detached_with_fusermount_is_noticed_and_loses_nothing() {
    a_detached_mount_is_noticed_and_loses_nothing(&["fusermount3", "-uz"]);
}

// ---------------------------------------------------------------------------------------
// Content changes are never missed because size and mtime match
// ---------------------------------------------------------------------------------------

/// Two mounts whose `files` (name, content) are synced with the mtime `OLD_TIME`.
fn synced_with_old_mtimes(env: &TestEnv, files: &[(&str, &str)]) -> Vec<PathBuf> {
    let mounts = env.with_mounts(2);
    for (name, content) in files {
        std::fs::write(mounts[0].join(name), content).unwrap();
        set_mtime(&mounts[0].join(name), OLD_TIME);
    }
    env.ok(&["sync"]);
    env.ok(&["sync"]);
    for (name, content) in files {
        wait_content(&mounts[1].join(name), content);
    }
    mounts
}

/// Right after `jjfs sync`, B holds `expected`.
#[track_caller]
fn b_holds(env: &TestEnv, b: &Path, what: &str, expected: &[(&str, &str)]) {
    env.ok(&["sync"]);
    for (name, content) in expected {
        assert_eq!(
            read(&b.join(name)).as_deref(),
            Some(*content),
            "{what}: B still has the old {name} (same size and mtime)"
        );
    }
}

#[test]
fn cp_p_over_a_same_size_file_arrives() {
    let env = TestEnv::new();
    let files = [
        ("target.txt", "target version\n"),
        ("source.txt", "source version\n"),
    ];
    let mounts = synced_with_old_mtimes(&env, &files);
    run_ok(
        Command::new("cp")
            .arg("-p")
            .arg(mounts[0].join("source.txt"))
            .arg(mounts[0].join("target.txt")),
    );
    b_holds(
        &env,
        &mounts[1],
        "cp -p",
        &[("target.txt", "source version\n")],
    );
}

#[test]
fn a_rename_swap_of_two_same_size_files_arrives() {
    let env = TestEnv::new();
    let files = [("a.txt", "content of a\n"), ("b.txt", "content of b\n")];
    let mounts = synced_with_old_mtimes(&env, &files);
    let a = &mounts[0];
    std::fs::rename(a.join("a.txt"), a.join("t.txt")).unwrap();
    std::fs::rename(a.join("b.txt"), a.join("a.txt")).unwrap();
    std::fs::rename(a.join("t.txt"), a.join("b.txt")).unwrap();
    b_holds(
        &env,
        &mounts[1],
        "rename swap",
        &[("a.txt", "content of b\n"), ("b.txt", "content of a\n")],
    );
}

/// Rewrites `path` with same-size content and puts its old mtime back.
fn rewrite_keeping_the_mtime(path: &Path, content: &str) {
    let old = std::fs::metadata(path).unwrap().len();
    assert_eq!(old, content.len() as u64);
    std::fs::write(path, content).unwrap();
    set_mtime(path, OLD_TIME);
}

#[test]
fn a_same_size_rewrite_with_the_mtime_restored_arrives() {
    let env = TestEnv::new();
    let mounts = synced_with_old_mtimes(&env, &[("note.txt", "version one\n")]);
    rewrite_keeping_the_mtime(&mounts[0].join("note.txt"), "version two\n");
    b_holds(
        &env,
        &mounts[1],
        "rewrite, mtime restored",
        &[("note.txt", "version two\n")],
    );
}

#[test]
fn a_same_size_rewrite_in_the_backing_directory_is_caught_by_sync() {
    let env = TestEnv::new();
    let mounts = synced_with_old_mtimes(&env, &[("note.txt", "version one\n")]);
    let backing = env.workspace_of(&mounts[0]);
    rewrite_keeping_the_mtime(&backing.join("note.txt"), "version two\n");
    b_holds(
        &env,
        &mounts[1],
        "rewrite in the backing directory, mtime restored",
        &[("note.txt", "version two\n")],
    );
}

#[test]
fn tar_x_over_a_same_size_file_arrives() {
    let env = TestEnv::new();
    let mounts = synced_with_old_mtimes(&env, &[("doc.txt", "old contents\n")]);
    // An archive of a same-size doc.txt with the same mtime.
    let staging = env.work().join("staging");
    std::fs::create_dir(&staging).unwrap();
    std::fs::write(staging.join("doc.txt"), "new contents\n").unwrap();
    set_mtime(&staging.join("doc.txt"), OLD_TIME);
    let archive = env.work().join("doc.tar");
    run_ok(
        Command::new("tar")
            .arg("cf")
            .arg(&archive)
            .arg("-C")
            .arg(&staging)
            .arg("doc.txt"),
    );
    run_ok(
        Command::new("tar")
            .arg("xf")
            .arg(&archive)
            .arg("-C")
            .arg(&mounts[0]),
    );
    assert_eq!(
        read(&mounts[0].join("doc.txt")).as_deref(),
        Some("new contents\n")
    );
    b_holds(&env, &mounts[1], "tar x", &[("doc.txt", "new contents\n")]);
}

// ---------------------------------------------------------------------------------------
// A file/folder conflict keeps both sides
// ---------------------------------------------------------------------------------------

/// No file in any mount holds jj's internal conflict description.
#[track_caller]
fn assert_no_jj_conflict_text(mounts: &[PathBuf]) {
    for m in mounts {
        for (path, content) in snapshot_tree(m) {
            assert!(
                !String::from_utf8_lossy(&content).contains("Conflict:"),
                "{}/{path} holds jj's internal conflict text:\n{}",
                m.display(),
                String::from_utf8_lossy(&content)
            );
        }
    }
}

#[test]
fn a_file_turned_folder_against_an_edit_keeps_both_sides() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(3);
    std::fs::write(mounts[0].join("fd"), "original\n").unwrap();
    env.ok(&["sync"]);
    wait_content(&mounts[2].join("fd"), "original\n");

    let (backing_a, backing_b) = (env.workspace_of(&mounts[0]), env.workspace_of(&mounts[1]));
    env.kill_daemon();
    std::fs::remove_file(backing_a.join("fd")).unwrap();
    std::fs::create_dir(backing_a.join("fd")).unwrap();
    std::fs::write(backing_a.join("fd/child"), "child\n").unwrap();
    std::fs::write(backing_b.join("fd"), "edited\n").unwrap();
    env.ok(&["sync"]);
    env.ok(&["sync"]);

    assert_no_jj_conflict_text(&mounts);
    for m in &mounts {
        assert_eq!(
            read(&m.join("fd/child")).as_deref(),
            Some("child\n"),
            "{}: the folder side is lost",
            m.display()
        );
        assert_eq!(
            read(&m.join("fd.jjfs-conflict")).as_deref(),
            Some("edited\n"),
            "{}: the file side is lost",
            m.display()
        );
    }
    assert!(
        conflicts(&env).contains(&"fd.jjfs-conflict".to_owned()),
        "status does not list the conflict: {:?}",
        conflicts(&env)
    );
    assert_eq!(
        on_trunk(&backing_a, "fd/child").as_deref(),
        Some("child\n"),
        "fd/child is not in trunk's history"
    );

    // Deleting the other side resolves it.
    std::fs::remove_file(mounts[1].join("fd.jjfs-conflict")).unwrap();
    env.ok(&["sync"]);
    for m in &mounts {
        wait_gone(&m.join("fd.jjfs-conflict"));
        assert_eq!(read(&m.join("fd/child")).as_deref(), Some("child\n"));
    }
    env.ok(&["sync"]);
    assert_eq!(conflicts(&env), Vec::<String>::new());
}

#[test]
fn a_folder_turned_file_against_an_edit_inside_keeps_both_sides() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(3);
    std::fs::create_dir(mounts[0].join("d")).unwrap();
    std::fs::write(mounts[0].join("d/x"), "x\n").unwrap();
    std::fs::write(mounts[0].join("d/y"), "y\n").unwrap();
    env.ok(&["sync"]);
    wait_content(&mounts[2].join("d/y"), "y\n");

    let (backing_a, backing_b) = (env.workspace_of(&mounts[0]), env.workspace_of(&mounts[1]));
    env.kill_daemon();
    std::fs::remove_dir_all(backing_a.join("d")).unwrap();
    std::fs::write(backing_a.join("d"), "file\n").unwrap();
    std::fs::write(backing_b.join("d/x"), "x edited in B\n").unwrap();
    env.ok(&["sync"]);
    env.ok(&["sync"]);

    assert_no_jj_conflict_text(&mounts);
    for m in &mounts {
        assert_eq!(
            read(&m.join("d/x")).as_deref(),
            Some("x edited in B\n"),
            "{}: B's edit inside the folder is lost",
            m.display()
        );
        assert_eq!(read(&m.join("d/y")).as_deref(), Some("y\n"));
        assert_eq!(
            read(&m.join("d.jjfs-conflict")).as_deref(),
            Some("file\n"),
            "{}: the file side is lost",
            m.display()
        );
    }
    assert!(
        conflicts(&env).contains(&"d.jjfs-conflict".to_owned()),
        "status does not list the conflict: {:?}",
        conflicts(&env)
    );
}

// ---------------------------------------------------------------------------------------
// The daemon never runs out of file descriptors
// ---------------------------------------------------------------------------------------

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[test]
fn listing_a_20000_file_folder_does_not_exhaust_the_daemons_descriptors() {
    let env = TestEnv::new();
    env.start_with_fd_limit(4096);
    let pid = env.daemon_pid().unwrap();
    let mounts = env.with_mounts(2);
    let (a, b) = (&mounts[0], &mounts[1]);
    let backing = env.workspace_of(a);
    std::fs::create_dir(backing.join("many")).unwrap();
    for i in 0..20_000 {
        std::fs::write(
            backing.join(format!("many/file-{i:05}.txt")),
            format!("{i}\n"),
        )
        .unwrap();
    }
    let synced = env.run_timed(&["sync"], Duration::from_secs(600));
    assert!(
        synced.as_ref().is_some_and(|(out, _)| out.status.success()),
        "sync of 20,000 new files failed: {synced:?}\nsync.log ends:\n{}",
        env.log_tail(10)
    );
    let took = synced.unwrap().1;
    eprintln!(
        "20,000 files synced in {took:?}; the daemon holds {} fds",
        open_fds(pid)
    );

    for pass in 0..2 {
        let mut errors = Vec::new();
        let mut seen = 0;
        for entry in std::fs::read_dir(a.join("many")).unwrap() {
            match entry.and_then(|e| std::fs::symlink_metadata(e.path())) {
                Ok(_) => seen += 1,
                Err(e) => errors.push(e.to_string()),
            }
        }
        assert!(
            errors.is_empty() && seen == 20_000,
            "ls -l pass {pass}: {seen} stats, {} errors, first {:?}",
            errors.len(),
            errors.first()
        );
    }
    let fds = open_fds(pid);
    eprintln!("after listing twice the daemon holds {fds} fds");
    assert!(fds < 3000, "the daemon holds {fds} fds (limit 4096)");

    std::fs::write(a.join("after-listing.txt"), "still writable\n")
        .expect("a write through the mount failed after the listing");
    wait_content(&b.join("after-listing.txt"), "still writable\n");
    let status = env.run_timed(&["status"], Duration::from_secs(5));
    assert!(
        status.is_some_and(|(out, _)| out.status.success()),
        "jjfs status did not answer within 5 s"
    );
    assert!(open_fds(pid) < 3000);
}

// ---------------------------------------------------------------------------------------
// Nothing is dropped without a word
// ---------------------------------------------------------------------------------------

fn dir_fd(path: &Path) -> OwnedFd {
    nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap()
}

/// Opens `name` under the directory `dir`, one level, never following a symlink.
fn open_at(dir: impl AsFd, name: &str, flags: nix::fcntl::OFlag) -> nix::Result<OwnedFd> {
    nix::fcntl::openat(
        dir,
        name,
        flags | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
}

/// The content of `levels/file` under `root`, walked one directory at a time.
fn read_deep(root: &Path, levels: &[String], file: &str) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut dir = dir_fd(root);
    for level in levels {
        dir = open_at(&dir, level, nix::fcntl::OFlag::O_DIRECTORY).ok()?;
    }
    let fd = open_at(&dir, file, nix::fcntl::OFlag::O_RDONLY).ok()?;
    let mut bytes = Vec::new();
    std::fs::File::from(fd).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

#[test]
fn a_path_too_long_for_the_backing_directory_is_synced_or_reported() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(2);
    // 20 folders of 200 bytes and a 29-byte file: 4,049 bytes from the repo root.
    let levels: Vec<String> = (0..20)
        .map(|i| format!("level-{i:02}-{}", "x".repeat(191)))
        .collect();
    let file = format!("deep-{}.txt", "y".repeat(20));
    let repo_path = format!("{}/{file}", levels.join("/"));
    assert_eq!(repo_path.len(), 4049);

    let mut dir = dir_fd(&mounts[0]);
    for level in &levels {
        nix::sys::stat::mkdirat(
            &dir,
            level.as_str(),
            nix::sys::stat::Mode::from_bits_truncate(0o755),
        )
        .unwrap_or_else(|e| panic!("mkdir of a deep folder in the mount failed: {e}"));
        dir = open_at(&dir, level, nix::fcntl::OFlag::O_DIRECTORY).unwrap();
    }
    let fd = open_at(
        &dir,
        &file,
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CREAT,
    )
    .unwrap_or_else(|e| panic!("creating the deep file in the mount failed: {e}"));
    std::fs::File::from(fd)
        .write_all(b"at the bottom\n")
        .unwrap();
    env.ok(&["sync"]);
    env.ok(&["sync"]);

    let in_b = read_deep(&mounts[1], &levels, &file);
    let skipped = repo_status(&env)["skipped"].clone();
    let reported = skipped.as_array().unwrap().iter().any(|s| {
        let path = s["path"].as_str().unwrap_or_default();
        !path.is_empty()
            && repo_path.starts_with(path)
            && !s["reason"].as_str().unwrap_or_default().is_empty()
    });
    assert!(
        in_b.as_deref() == Some(b"at the bottom\n") || reported,
        "a 4,049-byte path was neither synced to B nor listed as skipped: B has {:?}, skipped {skipped}",
        in_b.map(|b| String::from_utf8_lossy(&b).into_owned())
    );
}

#[test]
fn a_file_held_open_for_writing_is_reported_by_sync_and_status() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(2);
    let (a, b) = (&mounts[0], &mounts[1]);
    std::fs::write(a.join("held.txt"), "base\n").unwrap();
    env.ok(&["sync"]);
    wait_content(&b.join("held.txt"), "base\n");

    let mut held = std::fs::OpenOptions::new()
        .append(true)
        .open(a.join("held.txt"))
        .unwrap();
    writeln!(held, "written in A, still open").unwrap();
    held.flush().unwrap();
    std::fs::write(b.join("held.txt"), "edited in B\n").unwrap();
    let out = env.run(&["sync"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let a_path = a.to_str().unwrap();
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("warning:") && l.contains("held.txt") && l.contains(a_path)),
        "sync did not say that held.txt is held back in {a_path}: {stderr:?}"
    );
    assert_eq!(
        mount_status(&env, a)["held"],
        serde_json::json!(["held.txt"]),
        "status does not show A holding held.txt back"
    );

    drop(held);
    env.ok(&["sync"]);
    env.ok(&["sync"]);
    let finals: Vec<String> = mounts
        .iter()
        .map(|m| read(&m.join("held.txt")).unwrap())
        .collect();
    assert_eq!(
        finals[0], finals[1],
        "the mounts differ once the file is closed"
    );
    assert!(
        finals[0].contains("written in A, still open") && finals[0].contains("edited in B"),
        "an edit is lost: {}",
        finals[0]
    );
    assert_eq!(mount_status(&env, a)["held"], serde_json::json!([]));
}

// ---------------------------------------------------------------------------------------
// Hard links stay coherent
// ---------------------------------------------------------------------------------------

#[test]
fn editing_one_name_of_a_hard_link_updates_both_names_elsewhere() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(2);
    let (a, b) = (&mounts[0], &mounts[1]);
    std::fs::write(a.join("a.txt"), "one\n").unwrap();
    env.ok(&["sync"]);
    std::fs::hard_link(a.join("a.txt"), a.join("b.txt")).expect("ln through the mount");
    env.ok(&["sync"]);
    wait_content(&b.join("b.txt"), "one\n");

    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(a.join("a.txt"))
        .unwrap();
    f.write_all(b"two\n").unwrap();
    drop(f);
    assert_eq!(read(&a.join("b.txt")).as_deref(), Some("one\ntwo\n"));
    // By itself, long before the periodic full rescan: both names move together.
    wait_content(&b.join("a.txt"), "one\ntwo\n");
    let both = common::wait_until(Duration::from_secs(5), || {
        read(&b.join("b.txt")).as_deref() == Some("one\ntwo\n")
    });
    assert!(
        both,
        "the other name of the hard link is stale in B: {:?}",
        read(&b.join("b.txt"))
    );
    env.ok(&["sync"]);
    assert_eq!(read(&b.join("a.txt")).as_deref(), Some("one\ntwo\n"));
    assert_eq!(read(&b.join("b.txt")).as_deref(), Some("one\ntwo\n"));
}

// ---------------------------------------------------------------------------------------
// Smaller fidelity gaps
// ---------------------------------------------------------------------------------------

#[test]
fn log_escapes_a_newline_in_a_file_name() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(2);
    std::fs::write(mounts[0].join("x\ny"), "an odd name\n").unwrap();
    env.ok(&["sync"]);
    wait_content(&mounts[1].join("x\ny"), "an odd name\n");

    let text = env.ok_in(&mounts[0], &["log"]);
    assert!(
        !text.contains("x\ny"),
        "jjfs log prints the name with a raw newline:\n{text}"
    );
    assert!(
        text.contains("x\\ny") || text.contains("x\\012y"),
        "jjfs log does not show the name escaped:\n{text}"
    );
    let json = env.json_in(&mounts[0], &["log", "--json"]);
    let names: Vec<&str> = json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["files"].as_array().unwrap())
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert!(
        names.contains(&"x\ny"),
        "--json lost the real name: {names:?}"
    );
}

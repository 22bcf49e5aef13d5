//! Several named remotes per repo: each receives trunk; a dead or never-answering one delays
//! neither the others nor `jjfs sync` beyond its bound; machines that share only some of their
//! remotes converge; histories that diverged on two remotes are joined, never rewritten; and
//! with default settings a change reaches another machine within a minute, with no `jjfs sync`.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestEnv, bare_repo, read, remote_file, wait_content, wait_for, wait_until};

/// Runs `git ARGS` in `dir`, asserts success, returns stdout (trimmed).
#[track_caller]
fn git(dir: &Path, args: &[&str]) -> String {
    common::git(dir, args).trim().to_owned()
}

/// Where the remote's `main` points (None: nowhere yet).
fn remote_main(bare: &Path) -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--verify", "-q", "main"])
        .current_dir(bare)
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap().trim().to_owned())
}

fn is_ancestor(bare: &Path, commit: &str) -> bool {
    Command::new("git")
        .args(["merge-base", "--is-ancestor", commit, "main"])
        .current_dir(bare)
        .status()
        .unwrap()
        .success()
}

/// The repo's entry in `jjfs status --json`.
fn repo_status(env: &TestEnv) -> serde_json::Value {
    let status = env.json(&["status", "--json"]);
    status["repos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "default")
        .unwrap_or_else(|| panic!("repo default is not in status: {status}"))
        .clone()
}

/// The entry of remote `name` in `status --json`.
fn remote_status(env: &TestEnv, name: &str) -> serde_json::Value {
    let repo = repo_status(env);
    repo["remotes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("remote {name} is not in status: {repo}"))
        .clone()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn two_remotes_both_receive_pushes_and_a_dead_one_leaves_the_other_current() {
    let env = TestEnv::new();
    let one = bare_repo(&env, "one");
    let two = bare_repo(&env, "two");
    let mount = env.with_mounts(1).remove(0);
    env.ok(&["remote", "add", path(&one)]);
    let added = env.ok(&["remote", "add", path(&two), "--name", "two"]);
    assert!(added.contains("(remote two)"), "{added}");
    std::fs::write(mount.join("a.md"), "to both\n").unwrap();
    env.ok(&["sync"]);
    assert_eq!(
        remote_file(&one, "main", "a.md").as_deref(),
        Some("to both\n")
    );
    assert_eq!(
        remote_file(&two, "main", "a.md").as_deref(),
        Some("to both\n")
    );
    assert_eq!(remote_main(&one), remote_main(&two));

    let shown = env.json(&["remote", "show", "--json"]);
    let names: Vec<&str> = shown["remotes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["origin", "two"], "{shown}");
    for remote in shown["remotes"].as_array().unwrap() {
        assert_eq!(remote["state"], "ok", "{shown}");
        assert!(remote["last_push"].is_string(), "{shown}");
    }
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.home().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(config["repos"]["default"]["remote"], path(&one), "{config}");

    // Remote two's directory goes: origin stays current, `sync` warns about two only.
    std::fs::remove_dir_all(&two).unwrap();
    std::fs::write(mount.join("b.md"), "only origin\n").unwrap();
    let out = env.run(&["sync"]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("warning: remote two"), "{stderr}");
    assert_eq!(
        remote_file(&one, "main", "b.md").as_deref(),
        Some("only origin\n")
    );

    let status = repo_status(&env);
    assert_eq!(status["remote"], path(&one), "{status}");
    assert_eq!(status["remote_state"], "ok", "{status}");
    assert_eq!(remote_status(&env, "origin")["state"], "ok");
    let dead = remote_status(&env, "two");
    assert_eq!(dead["state"], "delayed", "{dead}");
    assert!(dead["last_error"].is_string(), "{dead}");
    assert!(dead["next_retry"].is_string(), "{dead}");
    let text = env.ok(&["status"]);
    assert!(
        text.contains(&format!("remote origin: {}", one.display()))
            && text.contains(&format!(
                "remote two: {}: remote sync delayed",
                two.display()
            )),
        "{text}"
    );

    // Later changes keep reaching origin by themselves.
    env.ok(&["config", "push_delay", "1"]);
    std::fs::write(mount.join("c.md"), "still backed up\n").unwrap();
    wait_for("origin to get c.md", || {
        remote_file(&one, "main", "c.md").as_deref() == Some("still backed up\n")
    });

    // Removing two leaves origin alone, in status and in config.
    env.ok(&["remote", "remove", "two"]);
    let status = repo_status(&env);
    assert_eq!(status["remotes"].as_array().unwrap().len(), 1, "{status}");
    let err = env.fails(&["remote", "remove", "two"]);
    assert!(err.contains("no remote named two"), "{err}");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.home().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(
        config["repos"]["default"]["remotes"],
        serde_json::json!([{"name": "origin", "url": path(&one)}]),
        "{config}"
    );
}

#[test]
fn a_remote_that_never_answers_delays_neither_the_other_nor_sync_beyond_its_bound() {
    let scratch = tempfile::tempdir().unwrap();
    let never = scratch.path().join("never-answers.sh");
    std::fs::write(&never, "#!/bin/sh\nsleep 3600\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&never, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A deadline long enough to tell "not delayed" from "given up on".
    let timeout = 20;
    let env = TestEnv::new()
        .with_env("GIT_SSH_COMMAND", path(&never))
        .with_env("JJFS_REMOTE_TIMEOUT", &timeout.to_string());
    let one = bare_repo(&env, "one");
    let mounts = env.with_mounts(2);
    env.ok(&["config", "push_delay", "1"]);
    env.ok(&["remote", "add", path(&one)]);
    env.ok(&[
        "remote",
        "add",
        "ssh://127.0.0.1:1/never.git",
        "--name",
        "stuck",
    ]);
    // The stuck remote's first call hangs.
    wait_for("a git call to the stuck remote", || {
        sleeping_calls(&env.home()) > 0
    });

    let written = Instant::now();
    std::fs::write(mounts[0].join("note.md"), "not held up\n").unwrap();
    wait_content(&mounts[1].join("note.md"), "not held up\n");
    let on_time = wait_until(Duration::from_secs(12), || {
        remote_file(&one, "main", "note.md").as_deref() == Some("not held up\n")
    });
    assert!(on_time, "origin waited for the stuck remote");
    eprintln!("origin had the change after {:?}", written.elapsed());

    // `jjfs sync` returns within its documented bound (the deadline and 5 s), warning once.
    let bound = Duration::from_secs(timeout + 5);
    std::fs::write(mounts[0].join("second.md"), "synced\n").unwrap();
    let started = Instant::now();
    let mut sync = env
        .jjfs_cmd()
        .arg("sync")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let limit = bound + Duration::from_secs(5);
    let finished = wait_until(limit, || sync.try_wait().unwrap().is_some());
    if !finished {
        let _ = sync.kill();
    }
    let out = sync.wait_with_output().unwrap();
    assert!(finished, "jjfs sync was still waiting after {limit:?}");
    eprintln!("jjfs sync returned after {:?}", started.elapsed());
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("warning: remote stuck"), "{stderr}");
    assert_eq!(
        remote_file(&one, "main", "second.md").as_deref(),
        Some("synced\n")
    );

    assert_eq!(remote_status(&env, "origin")["state"], "ok");
    let stuck = remote_status(&env, "stuck");
    assert_eq!(stuck["state"], "delayed", "{stuck}");
    assert!(
        stuck["last_error"]
            .as_str()
            .is_some_and(|e| e.contains(&format!("did not answer within {timeout} s"))),
        "{stuck}"
    );
    env.ok(&["remote", "remove", "stuck"]);
    wait_for("the stuck call to be killed", || {
        sleeping_calls(&env.home()) == 0
    });
}

/// How many `sleep`s of the never-answering ssh command run for the daemon of `home`.
fn sleeping_calls(home: &Path) -> usize {
    let want = format!("JJFS_HOME={}", home.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|entry| {
            let pid = entry.file_name();
            let Ok(environ) = std::fs::read(Path::new("/proc").join(&pid).join("environ")) else {
                return false;
            };
            let cmdline =
                std::fs::read(Path::new("/proc").join(&pid).join("cmdline")).unwrap_or_default();
            environ.split(|&b| b == 0).any(|v| v == want.as_bytes())
                && cmdline.starts_with(b"sleep\0")
        })
        .count()
}

/// Runs `jjfs sync` on each machine in turn until `done` holds (or the deadline passes).
#[track_caller]
fn sync_until(machines: &[&TestEnv], what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        for m in machines {
            m.ok(&["sync"]);
        }
    }
}

#[test]
fn three_machines_sharing_one_remote_pairwise_converge() {
    // A and B share remote one; B and C share remote two; A and C have nothing in common.
    let shared = TestEnv::new();
    let one = bare_repo(&shared, "one");
    let two = bare_repo(&shared, "two");
    let (a, b, c) = (TestEnv::new(), TestEnv::new(), TestEnv::new());
    let ma = a.with_mounts(1).remove(0);
    let mb = b.with_mounts(1).remove(0);
    let mc = c.with_mounts(1).remove(0);
    std::fs::write(ma.join("a.md"), "from a\n").unwrap();
    std::fs::write(mb.join("b.md"), "from b\n").unwrap();
    std::fs::write(mc.join("c.md"), "from c\n").unwrap();
    a.ok(&["remote", "add", path(&one)]);
    b.ok(&["remote", "add", path(&one)]);
    b.ok(&["remote", "add", path(&two), "--name", "two"]);
    c.ok(&["remote", "add", path(&two)]);

    let all = [&a, &b, &c];
    let mounts = [&ma, &mb, &mc];
    let has = |file: &str, text: &str| {
        mounts
            .iter()
            .all(|m| read(&m.join(file)).as_deref() == Some(text))
    };
    sync_until(&all, "every machine to have every start", || {
        has("a.md", "from a\n") && has("b.md", "from b\n") && has("c.md", "from c\n")
    });

    // Edits at both ends at once travel across B.
    std::fs::write(ma.join("later-a.md"), "a again\n").unwrap();
    std::fs::write(mc.join("later-c.md"), "c again\n").unwrap();
    std::fs::remove_file(mb.join("b.md")).unwrap();
    sync_until(&all, "the later edits everywhere", || {
        has("later-a.md", "a again\n")
            && has("later-c.md", "c again\n")
            && mounts.iter().all(|m| !m.join("b.md").exists())
    });
    sync_until(&all, "both remotes on the same trunk", || {
        remote_main(&one).is_some() && remote_main(&one) == remote_main(&two)
    });
    let tree = common::snapshot_tree(&ma);
    assert_eq!(tree, common::snapshot_tree(&mb), "b differs from a");
    assert_eq!(tree, common::snapshot_tree(&mc), "c differs from a");
}

#[test]
fn what_left_the_machine_is_joined_never_rewritten() {
    // A backs up to one and two; B only to two. A's remote two goes away for a while, during
    // which A pushes X to one and B pushes Y to two: when two comes back, A has two published
    // histories, and joins them.
    let shared = TestEnv::new();
    let one = bare_repo(&shared, "one");
    let two = bare_repo(&shared, "two");
    let (a, b) = (TestEnv::new(), TestEnv::new());
    let ma = a.with_mounts(1).remove(0);
    a.ok(&["remote", "add", path(&one)]);
    a.ok(&["remote", "add", path(&two), "--name", "two"]);
    std::fs::write(ma.join("start.md"), "start\n").unwrap();
    a.ok(&["sync"]);
    let mb = b.with_mounts(1).remove(0);
    b.ok(&["remote", "add", path(&two)]);
    b.ok(&["sync"]);
    wait_content(&mb.join("start.md"), "start\n");

    a.ok(&["remote", "remove", "two"]);
    std::fs::write(ma.join("x.md"), "pushed to one\n").unwrap();
    a.ok(&["sync"]);
    std::fs::write(mb.join("y.md"), "pushed to two\n").unwrap();
    b.ok(&["sync"]);
    let x = remote_main(&one).unwrap();
    let y = remote_main(&two).unwrap();
    assert!(
        !is_ancestor(&one, &y) && !is_ancestor(&two, &x),
        "no divergence"
    );

    a.ok(&["remote", "add", path(&two), "--name", "two"]);
    sync_until(&[&a, &b], "both remotes on the same trunk", || {
        remote_main(&one) == remote_main(&two)
            && read(&mb.join("x.md")).is_some()
            && read(&ma.join("y.md")).is_some()
    });
    for (bare, name) in [(&one, "one"), (&two, "two")] {
        assert!(is_ancestor(bare, &x), "X was rewritten on {name}");
        assert!(is_ancestor(bare, &y), "Y was rewritten on {name}");
    }
    let parents = git(&one, &["log", "--format=%P", "--merges", "main"]);
    assert!(
        parents.lines().any(|p| p.contains(&x) && p.contains(&y)),
        "no commit joins X and Y: {parents}"
    );
    assert_eq!(read(&ma.join("x.md")).as_deref(), Some("pushed to one\n"));
    assert_eq!(read(&mb.join("y.md")).as_deref(), Some("pushed to two\n"));
    assert_eq!(common::snapshot_tree(&ma), common::snapshot_tree(&mb));
}

#[test]
fn with_default_settings_a_change_reaches_another_machine_within_a_minute() {
    let shared = TestEnv::new();
    let bare = bare_repo(&shared, "shared");
    let (a, b) = (TestEnv::new(), TestEnv::new());
    let ma = a.with_mounts(1).remove(0);
    a.ok(&["remote", "add", path(&bare)]);
    std::fs::write(ma.join("start.md"), "start\n").unwrap();
    a.ok(&["sync"]);
    let mb = b.with_mounts(1).remove(0);
    b.ok(&["remote", "add", path(&bare)]);
    b.ok(&["sync"]);
    wait_content(&mb.join("start.md"), "start\n");
    a.ok(&["sync"]);

    // From here on, no `jjfs sync`: the defaults alone (push_delay 5 s, fetch_interval 30 s).
    for (from, to, file) in [(&ma, &mb, "from-a.md"), (&mb, &ma, "from-b.md")] {
        let written = Instant::now();
        std::fs::write(from.join(file), "by itself\n").unwrap();
        let arrived = wait_until(Duration::from_secs(60), || {
            read(&to.join(file)).as_deref() == Some("by itself\n")
        });
        assert!(arrived, "{file} did not arrive within a minute");
        eprintln!("{file} arrived after {:?}", written.elapsed());
    }
}

//! Control and visibility, as a user drives them: pause and resume (a mount, a repo), pauses
//! that survive `kill -9`, conflicts listed with their sides and told on the desktop, the
//! global settings, and `status --watch`.

mod common;

use std::io::Read as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::bus::{PrivateBus, call_within, next_call, notification_server};
use common::{TestEnv, git, read, wait_content, wait_for, wait_until};
use jjfs::desktop_notice::BusTarget;

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The mount at `path` as `jjfs list --json` shows it.
fn listed(env: &TestEnv, path: &Path) -> serde_json::Value {
    env.list()
        .into_iter()
        .find(|m| m["path"].as_str() == path.to_str())
        .unwrap_or_else(|| panic!("{} is not listed", path.display()))
}

/// `jjfs sync` that must succeed; returns its stderr.
fn sync(env: &TestEnv) -> String {
    let out = env.run(&["sync"]);
    assert!(
        out.status.success(),
        "sync failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// Both mounts edit the same line of `name` while `m1` is paused, then `m1` resumes: a
/// conflict, with markers in both mounts.
fn conflict_while_paused(env: &TestEnv, m0: &Path, m1: &Path, name: &str) {
    std::fs::write(m0.join(name), "one\ntwo\nthree\n").unwrap();
    sync(env);
    wait_content(&m1.join(name), "one\ntwo\nthree\n");
    env.ok(&["pause", s(m1)]);
    std::fs::write(m0.join(name), "one\nTWO from m0\nthree\n").unwrap();
    sync(env);
    std::fs::write(m1.join(name), "one\nTWO from m1\nthree\n").unwrap();
    env.ok(&["resume", s(m1)]);
    wait_for("conflict markers in both mounts", || {
        let (a, b) = (read(&m0.join(name)), read(&m1.join(name)));
        a.as_deref().is_some_and(|t| {
            t.contains("<<<<<<<") && t.contains("TWO from m0") && t.contains("TWO from m1")
        }) && a == b
    });
}

#[test]
fn a_paused_mount_keeps_its_edits_and_gets_none_until_resumed_then_both_converge() {
    let env = TestEnv::new();
    let m = env.with_mounts(2);
    let (m0, m1) = (&m[0], &m[1]);
    let out = env.ok(&["pause", s(m1)]);
    assert!(out.contains("Paused"), "{out}");
    assert_eq!(listed(&env, m1)["paused"], true);
    assert_eq!(listed(&env, m0)["paused"], false);

    std::fs::write(m0.join("from-m0.md"), "zero\n").unwrap();
    std::fs::write(m1.join("from-m1.md"), "one\n").unwrap();
    // The paused mount's edit waits, and `list` says so.
    wait_for("the paused mount's pending change in `jjfs list`", || {
        listed(&env, m1)["pending"].as_u64() >= Some(1)
    });
    let warnings = sync(&env);
    let lines: Vec<&str> = warnings.lines().collect();
    assert_eq!(lines.len(), 1, "one warning line: {warnings}");
    assert!(
        lines[0].starts_with("warning: ") && lines[0].contains(s(m1)),
        "{warnings}"
    );
    // Neither side's edit crossed; the paused one is not on trunk either.
    assert!(!m1.join("from-m0.md").exists());
    assert!(!m0.join("from-m1.md").exists());
    let trunk = env.trunk_log(&env.workspace_of(m0), "description ++ \"\\n\"");
    assert!(!trunk.contains(s(m1)), "{trunk}");

    let out = env.ok(&["resume", s(m1)]);
    assert!(out.contains("Resumed"), "{out}");
    assert_eq!(listed(&env, m1)["paused"], false);
    assert_eq!(listed(&env, m1)["pending"], 0, "recorded on resume");
    wait_content(&m1.join("from-m0.md"), "zero\n");
    wait_content(&m0.join("from-m1.md"), "one\n");
    sync(&env);
    assert_eq!(
        common::snapshot_tree(m0),
        common::snapshot_tree(m1),
        "both mounts hold the same files"
    );
}

#[test]
fn both_sides_editing_the_same_lines_is_a_conflict_listed_with_both_sides_until_resolved() {
    let env = TestEnv::new();
    let m = env.with_mounts(2);
    let (m0, m1) = (&m[0], &m[1]);
    assert_eq!(
        env.json(&["conflicts", "--json"])["conflicts"],
        serde_json::json!([])
    );
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    conflict_while_paused(&env, m0, m1, "plan.md");

    let listed = env.json(&["conflicts", "--json"]);
    let conflicts = listed["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{listed}");
    let c = &conflicts[0];
    assert_eq!(c["repo"], "default");
    assert_eq!(c["path"], "plan.md");
    let since = chrono::DateTime::parse_from_rfc3339(c["since"].as_str().unwrap()).unwrap();
    assert!(since >= before, "since {since} is before the conflict");
    let mut sides: Vec<&str> = c["sides"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    sides.sort();
    let mut expected = vec![s(m0), s(m1)];
    expected.sort();
    assert_eq!(sides, expected, "{listed}");
    assert_eq!(
        env.json(&["status", "--json"])["repos"][0]["conflicts"],
        serde_json::json!(["plan.md"])
    );
    let text = env.ok(&["conflicts"]);
    assert!(text.contains("plan.md") && text.contains(s(m0)), "{text}");
    let log = std::fs::read_to_string(env.home().join("sync.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("conflict") && l.contains("plan.md")),
        "sync.log warns of the conflict"
    );

    // `since` survives a restart.
    env.ok(&["stop"]);
    let again = env.json(&["conflicts", "--json"]);
    assert_eq!(again["conflicts"][0]["since"], c["since"], "{again}");
    assert_eq!(again["conflicts"][0]["sides"], c["sides"]);

    // Editing the markers away in one mount resolves it everywhere.
    std::fs::write(m1.join("plan.md"), "one\nTWO from both\nthree\n").unwrap();
    wait_content(&m0.join("plan.md"), "one\nTWO from both\nthree\n");
    wait_for("the conflict to be gone from `jjfs conflicts`", || {
        env.json(&["conflicts", "--json"])["conflicts"] == serde_json::json!([])
    });
}

#[test]
fn a_pause_survives_kill_9_and_restart() {
    let env = TestEnv::new();
    let m = env.with_mounts(2);
    let (m0, m1) = (&m[0], &m[1]);
    env.ok(&["pause", s(m1)]);
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.home().join("config.json")).unwrap()).unwrap();
    let paused: Vec<bool> = config["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["paused"].as_bool().unwrap_or(false))
        .collect();
    assert_eq!(paused.iter().filter(|p| **p).count(), 1, "{config}");

    env.kill_daemon();
    // The next command starts a daemon again, which mounts both again, m1 still paused.
    assert_eq!(listed(&env, m1)["paused"], true);
    std::fs::write(m0.join("after.md"), "after the crash\n").unwrap();
    std::fs::write(m1.join("kept.md"), "written while paused\n").unwrap();
    let warnings = sync(&env);
    assert!(warnings.contains(s(m1)), "{warnings}");
    assert!(!m1.join("after.md").exists(), "a paused mount gets nothing");
    assert!(!m0.join("kept.md").exists());

    env.ok(&["resume", s(m1)]);
    wait_content(&m1.join("after.md"), "after the crash\n");
    wait_content(&m0.join("kept.md"), "written while paused\n");
}

#[test]
fn a_paused_repo_stops_every_mount_new_mounts_start_paused_and_close_records_edits() {
    let env = TestEnv::new();
    let m = env.with_mounts(2);
    let (m0, m1) = (&m[0], &m[1]);
    std::fs::write(m0.join("base.md"), "base\n").unwrap();
    sync(&env);
    wait_content(&m1.join("base.md"), "base\n");

    let out = env.ok(&["pause", "--repo", "default"]);
    assert!(out.contains("Paused repo default"), "{out}");
    let status = env.json(&["status", "--json"]);
    assert_eq!(status["repos"][0]["paused"], true, "{status}");
    assert!(
        status["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["paused"] == true),
        "{status}"
    );

    // A new mount of a paused repo gets trunk's files once, then waits like the others.
    let m2 = env.open("default", "m2");
    wait_content(&m2.join("base.md"), "base\n");
    assert_eq!(listed(&env, &m2)["paused"], true);

    std::fs::write(m0.join("a.md"), "from m0\n").unwrap();
    std::fs::write(m1.join("b.md"), "from m1\n").unwrap();
    sync(&env);
    assert!(!m1.join("a.md").exists() && !m2.join("a.md").exists());

    // Closing a paused mount records what was written there first, and says so.
    let out = env.ok(&["close", s(m1)]);
    assert!(
        out.contains("was paused") && out.contains("recorded"),
        "{out}"
    );
    let trunk = env.trunk_log(&env.workspace_of(m0), "description ++ \"\\n\"");
    assert!(trunk.contains(s(m1)), "m1's edit is on trunk: {trunk}");

    env.ok(&["resume", "--repo", "default"]);
    wait_content(&m0.join("b.md"), "from m1\n");
    wait_content(&m2.join("b.md"), "from m1\n");
    wait_content(&m2.join("a.md"), "from m0\n");
    assert_eq!(env.json(&["status", "--json"])["repos"][0]["paused"], false);
}

#[test]
fn a_conflict_raises_a_desktop_notice_and_notify_false_stops_them() {
    let bus = PrivateBus::start(None);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let target = BusTarget {
        address: bus.address.clone(),
        connect_as: None,
    };
    let mut calls = runtime.block_on(notification_server(target));
    // The daemon runs as the mounts' owner here: it uses its own session bus.
    let env = TestEnv::new().with_env("DBUS_SESSION_BUS_ADDRESS", &bus.address);
    let m = env.with_mounts(2);
    let (m0, m1) = (&m[0], &m[1]);
    assert_eq!(env.ok(&["config", "--global", "notify"]).trim(), "true");

    conflict_while_paused(&env, m0, m1, "first.md");
    let call = runtime.block_on(next_call(&mut calls));
    assert_eq!(call.app, "jjfs");
    assert_eq!(call.summary, "jjfs: new conflict in repo default");
    assert!(call.body.starts_with("first.md"), "{}", call.body);

    env.ok(&["config", "--global", "notify", "false"]);
    assert_eq!(env.ok(&["config", "--global", "notify"]).trim(), "false");
    conflict_while_paused(&env, m0, m1, "second.md");
    wait_for("the second conflict to be listed", || {
        env.json(&["conflicts", "--json"])["conflicts"]
            .as_array()
            .unwrap()
            .len()
            == 2
    });
    // Longer than a repo's notice interval (10 s) and gathering (1 s): nothing comes.
    let quiet = runtime.block_on(call_within(&mut calls, Duration::from_secs(13)));
    assert!(quiet.is_none(), "told while notify is false: {quiet:?}");

    // On again, a new conflict is told: the silence above was the setting's doing.
    env.ok(&["config", "--global", "notify", "true"]);
    conflict_while_paused(&env, m0, m1, "third.md");
    let call = runtime.block_on(next_call(&mut calls));
    assert!(call.body.starts_with("third.md"), "{}", call.body);
}

#[test]
fn status_watch_repeats_plain_blocks_when_piped_and_ends_cleanly_on_ctrl_c() {
    let env = TestEnv::new();
    env.with_mounts(1);
    let mut child = env
        .jjfs_cmd()
        .args(["status", "--watch"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // What it printed so far, read as it comes.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    wait_for("status --watch to print its block twice", || {
        seen.lock().unwrap().matches("jjfsd ").count() >= 2
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let mut status = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            status = child.try_wait().unwrap();
            status.is_some()
        }),
        "status --watch did not end on Ctrl-C"
    );
    assert!(status.unwrap().success(), "{status:?}");
    reader.join().unwrap();
    let text = seen.lock().unwrap().clone();
    assert!(
        text.matches("jjfsd ").count() >= 2,
        "repeated blocks: {text}"
    );
    assert!(
        !text.contains('\x1b'),
        "no terminal codes when piped: {text:?}"
    );
}

#[test]
fn a_jj_cli_commit_in_a_paused_mounts_workspace_waits_for_the_resume_then_joins_trunk() {
    let env = TestEnv::new();
    let m = env.with_mounts(2);
    let (m0, m1) = (&m[0], &m[1]);
    let ws = env.workspace_of(m0);
    env.ok(&["pause", s(m0)]);

    // Committed with the jj CLI in the paused mount's backing workspace, while trunk moves on.
    std::fs::write(ws.join("cli.md"), "from the jj cli\n").unwrap();
    env.jj(&ws, &["commit", "-m", "written with jj while paused"]);
    std::fs::write(m1.join("meanwhile.md"), "trunk moved on\n").unwrap();
    sync(&env);
    let trunk = env.trunk_log(&ws, "description ++ \"\\n\"");
    assert!(
        !trunk.contains("written with jj while paused"),
        "the CLI commit waits: {trunk}"
    );
    assert!(
        trunk.contains(s(m1)),
        "the other mount's edit is on trunk: {trunk}"
    );
    assert!(!m1.join("cli.md").exists());
    assert!(!m0.join("meanwhile.md").exists());

    env.ok(&["resume", s(m0)]);
    wait_content(&m1.join("cli.md"), "from the jj cli\n");
    wait_content(&m0.join("meanwhile.md"), "trunk moved on\n");
    let trunk = env.trunk_log(&ws, "description ++ \"\\n\"");
    assert!(
        trunk.contains("written with jj while paused"),
        "the CLI commit joined trunk with its description: {trunk}"
    );
}

#[test]
fn a_paused_repo_neither_fetches_nor_pushes_and_both_machines_converge_on_resume() {
    let shared = TestEnv::new();
    let bare = shared.work().join("shared.git");
    git(&shared.work(), &["init", "--bare", "-q", s(&bare)]);
    let (a, b) = (TestEnv::new(), TestEnv::new());
    let ma = a.with_mounts(1).remove(0);
    a.ok(&["remote", "add", s(&bare)]);
    std::fs::write(ma.join("hello.md"), "hello from a\n").unwrap();
    a.ok(&["sync"]);
    let mb = b.with_mounts(1).remove(0);
    b.ok(&["remote", "add", s(&bare)]);
    b.ok(&["sync"]);
    wait_content(&mb.join("hello.md"), "hello from a\n");

    a.ok(&["pause", "--repo", "default"]);
    let pushed_before = git(&bare, &["rev-parse", "main"]);
    std::fs::write(ma.join("from-a.md"), "written on a while paused\n").unwrap();
    std::fs::write(mb.join("from-b.md"), "written on b\n").unwrap();
    b.ok(&["sync"]);
    let warnings = sync(&a);
    assert!(warnings.contains(s(&ma)), "{warnings}");
    // a fetched nothing and pushed nothing: the remote has b's change only.
    assert!(!ma.join("from-b.md").exists(), "a paused repo fetched");
    let remote_files = git(&bare, &["ls-tree", "--name-only", "main"]);
    assert!(remote_files.contains("from-b.md"), "{remote_files}");
    assert!(!remote_files.contains("from-a.md"), "a paused repo pushed");
    assert_ne!(git(&bare, &["rev-parse", "main"]), pushed_before);
    let trunk = a.trunk_log(&a.workspace_of(&ma), "description ++ \"\\n\"");
    assert!(
        !trunk.contains(s(&mb)),
        "b's change reached a's trunk: {trunk}"
    );

    // On resume a's edit and b's change (trunk moved on the remote meanwhile) merge.
    a.ok(&["resume", "--repo", "default"]);
    sync(&a);
    wait_content(&ma.join("from-b.md"), "written on b\n");
    b.ok(&["sync"]);
    wait_content(&mb.join("from-a.md"), "written on a while paused\n");
    assert_eq!(common::snapshot_tree(&ma), common::snapshot_tree(&mb));
}

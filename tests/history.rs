//! History as users meet it: every synced state can be read back and brought back, by file
//! and time, from any mount, and a restore or an undo is a new change that reaches every
//! mount. Refusals change nothing.

mod common;

use std::path::Path;

use common::{TestEnv, read, snapshot_tree, wait_content, wait_gone};

/// Now, as `--at` takes it; returns once the clock has moved into the next second. Commit
/// times are whole seconds (git's resolution), so that changes made after this call are
/// after the time it returns.
fn now_then_next_second() -> String {
    let now = chrono::Utc::now();
    common::wait_for("the next second", || {
        chrono::Utc::now().timestamp() > now.timestamp()
    });
    now.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The change ids of `jjfs log PATH --json`, newest first.
fn changes_of(env: &TestEnv, dir: &Path, path: &str) -> Vec<String> {
    let log = env.json_in(dir, &["log", path, "--json"]);
    log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["change"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_deleted_file_is_restored_from_another_mount_and_reappears_everywhere() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(3);
    std::fs::write(mounts[0].join("notes.md"), "precious\n").unwrap();
    env.ok(&["sync"]);
    let before_delete = now_then_next_second();
    std::fs::remove_file(mounts[0].join("notes.md")).unwrap();
    env.ok(&["sync"]);
    for m in &mounts {
        wait_gone(&m.join("notes.md"));
    }
    // From mount B's directory, by a path relative to it.
    let out = env.ok_in(&mounts[1], &["restore", "notes.md", "--at", &before_delete]);
    assert!(out.contains("A notes.md"), "{out}");
    for m in &mounts {
        wait_content(&m.join("notes.md"), "precious\n");
    }
    // The restore is itself in the history, and the delete is still there below it.
    let log = env.json_in(&mounts[2], &["log", "notes.md", "--json"]);
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{log}");
    assert!(
        entries[0]["description"]
            .as_str()
            .unwrap()
            .starts_with("jjfs: restore notes.md")
    );
    assert_eq!(entries[0]["files"][0]["status"], "added");
    assert_eq!(entries[1]["files"][0]["status"], "deleted");
    assert_eq!(entries[1]["mount"], mounts[0].to_str().unwrap());
    assert_eq!(entries[2]["files"][0]["status"], "added");
}

#[test]
fn every_version_of_a_file_is_in_its_log_and_readable() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(2);
    std::fs::create_dir(mounts[0].join("docs")).unwrap();
    std::fs::write(mounts[0].join("other.md"), "unrelated\n").unwrap();
    let versions: Vec<String> = (1..=5).map(|i| format!("version {i}\n")).collect();
    for version in &versions {
        std::fs::write(mounts[0].join("docs/plan.md"), version).unwrap();
        env.ok(&["sync"]);
    }
    std::fs::write(mounts[1].join("other.md"), "still unrelated\n").unwrap();
    env.ok(&["sync"]);

    let changes = changes_of(&env, &mounts[1].join("docs"), "plan.md");
    assert_eq!(changes.len(), 5, "{changes:?}");
    // Newest first: the first entry is the last version.
    for (change, version) in changes.iter().zip(versions.iter().rev()) {
        assert_eq!(
            &env.ok_in(&mounts[1], &["cat", "docs/plan.md", "--at", change]),
            version
        );
    }
    let since = env.json_in(
        &mounts[1],
        &["log", "docs/plan.md", "--since", "1w", "--json"],
    );
    assert_eq!(since["entries"].as_array().unwrap().len(), 5);
    // A folder's log holds its files' changes; the human log names the mount and the files.
    assert_eq!(changes_of(&env, &mounts[1], "docs").len(), 5);
    let human = env.ok(&["log", "--repo", "default", "docs/plan.md", "--limit", "2"]);
    assert!(
        human.contains(&format!("from {}", mounts[0].display())),
        "{human}"
    );
    assert!(
        human.contains("M docs/plan.md") && human.contains("(more"),
        "{human}"
    );
    // diff: by default the last change to the file.
    let diff = env.ok_in(&mounts[1], &["diff", "docs/plan.md"]);
    assert!(diff.contains("-version 4\n+version 5\n"), "{diff}");
    let diff = env.json_in(
        &mounts[1],
        &[
            "diff",
            "docs/plan.md",
            "--from",
            &changes[4],
            "--to",
            &changes[1],
            "--json",
        ],
    );
    assert!(
        diff["diff"]
            .as_str()
            .unwrap()
            .contains("-version 1\n+version 4\n"),
        "{diff}"
    );
    // A relative time before the file existed: it did not exist yet.
    let err = env.fails_in(&mounts[1], &["cat", "docs/plan.md", "--at", "1w"]);
    assert!(
        err.starts_with("error: docs/plan.md did not exist"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
    // status tells how long the history is.
    let status = env.json(&["status", "--json"]);
    assert!(
        status["repos"][0]["history_commits"].as_u64().unwrap() >= 7,
        "{status}"
    );
    assert!(
        status["repos"][0]["history_bytes"].as_u64().unwrap() > 0,
        "{status}"
    );
}

#[test]
fn undo_after_an_accidental_rm_r_brings_the_folder_back_everywhere() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(3);
    std::fs::create_dir_all(mounts[0].join("project/src")).unwrap();
    std::fs::write(mounts[0].join("project/README.md"), "readme\n").unwrap();
    std::fs::write(mounts[0].join("project/src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(mounts[0].join("keep.md"), "keep\n").unwrap();
    env.ok(&["sync"]);
    for m in &mounts {
        wait_content(&m.join("project/src/main.rs"), "fn main() {}\n");
    }
    let before = snapshot_tree(&mounts[2]);
    std::fs::remove_dir_all(mounts[1].join("project")).unwrap();
    // No explicit sync: undo itself first records what the mounts did.
    let out = env.ok_in(&mounts[2], &["undo", "--json"]);
    let result: serde_json::Value = serde_json::from_str(&out).unwrap();
    let reverted = result["reverted"].as_array().unwrap();
    assert_eq!(reverted.len(), 1, "{out}");
    assert_eq!(reverted[0]["mount"], mounts[1].to_str().unwrap());
    for m in &mounts {
        wait_content(&m.join("project/src/main.rs"), "fn main() {}\n");
        wait_content(&m.join("project/README.md"), "readme\n");
    }
    env.ok(&["sync"]);
    assert_eq!(snapshot_tree(&mounts[0]), before);
    // Undoing the undo deletes it again: history only grows.
    let out = env.ok(&["undo", "--repo", "default"]);
    assert!(out.contains("D project/README.md"), "{out}");
    for m in &mounts {
        wait_gone(&m.join("project"));
    }
    assert_eq!(read(&mounts[0].join("keep.md")).as_deref(), Some("keep\n"));
}

#[test]
fn restoring_an_earlier_version_resolves_a_conflict_everywhere() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(3);
    std::fs::write(mounts[0].join("plan.md"), "step one\nstep two\n").unwrap();
    env.ok(&["sync"]);
    let agreed = changes_of(&env, &mounts[0], "plan.md")[0].clone();
    // Two mounts change the same line while the daemon is down: a true conflict.
    let backings: Vec<_> = mounts.iter().map(|m| env.files_of(m)).collect();
    env.kill_daemon();
    std::fs::write(backings[0].join("plan.md"), "step one\nstep 2 (from A)\n").unwrap();
    std::fs::write(backings[1].join("plan.md"), "step one\nstep II (from B)\n").unwrap();
    env.ok(&["sync"]);
    let status = env.json(&["status", "--json"]);
    assert_eq!(
        status["repos"][0]["conflicts"],
        serde_json::json!(["plan.md"])
    );
    let log = env.json_in(&mounts[2], &["log", "plan.md", "--json"]);
    assert_eq!(log["entries"][0]["conflict"], true, "{log}");
    assert!(
        env.ok_in(&mounts[2], &["log", "plan.md"])
            .contains("(conflict)")
    );

    env.ok_in(&mounts[2], &["restore", "plan.md", "--at", &agreed]);
    for m in &mounts {
        wait_content(&m.join("plan.md"), "step one\nstep two\n");
    }
    let status = env.json(&["status", "--json"]);
    assert_eq!(status["repos"][0]["conflicts"], serde_json::json!([]));
}

#[test]
fn bad_times_unknown_paths_and_unknown_repos_change_nothing() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(2);
    std::fs::write(mounts[0].join("a.md"), "a\n").unwrap();
    env.ok(&["sync"]);
    let head = changes_of(&env, &mounts[0], ".")[0].clone();
    let files = snapshot_tree(&mounts[1]);
    let refusals: Vec<(Vec<&str>, &str)> = vec![
        (vec!["restore", "a.md", "--at", "yesterday"], "bad time"),
        (vec!["restore", "a.md", "--at", "10x"], "bad time"),
        (
            vec!["restore", "a.md", "--at", "abc"],
            "at least 8 characters",
        ),
        (
            vec!["cat", "a.md", "--at", "zzzzzzzzzz"],
            "no change zzzzzzzzzz",
        ),
        (
            vec!["restore", "missing.md", "--at", "1s"],
            "missing.md did not exist in repo default",
        ),
        (vec!["log", "missing.md"], "missing.md has no history"),
        // a.md exists now but not a week ago: restoring it then would delete it; refused.
        (
            vec!["restore", "a.md", "--at", "1w"],
            "a.md did not exist in repo default",
        ),
        (
            vec!["cat", "a.md", "--at", &head, "--repo", "nope"],
            "unknown repo nope",
        ),
        (vec!["undo", "--repo", "nope"], "unknown repo nope"),
        (vec!["undo", "100"], "has only"),
        (
            vec!["cat", "../../outside.md", "--at", "1s"],
            "outside the repo",
        ),
        (vec!["cat", ".", "--at", "1s"], "is a folder"),
    ];
    for (args, expected) in refusals {
        let err = env.fails_in(&mounts[0], &args);
        assert!(err.contains(expected), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
    }
    env.ok(&["sync"]);
    assert_eq!(changes_of(&env, &mounts[0], ".")[0], head);
    assert_eq!(snapshot_tree(&mounts[1]), files);
}

#[test]
fn json_output_parses_with_the_documented_fields() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(2);
    std::fs::write(mounts[0].join("old.md"), "same content\n").unwrap();
    env.ok(&["sync"]);
    std::fs::rename(mounts[0].join("old.md"), mounts[0].join("new.md")).unwrap();
    env.ok(&["sync"]);
    let log = env.json_in(&mounts[1], &["log", "--json"]);
    assert_eq!(log["repo"], "default");
    let entry = &log["entries"][0];
    for field in [
        "commit",
        "change",
        "time",
        "mount",
        "mount_id",
        "description",
        "files",
        "conflict",
    ] {
        assert!(entry.get(field).is_some(), "{field} missing in {entry}");
    }
    assert_eq!(entry["files"][0]["status"], "renamed");
    assert_eq!(entry["files"][0]["from"], "old.md");
    assert_eq!(entry["files"][0]["path"], "new.md");
    assert!(chrono::DateTime::parse_from_rfc3339(entry["time"].as_str().unwrap()).is_ok());
    let list = env.list();
    assert_eq!(
        entry["mount_id"],
        list.iter()
            .find(|m| m["path"] == mounts[0].to_str().unwrap())
            .unwrap()["id"]
    );
    assert_eq!(log["more"], false);

    let restored = env.json_in(
        &mounts[1],
        &[
            "restore",
            "old.md",
            "--at",
            log["entries"][1]["change"].as_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(restored["paths"], serde_json::json!(["old.md"]));
    assert!(restored["change"]["change"].is_string() && restored["at"]["time"].is_string());
    assert_eq!(restored["files"][0]["status"], "added");
    wait_content(&mounts[0].join("old.md"), "same content\n");
    let cat = env.ok_in(
        &mounts[0],
        &[
            "cat",
            "old.md",
            "--at",
            restored["change"]["commit"].as_str().unwrap(),
        ],
    );
    assert_eq!(cat, "same content\n");
    // status counts trunk's changes as jj does (`::main`, less the root).
    env.ok(&["sync"]);
    let status = env.json(&["status", "--json"]);
    assert_eq!(
        status["repos"][0]["history_commits"].as_u64().unwrap() as usize,
        env.trunk_commits(&mounts[0]) - 1
    );
}

#[test]
fn the_store_is_packed_when_loose_objects_pile_up_and_history_survives() {
    let env = TestEnv::new().with_env("JJFS_PACK_AUTO", "1");
    let mounts = env.with_mounts(2);
    for i in 0..3 {
        std::fs::write(mounts[0].join("note.md"), format!("version {i}\n")).unwrap();
        env.ok(&["sync"]);
    }
    let git = env
        .home()
        .join("repos/default/.jj/repo/store/git/objects/pack");
    common::wait_for("a pack file", || {
        std::fs::read_dir(&git).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "pack"))
        })
    });
    common::wait_for("the pack to be reported", || {
        env.ok(&["status", "--verbose"])
            .contains("packed the store")
    });
    // Every version is still there, and syncing goes on.
    let changes = changes_of(&env, &mounts[1], "note.md");
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert_eq!(
        env.ok_in(&mounts[1], &["cat", "note.md", "--at", &changes[2]]),
        "version 0\n"
    );
    std::fs::write(mounts[1].join("after.md"), "after packing\n").unwrap();
    wait_content(&mounts[0].join("after.md"), "after packing\n");
}

#[test]
fn a_restore_while_another_mount_keeps_writing_loses_nothing() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(3);
    std::fs::write(mounts[0].join("doc.md"), "good\n").unwrap();
    env.ok(&["sync"]);
    let good = changes_of(&env, &mounts[0], "doc.md")[0].clone();
    std::fs::write(mounts[0].join("doc.md"), "clobbered\n").unwrap();
    env.ok(&["sync"]);
    // Mount C writes a stream of files while mount B restores. (Not `undo`: while others
    // write, the last change may well be theirs, which `undo` would revert, as documented.)
    let writer_dir = mounts[2].clone();
    let writer = std::thread::spawn(move || {
        for i in 0..60 {
            std::fs::write(writer_dir.join(format!("w{i:02}.md")), format!("{i}\n")).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    });
    env.ok_in(&mounts[1], &["restore", "doc.md", "--at", &good]);
    writer.join().unwrap();
    env.ok(&["sync"]);
    for m in &mounts {
        wait_content(&m.join("doc.md"), "good\n");
        for i in 0..60 {
            wait_content(&m.join(format!("w{i:02}.md")), &format!("{i}\n"));
        }
    }
}

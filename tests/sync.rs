//! The sync engine as users meet it: every kind of change reaches every other mount by
//! itself; edits in backing directories and by the jj CLI propagate; concurrent edits
//! converge, with jj conflicts where they truly conflict; crashes and long-open writers lose
//! nothing; and nothing loops.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{TestEnv, read, snapshot_tree, wait_content, wait_for, wait_gone};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

/// Runs every kind of change in `from` and waits for each to reach `to`.
fn changes_reach(from: &Path, to: &Path, tag: &str) {
    let file = |name: &str| format!("{tag}-{name}");
    std::fs::write(from.join(file("new.md")), "created\n").unwrap();
    wait_content(&to.join(file("new.md")), "created\n");

    std::fs::write(from.join(file("new.md")), "edited\n").unwrap();
    wait_content(&to.join(file("new.md")), "edited\n");

    std::fs::create_dir_all(from.join(file("dir/sub"))).unwrap();
    std::fs::write(from.join(file("dir/sub/deep.txt")), "deep\n").unwrap();
    wait_content(&to.join(file("dir/sub/deep.txt")), "deep\n");

    std::fs::rename(from.join(file("new.md")), from.join(file("renamed.md"))).unwrap();
    wait_content(&to.join(file("renamed.md")), "edited\n");
    wait_gone(&to.join(file("new.md")));

    std::fs::rename(from.join(file("dir")), from.join(file("moved-dir"))).unwrap();
    wait_content(&to.join(file("moved-dir/sub/deep.txt")), "deep\n");
    wait_gone(&to.join(file("dir")));

    std::fs::write(from.join(file("script.sh")), "#!/bin/sh\necho hi\n").unwrap();
    wait_content(&to.join(file("script.sh")), "#!/bin/sh\necho hi\n");
    std::fs::set_permissions(
        from.join(file("script.sh")),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    wait_for("the exec bit to propagate", || {
        is_executable(&to.join(file("script.sh")))
    });

    let binary: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(from.join(file("blob.bin")), &binary).unwrap();
    wait_for("the binary file to arrive intact", || {
        std::fs::read(to.join(file("blob.bin"))).is_ok_and(|b| b == binary)
    });

    std::fs::remove_file(from.join(file("renamed.md"))).unwrap();
    wait_gone(&to.join(file("renamed.md")));

    std::fs::remove_file(from.join(file("moved-dir/sub/deep.txt"))).unwrap();
    std::fs::remove_dir(from.join(file("moved-dir/sub"))).unwrap();
    std::fs::remove_dir(from.join(file("moved-dir"))).unwrap();
    wait_gone(&to.join(file("moved-dir")));
}

#[test]
fn every_kind_of_change_propagates_both_ways() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(2);
    changes_reach(&mounts[0], &mounts[1], "a");
    changes_reach(&mounts[1], &mounts[0], "b");
    env.ok(&["sync"]);
    assert_eq!(snapshot_tree(&mounts[0]), snapshot_tree(&mounts[1]));
}

#[test]
fn edits_in_a_backing_directory_propagate() {
    let env = TestEnv::new();
    if env.fuse_only("a direct mount has no backing directory") {
        return;
    }
    let mounts = env.with_mounts(2);
    let backing = env.workspace_of(&mounts[0]);
    std::fs::write(backing.join("by-hand.txt"), "edited in the backing dir\n").unwrap();
    wait_content(
        &mounts[1].join("by-hand.txt"),
        "edited in the backing dir\n",
    );
    // The mount over that backing directory shows it too.
    wait_content(
        &mounts[0].join("by-hand.txt"),
        "edited in the backing dir\n",
    );
    std::fs::remove_file(backing.join("by-hand.txt")).unwrap();
    wait_gone(&mounts[1].join("by-hand.txt"));
}

#[test]
fn the_jj_cli_in_a_backing_workspace_is_followed() {
    let env = TestEnv::new();
    if env.fuse_only("the jj CLI cannot run in a direct mount") {
        return;
    }
    let mounts = env.with_mounts(2);
    let ws = env.workspace_of(&mounts[0]);

    // A commit made with the CLI joins trunk with its description.
    std::fs::write(ws.join("cli.txt"), "from the jj cli\n").unwrap();
    env.jj(&ws, &["commit", "-m", "written with jj"]);
    wait_content(&mounts[1].join("cli.txt"), "from the jj cli\n");
    wait_for("the CLI commit on trunk", || {
        env.trunk_log(&ws, "description")
            .contains("written with jj")
    });

    // `jj st` sees no phantom change after a sync wrote files into the workspace.
    std::fs::write(mounts[1].join("other.txt"), "from the other mount\n").unwrap();
    wait_content(&mounts[0].join("other.txt"), "from the other mount\n");
    env.ok(&["sync"]);
    let st = env.jj(&ws, &["st"]);
    assert!(st.contains("The working copy has no changes"), "{st}");

    // `jj restore` of a file in the workspace is an edit like any other.
    std::fs::write(mounts[1].join("cli.txt"), "changed in a mount\n").unwrap();
    wait_content(&mounts[0].join("cli.txt"), "changed in a mount\n");
    env.ok(&["sync"]);
    let first_version = env
        .jj(
            &ws,
            &[
                "--ignore-working-copy",
                "log",
                "--no-graph",
                "-r",
                "description(substring:\"written with jj\")",
                "-T",
                "commit_id",
            ],
        )
        .trim()
        .to_owned();
    env.jj(&ws, &["restore", "--from", &first_version, "cli.txt"]);
    wait_content(&mounts[1].join("cli.txt"), "from the jj cli\n");

    // `jj abandon` of the last change on trunk takes it back everywhere.
    std::fs::write(mounts[1].join("mistake.txt"), "oops\n").unwrap();
    wait_content(&mounts[0].join("mistake.txt"), "oops\n");
    env.ok(&["sync"]);
    env.jj(&ws, &["abandon", "main"]);
    wait_gone(&mounts[1].join("mistake.txt"));
    wait_gone(&mounts[0].join("mistake.txt"));
}

#[test]
fn a_conflict_shows_the_same_markers_everywhere_and_its_resolution_propagates() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(3);
    std::fs::write(mounts[0].join("plan.md"), "step one\nstep two\n").unwrap();
    wait_content(&mounts[2].join("plan.md"), "step one\nstep two\n");
    env.ok(&["sync"]);
    // Two mounts change the same line while the daemon is down: a true conflict.
    let backings: Vec<PathBuf> = mounts.iter().map(|m| env.files_of(m)).collect();
    env.kill_daemon();
    std::fs::write(backings[0].join("plan.md"), "step one\nstep 2 (from A)\n").unwrap();
    std::fs::write(backings[1].join("plan.md"), "step one\nstep II (from B)\n").unwrap();
    env.ok(&["sync"]);

    let contents: Vec<String> = mounts
        .iter()
        .map(|m| read(&m.join("plan.md")).unwrap())
        .collect();
    assert!(contents[0].contains("<<<<<<<"), "{}", contents[0]);
    assert!(contents[0].contains("step 2 (from A)") && contents[0].contains("step II (from B)"));
    assert!(
        contents.iter().all(|c| c == &contents[0]),
        "mounts differ: {contents:?}"
    );
    let status = env.json(&["status", "--json"]);
    assert_eq!(
        status["repos"][0]["conflicts"],
        serde_json::json!(["plan.md"])
    );

    std::fs::write(mounts[1].join("plan.md"), "step one\nstep two, agreed\n").unwrap();
    for m in &mounts {
        wait_content(&m.join("plan.md"), "step one\nstep two, agreed\n");
    }
    env.ok(&["sync"]);
    let status = env.json(&["status", "--json"]);
    assert_eq!(status["repos"][0]["conflicts"], serde_json::json!([]));
}

/// One edit of the randomized test: write `token` to `file`, or delete it.
#[derive(Clone)]
struct Op {
    file: String,
    delete: bool,
    token: String,
}

#[test]
fn random_concurrent_edits_converge_and_lose_nothing() {
    let seed: u64 = std::env::var("JJFS_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234);
    eprintln!("seed {seed} (set JJFS_TEST_SEED to reproduce)");
    let mut rng = SmallRng::seed_from_u64(seed);
    let env = TestEnv::new();
    let n = rng.gen_range(2..=5);
    let mounts = env.with_mounts(n);
    let files: Vec<String> = (0..6).map(|i| format!("shared-{i}.txt")).collect();
    for round in 0..4 {
        // Each mount makes a few edits at the same time as the others.
        let plans: Vec<Vec<Op>> = (0..mounts.len())
            .map(|m| {
                (0..rng.gen_range(1..4))
                    .map(|k| Op {
                        file: files[rng.gen_range(0..files.len())].clone(),
                        delete: rng.gen_bool(0.15),
                        token: format!("r{round}-m{m}-k{k}-{}", rng.r#gen::<u32>()),
                    })
                    .collect()
            })
            .collect();
        std::thread::scope(|scope| {
            for (mount, ops) in mounts.iter().zip(&plans) {
                scope.spawn(move || {
                    for op in ops {
                        let path = mount.join(&op.file);
                        if op.delete {
                            let _ = std::fs::remove_file(&path);
                        } else {
                            std::fs::write(&path, format!("{}\n", op.token)).unwrap();
                        }
                    }
                });
            }
        });
        env.ok(&["sync"]);
        env.ok(&["sync"]);
        let trees: Vec<_> = mounts.iter().map(|m| snapshot_tree(m)).collect();
        for (i, tree) in trees.iter().enumerate() {
            assert_eq!(
                tree, &trees[0],
                "round {round}: mount {i} differs from mount 0 (seed {seed})"
            );
        }
        // The last write of each mount to each file is in the result, plainly or inside
        // conflict markers, unless that mount itself deleted the file afterwards.
        for ops in &plans {
            let mut last: std::collections::BTreeMap<&str, &Op> = Default::default();
            for op in ops {
                last.insert(&op.file, op);
            }
            for (file, op) in last {
                if op.delete {
                    continue;
                }
                let content = trees[0]
                    .get(file)
                    .map(|b| String::from_utf8_lossy(b).into_owned());
                assert!(
                    content.as_deref().is_some_and(|c| c.contains(&op.token)),
                    "round {round}: write {} to {file} is lost; the file holds {content:?} (seed {seed})",
                    op.token
                );
            }
        }
        // Settle the round: conflicted files get a clean version in one mount.
        for (file, content) in &trees[0] {
            if String::from_utf8_lossy(content).contains("<<<<<<<") {
                std::fs::write(
                    mounts[0].join(file),
                    format!("resolved after round {round}\n"),
                )
                .unwrap();
            }
        }
        env.ok(&["sync"]);
        let trees: Vec<_> = mounts.iter().map(|m| snapshot_tree(m)).collect();
        assert!(
            trees.iter().all(|t| t == &trees[0]),
            "round {round}: not settled (seed {seed})"
        );
    }
}

#[test]
fn killing_the_daemon_in_a_burst_loses_no_acknowledged_write() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(2);
    let writer_mount = mounts[0].clone();
    let acknowledged = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut ok = Vec::new();
            for i in 0..2000 {
                let path = writer_mount.join(format!("burst-{i:04}.txt"));
                let result = std::fs::File::create(&path).and_then(|mut f| {
                    f.write_all(format!("write {i}\n").as_bytes())?;
                    f.flush()
                });
                match result {
                    Ok(()) => ok.push(i),
                    Err(_) => break,
                }
            }
            ok
        });
        // Kill it once the burst is well under way.
        wait_for("the burst to start", || {
            std::fs::read_dir(env.files_of(&mounts[1]))
                .map(|d| d.count() > 20)
                .unwrap_or(false)
                || writer.is_finished()
        });
        env.kill_daemon();
        writer.join().unwrap()
    });
    assert!(!acknowledged.is_empty());
    env.ok(&["sync"]); // restarts the daemon, remounts, rescans
    for m in &mounts {
        for i in &acknowledged {
            let path = m.join(format!("burst-{i:04}.txt"));
            assert_eq!(
                read(&path).as_deref(),
                Some(format!("write {i}\n").as_str()),
                "{} lost after the crash ({} writes acknowledged)",
                path.display(),
                acknowledged.len()
            );
        }
    }
}

#[test]
fn a_writer_holding_a_file_open_across_syncs_loses_nothing() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(2);
    std::fs::write(mounts[0].join("log.txt"), "").unwrap();
    wait_content(&mounts[1].join("log.txt"), "");
    let mut held = std::fs::OpenOptions::new()
        .append(true)
        .open(mounts[0].join("log.txt"))
        .unwrap();
    for i in 0..10 {
        writeln!(held, "held line {i}").unwrap();
        held.flush().unwrap();
        // Meanwhile the other mount keeps editing the same file.
        std::fs::write(
            mounts[1].join("log.txt"),
            format!("other mount, version {i}\n"),
        )
        .unwrap();
        env.ok(&["sync"]);
    }
    drop(held);
    env.ok(&["sync"]);
    env.ok(&["sync"]);
    let finals: Vec<String> = mounts
        .iter()
        .map(|m| read(&m.join("log.txt")).unwrap())
        .collect();
    assert_eq!(finals[0], finals[1], "mounts differ");
    for i in 0..10 {
        assert!(
            finals[0].contains(&format!("held line {i}")),
            "held line {i} lost:\n{}",
            finals[0]
        );
    }
    assert!(
        finals[0].contains("other mount, version 9"),
        "{}",
        finals[0]
    );
}

#[test]
fn nothing_loops_when_nobody_writes() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(3);
    for (i, m) in mounts.iter().enumerate() {
        std::fs::write(m.join(format!("f{i}.txt")), "x\n").unwrap();
    }
    for m in &mounts {
        for i in 0..3 {
            wait_content(&m.join(format!("f{i}.txt")), "x\n");
        }
    }
    env.ok(&["sync"]);
    let settled = env.trunk_commits(&mounts[0]);
    // A loop would add commits within a few debounce periods; watch well past that.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert_eq!(
            env.trunk_commits(&mounts[0]),
            settled,
            "commits keep appearing"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn a_broken_workspace_does_not_stop_the_others() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(3);
    let broken = env.workspace_of(&mounts[2]);
    std::fs::write(
        broken.join(".jj/working_copy/tree_state"),
        b"not a tree state",
    )
    .unwrap();
    std::fs::write(mounts[0].join("after.txt"), "still syncing\n").unwrap();
    wait_content(&mounts[1].join("after.txt"), "still syncing\n");
    wait_for("the broken mount to show as unhealthy", || {
        env.list()
            .iter()
            .any(|m| m["path"] == mounts[2].to_str().unwrap() && m["health"] == "unhealthy")
    });
    let stderr = env.fails(&["sync"]);
    assert!(stderr.contains(mounts[2].to_str().unwrap()), "{stderr}");
}

#[test]
fn edits_made_while_the_daemon_was_down_propagate_after_restart() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(2);
    for name in ["keep.txt", "edit.txt", "remove.txt"] {
        std::fs::write(mounts[0].join(name), "before\n").unwrap();
    }
    std::fs::create_dir(mounts[0].join("dir")).unwrap();
    std::fs::write(mounts[0].join("dir/inside.txt"), "before\n").unwrap();
    env.ok(&["sync"]);
    wait_content(&mounts[1].join("dir/inside.txt"), "before\n");
    let backing = env.files_of(&mounts[0]);
    env.ok(&["stop"]);
    std::fs::write(backing.join("edit.txt"), "edited while down\n").unwrap();
    std::fs::remove_file(backing.join("remove.txt")).unwrap();
    std::fs::remove_dir_all(backing.join("dir")).unwrap();
    std::fs::write(backing.join("new.txt"), "added while down\n").unwrap();
    env.ok(&["sync"]); // starts the daemon, which rescans everything
    wait_content(&mounts[1].join("edit.txt"), "edited while down\n");
    wait_content(&mounts[1].join("new.txt"), "added while down\n");
    wait_gone(&mounts[1].join("remove.txt"));
    wait_gone(&mounts[1].join("dir"));
    assert_eq!(
        read(&mounts[1].join("keep.txt")).as_deref(),
        Some("before\n")
    );
    // The recovery is told in human terms in the recent activity.
    let verbose = env.ok(&["status", "--verbose"]);
    assert!(verbose.contains("recent activity:"), "{verbose}");
    assert!(
        verbose.contains("made while jjfsd was not running"),
        "{verbose}"
    );
}

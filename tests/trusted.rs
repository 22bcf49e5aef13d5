//! Sync that tools can trust: coherent views right after `jjfs sync`, file watchers in one
//! mount told about changes made in another, files of any size and name, ignores and editor
//! temp files kept local, editor saves as one change, bursts as a few commits, and racing
//! writers that lose nothing.

mod common;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{TestEnv, read, snapshot_tree, wait_content, wait_for, wait_gone};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

#[test]
fn reads_right_after_sync_see_no_stale_byte_size_or_name() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(2);
    let (a, b) = (&mounts[0], &mounts[1]);
    for round in 0..1000 {
        match round % 4 {
            // Same size: a kernel cache keyed on size would miss it.
            0 => std::fs::write(a.join("same-size.txt"), format!("round {round:06}\n")).unwrap(),
            // New size.
            1 => std::fs::write(a.join("grows.txt"), "x".repeat(round)).unwrap(),
            // A new name, and the previous one gone.
            2 => {
                std::fs::write(a.join(format!("name-{round}.txt")), "here\n").unwrap();
                if round >= 4 {
                    let _ = std::fs::remove_file(a.join(format!("name-{}.txt", round - 4)));
                }
            }
            // A rename.
            _ => {
                let from = a.join(format!("name-{}.txt", round - 1));
                std::fs::rename(&from, a.join(format!("moved-{round}.txt"))).unwrap();
            }
        }
        env.ok(&["sync"]);
        match round % 4 {
            0 => assert_eq!(
                read(&b.join("same-size.txt")).as_deref(),
                Some(format!("round {round:06}\n").as_str()),
                "round {round}: stale content"
            ),
            1 => {
                let meta = std::fs::metadata(b.join("grows.txt")).unwrap();
                assert_eq!(meta.len(), round as u64, "round {round}: stale size");
                assert_eq!(read(&b.join("grows.txt")).unwrap().len(), round);
            }
            2 => {
                assert!(
                    b.join(format!("name-{round}.txt")).exists(),
                    "round {round}: new name missing"
                );
                if round >= 4 {
                    assert!(
                        std::fs::symlink_metadata(b.join(format!("name-{}.txt", round - 4)))
                            .is_err(),
                        "round {round}: a deleted name still stats"
                    );
                }
            }
            _ => {
                assert!(
                    b.join(format!("moved-{round}.txt")).exists(),
                    "round {round}: rename missing"
                );
                assert!(
                    std::fs::symlink_metadata(b.join(format!("name-{}.txt", round - 1))).is_err(),
                    "round {round}: the renamed file's old name still stats"
                );
            }
        }
    }
}

/// Collects inotify events on one directory of a mount.
struct Watch {
    inotify: Inotify,
    events: Vec<(String, AddWatchFlags)>,
}

impl Watch {
    fn new(dir: &Path) -> Self {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK).unwrap();
        inotify
            .add_watch(dir, AddWatchFlags::IN_ALL_EVENTS)
            .unwrap();
        Self {
            inotify,
            events: Vec::new(),
        }
    }

    /// Waits until an event with `flag` arrives for `name`.
    #[track_caller]
    fn expect(&mut self, name: &str, flag: AddWatchFlags) {
        let deadline = Instant::now() + common::DEADLINE;
        loop {
            if self
                .events
                .iter()
                .any(|(n, f)| n == name && f.contains(flag))
            {
                return;
            }
            if let Ok(events) = self.inotify.read_events() {
                for e in events {
                    let n = e
                        .name
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    self.events.push((n, e.mask));
                }
                continue;
            }
            assert!(
                Instant::now() < deadline,
                "no {flag:?} for {name}; events so far: {:?}",
                self.events
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[test]
fn watchers_in_one_mount_hear_changes_made_in_another() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(2);
    let (a, b) = (&mounts[0], &mounts[1]);
    let backing_a = env.files_of(a);
    let mut watch = Watch::new(b);
    // A direct mount gets a new version as a rename onto its name, and loses a file by a
    // rename away (to a temporary name, deleted then).
    let (created, modified, deleted) = if env.is_direct() {
        (
            AddWatchFlags::IN_MOVED_TO,
            AddWatchFlags::IN_MOVED_TO,
            AddWatchFlags::IN_MOVED_FROM,
        )
    } else {
        (
            AddWatchFlags::IN_CREATE,
            AddWatchFlags::IN_MODIFY,
            AddWatchFlags::IN_DELETE,
        )
    };

    std::fs::write(a.join("w.txt"), "one\n").unwrap();
    watch.expect("w.txt", created);
    watch.expect("w.txt", AddWatchFlags::IN_CLOSE_WRITE);
    wait_content(&b.join("w.txt"), "one\n");

    watch.events.clear();
    std::fs::write(a.join("w.txt"), "two\n").unwrap();
    watch.expect("w.txt", modified);
    wait_content(&b.join("w.txt"), "two\n");

    watch.events.clear();
    std::fs::rename(a.join("w.txt"), a.join("renamed.txt")).unwrap();
    watch.expect("w.txt", AddWatchFlags::IN_MOVED_FROM);
    watch.expect("renamed.txt", AddWatchFlags::IN_MOVED_TO);

    watch.events.clear();
    std::fs::remove_file(a.join("renamed.txt")).unwrap();
    watch.expect("renamed.txt", deleted);

    // Edits made in A's backing directory (by hand, or by the jj CLI) too.
    watch.events.clear();
    std::fs::write(backing_a.join("direct.txt"), "direct\n").unwrap();
    watch.expect("direct.txt", created);
    watch.expect("direct.txt", AddWatchFlags::IN_CLOSE_WRITE);
    wait_content(&b.join("direct.txt"), "direct\n");
    watch.events.clear();
    std::fs::write(backing_a.join("direct.txt"), "direct, again\n").unwrap();
    watch.expect("direct.txt", modified);
    wait_content(&b.join("direct.txt"), "direct, again\n");
}

#[test]
fn files_of_any_size_and_name_sync_and_unsyncable_ones_are_reported() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(2);
    let (a, b) = (&mounts[0], &mounts[1]);

    let big: Vec<u8> = (0..20u32 << 20)
        .map(|i| (i.wrapping_mul(2_246_822_519) >> 11) as u8)
        .collect();
    std::fs::write(a.join("big.bin"), &big).unwrap();
    std::fs::create_dir(a.join("notes")).unwrap();
    std::fs::write(a.join("notes/café ☕ 日本.md"), "unicode\n").unwrap();
    nix::unistd::mkfifo(
        &a.join("a-pipe"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let bad_name = OsStr::from_bytes(b"bad-\xff-name.txt");
    std::fs::write(a.join(bad_name), "not utf-8\n").unwrap();
    std::fs::write(a.join("after.txt"), "still syncs\n").unwrap();

    wait_content(&b.join("after.txt"), "still syncs\n");
    wait_content(&b.join("notes/café ☕ 日本.md"), "unicode\n");
    wait_for("the 20 MiB file to arrive intact", || {
        std::fs::read(b.join("big.bin")).is_ok_and(|got| got == big)
    });
    env.ok(&["sync"]);
    assert!(
        std::fs::symlink_metadata(b.join("a-pipe")).is_err(),
        "a FIFO was copied"
    );
    assert!(std::fs::symlink_metadata(b.join(bad_name)).is_err());

    let status = env.json(&["status", "--json"]);
    let skipped: Vec<String> = status["repos"][0]["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap().to_owned())
        .collect();
    assert!(skipped.iter().any(|p| p == "a-pipe"), "{skipped:?}");
    assert!(skipped.iter().any(|p| p.starts_with("bad-")), "{skipped:?}");
    let log = std::fs::read_to_string(env.home().join("sync.log")).unwrap();
    assert!(log.contains("a-pipe"), "sync.log does not name the FIFO");
}

#[test]
fn ignored_and_editor_temp_files_stay_where_they_were_written() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(2);
    let (a, b) = (&mounts[0], &mounts[1]);
    std::fs::write(a.join(".gitignore"), "*.log\nbuild/\n").unwrap();
    wait_content(&b.join(".gitignore"), "*.log\nbuild/\n");
    env.ok(&["sync"]);

    let local = [
        "debug.log",
        "build/out.o",
        ".note.md.swp",
        "note.md~",
        "4913",
        ".#note.md",
        "#note.md#",
        "note.md___jb_tmp___",
        ".DS_Store",
    ];
    std::fs::create_dir(a.join("build")).unwrap();
    for name in local {
        std::fs::write(a.join(name), "local only\n").unwrap();
    }
    std::fs::write(a.join("note.md"), "shared\n").unwrap();
    wait_content(&b.join("note.md"), "shared\n");
    env.ok(&["sync"]);
    for name in local {
        assert!(
            std::fs::symlink_metadata(b.join(name)).is_err(),
            "{name} reached the other mount"
        );
        assert!(a.join(name).exists(), "{name} vanished from its own mount");
    }
    let tracked = env.jj(
        &env.history_dir(a),
        &["--ignore-working-copy", "file", "list", "-r", "main"],
    );
    for name in local {
        assert!(
            !tracked.lines().any(|l| l == name),
            "{name} is in the history"
        );
    }
    // The jj CLI in a backing workspace agrees: its status shows none of them.
    if !env.is_direct() {
        let st = env.jj(&env.workspace_of(a), &["st"]);
        for name in local {
            assert!(!st.contains(name), "jj st lists {name}:\n{st}");
        }
    }

    // The list can be changed per repo; it takes effect at once.
    env.ok(&["config", "ignore", "*.tmp"]);
    std::fs::write(a.join("scratch.tmp"), "x").unwrap();
    std::fs::write(a.join("now-shared~"), "x").unwrap();
    wait_content(&b.join("now-shared~"), "x");
    env.ok(&["sync"]);
    assert!(!b.join("scratch.tmp").exists());
}

fn saves_are_one_change(env: &TestEnv, a: &Path, b: &Path, name: &str, save: impl Fn(&Path, &str)) {
    let before = env.trunk_commits(a);
    let content = format!("saved by {name}\n");
    save(&a.join("note.md"), &content);
    wait_content(&b.join("note.md"), &content);
    env.ok(&["sync"]);
    let tree_a: BTreeSet<String> = snapshot_tree(a).into_keys().collect();
    let tree_b: BTreeSet<String> = snapshot_tree(b).into_keys().collect();
    assert_eq!(tree_a, tree_b, "{name}: the mounts differ");
    assert_eq!(
        tree_b
            .iter()
            .filter(|p| !p.starts_with("note.md") || p.len() > 7)
            .count(),
        0,
        "{name}: leftovers {tree_b:?}"
    );
    assert_eq!(env.trunk_commits(a), before + 1, "{name}: not one change");
}

#[test]
fn editor_saves_arrive_as_one_change_without_leftovers() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(2);
    let (a, b) = (&mounts[0], &mounts[1]);
    std::fs::write(a.join("note.md"), "first\n").unwrap();
    wait_content(&b.join("note.md"), "first\n");
    env.ok(&["sync"]);

    // Write a temp file, then rename it over the original (most editors, agents' tools).
    saves_are_one_change(&env, a, b, "write-temp-then-rename", |path, content| {
        let temp = path.with_file_name(".note.md.tmp-4242");
        let mut f = std::fs::File::create(&temp).unwrap();
        f.write_all(content.as_bytes()).unwrap();
        f.sync_all().unwrap();
        drop(f);
        std::fs::rename(&temp, path).unwrap();
    });
    // Vim: probe file 4913, move the original to a backup, write anew, remove the backup.
    saves_are_one_change(&env, a, b, "backup-then-rename", |path, content| {
        let probe = path.with_file_name("4913");
        std::fs::write(&probe, "").unwrap();
        std::fs::remove_file(&probe).unwrap();
        let backup = path.with_file_name("note.md~");
        std::fs::rename(path, &backup).unwrap();
        std::fs::write(path, content).unwrap();
        std::fs::remove_file(&backup).unwrap();
    });
    // Truncate and write in place (nano, echo >).
    saves_are_one_change(&env, a, b, "truncate-then-write", |path, content| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .unwrap();
        f.write_all(content.as_bytes()).unwrap();
    });
}

#[test]
fn a_burst_of_files_converges_as_a_few_commits() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(3);
    env.ok(&["sync"]);
    let before = env.trunk_commits(&mounts[0]);
    for d in 0..10 {
        std::fs::create_dir(mounts[0].join(format!("gen-{d}"))).unwrap();
        for f in 0..100 {
            std::fs::write(
                mounts[0].join(format!("gen-{d}/file-{f}.txt")),
                format!("generated {d}/{f}\n"),
            )
            .unwrap();
        }
    }
    for m in &mounts[1..] {
        wait_for("the burst to reach every mount", || {
            (0..10).all(|d| {
                std::fs::read_dir(m.join(format!("gen-{d}"))).is_ok_and(|dir| dir.count() == 100)
            })
        });
    }
    env.ok(&["sync"]);
    for m in &mounts[1..] {
        assert_eq!(snapshot_tree(m), snapshot_tree(&mounts[0]));
    }
    let commits = env.trunk_commits(&mounts[0]) - before;
    assert!(commits <= 10, "1,000 files made {commits} commits");
}

#[test]
fn racing_writers_never_lose_their_last_write() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(2);
    std::fs::write(mounts[0].join("contested.txt"), "start\n").unwrap();
    wait_content(&mounts[1].join("contested.txt"), "start\n");
    let last: Vec<String> = std::thread::scope(|scope| {
        let writers: Vec<_> = mounts
            .iter()
            .enumerate()
            .map(|(i, m)| {
                scope.spawn(move || {
                    let until = Instant::now() + Duration::from_secs(3);
                    let mut n = 0;
                    let mut last = String::new();
                    while Instant::now() < until {
                        last = format!("writer {i} write {n}\n");
                        std::fs::write(m.join("contested.txt"), &last).unwrap();
                        n += 1;
                        std::thread::sleep(Duration::from_millis(7 + 5 * i as u64));
                    }
                    last
                })
            })
            .collect();
        writers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    env.ok(&["sync"]);
    env.ok(&["sync"]);
    let finals: Vec<String> = mounts
        .iter()
        .map(|m| read(&m.join("contested.txt")).unwrap())
        .collect();
    assert_eq!(finals[0], finals[1], "the mounts differ");
    // The later of the two last writes must be there; the other one too unless it was
    // synced before the later write replaced it (a plain overwrite, not a loss).
    assert!(
        last.iter().any(|w| finals[0].contains(w.trim_end())),
        "neither last write survived: {last:?} vs {}",
        finals[0]
    );
    wait_gone(&mounts[0].join("never-created"));
}

/// The kernel keeps a mount's names and attributes for a day; an edit made directly in the
/// backing directory under them must still show through that mount once `jjfs sync` returns.
#[test]
fn a_backing_edit_under_warm_kernel_caches_shows_after_sync() {
    let env = TestEnv::new();
    if env.fuse_only("a direct mount has no backing directory nor kernel caches") {
        return;
    }
    let mounts = env.with_mounts(1);
    let a = &mounts[0];
    std::fs::write(a.join("grows.txt"), "short\n").unwrap();
    std::fs::write(a.join("goes.txt"), "here\n").unwrap();
    std::fs::create_dir(a.join("dir")).unwrap();
    env.ok(&["sync"]);
    // Warm the kernel's caches of every name and attribute involved.
    for _ in 0..3 {
        assert_eq!(std::fs::metadata(a.join("grows.txt")).unwrap().len(), 6);
        assert!(a.join("goes.txt").exists());
        assert!(std::fs::read_dir(a.join("dir")).unwrap().next().is_none());
    }
    let backing = env.workspace_of(a);
    std::fs::write(backing.join("grows.txt"), "much longer now\n").unwrap();
    std::fs::remove_file(backing.join("goes.txt")).unwrap();
    std::fs::write(backing.join("dir/new.txt"), "new\n").unwrap();
    env.ok(&["sync"]);
    let meta = std::fs::metadata(a.join("grows.txt")).unwrap();
    assert_eq!(meta.len(), 16, "stale size through the mount");
    assert_eq!(
        read(&a.join("grows.txt")).as_deref(),
        Some("much longer now\n")
    );
    assert!(
        std::fs::symlink_metadata(a.join("goes.txt")).is_err(),
        "a name removed in the backing directory still stats through the mount"
    );
    assert_eq!(read(&a.join("dir/new.txt")).as_deref(), Some("new\n"));
}

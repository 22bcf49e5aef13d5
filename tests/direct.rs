//! Direct mounts (plain folders jjfs watches and writes, no FUSE): a folder that vanished or
//! was replaced is never read as "everything was deleted"; a writer racing the engine on the
//! same file loses nothing; an editor's atomic save, a burst of a thousand files, and a
//! daemon killed with -9 all sync; and `auto` falls back to direct for a user who cannot
//! open /dev/fuse.

mod common;

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{TestEnv, read, snapshot_tree, wait_content, wait_for, wait_gone};

fn direct_env() -> TestEnv {
    TestEnv::new().with_mode("direct")
}

fn mount_info(env: &TestEnv, path: &Path) -> serde_json::Value {
    env.list()
        .into_iter()
        .find(|m| m["path"] == path.to_str().unwrap())
        .unwrap_or_else(|| panic!("{} is not listed", path.display()))
}

fn is_unhealthy(env: &TestEnv, path: &Path, says: &str) -> bool {
    let m = mount_info(env, path);
    m["health"] == "unhealthy" && m["reason"].as_str().is_some_and(|r| r.contains(says))
}

/// The engine's temporary files under `dir`.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    walk(dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".jjfs-"))
        })
        .collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            found.extend(walk(&path));
        }
        found.push(path);
    }
    found
}

/// Waits until trunk has more than `than` commits (a step ran and committed).
fn wait_trunk_past(env: &TestEnv, mount: &Path, than: usize) {
    wait_for("a new commit on trunk", || env.trunk_commits(mount) > than);
}

#[test]
fn direct_mounts_are_plain_folders_with_their_state_elsewhere() {
    let env = direct_env();
    let mounts = env.with_mounts(2);
    std::fs::write(mounts[0].join("a.md"), "from a\n").unwrap();
    wait_content(&mounts[1].join("a.md"), "from a\n");
    assert!(env.mounts().is_empty(), "no FUSE mount: {:?}", env.mounts());
    for m in &mounts {
        let info = mount_info(&env, m);
        assert_eq!(info["mode"], "direct");
        let state = PathBuf::from(info["workspace"].as_str().unwrap());
        assert!(state.starts_with(env.home()), "{}", state.display());
        assert!(state.join(".jj").is_dir());
        assert!(!m.join(".jj").exists(), "no jj state inside the folder");
    }
    let status = env.json(&["status", "--json"]);
    assert!(
        status.to_string().contains("\"mode\":\"direct\""),
        "{status}"
    );
    // The jj CLI refuses the state folder rather than taking its emptiness for deletions.
    let ws = mount_info(&env, &mounts[0])["workspace"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = Command::new(common::jj_binary())
        .arg("st")
        .current_dir(&ws)
        .env("JJ_CONFIG", "/dev/null")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "jj st ran in a direct mount's state");
    assert!(stderr.contains("jjfs-direct"), "{stderr}");
    // A non-empty folder is refused unless adopted; close leaves the files.
    let other = env.work().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("mine.txt"), "already here\n").unwrap();
    let err = env.fails(&[
        "open",
        "default",
        other.to_str().unwrap(),
        "--mode",
        "direct",
    ]);
    assert!(err.contains("--adopt"), "{err}");
    env.ok(&[
        "open",
        "default",
        other.to_str().unwrap(),
        "--mode",
        "direct",
        "--adopt",
    ]);
    wait_content(&mounts[0].join("mine.txt"), "already here\n");
    wait_content(&other.join("a.md"), "from a\n");
    env.ok(&["close", other.to_str().unwrap()]);
    assert_eq!(
        read(&other.join("mine.txt")).as_deref(),
        Some("already here\n")
    );
    assert_eq!(read(&other.join("a.md")).as_deref(), Some("from a\n"));
    // Opened again with --adopt: only what changed there since it was closed counts, merged
    // with what the repo did meanwhile (a.md, deleted in the repo, is not brought back).
    std::fs::remove_file(mounts[0].join("a.md")).unwrap();
    std::fs::write(other.join("mine.txt"), "edited while closed\n").unwrap();
    env.ok(&["sync"]);
    env.ok(&[
        "open",
        "default",
        other.to_str().unwrap(),
        "--mode",
        "direct",
        "--adopt",
    ]);
    wait_content(&mounts[1].join("mine.txt"), "edited while closed\n");
    wait_gone(&other.join("a.md"));
    env.ok(&["sync"]);
    assert!(!mounts[1].join("a.md").exists(), "a deleted file came back");
}

#[test]
fn a_vanished_replaced_or_emptied_folder_propagates_no_deletion() {
    let env = direct_env();
    let mounts = env.with_mounts(2);
    let (a, b) = (&mounts[0], &mounts[1]);
    std::fs::create_dir(a.join("dir")).unwrap();
    for name in ["one.md", "two.md", "dir/three.md"] {
        std::fs::write(a.join(name), format!("{name}\n")).unwrap();
    }
    env.ok(&["sync"]);
    wait_content(&b.join("dir/three.md"), "dir/three.md\n");
    let all = snapshot_tree(b);

    // Gone: moved away (as an unmounted volume would be).
    let away = env.work().join("away");
    std::fs::rename(a, &away).unwrap();
    wait_for("the gone folder to be unhealthy", || {
        is_unhealthy(&env, a, "is gone")
    });
    // A step runs (b's change is committed), and still nothing is deleted anywhere.
    let commits = env.trunk_commits(b);
    std::fs::write(b.join("during.md"), "while a was gone\n").unwrap();
    wait_trunk_past(&env, b, commits);
    assert!(!a.exists(), "nothing was written at the gone folder's path");

    // Replaced: another (empty) directory at the path.
    std::fs::create_dir(a).unwrap();
    wait_for("the replaced folder to be unhealthy", || {
        is_unhealthy(&env, a, "not the folder that was opened")
    });
    let commits = env.trunk_commits(b);
    std::fs::write(b.join("replaced.md"), "while a was replaced\n").unwrap();
    wait_trunk_past(&env, b, commits);
    assert_eq!(
        std::fs::read_dir(a).unwrap().count(),
        0,
        "nothing written there"
    );
    let now = snapshot_tree(b);
    for (name, content) in &all {
        assert_eq!(
            now.get(name),
            Some(content),
            "{name} changed in the other mount"
        );
    }
    // Back: the folder syncs again, and what changed meanwhile arrives.
    std::fs::remove_dir(a).unwrap();
    std::fs::rename(&away, a).unwrap();
    wait_content(&a.join("replaced.md"), "while a was replaced\n");
    wait_content(&a.join("during.md"), "while a was gone\n");
    wait_for("the folder to be healthy again", || {
        mount_info(&env, a)["health"] == "healthy"
    });

    // Emptied with nothing reported (as a volume gone from under it looks; here: emptied
    // while the daemon was down).
    env.ok(&["sync"]);
    env.kill_daemon();
    for entry in std::fs::read_dir(a).unwrap().flatten() {
        if entry.file_type().unwrap().is_dir() {
            std::fs::remove_dir_all(entry.path()).unwrap();
        } else {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    env.ok(&["status"]); // starts the daemon again
    wait_for("the emptied folder to be unhealthy", || {
        is_unhealthy(&env, a, "is empty")
    });
    let commits = env.trunk_commits(b);
    std::fs::write(b.join("after-empty.md"), "still here\n").unwrap();
    wait_trunk_past(&env, b, commits);
    for name in ["one.md", "two.md", "dir/three.md", "during.md"] {
        assert!(
            b.join(name).exists(),
            "{name} was deleted from the other mount"
        );
    }
    assert!(env.fails(&["sync"]).contains(a.to_str().unwrap()));
    // Deleting files in the folder while it is watched is a deletion, also of the last one.
    let solo = env.open("default", "solo");
    wait_content(&solo.join("one.md"), "one.md\n");
    for name in snapshot_tree(&solo).keys() {
        let path = solo.join(name);
        if path.is_dir() {
            std::fs::remove_dir_all(&path).unwrap();
        } else if path.exists() {
            std::fs::remove_file(&path).unwrap();
        }
    }
    wait_gone(&b.join("one.md"));
    wait_gone(&b.join("during.md"));
    assert_eq!(mount_info(&env, &solo)["health"], "healthy");
}

#[test]
fn a_writer_racing_the_engine_on_the_same_file_loses_nothing() {
    let env = direct_env();
    let mounts = env.with_mounts(2);
    std::fs::write(mounts[0].join("race.md"), "start\n").unwrap();
    env.ok(&["sync"]);
    wait_content(&mounts[1].join("race.md"), "start\n");
    const WRITES: usize = 150;
    let writers: Vec<_> = mounts
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let file = m.join("race.md");
            std::thread::spawn(move || {
                for n in 0..WRITES {
                    std::fs::write(&file, format!("writer {i} version {n}\n")).unwrap();
                    std::thread::sleep(Duration::from_millis(3 + i as u64 * 2));
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    env.ok(&["sync"]);
    wait_for("both mounts to agree", || {
        read(&mounts[0].join("race.md")) == read(&mounts[1].join("race.md"))
    });
    // Each writer's last version reached the history (as the file, or one side of a
    // conflict): no write of the engine ever replaced it unseen.
    let history = env.jj(
        &env.history_dir(&mounts[0]),
        &[
            "--ignore-working-copy",
            "log",
            "--no-graph",
            "-r",
            "::main",
            "--git",
            "-T",
            "''",
        ],
    );
    for i in 0..2 {
        let last = format!("writer {i} version {}", WRITES - 1);
        assert!(history.contains(&last), "{last} was lost:\n{history}");
    }
    for m in &mounts {
        assert!(temp_files(m).is_empty(), "{:?}", temp_files(m));
    }
}

#[test]
fn an_editors_atomic_save_propagates_and_is_not_rewritten() {
    let env = direct_env();
    let mounts = env.with_mounts(2);
    let (a, b) = (&mounts[0], &mounts[1]);
    std::fs::write(a.join("note.md"), "draft\n").unwrap();
    wait_content(&b.join("note.md"), "draft\n");
    for n in 0..5 {
        // Like vim with `backupcopy=no`: the old file becomes a backup, the new one is
        // written beside it and renamed in place, and the backup goes.
        let content = format!("saved {n}\n");
        std::fs::rename(a.join("note.md"), a.join("note.md~")).unwrap();
        std::fs::write(a.join(".note.md.tmp"), &content).unwrap();
        std::fs::rename(a.join(".note.md.tmp"), a.join("note.md")).unwrap();
        std::fs::remove_file(a.join("note.md~")).unwrap();
        wait_content(&b.join("note.md"), &content);
    }
    let saved = std::fs::metadata(a.join("note.md")).unwrap().ino();
    env.ok(&["sync"]);
    assert_eq!(read(&a.join("note.md")).as_deref(), Some("saved 4\n"));
    assert_eq!(
        std::fs::metadata(a.join("note.md")).unwrap().ino(),
        saved,
        "the engine rewrote the file the editor saved (an echo taken for a change)"
    );
    for name in ["note.md~", ".note.md.tmp"] {
        assert!(!b.join(name).exists(), "{name} is left in the other mount");
    }
    // And the other way: the engine's own save into `a` is an update of one file.
    std::fs::write(b.join("note.md"), "from b\n").unwrap();
    wait_content(&a.join("note.md"), "from b\n");
    assert!(temp_files(a).is_empty(), "{:?}", temp_files(a));
}

#[test]
fn a_burst_of_a_thousand_files_arrives_whole() {
    let env = direct_env();
    let mounts = env.with_mounts(2);
    for d in 0..10 {
        std::fs::create_dir(mounts[0].join(format!("d{d}"))).unwrap();
        for f in 0..100 {
            std::fs::write(
                mounts[0].join(format!("d{d}/f{f}.txt")),
                format!("file {d}/{f}\n"),
            )
            .unwrap();
        }
    }
    wait_content(&mounts[1].join("d9/f99.txt"), "file 9/99\n");
    env.ok(&["sync"]);
    let (a, b) = (snapshot_tree(&mounts[0]), snapshot_tree(&mounts[1]));
    assert_eq!(a.len(), b.len());
    assert_eq!(a, b);
    assert!(a.len() >= 1000, "{} files", a.len());
    assert!(temp_files(&mounts[1]).is_empty());
}

#[test]
fn kill_9_and_restart_syncs_what_changed_meanwhile() {
    let env = direct_env();
    let mounts = env.with_mounts(2);
    let (a, b) = (&mounts[0], &mounts[1]);
    for name in ["keep.md", "edit.md", "remove.md"] {
        std::fs::write(a.join(name), "before\n").unwrap();
    }
    env.ok(&["sync"]);
    wait_content(&b.join("remove.md"), "before\n");
    env.kill_daemon();
    std::fs::write(a.join("edit.md"), "edited while down\n").unwrap();
    std::fs::remove_file(a.join("remove.md")).unwrap();
    std::fs::write(b.join("new.md"), "added in b while down\n").unwrap();
    // What a daemon killed in the middle of a write leaves behind.
    let leftover = a.join(".jjfs-999999-0.tmp");
    std::fs::write(&leftover, "half a file").unwrap();
    env.ok(&["sync"]); // starts the daemon, which rescans everything
    wait_content(&b.join("edit.md"), "edited while down\n");
    wait_gone(&b.join("remove.md"));
    wait_content(&a.join("new.md"), "added in b while down\n");
    wait_gone(&leftover);
    env.ok(&["sync"]);
    assert_eq!(snapshot_tree(a), snapshot_tree(b));
    assert_eq!(read(&a.join("keep.md")).as_deref(), Some("before\n"));
    for m in &mounts {
        assert_eq!(mount_info(&env, m)["health"], "healthy");
        assert_eq!(mount_info(&env, m)["mode"], "direct", "kept across restart");
    }
}

fn ok_as_nobody(env: &TestEnv, args: &[&str]) -> Output {
    let out = common::jjfs_as_nobody_without_fuse(&env.home(), &env.work(), args);
    assert!(
        out.status.success(),
        "jjfs {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn auto_falls_back_to_direct_for_a_user_who_cannot_open_dev_fuse() {
    // Mode left to the default (`auto`), whatever JJFS_TEST_MODE says.
    let env = TestEnv::new().with_mode("auto");
    let base = env.home().parent().unwrap().to_owned();
    for dir in [base.clone(), env.work()] {
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    }
    ok_as_nobody(&env, &["init"]);
    let mut notes = Vec::new();
    let mounts: Vec<PathBuf> = (0..2)
        .map(|i| {
            let path = env.work().join(format!("m{i}"));
            let out = ok_as_nobody(&env, &["open", "default", path.to_str().unwrap()]);
            notes.push(String::from_utf8_lossy(&out.stderr).into_owned());
            path
        })
        .collect();
    for note in &notes {
        let lines: Vec<&str> = note
            .lines()
            .filter(|l| l.contains("direct mount"))
            .collect();
        assert_eq!(lines.len(), 1, "one line says why: {note}");
        assert!(lines[0].contains("/dev/fuse"), "{note}");
    }
    let list: serde_json::Value =
        serde_json::from_slice(&ok_as_nobody(&env, &["list", "--json"]).stdout).unwrap();
    for m in list["mounts"].as_array().unwrap() {
        assert_eq!(m["mode"], "direct", "{list:#}");
        assert_eq!(m["health"], "healthy", "{list:#}");
    }
    assert!(env.mounts().is_empty(), "no FUSE mount: {:?}", env.mounts());
    // nobody's files sync between the two folders.
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
        ])
        .arg(r#"echo "by nobody" > "$1/hello.md""#)
        .arg("sh")
        .arg(&mounts[0])
        .status()
        .unwrap();
    assert!(out.success());
    wait_content(&mounts[1].join("hello.md"), "by nobody\n");
    assert_eq!(
        std::fs::metadata(mounts[1].join("hello.md")).unwrap().uid(),
        65534
    );
    ok_as_nobody(&env, &["stop"]);
}

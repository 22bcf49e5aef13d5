//! Trust under hostile and unusual trees (issue 14), as users and crafted inputs meet it: no
//! tree makes the root daemon touch anything outside a workspace, a bad commit on the remote
//! never wedges a repo, nested repositories are kept, permissions and owners travel, a
//! refused close changes nothing, a failed update keeps the old file, and no client, remote
//! or FIFO can grow the daemon without bound or block it.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{
    TestEnv, bare_repo, git, git_with_input, read, remote_file, wait_content, wait_for, wait_until,
};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// The repo's entry in `jjfs status --json`.
fn repo_status(env: &TestEnv, repo: &str) -> serde_json::Value {
    let status = env.json(&["status", "--json"]);
    status["repos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == repo)
        .unwrap_or_else(|| panic!("repo {repo} is not in status: {status}"))
        .clone()
}

/// Asserts every mount in `jjfs list` is healthy.
#[track_caller]
fn assert_all_healthy(env: &TestEnv) {
    for m in env.list() {
        assert_eq!(
            m["health"],
            "healthy",
            "mount {} is unhealthy: {}\nsync.log ends:\n{}",
            m["path"],
            m["reason"],
            env.log_tail(20)
        );
    }
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

/// Everything about a directory tree that an escape could change: for each entry (the root
/// too), its type and mode, owner, size, mtime, ctime, and content or link target.
fn fingerprint(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, path: &Path, out: &mut BTreeMap<String, String>) {
        let meta = std::fs::symlink_metadata(path).unwrap();
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        let body = if meta.is_symlink() {
            format!("-> {}", std::fs::read_link(path).unwrap().display())
        } else if meta.is_file() {
            String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned()
        } else {
            String::new()
        };
        out.insert(
            rel,
            format!(
                "mode {:o} uid {} gid {} size {} mtime {}.{} ctime {}.{} {body}",
                meta.mode(),
                meta.uid(),
                meta.gid(),
                meta.size(),
                meta.mtime(),
                meta.mtime_nsec(),
                meta.ctime(),
                meta.ctime_nsec()
            ),
        );
        if meta.is_dir() {
            for entry in std::fs::read_dir(path).unwrap() {
                walk(root, &entry.unwrap().path(), out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// A directory outside every mount, with a file and a folder, that nothing may change.
fn outside_dir(env: &TestEnv) -> PathBuf {
    let outside = env.work().join("outside");
    std::fs::create_dir_all(outside.join("folder")).unwrap();
    std::fs::write(outside.join("keep.txt"), "outside, never touched\n").unwrap();
    std::fs::write(outside.join("folder/inner.txt"), "also outside\n").unwrap();
    outside
}

#[track_caller]
fn assert_unchanged(what: &Path, before: &BTreeMap<String, String>) {
    let after = fingerprint(what);
    if &after != before {
        let changed: Vec<String> = after
            .iter()
            .filter(|(k, v)| before.get(*k) != Some(v))
            .map(|(k, v)| format!("{k}: {v}"))
            .chain(
                before
                    .keys()
                    .filter(|k| !after.contains_key(*k))
                    .map(|k| format!("{k}: removed")),
            )
            .collect();
        panic!(
            "{} was changed from inside a mount:\n{}",
            what.display(),
            changed.join("\n")
        );
    }
}

/// A child process killed (and reaped) when the guard drops.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ---------------------------------------------------------------------------------------
// No path ever leaves the workspace
// ---------------------------------------------------------------------------------------

/// `evil -> <outside>` is synced; then `swap` (run on a root holding A's files) replaces it by
/// a real folder `evil/sub/` holding a file moved there from `notes/`. B must follow without
/// the daemon ever creating, renaming or writing anything in the outside folder.
fn a_symlink_swapped_for_a_folder_stays_inside(through_backing: bool) {
    let env = TestEnv::new();
    let mounts = env.with_mounts(2);
    let (a, b) = (&mounts[0], &mounts[1]);
    let outside = outside_dir(&env);
    let before = fingerprint(&outside);

    std::os::unix::fs::symlink(&outside, a.join("evil")).unwrap();
    std::fs::create_dir(a.join("notes")).unwrap();
    std::fs::write(a.join("notes/moved.txt"), "moved into the new folder\n").unwrap();
    env.ok(&["sync"]);
    wait_content(&b.join("notes/moved.txt"), "moved into the new folder\n");
    assert_eq!(
        std::fs::read_link(b.join("evil")).ok().as_deref(),
        Some(outside.as_path()),
        "the symlink did not reach B as a symlink"
    );

    let swap = |root: &Path| {
        std::fs::remove_file(root.join("evil")).unwrap();
        std::fs::create_dir_all(root.join("evil/sub")).unwrap();
        std::fs::rename(
            root.join("notes/moved.txt"),
            root.join("evil/sub/moved.txt"),
        )
        .unwrap();
    };
    if through_backing {
        // With the daemon down the whole swap is one change when it comes back.
        let backing = env.workspace_of(a);
        env.kill_daemon();
        swap(&backing);
    } else {
        // Within one debounce window.
        swap(a);
    }
    env.ok(&["sync"]);

    assert_unchanged(&outside, &before);
    let evil = std::fs::symlink_metadata(b.join("evil")).unwrap();
    assert!(
        evil.is_dir(),
        "B's evil is not a real folder: {:?}",
        evil.file_type()
    );
    assert_eq!(
        read(&b.join("evil/sub/moved.txt")).as_deref(),
        Some("moved into the new folder\n")
    );
    assert!(std::fs::symlink_metadata(b.join("notes/moved.txt")).is_err());
    assert_all_healthy(&env);
}

#[test]
fn a_symlink_swapped_for_a_folder_through_the_mount_never_leads_outside() {
    a_symlink_swapped_for_a_folder_stays_inside(false);
}

#[test]
fn a_symlink_swapped_for_a_folder_while_the_daemon_was_down_never_leads_outside() {
    a_symlink_swapped_for_a_folder_stays_inside(true);
}

#[test]
fn a_folder_arriving_where_a_mount_has_a_symlink_is_not_followed() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(2);
    let (a, b) = (&mounts[0], &mounts[1]);
    let outside = outside_dir(&env);
    let before = fingerprint(&outside);
    std::fs::write(a.join("start.txt"), "start\n").unwrap();
    env.ok(&["sync"]);
    wait_content(&b.join("start.txt"), "start\n");

    // At the same time: B makes `door` a symlink out of the mount, A a folder holding a file.
    let (backing_a, backing_b) = (env.workspace_of(a), env.workspace_of(b));
    env.kill_daemon();
    std::os::unix::fs::symlink(&outside, backing_b.join("door")).unwrap();
    std::fs::create_dir(backing_a.join("door")).unwrap();
    std::fs::write(backing_a.join("door/planted.txt"), "planted\n").unwrap();
    env.ok(&["sync"]);
    env.ok(&["sync"]);

    assert_unchanged(&outside, &before);
    for m in &mounts {
        let door = std::fs::symlink_metadata(m.join("door")).unwrap();
        assert!(door.is_dir(), "{}/door is not a folder", m.display());
        assert_eq!(
            read(&m.join("door/planted.txt")).as_deref(),
            Some("planted\n")
        );
        // The other side is kept beside it (the folder keeps the name).
        assert_eq!(
            std::fs::read_link(m.join("door.jjfs-conflict"))
                .ok()
                .as_deref(),
            Some(outside.as_path()),
            "{}: the symlink side of the conflict is not kept as door.jjfs-conflict",
            m.display()
        );
    }
}

// ---------------------------------------------------------------------------------------
// A bad commit never wedges a repo
// ---------------------------------------------------------------------------------------

/// Writes a tree object holding exactly `entries` (mode, name, object id), sorted as git
/// sorts them, with `git hash-object --literally` so that no check of git's refuses a name.
fn raw_tree(repo: &Path, entries: &[(&str, Vec<u8>, String)]) -> String {
    let mut entries: Vec<_> = entries.to_vec();
    let key = |(mode, name, _): &(&str, Vec<u8>, String)| {
        let mut k = name.clone();
        if *mode == "40000" {
            k.push(b'/');
        }
        k
    };
    entries.sort_by_key(key);
    let mut bytes = Vec::new();
    for (mode, name, id) in &entries {
        bytes.extend_from_slice(mode.as_bytes());
        bytes.push(b' ');
        bytes.extend_from_slice(name);
        bytes.push(0);
        bytes.extend((0..20).map(|i| u8::from_str_radix(&id[2 * i..2 * i + 2], 16).unwrap()));
    }
    git_with_input(
        repo,
        &["hash-object", "-t", "tree", "--literally", "-w", "--stdin"],
        &bytes,
    )
    .trim()
    .to_owned()
}

/// The entries of `commit`'s root tree.
fn tree_entries(repo: &Path, commit: &str) -> Vec<(&'static str, Vec<u8>, String)> {
    git(repo, &["ls-tree", "-z", commit])
        .split('\0')
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (meta, name) = e.split_once('\t').unwrap();
            let fields: Vec<&str> = meta.split(' ').collect();
            let mode: &'static str = match fields[0] {
                "040000" => "40000",
                "100755" => "100755",
                "120000" => "120000",
                _ => "100644",
            };
            (mode, name.as_bytes().to_vec(), fields[2].to_owned())
        })
        .collect()
}

/// Makes a commit on top of `parent` (or a root commit) whose tree is `parent`'s plus an
/// entry named `bad`: a folder holding `planted` for names a check-out would follow (`..`,
/// `.git`, `.jj`), else a file. Returns its id.
fn bad_commit(repo: &Path, parent: Option<&str>, bad: &[u8]) -> String {
    let blob = git_with_input(
        repo,
        &["hash-object", "-w", "--stdin"],
        b"planted by a bad commit\n",
    )
    .trim()
    .to_owned();
    let mut entries = match parent {
        Some(p) => tree_entries(repo, p),
        None => {
            let good = git_with_input(repo, &["hash-object", "-w", "--stdin"], b"a good file\n")
                .trim()
                .to_owned();
            vec![("100644", b"good.md".to_vec(), good)]
        }
    };
    if [&b".."[..], b".git", b".jj"].contains(&bad) {
        let sub = raw_tree(repo, &[("100644", b"planted".to_vec(), blob)]);
        entries.push(("40000", bad.to_vec(), sub));
    } else {
        entries.push(("100644", bad.to_vec(), blob));
    }
    let tree = raw_tree(repo, &entries);
    let mut args = vec![
        "commit-tree",
        tree.as_str(),
        "-m",
        "a commit jj cannot check out",
    ];
    if let Some(p) = parent {
        args.extend(["-p", p]);
    }
    git(repo, &args).trim().to_owned()
}

/// No file or folder named `planted` anywhere under `dir` (the bare repos aside).
#[track_caller]
fn assert_nothing_planted(dir: &Path) {
    fn walk(path: &Path, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(path) else {
            return;
        };
        for entry in entries.flatten() {
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "git") {
                continue;
            }
            if entry.file_name() == "planted" {
                found.push(p.clone());
            }
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&p, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(dir, &mut found);
    assert!(
        found.is_empty(),
        "the bad commit was checked out: {found:?}"
    );
}

/// A commit whose tree holds `bad` is pushed to A's remote: A goes on syncing locally,
/// says which commit and path it refuses, and pushes again once the remote is fixed.
fn a_bad_remote_commit_never_wedges_the_repo(bad: &[u8], shown: Option<&str>) {
    let env = TestEnv::new();
    let bare = bare_repo(&env, "backup");
    let mounts = env.with_mounts(2);
    let (a, b) = (&mounts[0], &mounts[1]);
    env.ok(&["remote", "add", bare.to_str().unwrap()]);
    std::fs::write(a.join("first.md"), "before the bad commit\n").unwrap();
    env.ok(&["sync"]);
    assert_eq!(
        remote_file(&bare, "main", "first.md").as_deref(),
        Some("before the bad commit\n")
    );
    let good = git(&bare, &["rev-parse", "main"]).trim().to_owned();
    let pid = env.daemon_pid().unwrap();

    // Someone pushes a commit jj cannot check out.
    let commit = bad_commit(&bare, Some(&good), bad);
    git(&bare, &["update-ref", "refs/heads/main", &commit]);
    let out = env.run(&["sync"]);

    // Local sync goes on both ways; every mount is healthy.
    std::fs::write(a.join("after.md"), "written after the bad commit\n").unwrap();
    wait_content(&b.join("after.md"), "written after the bad commit\n");
    std::fs::write(b.join("from-b.md"), "and from B\n").unwrap();
    wait_content(&a.join("from-b.md"), "and from B\n");
    assert_all_healthy(&env);
    assert!(
        out.status.success(),
        "sync failed after the bad commit was fetched: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        env.log_tail(20)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("warning: remote"),
        "sync said nothing of the refused commit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.ok(&["sync"]);
    assert_all_healthy(&env);
    assert_nothing_planted(&env.work());
    assert_nothing_planted(&env.home());

    // Status names the commit and the path.
    let status = repo_status(&env, "default");
    assert_eq!(status["remote_state"], "delayed", "{status}");
    let error = status["last_error"].as_str().unwrap_or_default().to_owned();
    // (git itself refuses to send a tree with an empty name: then git's error is enough.)
    if !bad.is_empty() {
        assert!(
            error.contains(&commit[..8]),
            "last_error does not name the commit {commit}: {error:?}"
        );
    }
    if let Some(shown) = shown {
        assert!(
            error.contains(shown),
            "last_error does not name the path {shown:?}: {error:?}"
        );
    }
    assert_eq!(error.lines().count(), 1, "{error:?}");

    // The remote is fixed: pushing resumes.
    git(&bare, &["update-ref", "refs/heads/main", &good]);
    let recovered = wait_until(common::DEADLINE, || {
        env.run(&["sync"]);
        repo_status(&env, "default")["remote_state"] == "ok"
    });
    assert!(
        recovered,
        "the remote never recovered: {}",
        repo_status(&env, "default")
    );
    assert_eq!(
        remote_file(&bare, "main", "after.md").as_deref(),
        Some("written after the bad commit\n")
    );
    assert_eq!(
        remote_file(&bare, "main", "from-b.md").as_deref(),
        Some("and from B\n")
    );
    assert_eq!(env.daemon_pid(), Some(pid), "the daemon restarted");
}

#[test]
fn a_remote_commit_with_a_dotdot_folder_never_wedges_the_repo() {
    a_bad_remote_commit_never_wedges_the_repo(b"..", Some(".."));
}

#[test]
fn a_remote_commit_with_a_dot_git_folder_never_wedges_the_repo() {
    a_bad_remote_commit_never_wedges_the_repo(b".git", Some(".git"));
}

#[test]
fn a_remote_commit_with_a_dot_jj_folder_never_wedges_the_repo() {
    a_bad_remote_commit_never_wedges_the_repo(b".jj", Some(".jj"));
}

#[test]
fn a_remote_commit_with_an_empty_name_never_wedges_the_repo() {
    a_bad_remote_commit_never_wedges_the_repo(b"", None);
}

#[test]
fn a_remote_commit_with_a_slash_in_a_name_never_wedges_the_repo() {
    a_bad_remote_commit_never_wedges_the_repo(b"a/b", Some("a/b"));
}

#[test]
fn init_from_a_remote_with_a_bad_path_says_so_and_leaves_no_repo() {
    let env = TestEnv::new();
    env.ok(&["start"]);
    let pid = env.daemon_pid().unwrap();
    let cases: [(&[u8], Option<&str>); 5] = [
        (b"..", Some("..")),
        (b".git", Some(".git")),
        (b".jj", Some(".jj")),
        (b"", None),
        (b"a/b", Some("a/b")),
    ];
    for (i, (bad, shown)) in cases.into_iter().enumerate() {
        let bare = bare_repo(&env, &format!("bad-{i}"));
        let commit = bad_commit(&bare, None, bad);
        git(&bare, &["update-ref", "refs/heads/main", &commit]);
        let name = format!("imported-{i}");
        let out = env.run(&["init", &name, "--from", bare.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "init --from a trunk holding {shown:?} succeeded"
        );
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{shown:?}: {stderr}");
        if let Some(shown) = shown {
            assert!(errors[0].contains(shown), "{shown:?}: {stderr}");
        }
        assert!(!env.home().join("repos").join(&name).exists());
        let status = env.json(&["status", "--json"]);
        assert!(
            status["repos"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["name"] != name.as_str()),
            "{name} is left in status: {status}"
        );
        assert_eq!(env.daemon_pid(), Some(pid), "{shown:?}: the daemon died");
    }
    assert_nothing_planted(&env.work());
    assert_nothing_planted(&env.home());
    // The daemon still does its work.
    env.ok(&["init", "fine"]);
}

// ---------------------------------------------------------------------------------------
// Nested repositories are kept, never deleted
// ---------------------------------------------------------------------------------------

/// The entries of the repo's `skipped` list as (path, reason).
fn skipped(env: &TestEnv) -> Vec<(String, String)> {
    repo_status(env, "default")["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["path"].as_str().unwrap().to_owned(),
                s["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[track_caller]
fn assert_skipped_as_repository(env: &TestEnv, folder: &str) {
    let skipped = skipped(env);
    assert!(
        skipped
            .iter()
            .any(|(p, r)| p.starts_with(folder) && r.to_lowercase().contains("repositor")),
        "status does not list {folder} as a nested repository: {skipped:?}"
    );
}

#[test]
fn git_init_in_a_synced_folder_deletes_nothing_anywhere() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(2);
    let (a, b) = (&mounts[0], &mounts[1]);
    std::fs::create_dir(a.join("sub")).unwrap();
    std::fs::write(a.join("sub/a.txt"), "file a\n").unwrap();
    std::fs::write(a.join("sub/b.txt"), "file b\n").unwrap();
    env.ok(&["sync"]);
    wait_content(&b.join("sub/b.txt"), "file b\n");

    git(&a.join("sub"), &["init", "-q"]);
    env.ok(&["sync"]);
    env.ok(&["sync"]);
    for m in &mounts {
        assert_eq!(
            read(&m.join("sub/a.txt")).as_deref(),
            Some("file a\n"),
            "{}/sub/a.txt is gone after git init in A",
            m.display()
        );
        assert_eq!(read(&m.join("sub/b.txt")).as_deref(), Some("file b\n"));
    }
    let ws = env.workspace_of(b);
    assert_eq!(on_trunk(&ws, "sub/a.txt").as_deref(), Some("file a\n"));
    assert_eq!(on_trunk(&ws, "sub/b.txt").as_deref(), Some("file b\n"));
    assert_skipped_as_repository(&env, "sub");

    // What is made inside the nested repository stays in A.
    std::fs::write(a.join("sub/later.txt"), "inside the nested repo\n").unwrap();
    env.ok(&["sync"]);
    env.ok(&["sync"]);
    assert!(a.join("sub/later.txt").exists());
    assert!(
        std::fs::symlink_metadata(b.join("sub/later.txt")).is_err(),
        "a file inside the nested repository reached B"
    );
    assert!(std::fs::symlink_metadata(b.join("sub/.git")).is_err());
    assert_eq!(read(&b.join("sub/a.txt")).as_deref(), Some("file a\n"));
    assert_all_healthy(&env);
}

#[test]
fn a_git_clone_inside_a_mount_stays_there_and_deletes_nothing() {
    let env = TestEnv::new();
    // A small project to clone.
    let source = env.work().join("project");
    git(&env.work(), &["init", "-q", "-b", "main", "project"]);
    std::fs::write(source.join("readme.md"), "cloned project\n").unwrap();
    git(&source, &["add", "."]);
    git(&source, &["commit", "-q", "-m", "first"]);
    git(
        &env.work(),
        &["clone", "-q", "--bare", "project", "project.git"],
    );

    let mounts = env.with_mounts(2);
    let (a, b) = (&mounts[0], &mounts[1]);
    std::fs::create_dir(a.join("sub")).unwrap();
    std::fs::write(a.join("sub/a.txt"), "file a\n").unwrap();
    std::fs::write(a.join("sub/b.txt"), "file b\n").unwrap();
    env.ok(&["sync"]);
    wait_content(&b.join("sub/b.txt"), "file b\n");

    let bare = env.work().join("project.git");
    git(a, &["clone", "-q", bare.to_str().unwrap(), "clone"]);
    env.ok(&["sync"]);
    env.ok(&["sync"]);
    for m in &mounts {
        assert_eq!(read(&m.join("sub/a.txt")).as_deref(), Some("file a\n"));
        assert_eq!(read(&m.join("sub/b.txt")).as_deref(), Some("file b\n"));
    }
    assert!(
        std::fs::symlink_metadata(b.join("clone/readme.md")).is_err(),
        "the clone's files reached B"
    );
    assert_eq!(
        git(&a.join("clone"), &["status", "--porcelain"]),
        "",
        "the clone in A was changed"
    );
    assert_eq!(
        read(&a.join("clone/readme.md")).as_deref(),
        Some("cloned project\n")
    );
    assert_skipped_as_repository(&env, "clone");
    assert_all_healthy(&env);
}

// ---------------------------------------------------------------------------------------
// Permissions travel
// ---------------------------------------------------------------------------------------

fn mode_of(path: &Path) -> Option<u32> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

#[test]
fn a_private_file_arrives_private_and_mode_changes_travel() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(2);
    let (a, b) = (&mounts[0], &mounts[1]);
    let backing_b = env.workspace_of(b);

    // Watch B (the mount and its backing directory) while the file appears there.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        let paths = [b.join("secret.txt"), backing_b.join("secret.txt")];
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                for p in &paths {
                    if let Some(mode) = mode_of(p)
                        && !seen.contains(&(p.clone(), mode))
                    {
                        seen.push((p.clone(), mode));
                    }
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            seen
        })
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(a.join("secret.txt"))
        .unwrap();
    f.write_all(b"a private note\n").unwrap();
    drop(f);
    assert_eq!(mode_of(&a.join("secret.txt")), Some(0o600));
    wait_content(&b.join("secret.txt"), "a private note\n");
    env.ok(&["sync"]);
    stop.store(true, Ordering::Relaxed);
    let seen = watcher.join().unwrap();
    let open: Vec<String> = seen
        .iter()
        .filter(|(_, m)| m & !0o600 != 0)
        .map(|(p, m)| format!("{} {m:o}", p.display()))
        .collect();
    assert!(
        open.is_empty(),
        "the private file was readable by others in B at some point: {open:?}"
    );
    assert_eq!(mode_of(&b.join("secret.txt")), Some(0o600));
    assert_eq!(mode_of(&backing_b.join("secret.txt")), Some(0o600));

    std::fs::set_permissions(a.join("secret.txt"), PermissionsExt::from_mode(0o640)).unwrap();
    env.ok(&["sync"]);
    assert_eq!(mode_of(&b.join("secret.txt")), Some(0o640));

    // setuid, setgid and sticky never travel.
    std::fs::write(a.join("tool.sh"), "#!/bin/sh\necho tool\n").unwrap();
    env.ok(&["sync"]);
    std::fs::set_permissions(a.join("tool.sh"), PermissionsExt::from_mode(0o7755)).unwrap();
    env.ok(&["sync"]);
    assert_eq!(
        mode_of(&b.join("tool.sh")).map(|m| format!("{m:o}")),
        Some("755".to_owned())
    );
}

/// The uid and gid of `path` (not following a symlink).
fn owner_of(path: &Path) -> (u32, u32) {
    let meta = std::fs::symlink_metadata(path).unwrap();
    (meta.uid(), meta.gid())
}

/// Files and folders that arrive in `b` from `a` belong to `owner`, seen through the mount
/// and in its backing directory.
fn arrivals_belong_to(env: &TestEnv, a: &Path, b: &Path, owner: (u32, u32)) {
    std::fs::write(a.join("arrived.txt"), "from A\n").unwrap();
    std::fs::create_dir(a.join("dir")).unwrap();
    std::fs::write(a.join("dir/inner.txt"), "inner\n").unwrap();
    wait_content(&b.join("arrived.txt"), "from A\n");
    wait_content(&b.join("dir/inner.txt"), "inner\n");
    env.ok(&["sync"]);
    let backing = env.workspace_of(b);
    for rel in ["arrived.txt", "dir", "dir/inner.txt"] {
        for root in [b, backing.as_path()] {
            assert_eq!(
                owner_of(&root.join(rel)),
                owner,
                "{}/{rel} has the wrong owner",
                root.display()
            );
        }
    }
    // An edit arriving later keeps it too.
    std::fs::write(a.join("arrived.txt"), "edited in A\n").unwrap();
    wait_content(&b.join("arrived.txt"), "edited in A\n");
    env.ok(&["sync"]);
    assert_eq!(owner_of(&b.join("arrived.txt")), owner);
}

#[test]
fn files_arriving_in_a_mount_belong_to_the_owner_of_its_parent() {
    let env = TestEnv::new();
    env.ok(&["init"]);
    let a = env.open("default", "m0");
    let parent = env.work().join("owned");
    std::fs::create_dir(&parent).unwrap();
    std::os::unix::fs::chown(&parent, Some(12345), Some(12345)).unwrap();
    let b = parent.join("b");
    env.ok(&["open", "default", b.to_str().unwrap()]);
    arrivals_belong_to(&env, &a, &b, (12345, 12345));
}

/// A local user that exists while the guard lives (created with `useradd` if absent).
struct TestUser {
    name: &'static str,
    created: bool,
}

impl TestUser {
    fn ensure(name: &'static str) -> Self {
        let exists = nix::unistd::User::from_name(name).unwrap().is_some();
        if !exists {
            let out = Command::new("useradd").args(["-M", name]).output().unwrap();
            assert!(
                out.status.success(),
                "useradd {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Self {
            name,
            created: !exists,
        }
    }

    fn ids(&self) -> (u32, u32) {
        let user = nix::unistd::User::from_name(self.name).unwrap().unwrap();
        (user.uid.as_raw(), user.gid.as_raw())
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        if self.created {
            let _ = Command::new("userdel").arg(self.name).output();
        }
    }
}

#[test]
fn open_owner_gives_arriving_files_to_that_user() {
    let user = TestUser::ensure("jjfs-test-owner");
    let env = TestEnv::new();
    env.ok(&["init"]);
    let a = env.open("default", "m0");
    let b = env.work().join("theirs");
    env.ok(&["open", "default", b.to_str().unwrap(), "--owner", user.name]);
    arrivals_belong_to(&env, &a, &b, user.ids());
}

// ---------------------------------------------------------------------------------------
// close never half-closes
// ---------------------------------------------------------------------------------------

#[test]
fn a_refused_close_leaves_the_mount_working_and_a_later_close_keeps_every_write() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(2);
    let (a, b) = (&mounts[0], &mounts[1]);
    std::fs::write(a.join("before.txt"), "before the close\n").unwrap();
    env.ok(&["sync"]);

    let holder = KillOnDrop(
        Command::new("sleep")
            .arg("300")
            .current_dir(a)
            .spawn()
            .unwrap(),
    );
    let pid = holder.0.id();
    let stderr = env.fails(&["close", a.to_str().unwrap()]);

    // Exactly as it was: mounted, listed healthy, synced.
    assert!(
        env.mounts().contains(a),
        "the refused close detached the mount ({stderr})"
    );
    let listed = env.list();
    let entry = listed
        .iter()
        .find(|m| m["path"].as_str() == a.to_str())
        .expect("the mount is no longer listed");
    assert_eq!(entry["health"], "healthy", "{entry}");
    std::fs::write(a.join("while-held.txt"), "written after the refusal\n").unwrap();
    wait_content(&b.join("while-held.txt"), "written after the refusal\n");

    // And it said who holds the mount.
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains(&pid.to_string()) || errors[0].contains("sleep"),
        "the error does not name the process holding the mount ({pid}, sleep): {stderr}"
    );

    drop(holder);
    for i in 0..20 {
        std::fs::write(a.join(format!("last-{i}.txt")), format!("last write {i}\n")).unwrap();
    }
    env.ok(&["close", a.to_str().unwrap()]);
    assert!(!env.mounts().contains(a));
    let ws = env.workspace_of(b);
    assert_eq!(
        on_trunk(&ws, "before.txt").as_deref(),
        Some("before the close\n")
    );
    assert_eq!(
        on_trunk(&ws, "while-held.txt").as_deref(),
        Some("written after the refusal\n")
    );
    for i in 0..20 {
        assert_eq!(
            on_trunk(&ws, &format!("last-{i}.txt")),
            Some(format!("last write {i}\n")),
            "a write made just before the close is not on trunk"
        );
        wait_content(
            &b.join(format!("last-{i}.txt")),
            &format!("last write {i}\n"),
        );
    }
}

// ---------------------------------------------------------------------------------------
// A failed update keeps the old file
// ---------------------------------------------------------------------------------------

/// A tmpfs of its own, unmounted when the guard drops (after any TestEnv made in it).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("jjfs-tmpfs-")
            .tempdir()
            .unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount tmpfs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn resize(&self, size: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let out = Command::new("umount").arg(self.path()).output();
        if !out.is_ok_and(|o| o.status.success()) {
            let _ = Command::new("umount").arg("-l").arg(self.path()).output();
        }
    }
}

/// `len` bytes of `line` repeated (compressible, so the store costs little space).
fn pattern(line: &str, len: usize) -> Vec<u8> {
    line.as_bytes().iter().copied().cycle().take(len).collect()
}

#[test]
fn an_update_that_cannot_be_written_keeps_the_old_file_and_says_why() {
    let fs = Tmpfs::mount("24m");
    let env = TestEnv::new_in(fs.path());
    let mounts = env.with_mounts(2);
    let (a, b) = (&mounts[0], &mounts[1]);
    let old = pattern("the old version of the file\n", 6 << 20);
    let new = pattern("the new, bigger version of the file\n", 14 << 20);

    std::fs::write(a.join("big.txt"), &old).unwrap();
    wait_for("the 6 MiB file to reach B", || {
        std::fs::read(b.join("big.txt")).is_ok_and(|got| got == old)
    });
    env.ok(&["sync"]);

    // Both backing directories are on the tmpfs: A's new version fits, B's cannot.
    std::fs::write(a.join("big.txt"), &new).expect("the tmpfs is too small for the test itself");
    let _ = env.run(&["sync"]);
    let in_b = std::fs::read(b.join("big.txt"));
    assert!(
        in_b.as_ref().is_ok_and(|got| got == &old),
        "B lost its old version when the new one could not be written: {}\nsync.log ends:\n{}",
        match &in_b {
            Ok(got) => format!(
                "B holds {} bytes, starting {:?}",
                got.len(),
                String::from_utf8_lossy(&got[..got.len().min(120)])
            ),
            Err(e) => format!("B's file: {e}"),
        },
        env.log_tail(20)
    );
    let status = env.json(&["status", "--json"]);
    assert_eq!(
        status["repos"][0]["conflicts"],
        serde_json::json!([]),
        "{status}"
    );
    let says_why = |status: &serde_json::Value| {
        let mount = status["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["path"].as_str() == b.to_str())
            .cloned()
            .unwrap_or_default();
        let reason = mount["reason"].as_str().unwrap_or_default().to_lowercase();
        let skipped = status["repos"][0]["skipped"].to_string().to_lowercase();
        reason.contains("space") || skipped.contains("space")
    };
    assert!(
        says_why(&status),
        "status does not say why B waits: {status}"
    );

    // Room again: B catches up.
    fs.resize("64m");
    let caught_up = wait_until(common::DEADLINE, || {
        let _ = env.run(&["sync"]);
        std::fs::read(b.join("big.txt")).is_ok_and(|got| got == new)
    });
    assert!(caught_up, "B never got the new version once there was room");
    let status = env.json(&["status", "--json"]);
    assert_eq!(status["repos"][0]["conflicts"], serde_json::json!([]));
    assert!(!says_why(&status), "status still says B waits: {status}");
    assert_eq!(std::fs::read(a.join("big.txt")).unwrap(), new);
}

// ---------------------------------------------------------------------------------------
// Bounded and unblockable
// ---------------------------------------------------------------------------------------

/// The resident set size of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_client_that_never_reads_its_replies_cannot_grow_the_daemon() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(1);
    let mut text = String::new();
    let mut i = 0;
    while text.len() < 128 << 10 {
        text.push_str(&format!(
            "line {i:06} of a file that is read over and over\n"
        ));
        i += 1;
    }
    text.truncate(128 << 10);
    std::fs::write(mounts[0].join("big.txt"), &text).unwrap();
    env.ok(&["sync"]);
    let log = env.json(&["log", "--json", "--repo", "default"]);
    let change = log["entries"][0]["change"].as_str().unwrap().to_owned();
    let request = |id: usize| {
        serde_json::json!({
            "jsonrpc": "2.0",
            "method": "cat",
            "params": {"repo": "default", "paths": ["big.txt"], "at": change},
            "id": id,
        })
        .to_string()
    };
    let socket = env.home().join("daemon.sock");

    // One request read normally: the request is right and the daemon is warm.
    let stream = UnixStream::connect(&socket).unwrap();
    (&stream)
        .write_all(format!("{}\n", request(0)).as_bytes())
        .unwrap();
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply).unwrap();
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(
        reply["result"]["text"].as_str().map(str::len),
        Some(128 << 10),
        "{}",
        &reply.to_string()[..200.min(reply.to_string().len())]
    );
    drop(stream);

    let pid = env.daemon_pid().unwrap();
    let before = rss_kib(pid);
    let greedy = UnixStream::connect(&socket).unwrap();
    greedy
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let writer = {
        let greedy = greedy.try_clone().unwrap();
        let requests: Vec<String> = (1..=1500).map(request).collect();
        std::thread::spawn(move || {
            let mut sent = 0;
            for r in requests {
                if (&greedy).write_all(format!("{r}\n").as_bytes()).is_err() {
                    break;
                }
                sent += 1;
            }
            sent
        })
    };
    // Watch the daemon until it has stopped growing for 3 s.
    let limit_kib = 64 << 10;
    let mut peak = before;
    let mut last_growth = Instant::now();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let now = rss_kib(pid);
        if now > peak {
            peak = now;
            last_growth = Instant::now();
        }
        if writer.is_finished() && last_growth.elapsed() > Duration::from_secs(3) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Other clients are served meanwhile.
    let answered = env.run_timed(&["status"], Duration::from_secs(10));
    assert!(
        answered
            .as_ref()
            .is_some_and(|(out, _)| out.status.success()),
        "jjfs status was not answered while a client was not reading: {answered:?}"
    );
    let grown = peak.saturating_sub(before);
    assert!(
        grown <= limit_kib,
        "1,500 unread cat replies grew the daemon by {} MiB (from {} MiB)",
        grown >> 10,
        before >> 10
    );
    drop(greedy);
    let sent = writer.join().unwrap();
    eprintln!(
        "the client sent {sent} requests; the daemon grew by {} KiB",
        grown
    );
    assert_eq!(env.daemon_pid(), Some(pid));
}

/// A socket connected to `path` without blocking (None if the daemon's backlog is full or
/// it refused).
fn connect_nonblocking(path: &Path) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: plain socket calls on a descriptor this function owns; the address is a
    // zeroed sockaddr_un holding a path shorter than sun_path.
    unsafe {
        let fd = libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return None;
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let bytes = path.as_os_str().as_bytes();
        assert!(bytes.len() < addr.sun_path.len());
        for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
            *dst = *src as libc::c_char;
        }
        let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
        let rc = libc::connect(
            fd.as_raw_fd(),
            &addr as *const libc::sockaddr_un as *const libc::sockaddr,
            len as libc::socklen_t,
        );
        (rc == 0).then_some(fd)
    }
}

#[test]
fn thousands_of_idle_connections_do_not_stop_the_daemon_answering() {
    let env = TestEnv::new();
    env.start_with_fd_limit(1024);
    let pid = env.daemon_pid().unwrap();
    let socket = env.home().join("daemon.sock");
    let mut idle = Vec::new();
    let mut refused = 0;
    for _ in 0..2000 {
        match connect_nonblocking(&socket) {
            Some(fd) => idle.push(fd),
            None => refused += 1,
        }
    }
    eprintln!("{} idle connections open, {refused} refused", idle.len());
    // It may turn excess connections away, but it answers a real client within seconds.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = None;
    let answered = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break false;
        }
        last = env.run_timed(&["status", "--json"], left);
        if last.as_ref().is_some_and(|(out, _)| out.status.success()) {
            break true;
        }
    };
    assert!(
        answered,
        "jjfs status was not answered within 10 s with {} idle connections open: {last:?}\nsync.log ends:\n{}",
        idle.len(),
        env.log_tail(10)
    );
    drop(idle);
    env.ok(&["status"]);
    assert_eq!(env.daemon_pid(), Some(pid));
}

/// Processes whose command line holds `needle`.
fn processes_with(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            found.push(pid);
        }
    }
    found
}

/// Every descendant of `pid` with its command name.
fn descendants(pid: u32) -> Vec<(u32, String)> {
    let mut parents = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some((head, tail)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head
            .split_once('(')
            .map(|(_, c)| c)
            .unwrap_or("")
            .to_owned();
        let ppid: u32 = tail.split_whitespace().nth(1).unwrap().parse().unwrap();
        parents.insert(p, (ppid, comm));
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for (p, (pp, comm)) in &parents {
            if *pp == parent {
                out.push((*p, comm.clone()));
                frontier.push(*p);
            }
        }
    }
    out
}

/// Kills the stalled ssh stand-ins this test started (the daemon may leave them behind).
struct KillMatching(String);

impl Drop for KillMatching {
    fn drop(&mut self) {
        // Until none is seen for a while: a dying daemon may still start one.
        let mut quiet = 0;
        let until = Instant::now() + Duration::from_secs(10);
        while quiet < 5 && Instant::now() < until {
            let found = processes_with(&self.0);
            quiet = if found.is_empty() { quiet + 1 } else { 0 };
            for pid in found {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn sync_returns_in_bounded_time_when_the_remote_never_answers() {
    // `sleep` with a fraction only this test uses, so its processes can be told apart.
    let nonce = format!("3599.{:06}", std::process::id() % 1_000_000);
    let _cleanup = KillMatching(nonce.clone());
    let env = TestEnv::new();
    let script = env.work().join("stalled-ssh");
    std::fs::write(&script, format!("#!/bin/sh\nexec sleep {nonce}\n")).unwrap();
    std::fs::set_permissions(&script, PermissionsExt::from_mode(0o755)).unwrap();
    let env = env.with_env("GIT_SSH_COMMAND", script.to_str().unwrap());
    let mounts = env.with_mounts(2);
    let pid = env.daemon_pid().unwrap();
    env.ok(&["remote", "add", "ssh://127.0.0.1/x.git"]);
    std::fs::write(mounts[0].join("local.txt"), "synced locally\n").unwrap();

    let started = Instant::now();
    let (stall_tx, stall_rx) = std::sync::mpsc::channel();
    // Remember the git and ssh processes the daemon runs in the first seconds of the sync.
    let spy = {
        let nonce = nonce.clone();
        std::thread::spawn(move || {
            let mut seen = std::collections::BTreeSet::new();
            while started.elapsed() < Duration::from_secs(5) {
                seen.extend(processes_with(&nonce));
                seen.extend(
                    descendants(pid)
                        .into_iter()
                        .filter(|(_, comm)| comm.starts_with("git") || comm == "sleep")
                        .map(|(p, _)| p),
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = stall_tx.send(seen);
        })
    };
    let result = env.run_timed(&["sync"], Duration::from_secs(45));
    let (out, took) = result.unwrap_or_else(|| {
        panic!(
            "jjfs sync on a remote that never answers did not return within 45 s\nsync.log ends:\n{}",
            env.log_tail(20)
        )
    });
    spy.join().unwrap();
    let stalled = stall_rx.recv().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sync failed: {stderr}");
    assert!(stderr.contains("warning: remote"), "{stderr}");
    eprintln!(
        "sync returned after {took:?}; it ran {} remote processes",
        stalled.len()
    );
    assert!(!stalled.is_empty(), "the daemon never tried the remote");
    wait_content(&mounts[1].join("local.txt"), "synced locally\n");

    // The stalled processes are killed at a deadline, not left hanging.
    let gone = wait_until(
        (started + Duration::from_secs(50)).saturating_duration_since(Instant::now()),
        || stalled.iter().all(|p| !common::process_alive(*p)),
    );
    let left: Vec<_> = stalled
        .iter()
        .filter(|p| common::process_alive(**p))
        .collect();
    assert!(
        gone,
        "remote processes still run 50 s after the sync began: {left:?} (daemon children: {:?})",
        descendants(pid)
    );
    assert_eq!(env.daemon_pid(), Some(pid));
}

#[test]
fn a_file_swapped_for_a_fifo_never_blocks_sync() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(2);
    let (a, b) = (&mounts[0], &mounts[1]);
    let backing = env.workspace_of(a);
    const FLIPS: usize = 8;
    for i in 0..FLIPS {
        std::fs::write(a.join(format!("flip-{i}.txt")), "a file\n").unwrap();
    }
    std::fs::write(a.join("edited.txt"), "edit 0\n").unwrap();
    env.ok(&["sync"]);

    // Files in A's backing directory keep turning into FIFOs and back, as fast as it goes.
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let backing = backing.clone();
        std::thread::spawn(move || {
            let mut swaps = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let target = backing.join(format!("flip-{}.txt", swaps % FLIPS));
                let fifo = backing.join("fifo.tmp");
                nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644))
                    .unwrap();
                std::fs::rename(&fifo, &target).unwrap();
                let file = backing.join("file.tmp");
                std::fs::write(&file, format!("a file again {swaps}\n")).unwrap();
                std::fs::rename(&file, &target).unwrap();
                swaps += 1;
            }
            // Leave a FIFO behind in every other one.
            for i in (0..FLIPS).step_by(2) {
                let fifo = backing.join("fifo.tmp");
                nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644))
                    .unwrap();
                std::fs::rename(&fifo, backing.join(format!("flip-{i}.txt"))).unwrap();
            }
            swaps
        })
    };
    let until = Instant::now() + Duration::from_secs(10);
    let mut round = 0;
    let check = |round: usize, result: Option<(std::process::Output, Duration)>| {
        if result.is_none() {
            stop.store(true, Ordering::Relaxed);
            panic!(
                "sync {round}: jjfs sync did not return within 30 s while files were swapped \
                 for FIFOs\nsync.log ends:\n{}",
                env.log_tail(20)
            );
        }
    };
    while Instant::now() < until {
        round += 1;
        let edit = format!("edit {round}\n");
        std::fs::write(a.join("edited.txt"), &edit).unwrap();
        check(round, env.run_timed(&["sync"], Duration::from_secs(30)));
        wait_content(&b.join("edited.txt"), &edit);
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    eprintln!("{round} syncs while files were swapped for FIFOs {swaps} times");
    assert!(round >= 2 && swaps >= 100, "the test did too little");
    check(round + 1, env.run_timed(&["sync"], Duration::from_secs(30)));
    std::fs::write(a.join("edited.txt"), "the last edit\n").unwrap();
    check(round + 2, env.run_timed(&["sync"], Duration::from_secs(30)));
    wait_content(&b.join("edited.txt"), "the last edit\n");
    assert_all_healthy(&env);
}

//! Selective mounts (`jjfs open --only`, `jjfs only`): a mount that shows only some repo
//! folders, what stays local in it, changing its selection without losing an edit, and what
//! the jj CLI sees in its backing workspace.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{TestEnv, read, wait_content, wait_for, wait_gone};

/// The names at the top of `dir`, sorted (`.jj` is hidden in mounts, dropped here anyway).
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".jj")
        .collect();
    names.sort();
    names
}

/// `jjfs open default work/NAME --only ONLY`; returns the mount path.
fn open_only(env: &TestEnv, name: &str, only: &str) -> PathBuf {
    let path = env.work().join(name);
    let out = env.ok(&["open", "default", path.to_str().unwrap(), "--only", only]);
    assert_eq!(out.trim(), path.to_str().unwrap());
    path
}

/// The mount's `only` as `list --json` shows it.
fn listed_only(env: &TestEnv, path: &Path) -> serde_json::Value {
    env.list()
        .into_iter()
        .find(|m| m["path"].as_str() == path.to_str())
        .unwrap_or_else(|| panic!("{} is not listed", path.display()))["only"]
        .clone()
}

/// The repo's `skipped` entries as (path, mount).
fn skipped(env: &TestEnv) -> Vec<(String, Option<String>)> {
    env.json(&["status", "--json"])["repos"][0]["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["path"].as_str().unwrap().to_owned(),
                s["mount"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// A full mount `m0` holding `docs/`, `notes/`, a top-level file and a `.gitignore`.
fn repo_with_folders(env: &TestEnv) -> PathBuf {
    let full = env.with_mounts(1).remove(0);
    std::fs::create_dir_all(full.join("docs/guide")).unwrap();
    std::fs::create_dir_all(full.join("notes")).unwrap();
    std::fs::write(full.join("docs/guide/intro.md"), "intro\n").unwrap();
    std::fs::write(full.join("notes/todo.md"), "todo\n").unwrap();
    std::fs::write(full.join("top.md"), "top\n").unwrap();
    std::fs::write(full.join(".gitignore"), "*.log\n").unwrap();
    env.ok(&["sync"]);
    full
}

#[test]
fn a_selective_mount_shows_only_its_folders_and_keeps_the_rest_local() {
    let env = TestEnv::new();
    let full = repo_with_folders(&env);
    let sel = open_only(&env, "sel", "docs/");
    assert_eq!(names(&sel), ["docs"], "only the selected folder is there");
    assert_eq!(
        read(&sel.join("docs/guide/intro.md")).as_deref(),
        Some("intro\n")
    );
    assert_eq!(listed_only(&env, &sel), serde_json::json!(["docs"]));
    assert_eq!(listed_only(&env, &full), serde_json::Value::Null);
    assert_eq!(env.ok(&["only", sel.to_str().unwrap()]).trim(), "only docs");
    assert_eq!(
        env.ok(&["only", full.to_str().unwrap()]).trim(),
        "everything"
    );

    // Changes elsewhere in the repo never reach it; changes inside it do, both ways.
    std::fs::write(full.join("notes/todo.md"), "todo, edited\n").unwrap();
    std::fs::write(full.join("notes/new.md"), "new\n").unwrap();
    std::fs::write(full.join("docs/guide/intro.md"), "intro v2\n").unwrap();
    wait_content(&sel.join("docs/guide/intro.md"), "intro v2\n");
    env.ok(&["sync"]);
    assert_eq!(names(&sel), ["docs"]);
    std::fs::write(sel.join("docs/from-sel.md"), "written in sel\n").unwrap();
    wait_content(&full.join("docs/from-sel.md"), "written in sel\n");

    // The root's .gitignore (not in this mount) applies in it.
    std::fs::write(sel.join("docs/debug.log"), "ignored\n").unwrap();
    // A file made outside the selection stays here and is listed with its mount.
    std::fs::write(sel.join("local.md"), "mine\n").unwrap();
    std::fs::create_dir(sel.join("scratch")).unwrap();
    std::fs::write(sel.join("scratch/a.md"), "scratch\n").unwrap();
    std::fs::write(sel.join("docs/after.md"), "after\n").unwrap();
    wait_content(&full.join("docs/after.md"), "after\n");
    env.ok(&["sync"]);
    assert!(
        !full.join("local.md").exists(),
        "an outside file stays local"
    );
    assert!(!full.join("scratch").exists());
    assert!(
        !full.join("docs/debug.log").exists(),
        "the root .gitignore applies"
    );
    assert_eq!(read(&sel.join("local.md")).as_deref(), Some("mine\n"));
    let mount = Some(sel.to_str().unwrap().to_owned());
    wait_for("the outside files to be listed as skipped", || {
        let skipped = skipped(&env);
        skipped.contains(&("local.md".to_owned(), mount.clone()))
            && skipped.contains(&("scratch".to_owned(), mount.clone()))
    });
    let status = env.json(&["status", "--json"]);
    let entry = status["repos"][0]["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["path"] == "local.md")
        .unwrap()
        .clone();
    assert!(
        entry["reason"].as_str().unwrap().contains("selection"),
        "{entry}"
    );
    assert!(
        !skipped(&env).iter().any(|(p, _)| p.ends_with(".log")),
        "ignored files are not listed"
    );

    // The selection survives a daemon restart.
    env.ok(&["stop"]);
    assert_eq!(listed_only(&env, &sel), serde_json::json!(["docs"]));
    wait_for("the mount to come back", || sel.join("docs").is_dir());
    std::fs::write(full.join("notes/after-restart.md"), "outside\n").unwrap();
    std::fs::write(full.join("docs/after-restart.md"), "inside\n").unwrap();
    wait_content(&sel.join("docs/after-restart.md"), "inside\n");
    env.ok(&["sync"]);
    assert_eq!(names(&sel), ["docs", "local.md", "scratch"]);
    assert_eq!(read(&sel.join("local.md")).as_deref(), Some("mine\n"));

    // Bad selections are refused in one line, changing nothing.
    for bad in ["/etc", "../x", "docs,", "."] {
        let err = env.fails(&["only", sel.to_str().unwrap(), bad]);
        assert!(err.starts_with("error: "), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    assert_eq!(listed_only(&env, &sel), serde_json::json!(["docs"]));
}

#[test]
fn narrowing_while_a_writer_edits_a_leaving_folder_loses_nothing() {
    let env = TestEnv::new();
    let full = repo_with_folders(&env);
    let sel = open_only(&env, "sel", "docs,notes");
    assert_eq!(names(&sel), ["docs", "notes"]);
    assert_eq!(
        listed_only(&env, &sel),
        serde_json::json!(["docs", "notes"])
    );

    // Written just before narrowing, not synced yet: the narrowing records it first.
    std::fs::write(sel.join("notes/todo.md"), "todo, edited before narrowing\n").unwrap();
    // And a writer keeps making files in the leaving folder meanwhile.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, dir) = (stop.clone(), sel.join("notes"));
        std::thread::spawn(move || {
            let mut written = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let name = format!("w{i}.md");
                if std::fs::write(dir.join(&name), format!("write {i}\n")).is_ok() {
                    written.push((name, format!("write {i}\n")));
                }
                i += 1;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            written
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(100));
    let out = env.ok(&["only", sel.to_str().unwrap(), "docs"]);
    assert!(out.contains("only docs"), "{out}");
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(!written.is_empty(), "the writer wrote");
    assert_eq!(listed_only(&env, &sel), serde_json::json!(["docs"]));

    wait_content(
        &full.join("notes/todo.md"),
        "todo, edited before narrowing\n",
    );
    env.ok(&["sync"]);
    // Every file the writer made is in the repo, or (made once the folder had left the
    // selection) still in this mount, listed as skipped: none is lost.
    for (name, content) in &written {
        let synced = read(&full.join("notes").join(name));
        let local = read(&sel.join("notes").join(name));
        assert!(
            synced.as_deref() == Some(content) || local.as_deref() == Some(content),
            "{name} was lost: repo {synced:?}, mount {local:?}"
        );
    }
    let synced = written
        .iter()
        .filter(|(name, _)| full.join("notes").join(name).exists())
        .count();
    assert!(
        synced > 0,
        "writes made before the narrowing reached the repo"
    );
    // The repo's files of the folder left this mount only.
    assert!(full.join("notes/todo.md").exists());
    assert!(!sel.join("notes/todo.md").exists());
    assert!(names(&sel).iter().all(|n| n == "docs" || n == "notes"));
    // What stayed behind is listed as local to this mount.
    if sel.join("notes").exists() {
        let mount = Some(sel.to_str().unwrap().to_owned());
        wait_for("the leftover writes to be listed", || {
            skipped(&env)
                .iter()
                .any(|(p, m)| p.starts_with("notes") && m == &mount)
        });
    }
}

#[test]
fn narrowing_waits_for_a_file_open_for_writing_in_a_leaving_folder() {
    let env = TestEnv::new();
    let full = repo_with_folders(&env);
    let sel = open_only(&env, "sel", "docs,notes");
    let mut open = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(sel.join("notes/todo.md"))
        .unwrap();
    std::io::Write::write_all(&mut open, b"half").unwrap();
    let err = env.fails(&["only", sel.to_str().unwrap(), "docs"]);
    assert!(err.contains("open for writing"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(
        listed_only(&env, &sel),
        serde_json::json!(["docs", "notes"])
    );
    std::io::Write::write_all(&mut open, b" written\n").unwrap();
    drop(open);
    env.ok(&["only", sel.to_str().unwrap(), "docs"]);
    wait_content(&full.join("notes/todo.md"), "half written\n");
    assert!(
        !sel.join("notes").exists(),
        "the emptied folder left the mount"
    );
    assert_eq!(names(&sel), ["docs"]);
}

#[test]
fn widening_over_a_local_file_keeps_both_versions() {
    let env = TestEnv::new();
    let full = repo_with_folders(&env);
    let sel = open_only(&env, "sel", "docs");
    // A local file where the repo has one, outside the selection.
    std::fs::create_dir(sel.join("notes")).unwrap();
    std::fs::write(sel.join("notes/todo.md"), "local todo\n").unwrap();
    env.ok(&["sync"]);
    assert_eq!(read(&full.join("notes/todo.md")).as_deref(), Some("todo\n"));

    env.ok(&["only", sel.to_str().unwrap(), "--all"]);
    assert_eq!(listed_only(&env, &sel), serde_json::Value::Null);
    // Everything is shown again; both versions of the file are kept, as a conflict.
    wait_content(&sel.join("top.md"), "top\n");
    wait_for("both versions in the widened mount", || {
        read(&sel.join("notes/todo.md")).is_some_and(|c| {
            c.contains("local todo") && c.contains("todo\n") && c.contains("<<<<<<<")
        })
    });
    env.ok(&["sync"]);
    let here = read(&sel.join("notes/todo.md")).unwrap();
    assert_eq!(
        read(&full.join("notes/todo.md")).as_deref(),
        Some(here.as_str())
    );
    assert_eq!(names(&sel), names(&full));

    // Narrowing again removes only this mount's copies.
    env.ok(&["only", sel.to_str().unwrap(), "docs"]);
    wait_gone(&sel.join("top.md"));
    assert!(full.join("top.md").exists());
}

#[test]
fn the_jj_cli_in_the_backing_workspace_sees_the_selection() {
    let env = TestEnv::new();
    let full = repo_with_folders(&env);
    let sel = open_only(&env, "sel", "docs");
    std::fs::write(sel.join("docs/mine.md"), "mine\n").unwrap();
    wait_content(&full.join("docs/mine.md"), "mine\n");
    env.ok(&["sync"]);
    let ws = env.workspace_of(&sel);
    // jj reads jjfs's sparse patterns: the same folders.
    assert_eq!(env.jj(&ws, &["sparse", "list"]).trim(), "docs");
    // And does not take the files outside them for deletions.
    let status = env.jj(&ws, &["status"]);
    assert!(!status.contains("notes/todo.md"), "{status}");
    assert!(!status.contains("top.md"), "{status}");
    let files = env.jj(&ws, &["file", "list", "-r", "@"]);
    assert!(
        files.contains("notes/todo.md") && files.contains("top.md"),
        "{files}"
    );
    // The mount keeps syncing after jj looked.
    std::fs::write(sel.join("docs/later.md"), "later\n").unwrap();
    wait_content(&full.join("docs/later.md"), "later\n");
}

#[test]
fn a_nested_selection_shows_the_way_there_and_its_ancestors_ignores_apply() {
    let env = TestEnv::new();
    let full = repo_with_folders(&env);
    std::fs::write(full.join("docs/.gitignore"), "*.tmp\n").unwrap();
    std::fs::write(full.join("docs/readme.md"), "beside guide\n").unwrap();
    env.ok(&["sync"]);
    let sel = open_only(&env, "sel", "docs/guide");
    assert_eq!(names(&sel), ["docs"]);
    assert_eq!(
        names(&sel.join("docs")),
        ["guide"],
        "a leading folder holds only the way"
    );
    assert_eq!(listed_only(&env, &sel), serde_json::json!(["docs/guide"]));

    // docs/.gitignore and the root's (neither is in this mount) apply in docs/guide.
    std::fs::write(sel.join("docs/guide/scratch.tmp"), "ignored\n").unwrap();
    std::fs::write(sel.join("docs/guide/run.log"), "ignored\n").unwrap();
    std::fs::write(sel.join("docs/guide/new.md"), "synced\n").unwrap();
    wait_content(&full.join("docs/guide/new.md"), "synced\n");
    env.ok(&["sync"]);
    assert!(!full.join("docs/guide/scratch.tmp").exists());
    assert!(!full.join("docs/guide/run.log").exists());
    // A file beside the selected folder, in the leading one, stays local.
    std::fs::write(sel.join("docs/beside.md"), "local\n").unwrap();
    let mount = Some(sel.to_str().unwrap().to_owned());
    wait_for("docs/beside.md to be listed as skipped", || {
        skipped(&env).contains(&("docs/beside.md".to_owned(), mount.clone()))
    });
    assert!(!full.join("docs/beside.md").exists());
    assert_eq!(
        read(&full.join("docs/readme.md")).as_deref(),
        Some("beside guide\n")
    );
}

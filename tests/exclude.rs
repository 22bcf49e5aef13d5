//! A project that is itself a git or jj repository stays clean: `jjfs open` inside it adds
//! the mount to the repository's `info/exclude`, `jjfs close` takes it out again.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use jjfs::exclude::{self, ProjectKind};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn write_notes(dir: &Path) {
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("a.md"), "a\n").unwrap();
    std::fs::write(dir.join("sub/b.md"), "b\n").unwrap();
}

/// `jj status` in `dir` (it snapshots the working copy first, as any jj command does).
fn jj_status(env: &TestEnv, dir: &Path) -> String {
    env.jj(dir, &["status", "--color=never"])
}

#[test]
fn open_in_a_git_work_tree_keeps_git_status_clean_and_close_restores_the_exclude_file() {
    let env = TestEnv::new();
    let proj = env.work().join("proj");
    std::fs::create_dir(&proj).unwrap();
    git(&proj, &["init", "-q", "-b", "main"]);
    std::fs::write(proj.join("README"), "hi\n").unwrap();
    git(&proj, &["add", "README"]);
    git(&proj, &["commit", "-q", "-m", "init"]);
    let exclude_file = proj.join(".git/info/exclude");
    let before = std::fs::read(&exclude_file).unwrap();
    env.ok(&["init"]);

    let out = env.run_in(&proj, &["open", "default", "notes"]);
    assert!(out.status.success(), "{out:?}");
    let mount = proj.join("notes");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        mount.to_str().unwrap()
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!("Added /notes/ to {}", exclude_file.display())),
        "{said}"
    );
    write_notes(&mount);
    assert!(env.mounts().contains(&mount), "the notes are a jjfs mount");
    assert_eq!(git(&proj, &["status", "--porcelain", "-uall"]), "");

    // --no-exclude: left as it is, so git sees it.
    let out = env.run_in(&proj, &["open", "default", "other", "--no-exclude"]);
    assert!(out.status.success(), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("Added"));
    let other = proj.join("other");
    wait_content(&other.join("a.md"), "a\n");
    assert!(git(&proj, &["status", "--porcelain"]).contains("?? other/"));
    env.ok(&["close", other.to_str().unwrap()]);

    let closed = env.ok_in(&proj, &["close", "notes"]);
    assert!(
        closed.contains(&format!("Removed /notes/ from {}", exclude_file.display())),
        "{closed}"
    );
    assert_eq!(std::fs::read(&exclude_file).unwrap(), before);
}

#[test]
fn open_in_a_jj_workspace_keeps_its_snapshots_clean() {
    let env = TestEnv::new();
    let proj = env.work().join("proj");
    std::fs::create_dir(&proj).unwrap();
    env.jj(&proj, &["git", "init", "--no-colocate"]);
    assert!(!proj.join(".git").exists());
    let exclude_file = proj.join(".jj/repo/store/git/info/exclude");
    let before = std::fs::read(&exclude_file).ok();
    env.ok(&["init"]);

    let out = env.run_in(&proj, &["open", "default", "notes"]);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!("Added /notes/ to {}", exclude_file.display())),
        "{said}"
    );
    let mount = proj.join("notes");
    write_notes(&mount);
    std::fs::write(proj.join("mine.md"), "mine\n").unwrap();
    let status = jj_status(&env, &proj);
    assert!(status.contains("mine.md"), "{status}");
    assert!(!status.contains("notes"), "{status}");

    let closed = env.ok_in(&proj, &["close", "notes"]);
    assert!(closed.contains("Removed /notes/"), "{closed}");
    match before {
        Some(before) => assert_eq!(std::fs::read(&exclude_file).unwrap(), before),
        None => assert_eq!(std::fs::read(&exclude_file).unwrap(), b""),
    }
}

/// Colocated jj repos and jj's secondary workspaces, with a plain folder as the "mount".
#[test]
fn colocated_and_secondary_jj_workspaces_use_the_git_repo_jj_reads() {
    let env = TestEnv::new();
    let colocated = env.work().join("colocated");
    std::fs::create_dir(&colocated).unwrap();
    env.jj(&colocated, &["git", "init", "--colocate"]);
    let notes = colocated.join("notes");
    let found = exclude::find_enclosing(&notes).unwrap();
    assert_eq!(found.kind, ProjectKind::Git);
    assert_eq!(found.exclude_file, colocated.join(".git/info/exclude"));
    exclude::exclude_mount(&notes).unwrap().unwrap();
    write_notes(&notes);
    assert!(!jj_status(&env, &colocated).contains("notes"));
    assert_eq!(git(&colocated, &["status", "--porcelain"]), "");

    let main = env.work().join("main");
    std::fs::create_dir(&main).unwrap();
    env.jj(&main, &["git", "init", "--no-colocate"]);
    let second = env.work().join("second");
    env.jj(&main, &["workspace", "add", second.to_str().unwrap()]);
    assert!(second.join(".jj/repo").is_file());
    let notes = second.join("notes");
    let found = exclude::find_enclosing(&notes).unwrap();
    assert_eq!(found.kind, ProjectKind::Jj);
    assert_eq!(found.work_tree, second);
    assert_eq!(
        found.exclude_file,
        main.join(".jj/repo/store/git/info/exclude")
    );
    exclude::exclude_mount(&notes).unwrap().unwrap();
    write_notes(&notes);
    std::fs::write(second.join("mine.md"), "mine\n").unwrap();
    let status = jj_status(&env, &second);
    assert!(status.contains("mine.md"), "{status}");
    assert!(!status.contains("notes"), "{status}");
}

//! Backups to git remotes as users meet them: trunk is pushed to a bare repository, two state
//! directories ("machines") with one remote converge both ways (a true conflict ends the same
//! on both), ssh remotes work with a key, a missing or refusing remote delays backups without
//! touching local sync and recovers by itself, and `init --from` keeps imported history.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{TestEnv, bare_repo, git, read, remote_file, wait_content, wait_for};

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

#[test]
fn a_push_lands_in_a_bare_repo_and_remote_commands_report_it() {
    let env = TestEnv::new();
    let bare = bare_repo(&env, "backup");
    let mounts = env.with_mounts(1);
    std::fs::create_dir(mounts[0].join("notes")).unwrap();
    std::fs::write(mounts[0].join("notes/a.md"), "first note\n").unwrap();

    // A relative path is taken from the current directory, like git does.
    let added = env.ok(&["remote", "add", "backup.git"]);
    assert!(added.contains(bare.to_str().unwrap()), "{added}");
    assert_eq!(env.ok(&["remote", "show"]).trim(), bare.to_str().unwrap());
    env.ok(&["sync"]);
    assert_eq!(
        remote_file(&bare, "main", "notes/a.md").as_deref(),
        Some("first note\n")
    );
    let subjects = git(&bare, &["log", "--format=%s", "main"]);
    assert!(subjects.contains("jjfs: sync from"), "{subjects}");

    let status = repo_status(&env, "default");
    assert_eq!(status["remote"], bare.to_str().unwrap());
    assert_eq!(status["remote_state"], "ok");
    assert!(status["last_push"].is_string(), "{status}");
    assert!(status["last_fetch"].is_string(), "{status}");
    assert!(status["last_error"].is_null(), "{status}");

    // Later edits follow on the next sync, as fast-forwards of the same branch.
    let before = git(&bare, &["rev-parse", "main"]);
    std::fs::write(mounts[0].join("notes/a.md"), "first note, edited\n").unwrap();
    env.ok(&["sync"]);
    assert_eq!(
        remote_file(&bare, "main", "notes/a.md").as_deref(),
        Some("first note, edited\n")
    );
    git(
        &bare,
        &["merge-base", "--is-ancestor", before.trim(), "main"],
    );

    // With no command at all, every `push_interval` seconds.
    env.ok(&["config", "push_interval", "1"]);
    std::fs::write(mounts[0].join("notes/b.md"), "backed up by itself\n").unwrap();
    wait_for("the scheduled push", || {
        remote_file(&bare, "main", "notes/b.md").as_deref() == Some("backed up by itself\n")
    });

    // Bad URLs and unknown repos are refused in one line; nothing changes.
    for url in ["ftp://example.com/x.git", "", "https://"] {
        let err = env.fails(&["remote", "add", url]);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.starts_with("error:"), "{err}");
    }
    let err = env.fails(&["remote", "add", "/tmp/x.git", "--repo", "nope"]);
    assert!(err.contains("unknown repo nope"), "{err}");
    assert_eq!(env.ok(&["remote", "show"]).trim(), bare.to_str().unwrap());

    env.ok(&["remote", "remove"]);
    assert!(env.ok(&["remote", "show"]).contains("no remote"));
    assert_eq!(repo_status(&env, "default")["remote_state"], "none");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.home().join("config.json")).unwrap())
            .unwrap();
    assert!(config["repos"]["default"]["remote"].is_null(), "{config}");
}

/// Two machines, `a` and `b`, that back up to `url`; each starts its own history.
fn two_machines(a: &TestEnv, b: &TestEnv, url: &str) -> (PathBuf, PathBuf) {
    let ma = a.with_mounts(1).remove(0);
    a.ok(&["remote", "add", url]);
    std::fs::write(ma.join("hello.md"), "hello from a\n").unwrap();
    a.ok(&["sync"]);
    // b starts its own history, then meets a's through the remote.
    let mb = b.with_mounts(1).remove(0);
    std::fs::write(mb.join("own.md"), "b's own start\n").unwrap();
    b.ok(&["remote", "add", url]);
    b.ok(&["sync"]);
    wait_content(&mb.join("hello.md"), "hello from a\n");
    a.ok(&["sync"]);
    wait_content(&ma.join("own.md"), "b's own start\n");
    (ma, mb)
}

/// Edits in both directions and a concurrent edit of one file, over `url`.
fn converge(a: &TestEnv, b: &TestEnv, ma: &Path, mb: &Path) {
    std::fs::write(ma.join("from-a.md"), "written on a\n").unwrap();
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    wait_content(&mb.join("from-a.md"), "written on a\n");

    std::fs::create_dir_all(mb.join("dir")).unwrap();
    std::fs::write(mb.join("dir/from-b.md"), "written on b\n").unwrap();
    std::fs::remove_file(mb.join("hello.md")).unwrap();
    b.ok(&["sync"]);
    a.ok(&["sync"]);
    wait_content(&ma.join("dir/from-b.md"), "written on b\n");
    common::wait_gone(&ma.join("hello.md"));

    // One file, edited on both machines before either hears of the other: a true conflict,
    // shown the same way on both.
    std::fs::write(ma.join("shared.md"), "base\n").unwrap();
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    wait_content(&mb.join("shared.md"), "base\n");
    std::fs::write(ma.join("shared.md"), "edited on a\n").unwrap();
    std::fs::write(mb.join("shared.md"), "edited on b\n").unwrap();
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    a.ok(&["sync"]);
    wait_for("the conflict to reach a", || {
        read(&ma.join("shared.md")).is_some_and(|t| t.contains("<<<<<<<"))
    });
    let on_a = read(&ma.join("shared.md")).unwrap();
    let on_b = read(&mb.join("shared.md")).unwrap();
    assert_eq!(on_a, on_b, "the machines show different conflicts");
    assert!(
        on_a.contains("edited on a") && on_a.contains("edited on b"),
        "{on_a}"
    );
    for env in [a, b] {
        let conflicts = &repo_status(env, "default")["conflicts"];
        assert_eq!(conflicts, &serde_json::json!(["shared.md"]));
    }

    // Resolving it on one machine resolves it on both.
    std::fs::write(mb.join("shared.md"), "resolved\n").unwrap();
    b.ok(&["sync"]);
    a.ok(&["sync"]);
    wait_content(&ma.join("shared.md"), "resolved\n");
    assert_eq!(
        repo_status(a, "default")["conflicts"],
        serde_json::json!([])
    );
    assert_eq!(
        common::snapshot_tree(ma),
        common::snapshot_tree(mb),
        "the machines did not converge"
    );
}

#[test]
fn two_machines_with_one_remote_converge_both_ways() {
    let shared = TestEnv::new();
    let bare = bare_repo(&shared, "shared");
    let (a, b) = (TestEnv::new(), TestEnv::new());
    let (ma, mb) = two_machines(&a, &b, bare.to_str().unwrap());
    converge(&a, &b, &ma, &mb);
    // Never forced: every push was a fast-forward, so the remote's first history is kept.
    let subjects = git(&bare, &["log", "--format=%s", "main"]);
    assert!(subjects.contains("jjfs: sync from"), "{subjects}");
    assert_eq!(
        subjects.matches("jjfs: create repository").count(),
        1,
        "{subjects}"
    );
}

/// An sshd on 127.0.0.1 that accepts one generated key, for as long as it lives.
struct Sshd {
    child: Child,
    port: u16,
    key: PathBuf,
}

impl Sshd {
    fn start(dir: &Path) -> Self {
        let run = |cmd: &mut Command| {
            let out = cmd.output().unwrap();
            assert!(
                out.status.success(),
                "{cmd:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let host_key = dir.join("host_key");
        let key = dir.join("user_key");
        for k in [&host_key, &key] {
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(k));
        }
        std::fs::copy(key.with_extension("pub"), dir.join("authorized_keys")).unwrap();
        // sshd's privilege separation directory, which a fresh Debian lacks until boot.
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1:{port}\nHostKey {}\nAuthorizedKeysFile {}\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nStrictModes no\n\
                 PermitRootLogin prohibit-password\nUsePAM no\nPidFile {}\n",
                host_key.display(),
                dir.join("authorized_keys").display(),
                dir.join("sshd.pid").display(),
            ),
        )
        .unwrap();
        let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("sshd is not installed (apt-get install openssh-server)");
        let child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("sshd.log")).unwrap())
            .spawn()
            .unwrap();
        wait_for("sshd to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Self { child, port, key }
    }

    /// The `GIT_SSH_COMMAND` that logs in with the generated key.
    fn ssh_command(&self) -> String {
        format!(
            "ssh -i {} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no \
             -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR",
            self.key.display()
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn two_machines_converge_over_ssh() {
    let shared = TestEnv::new();
    let bare = bare_repo(&shared, "over-ssh");
    let sshd = Sshd::start(&shared.work());
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name;
    let url = format!("ssh://{user}@127.0.0.1:{}{}", sshd.port, bare.display());
    let ssh = sshd.ssh_command();
    let a = TestEnv::new().with_env("GIT_SSH_COMMAND", &ssh);
    let b = TestEnv::new().with_env("GIT_SSH_COMMAND", &ssh);
    let (ma, mb) = two_machines(&a, &b, &url);
    assert_eq!(
        remote_file(&bare, "main", "hello.md").as_deref(),
        Some("hello from a\n")
    );
    converge(&a, &b, &ma, &mb);
    assert_eq!(repo_status(&a, "default")["remote"], url.as_str());
}

#[test]
fn a_failing_remote_delays_backups_but_not_local_sync_and_recovers_by_itself() {
    let env = TestEnv::new();
    let mounts = env.with_mounts(2);
    let missing = env.work().join("later.git");
    env.ok(&["remote", "add", missing.to_str().unwrap()]);

    // The remote is missing: sync holds locally and warns; status says delayed and why.
    std::fs::write(mounts[0].join("while-down.md"), "kept locally\n").unwrap();
    let out = env.run(&["sync"]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("warning: remote"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    wait_content(&mounts[1].join("while-down.md"), "kept locally\n");
    let status = repo_status(&env, "default");
    assert_eq!(status["remote_state"], "delayed", "{status}");
    assert!(status["last_error"].is_string(), "{status}");
    assert!(status["next_retry"].is_string(), "{status}");
    let human = env.ok(&["status"]);
    assert!(human.contains("remote sync delayed"), "{human}");

    // Local propagation keeps going meanwhile.
    std::fs::write(mounts[1].join("more.md"), "still syncing\n").unwrap();
    wait_content(&mounts[0].join("more.md"), "still syncing\n");

    // The remote appears but refuses pushes: the remote's own message is shown.
    let bare = env.work().join("later.git");
    git(
        &env.work(),
        &["init", "--bare", "-q", bare.to_str().unwrap()],
    );
    let hook = bare.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\necho 'backups are paused by the admin' >&2\nexit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = env.run(&["sync"]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("backups are paused by the admin"),
        "{stderr}"
    );
    let error = repo_status(&env, "default")["last_error"].clone();
    assert!(
        error
            .as_str()
            .is_some_and(|e| e.contains("backups are paused")),
        "{error}"
    );

    // The remote comes back: the backup catches up with no command.
    std::fs::remove_file(&hook).unwrap();
    wait_for("the remote to recover by itself", || {
        repo_status(&env, "default")["remote_state"] == "ok"
    });
    assert_eq!(
        remote_file(&bare, "main", "while-down.md").as_deref(),
        Some("kept locally\n")
    );
    assert_eq!(
        remote_file(&bare, "main", "more.md").as_deref(),
        Some("still syncing\n")
    );
}

#[test]
fn init_from_keeps_the_imported_history_and_backs_up_to_it() {
    let env = TestEnv::new();
    // A project made with git alone, whose default branch is not `main`.
    let source = env.work().join("source");
    git(
        &env.work(),
        &["init", "-q", "-b", "develop", source.to_str().unwrap()],
    );
    std::fs::write(source.join("README.md"), "imported project\n").unwrap();
    git(&source, &["add", "."]);
    git(&source, &["commit", "-q", "-m", "first commit"]);
    std::fs::create_dir(source.join("docs")).unwrap();
    std::fs::write(source.join("docs/guide.md"), "a guide\n").unwrap();
    git(&source, &["add", "."]);
    git(&source, &["commit", "-q", "-m", "second commit"]);
    git(&source, &["branch", "side"]);
    git(
        &env.work(),
        &["clone", "-q", "--bare", "source", "origin.git"],
    );
    let origin = env.work().join("origin.git");
    let imported = git(&origin, &["log", "--format=%H", "develop"]);

    let out = env.run(&["init", "project", "--from", "origin.git"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("trunk develop"), "{stdout}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Fetching"),
        "{out:?}"
    );
    let status = repo_status(&env, "project");
    assert_eq!(status["trunk"], "develop");
    assert_eq!(status["remote"], origin.to_str().unwrap());

    let mount = env.open("project", "project");
    assert_eq!(
        read(&mount.join("docs/guide.md")).as_deref(),
        Some("a guide\n")
    );
    // The imported commits are the repo's history (jj-lib's view, through the jj CLI).
    let history = env.jj(
        &env.history_dir(&mount),
        &[
            "--ignore-working-copy",
            "log",
            "--no-graph",
            "-r",
            "::develop",
            "-T",
            "commit_id ++ \"\\n\"",
        ],
    );
    for id in imported.lines() {
        assert!(history.contains(id), "{id} is missing from {history}");
    }

    // New work goes on top of it, to the same branch of the same remote.
    std::fs::write(mount.join("docs/guide.md"), "a better guide\n").unwrap();
    env.ok(&["sync", "project"]);
    assert_eq!(
        remote_file(&origin, "develop", "docs/guide.md").as_deref(),
        Some("a better guide\n")
    );
    let log = git(&origin, &["log", "--format=%s", "develop"]);
    assert!(log.contains("jjfs: sync from"), "{log}");
    assert!(
        log.contains("second commit") && log.contains("first commit"),
        "{log}"
    );

    // A bad source creates nothing.
    let err = env.fails(&[
        "init",
        "broken",
        "--from",
        env.work().join("nothing.git").to_str().unwrap(),
    ]);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].contains("Could not find repository"), "{err}");
    assert!(!env.home().join("repos/broken").exists());
    assert!(
        env.json(&["status", "--json"])["repos"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["name"] != "broken")
    );
}

#[test]
fn init_from_an_empty_remote_starts_the_history_there() {
    let env = TestEnv::new();
    let bare = bare_repo(&env, "empty");
    let out = env.ok(&["init", "fresh", "--from", bare.to_str().unwrap()]);
    assert!(out.contains("trunk main"), "{out}");
    let mount = env.open("fresh", "fresh");
    std::fs::write(mount.join("first.md"), "first\n").unwrap();
    env.ok(&["sync", "fresh"]);
    assert_eq!(
        remote_file(&bare, "main", "first.md").as_deref(),
        Some("first\n")
    );
}

/// One entry of a git tree: mode, name, hex object id.
struct TreeEntry {
    mode: String,
    name: Vec<u8>,
    id: String,
}

fn entry(mode: &str, name: &[u8], id: &str) -> TreeEntry {
    TreeEntry {
        // Trees are written "40000", as git does (ls-tree shows "040000").
        mode: mode.trim_start_matches('0').to_owned(),
        name: name.to_vec(),
        id: id.trim().to_owned(),
    }
}

/// Writes a tree object of `entries` into `bare` byte for byte, so that names git's own
/// tools refuse (`..`, `.git`, one holding `/`) can be made. Returns its id.
fn raw_tree(bare: &Path, entries: &[TreeEntry]) -> String {
    let mut bytes = Vec::new();
    for e in entries {
        bytes.extend_from_slice(e.mode.as_bytes());
        bytes.push(b' ');
        bytes.extend_from_slice(&e.name);
        bytes.push(0);
        bytes.extend(
            (0..e.id.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&e.id[i..i + 2], 16).unwrap()),
        );
    }
    git_input_trimmed(
        bare,
        &["hash-object", "-t", "tree", "--literally", "-w", "--stdin"],
        &bytes,
    )
}

/// The entries of `rev`'s root tree in `bare`.
fn tree_entries(bare: &Path, rev: &str) -> Vec<TreeEntry> {
    git(bare, &["ls-tree", "-z", rev])
        .split('\0')
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (meta, name) = line.split_once('\t').unwrap();
            let meta: Vec<&str> = meta.split(' ').collect();
            entry(meta[0], name.as_bytes(), meta[2])
        })
        .collect()
}

/// A commit in `bare` whose root tree is `parent`'s (if any) plus `extra`; returns its id.
fn commit_with(bare: &Path, parent: Option<&str>, extra: Vec<TreeEntry>) -> String {
    let mut entries = parent.map(|p| tree_entries(bare, p)).unwrap_or_default();
    entries.extend(extra);
    let tree = raw_tree(bare, &entries);
    let mut args = vec!["commit-tree", tree.as_str(), "-m", "from another machine"];
    if let Some(parent) = parent {
        args.extend(["-p", parent]);
    }
    git(bare, &args).trim().to_owned()
}

/// An unsafe root entry a hostile or broken machine can push, and how its path is reported.
struct Unsafe {
    entry: TreeEntry,
    shown: &'static str,
}

/// Three kinds of unsafe entry, made in `bare`. (An empty name would be a fourth, but git
/// itself refuses to send a tree holding one.)
fn unsafe_entries(bare: &Path) -> Vec<Unsafe> {
    let blob = git_input_trimmed(bare, &["hash-object", "-w", "--stdin"], b"evil\n");
    let holding = |name: &[u8]| raw_tree(bare, &[entry("100644", name, &blob)]);
    vec![
        Unsafe {
            entry: entry("40000", b"..", &holding(b"evil")),
            shown: "\"../evil\"",
        },
        Unsafe {
            entry: entry("40000", b".git", &holding(b"config")),
            shown: "\".git/config\"",
        },
        Unsafe {
            entry: entry("100644", b"x/../../y", &blob),
            shown: "\"x/../../y\" (a name holding \"/\")",
        },
    ]
}

/// The commit `rev` names in git directory `dir`.
fn rev_parse(dir: &Path, rev: &str) -> String {
    git(dir, &["rev-parse", rev]).trim().to_owned()
}

#[test]
fn a_bad_commit_on_the_remote_never_wedges_the_repo() {
    let env = TestEnv::new();
    let bare = bare_repo(&env, "shared");
    let mounts = env.with_mounts(2);
    env.ok(&["remote", "add", bare.to_str().unwrap()]);
    std::fs::write(mounts[0].join("start.md"), "before\n").unwrap();
    env.ok(&["sync"]);
    let good = rev_parse(&bare, "main");
    let pid = env.daemon_pid();
    let store = env.home().join("repos/default/.jj/repo/store/git");

    for (round, Unsafe { entry, shown }) in unsafe_entries(&bare).into_iter().enumerate() {
        // Another machine pushes a commit on top of the remote's main holding the bad path.
        let bad = commit_with(&bare, Some(&good), vec![entry]);
        git(&bare, &["update-ref", "refs/heads/main", &bad]);

        let out = env.run(&["sync"]);
        assert!(out.status.success(), "{out:?}\n{}", env.log_tail(30));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("warning: remote"), "{stderr}");
        let status = repo_status(&env, "default");
        assert_eq!(status["remote_state"], "delayed", "{status}");
        assert!(status["next_retry"].is_string(), "{status}");
        let error = status["last_error"].as_str().unwrap_or_default().to_owned();
        assert!(
            error.contains(&format!("commit {}", &bad[..12])) && error.contains(shown),
            "round {round}: {error}"
        );
        assert!(
            error.contains("it is not integrated until the remote is fixed"),
            "{error}"
        );
        assert_eq!(error.lines().count(), 1, "{error}");
        // jj never imported it: the remote-tracking ref is back where it was.
        assert_eq!(rev_parse(&store, "refs/remotes/origin/main"), good);

        // Local sync goes on, every mount stays healthy, the daemon is the same.
        let note = format!("edit {round}\n");
        std::fs::write(mounts[0].join("local.md"), &note).unwrap();
        wait_content(&mounts[1].join("local.md"), &note);
        std::fs::write(mounts[1].join("back.md"), &note).unwrap();
        wait_content(&mounts[0].join("back.md"), &note);
        for mount in env.list() {
            assert_eq!(mount["health"], "healthy", "{mount}");
        }
        assert!(!mounts[0].join("..").join("evil").exists());
        assert_eq!(env.daemon_pid(), pid, "the daemon restarted");
    }

    // The remote is fixed (main forced back to good history): backups resume at once.
    git(&bare, &["update-ref", "refs/heads/main", &good]);
    std::fs::write(mounts[0].join("latest.md"), "after the fix\n").unwrap();
    env.ok(&["sync"]);
    let status = repo_status(&env, "default");
    assert_eq!(status["remote_state"], "ok", "{status}");
    assert!(status["last_error"].is_null(), "{status}");
    assert_eq!(
        remote_file(&bare, "main", "latest.md").as_deref(),
        Some("after the fix\n")
    );
    assert_eq!(
        remote_file(&bare, "main", "local.md").as_deref(),
        Some("edit 2\n")
    );
    git(&bare, &["merge-base", "--is-ancestor", &good, "main"]);
}

#[test]
fn init_from_a_remote_with_an_unsafe_path_fails_and_leaves_nothing() {
    let env = TestEnv::new();
    let bare = bare_repo(&env, "hostile");
    let blob = git_input_trimmed(&bare, &["hash-object", "-w", "--stdin"], b"a note\n");
    let main = commit_with(&bare, None, vec![entry("100644", b"notes.md", &blob)]);
    git(&bare, &["update-ref", "refs/heads/main", &main]);
    for (round, Unsafe { entry, shown }) in unsafe_entries(&bare).into_iter().enumerate() {
        // main is fine; another branch being imported holds the bad path.
        let bad = commit_with(&bare, Some(&main), vec![entry]);
        git(&bare, &["update-ref", "refs/heads/side", &bad]);
        let name = format!("hostile{round}");
        let out = env.run(&["init", &name, "--from", bare.to_str().unwrap()]);
        assert!(!out.status.success(), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        assert!(
            errors[0].contains(&format!("the remote's side has commit {}", &bad[..12]))
                && errors[0].contains(shown),
            "{stderr}"
        );
        assert!(!env.home().join("repos").join(&name).exists());
        let config = std::fs::read_to_string(env.home().join("config.json")).unwrap_or_default();
        assert!(!config.contains(&name), "{config}");
    }
    // The same remote once fixed imports fine.
    git(&bare, &["update-ref", "-d", "refs/heads/side"]);
    env.ok(&["init", "fixed", "--from", bare.to_str().unwrap()]);
    let mount = env.open("fixed", "fixed");
    assert_eq!(read(&mount.join("notes.md")).as_deref(), Some("a note\n"));
}

/// Processes whose environment has `JJFS_HOME=home`: (pid, parent pid, command line, whether
/// it carries a git call's deadline marker).
fn processes_of(home: &Path) -> Vec<(i32, i32, String, bool)> {
    let want = format!("JJFS_HOME={}", home.display());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let vars: Vec<&[u8]> = environ.split(|&b| b == 0).collect();
        if !vars.contains(&want.as_bytes()) {
            continue;
        }
        let marked = vars.iter().any(|v| v.starts_with(b"JJFS_GIT_CALL="));
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0);
        found.push((pid, ppid, cmdline, marked));
    }
    found
}

#[test]
fn a_remote_that_never_answers_is_given_up_on_at_the_deadline() {
    let scratch = tempfile::tempdir().unwrap();
    let never = scratch.path().join("never-answers.sh");
    std::fs::write(&never, "#!/bin/sh\nsleep 3600\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&never, std::fs::Permissions::from_mode(0o755)).unwrap();
    let env = TestEnv::new()
        .with_env("GIT_SSH_COMMAND", never.to_str().unwrap())
        .with_env("JJFS_REMOTE_TIMEOUT", "5");
    let mounts = env.with_mounts(2);
    let daemon = env.daemon_pid().unwrap() as i32;
    env.ok(&["remote", "add", "ssh://127.0.0.1:1/never.git"]);
    std::fs::write(mounts[0].join("note.md"), "kept locally\n").unwrap();

    // `jjfs sync` returns within the deadline and a little, with its warning.
    let started = std::time::Instant::now();
    let mut sync = env
        .jjfs_cmd()
        .arg("sync")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let limit = std::time::Duration::from_secs(15);
    let finished = common::wait_until(limit, || sync.try_wait().unwrap().is_some());
    if !finished {
        let _ = sync.kill();
    }
    let out = sync.wait_with_output().unwrap();
    assert!(finished, "jjfs sync was still waiting after {limit:?}");
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("warning: remote")
            && stderr.contains("remote ssh://127.0.0.1:1/never.git did not answer within 5 s"),
        "{stderr}"
    );
    eprintln!("jjfs sync returned after {:?}", started.elapsed());
    wait_content(&mounts[1].join("note.md"), "kept locally\n");
    let status = repo_status(&env, "default");
    assert_eq!(status["remote_state"], "delayed", "{status}");
    assert!(
        status["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("did not answer within 5 s")),
        "{status}"
    );

    // With the remote removed, no git, ssh or sleep of the daemon's is left behind: each
    // retry meanwhile was killed at its deadline too.
    env.ok(&["remote", "remove"]);
    let leftovers = || {
        processes_of(&env.home())
            .into_iter()
            .filter(|(pid, ppid, cmd, marked)| {
                *marked || (*ppid == daemon && !cmd.contains("--watchdog") && *pid != daemon)
            })
            .collect::<Vec<_>>()
    };
    let clean = common::wait_until(std::time::Duration::from_secs(15), || {
        leftovers().is_empty()
    });
    assert!(clean, "left behind: {:?}", leftovers());

    // A call in progress does not hold up the daemon's shutdown either.
    env.ok(&["remote", "add", "ssh://127.0.0.1:1/never.git"]);
    wait_for("a git call to the remote", || {
        processes_of(&env.home())
            .iter()
            .any(|p| p.3 && p.2.contains("sleep"))
    });
    let stopping = std::time::Instant::now();
    env.ok(&["stop"]);
    let everything_gone = common::wait_until(std::time::Duration::from_secs(10), || {
        processes_of(&env.home()).is_empty()
    });
    assert!(
        everything_gone,
        "left behind: {:?}",
        processes_of(&env.home())
    );
    assert!(
        stopping.elapsed() < std::time::Duration::from_secs(4),
        "stopping took {:?}: the call was not cancelled",
        stopping.elapsed()
    );
}

/// `git_with_input`'s stdout without its trailing newline (an object id).
fn git_input_trimmed(dir: &Path, args: &[&str], input: &[u8]) -> String {
    common::git_with_input(dir, args, input).trim().to_owned()
}

//! The daemon's lifecycle as a user meets it: autostart, one daemon per home, stale locks,
//! the socket's protocol and permissions, a corrupt config, stop.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;

use common::{TestEnv, process_alive, wait_for};

#[test]
fn autostart_brings_a_daemon_up_and_stop_takes_it_down() {
    let env = TestEnv::new();
    assert_eq!(env.daemon_pid(), None);
    let status = env.json(&["status", "--json"]);
    let pid = status["daemon"]["pid"].as_u64().unwrap() as u32;
    assert_eq!(env.daemon_pid(), Some(pid));
    assert_eq!(status["daemon"]["mode"], "direct");
    assert!(process_alive(pid));

    let out = env.ok(&["stop"]);
    assert!(out.contains("stopped"), "{out}");
    assert!(!process_alive(pid), "jjfsd {pid} still runs after stop");
    assert_eq!(env.daemon_pid(), None);
    assert!(!env.home().join("daemon.sock").exists());
    // A second stop finds nothing to stop and says so.
    assert!(env.ok(&["stop"]).contains("not running"));
}

#[test]
fn no_autostart_when_disabled() {
    let env = TestEnv::new();
    let out = env
        .jjfs_cmd()
        .env("JJFS_NO_AUTOSTART", "1")
        .args(["status"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: jjfsd is not running"),
        "{stderr}"
    );
    assert_eq!(env.daemon_pid(), None);
}

#[test]
fn a_second_daemon_is_refused() {
    let env = TestEnv::new();
    env.ok(&["start"]);
    let first = env.daemon_pid().unwrap();
    let out = env.jjfsd_cmd().arg("--foreground").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("already running (pid {first})")),
        "{stderr}"
    );
    assert_eq!(env.daemon_pid(), Some(first));
    // `start` with one running says so and succeeds.
    assert!(env.ok(&["start"]).contains("already running"));
}

#[test]
fn a_killed_daemons_stale_lock_is_taken_over() {
    let env = TestEnv::new();
    env.ok(&["start"]);
    let first = env.daemon_pid().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for("the killed daemon to die", || !process_alive(first));
    // The lock file and socket are still there, with the dead pid.
    assert!(env.home().join("daemon.lock").exists());
    assert!(env.home().join("daemon.sock").exists());
    let status = env.json(&["status", "--json"]);
    let second = status["daemon"]["pid"].as_u64().unwrap() as u32;
    assert_ne!(first, second);
    assert_eq!(env.daemon_pid(), Some(second));
}

#[test]
fn socket_is_private() {
    let env = TestEnv::new();
    env.ok(&["start"]);
    let sock = std::fs::metadata(env.home().join("daemon.sock")).unwrap();
    assert_eq!(sock.permissions().mode() & 0o777, 0o600);
    let home = std::fs::metadata(env.home()).unwrap();
    assert_eq!(home.permissions().mode() & 0o777, 0o700);
}

/// Sends raw lines on one connection and returns the parsed replies.
fn exchange(env: &TestEnv, lines: &[&[u8]]) -> Vec<serde_json::Value> {
    let stream = UnixStream::connect(env.home().join("daemon.sock")).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut replies = Vec::new();
    for line in lines {
        writer.write_all(line).unwrap();
        writer.write_all(b"\n").unwrap();
        let mut reply = String::new();
        if reader.read_line(&mut reply).unwrap() == 0 {
            break;
        }
        replies.push(serde_json::from_str(&reply).unwrap());
    }
    replies
}

#[test]
fn bad_requests_get_json_rpc_errors_and_the_daemon_keeps_serving() {
    let env = TestEnv::new();
    env.ok(&["start"]);
    let replies = exchange(
        &env,
        &[
            b"{this is not json",
            br#"{"jsonrpc":"2.0","method":"no_such_method","id":7}"#,
            br#"{"jsonrpc":"1.0","method":"status","id":8}"#,
            br#"[1,2,3]"#,
            br#"{"jsonrpc":"2.0","method":"init","params":{"nme":"x"},"id":9}"#,
            br#"{"jsonrpc":"2.0","method":"status","id":10}"#,
        ],
    );
    let codes: Vec<i64> = replies
        .iter()
        .map(|r| r["error"]["code"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(codes, vec![-32700, -32601, -32600, -32600, -32602, 0]);
    assert_eq!(replies[1]["id"], 7);
    assert!(replies[5]["result"]["daemon"]["pid"].is_u64());

    // An oversized line gets an error and its connection is closed.
    let huge = vec![b'x'; 2 << 20];
    let replies = exchange(&env, &[&huge]);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0]["error"]["code"], -32600);
    assert!(
        replies[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("longer")
    );

    // The daemon still answers.
    env.json(&["status", "--json"]);
}

#[test]
fn a_corrupt_config_is_reported_and_left_as_it_was() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.home()).unwrap();
    let config = env.home().join("config.json");
    std::fs::write(&config, "{\"repos\": {oops").unwrap();
    let stderr = env.fails(&["status"]);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("config.json"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "{\"repos\": {oops"
    );
    assert_eq!(env.daemon_pid(), None);
}

#[test]
fn every_command_has_help() {
    let env = TestEnv::new();
    for cmd in [
        "init",
        "remote",
        "open",
        "close",
        "list",
        "status",
        "sync",
        "start",
        "stop",
        "config",
        "log",
        "cat",
        "diff",
        "restore",
        "undo",
        "install",
        "uninstall",
        "completions",
    ] {
        let out = env.ok(&[cmd, "--help"]);
        assert!(out.contains("Usage: jjfs"), "{cmd}: {out}");
    }
    assert!(env.ok(&["completions", "bash"]).contains("jjfs"));
    assert_eq!(env.daemon_pid(), None, "--help must not start a daemon");
}

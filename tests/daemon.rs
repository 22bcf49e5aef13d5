//! The daemon's lifecycle as a user meets it: autostart, one daemon per home, stale locks,
//! the socket's protocol and permissions, a corrupt config, stop, and clients that misbehave
//! (never read, never close, too many) or a daemon out of file descriptors.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{TestEnv, cpu_ticks, open_fds, process_alive, rss_bytes, wait_for};

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

/// Waits until process `pid` has used (almost) no CPU for two seconds in a row and `progress`
/// has not moved meanwhile: it has done all it is going to do. Returns the peak RSS seen.
fn wait_until_quiet(pid: u32, progress: &AtomicUsize, limit: Duration) -> u64 {
    let deadline = Instant::now() + limit;
    let mut peak = rss_bytes(pid);
    let mut window = (
        Instant::now(),
        cpu_ticks(pid),
        progress.load(Ordering::SeqCst),
    );
    loop {
        std::thread::sleep(Duration::from_millis(100));
        peak = peak.max(rss_bytes(pid));
        let now = (
            Instant::now(),
            cpu_ticks(pid),
            progress.load(Ordering::SeqCst),
        );
        if now.1 > window.1 + 2 || now.2 != window.2 {
            window = now;
        } else if now.0 - window.0 >= Duration::from_secs(2) && now.2 > 0 {
            return peak;
        }
        assert!(
            Instant::now() < deadline,
            "jjfsd (pid {pid}) never went quiet"
        );
    }
}

#[test]
fn a_client_that_never_reads_its_replies_cannot_grow_the_daemon() {
    let env = TestEnv::new();
    let mount = env.with_mounts(1).remove(0);
    let content: String = (0..128 * 1024)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    std::fs::write(mount.join("big.txt"), &content).unwrap();
    env.ok(&["sync"]);
    let log = env.json(&["log", "--json", "--repo", "default", "big.txt"]);
    let change = log["entries"][0]["change"].as_str().unwrap().to_owned();
    let cat = ["cat", "--repo", "default", "--at", &change, "big.txt"];
    assert_eq!(env.ok(&cat), content);
    let pid = env.daemon_pid().unwrap();
    let before = rss_bytes(pid);

    // 1,500 pipelined `cat`s, ~200 MiB of replies, on a connection that is never read.
    let stream = UnixStream::connect(env.home().join("daemon.sock")).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let request = move |id: usize| {
        format!(
            "{{\"jsonrpc\":\"2.0\",\"method\":\"cat\",\"params\":{{\"repo\":\"default\",\
             \"paths\":[\"big.txt\"],\"at\":\"{change}\"}},\"id\":{id}}}\n"
        )
    };
    let flood = std::thread::spawn(move || {
        for id in 0..1500 {
            if writer.write_all(request(id).as_bytes()).is_err() {
                return;
            }
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let peak = wait_until_quiet(pid, &sent, Duration::from_secs(240));
    let growth = peak.saturating_sub(before);
    eprintln!(
        "{} requests written; daemon RSS grew by {} MiB",
        sent.load(Ordering::SeqCst),
        growth >> 20
    );
    assert!(growth <= 64 << 20, "jjfsd grew by {} MiB", growth >> 20);

    // Other clients are served meanwhile.
    let out = env.run_within(Duration::from_secs(10), &["status", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The flooding client still gets its answers, in order, once it reads.
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    for id in 0..3 {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let reply: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(reply["id"], id);
        assert_eq!(
            reply["result"]["text"].as_str().map(str::len),
            Some(content.len())
        );
    }
    stream.shutdown(std::net::Shutdown::Both).unwrap();
    flood.join().unwrap();
    env.run_within(Duration::from_secs(10), &["status"]);
}

#[test]
fn idle_connections_are_bounded_and_never_lock_a_user_out() {
    let env = TestEnv::new();
    env.ok(&["start"]);
    let pid = env.daemon_pid().unwrap();
    let before = open_fds(pid);
    let socket = env.home().join("daemon.sock");
    let idle: Vec<UnixStream> = (0..1000)
        .map(|_| UnixStream::connect(&socket).unwrap())
        .collect();
    // Connections are accepted in order: once a later one is answered, all 1,000 are in.
    let start = Instant::now();
    let out = env.run_within(Duration::from_secs(10), &["status", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "status took {:?}",
        start.elapsed()
    );
    // Connections it closed to make room are gone soon after (each task finishes on its own).
    let mut held = 0;
    let bounded = common::wait_until(Duration::from_secs(10), || {
        held = open_fds(pid).saturating_sub(before);
        held <= 256 + 8
    });
    assert!(
        bounded,
        "jjfsd holds {held} more descriptors for 1,000 idle clients"
    );

    // The oldest idle connection was told why it was closed.
    let mut oldest = idle[0].try_clone().unwrap();
    oldest
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut text = String::new();
    oldest.read_to_string(&mut text).unwrap();
    let reply: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("too many connections"),
        "{text}"
    );
    drop(idle);
    let out = env.run_within(Duration::from_secs(10), &["status"]);
    assert!(out.status.success());
}

#[test]
fn a_daemon_out_of_file_descriptors_says_so_and_recovers() {
    let env = TestEnv::new();
    let started = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("ulimit -n 256 && exec {} start", common::JJFS))
        .env("JJFS_HOME", env.home())
        .current_dir(env.work())
        .output()
        .unwrap();
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    let pid = env.daemon_pid().unwrap();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max open files") && l.contains(" 256 ")),
        "{limits}"
    );
    let socket = env.home().join("daemon.sock");
    let idle: Vec<UnixStream> = (0..300)
        .map(|_| UnixStream::connect(&socket).unwrap())
        .collect();

    // Out of descriptors: a new client is told so at once instead of hanging, and the
    // daemon does not spin meanwhile.
    let out = env.run_within(Duration::from_secs(10), &["status"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.starts_with("error: ") && stderr.contains("too many open files"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    let ticks = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(pid) - ticks;
    assert!(
        used < 50,
        "jjfsd used {used} ticks of CPU in 2 s while out of descriptors"
    );

    // Once the clients go, it serves again, the same daemon.
    drop(idle);
    let start = Instant::now();
    let status = loop {
        let out = env.run_within(Duration::from_secs(10), &["status", "--json"]);
        if out.status.success() {
            break serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap();
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status["daemon"]["pid"], pid);
    assert!(process_alive(pid));
}

//! The event stream (`jjfs events`) and the metrics endpoint, read as a script and a
//! scraper would: JSON lines with consecutive sequence numbers, `--after` replays, a
//! `synced` event only once the change is readable everywhere; `/metrics` in the Prometheus
//! text format, its counters moving with syncs, served and stopped by `config --global`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{TestEnv, output_within, wait_for};

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `jjfs events ARGS`, which must end by itself (it has `--count`); its lines as JSON.
fn events(env: &TestEnv, args: &[&str]) -> Vec<serde_json::Value> {
    let mut cmd = env.jjfs_cmd();
    cmd.arg("events").args(args);
    let (out, _) = output_within(&mut cmd, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("jjfs events {args:?} did not end"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

fn kinds(events: &[serde_json::Value]) -> Vec<&str> {
    events.iter().map(|e| e["kind"].as_str().unwrap()).collect()
}

#[test]
fn a_scripted_sequence_gives_the_expected_events_and_after_replays_them() {
    let env = TestEnv::new();
    let m = env.with_mounts(2);
    let (m0, m1) = (&m[0], &m[1]);

    std::fs::write(m0.join("a.md"), "a\n").unwrap();
    env.ok(&["sync"]);
    let first = events(&env, &["--json", "--after", "0", "--count", "1"]);
    let e = &first[0];
    assert_eq!(e["kind"], "synced");
    assert_eq!(e["repo"], "default");
    assert_eq!(e["mount"], s(m0));
    assert_eq!(e["paths"], serde_json::json!(["a.md"]));
    assert!(e["detail"].is_null());
    chrono::DateTime::parse_from_rfc3339(e["time"].as_str().unwrap()).unwrap();
    let last = e["seq"].as_u64().unwrap();

    // Waiting for the next change without a race: it is readable everywhere once told.
    let mut waiter = env
        .jjfs_cmd()
        .args([
            "events",
            "--json",
            "--count",
            "1",
            "--after",
            &last.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::fs::write(m0.join("c.md"), "c\n").unwrap();
    let mut line = String::new();
    BufReader::new(waiter.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let told: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(told["kind"], "synced", "{told}");
    assert_eq!(told["paths"], serde_json::json!(["c.md"]));
    assert_eq!(told["seq"].as_u64(), Some(last + 1));
    assert_eq!(
        std::fs::read_to_string(m1.join("c.md")).ok().as_deref(),
        Some("c\n"),
        "a synced event comes once the change is readable in every mount"
    );
    assert!(waiter.wait().unwrap().success());
    let last = last + 1;

    env.ok(&["pause", s(m1)]);
    env.ok(&["resume", s(m1)]);
    std::fs::write(m1.join("b.md"), "b\n").unwrap();
    env.ok(&["sync"]);
    let replayed = events(
        &env,
        &["--json", "--after", &last.to_string(), "--count", "3"],
    );
    assert_eq!(
        kinds(&replayed),
        ["paused", "resumed", "synced"],
        "{replayed:?}"
    );
    for (i, e) in replayed.iter().enumerate() {
        assert_eq!(e["seq"].as_u64(), Some(last + 1 + i as u64), "{e}");
    }
    assert_eq!(replayed[0]["mount"], s(m1));
    assert_eq!(replayed[2]["mount"], s(m1));
    assert_eq!(replayed[2]["paths"], serde_json::json!(["b.md"]));

    // Everything from the start, in order; text output is one line per event.
    let all = events(&env, &["--json", "--after", "0", "--count", "5"]);
    assert_eq!(
        kinds(&all),
        ["synced", "synced", "paused", "resumed", "synced"]
    );
    let mut cmd = env.jjfs_cmd();
    cmd.args(["events", "--after", "0", "--count", "2"]);
    let (out, _) = output_within(&mut cmd, Duration::from_secs(30)).unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("default synced")
            && lines[0].contains(s(m0))
            && lines[0].ends_with("a.md"),
        "{text}"
    );
    let err = env.fails(&["events", "--repo", "nosuch", "--count", "1"]);
    assert!(err.contains("unknown repo nosuch"), "{err}");
}

/// A free port on the loopback interface.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `curl` of `url`: its body, or None when nothing serves it.
fn curl(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "10", url])
        .output()
        .expect("curl runs");
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap())
}

/// `jjfs_syncs_total{repo}` in a scrape, which must parse as the Prometheus text format.
fn syncs_total(text: &str, repo: &str) -> f64 {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("the Prometheus text format");
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == "jjfs_syncs_total" && s.labels.get("repo") == Some(repo))
        .unwrap_or_else(|| panic!("no jjfs_syncs_total for {repo}:\n{text}"));
    match sample.value {
        prometheus_parse::Value::Counter(v) => v,
        ref other => panic!("jjfs_syncs_total is not a counter: {other:?}"),
    }
}

#[test]
fn metrics_are_served_where_metrics_listen_says_and_move_with_syncs() {
    let env = TestEnv::new();
    let m = env.with_mounts(2);
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/metrics");
    // Off by default.
    assert_eq!(env.ok(&["config", "--global", "metrics_listen"]).trim(), "");
    assert!(curl(&url).is_none());

    let listen = format!("127.0.0.1:{port}");
    env.ok(&["config", "--global", "metrics_listen", &listen]);
    assert_eq!(
        env.ok(&["config", "--global", "metrics_listen"]).trim(),
        listen
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.home().join("config.json")).unwrap()).unwrap();
    assert_eq!(config["metrics_listen"], listen.as_str());
    let text = curl(&url).expect("metrics served without a restart");
    let before = syncs_total(&text, "default");
    for name in [
        "jjfs_propagation_seconds_bucket",
        "jjfs_conflicts",
        "jjfs_mounts",
        "jjfs_paused_mounts",
        "jjfs_resident_memory_bytes",
    ] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    assert!(
        text.contains("jjfs_mounts{health=\"healthy\",repo=\"default\"} 2"),
        "{text}"
    );

    std::fs::write(m[0].join("one.md"), "1\n").unwrap();
    env.ok(&["sync"]);
    std::fs::write(m[1].join("two.md"), "2\n").unwrap();
    env.ok(&["sync"]);
    let after = syncs_total(&curl(&url).unwrap(), "default");
    assert_eq!(after, before + 2.0, "two syncs that recorded a change");

    env.ok(&["pause", s(&m[1])]);
    assert!(
        curl(&url)
            .unwrap()
            .contains("jjfs_paused_mounts{repo=\"default\"} 1")
    );

    // A bad value is refused in one line; the endpoint keeps serving.
    let err = env.fails(&["config", "--global", "metrics_listen", "nowhere"]);
    assert!(
        err.starts_with("error: ") && err.lines().count() == 1,
        "{err}"
    );
    assert!(curl(&url).is_some());

    // Off again, live.
    env.ok(&["config", "--global", "metrics_listen", ""]);
    wait_for("the metrics endpoint to stop", || curl(&url).is_none());
    assert_eq!(env.ok(&["config", "--global", "metrics_listen"]).trim(), "");
}

//! Propagation: from the close() of a write in one mount to the new content being readable in
//! the last of the other mounts; when a file watcher in another mount hears of it; a burst
//! of 1,000 files; the daemon's memory and idle CPU. Prints p50 (the median) and p99 over
//! many changes, with issue 17's targets beside them.
//!
//! `cargo bench --bench propagation` (as root). JJFS_BENCH_ROUNDS sets the changes per
//! configuration (default 100); JJFS_BENCH_DIR the disk (default /var/tmp);
//! JJFS_BENCH_QUICK=1 runs only the small configurations. Each configuration runs over FUSE
//! mounts and over direct mounts, side by side (JJFS_BENCH_MODE=fuse or direct: one only).
//! JJFS_BENCH_ONLY runs only the
//! configurations it names, comma-separated: `MOUNTSxFILES` (`100x1000`) or `burst`.
//! JJFS_BENCH_LOG_DIR keeps each configuration's daemon log there (with JJFS_LOG=debug it
//! holds every step's timings: a profile without a profiler).

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use support::{Env, cpu_seconds, quantile_ms, rss_mib, wait};

/// Issue 17's targets for one configuration (mounts, files): p50 and p99 of write-close ->
/// readable in the last mount, in ms, and the daemon's resident memory, in MiB.
struct Target {
    p50_ms: f64,
    p99_ms: f64,
    rss_mib: Option<f64>,
}

fn target(mounts: usize, files: usize) -> Option<Target> {
    match (mounts, files) {
        (20, 10_000) => Some(Target {
            p50_ms: 50.0,
            p99_ms: 150.0,
            rss_mib: None,
        }),
        (100, 1000) => Some(Target {
            p50_ms: 100.0,
            p99_ms: 200.0,
            rss_mib: Some(48.0),
        }),
        _ => None,
    }
}

/// The burst's target: 1,000 files in all of 20 mounts within this many seconds.
const BURST_TARGET_SECS: f64 = 2.0;

fn main() {
    let base = support::bench_dir();
    let rounds = support::env_count("JJFS_BENCH_ROUNDS", 100);
    let quick = std::env::var_os("JJFS_BENCH_QUICK").is_some();
    let only: Option<Vec<String>> = std::env::var("JJFS_BENCH_ONLY")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
    let wanted = |name: &str| only.as_ref().is_none_or(|o| o.iter().any(|n| n == name));
    let configs: &[(usize, usize)] = if quick {
        &[(2, 100), (20, 100)]
    } else {
        &[(2, 100), (20, 100), (2, 10_000), (20, 10_000), (100, 1000)]
    };
    println!(
        "propagation: {rounds} changes per configuration, under {}",
        base.display()
    );
    let modes: Vec<&str> = match std::env::var("JJFS_BENCH_MODE") {
        Ok(mode) if mode == "fuse" => vec!["fuse"],
        Ok(mode) if mode == "direct" => vec!["direct"],
        _ => vec!["fuse", "direct"],
    };
    for &(mounts, files) in configs {
        if wanted(&format!("{mounts}x{files}")) {
            for &mode in &modes {
                run_config(&base, mode, mounts, files, rounds);
            }
        }
    }
    if wanted("burst") {
        for &mode in &modes {
            burst(&base, mode, 20, 1000);
        }
    }
}

/// " (target ...: met)" for a figure against its ceiling.
fn versus(value: f64, ceiling: f64, unit: &str) -> String {
    let verdict = if value < ceiling { "met" } else { "MISSED" };
    format!(" (target under {ceiling:.0} {unit}: {verdict})")
}

/// A repo of `files` files in directories of 100, opened `mounts` times.
fn setup(base: &Path, mode: &str, mounts: usize, files: usize) -> (Env, Vec<PathBuf>) {
    let env = Env::new(base, &[]).with_mode(mode);
    env.jjfs(&["init"]);
    let first = env.open("m0");
    for i in 0..files {
        let dir = first.join(format!("files/d{:03}", i / 100));
        if i % 100 == 0 {
            std::fs::create_dir_all(&dir).unwrap();
        }
        std::fs::write(
            dir.join(format!("f{:03}.md", i % 100)),
            format!("note {i}\n"),
        )
        .unwrap();
    }
    env.jjfs(&["sync"]);
    let mut all = vec![first];
    for m in 1..mounts {
        all.push(env.open(&format!("m{m}")));
    }
    env.jjfs(&["sync"]);
    (env, all)
}

fn run_config(base: &Path, mode: &str, mounts: usize, files: usize, rounds: usize) {
    let started = Instant::now();
    let (env, all) = setup(base, mode, mounts, files);
    let pid = env.daemon_pid();
    let setup_secs = started.elapsed().as_secs_f64();
    let rss_before = rss_mib(pid);

    // One watch per other mount on the directory the changes go to.
    let inotify = Inotify::init(InitFlags::IN_NONBLOCK).unwrap();
    let mut watches: HashMap<WatchDescriptor, usize> = HashMap::new();
    for (m, mount) in all.iter().enumerate().skip(1) {
        let wd = inotify
            .add_watch(
                &mount.join("files/d000"),
                // A direct mount's update is a rename onto the name (IN_MOVED_TO).
                AddWatchFlags::IN_CLOSE_WRITE
                    | AddWatchFlags::IN_MODIFY
                    | AddWatchFlags::IN_CREATE
                    | AddWatchFlags::IN_MOVED_TO,
            )
            .unwrap();
        watches.insert(wd, m);
    }
    let mut propagation = Vec::new();
    let mut first_event_b = Vec::new();
    let mut last_event = Vec::new();
    for round in 0..rounds {
        let name = format!("f{:03}.md", round % 100.min(files));
        let rel = format!("files/d000/{name}");
        let token = format!("round {round} at {:?}\n", Instant::now());
        while inotify.read_events().is_ok() {}
        std::fs::write(all[0].join(&rel), &token).unwrap();
        let t0 = Instant::now();
        let mut done = vec![false; all.len()];
        done[0] = true;
        let mut heard_b = None;
        let mut heard_all: Vec<Option<Instant>> = vec![None; all.len()];
        let deadline = t0 + Duration::from_secs(60);
        let mut seen = Vec::new();
        while done.iter().any(|d| !d) {
            if Instant::now() > deadline {
                let have: Vec<_> = all
                    .iter()
                    .map(|m| std::fs::read_to_string(m.join(&rel)).ok())
                    .collect();
                panic!(
                    "round {round}: change did not reach every mount: want {token:?}, have {have:?}, events {seen:?}"
                );
            }
            match inotify.read_events() {
                Ok(events) => {
                    let now = Instant::now();
                    for e in events {
                        seen.push((e.name.clone(), e.mask));
                        if e.name.as_deref().map(|n| n.to_string_lossy())
                            != Some(name.as_str().into())
                        {
                            continue;
                        }
                        let Some(&m) = watches.get(&e.wd) else {
                            continue;
                        };
                        heard_all[m].get_or_insert(now);
                        if m == 1 {
                            heard_b.get_or_insert(now);
                        }
                        if !done[m]
                            && std::fs::read_to_string(all[m].join(&rel)).is_ok_and(|c| c == token)
                        {
                            done[m] = true;
                        }
                    }
                    if done.iter().all(|d| *d) {
                        propagation.push(now - t0);
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_micros(200)),
            }
        }
        if let Some(b) = heard_b {
            first_event_b.push(b - t0);
        }
        if let Some(last) = heard_all.iter().skip(1).flatten().max() {
            last_event.push(*last - t0);
        }
    }
    // Idle: no CPU and no commits when nothing changes.
    let commits = env.trunk_commits(&all[0]);
    let cpu0 = cpu_seconds(pid);
    std::thread::sleep(Duration::from_secs(5));
    let idle_cpu = cpu_seconds(pid) - cpu0;
    let idle_commits = env.trunk_commits(&all[0]) - commits;
    let rss_after = rss_mib(pid);
    let goal = target(mounts, files);
    let (p50, p99) = (
        quantile_ms(&propagation, 0.5),
        quantile_ms(&propagation, 0.99),
    );
    println!(
        "[{mode}] {mounts} mounts x {files} files (setup {setup_secs:.0} s): write-close -> readable in the last mount: p50 {p50:.1} ms{}, p99 {p99:.1} ms{}",
        goal.as_ref()
            .map_or(String::new(), |t| versus(p50, t.p50_ms, "ms")),
        goal.as_ref()
            .map_or(String::new(), |t| versus(p99, t.p99_ms, "ms")),
    );
    println!(
        "  inotify event in mount B: p50 {:.1} ms, p99 {:.1} ms; in the last mount: p50 {:.1} ms, p99 {:.1} ms",
        quantile_ms(&first_event_b, 0.5),
        quantile_ms(&first_event_b, 0.99),
        quantile_ms(&last_event, 0.5),
        quantile_ms(&last_event, 0.99)
    );
    if let Some(dir) = std::env::var_os("JJFS_BENCH_LOG_DIR") {
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::copy(
            env.home().join("sync.log"),
            Path::new(&dir).join(format!("{mode}-{mounts}x{files}.log")),
        );
    }
    let rss_goal = goal
        .and_then(|t| t.rss_mib)
        .map_or(String::new(), |ceiling| {
            versus(rss_before.max(rss_after), ceiling, "MiB")
        });
    println!(
        "  daemon RSS (VmRSS) {rss_before:.1} MiB after setup, {rss_after:.1} MiB after the changes{rss_goal}; idle 5 s: {idle_cpu:.2} s CPU, {idle_commits} commits"
    );
}

/// 1,000 files written at once in one mount: how long until every mount has them all, and
/// how many commits that made.
fn burst(base: &Path, mode: &str, mounts: usize, count: usize) {
    let (env, all) = setup(base, mode, mounts, 100);
    let before = env.trunk_commits(&all[0]);
    let t0 = Instant::now();
    std::fs::create_dir(all[0].join("burst")).unwrap();
    for i in 0..count {
        std::fs::write(
            all[0].join(format!("burst/b{i:04}.txt")),
            format!("burst {i}\n"),
        )
        .unwrap();
    }
    let written = t0.elapsed();
    wait(
        Duration::from_secs(600),
        Duration::from_millis(20),
        "the burst everywhere",
        || {
            all.iter()
                .all(|m| std::fs::read_dir(m.join("burst")).is_ok_and(|d| d.count() == count))
        },
    );
    let everywhere = t0.elapsed();
    let commits = env.trunk_commits(&all[0]) - before;
    println!(
        "[{mode}] burst: {count} files written in {:.2} s reached all {mounts} mounts in {:.2} s{}, as {commits} commits",
        written.as_secs_f64(),
        everywhere.as_secs_f64(),
        versus(everywhere.as_secs_f64(), BURST_TARGET_SECS, "s"),
    );
}

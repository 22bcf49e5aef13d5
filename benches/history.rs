//! History commands on a repo with a long history: how long `log`, `cat --at`, `diff`,
//! `restore` and `undo` take (each a real `jjfs` run against the daemon, median of several),
//! and what the history costs on disk, before and after packing.
//!
//! `cargo bench --bench history` (as root). JJFS_BENCH_SAVES sets the length of the history
//! (default 1,000 saves); JJFS_BENCH_DIR the disk (default /var/tmp).

mod support;

use std::time::{Duration, Instant};

use support::{Env, median};

/// Notes edited in turn by the saves.
const NOTES: usize = 50;
const RUNS: usize = 5;

fn main() {
    let base = support::bench_dir();
    let saves = support::env_count("JJFS_BENCH_SAVES", 1000);
    let env = Env::new(&base, &[]);
    env.jjfs(&["init"]);
    let a = env.open("a");
    let b = env.open("b");
    for n in 0..NOTES {
        std::fs::write(a.join(format!("note{n:02}.md")), "# note\n".repeat(40)).unwrap();
    }
    env.jjfs(&["sync"]);
    let size_before = history_bytes(&env);
    let started = Instant::now();
    for save in 0..saves {
        let note = a.join(format!("note{:02}.md", save % NOTES));
        let mut text = std::fs::read_to_string(&note).unwrap();
        text.push_str(&format!("line {save}\n"));
        std::fs::write(&note, text).unwrap();
        env.jjfs(&["sync"]);
    }
    let status = status(&env);
    println!(
        "history: {saves} saves of {NOTES} notes in {:.1} s; trunk has {} changes; the store grew by {:.1} MiB ({:.1} KiB a save)",
        started.elapsed().as_secs_f64(),
        status["history_commits"],
        (history_bytes(&env) - size_before) as f64 / 1048576.0,
        (history_bytes(&env) - size_before) as f64 / 1024.0 / saves as f64
    );

    // What packing (which the daemon runs by itself past git's gc.auto threshold) makes of it.
    let root = env.home().join("repos/default");
    let settings = jjfs::repo::user_settings(&jjfs::repo::Identity::from_env()).unwrap();
    let started = Instant::now();
    jjfs::repo::pack::pack(&root, &settings).unwrap();
    println!(
        "packed in {:.1} s: the store now takes {:.1} MiB ({:.1} KiB a save)",
        started.elapsed().as_secs_f64(),
        (history_bytes(&env) - size_before) as f64 / 1048576.0,
        (history_bytes(&env) - size_before) as f64 / 1024.0 / saves as f64
    );

    let log: serde_json::Value =
        serde_json::from_str(&env.jjfs(&["log", "--repo", "default", "--json"])).unwrap();
    let entries = log["entries"].as_array().unwrap();
    let oldest = entries[entries.len() - 2]["change"]
        .as_str()
        .unwrap()
        .to_owned();
    let oldest_time = entries[entries.len() - 2]["time"]
        .as_str()
        .unwrap()
        .to_owned();
    let note = "note07.md";
    let note_path = b.join(note);
    let note_arg = note_path.to_str().unwrap();
    let timed: Vec<(&str, Vec<&str>)> = vec![
        (
            "log --limit 20",
            vec!["log", "--repo", "default", "--limit", "20", "--json"],
        ),
        (
            "log (whole history)",
            vec!["log", "--repo", "default", "--json"],
        ),
        ("log FILE (whole history)", vec!["log", note_arg, "--json"]),
        (
            "cat FILE --at <oldest id>",
            vec!["cat", note_arg, "--at", &oldest],
        ),
        (
            "cat FILE --at <oldest time>",
            vec!["cat", note_arg, "--at", &oldest_time],
        ),
        ("diff FILE (its last change)", vec!["diff", note_arg]),
    ];
    for (what, args) in timed {
        let ms = median(
            (0..RUNS)
                .map(|_| {
                    time_ms(|| {
                        env.jjfs(&args);
                    })
                })
                .collect(),
        );
        println!("{what:<40} {ms:>8.1} ms (median of {RUNS})");
    }
    // restore + undo: each a new change on trunk checked out in both mounts before it returns.
    let restore = median(
        (0..RUNS)
            .map(|_| {
                let ms = time_ms(|| {
                    env.jjfs(&["restore", note_arg, "--at", &oldest]);
                });
                env.jjfs(&["undo", "--repo", "default"]);
                ms
            })
            .collect(),
    );
    println!(
        "{:<40} {restore:>8.1} ms (median of {RUNS})",
        "restore FILE --at <oldest id>"
    );
    let undo = median(
        (0..RUNS)
            .map(|_| {
                time_ms(|| {
                    env.jjfs(&["undo", "--repo", "default"]);
                })
            })
            .collect(),
    );
    println!("{:<40} {undo:>8.1} ms (median of {RUNS})", "undo");
}

fn time_ms(work: impl FnOnce()) -> f64 {
    let started = Instant::now();
    work();
    Duration::as_secs_f64(&started.elapsed()) * 1000.0
}

fn status(env: &Env) -> serde_json::Value {
    let status: serde_json::Value = serde_json::from_str(&env.jjfs(&["status", "--json"])).unwrap();
    status["repos"][0].clone()
}

fn history_bytes(env: &Env) -> u64 {
    status(env)["history_bytes"].as_u64().unwrap()
}

//! Small files: the same work on the native directory, a bindfs mirror of a directory on the
//! same disk, and a jjfs mount, side by side in one run (the three take turns, so drift hits
//! them alike). Prints each phase's median, its spread, its speed relative to native, and the
//! targets of issue 17 beside them.
//!
//! `cargo bench --bench small_files` (as root: it drops the kernel's caches for the cold
//! phases). JJFS_BENCH_FILES sets the files per run (default 2,000, in folders of 100),
//! JJFS_BENCH_RUNS the runs (default 5, at least 3), JJFS_BENCH_DIR the disk (default
//! /var/tmp).

mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use support::{Env, drop_caches, median};

/// Files per folder.
const PER_DIR: usize = 100;

/// The phases, in the order each run does them.
const PHASES: [&str; 6] = [
    "create+write+close",
    "cold stat",
    "warm stat",
    "readdir (cold)",
    "open+read",
    "rm -r",
];

/// The second stat of every file, its attributes just read: what the kernel caches serve.
const WARM_STAT: usize = 2;

/// At least this share of native speed on warm stat (issue 17).
const WARM_STAT_TARGET: f64 = 0.80;

fn main() {
    let base = support::bench_dir();
    let files = support::env_count("JJFS_BENCH_FILES", 2000).max(PER_DIR);
    let runs = support::env_count("JJFS_BENCH_RUNS", 5).max(3);

    let env = Env::new(&base, &[]);
    env.jjfs(&["init"]);
    // The benchmark's files stay local: they are not committed while measured.
    env.jjfs(&["config", "ignore", "bench/"]);
    let mount = env.open("mnt");
    let list: serde_json::Value = serde_json::from_str(&env.jjfs(&["list", "--json"])).unwrap();
    let io_mode = list["mounts"][0]["io_mode"]
        .as_str()
        .unwrap_or("?")
        .to_owned();

    let native = env.work().join("native");
    std::fs::create_dir(&native).unwrap();
    let bindfs = Bindfs::mount(
        &env.work().join("bindfs-source"),
        &env.work().join("bindfs"),
    );
    let through_jjfs = mount.join("bench");
    std::fs::create_dir(&through_jjfs).unwrap();

    let targets: [(&str, &Path); 3] = [
        ("native", &native),
        ("bindfs", &bindfs.mountpoint),
        ("jjfs", &through_jjfs),
    ];
    println!(
        "small_files: {files} files of 100 bytes in folders of {PER_DIR}, median of {runs} runs \
         (min-max in brackets), under {}; jjfs I/O: {io_mode}",
        base.display()
    );
    // times[target][phase][run], in seconds.
    let mut times = vec![vec![Vec::new(); PHASES.len()]; targets.len()];
    for run in 0..runs {
        for (t, (_, dir)) in targets.iter().enumerate() {
            let figures = measure_once(&dir.join(format!("run-{run}")), files);
            for (phase, secs) in figures.into_iter().enumerate() {
                times[t][phase].push(secs);
            }
        }
    }
    report(&targets.map(|(label, _)| label), &times, files);
    drop(bindfs);
}

/// One run of every phase in `dir` (created here, removed by the last phase).
fn measure_once(dir: &Path, files: usize) -> Vec<f64> {
    let dirs = files.div_ceil(PER_DIR);
    let paths: Vec<PathBuf> = (0..files)
        .map(|i| dir.join(format!("d{:03}/f{:03}.txt", i / PER_DIR, i % PER_DIR)))
        .collect();
    let content = [b'x'; 99]
        .iter()
        .copied()
        .chain(*b"\n")
        .collect::<Vec<u8>>();
    let mut out = Vec::with_capacity(PHASES.len());

    std::fs::create_dir(dir).unwrap();
    let t = Instant::now();
    for d in 0..dirs {
        std::fs::create_dir(dir.join(format!("d{d:03}"))).unwrap();
    }
    for path in &paths {
        let mut f = std::fs::File::create(path).unwrap();
        f.write_all(&content).unwrap();
    }
    out.push(t.elapsed().as_secs_f64());

    let stat_all = || {
        let t = Instant::now();
        for path in &paths {
            std::fs::symlink_metadata(path).unwrap();
        }
        t.elapsed().as_secs_f64()
    };
    drop_caches();
    out.push(stat_all());
    out.push(stat_all());

    drop_caches();
    let t = Instant::now();
    let mut listed = 0;
    for d in 0..dirs {
        listed += std::fs::read_dir(dir.join(format!("d{d:03}")))
            .unwrap()
            .count();
    }
    out.push(t.elapsed().as_secs_f64());
    assert_eq!(listed, files);

    let t = Instant::now();
    let mut buf = Vec::with_capacity(256);
    for path in &paths {
        buf.clear();
        std::fs::File::open(path)
            .unwrap()
            .read_to_end(&mut buf)
            .unwrap();
        assert_eq!(buf.len(), content.len());
    }
    out.push(t.elapsed().as_secs_f64());

    let t = Instant::now();
    std::fs::remove_dir_all(dir).unwrap();
    out.push(t.elapsed().as_secs_f64());
    out
}

fn report(labels: &[&str], times: &[Vec<Vec<f64>>], files: usize) {
    let cell = |samples: &[f64]| {
        let lo = samples.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = samples.iter().copied().fold(0.0, f64::max);
        format!(
            "{:7.1} ms [{:.0}-{:.0}]",
            median(samples.to_vec()) * 1e3,
            lo * 1e3,
            hi * 1e3
        )
    };
    print!("{:<20}", "phase");
    for label in labels {
        print!(" {label:<30}");
    }
    println!(" target");
    let mut missed = 0;
    for (phase, name) in PHASES.iter().enumerate() {
        let native = median(times[0][phase].clone());
        let bindfs = median(times[1][phase].clone());
        let jjfs = median(times[2][phase].clone());
        print!("{name:<20}");
        for (t, per_target) in times.iter().enumerate() {
            let samples = &per_target[phase];
            let ratio = if t == 0 {
                format!("{:.1} us/file", native * 1e6 / files as f64)
            } else {
                format!("{:.0}%", 100.0 * native / median(samples.clone()))
            };
            print!(" {:<30}", format!("{} {ratio}", cell(samples)));
        }
        let mut target = "at least bindfs's speed".to_owned();
        let mut met = jjfs <= bindfs;
        if phase == WARM_STAT {
            target.push_str(&format!(" and {:.0}% of native", WARM_STAT_TARGET * 100.0));
            met &= native / jjfs >= WARM_STAT_TARGET;
        }
        if !met {
            missed += 1;
        }
        println!(" {target}: {}", if met { "met" } else { "MISSED" });
    }
    println!(
        "speed is native time / time (100% = native); {missed} of {} targets missed",
        PHASES.len()
    );
}

/// A bindfs mirror of `source` at `mountpoint` (Debian's `bindfs`, with its defaults),
/// unmounted on drop.
struct Bindfs {
    mountpoint: PathBuf,
}

impl Bindfs {
    fn mount(source: &Path, mountpoint: &Path) -> Self {
        std::fs::create_dir_all(source).unwrap();
        std::fs::create_dir_all(mountpoint).unwrap();
        let status = Command::new("bindfs")
            .arg(source)
            .arg(mountpoint)
            .status()
            .expect("bindfs is installed (apt-get install bindfs)");
        assert!(status.success(), "bindfs {}: {status}", source.display());
        Self {
            mountpoint: mountpoint.to_owned(),
        }
    }
}

impl Drop for Bindfs {
    fn drop(&mut self) {
        let unmounted = Command::new("fusermount3")
            .arg("-u")
            .arg(&self.mountpoint)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&self.mountpoint)
                .status();
        }
    }
}

//! FUSE throughput and metadata speed: a jjfs mount against the plain backing directory on
//! the same disk, in one run. Prints medians of 3 and the mount/native ratios.
//!
//! `cargo bench --bench fuse_io` (as root; set JJFS_BENCH_DIR for the disk to use, default
//! /var/tmp; JJFS_BENCH_GIB for the large file size, default 1).

mod support;

use std::io::{Read, Write};
use std::path::Path;
use std::time::Instant;

use support::{Env, drop_caches, median};

const SMALL_FILES: usize = 10_000;

struct Figures {
    write_large: f64,
    read_large: f64,
    small_files: f64,
    stat_all: f64,
    readdir_all: f64,
}

fn main() {
    let base = support::bench_dir();
    let gib = support::env_count("JJFS_BENCH_GIB", 1) as u64;
    let large = gib << 30;
    println!(
        "fuse_io: {gib} GiB file, {SMALL_FILES} small files, median of 3, under {}",
        base.display()
    );

    for (label, env_vars) in [
        ("mount (kernel passthrough)", vec![]),
        ("mount (userspace I/O)", vec![("JJFS_NO_PASSTHROUGH", "1")]),
    ] {
        let env = Env::new(&base, &env_vars);
        env.jjfs(&["init"]);
        // The benchmark's files stay local: they must not be committed while measured.
        env.jjfs(&["config", "ignore", "bench/,native/"]);
        let mount = env.open("mnt");
        let status = env.jjfs(&["list", "--json"]);
        let list: serde_json::Value = serde_json::from_str(&status).unwrap();
        let mode = list["mounts"][0]["io_mode"]
            .as_str()
            .unwrap_or("?")
            .to_owned();
        let backing = std::path::PathBuf::from(list["mounts"][0]["workspace"].as_str().unwrap());
        // The plain directory sits beside the mount's own files in the backing workspace,
        // so both use the same disk and the same part of the file system.
        let plain = backing.join("native");
        let through_mount = mount.join("bench");
        std::fs::create_dir(&plain).unwrap();
        std::fs::create_dir(&through_mount).unwrap();
        let (native, mounted) = measure_pair(&plain, &through_mount, large);
        report("native (backing directory)", &native, None);
        report(&format!("{label} [{mode}]"), &mounted, Some(&native));
    }
}

/// Three rounds, alternating between the two directories so drift hits both alike.
fn measure_pair(native: &Path, mounted: &Path, large: u64) -> (Figures, Figures) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for run in 0..3 {
        a.push(measure_once(native, large, run));
        b.push(measure_once(mounted, large, run));
    }
    (medians(a), medians(b))
}

fn medians(runs: Vec<Figures>) -> Figures {
    Figures {
        write_large: median(runs.iter().map(|r| r.write_large).collect()),
        read_large: median(runs.iter().map(|r| r.read_large).collect()),
        small_files: median(runs.iter().map(|r| r.small_files).collect()),
        stat_all: median(runs.iter().map(|r| r.stat_all).collect()),
        readdir_all: median(runs.iter().map(|r| r.readdir_all).collect()),
    }
}

fn measure_once(dir: &Path, large: u64, run: usize) -> Figures {
    {
        let data = dir.join(format!("large-{run}"));
        let t = Instant::now();
        let mut f = std::fs::File::create(&data).unwrap();
        let chunk = vec![0x5au8; 1 << 20];
        for _ in 0..(large >> 20) {
            f.write_all(&chunk).unwrap();
        }
        f.sync_all().unwrap();
        drop(f);
        let write_large = t.elapsed().as_secs_f64();

        drop_caches();
        let t = Instant::now();
        let mut f = std::fs::File::open(&data).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        while f.read(&mut buf).unwrap() > 0 {}
        let read_large = t.elapsed().as_secs_f64();
        std::fs::remove_file(&data).unwrap();

        let small = dir.join(format!("small-{run}"));
        std::fs::create_dir(&small).unwrap();
        let t = Instant::now();
        for i in 0..SMALL_FILES {
            let mut f = std::fs::File::create(small.join(format!("f{i:05}"))).unwrap();
            f.write_all(b"a small note\n").unwrap();
        }
        let small_files = t.elapsed().as_secs_f64();

        drop_caches();
        let t = Instant::now();
        for i in 0..SMALL_FILES {
            std::fs::symlink_metadata(small.join(format!("f{i:05}"))).unwrap();
        }
        let stat_all = t.elapsed().as_secs_f64();

        drop_caches();
        let t = Instant::now();
        let n = std::fs::read_dir(&small).unwrap().count();
        let readdir_all = t.elapsed().as_secs_f64();
        assert_eq!(n, SMALL_FILES);
        std::fs::remove_dir_all(&small).unwrap();
        Figures {
            write_large,
            read_large,
            small_files,
            stat_all,
            readdir_all,
        }
    }
}

fn report(label: &str, f: &Figures, native: Option<&Figures>) {
    let ratio = |mine: f64, theirs: Option<f64>| match theirs {
        Some(n) => format!(" ({:.0}% of native speed)", 100.0 * n / mine),
        None => String::new(),
    };
    println!("{label}:");
    println!(
        "  write large + fsync   {:8.3} s{}",
        f.write_large,
        ratio(f.write_large, native.map(|n| n.write_large))
    );
    println!(
        "  cold read large       {:8.3} s{}",
        f.read_large,
        ratio(f.read_large, native.map(|n| n.read_large))
    );
    println!(
        "  {SMALL_FILES} create+write+close {:8.3} s, {:.1} us each{}",
        f.small_files,
        f.small_files * 1e6 / SMALL_FILES as f64,
        ratio(f.small_files, native.map(|n| n.small_files))
    );
    println!(
        "  {SMALL_FILES} cold stat    {:8.3} s, {:.1} us each{}",
        f.stat_all,
        f.stat_all * 1e6 / SMALL_FILES as f64,
        ratio(f.stat_all, native.map(|n| n.stat_all))
    );
    println!(
        "  readdir {SMALL_FILES} (cold) {:8.3} s{}",
        f.readdir_all,
        ratio(f.readdir_all, native.map(|n| n.readdir_all))
    );
}

//! The seeded, randomized stress test of issues 14 and 15. Three mounts, the backing
//! directory of the first and the jj CLI in it take rounds of random operations (creates,
//! writes, appends, truncates, renames of files and folders across folders and over
//! existing names, symlinks dangling, to folders and out of the mount, symlinks swapped for
//! folders, chmod, deletes, `git init` in a folder, writers holding files open across syncs,
//! same-size swaps and rewrites that keep the mtime, `cp -p`, hard links, file/folder flips,
//! and now and then a lazy unmount followed by `jjfs close` and `jjfs open`). After each
//! round and `jjfs sync`: every mount is healthy and all are identical, every write that
//! returned success is in a mount (plainly or in a conflict) or in the history, nothing
//! outside the mounts changed, and every step finished in bounded time. Then the round's
//! conflicts are resolved in one mount, as a user would, before the next round.
//!
//! `JJFS_TEST_SEED` picks the seed (printed), `JJFS_STRESS_OPS` the number of operations
//! (default 2,000: longer runs slow down as many-sided conflicts pile up, and still find a
//! divergence, a conflict jj can only describe in text, around 4,000; see the README), `JJFS_STRESS_ONLY` a comma-separated list of operation kinds to run,
//! `JJFS_STRESS_VIEWS` where they are made (`m0,m1,m2,backing`, the default): both narrow
//! down a failure. Every operation and its outcome is logged to `ops.log` in the test's
//! kept state directory.
//!
//! The test's own operations go through directory descriptors with `RESOLVE_NO_SYMLINKS`,
//! so that nothing it does itself can follow a symlink out of a mount.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use nix::sys::time::TimeSpec;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use common::TestEnv;

const OPS_PER_ROUND: usize = 200;
/// The longest a `jjfs sync` may take before the test calls it a deadlock (generous: a
/// loaded 2-core machine makes a step of many changes take tens of seconds).
const SYNC_BOUND: Duration = Duration::from_secs(240);
/// The longest a batch of operations may take (each is a few system calls).
const BATCH_BOUND: Duration = Duration::from_secs(180);
/// Folders that get a `git init` during the run (in mount 2, see `git_init`).
const NESTS: usize = 2;
/// Files that writers hold open across syncs.
const HELD: usize = 3;
/// The mtime that twins and rewrites are given, so that size and mtime match.
const OLD_TIME: i64 = 1_700_000_000;

/// Operation kinds and their weights (per mille, roughly).
const KINDS: &[(&str, u32)] = &[
    ("write", 190),
    ("append", 120),
    ("truncate", 20),
    ("rename_file", 90),
    ("rename_dir", 25),
    ("symlink", 40),
    ("symlink_to_folder", 20),
    ("chmod", 55),
    ("delete", 55),
    ("delete_dir", 10),
    ("held_open", 15),
    ("held_write", 40),
    ("held_close", 10),
    ("twins", 25),
    ("same_size_swap", 30),
    ("rewrite_keep_mtime", 35),
    ("cp_p", 30),
    ("hard_link", 25),
    ("flip_file_to_folder", 15),
    ("flip_folder_to_file", 15),
    ("jj", 5),
];
/// Kinds that are scheduled rather than drawn: at most a few per run.
const RARE: &[&str] = &["git_init", "lazy_unmount"];

// ---------------------------------------------------------------------------------------
// File operations that never follow a symlink
// ---------------------------------------------------------------------------------------

type OpResult<T = ()> = Result<T, String>;

fn split(rel: &str) -> (&str, &str) {
    rel.rsplit_once('/').unwrap_or(("", rel))
}

fn is_kind(stat: &FileStat, kind: SFlag) -> bool {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == kind
}

/// A view's root directory; every path under it is resolved without following symlinks.
struct Root(OwnedFd);

impl Root {
    fn open(path: &Path) -> OpResult<Self> {
        nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map(Root)
        .map_err(|e| format!("open {}: {e}", path.display()))
    }

    /// The folder `rel` ("" for the root), for *at calls or (with `list`) for reading.
    fn dir(&self, rel: &str, list: bool) -> OpResult<OwnedFd> {
        let flags = if list {
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC
        } else {
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC
        };
        let how = OpenHow::new()
            .flags(flags)
            .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_BENEATH);
        let path = if rel.is_empty() { "." } else { rel };
        nix::fcntl::openat2(&self.0, path, how).map_err(|e| format!("dir {rel}: {e}"))
    }

    fn mkdir(&self, rel: &str) -> OpResult {
        let (dir, leaf) = split(rel);
        nix::sys::stat::mkdirat(self.dir(dir, false)?, leaf, Mode::from_bits_truncate(0o755))
            .map_err(|e| format!("mkdir {rel}: {e}"))
    }

    /// Creates `rel` and its missing parents.
    fn mkdirs(&self, rel: &str) -> OpResult {
        let mut prefix = String::new();
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            match self.mkdir(&prefix) {
                Ok(()) => {}
                Err(e) if e.ends_with(&nix::errno::Errno::EEXIST.to_string()) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn open_file(&self, rel: &str, flags: OFlag, mode: u32) -> OpResult<File> {
        let (dir, leaf) = split(rel);
        nix::fcntl::openat(
            self.dir(dir, false)?,
            leaf,
            flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
            Mode::from_bits_truncate(mode),
        )
        .map(File::from)
        .map_err(|e| format!("open {rel}: {e}"))
    }

    fn stat(&self, rel: &str) -> OpResult<FileStat> {
        let (dir, leaf) = split(rel);
        nix::sys::stat::fstatat(self.dir(dir, false)?, leaf, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| format!("stat {rel}: {e}"))
    }

    /// The entries of folder `rel`, with their lstat.
    fn list(&self, rel: &str) -> OpResult<Vec<(String, FileStat)>> {
        let fd = self.dir(rel, true)?;
        let dirfd = fd.try_clone().map_err(|e| e.to_string())?;
        let mut dir = nix::dir::Dir::from_fd(fd).map_err(|e| format!("list {rel}: {e}"))?;
        let mut out = Vec::new();
        for entry in dir.iter() {
            let entry = entry.map_err(|e| format!("list {rel}: {e}"))?;
            let Ok(name) = entry.file_name().to_str() else {
                continue;
            };
            if name == "." || name == ".." {
                continue;
            }
            if let Ok(stat) = nix::sys::stat::fstatat(&dirfd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                out.push((name.to_owned(), stat));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn rename(&self, from: &str, to: &str) -> OpResult {
        let ((fd, fl), (td, tl)) = (split(from), split(to));
        nix::fcntl::renameat(self.dir(fd, false)?, fl, self.dir(td, false)?, tl)
            .map_err(|e| format!("rename {from} {to}: {e}"))
    }

    fn unlink(&self, rel: &str) -> OpResult {
        let (dir, leaf) = split(rel);
        nix::unistd::unlinkat(
            self.dir(dir, false)?,
            leaf,
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        )
        .map_err(|e| format!("unlink {rel}: {e}"))
    }

    fn remove_tree(&self, rel: &str) -> OpResult {
        for (name, stat) in self.list(rel)? {
            let child = format!("{rel}/{name}");
            if is_kind(&stat, SFlag::S_IFDIR) {
                self.remove_tree(&child)?;
            } else {
                self.unlink(&child)?;
            }
        }
        let (dir, leaf) = split(rel);
        nix::unistd::unlinkat(
            self.dir(dir, false)?,
            leaf,
            nix::unistd::UnlinkatFlags::RemoveDir,
        )
        .map_err(|e| format!("rmdir {rel}: {e}"))
    }

    fn symlink(&self, target: &str, rel: &str) -> OpResult {
        let (dir, leaf) = split(rel);
        nix::unistd::symlinkat(target, self.dir(dir, false)?, leaf)
            .map_err(|e| format!("symlink {rel}: {e}"))
    }

    fn link(&self, from: &str, to: &str) -> OpResult {
        let ((fd, fl), (td, tl)) = (split(from), split(to));
        nix::unistd::linkat(
            self.dir(fd, false)?,
            fl,
            self.dir(td, false)?,
            tl,
            AtFlags::empty(),
        )
        .map_err(|e| format!("link {from} {to}: {e}"))
    }
}

fn set_times(file: &File, mtime: (i64, i64)) -> OpResult {
    let t = TimeSpec::new(mtime.0, mtime.1);
    nix::sys::stat::futimens(file, &t, &t).map_err(|e| format!("futimens: {e}"))
}

fn write_all(file: &mut File, bytes: &[u8]) -> OpResult {
    file.write_all(bytes).map_err(|e| format!("write: {e}"))
}

// ---------------------------------------------------------------------------------------
// What the test knows
// ---------------------------------------------------------------------------------------

/// Where an operation is made: through a mount, or in the backing directory of mount 0.
#[derive(Clone, Copy, Debug, PartialEq)]
enum View {
    Mount(usize),
    Backing,
}

impl View {
    /// The workspace it writes to.
    fn ws(self) -> usize {
        match self {
            View::Mount(i) => i,
            View::Backing => 0,
        }
    }
}

/// A writer holding `held-K.txt` open in workspace `ws`.
struct HeldWriter {
    ws: usize,
    k: usize,
    file: File,
}

/// A file as the tree comparison sees it.
#[derive(Clone, PartialEq, Debug)]
enum Entry {
    File { mode: u32, content: Vec<u8> },
    Link(String),
}

impl Entry {
    fn describe(&self) -> String {
        match self {
            Entry::File { mode, content } => {
                let text = String::from_utf8_lossy(&content[..content.len().min(60)]);
                format!("file {mode:o} {} bytes {text:?}", content.len())
            }
            Entry::Link(target) => format!("symlink -> {target}"),
        }
    }
}

/// The tokens written in `bytes`: `tok` and seven digits.
fn tokens_in(bytes: &[u8], out: &mut HashSet<String>) {
    let mut i = 0;
    while i + 10 <= bytes.len() {
        if &bytes[i..i + 3] == b"tok" && bytes[i + 3..i + 10].iter().all(u8::is_ascii_digit) {
            out.insert(String::from_utf8_lossy(&bytes[i..i + 10]).into_owned());
            i += 10;
        } else {
            i += 1;
        }
    }
}

/// The state of a directory outside the mounts: every entry's type, mode, owner, size,
/// times and content.
fn fingerprint(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, path: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return;
        };
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        let body = if meta.is_symlink() {
            format!("-> {:?}", std::fs::read_link(path).ok())
        } else if meta.is_file() {
            format!("{:?}", std::fs::read(path).ok())
        } else {
            String::new()
        };
        out.insert(
            rel,
            format!(
                "{:o} {}:{} {} m{}.{} c{}.{} {body}",
                meta.mode(),
                meta.uid(),
                meta.gid(),
                meta.size(),
                meta.mtime(),
                meta.mtime_nsec(),
                meta.ctime(),
                meta.ctime_nsec()
            ),
        );
        if meta.is_dir() {
            for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
                walk(root, &entry.path(), out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Kills the daemon if a batch outlives `BATCH_BOUND`, so that hung FUSE calls return.
struct Watchdog {
    done: std::sync::mpsc::Sender<()>,
    fired: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    fn start(daemon: Option<u32>) -> Self {
        let (done, rx) = std::sync::mpsc::channel::<()>();
        let fired = Arc::new(AtomicBool::new(false));
        let flag = fired.clone();
        let thread = std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(BATCH_BOUND) {
                flag.store(true, Ordering::SeqCst);
                if let Some(pid) = daemon {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        });
        Self {
            done,
            fired,
            thread: Some(thread),
        }
    }

    /// Stops it; returns whether it fired.
    fn stop(mut self) -> bool {
        let _ = self.done.send(());
        self.thread.take().unwrap().join().unwrap();
        self.fired.load(Ordering::SeqCst)
    }
}

struct Stress<'a> {
    env: &'a TestEnv,
    seed: u64,
    rng: SmallRng,
    mounts: Vec<PathBuf>,
    backing: PathBuf,
    outside: PathBuf,
    outside_before: BTreeMap<String, String>,
    work_names: BTreeSet<String>,
    /// Per workspace: repo path -> tokens it holds that this workspace wrote and has not
    /// itself overwritten, truncated, deleted or renamed over since.
    models: Vec<BTreeMap<String, Vec<String>>>,
    /// Per workspace: paths that may be a name of a hard link.
    linked: Vec<BTreeSet<String>>,
    /// Tokens of workspaces closed during the run.
    retired: BTreeMap<String, String>,
    /// Where each token was written, for failure messages.
    origin: HashMap<String, String>,
    next_token: u64,
    held: Vec<HeldWriter>,
    /// Twin files (workspace, a, b) made with the same size and mtime.
    twins: Vec<(usize, String, String)>,
    /// Folders that hold a nested git repository, and the workspace it is in.
    nests: BTreeMap<usize, usize>,
    /// History tokens seen so far and the blobs already read.
    history: HashSet<String>,
    blobs_read: HashSet<String>,
    counts: BTreeMap<&'static str, (u64, u64)>,
    first_errors: BTreeMap<&'static str, String>,
    only: Option<BTreeSet<String>>,
    /// The views operations are made in (all by default).
    views: Vec<View>,
    /// How workspace 0 is written this round: through its mount or its backing directory.
    ws0_view: View,
    round: usize,
    op: usize,
    slowest_sync: Duration,
    syncs: usize,
    jj_runs: usize,
    /// Time spent in operations, in `jjfs sync`, and in the checks.
    time_ops: Duration,
    time_syncs: Duration,
    time_checks: Duration,
    /// Every operation and its outcome, for a look after a failure.
    log: File,
    last_detail: String,
}

impl Drop for Stress<'_> {
    fn drop(&mut self) {
        let total: u64 = self.counts.values().map(|(ok, failed)| ok + failed).sum();
        eprintln!(
            "stress: seed {} ({} rounds, {total} operations, {} syncs, slowest {:?}; \
             time in operations {:?}, in sync {:?}, in checks {:?})",
            self.seed,
            self.round,
            self.syncs,
            self.slowest_sync,
            self.time_ops,
            self.time_syncs,
            self.time_checks.saturating_sub(self.time_syncs)
        );
        for (kind, (ok, failed)) in &self.counts {
            let first = self
                .first_errors
                .get(kind)
                .map(|e| format!("  e.g. {e}"))
                .unwrap_or_default();
            eprintln!("  {kind:<20} {:>6} ok {failed:>6} failed{first}", ok);
        }
        if std::thread::panicking() {
            eprintln!(
                "reproduce with JJFS_TEST_SEED={}; every operation is in {}",
                self.seed,
                self.env.home().with_file_name("ops.log").display()
            );
        }
    }
}

impl<'a> Stress<'a> {
    fn root(&self, view: View) -> OpResult<Root> {
        match view {
            View::Mount(i) => Root::open(&self.mounts[i]),
            View::Backing => Root::open(&self.backing),
        }
    }

    fn token(&mut self, what: &str, view: View, path: &str) -> String {
        self.next_token += 1;
        let token = format!("tok{:07}", self.next_token);
        self.origin.insert(
            token.clone(),
            format!(
                "round {} op {}: {what} {view:?} {path}",
                self.round, self.op
            ),
        );
        self.last_detail.push_str(&format!("{path} {token} "));
        token
    }

    /// A line holding `token`, padded with a random number of dots.
    fn line(&mut self, token: &str) -> Vec<u8> {
        let pad = self.rng.gen_range(0..200);
        format!("{token} {}\n", ".".repeat(pad)).into_bytes()
    }

    /// A view among those allowed; workspace 0 is written through `ws0_view` only, this
    /// round (the mount over a backing directory may cache a name for a moment after the
    /// directory changed under it; this test is not about that window).
    fn random_view(&mut self) -> View {
        let allowed: Vec<View> = self
            .views
            .iter()
            .copied()
            .filter(|v| v.ws() != 0 || *v == self.ws0_view)
            .collect();
        let pool = if allowed.is_empty() {
            &self.views
        } else {
            &allowed
        };
        pool[self.rng.gen_range(0..pool.len())]
    }

    fn random_dir(&mut self) -> String {
        match self.rng.gen_range(0..100) {
            0..30 => String::new(),
            30..75 => format!("d{}", self.rng.gen_range(0..4)),
            _ => format!(
                "d{}/e{}",
                self.rng.gen_range(0..4),
                self.rng.gen_range(0..2)
            ),
        }
    }

    fn join(dir: &str, name: &str) -> String {
        if dir.is_empty() {
            name.to_owned()
        } else {
            format!("{dir}/{name}")
        }
    }

    fn random_file_path(&mut self) -> String {
        let dir = self.random_dir();
        let name = format!("f{}.txt", self.rng.gen_range(0..6));
        Self::join(&dir, &name)
    }

    /// An existing entry of type `kind` in a random folder of `view` (not a held file, a
    /// nested repository or jj's own `.jj`).
    fn pick(&mut self, root: &Root, kind: SFlag) -> Option<(String, FileStat)> {
        for _ in 0..4 {
            let dir = self.random_dir();
            let Ok(entries) = root.list(&dir) else {
                continue;
            };
            let fits: Vec<_> = entries
                .into_iter()
                .filter(|(name, stat)| {
                    // The backing directory holds the workspace's own `.jj`.
                    !name.starts_with("held-")
                        && !name.starts_with("nest-")
                        && !name.starts_with(".jj")
                        && !name.starts_with(".git")
                        && is_kind(stat, kind)
                })
                .collect();
            if !fits.is_empty() {
                let (name, stat) = fits[self.rng.gen_range(0..fits.len())].clone();
                return Some((Self::join(&dir, &name), stat));
            }
        }
        None
    }

    /// `view`'s workspace no longer holds what it wrote at `path` (its own operation
    /// replaced, truncated or removed it).
    fn forget(&mut self, view: View, path: &str) {
        self.models[view.ws()].remove(path);
    }

    /// `view`'s workspace wrote `token` at `path` (replacing the file, or appending to it).
    /// Tokens written to a name of a hard link are not required: another name of the same
    /// file may truncate them without the model knowing.
    fn wrote(&mut self, view: View, path: &str, token: String, replace: bool) {
        let ws = view.ws();
        if replace {
            self.models[ws].remove(path);
        }
        if !self.linked[ws].contains(path) {
            self.models[ws]
                .entry(path.to_owned())
                .or_default()
                .push(token);
        }
    }

    /// Moves the model's entries at and under `from` to `to`, dropping what was at `to`.
    fn model_move(&mut self, view: View, from: &str, to: &str) {
        self.last_detail.push_str(&format!("{from} -> {to} "));
        let under = |p: &str, root: &str| p == root || p.starts_with(&format!("{root}/"));
        let linked = &mut self.linked[view.ws()];
        let moved_links: Vec<String> = linked.iter().filter(|p| under(p, from)).cloned().collect();
        linked.retain(|p| !under(p, to) && !under(p, from));
        linked.extend(
            moved_links
                .iter()
                .map(|p| format!("{to}{}", &p[from.len()..])),
        );
        let model = &mut self.models[view.ws()];
        model.retain(|p, _| !under(p, to));
        let moved: Vec<(String, Vec<String>)> = model
            .iter()
            .filter(|(p, _)| under(p, from))
            .map(|(p, t)| (p.clone(), t.clone()))
            .collect();
        for (p, tokens) in moved {
            model.remove(&p);
            model.insert(format!("{to}{}", &p[from.len()..]), tokens);
        }
    }

    fn model_remove_tree(&mut self, view: View, rel: &str) {
        self.last_detail.push_str(&format!("removed {rel}/ "));
        let prefix = format!("{rel}/");
        self.models[view.ws()].retain(|p, _| p != rel && !p.starts_with(&prefix));
        self.linked[view.ws()].retain(|p| p != rel && !p.starts_with(&prefix));
    }

    // -----------------------------------------------------------------------------------
    // The operations
    // -----------------------------------------------------------------------------------

    fn run_op(&mut self, kind: &'static str) {
        let view = self.random_view();
        let result = self
            .root(view)
            .and_then(|root| self.apply(kind, view, &root));
        let _ = writeln!(
            self.log,
            "r{} o{} {kind} {view:?} -> {}",
            self.round,
            self.op,
            match &result {
                Ok(()) => format!("ok {}", self.last_detail),
                Err(e) => format!("failed: {e}"),
            }
        );
        self.last_detail.clear();
        let entry = self.counts.entry(kind).or_default();
        match result {
            Ok(()) => entry.0 += 1,
            Err(e) => {
                entry.1 += 1;
                self.first_errors.entry(kind).or_insert(e);
            }
        }
    }

    fn apply(&mut self, kind: &str, view: View, root: &Root) -> OpResult {
        match kind {
            "write" => {
                let path = match self.held_file_for_others(view) {
                    Some(held) if self.rng.gen_bool(0.1) => held,
                    _ => self.random_file_path(),
                };
                root.mkdirs(split(&path).0)?;
                let token = self.token("write", view, &path);
                let line = self.line(&token);
                let mut f = root.open_file(
                    &path,
                    OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC,
                    0o644,
                )?;
                self.forget(view, &path);
                write_all(&mut f, &line)?;
                self.wrote(view, &path, token, true);
                Ok(())
            }
            "append" => {
                let path = match self.held_file_for_others(view) {
                    Some(held) if self.rng.gen_bool(0.1) => held,
                    _ => self.pick(root, SFlag::S_IFREG).ok_or("no file")?.0,
                };
                let token = self.token("append", view, &path);
                let line = self.line(&token);
                let mut f = root.open_file(&path, OFlag::O_WRONLY | OFlag::O_APPEND, 0o644)?;
                write_all(&mut f, &line)?;
                self.wrote(view, &path, token, false);
                Ok(())
            }
            "truncate" => {
                let (path, _) = self.pick(root, SFlag::S_IFREG).ok_or("no file")?;
                self.last_detail.push_str(&path);
                root.open_file(&path, OFlag::O_WRONLY | OFlag::O_TRUNC, 0o644)?;
                self.forget(view, &path);
                Ok(())
            }
            "rename_file" => {
                let kind = if self.rng.gen_bool(0.15) {
                    SFlag::S_IFLNK
                } else {
                    SFlag::S_IFREG
                };
                let (from, _) = self.pick(root, kind).ok_or("nothing to rename")?;
                let to = self.random_file_path();
                root.mkdirs(split(&to).0)?;
                root.rename(&from, &to)?;
                self.model_move(view, &from, &to);
                Ok(())
            }
            "rename_dir" => {
                let (from, _) = self.pick(root, SFlag::S_IFDIR).ok_or("no folder")?;
                let to = if self.rng.gen_bool(0.5) {
                    format!("d{}", self.rng.gen_range(0..4))
                } else {
                    format!(
                        "d{}/e{}",
                        self.rng.gen_range(0..4),
                        self.rng.gen_range(0..2)
                    )
                };
                root.rename(&from, &to)?;
                self.model_move(view, &from, &to);
                Ok(())
            }
            "symlink" => {
                let dir = self.random_dir();
                let name = if self.rng.gen_bool(0.7) {
                    format!("l{}", self.rng.gen_range(0..3))
                } else {
                    format!("f{}.txt", self.rng.gen_range(0..6))
                };
                let path = Self::join(&dir, &name);
                let target = match self.rng.gen_range(0..5) {
                    0 => "no-such-target".to_owned(),
                    1 => format!("d{}", self.rng.gen_range(0..4)),
                    2 => "../d0".to_owned(),
                    3 => self.outside.join("target-dir").display().to_string(),
                    _ => self.outside.join("secret.txt").display().to_string(),
                };
                root.mkdirs(&dir)?;
                self.last_detail.push_str(&format!("{path} -> {target}"));
                root.symlink(&target, &path)
            }
            "symlink_to_folder" => {
                let (link, _) = self.pick(root, SFlag::S_IFLNK).ok_or("no symlink")?;
                root.unlink(&link)?;
                root.mkdir(&link)?;
                let (file, _) = self.pick(root, SFlag::S_IFREG).ok_or("no file to move")?;
                let to = format!("{link}/{}", split(&file).1);
                root.rename(&file, &to)?;
                self.model_move(view, &file, &to);
                Ok(())
            }
            "chmod" => {
                let (path, _) = self.pick(root, SFlag::S_IFREG).ok_or("no file")?;
                let modes = [0o600, 0o640, 0o644, 0o755, 0o700, 0o4755, 0o2750];
                let mode = modes[self.rng.gen_range(0..modes.len())];
                self.last_detail.push_str(&format!("{path} {mode:o}"));
                let f = root.open_file(&path, OFlag::O_RDONLY, 0)?;
                nix::sys::stat::fchmod(&f, Mode::from_bits_truncate(mode))
                    .map_err(|e| format!("chmod {path}: {e}"))
            }
            "delete" => {
                let kind = if self.rng.gen_bool(0.2) {
                    SFlag::S_IFLNK
                } else {
                    SFlag::S_IFREG
                };
                let (path, _) = self.pick(root, kind).ok_or("nothing to delete")?;
                self.last_detail.push_str(&path);
                root.unlink(&path)?;
                self.forget(view, &path);
                self.linked[view.ws()].remove(&path);
                Ok(())
            }
            "delete_dir" => {
                let (path, _) = self.pick(root, SFlag::S_IFDIR).ok_or("no folder")?;
                let result = root.remove_tree(&path);
                // Whatever it removed is gone, even if it stopped half-way.
                self.model_remove_tree(view, &path);
                result
            }
            "held_open" => {
                let ws = view.ws();
                let k = self.rng.gen_range(0..HELD);
                if self.held.iter().any(|h| h.k == k) {
                    return Err("already held".into());
                }
                let path = format!("held-{k}.txt");
                let token = self.token("held_open", view, &path);
                let line = self.line(&token);
                let mut file = root.open_file(
                    &path,
                    OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_CREAT,
                    0o644,
                )?;
                write_all(&mut file, &line)?;
                self.wrote(view, &path, token, false);
                self.held.push(HeldWriter { ws, k, file });
                Ok(())
            }
            "held_write" => {
                if self.held.is_empty() {
                    return Err("nothing held".into());
                }
                let i = self.rng.gen_range(0..self.held.len());
                let (ws, k) = (self.held[i].ws, self.held[i].k);
                let path = format!("held-{k}.txt");
                let token = self.token("held_write", View::Mount(ws), &path);
                let line = self.line(&token);
                write_all(&mut self.held[i].file, &line)?;
                self.wrote(View::Mount(ws), &path, token, false);
                Ok(())
            }
            "held_close" => {
                if self.held.is_empty() {
                    return Err("nothing held".into());
                }
                let i = self.rng.gen_range(0..self.held.len());
                self.held.remove(i);
                Ok(())
            }
            "twins" => self.make_twins(view, root),
            "same_size_swap" => {
                let Some((a, b)) = self.find_twins(view, root) else {
                    return self.make_twins(view, root);
                };
                let tmp = Self::join(split(&a).0, "swap-tmp.txt");
                root.rename(&a, &tmp)?;
                self.model_move(view, &a, &tmp);
                root.rename(&b, &a)?;
                self.model_move(view, &b, &a);
                root.rename(&tmp, &b)?;
                self.model_move(view, &tmp, &b);
                Ok(())
            }
            "rewrite_keep_mtime" => {
                let (path, stat) = self.pick(root, SFlag::S_IFREG).ok_or("no file")?;
                let size = stat.st_size as usize;
                if size < 11 {
                    return Err("too small to rewrite".into());
                }
                let token = self.token("rewrite_keep_mtime", view, &path);
                let mut content = format!("{token} ").into_bytes();
                content.resize(size - 1, b'+');
                content.push(b'\n');
                let mut f = root.open_file(&path, OFlag::O_WRONLY | OFlag::O_TRUNC, 0o644)?;
                self.forget(view, &path);
                write_all(&mut f, &content)?;
                self.wrote(view, &path, token, true);
                set_times(&f, (stat.st_mtime, stat.st_mtime_nsec))
            }
            "cp_p" => {
                let (from, to) = match self.find_twins(view, root) {
                    Some(pair) if self.rng.gen_bool(0.7) => pair,
                    _ => {
                        let (from, _) = self.pick(root, SFlag::S_IFREG).ok_or("no file")?;
                        (from, self.random_file_path())
                    }
                };
                if from == to {
                    return Err("same file".into());
                }
                self.last_detail.push_str(&format!("{from} => {to}"));
                let mut src = root.open_file(&from, OFlag::O_RDONLY, 0)?;
                let stat = nix::sys::stat::fstat(&src).map_err(|e| e.to_string())?;
                let mut bytes = Vec::new();
                src.read_to_end(&mut bytes)
                    .map_err(|e| format!("read {from}: {e}"))?;
                root.mkdirs(split(&to).0)?;
                let mut dst = root.open_file(
                    &to,
                    OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC,
                    0o644,
                )?;
                let tokens = self.models[view.ws()].get(&from).cloned();
                self.forget(view, &to);
                write_all(&mut dst, &bytes)?;
                for token in tokens.into_iter().flatten() {
                    self.wrote(view, &to, token, false);
                }
                nix::sys::stat::fchmod(&dst, Mode::from_bits_truncate(stat.st_mode & 0o777))
                    .map_err(|e| format!("chmod {to}: {e}"))?;
                set_times(&dst, (stat.st_mtime, stat.st_mtime_nsec))
            }
            "hard_link" => {
                let (from, _) = self.pick(root, SFlag::S_IFREG).ok_or("no file")?;
                let to = self.random_file_path();
                root.mkdirs(split(&to).0)?;
                self.last_detail.push_str(&format!("{from} => {to}"));
                root.link(&from, &to)?;
                // From now on either name can change both: the model stops counting them.
                self.forget(view, &from);
                self.forget(view, &to);
                self.linked[view.ws()].extend([from, to]);
                Ok(())
            }
            "flip_file_to_folder" => {
                let (path, _) = self.pick(root, SFlag::S_IFREG).ok_or("no file")?;
                self.last_detail.push_str(&format!("{path} "));
                root.unlink(&path)?;
                self.forget(view, &path);
                self.linked[view.ws()].remove(&path);
                root.mkdir(&path)?;
                let child = format!("{path}/child.txt");
                let token = self.token("flip_file_to_folder", view, &child);
                let line = self.line(&token);
                let mut f = root.open_file(&child, OFlag::O_WRONLY | OFlag::O_CREAT, 0o644)?;
                write_all(&mut f, &line)?;
                self.wrote(view, &child, token, true);
                Ok(())
            }
            "flip_folder_to_file" => {
                let (path, _) = self.pick(root, SFlag::S_IFDIR).ok_or("no folder")?;
                let removed = root.remove_tree(&path);
                self.model_remove_tree(view, &path);
                removed?;
                let token = self.token("flip_folder_to_file", view, &path);
                let line = self.line(&token);
                let mut f = root.open_file(&path, OFlag::O_WRONLY | OFlag::O_CREAT, 0o644)?;
                write_all(&mut f, &line)?;
                self.wrote(view, &path, token, true);
                Ok(())
            }
            "jj" => self.jj_command(),
            other => panic!("unknown operation {other}"),
        }
    }

    /// A held file that `view`'s workspace may write like any other (it does not hold it).
    fn held_file_for_others(&mut self, view: View) -> Option<String> {
        let k = self.rng.gen_range(0..HELD);
        let held_here = self.held.iter().any(|h| h.k == k && h.ws == view.ws());
        (!held_here).then(|| format!("held-{k}.txt"))
    }

    /// Two new files of one size and one mtime in a folder of `view`.
    fn make_twins(&mut self, view: View, root: &Root) -> OpResult {
        let dir = self.random_dir();
        let i = self.rng.gen_range(0..6);
        let j = (i + self.rng.gen_range(1..6)) % 6;
        let a = Self::join(&dir, &format!("f{i}.txt"));
        let b = Self::join(&dir, &format!("f{j}.txt"));
        root.mkdirs(&dir)?;
        let len = self.rng.gen_range(20..120);
        for path in [&a, &b] {
            let token = self.token("twins", view, path);
            let mut content = format!("{token} ").into_bytes();
            content.resize(len - 1, b'=');
            content.push(b'\n');
            let mut f = root.open_file(
                path,
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC,
                0o644,
            )?;
            self.forget(view, path);
            write_all(&mut f, &content)?;
            self.wrote(view, path, token, true);
            set_times(&f, (OLD_TIME + self.round as i64, 0))?;
        }
        self.twins.push((view.ws(), a, b));
        if self.twins.len() > 20 {
            self.twins.remove(0);
        }
        Ok(())
    }

    /// Twins of `view`'s workspace that still have one size and one mtime.
    fn find_twins(&mut self, view: View, root: &Root) -> Option<(String, String)> {
        let mine: Vec<(String, String)> = self
            .twins
            .iter()
            .filter(|(ws, _, _)| *ws == view.ws())
            .map(|(_, a, b)| (a.clone(), b.clone()))
            .collect();
        if mine.is_empty() {
            return None;
        }
        let (a, b) = mine[self.rng.gen_range(0..mine.len())].clone();
        let (sa, sb) = (root.stat(&a).ok()?, root.stat(&b).ok()?);
        let same = is_kind(&sa, SFlag::S_IFREG)
            && is_kind(&sb, SFlag::S_IFREG)
            && sa.st_size == sb.st_size
            && (sa.st_mtime, sa.st_mtime_nsec) == (sb.st_mtime, sb.st_mtime_nsec);
        same.then_some((a, b))
    }

    /// One jj CLI command in mount 0's backing workspace.
    fn jj_command(&mut self) -> OpResult {
        self.jj_runs += 1;
        let message = format!("stress round {}", self.round);
        let args: Vec<&str> = match self.rng.gen_range(0..4) {
            0 => vec!["st"],
            1 => vec!["describe", "-m", &message],
            2 => vec!["new"],
            _ => vec!["log", "-r", "@", "--no-graph", "-T", "commit_id"],
        };
        self.last_detail.push_str(&format!("jj {}", args.join(" ")));
        let mut cmd = Command::new(common::jj_binary());
        cmd.args(&args)
            .current_dir(&self.backing)
            .env("JJ_CONFIG", "/dev/null")
            .env("JJ_USER", "Test User")
            .env("JJ_EMAIL", "test@example.com");
        let Some((out, _)) = common::output_within(&mut cmd, SYNC_BOUND) else {
            panic!(
                "round {}: jj {args:?} did not finish within {SYNC_BOUND:?} (seed {})",
                self.round, self.seed
            );
        };
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "jj {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .next()
                    .unwrap_or("")
            ))
        }
    }

    /// `git init` in nest-K through mount 2 (the jj CLI runs in mount 0's workspace and
    /// would itself record a nested repository's files as deleted).
    fn git_init(&mut self) {
        let Some(k) = (0..NESTS).find(|k| !self.nests.contains_key(k)) else {
            return;
        };
        let ws = 2;
        let dir = self.mounts[ws].join(format!("nest-{k}"));
        let ok = std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir())
            && Command::new("git")
                .args(["init", "-q"])
                .current_dir(&dir)
                .status()
                .is_ok_and(|s| s.success());
        let entry = self.counts.entry("git_init").or_default();
        if ok {
            entry.0 += 1;
            self.nests.insert(k, ws);
        } else {
            entry.1 += 1;
        }
    }

    /// `umount -l` of a mount behind jjfs's back, then `jjfs close` and `jjfs open` of it.
    fn lazy_unmount(&mut self) {
        let candidates: Vec<usize> = [1, 2]
            .into_iter()
            .filter(|ws| !self.nests.values().any(|n| n == ws))
            .collect();
        if candidates.is_empty() {
            return;
        }
        let ws = candidates[self.rng.gen_range(0..candidates.len())];
        self.held.retain(|h| h.ws != ws);
        let path = self.mounts[ws].clone();
        let out = Command::new("umount")
            .arg("-l")
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "umount -l: {out:?}");
        let bound = SYNC_BOUND;
        let p = path.to_str().unwrap();
        for args in [vec!["close", p], vec!["open", "default", p]] {
            let result = self.env.run_timed(&args, bound);
            let Some((out, _)) = result else {
                panic!(
                    "round {}: jjfs {args:?} after a lazy unmount did not return (seed {})",
                    self.round, self.seed
                );
            };
            assert!(
                out.status.success(),
                "round {}: jjfs {args:?} after a lazy unmount failed: {} (seed {})\nsync.log ends:\n{}",
                self.round,
                String::from_utf8_lossy(&out.stderr),
                self.seed,
                self.env.log_tail(20)
            );
        }
        // Whatever that workspace wrote must have been recorded by the close.
        self.linked[ws].clear();
        for (path, tokens) in std::mem::take(&mut self.models[ws]) {
            for t in tokens {
                self.retired.insert(t, format!("closed mount {ws}: {path}"));
            }
        }
        self.counts.entry("lazy_unmount").or_default().0 += 1;
    }

    // -----------------------------------------------------------------------------------
    // Checks
    // -----------------------------------------------------------------------------------

    fn sync(&mut self, when: &str) {
        let result = self.env.run_timed(&["sync"], SYNC_BOUND);
        let Some((out, took)) = result else {
            panic!(
                "round {} ({when}): jjfs sync did not return within {SYNC_BOUND:?}: a deadlock? (seed {})\nsync.log ends:\n{}",
                self.round,
                self.seed,
                self.env.log_tail(30)
            );
        };
        self.syncs += 1;
        self.slowest_sync = self.slowest_sync.max(took);
        self.time_syncs += took;
        assert!(
            out.status.success(),
            "round {} ({when}): jjfs sync failed: {} (seed {})\nsync.log ends:\n{}",
            self.round,
            String::from_utf8_lossy(&out.stderr),
            self.seed,
            self.env.log_tail(30)
        );
    }

    /// Paths the comparison leaves out: nested repositories, files held open, and what
    /// status lists as skipped.
    fn excluded(&self) -> Vec<String> {
        let mut out: Vec<String> = self.nests.keys().map(|k| format!("nest-{k}")).collect();
        out.extend(self.held.iter().map(|h| format!("held-{}.txt", h.k)));
        let status = self.env.json(&["status", "--json"]);
        for s in status["repos"][0]["skipped"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(p) = s["path"].as_str() {
                out.push(p.to_owned());
            }
        }
        out
    }

    /// Every file and symlink under mount `i`, but the excluded paths.
    fn tree(&self, i: usize, excluded: &[String]) -> BTreeMap<String, Entry> {
        fn walk(root: &Path, dir: &Path, excluded: &[String], out: &mut BTreeMap<String, Entry>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                if excluded
                    .iter()
                    .any(|x| rel == *x || rel.starts_with(&format!("{x}/")))
                {
                    continue;
                }
                let Ok(meta) = std::fs::symlink_metadata(&path) else {
                    continue;
                };
                if meta.is_dir() {
                    walk(root, &path, excluded, out);
                } else if meta.is_symlink() {
                    let target = std::fs::read_link(&path).unwrap_or_default();
                    out.insert(rel, Entry::Link(target.display().to_string()));
                } else if meta.is_file() {
                    out.insert(
                        rel,
                        Entry::File {
                            mode: meta.mode() & 0o777,
                            content: std::fs::read(&path).unwrap_or_default(),
                        },
                    );
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.mounts[i], &self.mounts[i], excluded, &mut out);
        out
    }

    /// A description of where the trees differ, or None.
    fn difference(trees: &[BTreeMap<String, Entry>]) -> Option<String> {
        let paths: BTreeSet<&String> = trees.iter().flat_map(|t| t.keys()).collect();
        let mut lines = Vec::new();
        for path in paths {
            let views: Vec<Option<&Entry>> = trees.iter().map(|t| t.get(path)).collect();
            if views.iter().all(|v| *v == views[0]) {
                continue;
            }
            let each: Vec<String> = views
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    format!(
                        "    mount {i}: {}",
                        v.map(Entry::describe).unwrap_or_else(|| "absent".into())
                    )
                })
                .collect();
            lines.push(format!("  {path}\n{}", each.join("\n")));
        }
        (!lines.is_empty()).then(|| {
            let n = lines.len();
            lines.truncate(15);
            format!("{n} paths differ:\n{}", lines.join("\n"))
        })
    }

    /// Reads the blobs of the repo's git store not read before, collecting their tokens.
    fn scan_history(&mut self) {
        let git_dir = self.env.home().join("repos/default/.jj/repo/store/git");
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(&git_dir)
            .args([
                "cat-file",
                "--batch-all-objects",
                "--batch-check=%(objectname) %(objecttype)",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let new: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_suffix(" blob"))
            .filter(|id| !self.blobs_read.contains(*id))
            .map(str::to_owned)
            .collect();
        if new.is_empty() {
            return;
        }
        let mut child = Command::new("git")
            .arg("--git-dir")
            .arg(&git_dir)
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let ids = new.join("\n") + "\n";
        let feeder = std::thread::spawn(move || stdin.write_all(ids.as_bytes()));
        let mut bytes = Vec::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        feeder.join().unwrap().unwrap();
        child.wait().unwrap();
        tokens_in(&bytes, &mut self.history);
        self.blobs_read.extend(new);
    }

    /// Tokens in any file of any mount (nested repositories and held files included).
    fn tokens_in_mounts(&self) -> HashSet<String> {
        fn walk(dir: &Path, out: &mut HashSet<String>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let Ok(ft) = entry.file_type() else { continue };
                if ft.is_dir() {
                    walk(&entry.path(), out);
                } else if ft.is_file()
                    && let Ok(bytes) = std::fs::read(entry.path())
                {
                    tokens_in(&bytes, out);
                }
            }
        }
        let mut out = HashSet::new();
        for m in &self.mounts {
            walk(m, &mut out);
        }
        out
    }

    fn check_round(&mut self, last: bool) {
        self.sync("first sync");
        let mut excluded = self.excluded();
        let mut trees: Vec<_> = (0..3).map(|i| self.tree(i, &excluded)).collect();
        if Self::difference(&trees).is_some() {
            self.sync("second sync");
            excluded = self.excluded();
            trees = (0..3).map(|i| self.tree(i, &excluded)).collect();
        }
        let round = self.round;
        let seed = self.seed;
        for m in self.env.list() {
            assert_eq!(
                m["health"],
                "healthy",
                "round {round}: mount {} is unhealthy: {} (seed {seed})\nsync.log ends:\n{}",
                m["path"],
                m["reason"],
                self.env.log_tail(20)
            );
        }
        if let Some(diff) = Self::difference(&trees) {
            panic!(
                "round {round}{}: the mounts differ after two syncs (seed {seed}); {diff}\nexcluded: {excluded:?}\nsync.log ends:\n{}",
                if last { " (final)" } else { "" },
                self.env.log_tail(20)
            );
        }

        // Every acknowledged write is somewhere.
        let mut required: Vec<(String, String)> = self
            .retired
            .iter()
            .map(|(t, w)| (t.clone(), w.clone()))
            .collect();
        for (ws, model) in self.models.iter().enumerate() {
            for (path, tokens) in model {
                for t in tokens {
                    required.push((t.clone(), format!("workspace {ws}: {path}")));
                }
            }
        }
        let present = self.tokens_in_mounts();
        let mut missing: Vec<&(String, String)> = required
            .iter()
            .filter(|(t, _)| !present.contains(t) && !self.history.contains(t))
            .collect();
        if !missing.is_empty() {
            self.scan_history();
            missing.retain(|(t, _)| !self.history.contains(t));
        }
        if !missing.is_empty() {
            let lines: Vec<String> = missing
                .iter()
                .take(10)
                .map(|(t, w)| {
                    format!(
                        "  {t} (expected in {w}; written {})",
                        self.origin.get(t).map(String::as_str).unwrap_or("?")
                    )
                })
                .collect();
            panic!(
                "round {round}: {} acknowledged writes are in no mount and not in history (seed {seed}):\n{}",
                missing.len(),
                lines.join("\n")
            );
        }

        // Nothing outside the mounts changed.
        let outside = fingerprint(&self.outside);
        if outside != self.outside_before {
            let changed: Vec<String> = outside
                .iter()
                .filter(|(k, v)| self.outside_before.get(*k) != Some(*v))
                .map(|(k, v)| format!("  {k}: {v}"))
                .chain(
                    self.outside_before
                        .keys()
                        .filter(|k| !outside.contains_key(*k))
                        .map(|k| format!("  {k}: removed")),
                )
                .collect();
            panic!(
                "round {round}: something changed outside the mounts (seed {seed}):\n{}",
                changed.join("\n")
            );
        }
        let names = work_names(&self.env.work());
        assert_eq!(
            names, self.work_names,
            "round {round}: entries appeared or vanished beside the mounts (seed {seed})"
        );

        // A nested repository keeps its synced files everywhere.
        for k in self.nests.keys() {
            for (i, m) in self.mounts.iter().enumerate() {
                for f in ["a", "b"] {
                    let path = m.join(format!("nest-{k}/{f}.txt"));
                    assert_eq!(
                        common::read(&path),
                        Some(format!("nest {k} file {f}\n")),
                        "round {round}: mount {i} lost nest-{k}/{f}.txt after git init (seed {seed})"
                    );
                }
            }
        }
    }
}

impl Stress<'_> {
    /// Resolves every conflict the round left, as a user would: a conflicted file gets a
    /// clean version in one mount, a `.jjfs-conflict` sibling is deleted. This keeps
    /// conflicts from piling up round after round.
    fn settle(&mut self) {
        let tree = self.tree(0, &self.excluded());
        let mut resolved = 0u64;
        for (path, entry) in tree {
            let Entry::File { content, .. } = entry else {
                continue;
            };
            let view = View::Mount(self.rng.gen_range(0..3));
            let Ok(root) = self.root(view) else { continue };
            if path.ends_with(".jjfs-conflict") {
                if root.unlink(&path).is_ok() {
                    self.forget(view, &path);
                    self.linked[view.ws()].remove(&path);
                    resolved += 1;
                }
            } else if content.windows(7).any(|w| w == b"<<<<<<<") {
                let token = self.token("resolve", view, &path);
                let line = self.line(&token);
                let written = root
                    .open_file(&path, OFlag::O_WRONLY | OFlag::O_TRUNC, 0o644)
                    .and_then(|mut f| write_all(&mut f, &line));
                if written.is_ok() {
                    self.wrote(view, &path, token, true);
                    resolved += 1;
                }
            }
        }
        self.counts.entry("resolve").or_default().0 += resolved;
    }
}

fn work_names(work: &Path) -> BTreeSet<String> {
    std::fs::read_dir(work)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn random_operations_on_three_mounts_converge_lose_nothing_and_stay_inside() {
    let seed: u64 = std::env::var("JJFS_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0015);
    let ops: usize = std::env::var("JJFS_STRESS_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000);
    let only: Option<BTreeSet<String>> = std::env::var("JJFS_STRESS_ONLY")
        .ok()
        .map(|s| s.split(',').map(|k| k.trim().to_owned()).collect());
    let views: Vec<View> = match std::env::var("JJFS_STRESS_VIEWS") {
        Ok(list) => list
            .split(',')
            .map(|v| match v.trim() {
                "backing" => View::Backing,
                m => View::Mount(
                    m.trim_start_matches('m')
                        .parse()
                        .expect("m0, m1, m2 or backing"),
                ),
            })
            .collect(),
        Err(_) => vec![
            View::Mount(0),
            View::Mount(1),
            View::Mount(2),
            View::Backing,
        ],
    };
    eprintln!("stress: seed {seed}, {ops} operations (JJFS_TEST_SEED, JJFS_STRESS_OPS)");
    let started = Instant::now();

    let env = TestEnv::new();
    let mounts = env.with_mounts(3);
    let backing = env.workspace_of(&mounts[0]);
    let outside = env.work().join("outside");
    std::fs::create_dir_all(outside.join("target-dir/sub")).unwrap();
    std::fs::write(outside.join("secret.txt"), "outside the mounts\n").unwrap();
    std::fs::write(outside.join("target-dir/inside.txt"), "a symlink target\n").unwrap();
    for k in 0..NESTS {
        std::fs::create_dir(mounts[0].join(format!("nest-{k}"))).unwrap();
        for f in ["a", "b"] {
            std::fs::write(
                mounts[0].join(format!("nest-{k}/{f}.txt")),
                format!("nest {k} file {f}\n"),
            )
            .unwrap();
        }
    }
    env.ok(&["sync"]);
    for m in &mounts {
        common::wait_content(
            &m.join(format!("nest-{}/b.txt", NESTS - 1)),
            &format!("nest {} file b\n", NESTS - 1),
        );
    }

    let mut stress = Stress {
        env: &env,
        seed,
        rng: SmallRng::seed_from_u64(seed),
        outside_before: fingerprint(&outside),
        work_names: work_names(&env.work()),
        mounts,
        backing,
        outside,
        models: vec![BTreeMap::new(); 3],
        linked: vec![BTreeSet::new(); 3],
        retired: BTreeMap::new(),
        origin: HashMap::new(),
        next_token: 0,
        held: Vec::new(),
        twins: Vec::new(),
        nests: BTreeMap::new(),
        history: HashSet::new(),
        blobs_read: HashSet::new(),
        counts: BTreeMap::new(),
        first_errors: BTreeMap::new(),
        only,
        views,
        ws0_view: View::Mount(0),
        round: 0,
        op: 0,
        slowest_sync: Duration::ZERO,
        syncs: 0,
        jj_runs: 0,
        time_ops: Duration::ZERO,
        time_syncs: Duration::ZERO,
        time_checks: Duration::ZERO,
        log: File::create(env.home().with_file_name("ops.log")).unwrap(),
        last_detail: String::new(),
    };
    let kinds: Vec<(&'static str, u32)> = KINDS
        .iter()
        .copied()
        .filter(|(k, _)| stress.only.as_ref().is_none_or(|o| o.contains(*k)))
        .collect();
    let allowed =
        |k: &str, only: &Option<BTreeSet<String>>| only.as_ref().is_none_or(|o| o.contains(k));
    assert!(
        !kinds.is_empty()
            || stress
                .only
                .as_ref()
                .is_some_and(|o| RARE.iter().any(|r| o.contains(*r)))
    );
    let total: u32 = kinds.iter().map(|(_, w)| w).sum();
    let rounds = ops.div_ceil(OPS_PER_ROUND);
    let git_init_rounds: Vec<usize> = (1..=NESTS).map(|i| i * rounds / (NESTS + 1)).collect();

    for round in 1..=rounds {
        stress.round = round;
        stress.ws0_view = if stress.rng.gen_bool(0.4) {
            View::Backing
        } else {
            View::Mount(0)
        };
        let batch_started = Instant::now();
        let watchdog = Watchdog::start(env.daemon_pid());
        if git_init_rounds.contains(&round) && allowed("git_init", &stress.only) {
            stress.git_init();
        }
        let batch = OPS_PER_ROUND.min(ops - (round - 1) * OPS_PER_ROUND);
        for op in 0..batch {
            stress.op = op;
            if total == 0 {
                break;
            }
            let mut pick = stress.rng.gen_range(0..total);
            let kind = kinds
                .iter()
                .find(|(_, w)| {
                    if pick < *w {
                        true
                    } else {
                        pick -= w;
                        false
                    }
                })
                .unwrap()
                .0;
            stress.run_op(kind);
        }
        if allowed("lazy_unmount", &stress.only) && stress.rng.gen_range(0..15) == 0 {
            stress.lazy_unmount();
        }
        assert!(
            !watchdog.stop(),
            "round {round}: the batch of operations did not finish within {BATCH_BOUND:?}: a FUSE call hung (seed {seed}); the daemon was killed\nsync.log ends:\n{}",
            env.log_tail(30)
        );
        stress.time_ops += batch_started.elapsed();
        let check_started = Instant::now();
        stress.check_round(false);
        stress.settle();
        stress.time_checks += check_started.elapsed();
    }
    // The writers let go: now held files converge too.
    stress.held.clear();
    stress.check_round(true);
    eprintln!(
        "stress: done in {:?}, {} jj commands, {} tokens written",
        started.elapsed(),
        stress.jj_runs,
        stress.next_token
    );
}

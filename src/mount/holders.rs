//! Which processes hold a mount busy (so a refused unmount can say who): a current or root
//! directory, an open file or a mapped file under the mount's path, read from /proc. Reading
//! these links and maps never reaches the mount itself.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A process that holds a mount busy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// Its command name (`/proc/PID/comm`).
    pub command: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} ({})", self.pid, self.command)
    }
}

/// The processes (other than this one) holding something under `path` (a canonical path),
/// by pid.
pub fn holders(path: &Path) -> Vec<Holder> {
    let me = std::process::id();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found: Vec<Holder> = procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me && holds(*pid, path))
        .map(|pid| Holder {
            pid,
            command: std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim_end().to_owned())
                .unwrap_or_else(|_| "?".into()),
        })
        .collect();
    found.sort_by_key(|h| h.pid);
    found
}

/// The files beneath each of `roots` (canonical paths) that other processes hold open for
/// writing, relative to their root: one scan of /proc for all of them. A backing workspace
/// has no mount to count its writers, so this is how a sync learns that a program edits a
/// file there through an open descriptor (replacing the file would orphan its writes).
pub fn writers_beneath(roots: &[&Path]) -> Vec<Vec<PathBuf>> {
    let mut found = vec![Vec::new(); roots.len()];
    let me = std::process::id();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return found;
    };
    for pid in procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
    {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let Some((i, rel)) = roots
                .iter()
                .enumerate()
                .find_map(|(i, root)| Some((i, target.strip_prefix(root).ok()?)))
            else {
                continue;
            };
            let info = format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy());
            if open_for_writing(&std::fs::read_to_string(info).unwrap_or_default())
                && !rel.as_os_str().is_empty()
                && !found[i].iter().any(|p| p == rel)
            {
                found[i].push(rel.to_owned());
            }
        }
    }
    found
}

/// Whether a /proc/PID/fdinfo text shows a descriptor open for writing (`flags:` in octal).
fn open_for_writing(fdinfo: &str) -> bool {
    fdinfo
        .lines()
        .find_map(|line| line.strip_prefix("flags:"))
        .and_then(|flags| u32::from_str_radix(flags.trim(), 8).ok())
        .is_some_and(|flags| flags & 0o3 != 0)
}

/// Whether process `pid` has its current or root directory, an open file or a mapping
/// under `path`.
fn holds(pid: u32, path: &Path) -> bool {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let under = |p: &Path| p.starts_with(path);
    let link_under = |link: PathBuf| std::fs::read_link(link).is_ok_and(|p| under(&p));
    if link_under(proc.join("cwd")) || link_under(proc.join("root")) {
        return true;
    }
    if let Ok(fds) = std::fs::read_dir(proc.join("fd"))
        && fds.flatten().any(|fd| link_under(fd.path()))
    {
        return true;
    }
    std::fs::read(proc.join("maps"))
        .is_ok_and(|maps| mapped_paths(&maps).any(|p| under(Path::new(p))))
}

/// The file paths of the mappings in a /proc/PID/maps text.
fn mapped_paths(maps: &[u8]) -> impl Iterator<Item = &std::ffi::OsStr> {
    maps.split(|b| *b == b'\n').filter_map(|line| {
        // address perms offset dev inode, then the path (which may hold spaces).
        let mut rest = line;
        for _ in 0..5 {
            let end = rest.iter().position(|b| *b == b' ')?;
            rest = &rest[end..];
            let start = rest.iter().position(|b| *b != b' ')?;
            rest = &rest[start..];
        }
        rest.starts_with(b"/")
            .then(|| std::ffi::OsStr::from_bytes(rest))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_paths_are_read_from_maps() {
        let maps = b"55d0c2a00000-55d0c2a28000 r--p 00000000 08:01 1835017    /usr/bin/my prog\n\
7ffd4a1e0000-7ffd4a201000 rw-p 00000000 00:00 0                          [stack]\n\
7f1c3c000000-7f1c3c021000 rw-p 00000000 00:00 0 \n";
        let paths: Vec<_> = mapped_paths(maps).collect();
        assert_eq!(paths, vec![std::ffi::OsStr::new("/usr/bin/my prog")]);
    }

    #[test]
    fn fdinfo_flags_tell_writers_from_readers() {
        assert!(open_for_writing("pos:\t0\nflags:\t0100001\nmnt_id:\t30\n"));
        assert!(open_for_writing("pos:\t0\nflags:\t02\n"));
        assert!(!open_for_writing("pos:\t0\nflags:\t0100000\nmnt_id:\t30\n"));
        assert!(!open_for_writing(""));
    }

    #[test]
    fn a_file_another_process_writes_is_found_beneath_its_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        // A shell holding sub/w.txt open for writing and sub/r.txt for reading.
        std::fs::write(root.join("sub/r.txt"), "r").unwrap();
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg("exec 3>sub/w.txt 4<sub/r.txt; sleep 30")
            .current_dir(&root)
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut found = writers_beneath(&[&root, Path::new("/nonexistent")]);
        while found[0].is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
            found = writers_beneath(&[&root, Path::new("/nonexistent")]);
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(found, vec![vec![PathBuf::from("sub/w.txt")], vec![]]);
    }

    #[test]
    fn a_process_in_a_directory_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().canonicalize().unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .current_dir(&path)
            .spawn()
            .unwrap();
        let found = holders(&path);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(
            found,
            vec![Holder {
                pid: child.id(),
                command: "sleep".into()
            }]
        );
        assert_eq!(found[0].to_string(), format!("pid {} (sleep)", child.id()));
    }
}

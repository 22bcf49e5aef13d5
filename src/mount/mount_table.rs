//! The kernel's mount table as jjfs reads and changes it: which paths are mount points, which
//! FUSE connection serves a mount, and the unmounts (never following a symlink) of live,
//! stale and aborted mounts.
//!
//! /proc/self/mountinfo is parsed here rather than with `procfs`, whose parser keeps the
//! octal escapes (`\040`) in mount points and reads the file as UTF-8.

use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use nix::mount::MntFlags;

/// One line of /proc/self/mountinfo that matters here.
pub(crate) struct MountEntry {
    pub(crate) mount_point: PathBuf,
    /// The minor number of the mount's device (a FUSE connection's id).
    pub(crate) device_minor: u32,
    pub(crate) fs_type: String,
    pub(crate) source: String,
}

impl MountEntry {
    fn parse(line: &str) -> Option<Self> {
        let (left, right) = line.split_once(" - ")?;
        let fields: Vec<&str> = left.split(' ').collect();
        let mount_point = fields.get(4)?;
        let device_minor = fields.get(2)?.split_once(':')?.1.parse().ok()?;
        let mut right = right.split(' ');
        let fs_type = right.next()?;
        let source = right.next()?;
        Some(Self {
            mount_point: unescape_mount_path(mount_point),
            device_minor,
            fs_type: fs_type.to_owned(),
            source: unescape_mount_path(source).to_string_lossy().into_owned(),
        })
    }

    fn is_fuse(&self) -> bool {
        self.fs_type.starts_with("fuse")
    }
}

pub(crate) fn mount_table() -> Vec<MountEntry> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines().filter_map(MountEntry::parse).collect()
}

/// Whether `path` is a mount point (live or dead).
pub fn is_mount_point(path: &Path) -> bool {
    mount_table().iter().any(|m| m.mount_point == path)
}

/// The FUSE connection of the newest mount of `source` at `path`.
pub(crate) fn fuse_connection(path: &Path, source: &str) -> Option<u32> {
    mount_table()
        .into_iter()
        .rev()
        .find(|m| m.is_fuse() && m.mount_point == path && m.source == source)
        .map(|m| m.device_minor)
}

/// Whether FUSE connection `minor` is mounted at `path` in `table`.
pub(crate) fn serves(table: &[MountEntry], path: &Path, minor: u32) -> bool {
    table
        .iter()
        .any(|m| m.is_fuse() && m.device_minor == minor && m.mount_point == path)
}

/// Undoes the octal escapes (`\040` for a space) of /proc/self/mountinfo.
fn unescape_mount_path(raw: &str) -> PathBuf {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && let Ok(code) = u8::from_str_radix(&raw[i + 1..i + 4], 8)
        {
            out.push(code);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// umount2 with `flags`, never following a symlink at `path`.
pub(crate) fn unmount(path: &Path, flags: MntFlags) -> nix::Result<()> {
    nix::mount::umount2(path, flags | MntFlags::UMOUNT_NOFOLLOW)
}

/// The `FSName` jjfs gives the mount of backing workspace `backing`.
pub(crate) fn source_of(backing: &Path) -> String {
    format!(
        "jjfs:{}",
        backing
            .canonicalize()
            .unwrap_or_else(|_| backing.to_owned())
            .display()
    )
}

/// Removes a jjfs mount of `backing` left at `path` by a daemon that was killed (its
/// files fail with "transport endpoint is not connected"). The caller holds the daemon lock,
/// so no live daemon serves it. Returns whether there was one.
pub fn clean_stale(path: &Path, backing: &Path) -> bool {
    let source = source_of(backing);
    let stale = mount_table()
        .iter()
        .any(|m| m.mount_point == path && m.is_fuse() && m.source == source);
    if stale {
        force_unmount(path);
        tracing::info!(mount = %path.display(), "cleaned up a stale mount");
    }
    stale
}

/// Aborts the FUSE connection of every jjfs mount whose backing workspace is under `home`
/// (the mounts of a daemon that was killed). A killed daemon whose own thread was waiting
/// on its mount cannot exit until its connections are aborted: this frees it, and programs
/// waiting on the mounts get an error. The mounts stay in place, dead ("transport endpoint is
/// not connected"), so nobody mistakes the empty directory beneath for the files.
pub fn abort_stale_mounts(home: &Path) {
    let prefix = source_of(home);
    for m in mount_table() {
        if m.is_fuse() && m.source.starts_with(&prefix) {
            if abort_connection(m.device_minor).is_err() {
                // No fusectl: a forced unmount aborts too (and unmounts when not busy).
                let _ = unmount(&m.mount_point, MntFlags::MNT_FORCE);
            }
            tracing::info!(mount = %m.mount_point.display(), "aborted the mount of a killed daemon");
        }
    }
}

/// Aborts FUSE connection `minor` through fusectl. Where fusectl is not mounted (no systemd
/// mounted it at boot), it is mounted for the abort and unmounted again: the host is left as
/// it was found.
pub(crate) fn abort_connection(minor: u32) -> io::Result<()> {
    let connections = Path::new("/sys/fs/fuse/connections");
    let abort = connections.join(minor.to_string()).join("abort");
    let mounted_here = !abort.exists()
        && nix::mount::mount(
            Some("fusectl"),
            connections,
            Some("fusectl"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .is_ok();
    let result = std::fs::write(abort, "1");
    if mounted_here {
        let _ = unmount(connections, MntFlags::MNT_DETACH);
    }
    result
}

/// A forced unmount aborts the FUSE connection (releasing anything waiting on it); the lazy
/// one then detaches the mount point even while it is busy.
fn force_unmount(path: &Path) {
    let _ = unmount(path, MntFlags::MNT_FORCE);
    let _ = unmount(path, MntFlags::MNT_DETACH);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_paths_are_unescaped() {
        assert_eq!(
            unescape_mount_path("/a\\040b/caf\u{e9}"),
            Path::new("/a b/caf\u{e9}")
        );
        assert_eq!(unescape_mount_path("/x\\134y"), Path::new("/x\\y"));
    }

    #[test]
    fn a_mountinfo_line_is_parsed() {
        let line = "52 29 0:47 / /tmp/my\\040notes rw,nosuid,nodev,relatime shared:30 - \
                    fuse.jjfs jjfs:/home/u/.jjfs/repos/default/workspaces/x rw,user_id=0";
        let m = MountEntry::parse(line).unwrap();
        assert_eq!(m.mount_point, Path::new("/tmp/my notes"));
        assert_eq!(m.device_minor, 47);
        assert!(m.is_fuse());
        assert_eq!(m.source, "jjfs:/home/u/.jjfs/repos/default/workspaces/x");
        assert!(serves(&[m], Path::new("/tmp/my notes"), 47));
    }

    /// Unmounts a scratch tmpfs when dropped.
    struct Tmpfs(PathBuf);

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(&self.0, MntFlags::MNT_DETACH);
        }
    }

    #[test]
    fn unmounting_never_follows_a_symlink() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: mounting a tmpfs needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("tmpfs");
        std::fs::create_dir(&target).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            &target,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
        let _guard = Tmpfs(target.clone());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(
            unmount(&link, MntFlags::MNT_DETACH),
            Err(nix::errno::Errno::EINVAL)
        );
        assert!(
            is_mount_point(&target),
            "the symlink's target stays mounted"
        );
        unmount(&target, MntFlags::empty()).unwrap();
        assert!(!is_mount_point(&target));
    }
}

//! Atomic file replacement: write a temp file beside the target (`tempfile`), fsync it,
//! rename it over the target (`NamedTempFile::persist`), fsync the directory. A reader sees
//! the old file or the new one, never a mix, a crash leaves one of the two, and a failure
//! leaves no temp file behind.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub(crate) fn write(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    replace(path, contents, true)
}

/// Like `write`, but without syncing the directory: the file is either the old one or the
/// new one after a crash, and the rename may be lost (as jj does for its working-copy state).
pub(crate) fn write_data(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    replace(path, contents, false)
}

/// Like `write_data`, but without syncing the file either: a reader still sees the old file
/// or the new one, but after a crash the file may be the old one, the new one, or empty
/// (for caches that are checked against what they describe before they are trusted).
pub(crate) fn write_unsynced(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    replace_with(path, contents, false, false)
}

fn replace(path: &Path, contents: &[u8], sync_dir: bool) -> std::io::Result<()> {
    replace_with(path, contents, true, sync_dir)
}

fn replace_with(
    path: &Path,
    contents: &[u8],
    sync_data: bool,
    sync_dir: bool,
) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp."))
        // The mode a plain create gives (0666 less the umask), not tempfile's private 0600.
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)?;
    tmp.write_all(contents)?;
    if sync_data {
        tmp.as_file().sync_data()?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    if sync_dir {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_content_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        super::write(&path, b"one").unwrap();
        super::write(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // Created as any file is: 0666 less the umask.
        let umask = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
        nix::sys::stat::umask(umask);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666 & !umask.bits());
    }

    #[test]
    fn a_failed_replace_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        super::write(&path, b"one").unwrap();
        // A directory cannot be renamed over the file: the rename fails, the temp goes.
        let over_dir = dir.path().join("sub");
        std::fs::create_dir(&over_dir).unwrap();
        assert!(super::write(&over_dir, b"two").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}

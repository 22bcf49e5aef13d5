//! Keeping a mount out of the project it sits in: when `jjfs open` mounts inside a git work
//! tree (or a jj workspace), the mount's path is appended, as `/<path>/`, to that
//! repository's `info/exclude`, so `git status` (and jj's snapshots) there do not list the
//! notes; `jjfs close` removes exactly that line again.
//!
//! Which file: for git, `info/exclude` in the common git dir (the main repository's for a
//! linked worktree, `.git/modules/<name>` for a submodule). For a jj workspace that is not
//! colocated with git, jj reads `info/exclude` of its backing git repository (the path in
//! `.jj/repo/store/git_target`, usually `.jj/repo/store/git`) as an ignore file, so the line
//! goes there. A colocated jj repo has a `.git` and is handled as git.
//!
//! Only the CLI calls this, as the user who runs it; the daemon never does. The file is
//! rewritten whole (git's lock-file protocol: `info/exclude.lock`, created exclusively, then
//! renamed over the file), never through a symlink: a symlinked `info` or `info/exclude` is
//! refused.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::files::beneath::{self, Kind, Root};

const LOCK_NAME: &str = "exclude.lock";
/// How long to wait for another writer's `info/exclude.lock`.
const LOCK_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum ExcludeError {
    #[error("{} is a symlink; jjfs does not write through symlinks (add {line} to the file it points to yourself)", .path.display())]
    Symlink { path: PathBuf, line: String },
    #[error("{} is not a regular file", .path.display())]
    NotAFile { path: PathBuf },
    #[error("{} is locked by another writer (remove {} if no git command runs)", .path.display(), .lock.display())]
    Locked { path: PathBuf, lock: PathBuf },
    #[error("{} cannot be written as an exclude pattern ({reason})", .path.display())]
    Unrepresentable { path: PathBuf, reason: &'static str },
    #[error("cannot update {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What kind of project encloses a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectKind {
    /// A git work tree (also a colocated jj repo).
    Git,
    /// A jj workspace without `.git`, backed by a git repository of its own.
    Jj,
}

/// The project a path lies in and the exclude file that keeps paths out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enclosing {
    pub kind: ProjectKind,
    /// The work tree (or jj workspace) root; exclude patterns are relative to it.
    pub work_tree: PathBuf,
    pub exclude_file: PathBuf,
}

/// The innermost git work tree or jj workspace strictly above `path` (an absolute path; the
/// path itself, a mount point, is not looked into). None when there is none, or when its
/// repository keeps no git exclude file (a jj repo without a git backend).
pub fn find_enclosing(path: &Path) -> Option<Enclosing> {
    for dir in path.parent()?.ancestors() {
        let dot_git = dir.join(".git");
        match std::fs::metadata(&dot_git) {
            Ok(meta) if meta.is_dir() => {
                return Some(git_project(dir, &dot_git));
            }
            Ok(meta) if meta.is_file() => {
                // A linked worktree or a submodule: `gitdir: <path>`. A malformed file is
                // not a repository to git either; keep looking above.
                if let Some(git_dir) = read_gitdir_file(&dot_git) {
                    return Some(git_project(dir, &git_dir));
                }
            }
            _ => {}
        }
        let dot_jj = dir.join(".jj");
        if dot_jj.is_dir() {
            return jj_project(dir, &dot_jj);
        }
    }
    None
}

fn git_project(work_tree: &Path, git_dir: &Path) -> Enclosing {
    Enclosing {
        kind: ProjectKind::Git,
        work_tree: work_tree.to_owned(),
        exclude_file: common_dir(git_dir).join("info").join("exclude"),
    }
}

/// `<git dir>/commondir` names the main repository's git dir (relative to the git dir) in a
/// linked worktree; elsewhere the git dir is its own common dir.
fn common_dir(git_dir: &Path) -> PathBuf {
    match std::fs::read(git_dir.join("commondir")) {
        Ok(bytes) => {
            let text = trim_line(&bytes);
            if text.is_empty() {
                git_dir.to_owned()
            } else {
                normalize(&git_dir.join(OsStr::from_bytes(text)))
            }
        }
        Err(_) => git_dir.to_owned(),
    }
}

fn read_gitdir_file(dot_git: &Path) -> Option<PathBuf> {
    let bytes = std::fs::read(dot_git).ok()?;
    let target = trim_line(bytes.strip_prefix(b"gitdir:")?).trim_ascii_start();
    if target.is_empty() {
        return None;
    }
    let dir = dot_git.parent()?;
    let git_dir = normalize(&dir.join(OsStr::from_bytes(target)));
    git_dir.is_dir().then_some(git_dir)
}

fn jj_project(workspace: &Path, dot_jj: &Path) -> Option<Enclosing> {
    // `.jj/repo` is the repo, or (in a secondary workspace) a file naming it relative to
    // `.jj`.
    let mut repo = dot_jj.join("repo");
    if repo.is_file() {
        let bytes = std::fs::read(&repo).ok()?;
        repo = normalize(&dot_jj.join(OsStr::from_bytes(trim_line(&bytes))));
    }
    let store = repo.join("store");
    let target = std::fs::read(store.join("git_target")).ok()?;
    let git_repo = normalize(&store.join(OsStr::from_bytes(trim_line(&target))));
    Some(Enclosing {
        kind: ProjectKind::Jj,
        work_tree: workspace.to_owned(),
        exclude_file: git_repo.join("info").join("exclude"),
    })
}

fn trim_line(bytes: &[u8]) -> &[u8] {
    let mut end = bytes.len();
    while end > 0 && matches!(bytes[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &bytes[..end]
}

/// Removes `.` and `a/..` pairs lexically, as git does with the paths in these files.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The exclude line for a mount at `mount` inside `work_tree`: `/<relative path>/`, with the
/// characters gitignore treats specially escaped.
pub fn exclude_line(work_tree: &Path, mount: &Path) -> Result<String, ExcludeError> {
    let unrepresentable = |reason| ExcludeError::Unrepresentable {
        path: mount.to_owned(),
        reason,
    };
    let rel = mount
        .strip_prefix(work_tree)
        .map_err(|_| unrepresentable("it is not inside the work tree"))?;
    if rel.as_os_str().is_empty() {
        return Err(unrepresentable("it is the work tree itself"));
    }
    let rel = rel
        .to_str()
        .ok_or_else(|| unrepresentable("its name is not UTF-8"))?;
    if rel.contains(['\n', '\r']) {
        return Err(unrepresentable("its name holds a line break"));
    }
    let mut line = String::from("/");
    for c in rel.chars() {
        if matches!(c, '\\' | '*' | '?' | '[') {
            line.push('\\');
        }
        line.push(c);
    }
    // No trailing-space escape is needed: the line ends with `/`.
    line.push('/');
    Ok(line)
}

/// A line this module added or removed, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excluded {
    pub line: String,
    pub exclude_file: PathBuf,
    pub kind: ProjectKind,
}

/// For `jjfs open`: excludes `mount` (absolute) from the project around it. None when there
/// is no such project or the line was already there.
pub fn exclude_mount(mount: &Path) -> Result<Option<Excluded>, ExcludeError> {
    let Some(found) = find_enclosing(mount) else {
        return Ok(None);
    };
    let line = exclude_line(&found.work_tree, mount)?;
    Ok(add(&found.exclude_file, &line)?.then_some(Excluded {
        line,
        exclude_file: found.exclude_file,
        kind: found.kind,
    }))
}

/// For `jjfs close`: removes the line `exclude_mount` adds for `mount`. None when there was
/// none.
pub fn unexclude_mount(mount: &Path) -> Result<Option<Excluded>, ExcludeError> {
    let Some(found) = find_enclosing(mount) else {
        return Ok(None);
    };
    let Ok(line) = exclude_line(&found.work_tree, mount) else {
        return Ok(None);
    };
    Ok(remove(&found.exclude_file, &line)?.then_some(Excluded {
        line,
        exclude_file: found.exclude_file,
        kind: found.kind,
    }))
}

/// Appends `line` to `exclude_file` unless a line equal to it is there already (then false,
/// and the file is untouched). Creates the file and its `info` folder when missing. The rest
/// of the file is kept byte for byte; a file that does not end in a line break gets one
/// before the new line.
pub fn add(exclude_file: &Path, line: &str) -> Result<bool, ExcludeError> {
    rewrite(exclude_file, line, |old| {
        let old = old.unwrap_or_default();
        if lines(old).any(|l| l == line.as_bytes()) {
            return None;
        }
        let mut new = old.to_vec();
        if !new.is_empty() && !new.ends_with(b"\n") {
            new.push(b'\n');
        }
        new.extend_from_slice(line.as_bytes());
        new.push(b'\n');
        Some(new)
    })
}

/// Removes the last line equal to `line` from `exclude_file` (false when there is none).
/// Everything else is kept byte for byte, so a file `add` appended to is as it was before.
pub fn remove(exclude_file: &Path, line: &str) -> Result<bool, ExcludeError> {
    if std::fs::symlink_metadata(exclude_file).is_err() {
        return Ok(false);
    }
    rewrite(exclude_file, line, |old| {
        let old = old?;
        let mut start = 0;
        let mut found = None;
        for l in old.split_inclusive(|b| *b == b'\n') {
            if trim_newline(l) == line.as_bytes() {
                found = Some(start..start + l.len());
            }
            start += l.len();
        }
        let range = found?;
        let mut new = old[..range.start].to_vec();
        new.extend_from_slice(&old[range.end..]);
        Some(new)
    })
}

fn trim_newline(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split_inclusive(|b| *b == b'\n').map(trim_newline)
}

/// Replaces `exclude_file` with `edit(old content)` when that returns Some, under git's lock
/// file, never through a symlink. Whether it was replaced.
fn rewrite(
    exclude_file: &Path,
    line: &str,
    edit: impl FnOnce(Option<&[u8]>) -> Option<Vec<u8>>,
) -> Result<bool, ExcludeError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ExcludeError::Io { path, source }
    };
    let (Some(info_path), Some(name)) = (exclude_file.parent(), exclude_file.file_name()) else {
        return Err(ExcludeError::NotAFile {
            path: exclude_file.to_owned(),
        });
    };
    let (Some(git_dir), Some(info_name)) = (info_path.parent(), info_path.file_name()) else {
        return Err(ExcludeError::NotAFile {
            path: exclude_file.to_owned(),
        });
    };
    let symlink = |path: &Path| ExcludeError::Symlink {
        path: path.to_owned(),
        line: line.to_owned(),
    };
    let root = Root::open(git_dir).map_err(io(git_dir))?;
    let info_rel = Path::new(info_name);
    let info_stat = root.lstat(info_rel).map_err(io(info_path))?;
    match info_stat.map(|s| s.kind) {
        None => {
            let git_stat = beneath::fstat(root.fd()).map_err(io(git_dir))?;
            root.dir(Path::new(""))
                .and_then(|d| {
                    d.mkdir(info_name, 0o755)?;
                    keep_owner(&d, info_name, git_stat.uid, git_stat.gid)
                })
                .map_err(io(info_path))?;
        }
        Some(Kind::Dir) => {}
        Some(Kind::Symlink) => return Err(symlink(info_path)),
        Some(_) => {
            return Err(ExcludeError::NotAFile {
                path: info_path.to_owned(),
            });
        }
    }
    let info = root.dir(info_rel).map_err(|e| {
        if beneath::is_unsafe(&e) {
            symlink(info_path)
        } else {
            io(info_path)(e)
        }
    })?;

    let lock_path = info_path.join(LOCK_NAME);
    let lock_name = OsStr::new(LOCK_NAME);
    let old_stat = info.stat(name).map_err(io(exclude_file))?;
    let mode = match old_stat {
        None => 0o644,
        Some(s) if s.kind == Kind::File => s.mode,
        Some(s) if s.kind == Kind::Symlink => return Err(symlink(exclude_file)),
        Some(_) => {
            return Err(ExcludeError::NotAFile {
                path: exclude_file.to_owned(),
            });
        }
    };
    let mut lock = create_lock(&info, lock_name, mode).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            ExcludeError::Locked {
                path: exclude_file.to_owned(),
                lock: lock_path.clone(),
            }
        } else {
            io(&lock_path)(e)
        }
    })?;
    let result = (|| {
        // Read under the lock: a concurrent `jjfs open` waits for this one.
        let rel = Path::new(info_name).join(name);
        let old = match root.open_beneath(
            &rel,
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK,
            0,
        ) {
            Ok(fd) => {
                let mut file = std::fs::File::from(fd);
                if beneath::fstat(std::os::fd::AsFd::as_fd(&file))
                    .map_err(io(exclude_file))?
                    .kind
                    != Kind::File
                {
                    return Err(ExcludeError::NotAFile {
                        path: exclude_file.to_owned(),
                    });
                }
                let mut bytes = Vec::new();
                file.read_to_end(&mut bytes).map_err(io(exclude_file))?;
                Some(bytes)
            }
            Err(e) if beneath::is_missing(&e) => None,
            Err(e) if beneath::is_unsafe(&e) => return Err(symlink(exclude_file)),
            Err(e) => return Err(io(exclude_file)(e)),
        };
        let Some(new) = edit(old.as_deref()) else {
            return Ok(false);
        };
        lock.write_all(&new).map_err(io(&lock_path))?;
        lock.sync_all().map_err(io(&lock_path))?;
        if let Some(old) = old_stat {
            keep_owner(&info, lock_name, old.uid, old.gid).map_err(io(&lock_path))?;
        }
        info.rename(lock_name, &info, name, true)
            .map_err(io(exclude_file))?;
        Ok(true)
    })();
    if !matches!(result, Ok(true)) {
        let _ = info.unlink(lock_name);
    }
    result
}

/// Creates the lock file, waiting a little for another writer to finish.
fn create_lock(info: &beneath::Dir, name: &OsStr, mode: u32) -> std::io::Result<std::fs::File> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match info.create_new(name, mode) {
            Err(e)
                if e.kind() == std::io::ErrorKind::AlreadyExists && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// When root writes a user's file (`sudo jjfs open`), the user keeps owning it.
fn keep_owner(dir: &beneath::Dir, name: &OsStr, uid: u32, gid: u32) -> std::io::Result<()> {
    if nix::unistd::geteuid().is_root() && (uid, gid) != (0, 0) {
        dir.chown(name, uid, gid)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A `git init` repo with one commit, in a fresh temp dir (canonical path).
    fn repo() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap().join("proj");
        std::fs::create_dir(&root).unwrap();
        git(&root, &["init", "-q", "-b", "main"]);
        std::fs::write(root.join("README"), "hi\n").unwrap();
        git(&root, &["add", "README"]);
        git(&root, &["commit", "-q", "-m", "init"]);
        (tmp, root)
    }

    fn write_notes(dir: &Path) {
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a.md"), "a\n").unwrap();
        std::fs::write(dir.join("sub/b.md"), "b\n").unwrap();
    }

    #[test]
    fn a_mount_in_a_work_tree_is_excluded_and_restored_byte_for_byte() {
        let (_tmp, root) = repo();
        let exclude = root.join(".git/info/exclude");
        let before = std::fs::read(&exclude).unwrap();
        let mount = root.join("docs/notes");
        let found = find_enclosing(&mount).unwrap();
        assert_eq!(
            found,
            Enclosing {
                kind: ProjectKind::Git,
                work_tree: root.clone(),
                exclude_file: exclude.clone(),
            }
        );
        let added = exclude_mount(&mount).unwrap().unwrap();
        assert_eq!(added.line, "/docs/notes/");
        let mut expected = before.clone();
        expected.extend_from_slice(b"/docs/notes/\n");
        assert_eq!(std::fs::read(&exclude).unwrap(), expected);
        // Not twice.
        assert_eq!(exclude_mount(&mount).unwrap(), None);
        assert_eq!(std::fs::read(&exclude).unwrap(), expected);

        write_notes(&mount);
        assert_eq!(git(&root, &["status", "--porcelain"]), "");
        // Only that folder: a sibling still shows.
        std::fs::write(root.join("docs/other.md"), "x").unwrap();
        assert_eq!(
            git(&root, &["status", "--porcelain", "-uall"]),
            "?? docs/other.md\n"
        );

        assert_eq!(
            unexclude_mount(&mount).unwrap().unwrap().line,
            "/docs/notes/"
        );
        assert_eq!(std::fs::read(&exclude).unwrap(), before);
        assert_eq!(unexclude_mount(&mount).unwrap(), None);
        assert!(!root.join(".git/info/exclude.lock").exists());
    }

    #[test]
    fn special_characters_are_escaped_so_git_matches_the_literal_name() {
        let (_tmp, root) = repo();
        assert_eq!(
            exclude_line(&root, &root.join("we*ird [x]?\\ #!  ")).unwrap(),
            "/we\\*ird \\[x]\\?\\\\ #!  /"
        );
        assert!(exclude_line(&root, &root.join("a\nb")).is_err());
        assert!(exclude_line(&root, &root).is_err());

        // `/n*tes/` unescaped would hide `nXtes/` too.
        let mount = root.join("n*tes [1]?");
        exclude_mount(&mount).unwrap().unwrap();
        write_notes(&mount);
        write_notes(&root.join("nXtes [1]x"));
        write_notes(&root.join("nXtes"));
        assert_eq!(
            git(&root, &["status", "--porcelain"]),
            "?? \"nXtes [1]x/\"\n?? nXtes/\n"
        );
    }

    #[test]
    fn a_linked_worktree_uses_the_common_git_dir() {
        let (tmp, root) = repo();
        let wt = tmp.path().canonicalize().unwrap().join("wt");
        git(&root, &["worktree", "add", "-q", wt.to_str().unwrap()]);
        let mount = wt.join("notes");
        let found = find_enclosing(&mount).unwrap();
        assert_eq!(found.work_tree, wt);
        assert_eq!(found.exclude_file, root.join(".git/info/exclude"));
        exclude_mount(&mount).unwrap().unwrap();
        write_notes(&mount);
        assert_eq!(git(&wt, &["status", "--porcelain"]), "");
        unexclude_mount(&mount).unwrap().unwrap();
        assert_eq!(git(&wt, &["status", "--porcelain"]), "?? notes/\n");
    }

    #[test]
    fn a_submodule_uses_its_own_git_dir() {
        let (tmp, root) = repo();
        let (_tmp2, lib) = repo();
        git(
            &root,
            &[
                "-c",
                "protocol.file.allow=always",
                "submodule",
                "add",
                "-q",
                lib.to_str().unwrap(),
                "lib",
            ],
        );
        let sub = root.join("lib");
        let mount = sub.join("notes");
        let found = find_enclosing(&mount).unwrap();
        assert_eq!(found.work_tree, sub);
        assert_eq!(
            found.exclude_file,
            root.join(".git/modules/lib/info/exclude")
        );
        exclude_mount(&mount).unwrap().unwrap();
        write_notes(&mount);
        assert_eq!(git(&sub, &["status", "--porcelain"]), "");
        drop(tmp);
    }

    #[test]
    fn symlinks_are_refused_and_left_alone() {
        let (tmp, root) = repo();
        let target = tmp.path().join("elsewhere");
        std::fs::write(&target, "# not git's\n").unwrap();
        let exclude = root.join(".git/info/exclude");
        std::fs::remove_file(&exclude).unwrap();
        std::os::unix::fs::symlink(&target, &exclude).unwrap();
        let err = add(&exclude, "/notes/").unwrap_err();
        assert!(matches!(err, ExcludeError::Symlink { .. }), "{err}");
        assert!(err.to_string().contains("is a symlink"), "{err}");
        assert!(err.to_string().contains("/notes/"), "{err}");
        assert_eq!(std::fs::read(&target).unwrap(), b"# not git's\n");
        assert!(std::fs::symlink_metadata(&exclude).unwrap().is_symlink());
        assert!(matches!(
            remove(&exclude, "/notes/").unwrap_err(),
            ExcludeError::Symlink { .. }
        ));

        // A symlinked info folder too.
        let info = root.join(".git/info");
        std::fs::remove_file(&exclude).unwrap();
        std::fs::remove_dir(&info).unwrap();
        let other = tmp.path().join("other-info");
        std::fs::create_dir(&other).unwrap();
        std::os::unix::fs::symlink(&other, &info).unwrap();
        let err = add(&exclude, "/notes/").unwrap_err();
        assert!(matches!(err, ExcludeError::Symlink { .. }), "{err}");
        assert_eq!(std::fs::read_dir(&other).unwrap().count(), 0);
    }

    #[test]
    fn a_missing_file_and_folder_are_created_and_odd_endings_kept() {
        let (_tmp, root) = repo();
        let info = root.join(".git/info");
        std::fs::remove_dir_all(&info).unwrap();
        let exclude = info.join("exclude");
        assert!(add(&exclude, "/notes/").unwrap());
        assert_eq!(std::fs::read(&exclude).unwrap(), b"/notes/\n");
        assert!(remove(&exclude, "/notes/").unwrap());
        assert_eq!(std::fs::read(&exclude).unwrap(), b"");

        // No final line break: one goes before the new line, and stays after removal.
        std::fs::write(&exclude, "*.tmp").unwrap();
        assert!(add(&exclude, "/notes/").unwrap());
        assert_eq!(std::fs::read(&exclude).unwrap(), b"*.tmp\n/notes/\n");
        assert!(remove(&exclude, "/notes/").unwrap());
        assert_eq!(std::fs::read(&exclude).unwrap(), b"*.tmp\n");

        // Lines after ours (added later by the user) are kept as they are.
        std::fs::write(&exclude, "a\r\n").unwrap();
        add(&exclude, "/notes/").unwrap();
        std::fs::write(
            &exclude,
            [&std::fs::read(&exclude).unwrap()[..], b"b"].concat(),
        )
        .unwrap();
        remove(&exclude, "/notes/").unwrap();
        assert_eq!(std::fs::read(&exclude).unwrap(), b"a\r\nb");

        // The file's mode survives the rewrite.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&exclude, std::fs::Permissions::from_mode(0o600)).unwrap();
        add(&exclude, "/notes/").unwrap();
        let mode = std::fs::metadata(&exclude).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_held_lock_is_waited_for_then_reported() {
        let (_tmp, root) = repo();
        let exclude = root.join(".git/info/exclude");
        let before = std::fs::read(&exclude).unwrap();
        std::fs::write(root.join(".git/info/exclude.lock"), "").unwrap();
        let err = add(&exclude, "/notes/").unwrap_err();
        assert!(matches!(err, ExcludeError::Locked { .. }), "{err}");
        assert!(
            root.join(".git/info/exclude.lock").exists(),
            "not ours to remove"
        );
        assert_eq!(std::fs::read(&exclude).unwrap(), before);
    }

    #[test]
    fn nothing_encloses_a_path_outside_any_project() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().canonicalize().unwrap();
        // The temp dir is in no work tree on these machines; if it were, there is no test.
        if find_enclosing(&dir).is_some() {
            return;
        }
        assert_eq!(find_enclosing(&dir.join("notes")), None);
        assert_eq!(exclude_mount(&dir.join("notes")).unwrap(), None);
        assert_eq!(unexclude_mount(&dir.join("notes")).unwrap(), None);
        // A malformed `.git` file is not a repository.
        std::fs::write(dir.join(".git"), "nonsense\n").unwrap();
        assert_eq!(find_enclosing(&dir.join("notes")), None);
    }
}

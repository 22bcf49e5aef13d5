//! Checks the history a fetch brought before jj imports it: a commit whose tree holds a path
//! jj cannot check out, or one that could reach outside a workspace or into git's or jj's own
//! state (`..`, `.`, `.git`, `.jj`, an empty name, a name holding `/` or NUL, a name that is
//! not UTF-8), would make every mount fail its check-out, or make jj-lib panic on import. Such
//! history is never imported; the caller puts the remote-tracking refs back instead.
//!
//! Only new history is read: the walk stops at commits jj already knows, and each tree is
//! compared with its first parent's, so entries a commit kept unchanged are not read again.

use std::collections::{HashMap, HashSet};

use gix::ObjectId;

/// A fetched commit that is refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub commit: ObjectId,
    pub problem: Problem,
}

impl Refused {
    /// The commit's id as users see it in messages (its first 12 hex digits).
    pub fn short_id(&self) -> String {
        self.commit.to_hex_with_len(12).to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// `path` is the repo path (`/`-separated) of the bad entry, or of the first file below
    /// a bad folder.
    #[error("an unsafe path {:?}{}", String::from_utf8_lossy(path), reason.note())]
    UnsafePath { path: Vec<u8>, reason: Reason },
    /// An object of the commit is missing or not valid git.
    #[error("objects jjfs cannot read ({0})")]
    Unreadable(String),
}

/// What is wrong with a name (only the less obvious ones get a note in messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `.`, `..`, `.git` or `.jj` (in any case).
    Reserved,
    Empty,
    Slash,
    Nul,
    NotUtf8,
}

impl Reason {
    fn note(self) -> &'static str {
        match self {
            Self::Reserved => "",
            Self::Empty => " (an empty name)",
            Self::Slash => " (a name holding \"/\")",
            Self::Nul => " (a name holding NUL)",
            Self::NotUtf8 => " (a name that is not UTF-8)",
        }
    }
}

/// Why `name`, one entry of a git tree, must not reach a working copy; None if it is fine.
pub fn unsafe_name(name: &[u8]) -> Option<Reason> {
    if name.is_empty() {
        return Some(Reason::Empty);
    }
    if name.contains(&b'/') {
        return Some(Reason::Slash);
    }
    if name.contains(&0) {
        return Some(Reason::Nul);
    }
    let Ok(text) = std::str::from_utf8(name) else {
        return Some(Reason::NotUtf8);
    };
    // macOS's file systems ignore some invisible code points and case: ".G\u{200c}it" is ".git".
    let folded: String = text
        .chars()
        .filter(|c| !is_hfs_ignorable(*c))
        .collect::<String>()
        .to_lowercase();
    matches!(folded.as_str(), "." | ".." | ".git" | ".jj").then_some(Reason::Reserved)
}

/// The code points HFS+ ignores in names (as git's `is_hfs_dotgit` does).
fn is_hfs_ignorable(c: char) -> bool {
    matches!(c as u32, 0x200c..=0x200f | 0x202a..=0x202e | 0x206a..=0x206f | 0xfeff)
}

/// Walks the commits reachable from fetched tips that jj does not know yet.
pub struct Validator<'a> {
    repo: &'a gix::Repository,
    known: &'a dyn Fn(&gix::oid) -> bool,
    seen_commits: HashSet<ObjectId>,
    valid_trees: HashSet<ObjectId>,
}

/// One tree entry, as read.
struct Entry {
    name: Vec<u8>,
    is_tree: bool,
    oid: ObjectId,
}

impl<'a> Validator<'a> {
    /// `known` says whether jj already has a commit (its history was checked, or made here).
    pub fn new(repo: &'a gix::Repository, known: &'a dyn Fn(&gix::oid) -> bool) -> Self {
        Self {
            repo,
            known,
            seen_commits: HashSet::new(),
            valid_trees: HashSet::new(),
        }
    }

    /// Checks every commit reachable from `tip` and not known; the first refused one.
    /// History checked by earlier calls on this validator is not walked again.
    pub fn check(&mut self, tip: ObjectId) -> Result<(), Refused> {
        let mut queue = vec![tip];
        while let Some(id) = queue.pop() {
            if !self.seen_commits.insert(id) || (self.known)(&id) {
                continue;
            }
            let refuse = |problem| Refused {
                commit: id,
                problem,
            };
            let (tree, parents) = self.commit(id).map_err(refuse)?;
            let reference = match parents.first() {
                Some(parent) => Some(self.commit(*parent).map_err(refuse)?.0),
                None => None,
            };
            self.check_tree(tree, reference).map_err(refuse)?;
            queue.extend(parents);
        }
        Ok(())
    }

    /// A commit's tree and parents.
    fn commit(&self, id: ObjectId) -> Result<(ObjectId, Vec<ObjectId>), Problem> {
        let unreadable = |e: &dyn std::fmt::Display| Problem::Unreadable(format!("{id}: {e}"));
        let commit = self
            .repo
            .find_object(id)
            .map_err(|e| unreadable(&e))?
            .try_into_commit()
            .map_err(|e| unreadable(&e))?;
        let tree = commit.tree_id().map_err(|e| unreadable(&e))?.detach();
        let parents = commit.parent_ids().map(|p| p.detach()).collect();
        Ok((tree, parents))
    }

    fn entries(&self, id: ObjectId) -> Result<Vec<Entry>, Problem> {
        let unreadable = |e: &dyn std::fmt::Display| Problem::Unreadable(format!("{id}: {e}"));
        let tree = self
            .repo
            .find_object(id)
            .map_err(|e| unreadable(&e))?
            .try_into_tree()
            .map_err(|e| unreadable(&e))?;
        gix::objs::TreeRefIter::from_bytes(&tree.data, self.repo.object_hash())
            .map(|entry| {
                let entry = entry.map_err(|e| unreadable(&e))?;
                Ok(Entry {
                    name: entry.filename.to_vec(),
                    is_tree: entry.mode.is_tree(),
                    oid: entry.oid.to_owned(),
                })
            })
            .collect()
    }

    /// Extends `path` (of tree `id`) down to the first file below it, so a message names a
    /// path users recognise (`../evil`, `.git/config`) rather than a bare `..` or `.git`.
    fn extend_to_a_file(&self, path: &mut Vec<u8>, mut id: ObjectId) {
        for _ in 0..32 {
            let Some(first) = self.entries(id).ok().and_then(|e| e.into_iter().next()) else {
                return;
            };
            path.push(b'/');
            path.extend_from_slice(&first.name);
            if !first.is_tree {
                return;
            }
            id = first.oid;
        }
    }

    /// Checks every name in `tree` and its subtrees, except entries `reference` (a tree
    /// already checked or known) holds unchanged. Iterative: a hostile tree may be deep.
    fn check_tree(&mut self, tree: ObjectId, reference: Option<ObjectId>) -> Result<(), Problem> {
        let mut work = vec![(tree, reference, Vec::<u8>::new())];
        while let Some((tree, reference, dir)) = work.pop() {
            if reference == Some(tree) || !self.valid_trees.insert(tree) {
                continue;
            }
            let old: HashMap<Vec<u8>, Entry> = match reference {
                Some(r) => self
                    .entries(r)?
                    .into_iter()
                    .map(|e| (e.name.clone(), e))
                    .collect(),
                None => HashMap::new(),
            };
            for entry in self.entries(tree)? {
                let before = old.get(&entry.name);
                if before.is_some_and(|b| b.oid == entry.oid && b.is_tree == entry.is_tree) {
                    continue;
                }
                let mut path = dir.clone();
                if !path.is_empty() {
                    path.push(b'/');
                }
                path.extend_from_slice(&entry.name);
                if let Some(reason) = unsafe_name(&entry.name) {
                    if entry.is_tree {
                        self.extend_to_a_file(&mut path, entry.oid);
                    }
                    return Err(Problem::UnsafePath { path, reason });
                }
                if entry.is_tree {
                    let reference = before.filter(|b| b.is_tree).map(|b| b.oid);
                    work.push((entry.oid, reference, path));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::{Command, Stdio};

    /// Runs git in `dir` with `input` on stdin; its stdout, trimmed.
    fn git(dir: &Path, args: &[&str], input: &[u8]) -> String {
        use std::io::Write;
        let mut child = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// A tree of (mode, name, id) written byte for byte (names git refuses included).
    fn tree(dir: &Path, entries: &[(&str, &[u8], &str)]) -> String {
        let mut bytes = Vec::new();
        for (mode, name, id) in entries {
            bytes.extend_from_slice(format!("{mode} ").as_bytes());
            bytes.extend_from_slice(name);
            bytes.push(0);
            bytes.extend_from_slice(ObjectId::from_hex(id.as_bytes()).unwrap().as_bytes());
        }
        let args = ["hash-object", "-t", "tree", "--literally", "-w", "--stdin"];
        git(dir, &args, &bytes)
    }

    fn commit(dir: &Path, tree: &str, parent: Option<&str>) -> ObjectId {
        let mut args = vec!["commit-tree", tree, "-m", "c"];
        args.extend(parent.iter().flat_map(|p| ["-p", p]));
        ObjectId::from_hex(git(dir, &args, b"").as_bytes()).unwrap()
    }

    #[test]
    fn only_new_history_is_walked_and_the_commit_that_brought_a_bad_name_is_named() {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "--bare", "-q", "."], b"");
        let blob = git(dir.path(), &["hash-object", "-w", "--stdin"], b"note\n");
        let good_tree = tree(dir.path(), &[("100644", b"a.md", &blob)]);
        let good = commit(dir.path(), &good_tree, None);
        let dotdot = tree(
            dir.path(),
            &[("40000", b"..", &good_tree), ("100644", b"a.md", &blob)],
        );
        let bad = commit(dir.path(), &dotdot, Some(&good.to_string()));
        let later_tree = tree(
            dir.path(),
            &[
                ("40000", b"..", &good_tree),
                ("100644", b"a.md", &blob),
                ("100644", b"b.md", &blob),
            ],
        );
        let later = commit(dir.path(), &later_tree, Some(&bad.to_string()));
        let empty = tree(dir.path(), &[("100644", b"", &blob)]);
        let nameless = commit(dir.path(), &empty, Some(&good.to_string()));
        let repo = gix::open(dir.path()).unwrap();

        // Nothing known: the commit that added `..` is named, not the later one that kept it.
        let nothing = |_: &gix::oid| false;
        let refused = Validator::new(&repo, &nothing).check(later).unwrap_err();
        assert_eq!(refused.commit, bad);
        assert_eq!(
            refused.problem,
            Problem::UnsafePath {
                path: b"../a.md".to_vec(),
                reason: Reason::Reserved
            }
        );
        assert_eq!(refused.short_id(), bad.to_string()[..12]);
        let refused = Validator::new(&repo, &nothing).check(nameless).unwrap_err();
        assert_eq!(
            (refused.commit, refused.problem),
            (
                nameless,
                Problem::UnsafePath {
                    path: Vec::new(),
                    reason: Reason::Empty
                }
            )
        );
        Validator::new(&repo, &nothing).check(good).unwrap();

        // History jj already has is not walked again: what a known commit holds is not judged.
        let up_to_bad = |id: &gix::oid| id == bad || id == good;
        Validator::new(&repo, &up_to_bad).check(later).unwrap();
    }

    #[test]
    fn names_that_cannot_reach_a_working_copy() {
        for (name, reason) in [
            (&b""[..], Reason::Empty),
            (b".", Reason::Reserved),
            (b"..", Reason::Reserved),
            (b".git", Reason::Reserved),
            (b".GIT", Reason::Reserved),
            (b".Git", Reason::Reserved),
            (".g\u{200c}it".as_bytes(), Reason::Reserved),
            (b".jj", Reason::Reserved),
            (b".JJ", Reason::Reserved),
            (b"a/b", Reason::Slash),
            (b"/etc", Reason::Slash),
            (b"a\0b", Reason::Nul),
            (b"\xff", Reason::NotUtf8),
        ] {
            assert_eq!(unsafe_name(name), Some(reason), "{name:?}");
        }
        for name in [
            &b"notes.md"[..],
            b"...",
            b".gitignore",
            b".github",
            b".jjconfig",
            b"git",
            "é".as_bytes(),
        ] {
            assert_eq!(unsafe_name(name), None, "{name:?}");
        }
    }

    #[test]
    fn messages_quote_the_path() {
        let problem = Problem::UnsafePath {
            path: b"x/../y".to_vec(),
            reason: Reason::Reserved,
        };
        assert_eq!(problem.to_string(), r#"an unsafe path "x/../y""#);
        let problem = Problem::UnsafePath {
            path: b"dir/".to_vec(),
            reason: Reason::Empty,
        };
        assert_eq!(
            problem.to_string(),
            r#"an unsafe path "dir/" (an empty name)"#
        );
    }
}

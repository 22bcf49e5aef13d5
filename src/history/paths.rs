//! PATH as users give it to the history commands: relative to the current directory when
//! that is inside a mount (the repo is then the mount's), absolute inside a mount, or, with
//! `--repo`, a path from the repo's root. Everything is lexical: a path in history need not
//! exist on disk.

use std::path::{Component, Path, PathBuf};

/// A directory that shows a repo's files: a mount, or the backing workspace behind it.
#[derive(Debug, Clone)]
pub(crate) struct Root {
    pub(crate) repo: String,
    pub(crate) dir: PathBuf,
}

/// Where the command runs and what it names.
pub(crate) struct Query<'a> {
    pub(crate) cwd: &'a Path,
    pub(crate) repo: Option<&'a str>,
    pub(crate) roots: &'a [Root],
    /// Every repo's name.
    pub(crate) repos: &'a [String],
}

/// The repo and the repo paths (`/`-separated, "" for the root) that `paths` name.
pub(crate) fn resolve(
    query: &Query<'_>,
    paths: &[String],
) -> Result<(String, Vec<String>), String> {
    if let Some(name) = query.repo
        && !query.repos.iter().any(|r| r == name)
    {
        return Err(unknown_repo(name, query.repos));
    }
    let cwd_root = containing(query.roots, query.cwd);
    let mut repo: Option<String> = query.repo.map(str::to_owned);
    let mut resolved = Vec::with_capacity(paths.len());
    for given in paths {
        let path = Path::new(given);
        let (name, repo_path) = if path.is_absolute() {
            let absolute = normalize(path).ok_or_else(|| escapes(given))?;
            let root = containing(query.roots, &absolute).ok_or_else(|| {
                format!("{given} is not inside a jjfs mount; give a path inside one, or a repo path with --repo NAME")
            })?;
            (root.repo.clone(), inside(&root.dir, &absolute, given)?)
        } else if let Some(name) = query.repo.filter(|n| cwd_root.is_none_or(|r| r.repo != *n)) {
            // With --repo (naming another repo than the mount we stand in): a repo path.
            (name.to_owned(), repo_relative(path, given)?)
        } else {
            let absolute = normalize(&query.cwd.join(path));
            match absolute
                .as_deref()
                .and_then(|a| containing(query.roots, a).map(|r| (r, a)))
            {
                Some((root, absolute)) => (root.repo.clone(), inside(&root.dir, absolute, given)?),
                None if cwd_root.is_some() => return Err(escapes(given)),
                // Outside every mount: a repo path of the only repo.
                None => (only_repo(query)?, repo_relative(path, given)?),
            }
        };
        match &repo {
            Some(existing) if *existing != name => {
                return Err(format!(
                    "{given} is in repo {name}, the other paths in repo {existing}; name paths of one repo at a time"
                ));
            }
            _ => repo = Some(name),
        }
        resolved.push(repo_path);
    }
    let repo = match repo {
        Some(repo) => repo,
        None => match cwd_root {
            Some(root) => root.repo.clone(),
            None => only_repo(query)?,
        },
    };
    Ok((repo, resolved))
}

fn unknown_repo(name: &str, repos: &[String]) -> String {
    if repos.is_empty() {
        format!("unknown repo {name}: there are no repos yet; create one with `jjfs init`")
    } else {
        format!("unknown repo {name}; the repos are: {}", repos.join(", "))
    }
}

/// The repo to use outside any mount and without --repo: the only one there is.
fn only_repo(query: &Query<'_>) -> Result<String, String> {
    match query.repos {
        [only] => Ok(only.clone()),
        [] => Err("there are no repos yet; create one with `jjfs init`".to_owned()),
        many => Err(format!(
            "which repo? run this inside a mount or pass --repo NAME (the repos are: {})",
            many.join(", ")
        )),
    }
}

/// The deepest root that holds `path`.
fn containing<'r>(roots: &'r [Root], path: &Path) -> Option<&'r Root> {
    roots
        .iter()
        .filter(|r| path.starts_with(&r.dir))
        .max_by_key(|r| r.dir.components().count())
}

/// `absolute` relative to `root`, as a repo path.
fn inside(root: &Path, absolute: &Path, given: &str) -> Result<String, String> {
    let rest = absolute.strip_prefix(root).map_err(|_| escapes(given))?;
    repo_relative(rest, given)
}

/// A relative path as a repo path: `.` and `..` applied, never above the root, never `.jj`.
fn repo_relative(path: &Path, given: &str) -> Result<String, String> {
    let mut parts: Vec<String> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop().ok_or_else(|| escapes(given))?;
            }
            Component::Normal(part) => {
                let part = part
                    .to_str()
                    .ok_or_else(|| format!("{given}: the name is not valid UTF-8"))?;
                parts.push(part.to_owned());
            }
            Component::RootDir | Component::Prefix(_) => return Err(escapes(given)),
        }
    }
    if parts.first().is_some_and(|p| p == ".jj") {
        return Err(format!(
            "{given}: .jj is jj's own directory, not part of the repo's files"
        ));
    }
    Ok(parts.join("/"))
}

fn escapes(given: &str) -> String {
    format!("{given} is outside the repo")
}

/// `.` and `..` applied to an absolute path; None when it climbs above `/`.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                if !out.pop() || out.as_os_str().is_empty() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots() -> Vec<Root> {
        vec![
            Root {
                repo: "notes".into(),
                dir: "/home/me/a/notes".into(),
            },
            Root {
                repo: "work".into(),
                dir: "/home/me/b/work".into(),
            },
        ]
    }

    fn repos() -> Vec<String> {
        vec!["notes".into(), "work".into()]
    }

    fn run(cwd: &str, repo: Option<&str>, paths: &[&str]) -> Result<(String, Vec<String>), String> {
        let (roots, repos) = (roots(), repos());
        let query = Query {
            cwd: Path::new(cwd),
            repo,
            roots: &roots,
            repos: &repos,
        };
        let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
        resolve(&query, &paths)
    }

    fn ok(repo: &str, paths: &[&str]) -> Result<(String, Vec<String>), String> {
        Ok((repo.into(), paths.iter().map(|p| p.to_string()).collect()))
    }

    #[test]
    fn relative_to_the_mount_the_user_stands_in() {
        assert_eq!(
            run("/home/me/a/notes/sub", None, &["x.md"]),
            ok("notes", &["sub/x.md"])
        );
        assert_eq!(
            run("/home/me/a/notes/sub", None, &["../y.md", "."]),
            ok("notes", &["y.md", "sub"])
        );
        assert_eq!(run("/home/me/a/notes", None, &[]), ok("notes", &[]));
        assert_eq!(run("/home/me/a/notes", None, &["."]), ok("notes", &[""]));
        assert_eq!(
            run("/home/me", None, &["a/notes/x.md"]),
            ok("notes", &["x.md"])
        );
        assert_eq!(
            run("/home/me/a/notes", None, &["../../b/work/p.md"]),
            ok("work", &["p.md"])
        );
    }

    #[test]
    fn absolute_paths_name_their_mount() {
        assert_eq!(
            run("/tmp", None, &["/home/me/b/work/plan.md"]),
            ok("work", &["plan.md"])
        );
        assert!(
            run("/tmp", None, &["/etc/passwd"])
                .unwrap_err()
                .contains("not inside a jjfs mount")
        );
    }

    #[test]
    fn with_repo_a_path_is_from_the_repo_root() {
        assert_eq!(
            run("/tmp", Some("work"), &["dir/plan.md"]),
            ok("work", &["dir/plan.md"])
        );
        assert_eq!(
            run("/home/me/a/notes/sub", Some("work"), &["plan.md"]),
            ok("work", &["plan.md"])
        );
        assert_eq!(run("/tmp", Some("work"), &[]), ok("work", &[]));
    }

    #[test]
    fn refusals() {
        assert!(
            run("/tmp", Some("nope"), &["x"])
                .unwrap_err()
                .starts_with("unknown repo nope")
        );
        assert!(
            run("/tmp", None, &["x"])
                .unwrap_err()
                .starts_with("which repo?")
        );
        assert!(
            run("/home/me/a/notes", None, &["../../x"])
                .unwrap_err()
                .contains("outside the repo")
        );
        assert!(
            run("/tmp", Some("work"), &["../x"])
                .unwrap_err()
                .contains("outside the repo")
        );
        assert!(
            run("/home/me/a/notes", None, &[".jj/repo"])
                .unwrap_err()
                .contains(".jj")
        );
        assert!(
            run("/home/me/a/notes", None, &["x", "/home/me/b/work/y"])
                .unwrap_err()
                .contains("one repo at a time")
        );
    }
}

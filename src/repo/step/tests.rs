//! In-process tests of the sync step: a real repo in a temp dir, workspaces on plain
//! directories written through `PlainFiles` (the same check-out code a mount uses, minus
//! the FUSE fence), no root, no FUSE, no daemon.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jj_lib::repo::Repo as _;
use uuid::Uuid;

use super::{StepReport, WorkspacePlan};
use crate::files::{PlainFiles, Root};
use crate::repo::repository::{Repository, workspace_name};
use crate::repo::working_copy::Scan;
use crate::repo::{Identity, block_on, create_repo, user_settings};

struct Harness {
    _dir: tempfile::TempDir,
    repo: Repository,
    workspaces: Vec<(Uuid, PathBuf)>,
}

impl Harness {
    fn new(n: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        let settings = user_settings(&Identity {
            name: "Test".into(),
            email: "test@example.com".into(),
        })
        .unwrap();
        create_repo(&root, &settings, "main", &[]).unwrap();
        let mut repo = Repository::open("test", &root, &settings, "main").unwrap();
        let mut workspaces = Vec::new();
        for _ in 0..n {
            let id = Uuid::new_v4();
            let backing = root.join("workspaces").join(id.to_string());
            repo.add_workspace(&id, &backing, None).unwrap();
            workspaces.push((id, backing));
        }
        Self {
            _dir: dir,
            repo,
            workspaces,
        }
    }

    fn dir(&self, ws: usize) -> &Path {
        &self.workspaces[ws].1
    }

    fn write(&self, ws: usize, path: &str, content: &str) {
        let full = self.dir(ws).join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }

    fn read(&self, ws: usize, path: &str) -> Option<String> {
        std::fs::read_to_string(self.dir(ws).join(path)).ok()
    }

    /// One step in which workspace `ws` reports `changed` (the others report nothing).
    fn step(&mut self, ws: usize, changed: &[&str]) -> StepReport {
        let scans = (0..self.workspaces.len())
            .map(|i| {
                (i == ws).then(|| Scan {
                    changed: changed.iter().map(PathBuf::from).collect(),
                    rescan: BTreeSet::new(),
                })
            })
            .collect();
        self.step_with(scans, vec![Vec::new(); self.workspaces.len()])
    }

    /// A step that rescans every workspace (what `jjfs sync` does).
    fn rescan(&mut self) -> StepReport {
        let scans = (0..self.workspaces.len())
            .map(|i| {
                let mut rescan = BTreeSet::new();
                walk(self.dir(i), Path::new(""), &mut rescan);
                Some(Scan {
                    changed: BTreeSet::new(),
                    rescan,
                })
            })
            .collect();
        self.step_with(scans, vec![Vec::new(); self.workspaces.len()])
    }

    fn step_with(&mut self, scans: Vec<Option<Scan>>, held: Vec<Vec<PathBuf>>) -> StepReport {
        let plans = self
            .workspaces
            .iter()
            .zip(scans)
            .zip(held)
            .map(|(((id, backing), scan), held)| WorkspacePlan {
                id: *id,
                label: backing.display().to_string(),
                state: self.repo.state_paths(id, backing),
                read_root: Arc::new(Root::open(backing).unwrap()),
                files: Arc::new(PlainFiles::new(Root::open(backing).unwrap(), None)),
                scan,
                held,
                sparse: None,
            })
            .collect();
        let report = self.repo.step(plans, self.repo.settings().signature());
        for (id, result) in &report.workspaces {
            if let Err(err) = result {
                panic!("workspace {id} failed: {err:?}");
            }
        }
        report
    }
}

/// Every file under `dir` (relative), skipping `.jj`.
fn walk(root: &Path, rel: &Path, out: &mut BTreeSet<PathBuf>) {
    for entry in std::fs::read_dir(root.join(rel)).unwrap().flatten() {
        let name = entry.file_name();
        if name == ".jj" {
            continue;
        }
        let path = rel.join(&name);
        if entry.file_type().unwrap().is_dir() {
            walk(root, &path, out);
        } else {
            out.insert(path);
        }
    }
}

#[test]
fn an_edit_reaches_every_workspace() {
    let mut h = Harness::new(3);
    h.write(0, "notes/todo.md", "milk\n");
    let report = h.step(0, &["notes/todo.md"]);
    assert_eq!(report.commits, 1);
    assert_eq!(h.read(1, "notes/todo.md").as_deref(), Some("milk\n"));
    assert_eq!(h.read(2, "notes/todo.md").as_deref(), Some("milk\n"));
    std::fs::remove_file(h.dir(2).join("notes/todo.md")).unwrap();
    h.step(2, &["notes/todo.md"]);
    assert!(!h.dir(0).join("notes").exists(), "the emptied folder stays");
}

#[test]
fn concurrent_edits_merge_and_true_conflicts_show_the_same_markers() {
    let mut h = Harness::new(2);
    h.write(0, "plan.md", "one\ntwo\nthree\n");
    h.step(0, &["plan.md"]);
    h.write(0, "plan.md", "one (A)\ntwo\nthree\n");
    h.write(1, "plan.md", "one\ntwo\nthree (B)\n");
    h.write(1, "other.md", "b\n");
    let scans = vec![
        Some(Scan {
            changed: [PathBuf::from("plan.md")].into(),
            rescan: BTreeSet::new(),
        }),
        Some(Scan {
            changed: [PathBuf::from("plan.md"), PathBuf::from("other.md")].into(),
            rescan: BTreeSet::new(),
        }),
    ];
    h.step_with(scans, vec![Vec::new(), Vec::new()]);
    for ws in 0..2 {
        assert_eq!(
            h.read(ws, "plan.md").as_deref(),
            Some("one (A)\ntwo\nthree (B)\n")
        );
        assert_eq!(h.read(ws, "other.md").as_deref(), Some("b\n"));
    }
    h.write(0, "plan.md", "A wins\n");
    h.write(1, "plan.md", "B wins\n");
    let both = || {
        vec![
            Some(Scan {
                changed: [PathBuf::from("plan.md")].into(),
                rescan: BTreeSet::new(),
            });
            2
        ]
    };
    h.step_with(both(), vec![Vec::new(), Vec::new()]);
    let (a, b) = (h.read(0, "plan.md").unwrap(), h.read(1, "plan.md").unwrap());
    assert_eq!(a, b);
    assert!(
        a.contains("<<<<<<<") && a.contains("A wins") && a.contains("B wins"),
        "{a}"
    );
    assert_eq!(h.repo.trunk_conflicts(), vec!["plan.md"]);
    h.write(1, "plan.md", "agreed\n");
    h.step(1, &["plan.md"]);
    assert_eq!(h.read(0, "plan.md").as_deref(), Some("agreed\n"));
    assert!(h.repo.trunk_conflicts().is_empty());
}

#[test]
fn a_file_turned_folder_against_an_edit_keeps_both_sides() {
    let mut h = Harness::new(2);
    h.write(0, "fd", "original\n");
    h.step(0, &["fd"]);
    std::fs::remove_file(h.dir(0).join("fd")).unwrap();
    h.write(0, "fd/child", "child\n");
    h.write(1, "fd", "edited\n");
    let scans = vec![
        Some(Scan {
            changed: [PathBuf::from("fd"), PathBuf::from("fd/child")].into(),
            rescan: BTreeSet::new(),
        }),
        Some(Scan {
            changed: [PathBuf::from("fd")].into(),
            rescan: BTreeSet::new(),
        }),
    ];
    let report = h.step_with(scans, vec![Vec::new(), Vec::new()]);
    assert_eq!(
        report.kept_both,
        vec![("fd".into(), "fd.jjfs-conflict".into())]
    );
    for ws in 0..2 {
        assert_eq!(
            h.read(ws, "fd/child").as_deref(),
            Some("child\n"),
            "ws {ws}"
        );
        assert_eq!(
            h.read(ws, "fd.jjfs-conflict").as_deref(),
            Some("edited\n"),
            "ws {ws}"
        );
    }
    assert_eq!(h.repo.trunk_conflicts(), vec!["fd.jjfs-conflict"]);
    std::fs::remove_file(h.dir(1).join("fd.jjfs-conflict")).unwrap();
    h.step(1, &["fd.jjfs-conflict"]);
    assert!(h.read(0, "fd.jjfs-conflict").is_none());
    assert!(h.repo.trunk_conflicts().is_empty());
}

#[test]
fn a_folder_turned_file_against_an_edit_inside_keeps_both_sides() {
    let mut h = Harness::new(2);
    h.write(0, "d/x", "x\n");
    h.write(0, "d/y", "y\n");
    h.step(0, &["d/x", "d/y"]);
    std::fs::remove_dir_all(h.dir(0).join("d")).unwrap();
    h.write(0, "d", "file\n");
    h.write(1, "d/x", "x edited\n");
    let scans = vec![
        Some(Scan {
            changed: [
                PathBuf::from("d"),
                PathBuf::from("d/x"),
                PathBuf::from("d/y"),
            ]
            .into(),
            rescan: BTreeSet::new(),
        }),
        Some(Scan {
            changed: [PathBuf::from("d/x")].into(),
            rescan: BTreeSet::new(),
        }),
    ];
    h.step_with(scans, vec![Vec::new(), Vec::new()]);
    for ws in 0..2 {
        assert_eq!(h.read(ws, "d/x").as_deref(), Some("x edited\n"), "ws {ws}");
        assert_eq!(h.read(ws, "d/y").as_deref(), Some("y\n"), "ws {ws}");
        assert_eq!(
            h.read(ws, "d.jjfs-conflict").as_deref(),
            Some("file\n"),
            "ws {ws}"
        );
    }
}

#[test]
fn a_held_file_is_not_replaced_and_merges_once_released() {
    let mut h = Harness::new(2);
    h.write(0, "log.txt", "1\n2\n3\n");
    h.step(0, &["log.txt"]);
    // Workspace 1 has it open for writing while 0 edits the first line.
    h.write(0, "log.txt", "1 (A)\n2\n3\n");
    h.write(1, "log.txt", "1\n2\n3\n4 (B, still writing)\n");
    let scans = vec![
        Some(Scan {
            changed: [PathBuf::from("log.txt")].into(),
            rescan: BTreeSet::new(),
        }),
        None,
    ];
    let report = h.step_with(scans, vec![Vec::new(), vec![PathBuf::from("log.txt")]]);
    let held = report
        .workspaces
        .iter()
        .find(|(id, _)| *id == h.workspaces[1].0)
        .and_then(|(_, r)| r.as_ref().ok())
        .map(|s| s.held.clone())
        .unwrap();
    assert_eq!(held, vec!["log.txt"]);
    assert_eq!(
        h.read(1, "log.txt").as_deref(),
        Some("1\n2\n3\n4 (B, still writing)\n")
    );
    // Released: both edits merge.
    h.step(1, &["log.txt"]);
    for ws in 0..2 {
        assert_eq!(
            h.read(ws, "log.txt").as_deref(),
            Some("1 (A)\n2\n3\n4 (B, still writing)\n")
        );
    }
}

#[test]
fn a_rename_arrives_as_a_rename() {
    let mut h = Harness::new(2);
    h.write(0, "a/note.md", "n\n");
    h.step(0, &["a/note.md"]);
    let ino = |h: &Harness, p: &str| {
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(h.dir(1).join(p)).unwrap())
    };
    let before = ino(&h, "a/note.md");
    std::fs::create_dir_all(h.dir(0).join("b")).unwrap();
    std::fs::rename(h.dir(0).join("a/note.md"), h.dir(0).join("b/moved.md")).unwrap();
    h.step(0, &["a", "a/note.md", "b", "b/moved.md"]);
    assert_eq!(ino(&h, "b/moved.md"), before, "copied instead of moved");
    assert!(!h.dir(1).join("a").exists());
}

#[test]
fn modes_travel_but_setuid_does_not() {
    let mut h = Harness::new(2);
    h.write(0, "secret.md", "s\n");
    std::fs::set_permissions(
        h.dir(0).join("secret.md"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    h.step(0, &["secret.md"]);
    let mode = |h: &Harness, ws, p: &str| {
        std::fs::metadata(h.dir(ws).join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode(&h, 1, "secret.md"), 0o600);
    std::fs::set_permissions(
        h.dir(0).join("secret.md"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    h.step(0, &["secret.md"]);
    assert_eq!(mode(&h, 1, "secret.md"), 0o640);
    h.write(0, "run.sh", "#!/bin/sh\n");
    std::fs::set_permissions(
        h.dir(0).join("run.sh"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    h.step(0, &["run.sh"]);
    assert_eq!(mode(&h, 1, "run.sh"), 0o755);
}

#[test]
fn a_symlink_replaced_by_a_folder_never_leads_outside() {
    let mut h = Harness::new(2);
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), h.dir(0).join("evil")).unwrap();
    h.write(0, "elsewhere/f", "moved\n");
    h.step(0, &["evil", "elsewhere/f"]);
    assert!(
        std::fs::symlink_metadata(h.dir(1).join("evil"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // In one step: the symlink becomes a folder holding a file moved there from elsewhere.
    std::fs::remove_file(h.dir(0).join("evil")).unwrap();
    std::fs::create_dir_all(h.dir(0).join("evil/sub")).unwrap();
    std::fs::rename(h.dir(0).join("elsewhere/f"), h.dir(0).join("evil/sub/f")).unwrap();
    h.step(
        0,
        &["evil", "evil/sub", "evil/sub/f", "elsewhere", "elsewhere/f"],
    );
    assert_eq!(h.read(1, "evil/sub/f").as_deref(), Some("moved\n"));
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "wrote outside"
    );
}

#[test]
fn a_rescan_catches_a_same_size_change_with_its_mtime_put_back() {
    let mut h = Harness::new(2);
    h.write(0, "f.txt", "aaaa\n");
    h.step(0, &["f.txt"]);
    let path = h.dir(0).join("f.txt");
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::fs::write(&path, "bbbb\n").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    h.rescan();
    assert_eq!(h.read(1, "f.txt").as_deref(), Some("bbbb\n"));
}

#[test]
fn jj_cli_commits_and_a_moved_trunk_are_followed() {
    let mut h = Harness::new(2);
    h.write(0, "a.md", "a\n");
    h.step(0, &["a.md"]);
    // What `jj commit -m` does in workspace 0: its working-copy commit gets a description
    // and a new empty working-copy commit goes on top.
    h.write(0, "b.md", "b\n");
    let repo = h.repo.head().unwrap();
    let name = workspace_name(&h.workspaces[0].0);
    let wc_id = repo.view().get_wc_commit_id(&name).unwrap().clone();
    let wc = repo.store().get_commit(&wc_id).unwrap();
    let mut tx = repo.start_transaction();
    let tree = {
        let mut builder = jj_lib::merged_tree_builder::MergedTreeBuilder::new(wc.tree());
        let path = jj_lib::repo_path::RepoPathBuf::from_internal_string("b.md").unwrap();
        let id = block_on(repo.store().write_file(&path, &mut &b"b\n"[..])).unwrap();
        builder.set_or_remove(
            path,
            jj_lib::merge::Merge::normal(jj_lib::backend::TreeValue::File {
                id,
                executable: false,
                copy_id: jj_lib::backend::CopyId::placeholder(),
            }),
        );
        block_on(builder.write_tree()).unwrap()
    };
    let described = block_on(
        tx.repo_mut()
            .rewrite_commit(&wc)
            .set_tree(tree.clone())
            .set_description("add b, by hand\n")
            .write(),
    )
    .unwrap();
    let new_wc = block_on(
        tx.repo_mut()
            .new_commit(vec![described.id().clone()], tree)
            .write(),
    )
    .unwrap();
    tx.repo_mut()
        .set_wc_commit(name, new_wc.id().clone())
        .unwrap();
    block_on(tx.repo_mut().rebase_descendants()).unwrap();
    block_on(tx.commit("jj commit")).unwrap();
    h.step(0, &["b.md"]);
    assert_eq!(h.read(1, "b.md").as_deref(), Some("b\n"));
    let repo = h.repo.head().unwrap();
    let trunk = h.repo.trunk_commit(&repo).unwrap().unwrap();
    assert_eq!(trunk.description(), "add b, by hand\n");
    // Another operation (`jj abandon main`) takes that change off trunk: every workspace
    // follows.
    let mut tx = repo.start_transaction();
    tx.repo_mut().record_abandoned_commit(&trunk);
    block_on(tx.repo_mut().rebase_descendants()).unwrap();
    block_on(tx.commit("jj abandon")).unwrap();
    h.step(1, &[]);
    assert!(h.read(0, "b.md").is_none());
    assert!(h.read(1, "b.md").is_none());
    assert_eq!(h.read(1, "a.md").as_deref(), Some("a\n"));
}

/// Three mounts writing over the same conflict, round after round: the conflict stays as
/// small as the last round's writes (it once doubled every round, and so did each step's
/// time), holding each mount's last version.
#[test]
fn conflicts_written_over_again_and_again_stay_small() {
    let mut h = Harness::new(3);
    for round in 0..12 {
        for ws in 0..3 {
            h.write(ws, "a.txt", &format!("round {round} ws {ws}\n"));
            h.write(
                ws,
                &format!("f{}.txt", round % 4),
                &format!("r{round} w{ws}\n"),
            );
        }
        let changed = [
            PathBuf::from("a.txt"),
            PathBuf::from(format!("f{}.txt", round % 4)),
        ];
        let scan = Scan {
            changed: changed.into(),
            rescan: BTreeSet::new(),
        };
        h.step_with(vec![Some(scan); 3], vec![Vec::new(); 3]);
        let repo = h.repo.head().unwrap();
        let trunk = h.repo.trunk_commit(&repo).unwrap().unwrap();
        assert!(
            trunk.tree().tree_ids().num_sides() <= 3,
            "round {round}: {} sides",
            trunk.tree().tree_ids().num_sides()
        );
        let a = h.read(0, "a.txt").unwrap();
        assert!(
            a.len() < 400,
            "round {round}: a.txt grew to {} bytes",
            a.len()
        );
        for ws in 0..3 {
            assert!(
                a.contains(&format!("round {round} ws {ws}")),
                "round {round}: {a}"
            );
        }
    }
}

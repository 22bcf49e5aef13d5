//! `jjfs init`: repos are real jj repositories with a trunk bookmark.

mod common;

use common::TestEnv;

#[test]
fn init_creates_a_jj_repo_with_a_trunk_bookmark() {
    let env = TestEnv::new();
    let out = env.ok(&["init"]);
    assert!(out.contains("Created repo default"), "{out}");
    env.ok(&["init", "work-notes"]);

    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.home().join("config.json")).unwrap()).unwrap();
    let repo = &config["repos"]["default"];
    assert_eq!(repo["sync_interval"], 2);
    assert_eq!(repo["push_interval"], 300);
    assert_eq!(repo["trunk"], "main");
    assert_eq!(
        repo["path"].as_str().unwrap(),
        env.home().join("repos/default").to_str().unwrap()
    );
    assert!(config["repos"]["work-notes"].is_object());

    // jj-lib loads it back, and trunk points at a commit.
    let root = env.home().join("repos/default");
    let settings = jjfs::repo::user_settings(&jjfs::repo::Identity::from_env()).unwrap();
    let loader = jjfs::repo::load_repo(&root, &settings).unwrap();
    let repo = pollster::block_on(loader.load_at_head()).unwrap();
    let trunk = jjfs::repo::create::trunk_commit(&repo, "main").unwrap();
    assert!(trunk.is_some(), "trunk bookmark missing");

    let status = env.json(&["status", "--json"]);
    let names: Vec<&str> = status["repos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["default", "work-notes"]);
}

#[test]
fn a_second_init_of_the_same_name_fails() {
    let env = TestEnv::new();
    env.ok(&["init", "notes"]);
    let stderr = env.fails(&["init", "notes"]);
    assert!(stderr.contains("already exists"), "{stderr}");
}

#[test]
fn bad_names_are_refused_and_create_nothing() {
    let env = TestEnv::new();
    for bad in ["..", ".", "a/b", "a b", "../escape", "x\u{e9}"] {
        let stderr = env.fails(&["init", bad]);
        assert!(
            stderr.starts_with("error: invalid repo name"),
            "{bad}: {stderr}"
        );
    }
    let repos = env.home().join("repos");
    let entries = std::fs::read_dir(&repos).map(|d| d.count()).unwrap_or(0);
    assert_eq!(entries, 0);
    assert!(!env.home().join("escape").exists());
    let config = std::fs::read_to_string(env.home().join("config.json")).unwrap_or_default();
    assert!(!config.contains("escape"));
}

//! `config`: show and change per-repo settings; changes reach the repo's actor at once.

use std::sync::Arc;

use serde_json::{Value, json};

use super::super::state::Daemon;
use super::blocking;
use crate::config::{DEFAULT_REPO, RepoConfig};
use crate::repo;
use crate::rpc::RpcError;
use crate::rpc::methods::ConfigParams;

pub const KEYS: &[&str] = &[
    "sync_interval",
    "rescan_interval",
    "push_interval",
    "trunk",
    "ignore",
];

pub async fn config(daemon: &Arc<Daemon>, params: ConfigParams) -> Result<Value, RpcError> {
    let config = daemon.config();
    let Some(key) = params.key else {
        return Ok(match params.repo {
            Some(name) => settings_of(&daemon.repo_config(&name)?),
            None => {
                json!({ "repos": config.repos.iter().map(|(n, r)| (n.clone(), settings_of(r))).collect::<serde_json::Map<_, _>>() })
            }
        });
    };
    if !KEYS.contains(&key.as_str()) {
        return Err(RpcError::invalid_params(format!(
            "unknown setting {key:?}; the settings are {}",
            KEYS.join(", ")
        )));
    }
    let name = params.repo.unwrap_or_else(|| DEFAULT_REPO.to_owned());
    let Some(value) = params.value else {
        return Ok(settings_of(&daemon.repo_config(&name)?)[&key].clone());
    };
    let _admin = daemon.admin.lock().await;
    let mut updated = daemon.repo_config(&name)?;
    apply(&mut updated, &key, &value).map_err(RpcError::invalid_params)?;
    if key == "ignore" {
        let (root, ignore) = (updated.path.clone(), updated.ignore.clone());
        blocking(move || {
            repo::create::write_excludes(&root, &ignore)
                .map_err(|e| RpcError::failed(e.to_string()))
        })
        .await?;
    }
    daemon.update_config(|config| {
        config.repos.insert(name.clone(), updated.clone());
        Ok(())
    })?;
    if let Ok(handle) = daemon.repo(&name) {
        handle.configure(&name, &updated);
    }
    Ok(Value::Null)
}

fn settings_of(repo: &RepoConfig) -> Value {
    json!({
        "sync_interval": repo.sync_interval,
        "rescan_interval": repo.rescan_interval,
        "push_interval": repo.push_interval,
        "trunk": repo.trunk,
        "ignore": repo.ignore,
        "remote": repo.remote,
    })
}

/// Sets `key` from its command-line form.
fn apply(repo: &mut RepoConfig, key: &str, value: &str) -> Result<(), String> {
    let seconds = |v: &str| -> Result<u64, String> {
        match v.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "{key} must be a whole number of seconds, at least 1 (got {v:?})"
            )),
        }
    };
    match key {
        "sync_interval" => repo.sync_interval = seconds(value)?,
        "rescan_interval" => repo.rescan_interval = seconds(value)?,
        "push_interval" => repo.push_interval = seconds(value)?,
        "trunk" => {
            let name = value.trim();
            if name.is_empty() || name.contains(char::is_whitespace) || name.starts_with('-') {
                return Err(format!("{name:?} is not a valid bookmark name"));
            }
            repo.trunk = name.to_owned();
        }
        "ignore" => repo.ignore = parse_list(value),
        _ => return Err(format!("unknown setting {key:?}")),
    }
    Ok(())
}

/// A list given as JSON (`["a","b"]`) or comma-separated (`a,b`); empty for none.
fn parse_list(value: &str) -> Vec<String> {
    if let Ok(list) = serde_json::from_str::<Vec<String>>(value) {
        return list;
    }
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_validated() {
        let mut repo = RepoConfig::new("/r".into());
        apply(&mut repo, "sync_interval", "5").unwrap();
        assert_eq!(repo.sync_interval, 5);
        assert!(apply(&mut repo, "sync_interval", "0").is_err());
        assert!(apply(&mut repo, "push_interval", "soon").is_err());
        apply(&mut repo, "ignore", "*.tmp, build/").unwrap();
        assert_eq!(repo.ignore, vec!["*.tmp", "build/"]);
        apply(&mut repo, "ignore", r#"["a","b c"]"#).unwrap();
        assert_eq!(repo.ignore, vec!["a", "b c"]);
        assert!(apply(&mut repo, "trunk", "has space").is_err());
    }
}

//! `open`, `close`, `list_mounts`: the daemon checks the user's path, the repo's actor does
//! the jj and FUSE work, and the config records the result.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use uuid::Uuid;

use super::super::state::Daemon;
use super::{blocking, rfc3339};
use crate::config::MountConfig;
use crate::engine::Event;
use crate::mount;
use crate::rpc::RpcError;
use crate::rpc::methods::{CloseParams, Health, MountInfo, OpenParams, OpenResult};

pub async fn open(daemon: &Arc<Daemon>, params: OpenParams) -> Result<OpenResult, RpcError> {
    let handle = daemon.repo(&params.repo)?;
    let _admin = daemon.admin.lock().await;
    let path = params.path.clone();
    let checker = daemon.clone();
    let created = blocking(move || check_mount_point(&checker, &path)).await?;
    let id = Uuid::new_v4();
    let workspace = daemon.paths.workspace(&params.repo, &id);
    let opened = handle
        .ask(|reply| Event::Open {
            id,
            path: params.path.clone(),
            workspace: workspace.clone(),
            reply,
        })
        .await;
    if let Err(err) = opened {
        if created {
            let _ = std::fs::remove_dir(&params.path);
        }
        return Err(RpcError::failed(err));
    }
    daemon.update_config(|config| {
        config.mounts.push(MountConfig {
            id,
            repo: params.repo.clone(),
            path: params.path.clone(),
            workspace: workspace.clone(),
            extra: Default::default(),
        });
        Ok(())
    })?;
    Ok(OpenResult {
        mount_id: id,
        mount_path: params.path,
        workspace,
    })
}

/// Checks that `path` can become a mount, and creates it if it does not exist. Returns
/// whether it was created. Nothing changes on disk when it refuses.
fn check_mount_point(daemon: &Daemon, path: &Path) -> Result<bool, RpcError> {
    let fail = |m: String| Err(RpcError::failed(m));
    if !path.is_absolute() {
        return fail(format!("{} is not an absolute path", path.display()));
    }
    mount::preflight().map_err(|e| RpcError::failed(e.to_string()))?;
    let config = daemon.config();
    if mount::is_mount_point(path) || config.mount_by_path(path).is_some() {
        return fail(format!(
            "{} is already a mount (see `jjfs list`)",
            path.display()
        ));
    }
    if let Some(outer) = config.mounts.iter().find(|m| path.starts_with(&m.path)) {
        return fail(format!(
            "{} is inside the mount {}",
            path.display(),
            outer.path.display()
        ));
    }
    if path.starts_with(daemon.paths.home()) {
        return fail(format!(
            "{} is inside jjfs's state directory",
            path.display()
        ));
    }
    let parent = path.parent().unwrap_or(Path::new("/"));
    if !parent.is_dir() {
        return fail(format!(
            "the parent directory {} does not exist",
            parent.display()
        ));
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {
            let mut entries = std::fs::read_dir(path)
                .map_err(|e| RpcError::failed(format!("{}: {e}", path.display())))?;
            if entries.next().is_some() {
                return fail(format!(
                    "{} is not empty; jjfs mounts only on a new or empty directory",
                    path.display()
                ));
            }
            Ok(false)
        }
        Ok(_) => fail(format!("{} exists and is not a directory", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir(path)
                .map_err(|e| RpcError::failed(format!("cannot create {}: {e}", path.display())))?;
            Ok(true)
        }
        Err(err) => fail(format!("{}: {err}", path.display())),
    }
}

pub async fn close(daemon: &Arc<Daemon>, params: CloseParams) -> Result<(), RpcError> {
    let _admin = daemon.admin.lock().await;
    let config = daemon.config();
    let Some(mount) = find_mount(&config.mounts, &params.path) else {
        return Err(RpcError::failed(format!(
            "{} is not a jjfs mount (see `jjfs list`)",
            params.path.display()
        )));
    };
    let id = mount.id;
    match daemon.repo(&mount.repo) {
        Ok(handle) => handle
            .ask(|reply| Event::Close { id, reply })
            .await
            .map_err(|e| RpcError::failed(format!("cannot close {}: {e}", mount.path.display())))?,
        // The repo is gone or broken: there is nothing to record; just clean up.
        Err(_) => {
            mount::clean_stale(&mount.path, &mount.workspace);
            let _ = std::fs::remove_dir_all(&mount.workspace);
        }
    }
    daemon.update_config(|config| {
        config.mounts.retain(|m| m.id != id);
        Ok(())
    })
}

fn find_mount<'a>(mounts: &'a [MountConfig], path: &Path) -> Option<&'a MountConfig> {
    let canonical: Option<PathBuf> = path.canonicalize().ok();
    mounts
        .iter()
        .find(|m| m.path == path || canonical.as_deref() == Some(m.path.as_path()))
}

/// Every mount in config, with its health as its repo's actor last published it.
pub fn list(daemon: &Daemon) -> Vec<MountInfo> {
    let config = daemon.config();
    let mut published = std::collections::HashMap::new();
    for (_, handle) in daemon.repo_handles() {
        let status = handle.status.lock().unwrap_or_else(|e| e.into_inner());
        for m in &status.mounts {
            published.insert(m.id, m.clone());
        }
    }
    config
        .mounts
        .iter()
        .map(|m| {
            let live = published.get(&m.id);
            let problem = match live {
                Some(s) => s.problem.clone(),
                None => Some(format!(
                    "repo {} is not loaded; see {}",
                    m.repo,
                    daemon.paths.log().display()
                )),
            };
            MountInfo {
                id: m.id,
                repo: m.repo.clone(),
                path: m.path.clone(),
                workspace: m.workspace.clone(),
                health: if problem.is_none() {
                    Health::Healthy
                } else {
                    Health::Unhealthy
                },
                reason: problem,
                last_sync: rfc3339(live.and_then(|s| s.last_sync)),
                io_mode: live.and_then(|s| s.io_mode).map(str::to_owned),
            }
        })
        .collect()
}

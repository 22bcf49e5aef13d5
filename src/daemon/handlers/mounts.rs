//! `open`, `close`, `only`, `list_mounts`: the daemon checks the user's path (and
//! selection), the repo's actor does the jj and FUSE work, and the config records the result.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use uuid::Uuid;

use super::super::state::Daemon;
use super::{blocking, engine_error, rfc3339};
use crate::api::{
    CloseParams, CloseResult, Error, Health, MountInfo, OnlyParams, OnlyResult, OpenParams,
    OpenResult,
};
use crate::config::{MountConfig, Owner};
use crate::engine::Event;
use crate::mount;

pub(super) async fn open(daemon: &Arc<Daemon>, params: OpenParams) -> Result<OpenResult, Error> {
    let handle = daemon.repo(&params.repo)?;
    let only = selection(params.only.as_deref())?;
    let _admin = daemon.admin.lock().await;
    let path = params.path.clone();
    let checker = daemon.clone();
    let created = blocking(move || check_mount_point(&checker, &path)).await?;
    let id = Uuid::new_v4();
    let workspace = daemon.paths.workspace(&params.repo, &id);
    let mut mount = MountConfig::new(id, &params.repo, params.path.clone(), workspace.clone());
    mount.owner = mount_owner(&params)?;
    mount.only = only;
    let opened = handle
        .ask(|reply| Event::Open {
            mount: mount.clone(),
            reply,
        })
        .await;
    if let Err(err) = opened {
        if created {
            let _ = std::fs::remove_dir(&params.path);
        }
        return Err(engine_error(err));
    }
    daemon.update_config(|config| {
        config.mounts.push(mount);
        Ok(())
    })?;
    Ok(OpenResult {
        mount_id: id,
        mount_path: params.path,
        workspace,
    })
}

/// Who owns the files the engine creates in a new mount: `--owner`, else (in a root
/// daemon) the owner of the mount path's parent; nobody in particular otherwise.
fn mount_owner(params: &OpenParams) -> Result<Option<Owner>, Error> {
    if !nix::unistd::geteuid().is_root() {
        return match &params.owner {
            Some(_) => Err(Error::user(
                "--owner needs a daemon running as root (this one writes files as itself)",
            )),
            None => Ok(None),
        };
    }
    if let Some(name) = &params.owner {
        let user = match name.parse::<u32>() {
            Ok(uid) => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)),
            Err(_) => nix::unistd::User::from_name(name),
        }
        .map_err(|e| Error::failed(format!("cannot look up user {name}: {e}")))?
        .ok_or_else(|| Error::user(format!("no such user: {name}")))?;
        return Ok(Some(Owner {
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        }));
    }
    let parent = params.path.parent().unwrap_or(std::path::Path::new("/"));
    Ok(std::fs::metadata(parent).ok().and_then(|meta| {
        use std::os::unix::fs::MetadataExt as _;
        (meta.uid() != 0).then(|| Owner {
            uid: meta.uid(),
            gid: meta.gid(),
        })
    }))
}

/// Checks that `path` can become a mount, and creates it if it does not exist. Returns
/// whether it was created. Nothing changes on disk when it refuses.
fn check_mount_point(daemon: &Daemon, path: &Path) -> Result<bool, Error> {
    let fail = |m: String| Err(Error::user(m));
    if !path.is_absolute() {
        return fail(format!("{} is not an absolute path", path.display()));
    }
    mount::preflight().map_err(|e| Error::failed(e.to_string()))?;
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
            let mut entries = std::fs::read_dir(path).map_err(|e| Error::io(path.display(), &e))?;
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
                .map_err(|e| Error::io(format_args!("cannot create {}", path.display()), &e))?;
            Ok(true)
        }
        Err(err) => Err(Error::io(path.display(), &err)),
    }
}

pub(super) async fn close(daemon: &Arc<Daemon>, params: CloseParams) -> Result<CloseResult, Error> {
    let _admin = daemon.admin.lock().await;
    let config = daemon.config();
    let Some(mount) = find_mount(&config.mounts, &params.path) else {
        return Err(Error::user(format!(
            "{} is not a jjfs mount (see `jjfs list`)",
            params.path.display()
        )));
    };
    let id = mount.id;
    let was_paused = match daemon.repo(&mount.repo) {
        Ok(handle) => handle
            .ask(|reply| Event::Close { id, reply })
            .await
            .map_err(|e| {
                engine_error(e).with_context(&format!("cannot close {}", mount.path.display()))
            })?,
        // The repo cannot be loaded: nothing can be recorded, so the workspace's files stay
        // where they are (not deleted) and only the mount goes.
        Err(_) => {
            mount::clean_stale(&mount.path, &mount.workspace);
            tracing::warn!(
                "closed {} without recording it (its repo is not loaded); its files are kept in {}",
                mount.path.display(),
                mount.workspace.display()
            );
            false
        }
    };
    daemon.update_config(|config| {
        config.mounts.retain(|m| m.id != id);
        Ok(())
    })?;
    Ok(CloseResult { was_paused })
}

/// A selection as the user gave it, checked and normalized (None: everything).
fn selection(only: Option<&[String]>) -> Result<Option<Vec<String>>, Error> {
    only.map(crate::selection::normalize)
        .transpose()
        .map_err(|e| Error::user(e.to_string()))
}

pub(super) async fn only(daemon: &Arc<Daemon>, params: OnlyParams) -> Result<OnlyResult, Error> {
    let only = selection(params.only.as_deref())?;
    let _admin = daemon.admin.lock().await;
    let config = daemon.config();
    let Some(mount) = find_mount(&config.mounts, &params.path) else {
        return Err(Error::user(format!(
            "{} is not a jjfs mount (see `jjfs list`)",
            params.path.display()
        )));
    };
    let (id, path) = (mount.id, mount.path.clone());
    let handle = daemon.repo(&mount.repo)?;
    let wanted = only.clone();
    handle
        .ask(|reply| Event::Select {
            id,
            only: wanted,
            reply,
        })
        .await
        .map_err(|e| {
            engine_error(e).with_context(&format!("cannot change what {} shows", path.display()))
        })?;
    let kept = only.clone();
    daemon.update_config(move |config| {
        if let Some(m) = config.mounts.iter_mut().find(|m| m.id == id) {
            m.only = kept;
        }
        Ok(())
    })?;
    Ok(OnlyResult { path, only })
}

pub(super) fn find_mount<'a>(mounts: &'a [MountConfig], path: &Path) -> Option<&'a MountConfig> {
    let canonical: Option<PathBuf> = path.canonicalize().ok();
    mounts
        .iter()
        .find(|m| m.path == path || canonical.as_deref() == Some(m.path.as_path()))
}

/// Every mount in config, with its health as its repo's actor last published it.
pub(super) fn list(daemon: &Daemon) -> Vec<MountInfo> {
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
                held: live.map(|s| s.held.clone()).unwrap_or_default(),
                paused: m.paused || config.repos.get(&m.repo).is_some_and(|r| r.paused),
                pending: live.map_or(0, |s| s.pending),
                only: m.only.clone(),
            }
        })
        .collect()
}

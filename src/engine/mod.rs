//! The sync engine: one actor (a thread) per repo owns the repo's jj work, its mounts and
//! their watchers. Events in (changes reported by mounts and watchers, commands from the
//! daemon), repository operations out. FUSE threads only ever send it messages, never wait.

mod actor;
pub mod conflicts;
pub mod debounce;
mod direct;
pub mod echo;
pub mod events;
mod mounts;
pub mod scan;
pub mod status;

use std::path::PathBuf;
use std::sync::Arc;

use crossbeam_channel::Sender;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::config::{MountConfig, RepoConfig};
use crate::remote::{Remotes, TrunkWatch, WorkerContext};
use crate::repo::{Identity, RepoError};
pub use status::{RepoStatus, SharedStatus};

/// The identity (device and inode) of a new direct mount's folder, recorded at `open`.
pub(crate) fn direct_identity(
    path: &std::path::Path,
) -> std::io::Result<crate::config::FolderIdentity> {
    direct::identity_of(path)
}

/// A reply the actor sends back to the daemon.
pub type Reply<T> = oneshot::Sender<Result<T, EngineError>>;

/// Why the engine could not do what the daemon asked.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The request cannot be done as asked (an unknown mount, say); nothing changed.
    #[error("{0}")]
    User(String),
    /// Something is in use (a mount processes hold); try again later.
    #[error("{0}")]
    Busy(String),
    /// A repository operation failed (or refused: an unknown path, say).
    #[error("{}{source}", .context.as_ref().map_or(String::new(), |c| format!("{c}: ")))]
    Repo {
        context: Option<String>,
        #[source]
        source: RepoError,
    },
    /// Some mounts did not sync, or another failure the message explains.
    #[error("{0}")]
    Failed(String),
    /// The repo's actor is gone.
    #[error("the repo's sync engine has stopped; see sync.log")]
    Stopped,
}

impl EngineError {
    /// A repository failure, with what was being done.
    pub fn repo(context: impl Into<String>) -> impl FnOnce(RepoError) -> Self {
        let context = Some(context.into());
        move |source| Self::Repo { context, source }
    }
}

impl From<RepoError> for EngineError {
    fn from(source: RepoError) -> Self {
        Self::Repo {
            context: None,
            source,
        }
    }
}

pub enum Event {
    /// Paths users changed through a mount.
    Mount {
        id: Uuid,
        paths: Vec<PathBuf>,
    },
    /// Paths changed in a backing workspace (by anything).
    Watch {
        id: Uuid,
        paths: Vec<PathBuf>,
    },
    /// A mount ended without jjfs asking (`umount -l` behind its back).
    Detached {
        id: Uuid,
    },
    /// A watcher lost events: rescan that workspace.
    Overflow {
        id: Uuid,
    },
    /// The repo's operation heads changed: maybe someone else (the jj CLI) wrote.
    Operations,
    /// A fetch brought the remote's trunk: integrate it into trunk and every mount.
    IntegrateRemote {
        reply: Reply<()>,
    },
    /// A new mount (its workspace does not exist yet); `adopt`: a direct mount's files
    /// become its first change instead of trunk's files being written into it. Replies how
    /// file data flows ("passthrough", "userspace", or "direct").
    Open {
        mount: MountConfig,
        adopt: bool,
        reply: Reply<&'static str>,
    },
    /// Records the mount's changes (also a paused one's) and forgets it; replies whether it
    /// was paused.
    Close {
        id: Uuid,
        reply: Reply<bool>,
    },
    /// Pauses or resumes one mount (`Some(id)`) or the whole repo (None); replies with the
    /// paths of the mounts whose syncing stopped or started.
    Pause {
        mount: Option<Uuid>,
        paused: bool,
        reply: Reply<Vec<PathBuf>>,
    },
    /// A mount's new selection (`jjfs only`; None: everything), normalized: its edits are
    /// recorded, then it shows only those folders.
    Select {
        id: Uuid,
        only: Option<Vec<String>>,
        reply: Reply<()>,
    },
    /// Sync now (a full scan) and reply when every healthy mount is up to date, with a
    /// warning per mount that files held open for writing keep behind.
    Sync {
        reply: Reply<Vec<String>>,
    },
    /// A history command (`log`, `cat`, `diff`, `restore`, `undo`).
    History {
        request: crate::history::Request,
        reply: Reply<HistoryAnswer>,
    },
    Configure(RepoConfig),
    Shutdown {
        reply: Reply<()>,
    },
}

/// What a history command answers.
#[derive(Debug)]
pub enum HistoryAnswer {
    Log(crate::api::LogResult),
    Cat(crate::api::CatResult),
    Diff(crate::api::DiffResult),
    Changed(crate::api::ChangeResult),
}

/// What every repo's engine reports to, shared by the daemon: the event stream, the
/// metrics, and (when a session bus is reachable) desktop notices of new conflicts.
#[derive(Clone, Default)]
pub struct EngineContext {
    pub events: Arc<events::EventBus>,
    pub metrics: crate::metrics::Metrics,
    pub notices: Option<crate::desktop_notice::DesktopNotices>,
}

/// The daemon's handle on one repo's actor and its remote workers.
pub struct SyncHandle {
    pub tx: Sender<Event>,
    pub status: SharedStatus,
    remotes: Remotes,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SyncHandle {
    /// Starts the actor of repo `name`, mounting `mounts` (cleaning stale mounts first).
    pub fn spawn(
        name: &str,
        config: RepoConfig,
        mounts: Vec<MountConfig>,
        identity: Identity,
        context: EngineContext,
    ) -> Result<Self, String> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let status = SharedStatus::default();
        let trunk = TrunkWatch::default();
        let remotes = Remotes::start(
            name,
            &config,
            WorkerContext {
                user_settings: crate::repo::user_settings(&identity).map_err(|e| e.to_string())?,
                actor: tx.clone(),
                status: status.clone(),
                engine: context.clone(),
            },
            trunk.clone(),
        )
        .map_err(|e| e.to_string())?;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let actor_tx = tx.clone();
        let actor_status = status.clone();
        let repo_name = name.to_owned();
        let thread = std::thread::Builder::new()
            .name(format!("sync-{name}"))
            .spawn(move || {
                match actor::Actor::new(
                    &repo_name,
                    config,
                    identity,
                    (actor_tx, rx),
                    actor_status,
                    context,
                    trunk,
                ) {
                    Ok(actor) => actor.run(mounts, move || {
                        let _ = ready_tx.send(Ok(()));
                    }),
                    Err(err) => {
                        let _ = ready_tx.send(Err(err.to_string()));
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        // The mounts are back before the daemon answers its first request.
        let ready = ready_rx
            .recv()
            .map_err(|_| format!("the sync engine of {name} stopped while starting"))
            .and_then(|ready| ready);
        if let Err(err) = ready {
            remotes.stop();
            return Err(err);
        }
        Ok(Self {
            tx,
            status,
            remotes,
            thread: Some(thread),
        })
    }

    /// Sends a command and waits (asynchronously) for its reply.
    pub async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Event) -> Result<T, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .map_err(|_| EngineError::Stopped)?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// New settings for the actor and the remote workers.
    pub fn configure(&self, name: &str, config: &RepoConfig) {
        let _ = self.tx.send(Event::Configure(config.clone()));
        if let Err(err) = self.remotes.configure(config) {
            tracing::error!(repo = %name, "cannot start a remote worker: {err}");
        }
    }

    /// Syncs with every remote now (blocking), giving up waiting at `deadline`: one
    /// warning per remote that failed or is still busy.
    pub fn sync_remotes(&self, deadline: std::time::Instant) -> Vec<String> {
        self.remotes.sync(deadline)
    }

    /// Stops remote `name`'s worker and waits for it (blocking).
    pub fn remove_remote(&self, name: &str) {
        self.remotes.remove(name);
    }

    /// Stops the remote workers (before the actor: they may be waiting on it).
    pub fn stop_remote(&self) {
        self.remotes.stop();
    }

    /// Waits for the actor's thread to end (after `Shutdown`).
    pub fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

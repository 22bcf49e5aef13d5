//! Every remote of one repo: one worker each (`worker`), started, reconfigured and stopped as
//! the repo's remotes change; `jjfs sync` over all of them at once, within one bound; and the
//! sync actor's word that trunk moved, passed on to each worker.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, Sender};

use super::worker::{RemoteCommand, RemoteHandle, RemoteSettings, WorkerContext};
use crate::config::RepoConfig;

/// How many rounds one `jjfs sync` runs at most: another round runs when a remote brought
/// something into trunk, so that the other remotes get it too.
const SYNC_ROUNDS: usize = 3;

/// How long `jjfs sync` waits for the remotes of a repo, all of them together: the deadline
/// on a silent remote (`JJFS_REMOTE_TIMEOUT`, 30 s by default) and 5 s more. A remote still
/// busy then goes on in the background, and the sync warns about it.
pub fn sync_bound() -> Duration {
    crate::repo::deadline::GitCalls::from_env().timeout() + Duration::from_secs(5)
}

/// Tells every remote worker of a repo that trunk moved. The sync actor holds one.
#[derive(Clone, Default)]
pub struct TrunkWatch {
    workers: Arc<Mutex<BTreeMap<String, Sender<RemoteCommand>>>>,
}

impl TrunkWatch {
    pub fn trunk_moved(&self) {
        for tx in lock(&self.workers).values() {
            let _ = tx.send(RemoteCommand::TrunkMoved);
        }
    }
}

/// The remote workers of one repo.
pub struct Remotes {
    repo: String,
    context: WorkerContext,
    workers: Mutex<BTreeMap<String, RemoteHandle>>,
    watch: TrunkWatch,
    generation: AtomicU64,
}

impl Remotes {
    /// Starts a worker for each remote in `config`.
    pub fn start(
        repo: &str,
        config: &RepoConfig,
        context: WorkerContext,
        watch: TrunkWatch,
    ) -> std::io::Result<Self> {
        let remotes = Self {
            repo: repo.to_owned(),
            context,
            workers: Mutex::new(BTreeMap::new()),
            watch,
            generation: AtomicU64::new(0),
        };
        remotes.configure(config)?;
        Ok(remotes)
    }

    /// Brings the workers in line with `config`: new remotes get a worker (which syncs at
    /// once), removed ones are stopped (in the background), the others get the new settings.
    pub fn configure(&self, config: &RepoConfig) -> std::io::Result<()> {
        let wanted: BTreeMap<String, RemoteSettings> = settings(&self.repo, config)
            .into_iter()
            .map(|s| (s.remote.clone(), s))
            .collect();
        let mut workers = lock(&self.workers);
        let gone: Vec<String> = workers
            .keys()
            .filter(|name| !wanted.contains_key(*name))
            .cloned()
            .collect();
        for name in gone {
            if let Some(worker) = self.take(&mut workers, &name) {
                std::thread::spawn(move || worker.stop());
            }
        }
        for (name, settings) in wanted {
            match workers.get(&name) {
                Some(worker) => {
                    let _ = worker.tx.send(RemoteCommand::Configure(settings));
                }
                None => {
                    let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
                    let worker = RemoteHandle::spawn(settings, self.context.clone(), generation)?;
                    self.context.engine.metrics.add_remote(&self.repo, &name);
                    lock(&self.watch.workers).insert(name.clone(), worker.tx.clone());
                    workers.insert(name, worker);
                }
            }
        }
        Ok(())
    }

    /// Stops remote `name`'s worker and waits for it (its git call in progress is killed),
    /// so that nothing of it runs once the remote is removed.
    pub fn remove(&self, name: &str) {
        let worker = self.take(&mut lock(&self.workers), name);
        if let Some(worker) = worker {
            worker.stop();
        }
    }

    fn take(
        &self,
        workers: &mut BTreeMap<String, RemoteHandle>,
        name: &str,
    ) -> Option<RemoteHandle> {
        lock(&self.watch.workers).remove(name);
        let worker = workers.remove(name)?;
        self.context.engine.metrics.forget_remote(&self.repo, name);
        crate::engine::status::lock(&self.context.status)
            .remotes
            .remove(name);
        Some(worker)
    }

    /// Stops every worker (before the actor: a worker may be waiting on it).
    pub fn stop(&self) {
        let workers = std::mem::take(&mut *lock(&self.workers));
        lock(&self.watch.workers).clear();
        let stopping: Vec<_> = workers
            .into_values()
            .map(|worker| std::thread::spawn(move || worker.stop()))
            .collect();
        for thread in stopping {
            let _ = thread.join();
        }
    }

    /// Fetches from, integrates and pushes to every remote at once, until `deadline`; one
    /// warning per remote that failed or is still busy then (blocking).
    pub fn sync(&self, deadline: Instant) -> Vec<String> {
        let mut remotes: Vec<(String, Sender<RemoteCommand>)> = lock(&self.workers)
            .iter()
            .map(|(name, worker)| (name.clone(), worker.tx.clone()))
            .collect();
        let mut warnings: BTreeMap<String, String> = BTreeMap::new();
        for _ in 0..SYNC_ROUNDS {
            let asked: Vec<_> = remotes
                .iter()
                .map(|(name, tx)| {
                    let (reply, rx) = crossbeam_channel::bounded(1);
                    let _ = tx.send(RemoteCommand::SyncNow(reply));
                    (name.clone(), tx.clone(), rx)
                })
                .collect();
            let mut brought = false;
            let mut fine = Vec::new();
            for (name, tx, rx) in asked {
                match rx.recv_deadline(deadline) {
                    Ok(Ok(new)) => {
                        brought |= new;
                        fine.push((name, tx));
                    }
                    Ok(Err(err)) => {
                        warnings.insert(name, err);
                    }
                    Err(RecvTimeoutError::Timeout) => {
                        warnings.insert(
                            name,
                            format!(
                                "still busy after {} s; it goes on in the background (see \
                                 `jjfs status`)",
                                sync_bound().as_secs()
                            ),
                        );
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        warnings.insert(name, "its worker has stopped".to_owned());
                    }
                }
            }
            // What one remote brought is pushed to the others in another round.
            if !brought || fine.len() < 2 {
                break;
            }
            remotes = fine;
        }
        warnings
            .into_iter()
            .map(|(name, err)| format!("remote {name} of repo {}: {err}", self.repo))
            .collect()
    }
}

/// Each remote's worker settings, from the repo's config.
fn settings(repo: &str, config: &RepoConfig) -> Vec<RemoteSettings> {
    let seconds = |s: u64| Duration::from_secs(s.max(1));
    config
        .remotes
        .iter()
        .map(|remote| RemoteSettings {
            repo: repo.to_owned(),
            root: config.path.clone(),
            remote: remote.name.clone(),
            url: remote.url.clone(),
            trunk: config.trunk.clone(),
            push_interval: seconds(config.push_interval),
            push_delay: seconds(config.push_delay),
            fetch_interval: seconds(config.fetch_interval),
            // `jjfs pause --repo`: the worker neither checks, fetches nor pushes.
            paused: config.paused,
        })
        .collect()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

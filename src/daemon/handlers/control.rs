//! `pause`, `conflicts`, `events`: control of a repo's syncing and what the daemon tells
//! about it. Pauses are written to config.json before the actor hears of them, so they
//! survive a crash; the event stream waits only on its own client.

use std::sync::Arc;
use std::time::Duration;

use super::super::state::Daemon;
use super::engine_error;
use super::mounts::find_mount;
use crate::api::{
    self, ConflictInfo, ConflictsParams, ConflictsResult, Error, EventsParams, EventsResult,
    PauseParams, PauseResult,
};
use crate::engine::Event;
use crate::engine::events::{EngineEvent, EventKind, Received};
use crate::rpc::server::ProgressSink;

/// How long an event stream stays quiet before it checks that its client is still there.
const HEARTBEAT: Duration = Duration::from_secs(5);

pub(super) async fn pause(daemon: &Arc<Daemon>, params: PauseParams) -> Result<PauseResult, Error> {
    let paused = params.paused;
    let _admin = daemon.admin.lock().await;
    let config = daemon.config();
    match (params.path, params.repo) {
        (Some(path), None) => {
            let mount = find_mount(&config.mounts, &path)
                .ok_or_else(|| {
                    Error::user(format!(
                        "{} is not a jjfs mount (see `jjfs list`)",
                        path.display()
                    ))
                })?
                .clone();
            if mount.paused == paused {
                return Ok(PauseResult {
                    repo: mount.repo,
                    changed: Vec::new(),
                    already: true,
                });
            }
            let handle = daemon.repo(&mount.repo)?;
            daemon.update_config(|config| {
                for m in config.mounts.iter_mut().filter(|m| m.id == mount.id) {
                    m.paused = paused;
                }
                Ok(())
            })?;
            let changed = handle
                .ask(|reply| Event::Pause {
                    mount: Some(mount.id),
                    paused,
                    reply,
                })
                .await
                .map_err(engine_error)?;
            Ok(PauseResult {
                repo: mount.repo,
                changed,
                already: false,
            })
        }
        (None, Some(name)) => {
            let mut repo = daemon.repo_config(&name)?;
            if repo.paused == paused {
                return Ok(PauseResult {
                    repo: name,
                    changed: Vec::new(),
                    already: true,
                });
            }
            let handle = daemon.repo(&name)?;
            repo.paused = paused;
            daemon.update_config(|config| {
                config.repos.insert(name.clone(), repo.clone());
                Ok(())
            })?;
            // The remote worker stops (or starts) fetching and pushing.
            handle.configure(&name, &repo);
            let changed = handle
                .ask(|reply| Event::Pause {
                    mount: None,
                    paused,
                    reply,
                })
                .await
                .map_err(engine_error)?;
            Ok(PauseResult {
                repo: name,
                changed,
                already: false,
            })
        }
        _ => Err(Error::user(
            "name one mount PATH, or a repo with --repo NAME",
        )),
    }
}

/// Every conflicted file of one repo or all, from what the actors published.
pub(super) fn conflicts(
    daemon: &Daemon,
    params: ConflictsParams,
) -> Result<ConflictsResult, Error> {
    if let Some(name) = &params.repo {
        daemon.repo(name)?;
    }
    let mut conflicts = Vec::new();
    for (name, handle) in daemon.repo_handles() {
        if params.repo.as_ref().is_some_and(|r| *r != name) {
            continue;
        }
        let status = crate::engine::status::lock(&handle.status);
        for (path, record) in &status.conflict_details {
            conflicts.push(ConflictInfo {
                repo: name.clone(),
                path: path.clone(),
                since: record
                    .since
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                sides: record.sides.clone(),
            });
        }
    }
    Ok(ConflictsResult { conflicts })
}

/// Streams events to the client as `event` notifications (first the retained ones after
/// `after`) until `count` events were sent or the client has gone. A client that reads
/// slowly only holds up this call; the bus tells it what it missed.
pub(super) async fn events(
    daemon: &Arc<Daemon>,
    params: EventsParams,
    sink: ProgressSink,
) -> Result<EventsResult, Error> {
    if let Some(name) = &params.repo {
        daemon.repo_config(name)?;
    }
    let bus = daemon.context.events.clone();
    let mut subscription = bus.subscribe(params.after);
    let mut last = params.after.unwrap_or_else(|| bus.last_seq());
    let mut sent = 0u64;
    if params.count == Some(0) {
        return Ok(EventsResult { last_seq: last });
    }
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    loop {
        tokio::select! {
            received = subscription.next() => {
                let Some(received) = received else { break };
                let (event, counts) = match received {
                    Received::Event(event) => {
                        last = event.seq;
                        if params.repo.as_ref().is_some_and(|r| *r != event.repo) {
                            continue;
                        }
                        (serde_json::to_value(&*event), true)
                    }
                    Received::Missed(n) => {
                        last += n;
                        (serde_json::to_value(missed(last, n, params.repo.as_deref())), false)
                    }
                };
                let event = event.map_err(Error::from)?;
                if !sink.notify(api::EVENT, event).await {
                    break;
                }
                heartbeat.reset();
                if counts {
                    sent += 1;
                    if params.count == Some(sent) {
                        break;
                    }
                }
            }
            _ = heartbeat.tick() => {
                let note = serde_json::json!({"message": "waiting for events"});
                if !sink.notify(api::PROGRESS, note).await {
                    break;
                }
            }
        }
    }
    Ok(EventsResult { last_seq: last })
}

/// The note a reader that fell behind gets: `n` events, up to `last`, went by unseen.
fn missed(last: u64, n: u64, repo: Option<&str>) -> EngineEvent {
    EngineEvent {
        seq: last,
        time: chrono::Utc::now(),
        repo: repo.unwrap_or_default().to_owned(),
        kind: EventKind::Missed,
        mount: None,
        paths: Vec::new(),
        detail: Some(format!(
            "missed {n} event(s) up to {last}: this reader fell behind"
        )),
    }
}

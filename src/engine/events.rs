//! What the daemon does, as a stream of numbered events (`jjfs events`): a change synced,
//! a conflict appeared or was resolved, a push or fetch, a remote failing, a mount going
//! unhealthy or healthy again, a pause or resume.
//!
//! Every event gets the next sequence number and is kept in a bounded buffer, so a reader
//! can ask for everything after the number it saw last (`--after SEQ`) and never miss the
//! change it waits for. Readers never slow the engine: each has a bounded queue, and one
//! that falls behind is told how many events it missed.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::broadcast;

/// How many events are kept for `--after` and how far a reader may fall behind.
pub const RETAINED: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A change is readable in every healthy, unpaused mount (`mount`: where it was made).
    Synced,
    Conflict,
    Resolved,
    Pushed,
    Fetched,
    RemoteError,
    Unhealthy,
    Healthy,
    Paused,
    Resumed,
    /// A reader fell behind; `detail` says how many events it missed.
    Missed,
}

/// One event, as `jjfs events --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct EngineEvent {
    pub seq: u64,
    #[serde(serialize_with = "rfc3339")]
    pub time: DateTime<Utc>,
    pub repo: String,
    pub kind: EventKind,
    pub mount: Option<PathBuf>,
    pub paths: Vec<String>,
    pub detail: Option<String>,
}

fn rfc3339<S: serde::Serializer>(time: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// What a subscriber receives.
#[derive(Debug, Clone)]
pub enum Received {
    Event(Arc<EngineEvent>),
    /// This many events went by while the reader was behind.
    Missed(u64),
}

struct Inner {
    next_seq: u64,
    retained: VecDeque<Arc<EngineEvent>>,
}

/// The daemon's one stream of events (all repos).
pub struct EventBus {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<EngineEvent>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        Self {
            inner: Mutex::new(Inner {
                next_seq: 1,
                retained: VecDeque::with_capacity(RETAINED),
            }),
            tx: broadcast::channel(RETAINED).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes an event; returns its sequence number. Never blocks on readers.
    pub fn emit(
        &self,
        repo: &str,
        kind: EventKind,
        mount: Option<PathBuf>,
        paths: Vec<String>,
        detail: Option<String>,
    ) -> u64 {
        let mut inner = self.lock();
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let event = Arc::new(EngineEvent {
            seq,
            time: Utc::now(),
            repo: repo.to_owned(),
            kind,
            mount,
            paths,
            detail,
        });
        if inner.retained.len() == RETAINED {
            inner.retained.pop_front();
        }
        inner.retained.push_back(event.clone());
        // No receiver is fine: nobody listens.
        let _ = self.tx.send(event);
        seq
    }

    /// The last sequence number given out (0 before the first event).
    pub fn last_seq(&self) -> u64 {
        self.lock().next_seq - 1
    }

    /// A reader of every event from now on, first replaying the retained ones after
    /// `after` (when given). Events older than the buffer are reported as missed.
    pub fn subscribe(&self, after: Option<u64>) -> Subscription {
        let inner = self.lock();
        let mut replay = VecDeque::new();
        let mut missed = 0;
        if let Some(after) = after {
            let oldest = inner.retained.front().map_or(inner.next_seq, |e| e.seq);
            if after + 1 < oldest {
                missed = oldest - after - 1;
            }
            replay.extend(inner.retained.iter().filter(|e| e.seq > after).cloned());
        }
        // Subscribed under the lock `emit` takes: nothing falls between replay and stream.
        let rx = self.tx.subscribe();
        Subscription { replay, missed, rx }
    }
}

pub struct Subscription {
    replay: VecDeque<Arc<EngineEvent>>,
    missed: u64,
    rx: broadcast::Receiver<Arc<EngineEvent>>,
}

impl Subscription {
    /// The next event (waiting for one); None when the bus is gone.
    pub async fn next(&mut self) -> Option<Received> {
        if self.missed > 0 {
            return Some(Received::Missed(std::mem::take(&mut self.missed)));
        }
        if let Some(event) = self.replay.pop_front() {
            return Some(Received::Event(event));
        }
        match self.rx.recv().await {
            Ok(event) => Some(Received::Event(event)),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(Received::Missed(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn kind_and_seq(r: Received) -> (Option<EventKind>, u64) {
        match r {
            Received::Event(e) => (Some(e.kind), e.seq),
            Received::Missed(n) => (None, n),
        }
    }

    #[test]
    fn replay_after_a_sequence_number_then_live_events() {
        let bus = EventBus::new();
        bus.emit("r", EventKind::Synced, None, vec!["a".into()], None);
        bus.emit("r", EventKind::Conflict, None, vec!["b".into()], None);
        let mut sub = bus.subscribe(Some(1));
        bus.emit("r", EventKind::Resolved, None, vec!["b".into()], None);
        run(async {
            assert_eq!(
                kind_and_seq(sub.next().await.unwrap()),
                (Some(EventKind::Conflict), 2)
            );
            assert_eq!(
                kind_and_seq(sub.next().await.unwrap()),
                (Some(EventKind::Resolved), 3)
            );
        });
        assert_eq!(bus.last_seq(), 3);
    }

    #[test]
    fn a_reader_that_falls_behind_is_told_how_many_it_missed() {
        let bus = EventBus::new();
        let mut sub = bus.subscribe(None);
        for _ in 0..RETAINED + 10 {
            bus.emit("r", EventKind::Synced, None, Vec::new(), None);
        }
        run(async {
            assert_eq!(kind_and_seq(sub.next().await.unwrap()), (None, 10));
            assert_eq!(kind_and_seq(sub.next().await.unwrap()).1, 11);
        });
        let mut late = bus.subscribe(Some(0));
        run(async {
            assert_eq!(kind_and_seq(late.next().await.unwrap()), (None, 10));
        });
    }
}

//! The daemon's side of the socket: binds `daemon.sock` (0600), reads capped request lines,
//! decodes each into an `api::Request` for the handler, and writes its response. A malformed,
//! oversized or unknown request gets an error object; the daemon keeps serving.
//!
//! Nothing a client does can make the daemon hold without bound:
//! - Each connection answers one request at a time and queues at most `QUEUED_REPLIES`
//!   replies for its client; while the queue is full it reads no further request (a client
//!   that never reads stalls only itself). `progress` notes that do not fit are dropped.
//! - At most `MAX_CONNECTIONS` connections are served. A new one beyond that closes the
//!   connection that has waited longest between calls (it gets one error line, "too many
//!   connections"), so idle clients can never lock a user out; when every connection is in
//!   the middle of a call, the new one gets that error line instead and is closed.
//! - Out of file descriptors, the accept loop backs off instead of spinning, and a spare
//!   descriptor lets each waiting client in just long enough to be told so in one line.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use serde_json::Value;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Notify, mpsc};

use super::MAX_LINE;
use super::framing::{Line, read_line};
use super::wire::{self, Response, encode};
use crate::api;

/// Connections served at once.
pub(crate) const MAX_CONNECTIONS: usize = 256;

/// Replies (and progress notes) queued for one client before the connection stops reading.
const QUEUED_REPLIES: usize = 4;

/// How long the accept loop waits before trying again when no descriptor is left.
const OUT_OF_FDS_BACKOFF: Duration = Duration::from_millis(100);

/// How long a connection being closed may take to hand its last lines to its client.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Removes a stale socket (the caller holds the daemon lock) and binds a new one, 0600.
pub(crate) fn bind(path: &Path) -> std::io::Result<UnixListener> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    // The umask makes the socket 0600 from the start, with no window where others can connect.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let listener = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    listener
}

/// Sends `progress` notifications to the client of the call that owns it, from any thread.
/// A note that does not fit in the client's queue is dropped: progress is only a courtesy.
#[derive(Clone)]
pub(crate) struct ProgressSink(Option<mpsc::Sender<Vec<u8>>>);

impl ProgressSink {
    pub(crate) fn send(&self, message: impl Into<String>) {
        if let Some(tx) = &self.0 {
            let params = serde_json::to_value(api::Progress {
                message: message.into(),
            })
            .unwrap_or(Value::Null);
            let note = wire::Request::notification(api::PROGRESS, params);
            let _ = tx.try_send(encode(&note));
        }
    }
}

impl ProgressSink {
    /// Sends notification `method` to the client, waiting while its queue is full (a
    /// streaming call such as `events`: only this call waits, never the daemon). False once
    /// the client has gone.
    pub(crate) async fn notify(&self, method: &str, params: Value) -> bool {
        let Some(tx) = &self.0 else {
            return false;
        };
        let note = wire::Request::notification(method, params);
        tx.send(encode(&note)).await.is_ok()
    }
}

/// Serves the socket until the task is dropped. `handler` answers each decoded request.
pub(crate) async fn serve<H, F>(listener: UnixListener, handler: H)
where
    H: Fn(api::Request, ProgressSink) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<api::Response, api::Error>> + Send + 'static,
{
    let connections = Arc::new(Connections::new(MAX_CONNECTIONS));
    let mut spare = spare_fd();
    let mut last_warning: Option<Instant> = None;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => match connections.admit() {
                Some(ticket) => {
                    tokio::spawn(serve_connection(stream, ticket, handler.clone()));
                }
                None => refuse(
                    &stream,
                    &api::Error::busy(format!(
                        "too many connections: jjfsd serves {MAX_CONNECTIONS} at once and every \
                         one is in a call; try again"
                    )),
                ),
            },
            Err(err) if api::is_out_of_fds(&err) => {
                if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    tracing::warn!(
                        "out of file descriptors: new clients are told so and closed; raise \
                         the limit with `ulimit -n` ({err})"
                    );
                    last_warning = Some(Instant::now());
                }
                drop(spare.take());
                if let Ok(Ok((stream, _))) =
                    tokio::time::timeout(OUT_OF_FDS_BACKOFF, listener.accept()).await
                {
                    refuse(&stream, &api::Error::out_of_fds());
                }
                spare = spare_fd();
                if spare.is_none() {
                    tokio::time::sleep(OUT_OF_FDS_BACKOFF).await;
                }
            }
            Err(err) => {
                tracing::warn!("accept on the daemon socket failed: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// A descriptor held in reserve for telling clients that there are none left.
fn spare_fd() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

/// Tells a client why it is not served (one error line, if its socket takes it) and closes.
fn refuse(stream: &UnixStream, error: &api::Error) {
    let _ = stream.try_write(&encode(&Response::err(Value::Null, error)));
}

async fn serve_connection<H, F>(stream: UnixStream, ticket: Ticket, handler: H)
where
    H: Fn(api::Request, ProgressSink) -> F,
    F: Future<Output = Result<api::Response, api::Error>>,
{
    let (read, write) = stream.into_split();
    let (tx, rx) = mpsc::channel::<Vec<u8>>(QUEUED_REPLIES);
    let mut writer = tokio::spawn(write_lines(write, rx));
    let mut reader = BufReader::new(read);
    let mut evicted = false;
    loop {
        let line = tokio::select! {
            line = read_line(&mut reader, MAX_LINE) => line,
            () = ticket.evicted() => {
                evicted = true;
                break;
            }
        };
        let reply = match line {
            Ok(Line::Complete(line)) if line.iter().all(u8::is_ascii_whitespace) => continue,
            Ok(Line::Complete(line)) => {
                ticket.set_in_call(true);
                let reply = answer(&handler, &line, ProgressSink(Some(tx.clone()))).await;
                ticket.set_in_call(false);
                reply
            }
            Ok(Line::TooLong) => {
                let error =
                    api::Error::invalid_request(format!("request longer than {MAX_LINE} bytes"));
                let _ = tx.send(encode(&Response::err(Value::Null, &error))).await;
                break;
            }
            Ok(Line::Eof) | Err(_) => break,
        };
        let Some(reply) = reply else { continue };
        // Backpressure: no further request is read until the client has room for this reply.
        let reply = match tx.try_send(encode(&reply)) {
            Ok(()) => continue,
            Err(mpsc::error::TrySendError::Closed(_)) => break,
            Err(mpsc::error::TrySendError::Full(reply)) => reply,
        };
        tokio::select! {
            sent = tx.send(reply) => if sent.is_err() { break },
            () = ticket.evicted() => {
                evicted = true;
                break;
            }
        }
    }
    drop(reader);
    if evicted {
        let error = api::Error::busy(format!(
            "too many connections: jjfsd serves {MAX_CONNECTIONS} at once and closed this idle one"
        ));
        let _ = tx.try_send(encode(&Response::err(Value::Null, &error)));
    }
    drop(tx);
    // What was queued goes out, unless the client does not read it or the slot is needed.
    let drained = tokio::select! {
        _ = &mut writer => true,
        () = ticket.evicted(), if !evicted => false,
        () = tokio::time::sleep(CLOSE_GRACE), if evicted => false,
    };
    if !drained {
        writer.abort();
    }
}

async fn write_lines(mut write: OwnedWriteHalf, mut rx: mpsc::Receiver<Vec<u8>>) {
    while let Some(line) = rx.recv().await {
        if write.write_all(&line).await.is_err() {
            break;
        }
    }
}

/// The response to one request line; None for a notification.
async fn answer<H, F>(handler: &H, line: &[u8], progress: ProgressSink) -> Option<Response>
where
    H: Fn(api::Request, ProgressSink) -> F,
    F: Future<Output = Result<api::Response, api::Error>>,
{
    let value: Value = match serde_json::from_slice(line) {
        Ok(value) => value,
        Err(err) => return Some(Response::err(Value::Null, &api::Error::parse(err))),
    };
    let id = value.get("id").cloned().unwrap_or(Value::Null);
    let request: wire::Request = match serde_json::from_value(value) {
        Ok(request) => request,
        Err(err) => {
            let error = api::Error::invalid_request(format!("invalid request: {err}"));
            return Some(Response::err(id, &error));
        }
    };
    if request.jsonrpc != "2.0" {
        let error = api::Error::invalid_request("jsonrpc must be \"2.0\"");
        return Some(Response::err(id, &error));
    }
    let id = request.id?;
    let result = match api::Request::decode(&request.method, request.params) {
        // A handler that panics answers this request with an internal error; the connection
        // and the daemon go on.
        Ok(call) => match std::panic::AssertUnwindSafe(handler(call, progress))
            .catch_unwind()
            .await
        {
            Ok(result) => result,
            Err(_) => Err(api::Error::internal(format!(
                "jjfsd failed while answering {} (details in sync.log); please report it",
                request.method
            ))),
        },
        Err(err) => Err(err),
    };
    Some(
        match result.and_then(|r| serde_json::to_value(r).map_err(api::Error::from)) {
            Ok(value) => Response::ok(id, value),
            Err(error) => Response::err(id, &error),
        },
    )
}

/// The connections being served, for the bound on their number.
struct Connections {
    max: usize,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    live: HashMap<u64, Slot>,
}

struct Slot {
    in_call: bool,
    /// When it last finished a call (or connected).
    idle_since: Instant,
    evict: Arc<Notify>,
}

impl Connections {
    fn new(max: usize) -> Self {
        Self {
            max,
            table: Mutex::new(Table::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a new connection; when all are taken, the one idle longest is told to go.
    /// None when every connection is in a call.
    fn admit(self: &Arc<Self>) -> Option<Ticket> {
        let mut table = self.lock();
        if table.live.len() >= self.max {
            let victim = table
                .live
                .iter()
                .filter(|(_, slot)| !slot.in_call)
                .min_by_key(|(_, slot)| slot.idle_since)
                .map(|(id, _)| *id)?;
            if let Some(slot) = table.live.remove(&victim) {
                slot.evict.notify_one();
            }
        }
        table.next_id += 1;
        let id = table.next_id;
        let evict = Arc::new(Notify::new());
        table.live.insert(
            id,
            Slot {
                in_call: false,
                idle_since: Instant::now(),
                evict: evict.clone(),
            },
        );
        Some(Ticket {
            id,
            connections: self.clone(),
            evict,
        })
    }
}

/// A connection's slot; given back when the connection ends.
struct Ticket {
    id: u64,
    connections: Arc<Connections>,
    evict: Arc<Notify>,
}

impl Ticket {
    fn set_in_call(&self, in_call: bool) {
        if let Some(slot) = self.connections.lock().live.get_mut(&self.id) {
            slot.in_call = in_call;
            slot.idle_since = Instant::now();
        }
    }

    /// Completes once the slot is needed for a newer connection.
    async fn evicted(&self) {
        self.evict.notified().await;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.connections.lock().live.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_makes_room_by_closing_the_longest_idle() {
        let connections = Arc::new(Connections::new(2));
        let first = connections.admit().unwrap();
        let second = connections.admit().unwrap();
        second.set_in_call(true);
        let _third = connections.admit().unwrap();
        assert_eq!(connections.lock().live.len(), 2);
        assert!(!connections.lock().live.contains_key(&first.id));
        // Everyone left is in a call, or newer: the newest idle goes next; with all in
        // calls, nobody is admitted.
        _third.set_in_call(true);
        assert!(connections.admit().is_none());
        drop(second);
        assert!(connections.admit().is_some());
    }

    #[tokio::test]
    async fn a_handler_that_panics_answers_with_an_internal_error() {
        let handler = |_: api::Request, _: ProgressSink| async {
            if true {
                panic!("a bug in a handler");
            }
            Err::<api::Response, api::Error>(api::Error::internal("unreachable"))
        };
        let line = br#"{"jsonrpc":"2.0","id":7,"method":"version"}"#;
        let reply = answer(&handler, line, ProgressSink(None)).await.unwrap();
        let reply = serde_json::to_value(&reply).unwrap();
        assert_eq!(reply["id"], 7);
        let message = reply["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("failed while answering version"),
            "{reply}"
        );
    }
}

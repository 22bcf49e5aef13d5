//! The socket side of the daemon: binds `daemon.sock` (0600), reads capped request lines,
//! answers each with a JSON-RPC response, and forwards `progress` notifications of long calls.
//! A malformed, oversized or unknown request gets an error object; the daemon keeps serving.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use super::handlers;
use super::state::Daemon;
use crate::rpc::framing::{Line, read_line};
use crate::rpc::methods::{self, Progress};
use crate::rpc::wire::{Request, Response};
use crate::rpc::{ErrorCode, MAX_LINE, RpcError};

/// Removes a stale socket (the caller holds the daemon lock) and binds a new one, 0600.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
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

/// Sends `progress` notifications to the client of the call that owns it.
#[derive(Clone)]
pub struct ProgressSink(Option<mpsc::UnboundedSender<Vec<u8>>>);

impl ProgressSink {
    pub fn none() -> Self {
        Self(None)
    }

    pub fn send(&self, message: impl Into<String>) {
        if let Some(tx) = &self.0 {
            let note = Request::notification(
                methods::PROGRESS,
                serde_json::to_value(Progress {
                    message: message.into(),
                })
                .unwrap_or(Value::Null),
            );
            let _ = tx.send(encode(&note));
        }
    }
}

pub async fn serve(daemon: Arc<Daemon>, listener: UnixListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve_connection(daemon.clone(), stream));
            }
            Err(err) => {
                tracing::warn!("accept on the daemon socket failed: {err}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_connection(daemon: Arc<Daemon>, stream: UnixStream) {
    let (read, mut write) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            if write.write_all(&line).await.is_err() {
                break;
            }
        }
    });
    let mut reader = BufReader::new(read);
    loop {
        let line = match read_line(&mut reader, MAX_LINE).await {
            Ok(Line::Complete(line)) => line,
            Ok(Line::TooLong) => {
                let error = RpcError::new(
                    ErrorCode::InvalidRequest,
                    format!("request longer than {MAX_LINE} bytes"),
                );
                let _ = tx.send(encode(&Response::err(Value::Null, error)));
                break;
            }
            Ok(Line::Eof) | Err(_) => break,
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let sink = ProgressSink(Some(tx.clone()));
        if let Some(response) = answer(&daemon, &line, sink).await
            && tx.send(encode(&response)).is_err()
        {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// The response to one request line; None for a notification.
async fn answer(daemon: &Arc<Daemon>, line: &[u8], sink: ProgressSink) -> Option<Response> {
    let value: Value = match serde_json::from_slice(line) {
        Ok(value) => value,
        Err(err) => {
            let error = RpcError::new(ErrorCode::ParseError, format!("invalid JSON: {err}"));
            return Some(Response::err(Value::Null, error));
        }
    };
    let id = value.get("id").cloned().unwrap_or(Value::Null);
    let request: Request = match serde_json::from_value(value) {
        Ok(request) => request,
        Err(err) => {
            let error = RpcError::new(ErrorCode::InvalidRequest, format!("invalid request: {err}"));
            return Some(Response::err(id, error));
        }
    };
    if request.jsonrpc != "2.0" {
        let error = RpcError::new(ErrorCode::InvalidRequest, "jsonrpc must be \"2.0\"");
        return Some(Response::err(id, error));
    }
    let id = request.id.clone()?;
    let result = handlers::dispatch(daemon, &request.method, request.params, sink).await;
    Some(match result {
        Ok(value) => Response::ok(id, value),
        Err(error) => Response::err(id, error),
    })
}

fn encode<T: serde::Serialize>(message: &T) -> Vec<u8> {
    let mut line = serde_json::to_vec(message).unwrap_or_default();
    line.push(b'\n');
    line
}

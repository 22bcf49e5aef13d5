//! The CLI's side of the protocol: a blocking connection that sends one request at a time.
//! `call` takes a method's typed parameters and returns that method's typed result.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use serde_json::Value;

use super::wire::{Request, Response};
use crate::api::{self, Call};

#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    #[error("lost the connection to jjfsd: {0}")]
    Io(#[from] std::io::Error),
    /// The daemon answered with an error.
    #[error("{0}")]
    Rpc(#[from] api::Error),
    #[error(
        "jjfs {client} cannot talk to jjfsd {daemon} (pid {pid}); restart the daemon with \
         `jjfs stop && jjfs start`"
    )]
    Version {
        client: &'static str,
        daemon: String,
        pid: u32,
    },
    #[error("jjfsd sent an invalid reply: {0}")]
    Protocol(String),
}

pub(crate) struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
}

impl Client {
    /// Connects without any handshake (see `handshake`).
    pub(crate) fn connect(socket: &Path) -> std::io::Result<Self> {
        let stream = UnixStream::connect(socket)?;
        Ok(Self {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            next_id: 1,
        })
    }

    /// The first call of every client: checks that daemon and client are the same version.
    pub(crate) fn handshake(&mut self) -> Result<api::VersionResult, ClientError> {
        let version = self.call(api::Version)?;
        if version.version != api::VERSION {
            return Err(ClientError::Version {
                client: api::VERSION,
                daemon: version.version,
                pid: version.pid,
            });
        }
        Ok(version)
    }

    pub(crate) fn call<C: Call>(&mut self, call: C) -> Result<C::Output, ClientError> {
        self.call_with_progress(call, |_| {})
    }

    /// Sends a request and waits for its result, passing `progress` notifications on.
    pub(crate) fn call_with_progress<C: Call>(
        &mut self,
        call: C,
        mut on_progress: impl FnMut(&str),
    ) -> Result<C::Output, ClientError> {
        self.call_streaming(call, |method, params| {
            if method == api::PROGRESS
                && let Ok(p) = serde_json::from_value::<api::Progress>(params)
            {
                on_progress(&p.message);
            }
            Ok(())
        })
    }

    /// Sends a request and waits for its result, passing every notification that comes
    /// first (method, params) to `on_note`; an error from it ends the call.
    pub(crate) fn call_streaming<C: Call>(
        &mut self,
        call: C,
        mut on_note: impl FnMut(&str, Value) -> Result<(), ClientError>,
    ) -> Result<C::Output, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let params =
            serde_json::to_value(&call).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let line = super::wire::encode(&Request::new(id, C::METHOD, params));
        // A daemon that refuses a connection (no file descriptors left, too many clients)
        // writes why and closes, perhaps before the request went out: its line is read
        // before a failed write is reported.
        let mut sent = self.writer.write_all(&line);
        loop {
            let mut reply = String::new();
            match self.reader.read_line(&mut reply) {
                Ok(0) => {
                    return Err(ClientError::Io(sent.err().unwrap_or_else(|| {
                        std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "jjfsd closed the connection",
                        )
                    })));
                }
                Ok(_) => {}
                Err(err) => return Err(ClientError::Io(sent.err().unwrap_or(err))),
            }
            sent = Ok(());
            let value: Value =
                serde_json::from_str(&reply).map_err(|e| ClientError::Protocol(e.to_string()))?;
            if let Some(method) = value.get("method").and_then(Value::as_str) {
                on_note(method, value.get("params").cloned().unwrap_or(Value::Null))?;
                continue;
            }
            let response: Response =
                serde_json::from_value(value).map_err(|e| ClientError::Protocol(e.to_string()))?;
            // An error without an id is about the connection (too many clients, no file
            // descriptors left): it answers whatever was asked.
            if let Some(error) = response
                .error
                .filter(|_| response.id.is_null() || response.id == id)
            {
                return Err(ClientError::Rpc(error.into()));
            }
            if response.id != id {
                return Err(ClientError::Protocol(format!(
                    "reply for another request: {}",
                    response.id
                )));
            }
            let result = response.result.unwrap_or(Value::Null);
            return serde_json::from_value(result)
                .map_err(|e| ClientError::Protocol(e.to_string()));
        }
    }
}

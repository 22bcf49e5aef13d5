//! The CLI's side of the protocol: a blocking connection that sends one request at a time.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::methods::{self, Progress, VersionResult};
use super::wire::{Request, Response, RpcError};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("lost the connection to jjfsd: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Rpc(#[from] RpcError),
    #[error("jjfsd sent an invalid reply: {0}")]
    Protocol(String),
}

pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
}

impl Client {
    /// Connects without any handshake (see `handshake`).
    pub fn connect(socket: &Path) -> std::io::Result<Self> {
        let stream = UnixStream::connect(socket)?;
        Ok(Self {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            next_id: 1,
        })
    }

    /// The first call of every client: checks that daemon and client are the same version.
    pub fn handshake(&mut self) -> Result<VersionResult, ClientError> {
        let version: VersionResult = self.call(methods::VERSION, Value::Null)?;
        if version.version != super::VERSION {
            return Err(ClientError::Protocol(format!(
                "jjfs {} cannot talk to jjfsd {} (pid {}); restart the daemon with `jjfs stop && jjfs start`",
                super::VERSION,
                version.version,
                version.pid
            )));
        }
        Ok(version)
    }

    pub fn call<T: DeserializeOwned>(
        &mut self,
        method: &str,
        params: impl Serialize,
    ) -> Result<T, ClientError> {
        self.call_with_progress(method, params, |_| {})
    }

    /// Sends a request and waits for its result, passing `progress` notifications on.
    pub fn call_with_progress<T: DeserializeOwned>(
        &mut self,
        method: &str,
        params: impl Serialize,
        mut on_progress: impl FnMut(&str),
    ) -> Result<T, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let params =
            serde_json::to_value(params).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let mut line = serde_json::to_vec(&Request::new(id, method, params))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        line.push(b'\n');
        self.writer.write_all(&line)?;
        loop {
            let mut reply = String::new();
            if self.reader.read_line(&mut reply)? == 0 {
                return Err(ClientError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "jjfsd closed the connection",
                )));
            }
            let value: Value =
                serde_json::from_str(&reply).map_err(|e| ClientError::Protocol(e.to_string()))?;
            if value.get("method").and_then(Value::as_str) == Some(methods::PROGRESS) {
                if let Ok(p) = serde_json::from_value::<Progress>(value["params"].clone()) {
                    on_progress(&p.message);
                }
                continue;
            }
            let response: Response =
                serde_json::from_value(value).map_err(|e| ClientError::Protocol(e.to_string()))?;
            if response.id != id {
                return Err(ClientError::Protocol(format!(
                    "reply for another request: {}",
                    response.id
                )));
            }
            if let Some(error) = response.error {
                return Err(ClientError::Rpc(error));
            }
            let result = response.result.unwrap_or(Value::Null);
            return serde_json::from_value(result)
                .map_err(|e| ClientError::Protocol(e.to_string()));
        }
    }
}

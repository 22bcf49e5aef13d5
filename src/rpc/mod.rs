//! The daemon protocol's transport: JSON-RPC 2.0, one JSON object per line, over
//! `$JJFS_HOME/daemon.sock`. What the methods are and carry is `api`'s; this module knows
//! the wire: `wire` has the envelope, `framing` the capped line reader, `client` the CLI's
//! blocking side and `server` the daemon's (bounded queues, bounded connections, survival
//! when out of file descriptors).

pub(crate) mod client;
pub(crate) mod framing;
pub(crate) mod server;
pub(crate) mod wire;

pub(crate) use client::{Client, ClientError};

/// The longest request line the daemon accepts (1 MiB).
pub(crate) const MAX_LINE: usize = 1 << 20;

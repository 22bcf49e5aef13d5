//! The daemon protocol: JSON-RPC 2.0, one JSON object per line, over `$JJFS_HOME/daemon.sock`.
//!
//! Only this module knows the wire format. `wire` has the envelope, `methods` the typed
//! parameters and results of each method, `client` the CLI side and `framing` the capped
//! line reader that the server uses.

pub mod client;
pub mod framing;
pub mod methods;
pub mod wire;

pub use client::Client;
pub use wire::{ErrorCode, RpcError};

/// Version of this build; client and daemon compare it on connect.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The longest request line the daemon accepts (1 MiB).
pub const MAX_LINE: usize = 1 << 20;

//! jjfs
pub mod atomic_file;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod mount;
pub mod paths;
pub mod repo;
pub mod rpc;
pub mod stamp;
pub mod sync;
pub mod watch;

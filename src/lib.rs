//! jjfs
pub mod atomic_file;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod paths;
pub mod repo;
pub mod rpc;

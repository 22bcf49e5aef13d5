//! Backing a repo up to its git remote, and bringing in what other machines pushed there.
//!
//! One worker thread per repo does the network work, so local sync and the mounts never wait
//! for it: fetch trunk, have the repo's sync actor integrate what arrived (the same rebase and
//! check-out path as a local change), push trunk. It runs every `push_interval`, on
//! `jjfs sync`, and after a failure again with exponential backoff (see `schedule`).

pub mod schedule;
mod worker;

pub use worker::{RemoteCommand, RemoteHandle, RemoteSettings, sync_now};

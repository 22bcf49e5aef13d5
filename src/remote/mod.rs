//! Backing a repo up to its git remotes, and bringing in what other machines pushed there.
//!
//! Each remote of a repo has a worker thread of its own (`worker`), with its own schedule,
//! backoff and last error, so a dead or stalled remote never delays another, nor local sync
//! and the mounts: it checks the remote for a moved trunk, fetches and has the repo's sync
//! actor integrate what arrived (the same path as a local change), and pushes trunk soon after
//! it moved here. `Remotes` (`set`) keeps the workers of one repo in line with its config and
//! runs `jjfs sync` over all of them within one bound (`sync_bound`).

pub mod schedule;
mod set;
mod worker;

pub use set::{Remotes, TrunkWatch, sync_bound};
pub use worker::WorkerContext;

//! jjfs: any number of directories as live, eventually-consistent views of one Jujutsu (jj)
//! repository.
//!
//! ```text
//!  jjfs (cli/) ──api:: types, JSON-RPC over $JJFS_HOME/daemon.sock (rpc/)──▶ jjfsd (daemon/)
//!                                                               │ one actor per repo (engine/)
//!      user's dirs ◀── FUSE passthrough (mount/) ──▶ backing jj workspaces ◀── watchers (watch.rs)
//!                          │ change reports                 │
//!                          └──────────▶ repo actor ─────────┴──▶ jj-lib (repo/): snapshot,
//!                                          ▲                     commit on trunk, rebase,
//!                                          └── writes other mounts' changes back through
//!                                              each mount, as a client (files/, mount/engine.rs)
//! ```
//!
//! ARCHITECTURE.md at the top of the repository has the longer version: who owns which
//! state, how a write travels, which thread does what.
//!
//! - `cli`: one file per subcommand; parse, call the daemon, print.
//! - `api`: the protocol as types: one `Request`/`Response` variant per method, typed
//!   errors with their JSON-RPC codes; shared by the CLI and the daemon.
//! - `rpc`: the wire (JSON-RPC 2.0, one object per line): envelope, framing, the CLI's
//!   client and the daemon's bounded server.
//! - `daemon`: lifecycle (lock, socket, signals, watchdog) and one handler per method.
//! - `engine`: per-repo actor: debounce, plan, apply results, health; mounts' runtime state;
//!   the event bus.
//! - `files`: the seam through which the engine reads and writes a workspace's files
//!   (through its mount, or a plain directory), never leaving the workspace.
//! - `remote`: per-repo worker that fetches, has the actor integrate, and pushes, with backoff.
//! - `repo`: everything jj-lib: create/open repos, workspaces, snapshots, the integration
//!   transaction, check-outs.
//! - `mount`: the FUSE passthrough filesystem, its change reports, and the guarded updates
//!   the sync engine makes through it.
//! - `watch`: notify watchers on backing workspaces.
//! - `history`: the history commands' points in time, paths and diffs (what they read and
//!   write in the repo is in `repo/history.rs`, run on the sync actor).
//! - `service`: the daemon as a systemd user unit or launchd agent (`jjfs install`).
//! - `metrics`: the Prometheus series the engine updates and the `/metrics` endpoint.
//! - `desktop_notice`: desktop notices of new conflicts on the mount owner's session bus.
//! - `doctor`: the machine checks of `jjfs doctor`.
//! - `exclude`: keeping a mount out of the git or jj project around it (`info/exclude`).
//! - `selection`: the folders a selective mount shows (`--only`, `jjfs only`).
//! - `config`, `paths`, `atomic_file`, `stamp`: state on disk.

pub(crate) mod api;
pub(crate) mod atomic_file;
pub mod cli;
pub(crate) mod config;
pub mod daemon;
pub mod desktop_notice;
pub(crate) mod doctor;
pub(crate) mod engine;
pub mod exclude;
pub(crate) mod files;
pub(crate) mod history;
pub(crate) mod metrics;
pub(crate) mod modes;
pub(crate) mod mount;
pub(crate) mod paths;
pub(crate) mod remote;
pub mod repo;
pub(crate) mod rpc;
pub mod selection;
pub(crate) mod service;
pub(crate) mod stamp;
pub(crate) mod watch;

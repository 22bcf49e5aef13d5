//! jjfsd: the daemon's lifecycle. Takes the lock, sets up logging, loads the config, serves
//! the socket (`rpc::server`, each request answered by `handlers`) and shuts down cleanly on
//! SIGTERM, SIGINT or the `shutdown` method.

mod handlers;
pub(crate) mod launch;
pub mod lock;
mod logging;
mod state;
mod watchdog;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

use crate::config::Config;
use crate::paths::Paths;
use crate::{repo, rpc};
use lock::DaemonLock;
use state::{Daemon, RunMode};

/// The jjfs daemon: serves mounts and syncs them through jj.
#[derive(Debug, Parser)]
#[command(name = "jjfsd", version, about)]
pub(crate) struct Args {
    /// Stay attached to the terminal (what the systemd unit and launchd agent run); without
    /// it, jjfsd starts itself in the background and returns once it is ready.
    #[arg(long)]
    pub(crate) foreground: bool,
    /// Internal: watch daemon PID and abort its mounts if it dies (see `watchdog`).
    #[arg(long, value_name = "PID", hide = true)]
    pub(crate) watchdog: Option<u32>,
}

/// Entry point of the `jjfsd` binary.
pub fn main() -> ExitCode {
    let args = Args::parse();
    let result = Paths::from_env()
        .context("cannot find the state directory")
        .and_then(|paths| {
            if let Some(pid) = args.watchdog {
                watchdog::run(pid, &paths);
                Ok(())
            } else if args.foreground {
                run(paths)
            } else {
                let pid = launch::start_detached(&launch::daemon_binary(), &paths)?;
                println!("jjfsd started (pid {pid})");
                Ok(())
            }
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            tracing::error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Panics (each is caught where it happens: a step, a remote cycle, a request) are written
/// to sync.log too: a detached daemon's stderr goes nowhere.
fn log_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        tracing::error!(
            "panic in thread {}: {info}",
            thread.name().unwrap_or("unnamed")
        );
        previous(info);
    }));
}

/// Runs a daemon for `paths` in this process until it is told to stop.
pub(crate) fn run(paths: Paths) -> anyhow::Result<()> {
    tune_malloc();
    paths
        .ensure_home()
        .with_context(|| format!("cannot create {}", paths.home().display()))?;
    // A killed daemon may be stuck on its own mounts until they are aborted.
    let lock = DaemonLock::acquire(&paths.lock(), || {
        crate::mount::abort_stale_mounts(&paths.repos())
    })?;
    logging::init(&paths.log())
        .with_context(|| format!("cannot open {}", paths.log().display()))?;
    log_panics();
    let config = Config::load(&paths.config())?;
    if let Some(pid) = lock.unclean_predecessor {
        tracing::warn!(
            "recovering: the previous jjfsd (pid {pid}) did not stop cleanly; its mounts were \
             cleaned up, every mount in config is mounted again and rescanned, and edits made \
             meanwhile are synced"
        );
    }
    let watchdog = watchdog::Watchdog::start(&paths)
        .map_err(|e| tracing::warn!("cannot start the watchdog: {e}"))
        .ok();
    let identity = repo::Identity::from_env();
    let settings = repo::user_settings(&identity)?;
    raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("jjfsd-rpc")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // Desktop notices run on the runtime: a task batches them per repo and owner.
    let notices = {
        let _entered = runtime.enter();
        crate::desktop_notice::DesktopNotices::spawn(crate::desktop_notice::NoticeSettings {
            enabled: config.notify,
            ..Default::default()
        })
    };
    let context = crate::engine::EngineContext {
        notices: Some(notices),
        ..Default::default()
    };
    let daemon = Arc::new(Daemon::new(
        paths.clone(),
        identity,
        settings,
        RunMode::detect(),
        config,
        context,
    ));
    daemon.start_repos();

    runtime.block_on(async {
        if let Err(err) = daemon.apply_global_settings().await {
            tracing::warn!("metrics are not served: {err}");
        }
        let listener = rpc::server::bind(&paths.socket())
            .with_context(|| format!("cannot listen on {}", paths.socket().display()))?;
        tracing::info!(pid = std::process::id(), home = %paths.home().display(), "jjfsd {} ready", crate::api::VERSION);
        if std::env::var_os(launch::DETACHED_ENV).is_some() {
            silence_stderr();
        }
        let handler = {
            let daemon = daemon.clone();
            move |request, progress| {
                let daemon = daemon.clone();
                async move { handlers::dispatch(&daemon, request, progress).await }
            }
        };
        let serving = tokio::spawn(rpc::server::serve(listener, handler));
        // Under systemd (Type=notify): `systemctl start` returns now, with the mounts back.
        notify_service(&[sd_notify::NotifyState::Ready]);
        wait_for_shutdown(&daemon).await;
        notify_service(&[sd_notify::NotifyState::Stopping]);
        serving.abort();
        daemon.metrics_endpoint.lock().await.stop().await;
        daemon.stop_repos().await;
        anyhow::Ok(())
    })?;
    let _ = std::fs::remove_file(paths.socket());
    if let Some(watchdog) = watchdog {
        watchdog.goodbye();
    }
    tracing::info!("jjfsd stopped");
    drop(lock);
    Ok(())
}

/// Tells systemd about the daemon's state when it runs as a `Type=notify` service.
fn notify_service(state: &[sd_notify::NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_some()
        && let Err(err) = sd_notify::notify(state)
    {
        tracing::warn!("cannot notify systemd: {err}");
    }
}

async fn wait_for_shutdown(daemon: &Daemon) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    let mut requested = daemon.shutdown_requested();
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        _ = requested.wait_for(|stop| *stop) => tracing::info!("shutdown requested"),
    }
}

/// A detached daemon's stderr is a pipe to the `jjfs` that started it, which has gone:
/// from here on it logs to sync.log only.
fn silence_stderr() {
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stderr(&null);
    }
}

/// Mounts keep a handle per directory the kernel knows and a bounded cache of file handles
/// (a quarter of this limit, at most 1,024, see `mount::inodes`): allow as many as the system does.
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// Each FUSE session thread keeps a 16 MiB request buffer of which it touches a few pages.
/// glibc's default raises its mmap threshold after a large block is freed, after which such
/// buffers come from the heap and are zeroed page by page: resident, per thread, per mount.
/// A fixed threshold keeps them in lazily-zeroed mappings, and fewer arenas keep the heap
/// from fragmenting across the daemon's many threads.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

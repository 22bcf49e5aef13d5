use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;

use super::output;
use crate::api::{RemoteState, StatusParams, StatusResult};

/// Show the daemon, each repo (each remote and its state, conflicts, skipped files, paused)
/// and each mount.
#[derive(Debug, Parser)]
pub(crate) struct Args {
    /// Print JSON (the shape is documented in README).
    #[arg(long)]
    json: bool,
    /// Also show recent sync activity.
    #[arg(long, short)]
    verbose: bool,
    /// A live view, redrawn every second until Ctrl-C (plain repeated output when stdout is
    /// not a terminal).
    #[arg(long, short)]
    watch: bool,
}

/// How often `--watch` redraws.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let mut client = super::connect()?;
    let params = || StatusParams {
        verbose: args.verbose,
    };
    if !args.watch {
        let status = client.call(params())?;
        if args.json {
            return output::print_json(&status);
        }
        print!("{}", render(&status, args.verbose));
        return Ok(());
    }
    use std::io::{IsTerminal as _, Write as _};
    let terminal = std::io::stdout().is_terminal();
    let interrupted = on_interrupt();
    let mut first = true;
    while !interrupted.load(Ordering::Relaxed) {
        let status = client.call(params())?;
        let block = if args.json {
            serde_json::to_string(&status)? + "\n"
        } else {
            render(&status, args.verbose)
        };
        let mut out = std::io::stdout().lock();
        let written = if terminal {
            // Clear the screen and go home, then the whole view.
            write!(out, "\x1b[2J\x1b[H{block}")
        } else if first || args.json {
            write!(out, "{block}")
        } else {
            write!(out, "\n{block}")
        };
        if written.and_then(|()| out.flush()).is_err() {
            return Ok(());
        }
        first = false;
        let next = Instant::now() + WATCH_INTERVAL;
        while Instant::now() < next && !interrupted.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn interrupted(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// A flag set by Ctrl-C (SIGINT) or SIGTERM, so `--watch` ends cleanly with exit status 0.
fn on_interrupt() -> &'static AtomicBool {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(interrupted),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // Safety: the handler only stores to an atomic.
        unsafe {
            let _ = sigaction(signal, &action);
        }
    }
    &INTERRUPTED
}

/// The text view of `status`.
fn render(status: &StatusResult, verbose: bool) -> String {
    let mut out = String::new();
    let _ = write_status(&mut out, status, verbose);
    out
}

fn write_status(out: &mut String, status: &StatusResult, verbose: bool) -> std::fmt::Result {
    let d = &status.daemon;
    writeln!(
        out,
        "jjfsd {} running (pid {}, {})",
        d.version, d.pid, d.mode
    )?;
    if status.repos.is_empty() {
        writeln!(out, "No repos. Create one with `jjfs init [NAME]`.")?;
    }
    for repo in &status.repos {
        writeln!(out)?;
        let paused = if repo.paused {
            ", PAUSED: `jjfs resume --repo` syncs it again"
        } else {
            ""
        };
        writeln!(out, "repo {} (trunk {}{paused})", repo.name, repo.trunk)?;
        writeln!(
            out,
            "  last sync: {}",
            output::when(repo.last_sync.as_deref())
        )?;
        if let Some(commits) = repo.history_commits {
            let size = repo
                .history_bytes
                .map(|b| format!(", {} on disk", output::size(b)))
                .unwrap_or_default();
            writeln!(out, "  history: {commits} changes{size}")?;
        }
        if repo.remotes.is_empty() {
            writeln!(
                out,
                "  remote: none (add one with `jjfs remote add URL --repo {}`)",
                repo.name
            )?;
        }
        for remote in &repo.remotes {
            match remote.state {
                RemoteState::Delayed => {
                    writeln!(
                        out,
                        "  remote {}: {}: remote sync delayed",
                        remote.name, remote.url
                    )?;
                    if let Some(err) = &remote.last_error {
                        writeln!(out, "    last error: {err}")?;
                    }
                    writeln!(
                        out,
                        "    next retry: {}",
                        output::when(remote.next_retry.as_deref())
                    )?;
                }
                _ => writeln!(
                    out,
                    "  remote {}: {} (last push {}, last fetch {})",
                    remote.name,
                    remote.url,
                    output::when(remote.last_push.as_deref()),
                    output::when(remote.last_fetch.as_deref())
                )?,
            }
        }
        if !repo.conflicts.is_empty() {
            writeln!(
                out,
                "  conflicts (edit the markers away in any mount to resolve):"
            )?;
            for path in &repo.conflicts {
                writeln!(out, "    {}", super::history::quoted(path))?;
            }
        }
        if !repo.skipped.is_empty() {
            writeln!(out, "  not synced:")?;
            for skipped in &repo.skipped {
                let place = skipped
                    .mount
                    .as_ref()
                    .map(|m| format!(" (in {})", m.display()))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "    {}: {}{place}",
                    super::history::quoted(&skipped.path),
                    skipped.reason
                )?;
            }
        }
        for mount in status.mounts.iter().filter(|m| m.repo == repo.name) {
            writeln!(out, "  mount {}", super::list::mount_line(mount))?;
        }
    }
    if verbose && !status.recent.is_empty() {
        writeln!(out)?;
        writeln!(out, "recent activity:")?;
        for line in &status.recent {
            writeln!(out, "  {line}")?;
        }
    }
    Ok(())
}

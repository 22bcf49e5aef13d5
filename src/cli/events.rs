//! `jjfs events`: what the daemon does, one line per event as it happens.

use std::io::Write as _;

use clap::Parser;

use crate::api::{self, EventRecord, EventsParams};
use crate::rpc::ClientError;

/// Print one line per event as it happens (synced, conflict, resolved, pushed, fetched,
/// remote_error, unhealthy, healthy, paused, resumed), until interrupted or `--count` events.
///
/// `jjfs events --json --after $LAST --count 1` waits for the next event after `$LAST`
/// without a race.
#[derive(Debug, Parser)]
pub(crate) struct Args {
    /// Only this repo's events.
    #[arg(long, value_name = "NAME")]
    repo: Option<String>,
    /// One JSON object per line: {"seq", "time", "repo", "kind", "mount", "paths", "detail"}.
    #[arg(long)]
    json: bool,
    /// Exit after this many events.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// First replay the retained events numbered after SEQ.
    #[arg(long, value_name = "SEQ")]
    after: Option<u64>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let mut client = super::connect()?;
    let mut stdout_gone = false;
    let result = client.call_streaming(
        EventsParams {
            repo: args.repo,
            after: args.after,
            count: args.count,
        },
        |method, params| {
            if method != api::EVENT {
                return Ok(());
            }
            let event: EventRecord =
                serde_json::from_value(params).map_err(|e| ClientError::Protocol(e.to_string()))?;
            let line = if args.json {
                // In the contract's field order.
                serde_json::to_string(&event).map_err(|e| ClientError::Protocol(e.to_string()))?
            } else {
                text(&event)
            };
            let mut out = std::io::stdout().lock();
            if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                // The reader went (`| head -1`): done.
                stdout_gone = true;
                return Err(ClientError::Protocol("stdout closed".into()));
            }
            Ok(())
        },
    );
    match result {
        Ok(_) => Ok(()),
        Err(_) if stdout_gone => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// `TIME REPO KIND [MOUNT][: PATHS][ (DETAIL)]`.
fn text(event: &EventRecord) -> String {
    let mut line = format!("{} {} {}", event.time, event.repo, event.kind);
    if let Some(mount) = &event.mount {
        line.push(' ');
        line.push_str(&mount.display().to_string());
    }
    if !event.paths.is_empty() {
        let paths: Vec<String> = event
            .paths
            .iter()
            .map(|p| super::history::quoted(p))
            .collect();
        line.push_str(": ");
        line.push_str(&paths.join(", "));
    }
    if let Some(detail) = &event.detail {
        line.push_str(&format!(" ({detail})"));
    }
    line
}

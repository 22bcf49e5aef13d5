//! `jjfs doctor [--json]`: the machine checks of `crate::doctor`, then the daemon's and each
//! mount's health when a daemon runs (doctor never starts one).

use anyhow::bail;
use clap::Parser;

use super::output;
use crate::api::{Health, MountInfo, StatusParams, StatusResult};
use crate::doctor::{self, Check, Report};
use crate::paths::Paths;

/// Check what jjfs needs (FUSE, git, inotify limits, the state directory, the service, each
/// mount) and say how to fix each miss, one line per check.
///
/// Exits 0 when nothing required is missing; `warn` lines are optional extras.
#[derive(Debug, Parser)]
pub struct Args {
    /// Print `{"ok", "checks": [{"name", "ok", "required", "detail", "fix"}]}`.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let paths = super::connect::paths()?;
    let mut checks = doctor::system_checks(&paths);
    checks.extend(daemon_checks(&paths));
    let report = Report::new(checks);
    if args.json {
        output::print_json(&report)?;
    } else {
        for check in &report.checks {
            println!("{}", check.line());
        }
    }
    let failed = report.checks.iter().filter(|c| c.required && !c.ok).count();
    if failed > 0 {
        bail!("{failed} required check(s) failed; each FAIL line says how to fix it");
    }
    Ok(())
}

/// The running daemon and its mounts; nothing to check when none runs.
// TODO(lead): move to the typed protocol's status call when it lands.
fn daemon_checks(paths: &Paths) -> Vec<Check> {
    const NAME: &str = "daemon";
    let mut client = match super::connect::try_connect(paths) {
        Ok(Some(client)) => client,
        Ok(None) => {
            return vec![Check::pass(
                NAME,
                false,
                "not running; its mounts are checked when it runs (`jjfs start`)",
            )];
        }
        Err(err) => {
            return vec![Check::fail(
                NAME,
                true,
                output::one_line(&err),
                "`jjfs stop`, then `jjfs start` to run this version",
            )];
        }
    };
    let status: StatusResult = match client.call(StatusParams::default()) {
        Ok(status) => status,
        Err(err) => {
            return vec![Check::fail(
                NAME,
                true,
                format!("does not answer `status`: {err}"),
                format!(
                    "see {}; `jjfs stop`, then `jjfs start`",
                    paths.log().display()
                ),
            )];
        }
    };
    let d = &status.daemon;
    let mut checks = vec![Check::pass(
        NAME,
        true,
        format!("jjfsd {} running (pid {}, {})", d.version, d.pid, d.mode),
    )];
    checks.extend(status.mounts.iter().map(|m| mount_check(m, paths)));
    checks
}

fn mount_check(mount: &MountInfo, paths: &Paths) -> Check {
    const NAME: &str = "mount";
    let what = format!("{} (repo {})", mount.path.display(), mount.repo);
    match mount.health {
        Health::Healthy => {
            let io = mount
                .io_mode
                .as_deref()
                .map(|m| format!(", {m} I/O"))
                .unwrap_or_default();
            Check::pass(NAME, true, format!("{what}: healthy{io}"))
        }
        Health::Unhealthy => Check::fail(
            NAME,
            true,
            format!(
                "{what}: unhealthy: {}",
                mount.reason.as_deref().unwrap_or("no reason given")
            ),
            format!(
                "see `jjfs status --verbose` and {} for the cause",
                paths.log().display()
            ),
        ),
    }
}

use anyhow::bail;
use clap::Parser;

/// Install the daemon as a user service (systemd on Linux, launchd on macOS), started at login.
#[derive(Debug, Parser)]
pub struct InstallArgs {
    /// Print the unit file instead of installing it.
    #[arg(long)]
    dry_run: bool,
}

/// Remove the user service installed by `jjfs install`.
#[derive(Debug, Parser)]
pub struct UninstallArgs {}

pub fn run_install(_args: InstallArgs) -> anyhow::Result<()> {
    bail!("install is not implemented yet")
}

pub fn run_uninstall(_args: UninstallArgs) -> anyhow::Result<()> {
    bail!("uninstall is not implemented yet")
}

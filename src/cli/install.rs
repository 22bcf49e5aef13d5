use anyhow::{Context, bail};
use clap::Parser;

use crate::daemon::launch;
use crate::service::{Manager, Spec};

/// Install the daemon as a user service (systemd on Linux, launchd on macOS): started now
/// and at every login, restarted if it crashes.
#[derive(Debug, Parser)]
pub(crate) struct InstallArgs {
    /// Print the service file instead of installing it.
    #[arg(long)]
    dry_run: bool,
    /// The service manager to write for (default: this system's).
    #[arg(long, value_enum)]
    manager: Option<Manager>,
}

/// Stop the service and remove what `jjfs install` wrote; `jjfs start` then runs the daemon
/// directly.
#[derive(Debug, Parser)]
pub(crate) struct UninstallArgs {}

pub(crate) fn run_install(args: InstallArgs) -> anyhow::Result<()> {
    let paths = super::connect::paths()?;
    let manager = args.manager.unwrap_or_else(Manager::native);
    let spec = Spec::new(&launch::daemon_binary(), &paths);
    let text = manager.render(&spec);
    if args.dry_run {
        print!("{text}");
        return Ok(());
    }
    if manager != Manager::native() {
        bail!("{manager} is not this system's service manager; use --dry-run to see its file");
    }
    manager.check_available().map_err(|err| {
        anyhow::anyhow!(
            "{err}: nothing installed; `jjfs start` and autostart run the daemon directly \
             (`jjfs install --dry-run` shows the service file)"
        )
    })?;
    let file = manager.file()?;
    // A daemon started directly holds the lock the service's daemon needs.
    if super::connect::try_connect(&paths)?.is_some() {
        super::stop::stop_direct(&paths)?;
        println!("Stopped the running daemon; the service runs it from now on");
    }
    let parent = file.parent().context("the service file has no directory")?;
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    crate::atomic_file::write(&file, text.as_bytes())
        .with_context(|| format!("cannot write {}", file.display()))?;
    if let Err(err) = manager.enable(&file) {
        let _ = std::fs::remove_file(&file);
        manager.forget();
        return Err(err.into());
    }
    let pid = super::connect::wait_ready(&paths)?;
    println!(
        "Installed {} and started jjfsd (pid {pid}); it starts at every login",
        file.display()
    );
    Ok(())
}

pub(crate) fn run_uninstall(_args: UninstallArgs) -> anyhow::Result<()> {
    let manager = Manager::native();
    let file = manager.file()?;
    if !file.exists() {
        println!(
            "jjfs is not installed as a service ({} does not exist)",
            file.display()
        );
        return Ok(());
    }
    match manager.check_available() {
        Ok(()) => manager.disable(&file)?,
        Err(err) => println!("{err}: removing the file only"),
    }
    std::fs::remove_file(&file).with_context(|| format!("cannot remove {}", file.display()))?;
    manager.forget();
    println!(
        "Removed {}; the daemon is stopped, `jjfs start` runs it directly",
        file.display()
    );
    Ok(())
}

use clap::Parser;

/// Start the daemon (through the installed service when there is one).
#[derive(Debug, Parser)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> anyhow::Result<()> {
    let paths = super::connect::paths()?;
    if let Some(mut client) = super::connect::try_connect(&paths)? {
        let version = client.handshake()?;
        println!("jjfsd is already running (pid {})", version.pid);
        return Ok(());
    }
    let pid = super::connect::start_daemon(&paths)?;
    match crate::service::installed(&paths) {
        Some(manager) => println!("jjfsd started by the {manager} service (pid {pid})"),
        None => println!("jjfsd started (pid {pid})"),
    }
    Ok(())
}

//! jjfs: the command-line client. One file per subcommand; each parses its arguments, calls
//! the daemon through `rpc::Client` and prints the result. Errors print as one
//! `error: ...` line and a non-zero exit.

mod cat;
mod close;
mod config;
mod conflicts;
mod connect;
mod diff;
mod doctor;
mod events;
mod history;
mod init;
mod install;
mod list;
mod log;
mod only;
mod open;
mod output;
mod pause;
mod remote;
mod restore;
mod start;
mod status;
mod stop;
mod sync;
mod undo;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

pub(crate) use connect::connect;

/// Live, versioned views of one jj repository in many directories.
///
/// Write a note in one mount and it appears in every other mount of the same repo a moment
/// later; every change is a jj commit, and the repo can be backed up to a git remote.
#[derive(Debug, Parser)]
#[command(name = "jjfs", version, about, long_about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Init(init::Args),
    Remote(remote::Args),
    Open(open::Args),
    Only(only::Args),
    Close(close::Args),
    List(list::Args),
    Status(status::Args),
    Sync(sync::Args),
    Pause(pause::PauseArgs),
    Resume(pause::ResumeArgs),
    Conflicts(conflicts::Args),
    Events(events::Args),
    Start(start::Args),
    Stop(stop::Args),
    Config(config::Args),
    Log(log::Args),
    Cat(cat::Args),
    Diff(diff::Args),
    Restore(restore::Args),
    Undo(undo::Args),
    Doctor(doctor::Args),
    Install(install::InstallArgs),
    Uninstall(install::UninstallArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        shell: clap_complete::Shell,
    },
}

/// Entry point of the `jjfs` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Init(args) => init::run(args),
        Command::Remote(args) => remote::run(args),
        Command::Open(args) => open::run(args),
        Command::Only(args) => only::run(args),
        Command::Close(args) => close::run(args),
        Command::List(args) => list::run(args),
        Command::Status(args) => status::run(args),
        Command::Sync(args) => sync::run(args),
        Command::Pause(args) => pause::run_pause(args),
        Command::Resume(args) => pause::run_resume(args),
        Command::Conflicts(args) => conflicts::run(args),
        Command::Events(args) => events::run(args),
        Command::Start(args) => start::run(args),
        Command::Stop(args) => stop::run(args),
        Command::Config(args) => config::run(args),
        Command::Log(args) => log::run(args),
        Command::Cat(args) => cat::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Restore(args) => restore::run(args),
        Command::Undo(args) => undo::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Install(args) => install::run_install(args),
        Command::Uninstall(args) => install::run_uninstall(args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "jjfs", &mut std::io::stdout());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", output::one_line(&err));
            ExitCode::FAILURE
        }
    }
}

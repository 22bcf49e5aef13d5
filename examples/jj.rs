//! The jj CLI at the version of the jj-lib that jjfs embeds. Tests run it inside backing
//! workspaces, as a user would (`target/*/examples/jj`).

fn main() -> std::process::ExitCode {
    jj_cli::cli_util::CliRunner::init()
        .version("0.45.1")
        .run()
        .into()
}

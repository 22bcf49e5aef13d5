fn main() -> std::process::ExitCode {
    jjfs::daemon::main()
}

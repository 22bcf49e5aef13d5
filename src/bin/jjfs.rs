fn main() -> std::process::ExitCode {
    jjfs::cli::main()
}

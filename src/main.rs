fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(angrav::cli::main())
}

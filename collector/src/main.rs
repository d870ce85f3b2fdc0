use std::process::ExitCode;

fn main() -> ExitCode {
    thawtrace::cli::main()
}

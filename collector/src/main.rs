use std::process::ExitCode;

fn main() -> ExitCode {
    // Started by the Lambda runtime: be the collector. Otherwise: the CLI.
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        return match thawtrace::lambda::run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("thawtrace: {e}");
                ExitCode::FAILURE
            }
        };
    }
    thawtrace::cli::main()
}

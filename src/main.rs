//! Command-line entry point: parses flags, dispatches, maps results to exit codes.
use std::process::ExitCode;

use aks_identity_audit::cli;
use aks_identity_audit::exit::Exit;
use clap::Parser;

fn main() -> ExitCode {
    aks_identity_audit::memory::tune();
    let args = cli::Cli::parse();
    let format = args.log_format;
    match cli::dispatch(args) {
        Ok(code) => code.into(),
        Err(err) => {
            cli::report_fatal(format, &err);
            Exit::Error.into()
        }
    }
}

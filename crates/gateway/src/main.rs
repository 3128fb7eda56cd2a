//! `mno`: run the platform and operate it. See `mno --help`.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = mno_gateway::cli::Cli::parse();
    match cli.run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // One line that says what is wrong and what to do.
            eprintln!("mno: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

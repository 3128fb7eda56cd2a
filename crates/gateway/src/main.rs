//! `mno`: run the platform and operate it. See `mno --help`.

use clap::Parser;

/// mimalloc instead of glibc malloc: request handling allocates many small
/// JSON values across threads, where glibc's arena locks showed in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

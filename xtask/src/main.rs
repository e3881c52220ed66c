//! `cargo xtask`: the project's build, test and lifecycle commands.

mod build;
mod project;
mod test;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Build, test and snapshot the chat canister"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the chat canister: target/canister/chat.wasm (shrunk, with its Candid) and chat.did.
    Build,
    /// Build what the tests need and run every test.
    Test,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Build => build::build().map(|artifact| artifact.report()),
        Command::Test => test::run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

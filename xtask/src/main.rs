//! `cargo xtask`: the project's build and test commands, and the canister-snapshot
//! lifecycle on the embedded replica, dfx or icp-cli.
//!
//! Exit codes: 0 success; 1 a step failed (the message says what and what to do next);
//! 2 bad arguments; 3 `verify` (or the demo) found a chat that differs from the snapshot;
//! 4 a backup is damaged or incomplete.

mod backend;
mod backup;
mod bench;
mod build;
mod commands;
mod fuzz;
mod identity;
mod ids;
mod interrupt;
mod lifecycle;
mod preflight;
mod project;
mod query;
mod records;
mod test;
mod tools;

use std::{path::PathBuf, process::ExitCode};

use anyhow::Result;
use clap::Parser;

use backend::{CanisterRef, Choice, Network};
use backup::Damaged;
use commands::{Command, Context};
use lifecycle::Mismatch;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Build, test and snapshot the chat canister",
    after_help = "Exit codes: 0 success, 1 a step failed, 2 bad arguments, 3 the chat differs from the snapshot, 4 a backup is damaged."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Where the canister runs: `auto` picks dfx when it is on PATH, else the embedded replica.
    #[arg(long, global = true, value_enum, default_value = "auto")]
    backend: Choice,
    /// `local`, `ic` (mainnet) or an http(s) URL; the embedded backend is local only.
    #[arg(long, global = true, default_value = "local")]
    network: Network,
    /// The canister to act on: a name from dfx.json or icp.yaml (on the embedded replica, one
    /// it deployed) or a canister id.
    /// Repeated, it names a set of canisters captured together (snapshot, restore, list,
    /// verify). [default: chat]
    #[arg(long, global = true, value_name = "NAME|ID")]
    canister: Vec<CanisterRef>,
    /// Every canister of the project (dfx.json, icp.yaml; on the embedded replica, those it
    /// deployed), as a set.
    #[arg(long, global = true, conflicts_with = "canister")]
    all: bool,
    /// Print the result as JSON on stdout (progress goes to stderr).
    #[arg(long, global = true)]
    json: bool,
    /// Where the embedded replica and the records live [default: .canister-snapshots].
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(dir) = cli.state_dir.clone() {
        project::set_state_dir(dir);
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            if error.downcast_ref::<Mismatch>().is_some() {
                ExitCode::from(3)
            } else if error.downcast_ref::<Damaged>().is_some() {
                ExitCode::from(4)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    project::find_root()?;
    let mut cx = Context::new(cli.backend, cli.network, cli.canister, cli.all, cli.json);
    cli.command.run(&mut cx)
}

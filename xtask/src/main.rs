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
mod fuzz;
mod interrupt;
mod lifecycle;
mod preflight;
mod project;
mod records;
mod test;
mod tools;

use std::{path::PathBuf, process::ExitCode};

use anyhow::Result;
use clap::{Parser, Subcommand};

use backend::{Choice, Network, SnapshotId};
use backup::{Damaged, Source};
use lifecycle::{Mismatch, Out, Session};
use records::Records;

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
    /// Print the result as JSON on stdout (progress goes to stderr).
    #[arg(long, global = true)]
    json: bool,
    /// Where the embedded replica and the records live [default: .canister-snapshots].
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Build the chat canister: target/canister/chat.wasm (shrunk, with its Candid) and chat.did.
    Build,
    /// Build what the tests need and run every test.
    Test,
    /// Measure snapshots, calls, the canister and the lifecycle: a table and a chart in
    /// target/bench/ (see BENCHMARKS.md).
    Bench {
        /// Small sizes on the dev profile, in seconds (what CI runs).
        #[arg(long)]
        quick: bool,
    },
    /// The whole lifecycle: clean start, deploy, populate, stop, snapshot, break, restore, verify.
    Demo,
    /// Start a clean local network (dfx, icp) or an empty embedded replica.
    Start,
    /// Build the chat canister and install it (upgrading it when already installed).
    Deploy,
    /// Append messages: the ones given, `--messages N` numbered ones, or "Hi there!".
    Populate {
        #[arg(long, conflicts_with = "message")]
        messages: Option<u64>,
        message: Vec<String>,
    },
    /// Stop the canister, take a snapshot, start it again; prints the snapshot id.
    Snapshot {
        /// Replace this snapshot (the new one gets a new id).
        #[arg(long)]
        replace: Option<SnapshotId>,
    },
    /// Call remove_spam: with no spam in the chat, the deliberate bug empties it.
    Break,
    /// Stop the canister, load a snapshot (the newest when none is named), start it again.
    Restore { id: Option<SnapshotId> },
    /// List the canister's snapshots.
    List,
    /// Delete a snapshot.
    Delete { id: SnapshotId },
    /// Compare the chat with the one recorded when a snapshot (default: the last restored) was taken.
    Verify { id: Option<SnapshotId> },
    /// The canister's id, status and module hash.
    Status,
    /// Snapshot, call METHOD with text ARGS, and restore by itself if the message count drops.
    Guard {
        method: String,
        args: Vec<String>,
        /// How many messages the call may remove without a restore.
        #[arg(long, default_value_t = 0)]
        allow_drop: u64,
    },
    /// Download a snapshot (default: the newest) to DIR in the dfx/icp layout, with a
    /// manifest; run it again to resume an interrupted download.
    Download {
        id: Option<SnapshotId>,
        #[arg(short = 'o', long = "output", value_name = "DIR")]
        output: PathBuf,
    },
    /// Check a backup, then upload it as a new snapshot; prints its id.
    Upload {
        dir: PathBuf,
        /// Replace this snapshot (the new one gets a new id).
        #[arg(long)]
        replace: Option<SnapshotId>,
        /// Upload a directory that has no manifest (from dfx or icp-cli) as it is.
        #[arg(long)]
        unverified: bool,
        /// Upload a backup of another canister onto this one.
        #[arg(long)]
        any_canister: bool,
    },
    /// Check every file of a backup against its manifest; exit 4 naming what is damaged.
    VerifyBackup { dir: PathBuf },
    /// Load a snapshot (an id or a backup directory) into a scratch replica and show its chat.
    Inspect {
        #[arg(value_name = "ID|DIR")]
        source: Source,
        /// Show every message, not only the first and last.
        #[arg(long)]
        all: bool,
        /// How many messages to show from each end.
        #[arg(long, default_value_t = 3)]
        show: usize,
    },
    /// The messages added and removed between two snapshots (ids or backup directories).
    Diff {
        #[arg(value_name = "A")]
        from: Source,
        #[arg(value_name = "B")]
        to: Source,
    },
    /// Delete all but the newest N snapshots, or (with --dir) backups in a directory.
    Prune {
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        keep: u16,
        /// Prune the backups in this directory instead of the canister's snapshots.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Only list what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
    /// Shut the local network down (dfx, icp); the embedded replica keeps its state on disk.
    Stop,
    /// Serve the embedded replica over the IC HTTP interface until Ctrl-C.
    Serve {
        #[arg(long, default_value_t = 4943)]
        port: u16,
        /// The replica's state [default: <state-dir>/embedded].
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Install icp-cli 1.5.0 from npm into the project (.tools/), for `--backend icp`.
    InstallIcp,
    /// Fuzz the replica (fuzz/): coverage-guided with cargo-fuzz, or `--smoke` over the corpus.
    Fuzz {
        /// The plain build over the committed corpus and a few thousand mutations (CI).
        #[arg(long)]
        smoke: bool,
        /// Seconds per target under cargo-fuzz.
        #[arg(long, default_value_t = 60)]
        seconds: u32,
        /// Targets to run [default: all: envelope, management, upload, state].
        targets: Vec<String>,
    },
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
    let command = match cli.command {
        Command::Build => return build::build().map(|artifact| artifact.report()),
        Command::Test => return test::run(),
        Command::Bench { quick } => return bench::run(quick),
        Command::Fuzz {
            smoke,
            seconds,
            targets,
        } => return fuzz::run(smoke, seconds, &targets),
        Command::InstallIcp => {
            return tools::install_icp().map(|icp| println!("icp-cli: {}", icp.display()));
        }
        Command::Serve { port, state } => return serve(port, state),
        command => command,
    };
    let out = Out { json: cli.json };
    if let Some(result) = offline(&command, out) {
        return result.map(|value| print_json(cli.json, &value));
    }
    interrupt::install();
    let (backend, why) = backend::open(cli.backend, &cli.network, project::state_dir())?;
    let scope = Records::scope(backend.name(), &cli.network);
    let mut session = Session::new(backend, scope, cli.json)?;
    if let Some(why) = why {
        session.say(why);
    }
    let result = match command {
        Command::Demo => session.demo(&canister_wasm()?),
        Command::Start => session.start(),
        Command::Deploy => session.deploy(&canister_wasm()?),
        Command::Populate { messages, message } => session.populate(&message, messages),
        Command::Snapshot { replace } => session.snapshot(replace.as_ref()),
        Command::Break => session.break_chat(),
        Command::Restore { id } => session.restore(id.as_ref()),
        Command::List => session.list(),
        Command::Delete { id } => session.delete(&id),
        Command::Verify { id } => session.verify(id.as_ref()),
        Command::Status => session.status(),
        Command::Guard {
            method,
            args,
            allow_drop,
        } => session.guard(&method, &args, allow_drop),
        Command::Download { id, output } => session.download(id.as_ref(), &output),
        Command::Upload {
            dir,
            replace,
            unverified,
            any_canister,
        } => session.upload(&dir, replace.as_ref(), unverified, any_canister),
        Command::Inspect { source, all, show } => {
            lifecycle::inspect(out, Some(&mut session), &source, show, all)
        }
        Command::Diff { from, to } => lifecycle::diff(out, Some(&mut session), &from, &to),
        Command::Prune { keep, dry_run, .. } => session.prune(keep.into(), dry_run),
        Command::Stop => session.shut_down(),
        Command::Build
        | Command::Test
        | Command::Bench { .. }
        | Command::Fuzz { .. }
        | Command::InstallIcp
        | Command::Serve { .. }
        | Command::VerifyBackup { .. } => {
            unreachable!("handled above")
        }
    }?;
    print_json(cli.json, &result);
    Ok(())
}

/// Runs a command that reads only backup directories, without opening a backend (so it
/// works offline); `None` for a command that needs one.
fn offline(command: &Command, out: Out) -> Option<Result<serde_json::Value>> {
    let dir = |source: &Source| matches!(source, Source::Dir(_));
    match command {
        Command::VerifyBackup { dir } => Some(lifecycle::verify_backup(out, dir)),
        Command::Prune {
            keep,
            dir: Some(dir),
            dry_run,
        } => Some(lifecycle::prune_dir(out, dir, (*keep).into(), *dry_run)),
        Command::Inspect { source, all, show } if dir(source) => {
            Some(lifecycle::inspect(out, None, source, *show, *all))
        }
        Command::Diff { from, to } if dir(from) && dir(to) => {
            Some(lifecycle::diff(out, None, from, to))
        }
        _ => None,
    }
}

fn print_json(json: bool, value: &serde_json::Value) {
    if json {
        println!("{value}");
    }
}

/// The canister to install: `$CHAT_WASM` when set (the tests' prebuilt one), else a fresh build.
fn canister_wasm() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(project_tools::CHAT_WASM_ENV) {
        return Ok(PathBuf::from(path));
    }
    let artifact = build::build()?;
    Ok(artifact.wasm)
}

/// Serves the embedded replica on 127.0.0.1 until SIGINT or SIGTERM.
fn serve(port: u16, state: Option<PathBuf>) -> Result<()> {
    let dir = state.unwrap_or_else(|| project::state_dir().join("embedded"));
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    replica::http::run_until_signal(&dir, address, |server| {
        // Whoever started the server may stop reading its output; it serves on regardless.
        use std::io::Write;
        let mut out = std::io::stdout();
        let _ = writeln!(
            out,
            "serving {} on http://{}",
            dir.display(),
            server.address
        );
        let _ = writeln!(out, "root key: {}", project::hex(&server.root_key));
        let _ = writeln!(out, "Ctrl-C stops it; every change is already on disk.");
        let _ = out.flush();
    })
    .map_err(anyhow::Error::msg)
}

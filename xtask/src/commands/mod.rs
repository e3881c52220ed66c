//! The `cargo xtask` commands: each is one type with one `run`, given a `Context` that opens
//! a backend only when the command needs one, and each returns a typed result that `--json`
//! prints. A new command is its own file, a variant here, and its test.

mod backup;
mod break_chat;
mod clone;
mod delete;
mod demo;
mod deploy;
mod dev;
mod diff;
mod download;
mod guard;
mod inspect;
mod list;
mod populate;
mod prune;
mod restore;
mod snapshot;
mod start;
mod status;
mod stop;
mod upload;
mod verify;
mod verify_backup;

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Subcommand;
use serde::Serialize;

use crate::backend::{self, CanisterRef, Choice, Network};
use crate::lifecycle::{Out, Session};
use crate::records::Records;

/// A command: what it does, and what it prints with `--json`.
pub trait Run {
    type Output: Serialize;
    fn run(self, cx: &mut Context) -> Result<Self::Output>;
}

/// What every command is given: the global options, and the backend once one is needed.
pub struct Context {
    choice: Choice,
    network: Network,
    canisters: Vec<CanisterRef>,
    /// `--all`: the canisters are the project's, read from the backend when it opens.
    all: bool,
    pub out: Out,
    session: Option<Session>,
}

impl Context {
    pub fn new(
        choice: Choice,
        network: Network,
        canisters: Vec<CanisterRef>,
        all: bool,
        json: bool,
    ) -> Self {
        let canisters = if canisters.is_empty() {
            vec![CanisterRef::chat()]
        } else {
            canisters
        };
        Self {
            choice,
            network,
            canisters,
            all,
            out: Out { json },
            session: None,
        }
    }

    /// The canister named with `--canister` (default: the chat); the first, if several.
    pub fn canister(&self) -> &CanisterRef {
        &self.canisters[0]
    }

    /// Every canister named with `--canister`, or with `--all` every canister of the project.
    pub fn canisters(&mut self) -> Result<Vec<CanisterRef>> {
        if self.all {
            self.set_session()?;
        }
        Ok(self.canisters.clone())
    }

    /// The backend and what is remembered for it, for a command acting on one canister.
    pub fn session(&mut self) -> Result<&mut Session> {
        let several = |n: usize| {
            anyhow::anyhow!(
                "--canister names {n} canisters, and this command acts on one: name one (snapshot, restore, list, verify, download, upload and prune take a set)"
            )
        };
        if self.canisters.len() > 1 {
            return Err(several(self.canisters.len()));
        }
        self.set_session()?;
        match self.canisters.len() {
            1 => Ok(self.session.as_mut().expect("opened above")),
            n => Err(several(n)),
        }
    }

    /// The backend and what is remembered for it, for a command that takes a set.
    pub fn set_session(&mut self) -> Result<&mut Session> {
        if self.session.is_none() {
            crate::interrupt::install();
            let (backend, why) =
                backend::open(self.choice, &self.network, crate::project::state_dir())?;
            let scope = Records::scope(backend.name(), &self.network);
            let mut session = Session::new(backend, self.canisters[0].clone(), scope, self.out)?;
            if let Some(why) = why {
                session.say(why);
            }
            if self.all {
                self.canisters = project_canisters(&mut session)?;
            }
            self.session = Some(session);
        }
        Ok(self.session.as_mut().expect("opened above"))
    }

    /// Prints a command's result with `--json`; a command with nothing to report (`()`)
    /// prints nothing.
    fn print(&self, output: &impl Serialize) -> Result<()> {
        let value = serde_json::to_value(output)?;
        if self.out.json && !value.is_null() {
            println!("{value}");
        }
        Ok(())
    }
}

/// The project's canisters, for `--all`.
fn project_canisters(session: &mut Session) -> Result<Vec<CanisterRef>> {
    let names = session.backend.project_canisters()?;
    if names.is_empty() {
        bail!(
            "--all found no canisters: dfx.json and icp.yaml list them, and on the embedded replica `deploy --canister NAME --wasm FILE` adds them"
        );
    }
    session.say(format!("  --all: {}", names.join(", ")));
    names.iter().map(|n| n.parse()).collect()
}

fn exec(command: impl Run, cx: &mut Context) -> Result<()> {
    let output = command.run(cx)?;
    cx.print(&output)
}

#[derive(Subcommand)]
pub enum Command {
    /// Build the chat canister: target/canister/chat.wasm (shrunk, with its Candid) and chat.did.
    Build(dev::Build),
    /// Build what the tests need and run every test.
    Test(dev::Test),
    /// Measure snapshots, calls, the canister and the lifecycle: a table and a chart in
    /// target/bench/ (see BENCHMARKS.md).
    Bench(dev::Bench),
    /// The whole lifecycle: clean start, deploy, populate, stop, snapshot, break, restore, verify.
    Demo(demo::Demo),
    /// Start a clean local network (dfx, icp) or an empty embedded replica.
    Start(start::Start),
    /// Build the chat canister and install it (upgrading it when already installed).
    Deploy(deploy::Deploy),
    /// Append messages: the ones given, `--messages N` numbered ones, or "Hi there!".
    Populate(populate::Populate),
    /// Stop the canister, take a snapshot, start it again; prints the snapshot id.
    Snapshot(snapshot::Snapshot),
    /// Call remove_spam: with no spam in the chat, the deliberate bug empties it.
    Break(break_chat::Break),
    /// Stop the canister, load a snapshot (the newest when none is named), start it again.
    Restore(restore::Restore),
    /// List the canister's snapshots.
    List(list::List),
    /// Delete a snapshot.
    Delete(delete::Delete),
    /// Compare the chat with the one recorded when a snapshot (default: the last restored) was taken.
    Verify(verify::Verify),
    /// The canister's id, status and module hash.
    Status(status::Status),
    /// Snapshot, call METHOD with text ARGS, and restore by itself if the message count drops.
    Guard(guard::Guard),
    /// Download a snapshot (default: the newest) to DIR in the dfx/icp layout, with a
    /// manifest; run it again to resume an interrupted download.
    Download(download::Download),
    /// Check a backup, then upload it as a new snapshot; prints its id.
    Upload(upload::Upload),
    /// Check every file of a backup against its manifest; exit 4 naming what is damaged.
    VerifyBackup(verify_backup::VerifyBackup),
    /// Load a snapshot (an id or a backup directory) into a scratch replica and show its chat.
    Inspect(inspect::Inspect),
    /// The messages added and removed between two snapshots (ids or backup directories).
    Diff(diff::Diff),
    /// Delete all but the newest N snapshots, or (with --dir) backups in a directory.
    Prune(prune::Prune),
    /// Shut the local network down (dfx, icp); the embedded replica keeps its state on disk.
    Stop(stop::Stop),
    /// Serve the embedded replica over the IC HTTP interface until Ctrl-C.
    Serve(dev::Serve),
    /// Install icp-cli 1.5.0 from npm into the project (.tools/), for `--backend icp`.
    InstallIcp(dev::InstallIcp),
    /// Fuzz the replica (fuzz/): coverage-guided with cargo-fuzz, or `--smoke` over the corpus.
    Fuzz(dev::Fuzz),
    /// Snapshot, download to DIR, verify, restore-drill in a scratch replica, prune: once (for
    /// cron) or `--every` interval; one log line per run.
    Backup(backup::Backup),
    /// Copy a snapshot of one canister onto another (download, upload, load), then verify it.
    Clone(clone::Clone),
}

impl Command {
    pub fn run(self, cx: &mut Context) -> Result<()> {
        match self {
            Self::Build(c) => exec(c, cx),
            Self::Test(c) => exec(c, cx),
            Self::Bench(c) => exec(c, cx),
            Self::Demo(c) => exec(c, cx),
            Self::Start(c) => exec(c, cx),
            Self::Deploy(c) => exec(c, cx),
            Self::Populate(c) => exec(c, cx),
            Self::Snapshot(c) => exec(c, cx),
            Self::Break(c) => exec(c, cx),
            Self::Restore(c) => exec(c, cx),
            Self::List(c) => exec(c, cx),
            Self::Delete(c) => exec(c, cx),
            Self::Verify(c) => exec(c, cx),
            Self::Status(c) => exec(c, cx),
            Self::Guard(c) => exec(c, cx),
            Self::Download(c) => exec(c, cx),
            Self::Upload(c) => exec(c, cx),
            Self::VerifyBackup(c) => exec(c, cx),
            Self::Inspect(c) => exec(c, cx),
            Self::Diff(c) => exec(c, cx),
            Self::Prune(c) => exec(c, cx),
            Self::Stop(c) => exec(c, cx),
            Self::Serve(c) => exec(c, cx),
            Self::InstallIcp(c) => exec(c, cx),
            Self::Fuzz(c) => exec(c, cx),
            Self::Backup(c) => exec(c, cx),
            Self::Clone(c) => exec(c, cx),
        }
    }
}

/// The canister to install: `$CHAT_WASM` when set (the tests' prebuilt one), else a fresh build.
fn canister_wasm() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(project_tools::CHAT_WASM_ENV) {
        return Ok(PathBuf::from(path));
    }
    Ok(crate::build::build()?.wasm)
}

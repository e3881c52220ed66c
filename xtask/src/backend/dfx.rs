//! dfx (≥ 0.23) through its command line. Facts: shared/reference/dfx.md — snapshot output
//! moved from stderr to stdout in 0.32, sizes print as `1.61MiB` (≤ 0.24) or `1.61 MiB`, and
//! `dfx start --background` leaves a daemon holding the caller's stdio.

use std::path::Path;

use anyhow::{Context, Result, bail};
use candid::IDLArgs;

use super::cli::{Cli, absolute, hex_bytes, version_in};
use super::{
    Backend, Budget, CanisterRef, Network, SnapshotId, SnapshotInfo, Status, bytes_of, number_in,
};
use crate::project;

/// The first dfx whose snapshot download and upload speak today's management types, and the
/// first with `download --resume` (shared/reference/dfx.md).
const TRANSFERS: (u32, u32, u32) = (0, 29, 2);
const RESUME: (u32, u32, u32) = (0, 30, 1);

pub struct Dfx {
    cli: Cli,
    network: Network,
}

impl Dfx {
    pub fn new(network: Network) -> Self {
        // Added to the user's own DFX_WARNING (e.g. `-mainnet_plaintext_identity`, which dfx
        // asks for on mainnet), never in place of it.
        let warnings = match std::env::var("DFX_WARNING") {
            Ok(own) if !own.trim().is_empty() => format!("{own},-deprecation"),
            _ => "-deprecation".into(),
        };
        let env = vec![("DFX_WARNING", warnings), ("DFX_TELEMETRY", "off".into())];
        Self {
            cli: Cli::new("dfx", "dfx", env),
            network,
        }
    }

    /// Runs `dfx <args>` with the network flag after the subcommand words — always, so
    /// that a `DFX_NETWORK` in the environment cannot send "local" commands elsewhere.
    fn dfx(&mut self, args: &[&str]) -> Result<super::cli::Printed> {
        let mut all: Vec<&str> = args.to_vec();
        let network;
        match &self.network {
            Network::Local => all.extend(["--network", "local"]),
            Network::Ic => all.extend(["--network", "ic"]),
            Network::Url(url) => {
                network = url.clone();
                all.extend(["--network", network.as_str()]);
            }
        }
        self.cli.run(&all)
    }

    /// Fails, saying what to do, when the installed dfx is older than `version`.
    fn require(&mut self, version: (u32, u32, u32), to: &str) -> Result<()> {
        let (_, installed) = self.tool_version()?;
        let (major, minor, patch) = version;
        if parse_version(&installed).is_some_and(|found| found < version) {
            bail!(
                "dfx {installed} cannot {to}; it needs dfx {major}.{minor}.{patch} or later: run `dfxvm update`"
            );
        }
        Ok(())
    }
}

/// `0.30.1` (or `0.30.1-beta.0`) as numbers; `None` when it is not a version.
fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let mut parts = text.split(['.', '-']).map(str::parse::<u32>);
    Some((
        parts.next()?.ok()?,
        parts.next()?.ok()?,
        parts.next()?.ok()?,
    ))
}

impl Backend for Dfx {
    fn name(&self) -> &'static str {
        "dfx"
    }

    fn describe(&self) -> String {
        match &self.network {
            Network::Local => "dfx, project-local network (dfx.json)".into(),
            Network::Ic => "dfx on mainnet (--network ic)".into(),
            Network::Url(url) => format!("dfx on {url}"),
        }
    }

    fn clean_start(&mut self) -> Result<()> {
        if self.network != Network::Local {
            bail!(
                "a clean start wipes a local network; on {} there is none to wipe: run the steps one by one instead (`deploy`, `populate`, `snapshot`, `break`, `restore`, `verify`)",
                self.describe()
            );
        }
        self.cli.run(&["stop"])?;
        let log = project::state_dir().join("dfx-start.log");
        std::fs::create_dir_all(project::state_dir())?;
        self.cli
            .run_detached(&["start", "--clean", "--background"], &log)
    }

    fn deploy(&mut self, canister: &CanisterRef, _wasm: &Path) -> Result<String> {
        // dfx builds through dfx.json, which runs `cargo xtask build` for the chat.
        let canister = canister.to_string();
        self.dfx(&["deploy", &canister, "--yes"])?;
        Ok(self
            .dfx(&["canister", "id", &canister])?
            .stdout
            .trim()
            .to_owned())
    }

    fn call(
        &mut self,
        canister: &CanisterRef,
        method: &str,
        args: &IDLArgs,
        query: bool,
    ) -> Result<Vec<u8>> {
        let (args, canister) = (args.to_string(), canister.to_string());
        let mut line = vec![
            "canister",
            "call",
            &canister,
            method,
            args.as_str(),
            "--output",
            "raw",
        ];
        if query {
            line.push("--query");
        }
        hex_bytes(&self.dfx(&line)?.stdout)
    }

    fn stop_canister(&mut self, canister: &CanisterRef) -> Result<()> {
        self.dfx(&["canister", "stop", &canister.to_string()])
            .map(drop)
    }

    fn start_canister(&mut self, canister: &CanisterRef) -> Result<()> {
        self.dfx(&["canister", "start", &canister.to_string()])
            .map(drop)
    }

    fn status(&mut self, canister: &CanisterRef) -> Result<Status> {
        let name = canister.to_string();
        let printed = self.dfx(&["canister", "status", &name])?;
        let canister = self
            .dfx(&["canister", "id", &name])?
            .stdout
            .trim()
            .to_owned();
        parse_status(&printed.all, canister)
    }

    fn snapshot_create(
        &mut self,
        canister: &CanisterRef,
        replace: Option<&SnapshotId>,
    ) -> Result<SnapshotId> {
        let (replaced, canister) = (replace.map(ToString::to_string), canister.to_string());
        let mut line = vec!["canister", "snapshot", "create", &canister];
        if let Some(id) = &replaced {
            line.extend(["--replace", id.as_str()]);
        }
        let printed = self.dfx(&line)?;
        parse_created(&printed.all)
    }

    fn snapshot_list(&mut self, canister: &CanisterRef) -> Result<Vec<SnapshotInfo>> {
        let printed = self.dfx(&["canister", "snapshot", "list", &canister.to_string()])?;
        Ok(parse_list(&printed.all))
    }

    fn snapshot_load(&mut self, canister: &CanisterRef, id: &SnapshotId) -> Result<()> {
        let (canister, id) = (canister.to_string(), id.to_string());
        self.dfx(&["canister", "snapshot", "load", &canister, &id])
            .map(drop)
    }

    fn snapshot_delete(&mut self, canister: &CanisterRef, id: &SnapshotId) -> Result<()> {
        let (canister, id) = (canister.to_string(), id.to_string());
        self.dfx(&["canister", "snapshot", "delete", &canister, &id])
            .map(drop)
    }

    fn snapshot_download(
        &mut self,
        canister: &CanisterRef,
        id: &SnapshotId,
        dir: &Path,
        resume: bool,
    ) -> Result<()> {
        self.require(TRANSFERS, "download snapshots")?;
        if resume {
            self.require(RESUME, "resume a download")?;
        }
        let (canister, id, dir) = (canister.to_string(), id.to_string(), absolute(dir)?);
        let mut line = vec![
            "canister", "snapshot", "download", &canister, &id, "--dir", &dir,
        ];
        if resume {
            line.push("--resume");
        }
        self.dfx(&line).map(drop)
    }

    /// dfx prints `Uploaded a snapshot of canister chat. Snapshot ID: <hex>`.
    fn snapshot_upload(
        &mut self,
        canister: &CanisterRef,
        dir: &Path,
        replace: Option<&SnapshotId>,
    ) -> Result<SnapshotId> {
        self.require(TRANSFERS, "upload snapshots")?;
        let (replaced, dir) = (replace.map(ToString::to_string), absolute(dir)?);
        let canister = canister.to_string();
        let mut line = vec!["canister", "snapshot", "upload", &canister, "--dir", &dir];
        if let Some(id) = &replaced {
            line.extend(["--replace", id.as_str()]);
        }
        parse_created(&self.dfx(&line)?.all)
    }

    fn project_canisters(&mut self) -> Result<Vec<String>> {
        let path = project::root().join("dfx.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        Ok(json["canisters"]
            .as_object()
            .map(|c| c.keys().cloned().collect())
            .unwrap_or_default())
    }

    fn tool_version(&mut self) -> Result<(String, String)> {
        let printed = self.cli.run(&["--version"])?;
        Ok(("dfx".into(), version_in(&printed.stdout)))
    }

    fn shut_down(&mut self) -> Result<()> {
        if self.network == Network::Local {
            self.cli.run(&["stop"])?;
        }
        Ok(())
    }

    fn ran(&mut self) -> Vec<String> {
        self.cli.ran()
    }
}

/// The id in `Created a new snapshot of canister chat. Snapshot ID: <hex>`.
pub fn parse_created(printed: &str) -> Result<SnapshotId> {
    let Some((_, rest)) = printed.split_once("Snapshot ID: ") else {
        bail!(
            "dfx did not print a snapshot id; it printed: {}",
            printed.trim()
        );
    };
    let hex: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
    hex.parse()
}

/// Lines `<hex>: <size>, taken at <time>`; `No snapshots found …` gives none.
pub fn parse_list(printed: &str) -> Vec<SnapshotInfo> {
    printed
        .lines()
        .filter_map(|line| {
            let (id, rest) = line.trim().split_once(": ")?;
            let (size, taken_at) = rest.split_once(", taken at ")?;
            Some(SnapshotInfo {
                id: id.parse().ok()?,
                taken_at: taken_at.trim().to_owned(),
                size: size.trim().to_owned(),
                bytes: bytes_of(size)?,
            })
        })
        .collect()
}

/// `Status: Running` and `Module hash: 0x…` from `dfx canister status`.
pub fn parse_status(printed: &str, canister: String) -> Result<Status> {
    let field = |name: &str| {
        printed
            .lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_owned()))
    };
    let Some(status) = field("Status:") else {
        bail!("dfx printed no status: {}", printed.trim());
    };
    let module_hash = field("Module hash:")
        .filter(|h| h != "None")
        .map(|h| h.trim_start_matches("0x").to_owned());
    let number = |name: &str| field(name).as_deref().and_then(number_in);
    let budget = (|| {
        Some(Budget {
            cycles: number("Balance:")?,
            memory_size: number("Memory Size:").or_else(|| number("Memory size:"))? as u64,
            memory_allocation: number("Memory allocation:")? as u64,
            freezing_threshold: number("Freezing threshold:")? as u64,
            idle_cycles_burned_per_day: number("Idle cycles burned per day:")?,
        })
    })();
    Ok(Status {
        canister,
        status: status.to_lowercase(),
        module_hash,
        budget,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "000000000000000080000000001000010101";

    #[test]
    fn versions_compare_as_numbers() {
        assert_eq!(parse_version("0.30.1"), Some((0, 30, 1)));
        assert_eq!(parse_version("0.29.10-beta.0"), Some((0, 29, 10)));
        assert!(parse_version("0.29.10").unwrap() > TRANSFERS);
        assert!(parse_version("0.30.0").unwrap() < RESUME);
        assert_eq!(parse_version("unknown"), None);
    }

    #[test]
    fn created_id_is_found_on_either_stream_and_version() {
        let line = format!("Created a new snapshot of canister chat. Snapshot ID: {ID}\n");
        assert_eq!(parse_created(&line).unwrap().to_string(), ID);
        let with_banner = format!("WARNING: dfx is deprecated, use icp-cli\n{line}");
        assert_eq!(parse_created(&with_banner).unwrap().to_string(), ID);
        assert!(parse_created("Error: Failed to take snapshot of canister chat").is_err());
    }

    #[test]
    fn list_lines_parse_with_both_size_formats() {
        let old = format!("{ID}: 1.61MiB, taken at 2024-08-27 18:19:20 UTC");
        let new =
            "000000000000000180000000001000010101: 1.61 MiB, taken at 2026-11-25 19:39:20 UTC";
        let listed = parse_list(&format!("{old}\n{new}\n"));
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].size, "1.61MiB");
        assert_eq!(listed[0].taken_at, "2024-08-27 18:19:20 UTC");
        assert_eq!(listed[1].size, "1.61 MiB");
        assert_eq!(listed[0].bytes, listed[1].bytes);
        assert_eq!(listed[1].bytes, (1.61 * 1048576.0) as u64);
        assert!(parse_list("No snapshots found in canister chat").is_empty());
    }

    #[test]
    fn status_reads_state_and_module_hash() {
        let printed = "Canister status call result for chat.\nStatus: Stopped\nControllers: 2vxsx-fae\nMemory allocation: 0\nModule hash: 0xabc123\n";
        let status = parse_status(printed, "bkyz2-fmaaa-aaaaa-qaaaq-cai".into()).unwrap();
        assert_eq!(status.status, "stopped");
        assert_eq!(status.module_hash.as_deref(), Some("abc123"));
        let empty = parse_status("Status: Running\nModule hash: None\n", String::new()).unwrap();
        assert_eq!(empty.module_hash, None);
    }
}

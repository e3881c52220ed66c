//! The IC operations the lifecycle needs, as one small trait, and the choice of backend:
//! the embedded replica in-process, dfx, or icp-cli. Each backend is one file.

mod cli;
mod dfx;
mod embedded;
mod icp;
mod transfer;

use std::{path::Path, str::FromStr};

use anyhow::{Result, bail};
use candid::IDLArgs;
use serde::Serialize;

pub use crate::ids::{CanisterRef, SnapshotId};

pub use dfx::Dfx;
pub use embedded::Embedded;
pub use icp::Icp;

/// Where canisters live and how to reach them; every canister operation names its canister.
pub trait Backend {
    /// `embedded`, `dfx` or `icp`: names what is recorded for it.
    fn name(&self) -> &'static str;
    /// One line saying what this backend is, for the user.
    fn describe(&self) -> String;
    /// Wipes the local network (or the embedded state) and starts it empty.
    fn clean_start(&mut self) -> Result<()>;
    /// Creates the canister if needed and installs its code: `wasm` on the embedded replica,
    /// what dfx.json or icp.yaml builds on dfx and icp; returns the canister id.
    fn deploy(&mut self, canister: &CanisterRef, wasm: &Path) -> Result<String>;
    /// Calls a method with Candid arguments; returns the Candid reply bytes.
    fn call(
        &mut self,
        canister: &CanisterRef,
        method: &str,
        args: &IDLArgs,
        query: bool,
    ) -> Result<Vec<u8>>;
    fn stop_canister(&mut self, canister: &CanisterRef) -> Result<()>;
    fn start_canister(&mut self, canister: &CanisterRef) -> Result<()>;
    fn status(&mut self, canister: &CanisterRef) -> Result<Status>;
    fn snapshot_create(
        &mut self,
        canister: &CanisterRef,
        replace: Option<&SnapshotId>,
    ) -> Result<SnapshotId>;
    fn snapshot_list(&mut self, canister: &CanisterRef) -> Result<Vec<SnapshotInfo>>;
    fn snapshot_load(&mut self, canister: &CanisterRef, id: &SnapshotId) -> Result<()>;
    fn snapshot_delete(&mut self, canister: &CanisterRef, id: &SnapshotId) -> Result<()>;
    /// Writes snapshot `id` into `dir` in the dfx/icp layout; `resume` continues a download
    /// that was interrupted there.
    fn snapshot_download(
        &mut self,
        canister: &CanisterRef,
        id: &SnapshotId,
        dir: &Path,
        resume: bool,
    ) -> Result<()>;
    /// Uploads the snapshot in `dir` (dfx/icp layout) as a new snapshot; returns its id.
    fn snapshot_upload(
        &mut self,
        canister: &CanisterRef,
        dir: &Path,
        replace: Option<&SnapshotId>,
    ) -> Result<SnapshotId>;
    /// The names of the project's canisters (dfx.json, icp.yaml; on the embedded replica,
    /// those it deployed), for `--all`.
    fn project_canisters(&mut self) -> Result<Vec<String>>;
    /// The tool that talks to the IC and its version, for a backup's manifest.
    fn tool_version(&mut self) -> Result<(String, String)>;
    /// Stops the local network, if the backend runs one.
    fn shut_down(&mut self) -> Result<()>;
    /// The commands run since the last call, as a user would type them.
    fn ran(&mut self) -> Vec<String>;
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SnapshotInfo {
    pub id: SnapshotId,
    /// When it was taken, as `YYYY-MM-DD HH:MM:SS UTC` (dfx's form).
    pub taken_at: String,
    /// Its size for people, as `1.61 MiB` (dfx's form).
    pub size: String,
    /// Its size in bytes (from dfx's rounded figure, within 1 %).
    pub bytes: u64,
}

impl SnapshotInfo {
    /// From what the management canister returns: nanoseconds since the epoch and bytes.
    pub fn new(id: SnapshotId, taken_at_ns: u64, total_size: u64) -> Self {
        Self {
            id,
            taken_at: utc(taken_at_ns),
            size: indicatif::HumanBytes(total_size).to_string(),
            bytes: total_size,
        }
    }
}

/// Bytes from a size as people read it: `1.61 MiB`, `512 B`, and older dfx's `1.61MiB`.
pub fn bytes_of(size: &str) -> Option<u64> {
    let size = size.trim();
    let (number, unit) = size.split_at(size.find(|c: char| c.is_ascii_alphabetic())?);
    let scale = match unit {
        "B" => 1u64,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        _ => return None,
    };
    Some((number.trim().parse::<f64>().ok()? * scale as f64) as u64)
}

/// The first number in a field as the SDKs print them: `2_592_000`, `1_520_438 Bytes`,
/// `Nat(100)`.
pub fn number_in(field: &str) -> Option<u128> {
    let digits: String = field
        .split_whitespace()
        .next()?
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Nanoseconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let (days, day_secs) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        day_secs / 3600,
        day_secs / 60 % 60,
        day_secs % 60
    )
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Status {
    pub canister: String,
    /// `running`, `stopping` or `stopped`.
    pub status: String,
    pub module_hash: Option<String>,
    /// What the canister can afford, when the tool reports it.
    pub budget: Option<Budget>,
}

/// A canister's balance and what its memory costs it, from `canister_status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Budget {
    pub cycles: u128,
    /// Bytes, snapshots included.
    pub memory_size: u64,
    /// Bytes; 0 for none.
    pub memory_allocation: u64,
    /// Seconds.
    pub freezing_threshold: u64,
    pub idle_cycles_burned_per_day: u128,
}

/// Which backend the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Choice {
    Auto,
    Embedded,
    Dfx,
    Icp,
}

/// Which network a CLI backend targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Network {
    Local,
    /// Mainnet.
    Ic,
    Url(String),
}

impl FromStr for Network {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "local" => Ok(Self::Local),
            "ic" => Ok(Self::Ic),
            url if url.starts_with("http://") || url.starts_with("https://") => {
                Ok(Self::Url(url.to_owned()))
            }
            other => {
                bail!("unknown network `{other}`: use local, ic (mainnet) or an http(s):// URL")
            }
        }
    }
}

/// Opens the chosen backend; `auto` takes dfx when it is on PATH, else the embedded replica,
/// and says which and why.
pub fn open(
    choice: Choice,
    network: &Network,
    state_dir: &Path,
) -> Result<(Box<dyn Backend>, Option<String>)> {
    let dfx_found = on_path("dfx");
    let (choice, why) = match choice {
        Choice::Auto if dfx_found => (
            Choice::Dfx,
            Some("backend: dfx (auto: dfx is on PATH)".to_owned()),
        ),
        Choice::Auto => (
            Choice::Embedded,
            Some(
                "backend: embedded replica (auto: no dfx on PATH; use --backend dfx|icp to choose)"
                    .to_owned(),
            ),
        ),
        other => (other, None),
    };
    let backend: Box<dyn Backend> = match choice {
        Choice::Embedded => {
            if *network != Network::Local {
                bail!(
                    "the embedded backend is local only; for --network ic or a URL use --backend dfx or --backend icp"
                );
            }
            Box::new(Embedded::open(state_dir)?)
        }
        Choice::Dfx => {
            if !dfx_found {
                bail!(
                    "dfx is not on PATH: install it (https://internetcomputer.org/docs/building-apps/getting-started/install) or use --backend embedded"
                );
            }
            Box::new(Dfx::new(network.clone()))
        }
        Choice::Icp => Box::new(Icp::new(network.clone())?),
        Choice::Auto => unreachable!("resolved above"),
    };
    Ok((backend, why))
}

/// The canister names `icp.yaml` lists: each `- name: X` of its top-level `canisters:`.
pub fn icp_yaml_canisters(yaml: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_canisters = false;
    for line in yaml.lines() {
        if !line.starts_with([' ', '-', '#']) && !line.trim().is_empty() {
            in_canisters = line.trim_end() == "canisters:";
            continue;
        }
        let item = line.trim_start();
        let indent = line.len() - item.len();
        if in_canisters
            && indent <= 2
            && let Some(name) = item.strip_prefix("- name:")
        {
            names.push(name.trim().trim_matches(['"', '\'']).to_owned());
        }
    }
    names
}

pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_dfx_prints_them() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_724_782_760_000_000_000), "2024-08-27 18:19:20 UTC");
        assert_eq!(utc(1_709_251_199_000_000_000), "2024-02-29 23:59:59 UTC");
    }

    #[test]
    fn the_canisters_of_icp_yaml_are_its_top_level_list() {
        let yaml = "# a project\ncanisters:\n  - name: chat\n    build:\n      steps:\n        - name: not-a-canister\n  - name: \"notes\"\nnetworks:\n  - name: local\n";
        assert_eq!(icp_yaml_canisters(yaml), ["chat", "notes"]);
    }
}

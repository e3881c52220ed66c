//! icp-cli (1.5) through its command line, reading its `--json` output. Facts:
//! shared/reference/icp-cli.md. The canister is addressed by name, so the network is chosen
//! by environment: `local` (icp.yaml) or `ic` (mainnet).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use candid::IDLArgs;
use serde::Deserialize;

use super::cli::{Cli, absolute, hex_bytes, version_in};
use super::{Backend, Budget, CanisterRef, Network, SnapshotId, SnapshotInfo, Status, number_in};

pub struct Icp {
    cli: Cli,
    environment: &'static str,
    /// The identity named on each command (`--identity`), if not the user's selection.
    identity: Option<String>,
}

/// The identity the xtask makes for itself when the user has none but `anonymous`.
const OWN_IDENTITY: &str = "canister-snapshots";

/// The icp binary: `$ICP_BIN`, else the project's own install (`cargo xtask test` and
/// `.ci/run` put icp-cli there), else `icp` on PATH.
pub fn binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ICP_BIN") {
        return Some(PathBuf::from(path));
    }
    let local = crate::tools::icp_path();
    if local.is_file() {
        return Some(local);
    }
    super::on_path("icp").then(|| PathBuf::from("icp"))
}

impl Icp {
    pub fn new(network: Network) -> Result<Self> {
        let environment = match network {
            Network::Local => "local",
            Network::Ic => "ic",
            Network::Url(url) => bail!(
                "the icp backend targets canisters by name, so it needs an environment: define one for {url} in icp.yaml, or use --network local|ic"
            ),
        };
        let Some(program) = binary() else {
            bail!(
                "icp-cli is not installed: `cargo xtask install-icp` puts it in the project, or set ICP_BIN"
            );
        };
        let mut env = vec![
            ("ICP_TELEMETRY_DISABLED", "1".into()),
            ("NO_COLOR", "1".into()),
        ];
        // icp's own local network launcher is a download; the embedded replica speaks its
        // launcher contract and takes its place unless the user chose a launcher.
        if environment == "local" && std::env::var_os("ICP_CLI_NETWORK_LAUNCHER_PATH").is_none() {
            let launcher = crate::tools::replica_binary()?;
            env.push((
                "ICP_CLI_NETWORK_LAUNCHER_PATH",
                launcher.display().to_string(),
            ));
        }
        let mut cli = Cli::new(program.display().to_string(), "icp", env);
        let identity = match environment {
            "local" => local_identity(&mut cli)?,
            _ => None,
        };
        Ok(Self {
            cli,
            environment,
            identity,
        })
    }

    fn icp(&mut self, args: &[&str]) -> Result<super::cli::Printed> {
        let mut all = args.to_vec();
        all.extend(["-e", self.environment]);
        if let Some(identity) = &self.identity {
            all.extend(["--identity", identity]);
        }
        self.cli.run(&all)
    }
}

/// Who the xtask is on a local network: the user's selected icp identity, unless that is
/// icp's default `anonymous` — whom any web page can send calls as while the network runs,
/// and who would then control the canisters deployed. Then it is an identity of its own,
/// `canister-snapshots`, made once (before the network starts, which funds every identity
/// but the anonymous one) and kept in plaintext as CI has no keyring, its key made the
/// owner's alone (icp-cli writes it readable by all).
fn local_identity(cli: &mut Cli) -> Result<Option<String>> {
    let selected = cli.run(&["identity", "default"])?.stdout;
    if selected.trim() != "anonymous" {
        return Ok(None);
    }
    let listed = cli.run(&["identity", "list"])?.stdout;
    let known = listed
        .lines()
        .filter_map(|line| {
            line.trim_start_matches(['*', ' '])
                .split_whitespace()
                .next()
        })
        .any(|name| name == OWN_IDENTITY);
    if !known {
        cli.run(&[
            "identity",
            "new",
            OWN_IDENTITY,
            "--storage",
            "plaintext",
            "--output-seed",
            "/dev/null",
        ])?;
    }
    let key = icp_home()
        .join("identity/keys")
        .join(format!("{OWN_IDENTITY}.pem"));
    if key.is_file() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot make {} the owner's alone", key.display()))?;
    }
    Ok(Some(OWN_IDENTITY.into()))
}

/// Where icp-cli keeps identities: `$ICP_HOME`, else `~/.local/share/icp-cli`.
fn icp_home() -> PathBuf {
    match std::env::var_os("ICP_HOME") {
        Some(home) => PathBuf::from(home),
        None => {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".local/share/icp-cli")
        }
    }
}

impl Backend for Icp {
    fn name(&self) -> &'static str {
        "icp"
    }

    fn describe(&self) -> String {
        format!("icp-cli, environment `{}`", self.environment)
    }

    fn clean_start(&mut self) -> Result<()> {
        if self.environment != "local" {
            bail!(
                "a clean start wipes a local network; on mainnet there is none to wipe: run the steps one by one instead (`deploy`, `populate`, `snapshot`, `break`, `restore`, `verify`)"
            );
        }
        // Stopping a network that does not run fails harmlessly.
        let _ = self.cli.run(&["network", "stop"]);
        self.cli.run(&["network", "start", "-d"]).map(drop)
    }

    fn deploy(&mut self, canister: &CanisterRef, _wasm: &Path) -> Result<String> {
        // icp builds through icp.yaml, which runs `cargo xtask build` for the chat.
        let name = canister.to_string();
        self.icp(&["deploy", &name, "--yes"])?;
        Ok(self.status(canister)?.canister)
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
            "-o",
            "hex",
        ];
        if query {
            line.push("--query");
        }
        hex_bytes(&self.icp(&line)?.stdout)
    }

    fn stop_canister(&mut self, canister: &CanisterRef) -> Result<()> {
        self.icp(&["canister", "stop", &canister.to_string()])
            .map(drop)
    }

    fn start_canister(&mut self, canister: &CanisterRef) -> Result<()> {
        self.icp(&["canister", "start", &canister.to_string()])
            .map(drop)
    }

    fn status(&mut self, canister: &CanisterRef) -> Result<Status> {
        let canister = canister.to_string();
        parse_status(
            &self
                .icp(&["canister", "status", &canister, "--json"])?
                .stdout,
        )
    }

    fn snapshot_create(
        &mut self,
        canister: &CanisterRef,
        replace: Option<&SnapshotId>,
    ) -> Result<SnapshotId> {
        let (replaced, canister) = (replace.map(ToString::to_string), canister.to_string());
        let mut line = vec!["canister", "snapshot", "create", &canister, "--json"];
        if let Some(id) = &replaced {
            line.extend(["--replace", id.as_str()]);
        }
        parse_created(&self.icp(&line)?.stdout)
    }

    fn snapshot_list(&mut self, canister: &CanisterRef) -> Result<Vec<SnapshotInfo>> {
        let canister = canister.to_string();
        parse_list(
            &self
                .icp(&["canister", "snapshot", "list", &canister, "--json"])?
                .stdout,
        )
    }

    fn snapshot_load(&mut self, canister: &CanisterRef, id: &SnapshotId) -> Result<()> {
        let (canister, id) = (canister.to_string(), id.to_string());
        self.icp(&["canister", "snapshot", "restore", &canister, &id])
            .map(drop)
    }

    fn snapshot_delete(&mut self, canister: &CanisterRef, id: &SnapshotId) -> Result<()> {
        let (canister, id) = (canister.to_string(), id.to_string());
        self.icp(&["canister", "snapshot", "delete", &canister, &id])
            .map(drop)
    }

    fn snapshot_download(
        &mut self,
        canister: &CanisterRef,
        id: &SnapshotId,
        dir: &Path,
        resume: bool,
    ) -> Result<()> {
        let (canister, id, dir) = (canister.to_string(), id.to_string(), absolute(dir)?);
        let mut line = vec![
            "canister", "snapshot", "download", &canister, &id, "-o", &dir,
        ];
        if resume {
            line.push("--resume");
        }
        self.icp(&line).map(drop)
    }

    fn snapshot_upload(
        &mut self,
        canister: &CanisterRef,
        dir: &Path,
        replace: Option<&SnapshotId>,
    ) -> Result<SnapshotId> {
        let (replaced, dir) = (replace.map(ToString::to_string), absolute(dir)?);
        let canister = canister.to_string();
        let mut line = vec![
            "canister", "snapshot", "upload", &canister, "-i", &dir, "--json",
        ];
        if let Some(id) = &replaced {
            line.extend(["--replace", id.as_str()]);
        }
        parse_created(&self.icp(&line)?.stdout)
    }

    fn project_canisters(&mut self) -> Result<Vec<String>> {
        let path = crate::project::root().join("icp.yaml");
        let yaml = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Ok(super::icp_yaml_canisters(&yaml))
    }

    fn tool_version(&mut self) -> Result<(String, String)> {
        let printed = self.cli.run(&["--version"])?;
        Ok(("icp-cli".into(), version_in(&printed.stdout)))
    }

    fn shut_down(&mut self) -> Result<()> {
        if self.environment == "local" {
            self.cli.run(&["network", "stop"])?;
        }
        Ok(())
    }

    fn ran(&mut self) -> Vec<String> {
        self.cli.ran()
    }
}

#[derive(Deserialize)]
struct Created {
    snapshot_id: String,
}

#[derive(Deserialize)]
struct Listed {
    snapshots: Vec<Listing>,
}

#[derive(Deserialize)]
struct Listing {
    snapshot_id: String,
    taken_at_timestamp: u64,
    total_size_bytes: u64,
}

#[derive(Deserialize)]
struct StatusJson {
    id: String,
    status: String,
    module_hash: Option<String>,
    memory_size: Option<String>,
    cycles: Option<String>,
    idle_cycles_burned_per_day: Option<String>,
    settings: Option<SettingsJson>,
}

/// icp prints numbers as text with `_` separators: `"2_592_000"`.
#[derive(Deserialize)]
struct SettingsJson {
    memory_allocation: Option<String>,
    freezing_threshold: Option<String>,
}

/// `{"snapshot_id":"<hex>","taken_at_timestamp":<ns>,"total_size_bytes":<n>}`.
pub fn parse_created(json: &str) -> Result<SnapshotId> {
    let created: Created = serde_json::from_str(json.trim())
        .with_context(|| format!("icp printed no snapshot id: {}", json.trim()))?;
    created.snapshot_id.parse()
}

/// `{"snapshots":[{"snapshot_id","taken_at_timestamp","total_size_bytes"}]}`.
pub fn parse_list(json: &str) -> Result<Vec<SnapshotInfo>> {
    let listed: Listed = serde_json::from_str(json.trim())
        .with_context(|| format!("icp printed no snapshot list: {}", json.trim()))?;
    listed
        .snapshots
        .into_iter()
        .map(|s| {
            Ok(SnapshotInfo::new(
                s.snapshot_id.parse()?,
                s.taken_at_timestamp,
                s.total_size_bytes,
            ))
        })
        .collect()
}

/// `{"id","name","status":"Stopped",…}`.
pub fn parse_status(json: &str) -> Result<Status> {
    let status: StatusJson = serde_json::from_str(json.trim())
        .with_context(|| format!("icp printed no status: {}", json.trim()))?;
    let budget = budget(&status);
    Ok(Status {
        canister: status.id,
        status: status.status.to_lowercase(),
        module_hash: status
            .module_hash
            .map(|h| h.trim_start_matches("0x").to_owned()),
        budget,
    })
}

fn budget(status: &StatusJson) -> Option<Budget> {
    let number = |field: &Option<String>| field.as_deref().and_then(number_in);
    let settings = status.settings.as_ref()?;
    Some(Budget {
        cycles: number(&status.cycles)?,
        memory_size: number(&status.memory_size)? as u64,
        memory_allocation: number(&settings.memory_allocation)? as u64,
        freezing_threshold: number(&settings.freezing_threshold)? as u64,
        idle_cycles_burned_per_day: number(&status.idle_cycles_burned_per_day)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_json_gives_the_id() {
        let printed = r#"{"snapshot_id":"000000000000000080000000001000010101","taken_at_timestamp":1764099560000000000,"total_size_bytes":1234567}"#;
        assert_eq!(
            parse_created(printed).unwrap().to_string(),
            "000000000000000080000000001000010101"
        );
        assert!(parse_created("Error: Canister chat is currently running.").is_err());
    }

    #[test]
    fn list_json_gives_every_snapshot() {
        let printed = r#"{"snapshots":[{"snapshot_id":"000000000000000080000000001000010101","taken_at_timestamp":1764099560000000000,"total_size_bytes":1234567},{"snapshot_id":"000000000000000180000000001000010101","taken_at_timestamp":1764099561000000000,"total_size_bytes":7}]}"#;
        let listed = parse_list(printed).unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[1].size, "7 B");
        assert_eq!(listed[0].taken_at, "2025-11-25 19:39:20 UTC");
        assert!(parse_list(r#"{"snapshots":[]}"#).unwrap().is_empty());
    }

    #[test]
    fn status_json_gives_state() {
        let printed = "{\"id\":\"bkyz2-fmaaa-aaaaa-qaaaq-cai\",\"name\":\"chat\",\"status\":\"Stopped\",\"module_hash\":\"0xab\"}\n";
        let status = parse_status(printed).unwrap();
        assert_eq!(
            (status.status.as_str(), status.module_hash.as_deref()),
            ("stopped", Some("ab"))
        );
    }
}

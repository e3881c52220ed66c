//! What the lifecycle remembers between invocations, per backend and network: for each
//! snapshot taken, the module hash and the answer of its check query (for `verify`), and the
//! snapshot last restored onto each canister.

use std::{collections::BTreeMap, path::PathBuf};

use anyhow::{Context, Result};
use candid::Encode;
use serde::{Deserialize, Serialize};

use crate::backend::Network;
use crate::project;
use crate::query::Check;

#[derive(Default, Serialize, Deserialize)]
pub struct Records {
    /// Snapshot id (hex) → what the canister was when it was taken.
    #[serde(default)]
    pub taken: BTreeMap<String, Recorded>,
    /// Canister id → the snapshot last restored onto it.
    #[serde(default)]
    pub restored: BTreeMap<String, String>,
    /// Set id → the snapshots taken of several canisters together.
    #[serde(default)]
    pub sets: BTreeMap<String, SnapshotSet>,
    /// Backup directory → the snapshot its last `backup` run took, which the next replaces,
    /// so that scheduled backups hold one snapshot on the canister, not one a run.
    #[serde(default)]
    pub backups: BTreeMap<String, String>,
    /// Earlier versions recorded only the chat's messages, by snapshot id, and one restored
    /// id: read and carried into the fields above, never written.
    #[serde(default, skip_serializing)]
    dumps: BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing)]
    last_restored: Option<String>,
}

/// A canister as it was when a snapshot was taken.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Recorded {
    pub module_hash: Option<String>,
    /// The check query and its answer (Candid bytes, hex), when the canister has one.
    pub check: Option<(Check, String)>,
}

/// Snapshots of several canisters taken while all of them were stopped.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SnapshotSet {
    /// When it was taken, as `YYYY-MM-DD HH:MM:SS UTC`, and in nanoseconds since the epoch.
    pub taken_at: String,
    #[serde(default)]
    pub taken_at_ns: u64,
    pub members: Vec<Member>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Member {
    /// As the user named it: a name or an id.
    pub canister: String,
    pub snapshot_id: String,
}

fn path(scope: &str) -> PathBuf {
    project::state_dir().join(format!("records-{scope}.json"))
}

impl Records {
    /// The records' name for `backend` on `network`: a local network's keep the backend's
    /// name alone; mainnet's and a URL's are apart, so a local `start` never wipes them.
    pub fn scope(backend: &str, network: &Network) -> String {
        match network {
            Network::Local => backend.to_owned(),
            Network::Ic => format!("{backend}-ic"),
            Network::Url(url) => {
                let url: String = url
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect();
                format!("{backend}-{url}")
            }
        }
    }

    pub fn load(scope: &str) -> Result<Self> {
        let path = path(scope);
        let mut records: Self = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is damaged; delete it or run `cargo xtask start`",
                    path.display()
                )
            })?,
            Err(_) => Self::default(),
        };
        records.carry_over()?;
        Ok(records)
    }

    fn carry_over(&mut self) -> Result<()> {
        for (id, chat) in std::mem::take(&mut self.dumps) {
            let answer = project::hex(&Encode!(&chat)?);
            self.taken.entry(id).or_insert(Recorded {
                module_hash: None,
                check: Some((Check::chat(), answer)),
            });
        }
        if let Some(id) = self.last_restored.take()
            && let Ok(parsed) = id.parse::<crate::ids::SnapshotId>()
            && let Some(owner) = parsed.canister()
        {
            self.restored.entry(owner.to_text()).or_insert(id);
        }
        Ok(())
    }

    /// Forgets snapshot `id` (deleted or replaced), and any set it was part of.
    pub fn forget(&mut self, id: &str) {
        self.taken.remove(id);
        self.sets
            .retain(|_, set| set.members.iter().all(|m| m.snapshot_id != id));
    }

    /// Saves atomically, so an interrupted save leaves the previous records.
    pub fn save(&self, scope: &str) -> Result<()> {
        let path = path(scope);
        std::fs::create_dir_all(project::state_dir())?;
        let partial = path.with_extension("json.partial");
        std::fs::write(&partial, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&partial, &path).with_context(|| format!("cannot write {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candid::Decode;

    #[test]
    fn each_network_keeps_its_own_records() {
        assert_eq!(Records::scope("dfx", &Network::Local), "dfx");
        assert_eq!(Records::scope("dfx", &Network::Ic), "dfx-ic");
        let url = Network::Url("http://127.0.0.1:4943".into());
        assert_eq!(Records::scope("icp", &url), "icp-http___127_0_0_1_4943");
    }

    #[test]
    fn records_of_earlier_versions_are_carried_over() {
        let old = r#"{"dumps":{"000000000000000080000000001000010101":["Hi there!"]},"last_restored":"000000000000000080000000001000010101"}"#;
        let mut records: Records = serde_json::from_str(old).unwrap();
        records.carry_over().unwrap();
        let recorded = &records.taken["000000000000000080000000001000010101"];
        let (check, answer) = recorded.check.as_ref().unwrap();
        assert_eq!(check.to_string(), "dump ()");
        let messages = Decode!(&project::unhex(answer).unwrap(), Vec<String>).unwrap();
        assert_eq!(messages, ["Hi there!"]);
        assert_eq!(
            records.restored["bkyz2-fmaaa-aaaaa-qaaaq-cai"],
            "000000000000000080000000001000010101"
        );
        let saved = serde_json::to_string(&records).unwrap();
        assert!(
            !saved.contains("dumps") && !saved.contains("last_restored"),
            "{saved}"
        );
    }
}

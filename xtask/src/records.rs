//! What the lifecycle remembers between invocations, per backend and network: the chat as
//! it was when each snapshot was taken (for `verify`) and the snapshot last restored.

use std::{collections::BTreeMap, path::PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::backend::Network;
use crate::project;

#[derive(Default, Serialize, Deserialize)]
pub struct Records {
    /// Snapshot id (hex) → the chat's messages when it was taken.
    pub dumps: BTreeMap<String, Vec<String>>,
    pub last_restored: Option<String>,
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
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is damaged; delete it or run `cargo xtask start`",
                    path.display()
                )
            }),
            Err(_) => Ok(Self::default()),
        }
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

    #[test]
    fn each_network_keeps_its_own_records() {
        assert_eq!(Records::scope("dfx", &Network::Local), "dfx");
        assert_eq!(Records::scope("dfx", &Network::Ic), "dfx-ic");
        let url = Network::Url("http://127.0.0.1:4943".into());
        assert_eq!(Records::scope("icp", &url), "icp-http___127_0_0_1_4943");
    }
}

//! What the lifecycle remembers between invocations, per backend: the chat as it was when
//! each snapshot was taken (for `verify`) and the snapshot last restored.

use std::{collections::BTreeMap, path::PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::project;

#[derive(Default, Serialize, Deserialize)]
pub struct Records {
    /// Snapshot id (hex) → the chat's messages when it was taken.
    pub dumps: BTreeMap<String, Vec<String>>,
    pub last_restored: Option<String>,
}

fn path(backend: &str) -> PathBuf {
    project::state_dir().join(format!("records-{backend}.json"))
}

impl Records {
    pub fn load(backend: &str) -> Result<Self> {
        let path = path(backend);
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
    pub fn save(&self, backend: &str) -> Result<()> {
        let path = path(backend);
        std::fs::create_dir_all(project::state_dir())?;
        let partial = path.with_extension("json.partial");
        std::fs::write(&partial, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&partial, &path).with_context(|| format!("cannot write {}", path.display()))
    }
}

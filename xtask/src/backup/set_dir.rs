//! A set's backup on disk: one backup directory per member, side by side, and `set.json`
//! naming the set, its members' canisters and snapshots, and their directories.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::layout::write_atomically;

pub const SET_MANIFEST: &str = "set.json";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetManifest {
    pub set_id: String,
    pub taken_at: String,
    pub members: Vec<SetMemberDir>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetMemberDir {
    /// As the user named it when the set was taken: a name or an id.
    pub canister: String,
    pub snapshot_id: String,
    /// The member's backup, relative to the set's directory.
    pub dir: String,
}

impl SetManifest {
    /// The set in `dir`, if `dir` holds one.
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(SET_MANIFEST);
        if !path.is_file() {
            return Ok(None);
        }
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let set: Self = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is damaged", path.display()))?;
        for member in &set.members {
            let relative = Path::new(&member.dir);
            if relative.is_absolute() || relative.components().count() != 1 {
                bail!(
                    "{} names a member outside the set: {}",
                    path.display(),
                    member.dir
                );
            }
        }
        Ok(Some(set))
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        write_atomically(&dir.join(SET_MANIFEST), &serde_json::to_vec_pretty(self)?)
    }

    /// Where member `member`'s backup is.
    pub fn member_dir(dir: &Path, member: &SetMemberDir) -> PathBuf {
        dir.join(&member.dir)
    }
}

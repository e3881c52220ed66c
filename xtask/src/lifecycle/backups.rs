//! The steps of the backup commands that touch the canister: choosing a snapshot of its
//! own, sealing a download with a manifest, and carrying `verify`'s records over to an
//! uploaded copy.

use std::{collections::BTreeMap, path::Path};

use anyhow::{Result, bail};

use super::{Session, choose};
use crate::backend::{CanisterRef, SnapshotId, SnapshotInfo, utc};
use crate::backup::{
    layout::Layout,
    manifest::{Manifest, Origin},
};

impl Session {
    /// The canister's id and snapshot `id` (the newest when `None`), checked to be its own.
    pub fn resolve(&mut self, id: Option<&SnapshotId>) -> Result<(String, SnapshotInfo)> {
        let status = self.backend.status(&self.canister);
        self.show();
        let canister = status?.canister;
        if let Some(id) = id {
            check_owner(id, &canister, &self.canister)?;
        }
        let listed = self.backend.snapshot_list(&self.canister);
        self.show();
        let listed = listed?;
        let id = choose(&listed, id)?;
        let info = listed.into_iter().find(|s| s.id == id).expect("chosen");
        Ok((canister, info))
    }

    /// Writes the manifest of a finished download.
    pub fn seal(&mut self, dir: &Path, canister: &str, id: &SnapshotId) -> Result<Manifest> {
        let layout = Layout::new(dir);
        let metadata = layout.read_metadata()?;
        layout.check_sizes(&metadata)?;
        let (tool, version) = self.backend.tool_version()?;
        self.backend.ran();
        let tools = BTreeMap::from([
            (
                "cargo xtask".to_owned(),
                env!("CARGO_PKG_VERSION").to_owned(),
            ),
            (tool, version),
        ]);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos() as u64;
        let origin = Origin {
            canister_id: canister.to_owned(),
            snapshot_id: id.to_string(),
            taken_at: metadata.taken_at_timestamp,
            taken_at_utc: utc(metadata.taken_at_timestamp),
            downloaded_at_utc: utc(now),
            source: self.backend.describe(),
            tools,
        };
        Manifest::write(dir, origin)
    }

    /// The uploaded snapshot holds the chat recorded for the one it was downloaded from, if
    /// any, so that `verify` works after restoring it.
    pub fn remember_upload(
        &mut self,
        id: &SnapshotId,
        replaced: Option<&SnapshotId>,
        manifest: Option<&Manifest>,
    ) -> Result<()> {
        if let Some(replaced) = replaced {
            self.records.forget(&replaced.to_string());
        }
        let recorded = manifest.and_then(|m| self.records.taken.get(&m.origin.snapshot_id));
        if let Some(recorded) = recorded.cloned() {
            self.records.taken.insert(id.to_string(), recorded);
        }
        self.save()
    }

    /// Downloads snapshot `id` into a temporary directory, for reading.
    pub fn fetch(&mut self, id: &SnapshotId) -> Result<tempfile::TempDir> {
        self.resolve(Some(id))?;
        let dir = tempfile::tempdir()?;
        let downloaded = self
            .backend
            .snapshot_download(&self.canister, id, dir.path(), false);
        self.show();
        downloaded?;
        Ok(dir)
    }
}

/// A snapshot id names its canister; one of another canister is refused up front.
fn check_owner(id: &SnapshotId, canister: &str, named: &CanisterRef) -> Result<()> {
    match id.canister() {
        Some(owner) if owner.to_text() == canister => Ok(()),
        Some(owner) => bail!(
            "snapshot {id} belongs to canister {owner}, not to {named} ({canister}); `cargo xtask list` shows {named}'s snapshots"
        ),
        None => bail!("{id} is not a snapshot id: it names no canister"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_ids_of_other_canisters_are_refused() {
        let id: SnapshotId = "000000000000000080000000001000010101".parse().unwrap();
        let chat = CanisterRef::chat();
        assert!(check_owner(&id, "bkyz2-fmaaa-aaaaa-qaaaq-cai", &chat).is_ok());
        let error = check_owner(&id, "bd3sg-teaaa-aaaaa-qaaba-cai", &chat).unwrap_err();
        assert!(
            error.to_string().contains("belongs to canister bkyz2"),
            "{error}"
        );
    }
}

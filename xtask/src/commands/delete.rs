//! `cargo xtask delete`: one snapshot deleted, and its record.

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::{Context, Run};
use crate::backend::SnapshotId;

#[derive(Args)]
pub struct Delete {
    id: SnapshotId,
}

#[derive(Serialize)]
pub struct Deleted {
    pub deleted: SnapshotId,
}

impl Run for Delete {
    type Output = Deleted;

    fn run(self, cx: &mut Context) -> Result<Deleted> {
        let session = cx.session()?;
        let deleted = session.backend.snapshot_delete(&session.canister, &self.id);
        session.show();
        deleted?;
        session.records.forget(&self.id.to_string());
        session.save()?;
        session.say(format!("  deleted snapshot {}", self.id));
        Ok(Deleted { deleted: self.id })
    }
}

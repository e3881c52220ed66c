//! `cargo xtask list`: the canister's snapshots.

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::{Context, Run};
use crate::backend::SnapshotInfo;

#[derive(Args)]
pub struct List;

#[derive(Serialize)]
pub struct Listed {
    pub snapshots: Vec<SnapshotInfo>,
}

impl Run for List {
    type Output = Listed;

    fn run(self, cx: &mut Context) -> Result<Listed> {
        let session = cx.session()?;
        let listed = session.backend.snapshot_list(&session.canister);
        session.show();
        let snapshots = listed?;
        if snapshots.is_empty() {
            session.say("  no snapshots");
        }
        for s in &snapshots {
            session.say(format!("  {}: {}, taken at {}", s.id, s.size, s.taken_at));
        }
        Ok(Listed { snapshots })
    }
}

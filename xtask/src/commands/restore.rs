//! `cargo xtask restore`: stop, load a snapshot (the newest when none is named), start.

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::{Context, Run};
use crate::backend::SnapshotId;
use crate::lifecycle::{Session, choose};

#[derive(Args)]
pub struct Restore {
    pub id: Option<SnapshotId>,
}

#[derive(Serialize)]
pub struct Restored {
    pub snapshot_id: SnapshotId,
}

impl Run for Restore {
    type Output = Restored;

    fn run(self, cx: &mut Context) -> Result<Restored> {
        restore(cx.session()?, self.id.as_ref())
    }
}

pub fn restore(session: &mut Session, id: Option<&SnapshotId>) -> Result<Restored> {
    let listed = session.backend.snapshot_list(&session.canister);
    session.show();
    let id = choose(&listed?, id)?;
    session.while_stopped(|s| {
        let loaded = s.backend.snapshot_load(&s.canister, &id);
        s.show();
        loaded
    })?;
    session.say(format!("  restored snapshot {id}"));
    // `verify` without an id compares the canister with the snapshot it last got.
    if let Some(owner) = id.canister() {
        session
            .records
            .restored
            .insert(owner.to_text(), id.to_string());
        session.save()?;
    }
    Ok(Restored { snapshot_id: id })
}

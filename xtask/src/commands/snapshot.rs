//! `cargo xtask snapshot`: stop, take a snapshot, start; the chat is recorded as it was,
//! for `verify`.

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::{Context, Run};
use crate::backend::SnapshotId;
use crate::lifecycle::Session;

#[derive(Args)]
pub struct Snapshot {
    /// Replace this snapshot (the new one gets a new id).
    #[arg(long)]
    pub replace: Option<SnapshotId>,
}

#[derive(Serialize)]
pub struct Taken {
    pub snapshot_id: SnapshotId,
    pub messages: usize,
}

impl Run for Snapshot {
    type Output = Taken;

    fn run(self, cx: &mut Context) -> Result<Taken> {
        take(cx.session()?, self.replace.as_ref())
    }
}

/// stop → create → start, then the record of what the chat held.
pub fn take(session: &mut Session, replace: Option<&SnapshotId>) -> Result<Taken> {
    let chat = session.dump()?;
    let id = session.while_stopped(|s| {
        let id = s.backend.snapshot_create(replace);
        s.show();
        id
    })?;
    let messages = chat.len();
    session.remember(&id, replace, chat)?;
    Ok(Taken {
        snapshot_id: id,
        messages,
    })
}

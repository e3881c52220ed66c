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
    /// The chat's messages, recorded for `verify`; none for another canister.
    pub messages: Option<usize>,
}

impl Run for Snapshot {
    type Output = Taken;

    fn run(self, cx: &mut Context) -> Result<Taken> {
        take(cx.session()?, self.replace.as_ref())
    }
}

/// stop → create → start, then the record of what the chat held.
pub fn take(session: &mut Session, replace: Option<&SnapshotId>) -> Result<Taken> {
    let chat = match session.canister.is_chat() {
        true => Some(session.dump()?),
        false => None,
    };
    let id = session.while_stopped(|s| {
        let id = s.backend.snapshot_create(&s.canister, replace);
        s.show();
        id
    })?;
    let messages = chat.as_ref().map(Vec::len);
    match chat {
        Some(chat) => session.remember(&id, replace, chat)?,
        None => session.say(format!("  snapshot {id}")),
    }
    Ok(Taken {
        snapshot_id: id,
        messages,
    })
}

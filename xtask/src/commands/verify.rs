//! `cargo xtask verify`: the chat compared with the one recorded when a snapshot (default:
//! the one last restored) was taken; a difference exits 3.

use anyhow::{Result, anyhow, bail};
use clap::Args;
use serde::Serialize;

use super::{Context, Run};
use crate::backend::SnapshotId;
use crate::lifecycle::{Mismatch, Session, messages};

#[derive(Args)]
pub struct Verify {
    id: Option<SnapshotId>,
}

#[derive(Serialize)]
pub struct Verified {
    pub verified: bool,
    pub snapshot_id: String,
    pub messages: usize,
}

impl Run for Verify {
    type Output = Verified;

    fn run(self, cx: &mut Context) -> Result<Verified> {
        verify(cx.session()?, self.id.as_ref())
    }
}

pub fn verify(session: &mut Session, id: Option<&SnapshotId>) -> Result<Verified> {
    if !session.canister.is_chat() {
        bail!(
            "verify compares the chat's messages (`dump`) with those recorded at the snapshot, and {} is not the chat; its restore is checked by `cargo xtask status` (the module hash)",
            session.canister
        );
    }
    let key = match id {
        Some(id) => id.to_string(),
        None => session.records.last_restored.clone().ok_or_else(|| {
            anyhow!(
                "nothing to verify against: restore a snapshot first, or name one with `verify ID`"
            )
        })?,
    };
    let Some(recorded) = session.records.dumps.get(&key).cloned() else {
        bail!(
            "no chat was recorded for snapshot {key}: only snapshots taken with `cargo xtask snapshot` can be verified"
        );
    };
    let now = session.dump()?;
    if now != recorded {
        return Err(Mismatch(format!(
            "the chat does not match snapshot {key}: it has {} messages, the snapshot had {}",
            now.len(),
            recorded.len()
        ))
        .into());
    }
    session.say(format!(
        "  verified: the chat equals snapshot {key} ({})",
        messages(now.len())
    ));
    Ok(Verified {
        verified: true,
        snapshot_id: key,
        messages: now.len(),
    })
}

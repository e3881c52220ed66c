//! `cargo xtask guard`: a risky update call under a safety net — snapshot first, then the
//! call, then the invariant (the message count may drop by at most `--allow-drop`); when it
//! is broken, the snapshot is restored and verified.

use anyhow::Result;
use candid::IDLValue;
use clap::Args;
use serde::Serialize;

use super::restore::restore;
use super::snapshot::take;
use super::verify::verify;
use super::{Context, Run};
use crate::backend::SnapshotId;
use crate::lifecycle::messages;

#[derive(Args)]
pub struct Guard {
    method: String,
    args: Vec<String>,
    /// How many messages the call may remove without a restore.
    #[arg(long, default_value_t = 0)]
    allow_drop: u64,
}

/// What the call did to the chat, and whether the snapshot was restored.
#[derive(Serialize)]
pub struct Guarded {
    pub method: String,
    pub before: u64,
    pub after: u64,
    pub restored: bool,
    pub snapshot_id: SnapshotId,
}

impl Run for Guard {
    type Output = Guarded;

    fn run(self, cx: &mut Context) -> Result<Guarded> {
        let session = cx.session()?;
        let (method, allow_drop) = (self.method, self.allow_drop);
        let before = session.len()?;
        session.say(format!(
            "  guard: the chat holds {}; taking a snapshot first",
            messages(before as usize)
        ));
        let id = take(session, None)?.snapshot_id;
        let values: Vec<IDLValue> = self.args.into_iter().map(IDLValue::Text).collect();
        let called = session.call(&method, &values, false);
        let after = session.len()?;
        let broken = after + allow_drop < before;
        if broken {
            session.say(format!(
                "  guard: {method} dropped the chat from {} to {} (allowed: {allow_drop}); restoring snapshot {id}",
                messages(before as usize),
                messages(after as usize)
            ));
            restore(session, Some(&id))?;
            verify(session, Some(&id))?;
        } else {
            called?;
            session.say(format!(
                "  guard: {method} kept the invariant ({before} → {after}); snapshot {id} stays as a backup"
            ));
        }
        Ok(Guarded {
            method,
            before,
            after,
            restored: broken,
            snapshot_id: id,
        })
    }
}

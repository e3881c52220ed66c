//! `cargo xtask snapshot`: stop, take a snapshot, start. What the canister was is recorded
//! first, for `verify`: its module hash and the answer of its check query (`--check`; for
//! the chat, `dump`).

use anyhow::Result;
use candid::Decode;
use clap::Args;
use serde::Serialize;

use super::{Context, Run};
use crate::backend::{SnapshotId, Status};
use crate::lifecycle::{Session, check_headroom};
use crate::project;
use crate::query::Check;
use crate::records::Recorded;

#[derive(Args)]
pub struct Snapshot {
    /// Replace this snapshot (the new one gets a new id).
    #[arg(long)]
    pub replace: Option<SnapshotId>,
    /// A query whose answer `verify` compares after a restore, as 'METHOD ARGS' in Candid
    /// text [default for the chat: 'dump ()'].
    #[arg(long, value_name = "'METHOD ARGS'")]
    pub check: Option<Check>,
    /// Take it even if the canister cannot afford it (its freezing limit or memory
    /// allocation, checked first).
    #[arg(long)]
    pub force: bool,
    /// Take it without stopping the canister.
    #[arg(long)]
    pub running: bool,
}

impl Snapshot {
    /// A plain snapshot: stopped, checked for cycles, the chat's check.
    pub fn plain() -> Self {
        Self {
            replace: None,
            check: None,
            force: false,
            running: false,
        }
    }
}

#[derive(Serialize)]
pub struct Taken {
    pub snapshot_id: SnapshotId,
    pub module_hash: Option<String>,
    /// The check query recorded, if any.
    pub check: Option<String>,
    /// The chat's messages, when the check is the chat's `dump`.
    pub messages: Option<usize>,
}

impl Run for Snapshot {
    type Output = Taken;

    fn run(self, cx: &mut Context) -> Result<Taken> {
        take(cx.session()?, self)
    }
}

/// Records the canister, checks it can afford the snapshot, then stop → create → start.
pub fn take(session: &mut Session, options: Snapshot) -> Result<Taken> {
    let replace = options.replace.as_ref();
    let check = options
        .check
        .or_else(|| session.canister.is_chat().then(Check::chat));
    let status = session.backend.status(&session.canister);
    session.show();
    let status = status?;
    if !options.force {
        afford(session, &status, replace)?;
    }
    let answer = match &check {
        Some(check) => Some(session.ask(check)?),
        None => None,
    };
    let create = |s: &mut Session| {
        let id = s.backend.snapshot_create(&s.canister, replace);
        s.show();
        id
    };
    let id = if options.running {
        session.say(
            "  taking the snapshot while the canister runs: calls it has made and not yet had answered (open call contexts) are caught half-done, and their replies may come to the restored canister",
        );
        create(session)?
    } else {
        session.while_stopped(create)?
    };
    let module_hash = status.module_hash;
    let messages = messages_in(check.as_ref(), answer.as_deref());
    let recorded = Recorded {
        module_hash: module_hash.clone(),
        check: check.clone().zip(answer.map(|a| project::hex(&a))),
    };
    session.remember(&id, replace, recorded)?;
    Ok(Taken {
        snapshot_id: id,
        module_hash,
        check: check.map(|c| c.to_string()),
        messages,
    })
}

/// Refuses a snapshot the canister cannot afford. Its size is estimated as the canister's
/// memory less the snapshots it holds (which `canister_status` counts in), less the one it
/// replaces.
fn afford(session: &mut Session, status: &Status, replace: Option<&SnapshotId>) -> Result<()> {
    let Some(budget) = &status.budget else {
        session.say("  (the tool reports no balance or memory: the cycles check is skipped)");
        return Ok(());
    };
    let listed = session.backend.snapshot_list(&session.canister);
    session.show();
    let listed = listed?;
    let held: u64 = listed.iter().map(|s| s.bytes).sum();
    let replaced: u64 = listed
        .iter()
        .filter(|s| Some(&s.id) == replace)
        .map(|s| s.bytes)
        .sum();
    let bytes = budget
        .memory_size
        .saturating_sub(held)
        .saturating_sub(replaced);
    check_headroom(&session.canister, budget, bytes)
}

/// How many messages the chat's `dump` answered.
pub fn messages_in(check: Option<&Check>, answer: Option<&[u8]>) -> Option<usize> {
    if check? != &Check::chat() {
        return None;
    }
    Decode!(answer?, Vec<String>).ok().map(|m| m.len())
}

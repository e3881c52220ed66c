//! `cargo xtask snapshot`: stop, take a snapshot, start. What the canister was is recorded
//! first, for `verify`: its module hash and the answer of its check query (`--check`; for
//! the chat, `dump`).

use anyhow::Result;
use candid::Decode;
use clap::Args;
use serde::Serialize;

use super::{Context, Run};
use crate::backend::SnapshotId;
use crate::lifecycle::Session;
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
        take(cx.session()?, self.replace.as_ref(), self.check)
    }
}

/// Records the canister, then stop → create → start.
pub fn take(
    session: &mut Session,
    replace: Option<&SnapshotId>,
    check: Option<Check>,
) -> Result<Taken> {
    let check = check.or_else(|| session.canister.is_chat().then(Check::chat));
    let status = session.backend.status(&session.canister);
    session.show();
    let module_hash = status?.module_hash;
    let answer = match &check {
        Some(check) => Some(session.ask(check)?),
        None => None,
    };
    let id = session.while_stopped(|s| {
        let id = s.backend.snapshot_create(&s.canister, replace);
        s.show();
        id
    })?;
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

/// How many messages the chat's `dump` answered.
pub fn messages_in(check: Option<&Check>, answer: Option<&[u8]>) -> Option<usize> {
    if check? != &Check::chat() {
        return None;
    }
    Decode!(answer?, Vec<String>).ok().map(|m| m.len())
}

//! `cargo xtask snapshot`: stop, take a snapshot, start. What the canister was is recorded
//! first, for `verify`: its module hash and the answer of its check query (`--check`; for
//! the chat, `dump`).

use anyhow::{Result, anyhow, bail};
use candid::Decode;
use clap::Args;
use serde::Serialize;

use super::{Context, Run};
use crate::backend::{CanisterRef, SnapshotId, Status};
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

/// A set of snapshots, taken together.
#[derive(Serialize)]
pub struct TakenSet {
    pub set_id: String,
    pub taken_at: String,
    pub members: Vec<SetMember>,
}

#[derive(Serialize)]
pub struct SetMember {
    pub canister: String,
    pub snapshot_id: String,
}

#[derive(Serialize)]
#[serde(untagged)]
pub enum Taking {
    One(Taken),
    Set(TakenSet),
}

impl Run for Snapshot {
    type Output = Taking;

    fn run(self, cx: &mut Context) -> Result<Taking> {
        let canisters = cx.canisters()?;
        if canisters.len() == 1 {
            return take(cx.session()?, self).map(Taking::One);
        }
        if self.replace.is_some() || self.check.is_some() || self.running {
            bail!(
                "a set is taken with every member stopped and each member's own check (the chat's `dump`); --replace, --check and --running are for one canister"
            );
        }
        take_set(cx.set_session()?, &canisters, self.force).map(Taking::Set)
    }
}

/// Records the canister, checks it can afford the snapshot, then stop → create → start.
pub fn take(session: &mut Session, options: Snapshot) -> Result<Taken> {
    let replace = options.replace.as_ref();
    let canister = session.canister.clone();
    let (recorded, check) = record(session, &canister, options.check, options.force, replace)?;
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
    let answer = recorded.check.as_ref().and_then(|(_, a)| project::unhex(a));
    let taken = Taken {
        snapshot_id: id.clone(),
        module_hash: recorded.module_hash.clone(),
        check: check.as_ref().map(ToString::to_string),
        messages: messages_in(check.as_ref(), answer.as_deref()),
    };
    session.remember(&id, replace, recorded)?;
    Ok(taken)
}

/// What `canister` is before its snapshot: its module hash and the answer of its check (the
/// chat's `dump` unless another is given), once it is known to afford the snapshot.
fn record(
    session: &mut Session,
    canister: &CanisterRef,
    check: Option<Check>,
    force: bool,
    replace: Option<&SnapshotId>,
) -> Result<(Recorded, Option<Check>)> {
    let check = check.or_else(|| canister.is_chat().then(Check::chat));
    let status = session.backend.status(canister);
    session.show();
    let status = status?;
    if !force {
        afford(session, canister, &status, replace)?;
    }
    let answer = match &check {
        Some(check) => Some(project::hex(&session.ask_of(canister, check)?)),
        None => None,
    };
    let recorded = Recorded {
        module_hash: status.module_hash,
        check: check.clone().zip(answer),
    };
    Ok((recorded, check))
}

/// Every canister of `canisters` recorded and checked, then snapshot together.
fn take_set(session: &mut Session, canisters: &[CanisterRef], force: bool) -> Result<TakenSet> {
    let mut members = Vec::new();
    for canister in canisters {
        let (recorded, _) = record(session, canister, None, force, None)
            .map_err(|e| anyhow!("checking {canister} failed: {e:#}; nothing was stopped"))?;
        members.push((canister.clone(), recorded));
    }
    let (set_id, set) = session.take_set(&members)?;
    session.say(format!(
        "  set {set_id}: {}",
        set.members
            .iter()
            .map(|m| format!("{} {}", m.canister, m.snapshot_id))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(TakenSet {
        set_id,
        taken_at: set.taken_at,
        members: set
            .members
            .into_iter()
            .map(|m| SetMember {
                canister: m.canister,
                snapshot_id: m.snapshot_id,
            })
            .collect(),
    })
}

/// Refuses a snapshot the canister cannot afford. Its size is estimated as the canister's
/// memory less the snapshots it holds (which `canister_status` counts in), less the one it
/// replaces.
fn afford(
    session: &mut Session,
    canister: &CanisterRef,
    status: &Status,
    replace: Option<&SnapshotId>,
) -> Result<()> {
    let Some(budget) = &status.budget else {
        session.say("  (the tool reports no balance or memory: the cycles check is skipped)");
        return Ok(());
    };
    let listed = session.backend.snapshot_list(canister);
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
    check_headroom(canister, budget, bytes)
}

/// How many messages the chat's `dump` answered.
pub fn messages_in(check: Option<&Check>, answer: Option<&[u8]>) -> Option<usize> {
    if check? != &Check::chat() {
        return None;
    }
    Decode!(answer?, Vec<String>).ok().map(|m| m.len())
}

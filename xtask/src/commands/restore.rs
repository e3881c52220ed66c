//! `cargo xtask restore`: stop, load a snapshot (the newest when none is named), start; a
//! set (`--set ID`, or the newest set of the canisters named) all stopped, each loaded, all
//! started.

use anyhow::{Result, bail};
use clap::Args;
use serde::Serialize;

use super::{Context, Run};
use crate::backend::SnapshotId;
use crate::lifecycle::{Session, choose};

#[derive(Args)]
pub struct Restore {
    #[arg(conflicts_with = "set")]
    pub id: Option<SnapshotId>,
    /// Restore this set of snapshots (from `snapshot --canister A --canister B`).
    #[arg(long, value_name = "SET")]
    pub set: Option<String>,
}

#[derive(Serialize)]
pub struct Restored {
    pub snapshot_id: SnapshotId,
}

#[derive(Serialize)]
pub struct RestoredSet {
    pub set_id: String,
    pub snapshots: Vec<String>,
}

#[derive(Serialize)]
#[serde(untagged)]
pub enum Restoring {
    One(Restored),
    Set(RestoredSet),
}

impl Run for Restore {
    type Output = Restoring;

    fn run(self, cx: &mut Context) -> Result<Restoring> {
        let canisters = cx.canisters()?;
        if self.set.is_none() && canisters.len() == 1 {
            return restore(cx.session()?, self.id.as_ref()).map(Restoring::One);
        }
        let canisters: Vec<String> = canisters.iter().map(ToString::to_string).collect();
        let session = cx.set_session()?;
        let set_id = match self.set {
            Some(id) => id,
            None => newest_set(session, &canisters)?,
        };
        let Some(set) = session.records.sets.get(&set_id).cloned() else {
            bail!("no set {set_id}: `cargo xtask list` shows the sets taken");
        };
        session.restore_set(&set)?;
        session.say(format!("  restored set {set_id}"));
        Ok(Restoring::Set(RestoredSet {
            set_id,
            snapshots: set.members.into_iter().map(|m| m.snapshot_id).collect(),
        }))
    }
}

/// The newest set whose members are exactly `canisters`.
fn newest_set(session: &Session, canisters: &[String]) -> Result<String> {
    let mut wanted = canisters.to_vec();
    wanted.sort();
    session
        .records
        .sets
        .iter()
        .filter(|(_, set)| {
            let mut members: Vec<String> = set.members.iter().map(|m| m.canister.clone()).collect();
            members.sort();
            members == wanted
        })
        .max_by_key(|(_, set)| set.taken_at_ns)
        .map(|(id, _)| id.clone())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no set of {} was taken: take one with `cargo xtask snapshot` and the same --canister options",
                canisters.join(", ")
            )
        })
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

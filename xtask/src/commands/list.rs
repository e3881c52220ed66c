//! `cargo xtask list`: the snapshots of the canisters named, and the sets holding them.

use std::collections::BTreeMap;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::{Context, Run};
use crate::backend::SnapshotInfo;
use crate::records::SnapshotSet;

#[derive(Args)]
pub struct List;

#[derive(Serialize)]
pub struct Listed {
    /// The snapshots of the canister (of the first, when several are named).
    pub snapshots: Vec<SnapshotInfo>,
    /// The sets taken that hold any of the canisters named.
    pub sets: BTreeMap<String, SnapshotSet>,
}

impl Run for List {
    type Output = Listed;

    fn run(self, cx: &mut Context) -> Result<Listed> {
        let canisters = cx.canisters()?;
        let names: Vec<String> = canisters.iter().map(ToString::to_string).collect();
        let session = cx.set_session()?;
        let mut snapshots = Vec::new();
        for canister in &canisters {
            let listed = session.backend.snapshot_list(canister);
            session.show();
            let listed = listed?;
            if listed.is_empty() {
                session.say(format!("  {canister}: no snapshots"));
            }
            for s in &listed {
                session.say(format!("  {}: {}, taken at {}", s.id, s.size, s.taken_at));
            }
            if snapshots.is_empty() {
                snapshots = listed;
            }
        }
        let sets: BTreeMap<String, SnapshotSet> = session
            .records
            .sets
            .iter()
            .filter(|(_, set)| set.members.iter().any(|m| names.contains(&m.canister)))
            .map(|(id, set)| (id.clone(), set.clone()))
            .collect();
        for (id, set) in &sets {
            let members: Vec<&str> = set.members.iter().map(|m| m.canister.as_str()).collect();
            session.say(format!(
                "  set {id}: {}, taken at {}",
                members.join(" + "),
                set.taken_at
            ));
        }
        Ok(Listed { snapshots, sets })
    }
}

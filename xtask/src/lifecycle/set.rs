//! Sets of canisters captured together: every member is checked and recorded, all are
//! stopped, each is snapshot, all are started again, and the set is recorded under one id —
//! or, when a step fails, the snapshots this set made are deleted, every member is left
//! running, and the error names the member and the step. A set is restored the same way:
//! all stopped, each loaded, all started.

use anyhow::{Result, anyhow};
use sha2::{Digest, Sha256};

use super::Session;
use crate::backend::{CanisterRef, SnapshotId};
use crate::project;
use crate::records::{Member, Recorded, SnapshotSet};

/// A member's step that failed, named for the user.
fn failed(step: &str, member: &CanisterRef, error: anyhow::Error) -> anyhow::Error {
    anyhow!("{step} {member} failed: {error:#}")
}

impl Session {
    /// Takes a snapshot of every canister in `members` while all of them are stopped; each
    /// member's record (module hash, check answer) was taken by `record` beforehand.
    pub fn take_set(
        &mut self,
        members: &[(CanisterRef, Recorded)],
    ) -> Result<(String, SnapshotSet)> {
        let canisters: Vec<CanisterRef> = members.iter().map(|(c, _)| c.clone()).collect();
        let ids = crate::interrupt::critical(|| {
            self.all_stopped(&canisters, |s| {
                let mut taken: Vec<SnapshotId> = Vec::new();
                for canister in &canisters {
                    let id = s.backend.snapshot_create(canister, None);
                    s.show();
                    match id {
                        Ok(id) => taken.push(id),
                        Err(error) => {
                            s.undo(&canisters, &taken);
                            return Err(failed("snapshotting", canister, error));
                        }
                    }
                }
                Ok(taken)
            })
        })?;
        let now = unix_now();
        let mut set = SnapshotSet {
            taken_at: crate::backend::utc(now),
            taken_at_ns: now,
            members: Vec::new(),
        };
        for ((canister, recorded), id) in members.iter().zip(&ids) {
            self.records.taken.insert(id.to_string(), recorded.clone());
            set.members.push(Member {
                canister: canister.to_string(),
                snapshot_id: id.to_string(),
            });
        }
        let set_id = self.record_set(set.clone(), &ids)?;
        Ok((set_id, set))
    }

    /// Records `set`, whose members hold snapshots `ids`; returns its id.
    pub fn record_set(&mut self, set: SnapshotSet, ids: &[SnapshotId]) -> Result<String> {
        let set_id = set_id(ids);
        self.records.sets.insert(set_id.clone(), set);
        self.save()?;
        Ok(set_id)
    }

    /// Loads every member's snapshot of `set` while all of them are stopped.
    pub fn restore_set(&mut self, set: &SnapshotSet) -> Result<()> {
        let members: Vec<(CanisterRef, SnapshotId)> = set
            .members
            .iter()
            .map(|m| Ok((m.canister.parse()?, m.snapshot_id.parse()?)))
            .collect::<Result<_>>()?;
        let canisters: Vec<CanisterRef> = members.iter().map(|(c, _)| c.clone()).collect();
        crate::interrupt::critical(|| {
            self.all_stopped(&canisters, |s| {
                for (canister, id) in &members {
                    let loaded = s.backend.snapshot_load(canister, id);
                    s.show();
                    loaded.map_err(|e| failed("loading the snapshot into", canister, e))?;
                }
                Ok(())
            })
        })?;
        for (_, id) in &members {
            if let Some(owner) = id.canister() {
                self.records
                    .restored
                    .insert(owner.to_text(), id.to_string());
            }
        }
        self.save()
    }

    /// Stops every canister of `canisters`, runs `f`, and starts every one it stopped,
    /// whatever happened; the error says which member failed at which step.
    fn all_stopped<T>(
        &mut self,
        canisters: &[CanisterRef],
        f: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        let mut stopped = Vec::new();
        let mut result = Ok(());
        for canister in canisters {
            let stop = self.backend.stop_canister(canister);
            self.show();
            match stop {
                Ok(()) => stopped.push(canister.clone()),
                Err(error) => {
                    result = Err(failed("stopping", canister, error));
                    break;
                }
            }
        }
        let result = result.and_then(|()| f(self));
        let mut not_started = Vec::new();
        for canister in &stopped {
            let start = self.backend.start_canister(canister);
            self.show();
            if let Err(error) = start {
                not_started.push(format!("{canister} ({error:#})"));
            }
        }
        match (result, not_started.is_empty()) {
            (Ok(value), true) => Ok(value),
            (Err(error), true) => Err(anyhow!(
                "{error}; every canister of the set was started again, and no set was recorded"
            )),
            (result, false) => Err(anyhow!(
                "{}starting {} again failed: start them before using them",
                result.err().map(|e| format!("{e:#}; ")).unwrap_or_default(),
                not_started.join(", ")
            )),
        }
    }

    /// Deletes the snapshots a set made before one of its members failed.
    fn undo(&mut self, canisters: &[CanisterRef], taken: &[SnapshotId]) {
        for (canister, id) in canisters.iter().zip(taken) {
            let _ = self.backend.snapshot_delete(canister, id);
            self.show();
        }
    }
}

/// A set's id: `set-` and the start of the hash of its members' snapshot ids.
fn set_id(ids: &[SnapshotId]) -> String {
    let mut hash = Sha256::new();
    for id in ids {
        hash.update(&id.0);
    }
    format!("set-{}", &project::hex(&hash.finalize())[..12])
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

//! `cargo xtask verify`: the canister compared with what was recorded when a snapshot
//! (default: the one last restored onto it) was taken — its module hash, and the answer of
//! its check query (the chat's: its messages); a difference exits 3.

use anyhow::{Result, anyhow};
use clap::Args;
use serde::Serialize;

use super::snapshot::messages_in;
use super::{Context, Run};
use crate::backend::SnapshotId;
use crate::lifecycle::{Mismatch, Session, messages};
use crate::project;
use crate::query::Check;
use crate::records::Recorded;

#[derive(Args)]
pub struct Verify {
    #[arg(conflicts_with = "set")]
    id: Option<SnapshotId>,
    /// Verify every member of this set against its own snapshot.
    #[arg(long, value_name = "SET")]
    set: Option<String>,
}

#[derive(Serialize)]
#[serde(untagged)]
pub enum Verifying {
    One(Verified),
    Set {
        set_id: String,
        members: Vec<Verified>,
    },
}

#[derive(Serialize)]
pub struct Verified {
    pub verified: bool,
    pub snapshot_id: String,
    /// Whether the module hash was compared (it was recorded).
    pub module_hash: bool,
    /// The check query compared, if one was recorded.
    pub check: Option<String>,
    /// The chat's messages, when the check is the chat's `dump`.
    pub messages: Option<usize>,
}

impl Run for Verify {
    type Output = Verifying;

    fn run(self, cx: &mut Context) -> Result<Verifying> {
        let Some(set_id) = self.set else {
            return verify(cx.session()?, self.id.as_ref()).map(Verifying::One);
        };
        let session = cx.set_session()?;
        let Some(set) = session.records.sets.get(&set_id).cloned() else {
            return Err(anyhow!(
                "no set {set_id}: `cargo xtask list` shows the sets taken"
            ));
        };
        let named = session.canister.clone();
        let mut members = Vec::new();
        for member in &set.members {
            session.canister = member.canister.parse()?;
            let verified = verify(session, Some(&member.snapshot_id.parse()?));
            session.canister = named.clone();
            members.push(verified?);
        }
        Ok(Verifying::Set { set_id, members })
    }
}

pub fn verify(session: &mut Session, id: Option<&SnapshotId>) -> Result<Verified> {
    let key = match id {
        Some(id) => id.to_string(),
        None => last_restored(session)?,
    };
    let Some(recorded) = session.records.taken.get(&key).cloned() else {
        return Err(anyhow!(
            "nothing was recorded for snapshot {key}: only snapshots taken with `cargo xtask snapshot` can be verified"
        ));
    };
    if let Some(hash) = &recorded.module_hash {
        compare_module(session, &key, hash)?;
    }
    let messages = match &recorded.check {
        Some((check, answer)) => compare_answer(session, &key, check, answer)?,
        None => None,
    };
    say_verified(session, &key, &recorded, messages);
    Ok(Verified {
        verified: true,
        snapshot_id: key,
        module_hash: recorded.module_hash.is_some(),
        check: recorded.check.map(|(c, _)| c.to_string()),
        messages,
    })
}

/// The snapshot last restored onto the canister.
fn last_restored(session: &mut Session) -> Result<String> {
    let status = session.backend.status(&session.canister);
    session.show();
    let canister = status?.canister;
    session
        .records
        .restored
        .get(&canister)
        .cloned()
        .ok_or_else(|| {
            anyhow!(
                "nothing to verify against: restore a snapshot first, or name one with `verify ID`"
            )
        })
}

fn compare_module(session: &mut Session, key: &str, recorded: &str) -> Result<()> {
    let status = session.backend.status(&session.canister);
    session.show();
    match status?.module_hash {
        Some(now) if now == recorded => Ok(()),
        now => Err(Mismatch(format!(
            "{} does not match snapshot {key}: its module is {}, the snapshot's was {recorded}",
            session.canister,
            now.as_deref().unwrap_or("none")
        ))
        .into()),
    }
}

/// Asks the check query again; the chat's messages when it is the chat's `dump`.
fn compare_answer(
    session: &mut Session,
    key: &str,
    check: &Check,
    recorded: &str,
) -> Result<Option<usize>> {
    let now = session.ask(check)?;
    let then = project::unhex(recorded).unwrap_or_default();
    let counts = (
        messages_in(Some(check), Some(&now)),
        messages_in(Some(check), Some(&then)),
    );
    if now == then {
        return Ok(counts.0);
    }
    let error = match counts {
        (Some(now), Some(then)) => format!(
            "the chat does not match snapshot {key}: it has {now} messages, the snapshot had {then}"
        ),
        _ => format!(
            "{} does not match snapshot {key}: `{check}` now answers {}, and answered {} then",
            session.canister,
            shown(&now),
            shown(&then)
        ),
    };
    Err(Mismatch(error).into())
}

fn shown(answer: &[u8]) -> String {
    candid::IDLArgs::from_bytes(answer).map_or_else(|_| project::hex(answer), |a| a.to_string())
}

fn say_verified(session: &Session, key: &str, recorded: &Recorded, count: Option<usize>) {
    let line = match (count, &recorded.check) {
        (Some(n), _) => format!("the chat equals snapshot {key} ({})", messages(n)),
        (None, Some((check, _))) => format!(
            "{} equals snapshot {key} (`{check}` answers as it did{})",
            session.canister,
            if recorded.module_hash.is_some() {
                ", same module"
            } else {
                ""
            }
        ),
        (None, None) => format!("{} runs the module of snapshot {key}", session.canister),
    };
    session.say(format!("  verified: {line}"));
}

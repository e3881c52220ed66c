//! `cargo xtask verify`: the canister compared with what was recorded when a snapshot
//! (default: the one last restored onto it) was taken — its module hash, and the answer of
//! its check query (the chat's: its messages); a difference exits 3.

use anyhow::{Result, anyhow};
use clap::Args;
use serde::Serialize;

use super::snapshot::messages_in;
use super::{Context, Run};
use crate::backend::SnapshotId;
use crate::backup::{
    contents::changed_pages,
    layout::{Blob, Layout},
};
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
    /// Whether the heap and stable memory were compared byte for byte (the embedded
    /// backend, which reads them for nothing).
    pub memories: bool,
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
    let memories = session.backend.name() == "embedded" && compare_memories(session, &key)?;
    say_verified(session, &key, &recorded, messages, memories);
    Ok(Verified {
        verified: true,
        snapshot_id: key,
        module_hash: recorded.module_hash.is_some(),
        memories,
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

/// Compares the canister's heap and stable memory with snapshot `key`'s, byte for byte:
/// both are read through a snapshot (a temporary one of the canister as it runs now, deleted
/// afterwards); false when no temporary snapshot could be taken (the canister has ten).
fn compare_memories(session: &mut Session, key: &str) -> Result<bool> {
    let canister = session.canister.clone();
    let recorded: SnapshotId = key.parse()?;
    let now = session.backend.snapshot_create(&canister, None);
    session.show();
    let Ok(now) = now else {
        session.say("  (memories not compared: no room for a temporary snapshot)");
        return Ok(false);
    };
    let compared = differing_memories(session, &recorded, &now);
    let deleted = session.backend.snapshot_delete(&canister, &now);
    session.show();
    deleted?;
    let differing = compared?;
    if differing.is_empty() {
        return Ok(true);
    }
    Err(Mismatch(format!(
        "{canister} does not match snapshot {key}: its {}",
        differing.join("; its ")
    ))
    .into())
}

/// The memories of snapshots `a` and `b` that differ, with the pages that do.
fn differing_memories(
    session: &mut Session,
    a: &SnapshotId,
    b: &SnapshotId,
) -> Result<Vec<String>> {
    let canister = session.canister.clone();
    let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    for (id, dir) in [(a, &dir_a), (b, &dir_b)] {
        let downloaded = session
            .backend
            .snapshot_download(&canister, id, dir.path(), false);
        session.show();
        downloaded?;
    }
    let mut differing = Vec::new();
    for (blob, name) in [(Blob::Heap, "heap"), (Blob::Stable, "stable memory")] {
        let pages = changed_pages(
            &Layout::new(dir_a.path()).blob(blob),
            &Layout::new(dir_b.path()).blob(blob),
        )?;
        if let (Some(first), Some(last)) = (pages.first(), pages.last()) {
            differing.push(format!(
                "{name} differs in {} range(s) of pages, {} to {}",
                pages.len(),
                first.0,
                last.1
            ));
        }
    }
    Ok(differing)
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

fn say_verified(
    session: &Session,
    key: &str,
    recorded: &Recorded,
    count: Option<usize>,
    memories: bool,
) {
    let bytes = if memories {
        "; heap and stable memory byte for byte"
    } else {
        ""
    };
    let module = if recorded.module_hash.is_some() {
        ", same module"
    } else {
        ""
    };
    let canister = &session.canister;
    let line = match (count, &recorded.check) {
        (Some(n), _) => format!("the chat equals snapshot {key} ({}{bytes})", messages(n)),
        (None, Some((check, _))) => {
            format!("{canister} equals snapshot {key} (`{check}` answers as it did{module}{bytes})")
        }
        (None, None) => format!("{canister} runs the module of snapshot {key}{bytes}"),
    };
    session.say(format!("  verified: {line}"));
}

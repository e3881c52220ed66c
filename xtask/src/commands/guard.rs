//! `cargo xtask guard`: a risky update call under a safety net — snapshot first, then the
//! call, then the invariant; when it is broken, the snapshot is restored and verified. The
//! invariant is the check query's answer (`--check`), unchanged; for the chat without one,
//! its message count, which may drop by at most `--allow-drop`.

use anyhow::{Result, bail};
use candid::IDLValue;
use clap::Args;
use serde::Serialize;

use super::restore::restore;
use super::snapshot::{Snapshot, take};
use super::verify::verify;
use super::{Context, Run};
use crate::backend::SnapshotId;
use crate::lifecycle::{Session, messages};
use crate::query::Check;

#[derive(Args)]
pub struct Guard {
    method: String,
    args: Vec<String>,
    /// A query whose answer the call must leave unchanged, as 'METHOD ARGS'.
    #[arg(long, value_name = "'METHOD ARGS'", conflicts_with = "allow_drop")]
    check: Option<Check>,
    /// How many messages the call may remove from the chat without a restore.
    #[arg(long, default_value_t = 0)]
    allow_drop: u64,
}

/// What the call did, and whether the snapshot was restored.
#[derive(Serialize)]
pub struct Guarded {
    pub method: String,
    pub before: Observed,
    pub after: Observed,
    pub restored: bool,
    pub snapshot_id: SnapshotId,
}

/// What the invariant saw: the chat's message count, or the check's answer as Candid text.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Observed {
    Messages(u64),
    Answer(String),
}

impl std::fmt::Display for Observed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Messages(n) => f.write_str(&messages(*n as usize)),
            Self::Answer(answer) => f.write_str(answer),
        }
    }
}

/// What the invariant looks at.
enum Watch {
    Check(Check),
    Messages { allow_drop: u64 },
}

impl Watch {
    fn read(&self, session: &mut Session) -> Result<(Observed, Vec<u8>)> {
        match self {
            Self::Check(check) => {
                let answer = session.ask(check)?;
                let shown = candid::IDLArgs::from_bytes(&answer)
                    .map_or_else(|_| format!("{answer:?}"), |a| a.to_string());
                Ok((Observed::Answer(shown), answer))
            }
            Self::Messages { .. } => {
                let n = session.len()?;
                Ok((Observed::Messages(n), n.to_le_bytes().to_vec()))
            }
        }
    }

    fn broken(&self, before: &[u8], after: &[u8]) -> bool {
        match self {
            Self::Check(_) => before != after,
            Self::Messages { allow_drop } => {
                let count = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("a count"));
                count(after) + allow_drop < count(before)
            }
        }
    }
}

impl Run for Guard {
    type Output = Guarded;

    fn run(self, cx: &mut Context) -> Result<Guarded> {
        let session = cx.session()?;
        let watch = match self.check {
            Some(check) => Watch::Check(check),
            None if session.canister.is_chat() => Watch::Messages {
                allow_drop: self.allow_drop,
            },
            None => bail!(
                "guard needs an invariant for {}: name a query whose answer the call must not change, with --check 'METHOD ARGS'",
                session.canister
            ),
        };
        let method = self.method;
        let (before, before_bytes) = watch.read(session)?;
        session.say(format!(
            "  guard: before the call, {before}; taking a snapshot first"
        ));
        let id = take(session, Snapshot::plain())?.snapshot_id;
        let values: Vec<IDLValue> = self.args.into_iter().map(IDLValue::Text).collect();
        let called = session.call(&method, &values, false);
        let (after, after_bytes) = watch.read(session)?;
        let broken = watch.broken(&before_bytes, &after_bytes);
        if broken {
            session.say(format!(
                "  guard: {method} broke the invariant ({before} → {after}); restoring snapshot {id}"
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

//! The snapshot lifecycle's steps, written once against `Backend`: a `Session` runs them on
//! the backend in use, prints every command run and what came back, and keeps the records
//! `verify` reads. The commands (`crate::commands`) are made of these steps.

use anyhow::{Context, Result, anyhow, bail};
use candid::{
    CandidType, Decode, IDLArgs, IDLValue,
    types::{Type, TypeEnv},
};

use crate::backend::{Backend, CanisterRef, SnapshotId, SnapshotInfo};
use crate::query::Check;
use crate::records::{Recorded, Records};

mod backups;
mod headroom;
mod scratch;
mod set;

pub use headroom::check as check_headroom;
pub use scratch::{Scratch, SnapshotDir};
pub use set::unix_now;

/// Where lines for the user go: stdout, or stderr when stdout carries JSON.
#[derive(Clone, Copy)]
pub struct Out {
    pub json: bool,
}

impl Out {
    pub fn say(&self, line: impl AsRef<str>) {
        if self.json {
            eprintln!("{}", line.as_ref());
        } else {
            println!("{}", line.as_ref());
        }
    }
}

/// The demo's message, as in the upstream example.
pub const GREETING: &str = "Hi there!";

/// The restored chat differs from the recorded one (exit code 3).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Mismatch(pub String);

/// One invocation: the backend, where output goes, and what is remembered between runs.
pub struct Session {
    pub backend: Box<dyn Backend>,
    /// The canister the commands act on (`--canister`).
    pub canister: CanisterRef,
    /// Whose records these are: the backend's on one network (`Records::scope`).
    scope: String,
    out: Out,
    pub records: Records,
}

impl Session {
    pub fn new(
        backend: Box<dyn Backend>,
        canister: CanisterRef,
        scope: String,
        out: Out,
    ) -> Result<Self> {
        let records = Records::load(&scope)?;
        Ok(Self {
            backend,
            canister,
            scope,
            out,
            records,
        })
    }

    /// A line for the user: stdout, or stderr when stdout carries JSON.
    pub fn say(&self, line: impl AsRef<str>) {
        self.out.say(line);
    }

    /// Prints the commands the backend ran since the last call.
    pub fn show(&mut self) {
        for command in self.backend.ran() {
            self.say(format!("  $ {command}"));
        }
    }

    pub fn came_back(&mut self, what: impl AsRef<str>) {
        self.show();
        self.say(format!("  {}", what.as_ref()));
    }

    pub fn save(&self) -> Result<()> {
        self.records.save(&self.scope)
    }

    /// Calls a chat method and shows the reply as dfx does, typed by the method's results.
    pub fn call(&mut self, method: &str, args: &[IDLValue], query: bool) -> Result<Vec<u8>> {
        let args = IDLArgs::new(args);
        let reply = self.backend.call(&self.canister, method, &args, query);
        self.show();
        let reply = reply?;
        self.show_reply(method, &reply);
        Ok(reply)
    }

    /// A reply as dfx prints it, typed by the chat's results where the method is the chat's.
    fn show_reply(&self, method: &str, reply: &[u8]) {
        let typed = self
            .canister
            .is_chat()
            .then(|| results_of(method))
            .flatten();
        let shown = match typed {
            Some(results) => IDLArgs::from_bytes_with_types(reply, &TypeEnv::new(), &results),
            None => IDLArgs::from_bytes(reply),
        }
        .map_or_else(
            |e| format!("(a reply that does not decode: {e})"),
            |a| a.to_string(),
        );
        self.say(format!("  {shown}"));
    }

    pub fn append(&mut self, message: &str) -> Result<()> {
        self.call("append", &[IDLValue::Text(message.into())], false)
            .map(drop)
    }

    pub fn dump(&mut self) -> Result<Vec<String>> {
        let reply = self.call("dump", &[], true)?;
        Ok(Decode!(&reply, Vec<String>)?)
    }

    pub fn remove_spam(&mut self) -> Result<u64> {
        let reply = self.call("remove_spam", &[], false)?;
        Ok(Decode!(&reply, u64)?)
    }

    /// Runs `f` with the canister stopped and starts it again whatever happens, saying so
    /// when something failed.
    pub fn while_stopped<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        crate::interrupt::critical(|| self.stopped_then_started(f))
    }

    fn stopped_then_started<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let stopped = self.backend.stop_canister(&self.canister);
        self.show();
        stopped.context("could not stop the canister; nothing changed")?;
        let result = f(self);
        let started = self.backend.start_canister(&self.canister);
        self.show();
        match (result, started) {
            (Ok(value), Ok(())) => Ok(value),
            (Err(error), Ok(())) => Err(anyhow!(
                "{error:#}; the canister was started again, so it keeps serving as before"
            )),
            (Ok(_), Err(error)) => Err(anyhow!(
                "the step succeeded, but starting the canister again failed ({error:#}): it is still stopped; check with `cargo xtask status`, then start it (`dfx canister start {0}` or `icp canister start {0}`)",
                self.canister
            )),
            (Err(error), Err(again)) => Err(anyhow!(
                "{error:#}; starting the canister again also failed ({again:#}): it is stopped — start it before using it"
            )),
        }
    }

    /// Records the chat as it was when snapshot `id` was taken, for `verify`.
    pub fn remember(
        &mut self,
        id: &SnapshotId,
        replaced: Option<&SnapshotId>,
        recorded: Recorded,
    ) -> Result<()> {
        self.say(format!("  snapshot {id}"));
        if let Some(replaced) = replaced {
            self.records.forget(&replaced.to_string());
        }
        self.records.taken.insert(id.to_string(), recorded);
        self.save()
    }

    /// The answer of the check query, asked of the canister.
    pub fn ask(&mut self, check: &Check) -> Result<Vec<u8>> {
        self.ask_of(&self.canister.clone(), check)
    }

    /// The answer of the check query, asked of `canister`.
    pub fn ask_of(&mut self, canister: &CanisterRef, check: &Check) -> Result<Vec<u8>> {
        let args = check.idl_args()?;
        let answer = self.backend.call(canister, &check.method, &args, true);
        self.show();
        let answer = answer.with_context(|| format!("the check query `{check}` failed"))?;
        self.show_reply(&check.method, &answer);
        Ok(answer)
    }

    pub fn len(&mut self) -> Result<u64> {
        let reply = self
            .backend
            .call(&self.canister, "len", &IDLArgs::new(&[]), true);
        self.backend.ran();
        Ok(Decode!(&reply?, u64)?)
    }
}

/// The result types of the chat's methods (`canister/chat.did`), so replies print as dfx
/// prints them; `None` for a method the chat does not have.
fn results_of(method: &str) -> Option<Vec<Type>> {
    match method {
        "append" => Some(vec![]),
        "dump" | "page" => Some(vec![Vec::<String>::ty()]),
        "remove_spam" | "len" => Some(vec![u64::ty()]),
        _ => None,
    }
}

pub fn messages(n: usize) -> String {
    if n == 1 {
        "1 message".into()
    } else {
        format!("{n} messages")
    }
}

/// The snapshot to restore: the one named (if it exists) or the newest.
pub fn choose(listed: &[SnapshotInfo], id: Option<&SnapshotId>) -> Result<SnapshotId> {
    let known = || {
        listed
            .iter()
            .map(|s| s.id.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match id {
        Some(id) if listed.iter().any(|s| &s.id == id) => Ok(id.clone()),
        Some(id) if listed.is_empty() => bail!("no snapshot {id}: the canister has no snapshots"),
        Some(id) => bail!("no snapshot {id}; the canister has: {}", known()),
        None => listed.last().map(|s| s.id.clone()).ok_or_else(|| {
            anyhow!("the canister has no snapshots: take one with `cargo xtask snapshot`")
        }),
    }
}

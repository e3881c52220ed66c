//! The snapshot lifecycle, written once against `Backend`: each command of `cargo xtask`
//! and the demo that strings them together, printing every command run and what came back.

use anyhow::{Context, Result, anyhow, bail};
use candid::{
    CandidType, Decode, IDLArgs, IDLValue,
    types::{Type, TypeEnv},
};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::backend::{Backend, SnapshotId, SnapshotInfo};
use crate::records::Records;

mod backups;

pub use backups::{diff, inspect, prune_dir, verify_backup};

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
    backend: Box<dyn Backend>,
    /// Whose records these are: the backend's on one network (`Records::scope`).
    scope: String,
    out: Out,
    records: Records,
}

impl Session {
    pub fn new(backend: Box<dyn Backend>, scope: String, json: bool) -> Result<Self> {
        let records = Records::load(&scope)?;
        Ok(Self {
            backend,
            scope,
            out: Out { json },
            records,
        })
    }

    /// A line for the user: stdout, or stderr when stdout carries JSON.
    pub fn say(&self, line: impl AsRef<str>) {
        self.out.say(line);
    }

    /// Prints the commands the backend ran since the last call.
    fn show(&mut self) {
        for command in self.backend.ran() {
            self.say(format!("  $ {command}"));
        }
    }

    fn came_back(&mut self, what: impl AsRef<str>) {
        self.show();
        self.say(format!("  {}", what.as_ref()));
    }

    fn save(&self) -> Result<()> {
        self.records.save(&self.scope)
    }

    /// Calls a chat method and shows the reply as dfx does, typed by the method's results.
    fn call(&mut self, method: &str, args: &[IDLValue], query: bool) -> Result<Vec<u8>> {
        let args = IDLArgs::new(args);
        let reply = self.backend.call(method, &args, query);
        self.show();
        let reply = reply?;
        let shown = match results_of(method) {
            Some(results) => IDLArgs::from_bytes_with_types(&reply, &TypeEnv::new(), &results),
            None => IDLArgs::from_bytes(&reply),
        }
        .map_or_else(
            |e| format!("(a reply that does not decode: {e})"),
            |a| a.to_string(),
        );
        self.say(format!("  {shown}"));
        Ok(reply)
    }

    fn append(&mut self, message: &str) -> Result<()> {
        self.call("append", &[IDLValue::Text(message.into())], false)
            .map(drop)
    }

    fn dump(&mut self) -> Result<Vec<String>> {
        let reply = self.call("dump", &[], true)?;
        Ok(Decode!(&reply, Vec<String>)?)
    }

    fn remove_spam(&mut self) -> Result<u64> {
        let reply = self.call("remove_spam", &[], false)?;
        Ok(Decode!(&reply, u64)?)
    }

    /// Runs `f` with the canister stopped and starts it again whatever happens, saying so
    /// when something failed.
    fn while_stopped<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        crate::interrupt::critical(|| self.stopped_then_started(f))
    }

    fn stopped_then_started<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let stopped = self.backend.stop_canister();
        self.show();
        stopped.context("could not stop the canister; nothing changed")?;
        let result = f(self);
        let started = self.backend.start_canister();
        self.show();
        match (result, started) {
            (Ok(value), Ok(())) => Ok(value),
            (Err(error), Ok(())) => Err(anyhow!(
                "{error:#}; the canister was started again, so it keeps serving as before"
            )),
            (Ok(_), Err(error)) => Err(anyhow!(
                "the step succeeded, but starting the canister again failed ({error:#}): it is still stopped; check with `cargo xtask status`, then start it (`dfx canister start chat` or `icp canister start chat`)"
            )),
            (Err(error), Err(again)) => Err(anyhow!(
                "{error:#}; starting the canister again also failed ({again:#}): it is stopped — start it before using it"
            )),
        }
    }

    pub fn start(&mut self) -> Result<Value> {
        let started = self.backend.clean_start();
        self.show();
        started?;
        self.records = Records::default();
        self.save()?;
        self.say(format!("  started clean: {}", self.backend.describe()));
        Ok(json!({ "backend": self.backend.describe() }))
    }

    pub fn deploy(&mut self, wasm: &std::path::Path) -> Result<Value> {
        let canister = self.backend.deploy(wasm)?;
        self.came_back(format!("chat is {canister}"));
        Ok(json!({ "canister": canister }))
    }

    pub fn populate(&mut self, messages: &[String], count: Option<u64>) -> Result<Value> {
        let Some(count) = count else {
            let default = [GREETING.to_owned()];
            let messages = if messages.is_empty() {
                &default[..]
            } else {
                messages
            };
            for message in messages {
                self.append(message)?;
            }
            return Ok(json!({ "appended": messages.len() }));
        };
        let bar = ProgressBar::new(count).with_style(
            ProgressStyle::with_template("  {bar:40} {pos}/{len} messages, {per_sec}, {eta} left")
                .expect("valid template"),
        );
        for n in 1..=count {
            let args = IDLArgs::new(&[IDLValue::Text(format!("message {n}"))]);
            self.backend
                .call("append", &args, false)
                .with_context(|| format!("appending message {n} of {count}"))?;
            self.backend.ran();
            bar.inc(1);
        }
        bar.finish_and_clear();
        self.say(format!("  appended {count} messages"));
        Ok(json!({ "appended": count }))
    }

    /// stop → create → start; records the chat as it was, for `verify`.
    pub fn snapshot(&mut self, replace: Option<&SnapshotId>) -> Result<Value> {
        let chat = self.dump()?;
        let id = self.while_stopped(|s| {
            let id = s.backend.snapshot_create(replace);
            s.show();
            id
        })?;
        let messages = chat.len();
        self.remember(&id, replace, chat)?;
        Ok(json!({ "snapshot_id": id, "messages": messages }))
    }

    /// Records the chat as it was when snapshot `id` was taken, for `verify`.
    fn remember(
        &mut self,
        id: &SnapshotId,
        replaced: Option<&SnapshotId>,
        chat: Vec<String>,
    ) -> Result<()> {
        self.say(format!("  snapshot {id}"));
        if let Some(replaced) = replaced {
            self.records.dumps.remove(&replaced.to_string());
        }
        self.records.dumps.insert(id.to_string(), chat);
        self.save()
    }

    pub fn break_chat(&mut self) -> Result<Value> {
        let removed = self.remove_spam()?;
        if removed == 0 {
            self.say("  no message was spam, and the deliberate bug emptied the chat: `cargo xtask restore` brings it back");
        }
        Ok(json!({ "removed": removed }))
    }

    /// stop → load → start, with the newest snapshot when none is named.
    pub fn restore(&mut self, id: Option<&SnapshotId>) -> Result<Value> {
        let listed = self.backend.snapshot_list();
        self.show();
        let id = choose(&listed?, id)?;
        self.while_stopped(|s| {
            let loaded = s.backend.snapshot_load(&id);
            s.show();
            loaded
        })?;
        self.say(format!("  restored snapshot {id}"));
        self.records.last_restored = Some(id.to_string());
        self.save()?;
        Ok(json!({ "snapshot_id": id }))
    }

    pub fn list(&mut self) -> Result<Value> {
        let listed = self.backend.snapshot_list();
        self.show();
        let listed = listed?;
        if listed.is_empty() {
            self.say("  no snapshots");
        }
        for s in &listed {
            self.say(format!("  {}: {}, taken at {}", s.id, s.size, s.taken_at));
        }
        Ok(json!({ "snapshots": listed }))
    }

    pub fn delete(&mut self, id: &SnapshotId) -> Result<Value> {
        let deleted = self.backend.snapshot_delete(id);
        self.show();
        deleted?;
        self.records.dumps.remove(&id.to_string());
        self.save()?;
        self.say(format!("  deleted snapshot {id}"));
        Ok(json!({ "deleted": id }))
    }

    /// Compares the current chat with the one recorded when snapshot `id` (default: the
    /// one last restored) was taken.
    pub fn verify(&mut self, id: Option<&SnapshotId>) -> Result<Value> {
        let key = match id {
            Some(id) => id.to_string(),
            None => self.records.last_restored.clone().ok_or_else(|| {
                anyhow!("nothing to verify against: restore a snapshot first, or name one with `verify ID`")
            })?,
        };
        let Some(recorded) = self.records.dumps.get(&key).cloned() else {
            bail!(
                "no chat was recorded for snapshot {key}: only snapshots taken with `cargo xtask snapshot` can be verified"
            );
        };
        let now = self.dump()?;
        if now != recorded {
            return Err(Mismatch(format!(
                "the chat does not match snapshot {key}: it has {} messages, the snapshot had {}",
                now.len(),
                recorded.len()
            ))
            .into());
        }
        self.say(format!(
            "  verified: the chat equals snapshot {key} ({})",
            messages(now.len())
        ));
        Ok(json!({ "verified": true, "snapshot_id": key, "messages": now.len() }))
    }

    pub fn status(&mut self) -> Result<Value> {
        let status = self.backend.status();
        self.show();
        let status = status?;
        self.say(format!(
            "  {} is {}, module {}",
            status.canister,
            status.status,
            status.module_hash.as_deref().unwrap_or("none")
        ));
        Ok(serde_json::to_value(status)?)
    }

    pub fn shut_down(&mut self) -> Result<Value> {
        let done = self.backend.shut_down();
        self.show();
        done?;
        self.say(format!("  stopped: {}", self.backend.describe()));
        Ok(json!({ "stopped": true }))
    }

    /// Runs a risky update call under a safety net: snapshot first, then the call, then the
    /// invariant (the message count may drop by at most `allow_drop`); when it is broken, the
    /// snapshot is restored and verified, and the result says what was seen and done.
    pub fn guard(&mut self, method: &str, args: &[String], allow_drop: u64) -> Result<Value> {
        let before = self.len()?;
        self.say(format!(
            "  guard: the chat holds {}; taking a snapshot first",
            messages(before as usize)
        ));
        let snapshot = self.snapshot(None)?;
        let id: SnapshotId = snapshot["snapshot_id"]
            .as_str()
            .expect("snapshot ids are text")
            .parse()?;
        let values: Vec<IDLValue> = args.iter().map(|a| IDLValue::Text(a.clone())).collect();
        let called = self.call(method, &values, false);
        let after = self.len()?;
        let broken = after + allow_drop < before;
        if !broken {
            called?;
            self.say(format!(
                "  guard: {method} kept the invariant ({} → {}); snapshot {id} stays as a backup",
                before, after
            ));
            return Ok(
                json!({ "method": method, "before": before, "after": after, "restored": false, "snapshot_id": id }),
            );
        }
        self.say(format!(
            "  guard: {method} dropped the chat from {} to {} (allowed: {allow_drop}); restoring snapshot {id}",
            messages(before as usize),
            messages(after as usize)
        ));
        self.restore(Some(&id))?;
        self.verify(Some(&id))?;
        Ok(
            json!({ "method": method, "before": before, "after": after, "restored": true, "snapshot_id": id }),
        )
    }

    fn len(&mut self) -> Result<u64> {
        let reply = self.backend.call("len", &IDLArgs::new(&[]), true);
        self.backend.ran();
        Ok(Decode!(&reply?, u64)?)
    }

    /// The seed's lifecycle, end to end, ending in a verified restore.
    pub fn demo(&mut self, wasm: &std::path::Path) -> Result<Value> {
        self.say(format!("[1/8] clean start ({})", self.backend.describe()));
        self.start()?;
        self.say("[2/8] deploy the chat canister");
        self.deploy(wasm)?;
        self.say("[3/8] populate");
        self.append(GREETING)?;
        let before = self.dump()?;
        self.say("[4/8] stop");
        let id = self.while_stopped(|s| {
            s.say("[5/8] snapshot, then start");
            let id = s.backend.snapshot_create(None);
            s.show();
            id
        })?;
        self.remember(&id, None, before)?;
        self.say("[6/8] break: remove_spam loses the chat (the deliberate bug)");
        self.remove_spam()?;
        self.dump()?;
        self.say("[7/8] restore");
        self.restore(Some(&id))?;
        self.say("[8/8] verify");
        self.verify(Some(&id))
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

fn messages(n: usize) -> String {
    if n == 1 {
        "1 message".into()
    } else {
        format!("{n} messages")
    }
}

/// The snapshot to restore: the one named (if it exists) or the newest.
fn choose(listed: &[SnapshotInfo], id: Option<&SnapshotId>) -> Result<SnapshotId> {
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

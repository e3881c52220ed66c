//! The replica: every canister of one local subnet, the routing of calls to them or to the
//! management canister, the clock, and persistence: each replicated execution is journaled
//! before it runs; checkpoints (commits of the whole state) come every `CHECKPOINT_EVERY`
//! executions and before anything else changes state; opening replays the journal.

use std::{
    collections::{BTreeMap, HashSet},
    path::Path,
    time::{SystemTime, UNIX_EPOCH},
};

use candid::Principal;
use serde::{Deserialize, Serialize};

use crate::canister::{
    Canister, Executed, Message,
    engine::Engine,
    env::{Context, Response},
    module::Metadata,
    state::{CanisterState, Status},
};
use crate::error::{ErrorCode, Reject, StoreError};
use crate::store::{Hash, Opened, Record, Store};
use crate::{ids, management, system_canisters};

/// Largest argument of an ingress message (IC interface spec, "Resource limits").
const MAX_ARG_BYTES: usize = 2 * 1024 * 1024;

/// How many executions may be journaled before a checkpoint: what bounds the replay when
/// the state is opened again, and a checkpoint's cost (it hashes changed memory) per call.
const CHECKPOINT_EVERY: usize = 1000;

/// What the store's manifest holds: the whole replica state, pages aside.
#[derive(Serialize, Deserialize)]
struct Manifest {
    next_canister: u64,
    last_time: u64,
    canisters: Vec<CanisterState>,
    /// The last journal record this state includes.
    #[serde(default)]
    journaled: u64,
}

/// A replicated execution as the journal records it, before it runs: replaying it on the
/// state before it gives the state after it, since execution is deterministic.
#[derive(Serialize, Deserialize)]
enum Entry {
    Call {
        sender: Principal,
        canister: Principal,
        method: String,
        #[serde(with = "serde_bytes")]
        arg: Vec<u8>,
        time: u64,
    },
    /// A round's system tasks (timers, heartbeats).
    Tasks { time: u64 },
}

/// A canister as the certified state tree shows it.
pub struct CanisterFacts {
    pub id: Principal,
    pub controllers: Vec<Principal>,
    pub module_hash: Option<Hash>,
    pub metadata: Metadata,
}

pub struct Replica {
    metadata_cache: std::sync::Mutex<std::collections::HashMap<Hash, Metadata>>,
    pub(crate) store: Store,
    pub(crate) engine: &'static Engine,
    pub(crate) canisters: BTreeMap<Principal, Canister>,
    pub(crate) next_canister: u64,
    last_time: u64,
    subnet_id: Principal,
    /// Set while journaled executions run again at open: they are not journaled twice.
    replaying: bool,
    last_instructions: u64,
    /// After a checkpoint failed, the number of journaled executions at which it is tried
    /// again: each try replays the journal, so retrying on every call makes a full disk crawl.
    retry_checkpoint_at: usize,
}

impl Replica {
    /// Opens the replica whose state lives in `dir`, creating an empty one there if needed.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let Opened {
            store,
            manifest,
            journal,
        } = Store::open(dir)?;
        let mut replica = Self {
            metadata_cache: Default::default(),
            store,
            engine: Engine::shared(),
            canisters: BTreeMap::new(),
            next_canister: 0,
            last_time: 0,
            subnet_id: Principal::management_canister(),
            replaying: false,
            last_instructions: 0,
            retry_checkpoint_at: 0,
        };
        if replica.recover(manifest, journal)? {
            replica.checkpoint_now()?;
        }
        let live = replica.live_objects();
        replica.store.collect_garbage(&live)?;
        Ok(replica)
    }

    /// Restores the checkpoint and replays the journal records it does not cover; returns
    /// whether there were any.
    fn recover(
        &mut self,
        manifest: Option<Vec<u8>>,
        journal: Vec<Record>,
    ) -> Result<bool, StoreError> {
        let covered = match manifest {
            Some(bytes) => self.restore(&bytes)?,
            None => 0,
        };
        self.store.continue_after(covered);
        let pending: Vec<&Record> = journal.iter().filter(|r| r.sequence > covered).collect();
        self.replaying = true;
        let replayed = pending.iter().try_for_each(|record| {
            let entry: Entry =
                serde_cbor::from_slice(&record.bytes).map_err(|e| StoreError::Corrupt {
                    path: self.store.dir().join("journal"),
                    what: format!("record {} does not decode: {e}", record.sequence),
                })?;
            self.replay(&entry);
            Ok(())
        });
        self.replaying = false;
        replayed.map(|()| !pending.is_empty())
    }

    /// Runs a journaled execution again; its outcome was already given when it first ran.
    fn replay(&mut self, entry: &Entry) {
        match entry {
            Entry::Call {
                sender,
                canister,
                method,
                arg,
                time,
            } => {
                self.last_time = self.last_time.max(*time);
                let _ = self.run_call(*sender, *canister, method, arg, Context::Update, *time);
            }
            Entry::Tasks { time } => {
                self.last_time = self.last_time.max(*time);
                self.run_tasks(*time);
            }
        }
    }

    /// Records an execution in the journal before it runs; when that fails, it does not run.
    fn journal(&mut self, entry: &Entry) -> Result<(), Reject> {
        let bytes = serde_cbor::to_vec(entry).expect("entries always encode");
        self.store.log(&bytes).map(drop).map_err(|error| {
            Reject::new(
                ErrorCode::CanisterRejectedMessage,
                format!(
                    "The replica could not record the call, so it did not run: {error}; make room on the disk and send it again"
                ),
            )
        })
    }

    /// Checkpoints when enough executions are journaled. The executions are durable in the
    /// journal already, so a checkpoint that fails (a full disk) fails no call: the state
    /// goes back to what is on disk, which holds them, and the next one tries again.
    fn checkpoint_if_due(&mut self) {
        let logged = self.store.logged();
        if logged >= CHECKPOINT_EVERY.max(self.retry_checkpoint_at) && self.commit().is_err() {
            self.retry_checkpoint_at = logged + CHECKPOINT_EVERY;
        }
    }

    /// Makes every journaled execution part of a checkpoint, if there are any: what a
    /// server does on stopping, and what happens before any other change of state.
    pub fn checkpoint(&mut self) -> Result<(), Reject> {
        if self.store.logged() > 0 {
            self.commit()?;
        }
        Ok(())
    }

    /// Makes the journal durable against power loss (a process crash cannot lose it).
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.store.sync_journal()
    }

    /// The last journal record the manifest covers.
    fn restore(&mut self, bytes: &[u8]) -> Result<u64, StoreError> {
        let manifest: Manifest =
            serde_cbor::from_slice(bytes).map_err(|e| StoreError::Corrupt {
                path: self.store.dir().join("state"),
                what: format!("its contents do not decode: {e}"),
            })?;
        self.next_canister = manifest.next_canister;
        self.last_time = manifest.last_time;
        self.canisters = manifest
            .canisters
            .into_iter()
            .map(|state| (state.id, Canister::new(state)))
            .collect();
        Ok(manifest.journaled)
    }

    /// Every object the committed state refers to.
    fn live_objects(&self) -> HashSet<Hash> {
        let mut live = HashSet::new();
        for canister in self.canisters.values() {
            let state = &canister.state;
            let codes = state
                .code
                .iter()
                .chain(state.snapshots.iter().map(|s| &s.code));
            for code in codes {
                live.insert(code.module);
                live.extend(code.heap.hashes());
                live.extend(code.stable.hashes());
            }
            live.extend(state.chunks.keys());
            live.extend(state.snapshots.iter().flat_map(|s| s.chunks.keys()));
            let uploads = state
                .snapshots
                .iter()
                .filter_map(|s| s.uploaded_module.as_ref());
            live.extend(uploads.flat_map(|m| m.hashes()));
        }
        live
    }

    /// Makes the current state durable. When that fails, the state on disk is still the last
    /// committed one and memory goes back to it, so nothing half-done survives.
    pub(crate) fn commit(&mut self) -> Result<(), Reject> {
        let committed = self.checkpoint_now();
        if committed.is_ok() {
            self.retry_checkpoint_at = 0;
        }
        committed.map_err(|error| {
            let reject = Reject::new(
                ErrorCode::CanisterRejectedMessage,
                format!("The replica could not save its state, so the call was undone: {error}"),
            );
            match self.reload() {
                Ok(()) => reject,
                Err(e) => Reject::new(
                    ErrorCode::CanisterRejectedMessage,
                    format!("{reject}; reloading also failed: {e}"),
                ),
            }
        })
    }

    /// Writes the whole state, journaled executions included, as the new checkpoint.
    fn checkpoint_now(&mut self) -> Result<(), StoreError> {
        for canister in self.canisters.values_mut() {
            canister.save(&mut self.store);
        }
        let manifest = Manifest {
            next_canister: self.next_canister,
            last_time: self.last_time,
            canisters: self.canisters.values().map(|c| c.state.clone()).collect(),
            journaled: self.store.last_logged(),
        };
        let bytes = serde_cbor::to_vec(&manifest).expect("the state always encodes");
        self.store.commit(&bytes)
    }

    /// Goes back to the state on disk: the last checkpoint and the journal after it.
    fn reload(&mut self) -> Result<(), StoreError> {
        self.canisters.clear();
        self.next_canister = 0;
        let (manifest, journal) = self.store.committed()?;
        self.recover(manifest, journal).map(drop)
    }

    /// A small file kept with the state (the HTTP layer's keys), created the first time.
    pub fn keep_file(
        &self,
        name: &str,
        create: impl FnOnce() -> Result<Vec<u8>, StoreError>,
    ) -> Result<(std::path::PathBuf, Vec<u8>), StoreError> {
        self.store.keep_file(name, create)
    }

    /// Nanoseconds since the epoch, strictly increasing from call to call.
    pub(crate) fn now(&mut self) -> u64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        self.last_time = wall.max(self.last_time.saturating_add(1));
        self.last_time
    }

    pub fn subnet_id(&self) -> Principal {
        self.subnet_id
    }

    /// Names this replica's subnet (the HTTP server derives it from its root key).
    pub fn set_subnet_id(&mut self, subnet_id: Principal) {
        self.subnet_id = subnet_id;
    }

    /// What the certified state tree shows of each canister.
    pub fn facts(&mut self) -> Vec<CanisterFacts> {
        let mut facts = Vec::new();
        for canister in self.canisters.values() {
            let module_hash = canister.module_hash();
            let metadata = match module_hash {
                Some(hash) => self.metadata_of(hash),
                None => Vec::new(),
            };
            facts.push(CanisterFacts {
                id: canister.id(),
                controllers: canister.state.settings.controllers.clone(),
                module_hash,
                metadata,
            });
        }
        facts
    }

    /// A module's metadata sections, parsed once per module.
    fn metadata_of(&self, module: Hash) -> Metadata {
        let mut cache = self.metadata_cache.lock().expect("not poisoned");
        cache
            .entry(module)
            .or_insert_with(|| {
                self.store
                    .get(&module)
                    .ok()
                    .and_then(|wasm| crate::canister::module::metadata(&wasm).ok())
                    .unwrap_or_default()
            })
            .clone()
    }

    /// The canisters on this replica.
    pub fn canister_ids(&self) -> Vec<Principal> {
        self.canisters.keys().copied().collect()
    }

    /// An update call from `sender` (as ingress): to a canister, or to the management
    /// canister `aaaaa-aa`. Returns the reply's Candid bytes.
    pub fn update(
        &mut self,
        sender: Principal,
        canister_id: Principal,
        method: &str,
        arg: &[u8],
    ) -> Result<Vec<u8>, Reject> {
        self.tick()?;
        self.route(sender, canister_id, method, arg, Context::Update)
    }

    /// A query call: runs on the current state and changes nothing.
    pub fn query(
        &mut self,
        sender: Principal,
        canister_id: Principal,
        method: &str,
        arg: &[u8],
    ) -> Result<Vec<u8>, Reject> {
        self.route(sender, canister_id, method, arg, Context::Query)
    }

    /// Sends a call to the management canister or to the canister it names.
    fn route(
        &mut self,
        sender: Principal,
        canister_id: Principal,
        method: &str,
        arg: &[u8],
        context: Context,
    ) -> Result<Vec<u8>, Reject> {
        if arg.len() > MAX_ARG_BYTES {
            return Err(Reject::new(
                ErrorCode::CanisterRejectedMessage,
                format!(
                    "The argument is {} bytes, more than the {MAX_ARG_BYTES} an ingress message may carry; send large modules in pieces with upload_chunk.",
                    arg.len()
                ),
            )
            .ingress_filter());
        }
        if canister_id == Principal::management_canister() || system_canisters::handles(canister_id)
        {
            // They read and write `state.code`, which executions only update at checkpoints.
            self.checkpoint()?;
        }
        let time = self.now();
        if let Some(answer) = system_canisters::call(self, sender, canister_id, method, arg, time) {
            return answer;
        }
        if canister_id == Principal::management_canister() {
            let query = context == Context::Query;
            return management::call(self, sender, method, arg, query);
        }
        self.execute(sender, canister_id, method, arg, context)
    }

    fn execute(
        &mut self,
        sender: Principal,
        canister_id: Principal,
        method: &str,
        arg: &[u8],
        context: Context,
    ) -> Result<Vec<u8>, Reject> {
        let time = self.now();
        let executed = self.run_call(sender, canister_id, method, arg, context, time);
        if context.replicated() {
            self.checkpoint_if_due();
        }
        match executed?.response {
            Some(Response::Reply(bytes)) => Ok(bytes),
            Some(Response::Reject(message)) => Err(Reject::by_canister(message)),
            None => Err(Reject::new(
                ErrorCode::CanisterDidNotReply,
                format!("Error from Canister {canister_id}: Canister did not reply to the call"),
            )),
        }
    }

    /// Runs a call on a canister at `time`: its status, the export that serves the method,
    /// `canister_inspect_message` and the journal for an update; then the execution.
    fn run_call(
        &mut self,
        sender: Principal,
        canister_id: Principal,
        method: &str,
        arg: &[u8],
        context: Context,
        time: u64,
    ) -> Result<Executed, Reject> {
        let subnet_id = self.subnet_id;
        let canister = self.canister_mut(&canister_id)?;
        match canister.state.status {
            Status::Running => {}
            Status::Stopping => {
                return Err(Reject::new(
                    ErrorCode::CanisterStopping,
                    format!("Canister {canister_id} is stopping"),
                ));
            }
            Status::Stopped => {
                return Err(Reject::new(
                    ErrorCode::CanisterStopped,
                    format!(
                        "Canister {canister_id} is stopped and therefore does not have a CallContextManager"
                    ),
                ));
            }
        }
        let (entry, context) = self.entry_point(&canister_id, method, context)?;
        let message = Message {
            context,
            caller: sender,
            method,
            arg,
            time,
            subnet_id,
        };
        if context.replicated() && !self.replaying {
            self.inspect(&canister_id, &message)?;
            self.journal(&Entry::Call {
                sender,
                canister: canister_id,
                method: method.to_owned(),
                arg: arg.to_vec(),
                time,
            })?;
        }
        let canister = self.canisters.get_mut(&canister_id).expect("found above");
        let executed = canister.execute(self.engine, &self.store, &message, &entry);
        crate::fault::point("execute:done");
        let executed = executed?;
        self.last_instructions = executed.instructions;
        Ok(executed)
    }

    /// Instructions the last successful call to a canister used (its performance counter).
    pub fn last_instructions(&self) -> u64 {
        self.last_instructions
    }

    /// Lets the canister refuse an ingress update in `canister_inspect_message`, when it
    /// exports one (IC interface spec, "Message inspection").
    fn inspect(&mut self, canister_id: &Principal, message: &Message) -> Result<(), Reject> {
        const ENTRY: &str = "canister_inspect_message";
        let canister = self
            .canisters
            .get_mut(canister_id)
            .expect("checked by caller");
        if canister.exports(self.engine, &self.store, ENTRY)? != Some(true) {
            return Ok(());
        }
        let inspect = Message {
            context: Context::InspectMessage,
            ..*message
        };
        // A trap in inspection refuses the message as a decline does: before it runs.
        let executed = canister
            .execute(self.engine, &self.store, &inspect, ENTRY)
            .map_err(Reject::ingress_filter)?;
        if !executed.accepted {
            return Err(Reject::new(
                ErrorCode::CanisterRejectedMessage,
                format!("Error from Canister {canister_id}: Canister rejected the message"),
            )
            .ingress_filter());
        }
        Ok(())
    }

    /// Runs what is due, as a round of the IC would: each running canister's global timer
    /// once its time has come (deactivating it), and its heartbeat. `update` calls this
    /// first; a server calls it on a clock. A task that traps changes nothing but its log.
    pub fn tick(&mut self) -> Result<(), Reject> {
        let time = self.now();
        if self.due_tasks(time).is_empty() {
            return Ok(());
        }
        self.journal(&Entry::Tasks { time })?;
        self.run_tasks(time);
        self.checkpoint_if_due();
        Ok(())
    }

    /// The system tasks due at `time`: (canister, export).
    fn due_tasks(&mut self, time: u64) -> Vec<(Principal, &'static str)> {
        let mut due = Vec::new();
        for canister in self.canisters.values_mut() {
            if canister.state.status != Status::Running {
                continue;
            }
            let timer_due = canister.state.global_timer != 0 && canister.state.global_timer <= time;
            for (entry, is_due) in [
                ("canister_global_timer", timer_due),
                ("canister_heartbeat", true),
            ] {
                if is_due
                    && canister
                        .exports(self.engine, &self.store, entry)
                        .ok()
                        .flatten()
                        == Some(true)
                {
                    due.push((canister.id(), entry));
                }
            }
        }
        due
    }

    fn run_tasks(&mut self, time: u64) {
        let subnet_id = self.subnet_id;
        for (id, entry) in self.due_tasks(time) {
            let canister = self.canisters.get_mut(&id).expect("listed above");
            if entry == "canister_global_timer" {
                canister.state.global_timer = 0;
            }
            let task = Message {
                context: Context::SystemTask,
                caller: Principal::management_canister(),
                method: "",
                arg: &[],
                time,
                subnet_id,
            };
            // A failed task is in the canister's log; it does not fail the round.
            let _ = canister.execute(self.engine, &self.store, &task, entry);
        }
    }

    /// Which export serves `method` for this kind of call (a query may also be answered by a
    /// composite query; an update call may run a query method, as on the IC).
    fn entry_point(
        &mut self,
        canister_id: &Principal,
        method: &str,
        context: Context,
    ) -> Result<(String, Context), Reject> {
        let candidates: &[(&str, Context)] = match context {
            Context::Update => &[
                ("canister_update", Context::Update),
                ("canister_query", Context::ReplicatedQuery),
            ],
            _ => &[
                ("canister_query", Context::Query),
                ("canister_composite_query", Context::CompositeQuery),
            ],
        };
        let canister = self
            .canisters
            .get_mut(canister_id)
            .expect("checked by caller");
        for (kind, context) in candidates {
            let entry = format!("{kind} {method}");
            match canister.exports(self.engine, &self.store, &entry)? {
                None => {
                    return Err(Reject::new(
                        ErrorCode::CanisterWasmModuleNotFound,
                        format!(
                            "Error from Canister {canister_id}: Attempted to execute a message, but the canister contains no Wasm module."
                        ),
                    )
                    .ingress_filter());
                }
                Some(true) => return Ok((entry, *context)),
                Some(false) => {}
            }
        }
        let kind = if context == Context::Update {
            "update"
        } else {
            "query"
        };
        Err(Reject::new(
            ErrorCode::CanisterMethodNotFound,
            format!("Error from Canister {canister_id}: Canister has no {kind} method '{method}'."),
        )
        .ingress_filter())
    }

    pub(crate) fn canister_mut(&mut self, id: &Principal) -> Result<&mut Canister, Reject> {
        self.canisters.get_mut(id).ok_or_else(|| {
            Reject::new(
                ErrorCode::CanisterNotFound,
                format!("Canister {id} not found"),
            )
            .ingress_filter()
        })
    }

    pub(crate) fn new_canister_id(&mut self) -> Principal {
        let id = ids::canister_id(self.next_canister);
        self.next_canister += 1;
        id
    }
}

/// Closing the replica checkpoints what the journal holds, so the next open replays
/// nothing; should that fail, the journal still holds it all.
impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.checkpoint();
    }
}

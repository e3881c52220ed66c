//! The replica: every canister of one local subnet, the routing of calls to them or to the
//! management canister, the clock, and persistence: each replicated execution is journaled
//! before it runs; checkpoints (commits of the whole state) come every `CHECKPOINT_EVERY`
//! executions and before anything else changes state; opening replays the journal.

use std::{
    collections::VecDeque,
    path::Path,
    time::{SystemTime, UNIX_EPOCH},
};

use candid::Principal;
use serde::{Deserialize, Serialize};

use crate::canister::{
    Canister, Message, NO_CALL,
    calls::Origin,
    engine::Entry as EntryPoint,
    env::{Context, Response},
    grants,
    module::Metadata,
    state::CanisterState,
};
use crate::composite::Composite;
use crate::error::{ErrorCode, Reject, StoreError};
use crate::keys::Keys;
use crate::queue::Queued;
use crate::scheduler::Ingress;
use crate::store::{Hash, Opened, Record, Store};
use crate::subnet::Subnet;
use crate::{management, system_canisters};

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
    /// Messages in flight.
    #[serde(default)]
    queue: VecDeque<Queued>,
    #[serde(default)]
    next_ingress: u64,
    /// Cycles burned: call fees, `cycles_burn128`, refunds nobody could take.
    #[serde(default)]
    burned: u128,
    #[serde(default)]
    random_draws: u64,
    #[serde(default)]
    ledgers: crate::ledgers::Ledgers,
    /// The last tagged ingress call: a checkpoint can make it part of the state (a system
    /// call, or the call whose round was due one) before its caller recorded it.
    #[serde(default)]
    last_tagged: Option<Recovered>,
}

/// An ingress call its submitter tagged (`submit_tagged`), as recovery found it: its tag,
/// its number, and its answer if it was there. A caller that records calls elsewhere (the
/// HTTP layer's ingress history) may not have recorded these before the process ended.
#[derive(Clone, Serialize, Deserialize)]
pub struct Recovered {
    #[serde(with = "serde_bytes")]
    pub tag: Vec<u8>,
    pub number: u64,
    pub answer: Option<Result<Vec<u8>, Reject>>,
}

/// A round as the journal records it, before it runs: replaying it on the state before it
/// gives the state after it, since execution is deterministic. `Call` is a round that takes
/// in an ingress message.
#[derive(Serialize, Deserialize)]
enum Entry {
    Call {
        sender: Principal,
        canister: Principal,
        method: String,
        #[serde(with = "serde_bytes")]
        arg: Vec<u8>,
        time: u64,
        /// The submitter's tag (`submit_tagged`), empty if none.
        #[serde(default, with = "serde_bytes")]
        tag: Vec<u8>,
    },
    /// A round without ingress: its system tasks (timers, heartbeats) and queued messages.
    Tasks { time: u64 },
    /// Written after the round before it, when that round's allocator refused stable-memory
    /// grows: which (`canister::grants`), so that its replay refuses the same.
    Refused { grows: Vec<u64> },
    /// A canister's stable memory set from outside (PocketIC's `set_stable_memory`).
    SetStable {
        canister: Principal,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
}

/// A canister as the certified state tree shows it.
pub struct CanisterFacts {
    pub id: Principal,
    pub controllers: Vec<Principal>,
    pub module_hash: Option<Hash>,
    pub metadata: Metadata,
    /// What the canister certified (`ic0.certified_data_set`), as query certificates show.
    pub certified_data: Vec<u8>,
    /// Its global timer (0: inactive).
    pub global_timer: u64,
}

pub struct Replica {
    subnet: Subnet,
    metadata_cache: std::sync::Mutex<std::collections::HashMap<Hash, Metadata>>,
    last_time: u64,
    /// After a checkpoint failed, the number of journaled executions at which it is tried
    /// again: each try replays the journal, so retrying on every call makes a full disk crawl.
    retry_checkpoint_at: usize,
    /// The last tagged ingress call, which checkpoints carry (`Manifest::last_tagged`).
    last_tagged: Option<Recovered>,
    /// The tagged calls the last recovery found (`take_recovered`).
    recovered: Vec<Recovered>,
    /// Whether time stands still between rounds, moving only when it is set (a PocketIC
    /// instance without auto progress), rather than following the wall clock.
    manual_clock: bool,
}

impl Replica {
    /// Opens the replica whose state lives in `dir`, creating an empty one there if needed.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let Opened {
            store,
            manifest,
            journal,
        } = Store::open(dir)?;
        // The subnet's id comes from its root key, made with the state, so that replay, in-
        // process and served use all see the same `subnet_self`.
        let subnet_id = Keys::load_or_create(&store)?.subnet_id;
        let mut subnet = Subnet::new(store);
        subnet.id = subnet_id;
        let mut replica = Self {
            subnet,
            metadata_cache: Default::default(),
            last_time: 0,
            retry_checkpoint_at: 0,
            last_tagged: None,
            recovered: Vec::new(),
            manual_clock: false,
        };
        if replica.recover(manifest, journal)? {
            replica.checkpoint_now()?;
        }
        let live = replica.subnet.live_objects();
        replica.subnet.store.collect_garbage(&live)?;
        Ok(replica)
    }

    /// Restores the checkpoint and replays the journal records it does not cover; returns
    /// whether there were any.
    fn recover(
        &mut self,
        manifest: Option<Vec<u8>>,
        journal: Vec<Record>,
    ) -> Result<bool, StoreError> {
        self.recovered.clear();
        let covered = match manifest {
            Some(bytes) => self.restore(&bytes)?,
            None => 0,
        };
        self.subnet.store.continue_after(covered);
        let pending: Vec<&Record> = journal.iter().filter(|r| r.sequence > covered).collect();
        // Answers already given stand: the replay makes the state that gave them again.
        let answered = std::mem::take(&mut self.subnet.answered);
        let mut tagged = Vec::new();
        let entries: Vec<Entry> = pending
            .iter()
            .map(|record| {
                serde_cbor::from_slice(&record.bytes).map_err(|e| StoreError::Corrupt {
                    path: self.subnet.store.dir().join("journal"),
                    what: format!("record {} does not decode: {e}", record.sequence),
                })
            })
            .collect::<Result<_, _>>()
            .inspect_err(|_| self.subnet.answered = answered.clone())?;
        for (at, entry) in entries.iter().enumerate() {
            let refused = match entries.get(at + 1) {
                Some(Entry::Refused { grows }) => grows.clone(),
                _ => Vec::new(),
            };
            if let (Some(number), Entry::Call { tag, .. }) = (self.replay(entry, refused), entry)
                && !tag.is_empty()
            {
                tagged.push((tag.clone(), number));
            }
        }
        for (tag, number) in tagged {
            let answer = self.subnet.answered.get(&number).cloned();
            self.recovered.push(Recovered {
                tag,
                number,
                answer,
            });
        }
        self.subnet.answered = answered;
        Ok(!pending.is_empty())
    }

    /// The tagged ingress calls the state holds that its submitter may not have recorded:
    /// the last one a checkpoint carried, and those the journal's replay ran again (with
    /// their answers, or none yet). Asked once, after opening.
    pub fn take_recovered(&mut self) -> Vec<Recovered> {
        std::mem::take(&mut self.recovered)
    }

    /// Runs a journaled execution again, its allocator refusing the grows `refused`; its
    /// outcome was already given when it first ran. Returns the ingress number of a call.
    fn replay(&mut self, entry: &Entry, refused: Vec<u64>) -> Option<u64> {
        if matches!(entry, Entry::Refused { .. }) {
            return None;
        }
        grants::begin_round(Some(refused));
        let number = match entry {
            Entry::Call {
                sender,
                canister,
                method,
                arg,
                time,
                ..
            } => {
                self.last_time = self.last_time.max(*time);
                let ingress = Ingress {
                    sender: *sender,
                    canister: *canister,
                    method,
                    arg,
                };
                self.subnet.round(*time, Some(ingress))
            }
            Entry::Tasks { time } => {
                self.last_time = self.last_time.max(*time);
                self.subnet.round(*time, None);
                None
            }
            Entry::Refused { .. } => None,
            Entry::SetStable { canister, bytes } => {
                let _ = self.apply_stable(canister, bytes);
                None
            }
        };
        grants::end_round();
        number
    }

    /// Runs a round live, journaling after it the stable-memory grows its allocator refused.
    fn live_round(&mut self, time: u64, ingress: Option<Ingress>) -> Option<u64> {
        grants::begin_round(None);
        let number = self.subnet.round(time, ingress);
        let grows = grants::end_round();
        if !grows.is_empty()
            && let Err(reject) = self.journal(&Entry::Refused { grows })
        {
            eprintln!(
                "the round's refused grows could not be journaled ({reject}); a replay of it may grant them"
            );
        }
        number
    }

    /// Records an execution in the journal before it runs; when that fails, it does not run.
    fn journal(&mut self, entry: &Entry) -> Result<(), Reject> {
        let bytes = serde_cbor::to_vec(entry).expect("entries always encode");
        self.subnet.store.log(&bytes).map(drop).map_err(|error| {
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
        let logged = self.subnet.store.logged();
        if logged >= CHECKPOINT_EVERY.max(self.retry_checkpoint_at) && self.commit().is_err() {
            self.retry_checkpoint_at = logged + CHECKPOINT_EVERY;
        }
    }

    /// Makes every journaled execution part of a checkpoint, if there are any: what a
    /// server does on stopping, and what happens before any other change of state.
    pub fn checkpoint(&mut self) -> Result<(), Reject> {
        if self.subnet.store.logged() > 0 {
            self.commit()?;
        }
        Ok(())
    }

    /// Makes the journal durable against power loss (a process crash cannot lose it).
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.subnet.store.sync_journal()
    }

    /// A handle that makes the journal durable while this replica runs other calls: what
    /// the HTTP layer syncs before it answers.
    pub fn journal_syncer(&self) -> Result<crate::store::JournalSyncer, StoreError> {
        self.subnet.store.journal_syncer()
    }

    /// The last journal record the manifest covers.
    fn restore(&mut self, bytes: &[u8]) -> Result<u64, StoreError> {
        let manifest: Manifest =
            serde_cbor::from_slice(bytes).map_err(|e| StoreError::Corrupt {
                path: self.subnet.store.dir().join("state"),
                what: format!("its contents do not decode: {e}"),
            })?;
        self.last_time = manifest.last_time;
        let subnet = &mut self.subnet;
        subnet.next_canister = manifest.next_canister;
        subnet.queue = manifest.queue;
        subnet.next_ingress = manifest.next_ingress;
        subnet.burned = manifest.burned;
        subnet.random_draws = manifest.random_draws;
        subnet.ledgers = manifest.ledgers;
        self.recovered.extend(manifest.last_tagged);
        subnet.canisters = manifest
            .canisters
            .into_iter()
            .map(|state| (state.id, Canister::new(state)))
            .collect();
        Ok(manifest.journaled)
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
        self.subnet.save_memories();
        let subnet = &self.subnet;
        let manifest = Manifest {
            next_canister: subnet.next_canister,
            last_time: self.last_time,
            canisters: subnet.canisters.values().map(|c| c.state.clone()).collect(),
            journaled: subnet.store.last_logged(),
            queue: subnet.queue.clone(),
            next_ingress: subnet.next_ingress,
            burned: subnet.burned,
            random_draws: subnet.random_draws,
            ledgers: subnet.ledgers.clone(),
            last_tagged: self.last_tagged.clone(),
        };
        let bytes = serde_cbor::to_vec(&manifest).expect("the state always encodes");
        self.subnet.store.commit(&bytes)
    }

    /// Goes back to the state on disk: the last checkpoint and the journal after it.
    fn reload(&mut self) -> Result<(), StoreError> {
        self.subnet.clear();
        let (manifest, journal) = self.subnet.store.committed()?;
        self.recover(manifest, journal).map(drop)
    }

    /// A log the HTTP layer keeps with the state (its ingress history), made durable with
    /// the journal by whoever holds it.
    pub fn side_log(&self, name: &str) -> Result<crate::store::SideLog, StoreError> {
        self.subnet.store.side_log(name)
    }

    /// The subnet's keys, kept with the state: the root key certificates are signed with,
    /// which gives the subnet its id, and the node key that signs query responses.
    pub fn keys(&self) -> Result<Keys, StoreError> {
        Keys::load_or_create(&self.subnet.store)
    }

    /// Nanoseconds since the epoch, strictly increasing from call to call: the wall clock,
    /// or with a manual clock the time last set, a nanosecond later each time.
    pub(crate) fn now(&mut self) -> u64 {
        let next = self.last_time.saturating_add(1);
        self.last_time = if self.manual_clock {
            next
        } else {
            wall_clock().max(next)
        };
        self.last_time
    }

    /// The time of the latest round (or the time set since): what the next round's time
    /// follows.
    pub fn time(&self) -> u64 {
        self.last_time
    }

    /// Makes time stand still between rounds (`true`), moving only when set, or follow the
    /// wall clock again (`false`). A state made with a manual clock starts at the wall
    /// clock's time.
    pub fn set_manual_clock(&mut self, manual: bool) {
        self.manual_clock = manual;
        if self.last_time == 0 {
            self.last_time = wall_clock();
        }
    }

    /// Moves time forward to `time`, for the rounds that follow: timers due by then fire
    /// in the next round. Time never goes back, as on the IC.
    pub fn set_time(&mut self, time: u64) -> Result<(), String> {
        if time < self.last_time {
            return Err(format!(
                "the time cannot go back: it is {} ns since the epoch and {time} was asked",
                self.last_time
            ));
        }
        self.last_time = time;
        Ok(())
    }

    pub fn subnet_id(&self) -> Principal {
        self.subnet.id
    }

    /// What the certified state tree shows of each canister.
    pub fn facts(&mut self) -> Vec<CanisterFacts> {
        let mut facts = Vec::new();
        for canister in self.subnet.canisters.values() {
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
                certified_data: canister.state.certified_data.clone(),
                global_timer: canister.state.global_timer,
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
                self.subnet
                    .store
                    .get(&module)
                    .ok()
                    .and_then(|wasm| crate::canister::module::metadata(&wasm).ok())
                    .unwrap_or_default()
            })
            .clone()
    }

    /// The canisters on this replica.
    pub fn canister_ids(&self) -> Vec<Principal> {
        self.subnet.canisters.keys().copied().collect()
    }

    /// A canister's cycle balance; `None` when there is no such canister.
    pub fn cycles_of(&self, canister_id: &Principal) -> Option<u128> {
        let canister = self.subnet.canisters.get(canister_id)?;
        Some(canister.state.cycles)
    }

    /// A canister's stable memory as it is now; empty without code.
    pub fn stable_memory(&mut self, canister_id: &Principal) -> Result<Vec<u8>, Reject> {
        self.subnet.canister_mut(canister_id)?;
        self.subnet.save_memories();
        let canister = &self.subnet.canisters[canister_id];
        let Some(code) = &canister.state.code else {
            return Ok(Vec::new());
        };
        code.stable
            .read(&self.subnet.store, 0, code.stable.len)
            .map(Option::unwrap_or_default)
            .map_err(|e| Reject::new(ErrorCode::CanisterRejectedMessage, e.to_string()))
    }

    /// An update call from `sender` (as ingress): to a canister, or to the management
    /// canister `aaaaa-aa`. Returns the reply's Candid bytes once the call is answered:
    /// the rounds that takes (the calls it makes, and theirs) run first.
    pub fn update(
        &mut self,
        sender: Principal,
        canister_id: Principal,
        method: &str,
        arg: &[u8],
    ) -> Result<Vec<u8>, Reject> {
        self.tick()?;
        let number = self.submit(sender, canister_id, method, arg)?;
        self.await_answer(number)
    }

    /// Takes in an ingress update: refused at once by the ingress filter, or journaled and
    /// run in a round of its own. Returns its number, under which `answer_of` gives the answer.
    pub fn submit(
        &mut self,
        sender: Principal,
        canister_id: Principal,
        method: &str,
        arg: &[u8],
    ) -> Result<u64, Reject> {
        self.submit_tagged(sender, canister_id, method, arg, &[])
    }

    /// `submit`, with a tag of the caller's kept with the call in the state (the journal,
    /// and a checkpoint that covers it), so that a caller recording calls elsewhere can
    /// learn at the next opening of what it had no time to record (`take_recovered`).
    pub fn submit_tagged(
        &mut self,
        sender: Principal,
        canister_id: Principal,
        method: &str,
        arg: &[u8],
        tag: &[u8],
    ) -> Result<u64, Reject> {
        check_arg_size(arg)?;
        if canister_id == Principal::management_canister() || system_canisters::handles(canister_id)
        {
            return self.submit_to_system(sender, canister_id, method, arg, tag);
        }
        let time = self.now();
        self.filter(sender, canister_id, method, arg, time)?;
        self.journal(&Entry::Call {
            sender,
            canister: canister_id,
            method: method.to_owned(),
            arg: arg.to_vec(),
            time,
            tag: tag.to_vec(),
        })?;
        let ingress = Ingress {
            sender,
            canister: canister_id,
            method,
            arg,
        };
        let number = self
            .live_round(time, Some(ingress))
            .expect("an ingress round");
        if let Some(call) = tagged(tag, number, self.subnet.answered.get(&number)) {
            self.last_tagged = Some(call);
        }
        self.checkpoint_if_due();
        Ok(number)
    }

    /// Replaces a canister's stable memory with `bytes`, zero-padded to whole pages, as
    /// PocketIC's `set_stable_memory` does; journaled, so that it is part of the state.
    pub fn set_stable_memory(&mut self, canister: Principal, bytes: &[u8]) -> Result<(), Reject> {
        let canister_state = self.subnet.canister_mut(&canister)?;
        if canister_state.state.code.is_none() {
            // Refused before it is journaled, with the canister's own message.
            return self.apply_stable(&canister, bytes);
        }
        self.journal(&Entry::SetStable {
            canister,
            bytes: bytes.to_vec(),
        })?;
        self.apply_stable(&canister, bytes)?;
        self.checkpoint_if_due();
        Ok(())
    }

    fn apply_stable(&mut self, canister: &Principal, bytes: &[u8]) -> Result<(), Reject> {
        let subnet = &mut self.subnet;
        let found = subnet
            .canisters
            .get_mut(canister)
            .ok_or_else(|| crate::subnet::not_found(canister))?;
        found.set_stable_memory(&mut subnet.store, bytes)
    }

    /// Whether an ingress update would be taken in — the checks `submit` makes first (its
    /// size, the canister's state and method, `canister_inspect_message`) — without taking
    /// it in: for a submitter that holds messages until a later round.
    pub fn check_ingress(
        &mut self,
        sender: Principal,
        canister_id: Principal,
        method: &str,
        arg: &[u8],
    ) -> Result<(), Reject> {
        check_arg_size(arg)?;
        if canister_id == Principal::management_canister() || system_canisters::handles(canister_id)
        {
            return Ok(());
        }
        self.filter(sender, canister_id, method, arg, self.last_time)
    }

    /// The management canister and the system canisters answer ingress at once, on the
    /// state on disk, and their changes are committed before the answer.
    fn submit_to_system(
        &mut self,
        sender: Principal,
        canister_id: Principal,
        method: &str,
        arg: &[u8],
        tag: &[u8],
    ) -> Result<u64, Reject> {
        // They read and write `state.code`, which executions only update at checkpoints.
        self.checkpoint()?;
        let number = self.subnet.next_ingress();
        let time = self.now();
        if let Some((answer, changed)) =
            system_canisters::call(&mut self.subnet, sender, canister_id, method, arg, time)
        {
            if let Some(call) = tagged(tag, number, Some(&answer)) {
                self.last_tagged = Some(call);
            }
            if changed {
                self.commit()?;
            }
            self.subnet.answered.insert(number, answer);
            return Ok(number);
        }
        let origin = Origin::Ingress(number);
        let handled = management::call(
            &mut self.subnet,
            time,
            management::Request {
                sender,
                method,
                arg,
                query: false,
                origin: origin.clone(),
                cycles: 0,
            },
        );
        if let Some(Err(reject)) = &handled.reply
            && reject.at_ingress
        {
            return Err(reject.clone());
        }
        if let Some(call) = tagged(tag, number, handled.reply.as_ref()) {
            self.last_tagged = Some(call);
        }
        if handled.changed {
            self.commit()?;
        }
        self.subnet.apply(handled, origin, 0);
        Ok(number)
    }

    /// Runs rounds until ingress message `number` is answered. One still unanswered when
    /// nothing is left to run waits on something that never comes (a canister stopping
    /// itself); one that keeps calling past the rounds allowed is still being processed.
    fn await_answer(&mut self, number: u64) -> Result<Vec<u8>, Reject> {
        const MAX_ROUNDS: usize = 1_000;
        for _ in 0..MAX_ROUNDS {
            if let Some(answer) = self.subnet.answered.remove(&number) {
                return answer;
            }
            let time = self.now();
            if !self.subnet.has_messages(time) {
                break;
            }
            self.tick()?;
        }
        self.subnet.answered.remove(&number).unwrap_or_else(|| {
            Err(Reject::new(
                ErrorCode::CanisterDidNotReply,
                "The call is still being processed: the calls it made are not answered yet; ask for its status later",
            ))
        })
    }

    /// Whether messages are in flight: rounds have work that is not only system tasks.
    pub fn busy(&mut self) -> bool {
        let time = self.now();
        self.subnet.has_messages(time)
    }

    /// The answer to ingress message `number`, once it is there (taken out: asked once).
    pub fn answer_of(&mut self, number: u64) -> Option<Result<Vec<u8>, Reject>> {
        self.subnet.answered.remove(&number)
    }

    /// A query call: runs on the current state and changes nothing.
    pub fn query(
        &mut self,
        sender: Principal,
        canister_id: Principal,
        method: &str,
        arg: &[u8],
    ) -> Result<Vec<u8>, Reject> {
        check_arg_size(arg)?;
        if system_canisters::handles(canister_id) {
            return system_canisters::query(&self.subnet, canister_id, method, arg);
        }
        let time = self.now();
        if canister_id == Principal::management_canister() {
            // Its query methods read the memories' sizes from `state.code`.
            self.subnet.save_memories();
            let request = management::Request {
                sender,
                method,
                arg,
                query: true,
                origin: Origin::System,
                cycles: 0,
            };
            let handled = management::call(&mut self.subnet, time, request);
            return handled.reply.expect("queries answer at once");
        }
        self.run_query(sender, canister_id, method, arg, time)
    }

    fn run_query(
        &mut self,
        sender: Principal,
        canister_id: Principal,
        method: &str,
        arg: &[u8],
        time: u64,
    ) -> Result<Vec<u8>, Reject> {
        self.subnet.check_running(&canister_id)?;
        let (entry, context) = self
            .subnet
            .entry_point(&canister_id, method, Context::Query)?;
        if context == Context::CompositeQuery {
            return Composite::new(&mut self.subnet, time).call(
                sender,
                canister_id,
                method,
                arg,
                0,
            );
        }
        let message = Message {
            context,
            caller: sender,
            method,
            arg,
            time,
            subnet_id: self.subnet.id,
            incoming: &NO_CALL,
        };
        let subnet = &mut self.subnet;
        let canister = subnet.canisters.get_mut(&canister_id).expect("found above");
        let executed = canister.execute(
            subnet.engine,
            &subnet.store,
            &message,
            EntryPoint::Export(&entry),
        )?;
        self.subnet.last_instructions = executed.instructions;
        Response::answer(executed.response, &canister_id)
    }

    /// The ingress filter: a running canister with the method, whose
    /// `canister_inspect_message` accepts the message.
    fn filter(
        &mut self,
        sender: Principal,
        canister_id: Principal,
        method: &str,
        arg: &[u8],
        time: u64,
    ) -> Result<(), Reject> {
        self.subnet.check_running(&canister_id)?;
        let (_, context) = self
            .subnet
            .entry_point(&canister_id, method, Context::Update)?;
        let message = Message {
            context,
            caller: sender,
            method,
            arg,
            time,
            subnet_id: self.subnet.id,
            incoming: &NO_CALL,
        };
        self.inspect(&canister_id, &message)
    }

    /// Cycles burned on this subnet so far (call fees, `cycles_burn128`, lost refunds).
    pub fn burned_cycles(&self) -> u128 {
        self.subnet.burned
    }

    /// Instructions the last successful call to a canister used (its performance counter).
    pub fn last_instructions(&self) -> u64 {
        self.subnet.last_instructions
    }

    /// Lets the canister refuse an ingress update in `canister_inspect_message`, when it
    /// exports one (IC interface spec, "Message inspection").
    fn inspect(&mut self, canister_id: &Principal, message: &Message) -> Result<(), Reject> {
        const ENTRY: &str = "canister_inspect_message";
        if !self.subnet.exports(canister_id, ENTRY) {
            return Ok(());
        }
        let subnet = &mut self.subnet;
        let canister = subnet
            .canisters
            .get_mut(canister_id)
            .expect("checked by caller");
        let inspect = Message {
            context: Context::InspectMessage,
            ..*message
        };
        // A trap in inspection refuses the message as a decline does: before it runs.
        let executed = canister
            .execute(
                subnet.engine,
                &subnet.store,
                &inspect,
                EntryPoint::Export(ENTRY),
            )
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

    /// Runs a round when anything is due: system tasks, or messages in flight. `update`
    /// calls this first; a server calls it on a clock.
    pub fn tick(&mut self) -> Result<(), Reject> {
        let time = self.now();
        if self.subnet.due_tasks(time).is_empty() && !self.subnet.has_messages(time) {
            return Ok(());
        }
        self.journal(&Entry::Tasks { time })?;
        self.live_round(time, None);
        self.checkpoint_if_due();
        Ok(())
    }
}

/// Closing the replica checkpoints what the journal holds, so the next open replays
/// nothing; should that fail, the journal still holds it all.
impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.checkpoint();
    }
}

/// A tagged call for the checkpoints to carry (`Manifest::last_tagged`); `None` for an
/// untagged one, whose answer is then not copied.
fn tagged(tag: &[u8], number: u64, answer: Option<&Result<Vec<u8>, Reject>>) -> Option<Recovered> {
    (!tag.is_empty()).then(|| Recovered {
        tag: tag.to_vec(),
        number,
        answer: answer.cloned(),
    })
}

fn wall_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Refuses an argument larger than an ingress message may carry.
fn check_arg_size(arg: &[u8]) -> Result<(), Reject> {
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
    Ok(())
}

//! The subnet's state: its canisters, the messages in flight between them, the answers owed
//! to users, the store their memories live in, and the counters that hand out ids and random
//! draws. The management canister, the system canisters and composite queries compute on it;
//! the scheduler's rounds change it; only `replica.rs` journals and commits it.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use candid::Principal;

use crate::canister::{Canister, engine::Engine, env::Context, state::Status};
use crate::error::{ErrorCode, Reject};
use crate::ids;
use crate::queue::Queued;
use crate::store::{Hash, Store};

pub struct Subnet {
    pub(crate) id: Principal,
    pub(crate) store: Store,
    pub(crate) engine: &'static Engine,
    pub(crate) canisters: BTreeMap<Principal, Canister>,
    pub(crate) next_canister: u64,
    /// Messages in flight, in the order they run.
    pub(crate) queue: VecDeque<Queued>,
    pub(crate) next_ingress: u64,
    /// Cycles burned: call fees, `cycles_burn128`, refunds nobody could take.
    pub(crate) burned: u128,
    pub(crate) random_draws: u64,
    /// The ICP and cycles ledgers' balances.
    pub(crate) ledgers: crate::ledgers::Ledgers,
    /// Answers to ingress messages, by number, until their caller takes them.
    pub(crate) answered: HashMap<u64, Result<Vec<u8>, Reject>>,
    /// Instructions the last execution used (its performance counter).
    pub(crate) last_instructions: u64,
}

impl Subnet {
    /// An empty subnet keeping its memories in `store`.
    pub fn new(store: Store) -> Self {
        Self {
            id: Principal::management_canister(),
            store,
            engine: Engine::shared(),
            canisters: BTreeMap::new(),
            next_canister: 0,
            queue: VecDeque::new(),
            next_ingress: 0,
            burned: 0,
            random_draws: 0,
            ledgers: Default::default(),
            answered: HashMap::new(),
            last_instructions: 0,
        }
    }

    /// Forgets what the disk holds (canisters, queue, counters), for it to be loaded again;
    /// the store stays, and so do the answers already given, which the replay makes again.
    pub fn clear(&mut self) {
        self.canisters.clear();
        self.next_canister = 0;
        self.queue.clear();
        self.next_ingress = 0;
        self.burned = 0;
        self.random_draws = 0;
        self.ledgers = Default::default();
    }

    pub(crate) fn canister_mut(&mut self, id: &Principal) -> Result<&mut Canister, Reject> {
        self.canisters.get_mut(id).ok_or_else(|| not_found(id))
    }

    /// The canister, if it exists and is running: what any message to it needs.
    pub(crate) fn check_running(&mut self, canister_id: &Principal) -> Result<(), Reject> {
        match self.canister_mut(canister_id)?.state.status {
            Status::Running => Ok(()),
            Status::Stopping => Err(Reject::new(
                ErrorCode::CanisterStopping,
                format!("Canister {canister_id} is stopping"),
            )),
            Status::Stopped => Err(Reject::new(
                ErrorCode::CanisterStopped,
                format!(
                    "Canister {canister_id} is stopped and therefore does not have a CallContextManager"
                ),
            )),
        }
    }

    /// Whether canister `id` exports `entry` (false too when its module cannot be read).
    pub(crate) fn exports(&mut self, id: &Principal, entry: &str) -> bool {
        let Some(canister) = self.canisters.get_mut(id) else {
            return false;
        };
        canister
            .exports(self.engine, &self.store, entry)
            .ok()
            .flatten()
            == Some(true)
    }

    /// Which export serves `method` for this kind of call (a query may also be answered by a
    /// composite query; an update call may run a query method, as on the IC).
    pub(crate) fn entry_point(
        &mut self,
        canister_id: &Principal,
        method: &str,
        context: Context,
    ) -> Result<(String, Context), Reject> {
        let Self {
            canisters,
            engine,
            store,
            ..
        } = self;
        let canister = canisters
            .get_mut(canister_id)
            .ok_or_else(|| not_found(canister_id))?;
        if context == Context::Update {
            let composite = format!("canister_composite_query {method}");
            if canister.exports(engine, store, &composite)? == Some(true) {
                return Err(Reject::new(
                    ErrorCode::CompositeQueryCalledInReplicatedMode,
                    format!(
                        "Error from Canister {canister_id}: Composite query cannot be called in replicated mode"
                    ),
                )
                .ingress_filter());
            }
        }
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
        for (kind, context) in candidates {
            let entry = format!("{kind} {method}");
            match canister.exports(engine, store, &entry)? {
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

    /// The next id in sequence that no canister has (one may have been created with it as
    /// its `specified_id`).
    pub(crate) fn new_canister_id(&mut self) -> Principal {
        loop {
            let id = ids::canister_id(self.next_canister);
            self.next_canister += 1;
            if !self.canisters.contains_key(&id) {
                return id;
            }
        }
    }

    /// The next ingress message's number.
    pub(crate) fn next_ingress(&mut self) -> u64 {
        let number = self.next_ingress;
        self.next_ingress += 1;
        number
    }

    /// 32 bytes for `raw_rand`: from the subnet's sequence of draws, the same on replay.
    pub(crate) fn draw_random(&mut self, time: u64) -> Vec<u8> {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(b"raw_rand");
        hasher.update(self.id.as_slice());
        hasher.update(self.random_draws.to_le_bytes());
        hasher.update(time.to_le_bytes());
        self.random_draws += 1;
        hasher.finalize().to_vec()
    }

    /// Writes every canister's live memories into `state.code`, where the management
    /// canister and checkpoints read them.
    pub(crate) fn save_memories(&mut self) {
        for canister in self.canisters.values_mut() {
            canister.save(&mut self.store);
        }
    }

    /// Every object the state refers to.
    pub(crate) fn live_objects(&self) -> HashSet<Hash> {
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
}

pub(crate) fn not_found(id: &Principal) -> Reject {
    Reject::new(
        ErrorCode::CanisterNotFound,
        format!("Canister {id} not found"),
    )
    .ingress_filter()
}

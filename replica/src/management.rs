//! The management canister `aaaaa-aa`: canister lifecycle, settings, chunked code, logs and
//! snapshots, with the IC's permissions, reject codes and messages (IC interface spec,
//! "The IC management canister"; ic-interface.md §1–2 for snapshots and status).

use candid::{CandidType, Encode, Principal};
use ic_management_canister_types as ic;
use serde::de::DeserializeOwned;

use crate::canister::{
    InstallMode, Message, NO_CALL,
    calls::Origin,
    chunks,
    env::Context,
    module::MAX_MODULE_BYTES,
    state::{CanisterState, Settings, Snapshot, Status, Visibility, nat},
    transfer,
};
use crate::error::{ErrorCode, Reject};
use crate::ids::{self, SnapshotId};
use crate::subnet::Subnet;
use crate::{candid_args, store};

/// Snapshots a canister may hold (`MAX_NUMBER_OF_SNAPSHOTS_PER_CANISTER`).
pub const MAX_SNAPSHOTS: usize = 10;
/// Cycles a canister gets from `provisional_create_canister_with_cycles` without an amount.
const DEFAULT_CYCLES: u128 = 100_000_000_000_000;
/// A call to the management canister, from a user (ingress) or from a canister.
pub struct Request<'a> {
    pub sender: Principal,
    pub method: &'a str,
    pub arg: &'a [u8],
    /// Set for query calls, which only `canister_status` and `fetch_canister_logs` answer.
    pub query: bool,
    /// Who waits for the answer.
    pub origin: Origin,
    /// Cycles attached to the call (only canisters attach any).
    pub cycles: u128,
}

/// What a call to the management canister did.
pub struct Handled {
    /// The answer, or `None` when it comes later (a `stop_canister` waiting for the
    /// canister's calls to end).
    pub reply: Option<Result<Vec<u8>, Reject>>,
    /// Answers owed to other calls because of this one: stops cancelled by a start, calls
    /// of an uninstalled canister rejected.
    pub answers: Vec<Answer>,
    /// Cycles of the call that the management canister kept.
    pub accepted: u128,
    /// Whether the state changed (and is to be committed, for ingress).
    pub changed: bool,
}

/// An answer to a call other than the one being handled, with the cycles it refunds.
pub struct Answer {
    pub origin: Origin,
    pub result: Result<Vec<u8>, Reject>,
    pub refund: u128,
}

/// Calls `method` of the management canister.
pub fn call(subnet: &mut Subnet, time: u64, request: Request) -> Handled {
    let Request {
        sender,
        method,
        arg,
        query,
        origin,
        cycles,
    } = request;
    let from_canister = matches!(origin, Origin::Canister { .. });
    let mut m = Call {
        time,
        subnet,
        sender,
        method,
        arg,
        origin,
        cycles,
        from_canister,
        answers: Vec::new(),
        accepted: 0,
        changed: false,
        deferred: false,
    };
    let reply = if query && !matches!(method, "canister_status" | "fetch_canister_logs") {
        Err(Reject::new(
            ErrorCode::CanisterMethodNotFound,
            format!("Management canister has no query method '{method}'"),
        ))
    } else {
        m.dispatch()
    };
    Handled {
        reply: (!m.deferred || reply.is_err()).then_some(reply),
        answers: m.answers,
        accepted: m.accepted,
        changed: m.changed,
    }
}

/// One call to the management canister. Each method checks everything before it changes
/// anything, so a reject leaves the state as it was.
struct Call<'a> {
    subnet: &'a mut Subnet,
    sender: Principal,
    method: &'a str,
    arg: &'a [u8],
    time: u64,
    origin: Origin,
    cycles: u128,
    from_canister: bool,
    answers: Vec<Answer>,
    accepted: u128,
    changed: bool,
    /// Set when the answer comes later.
    deferred: bool,
}

type Outcome<T> = Result<T, Reject>;

impl Call<'_> {
    fn dispatch(&mut self) -> Outcome<Vec<u8>> {
        match self.method {
            "provisional_create_canister_with_cycles" => self.write(Call::provisional_create),
            "create_canister" => self.write(Call::create),
            "install_code" => self.write(Call::install_code),
            "uninstall_code" => self.write(Call::uninstall_code),
            "start_canister" => self.write(Call::start),
            "stop_canister" => self.write(Call::stop),
            "canister_status" => self.read(Call::status),
            "update_settings" => self.write(Call::update_settings),
            "upload_chunk" => self.write(Call::upload_chunk),
            "clear_chunk_store" => self.write(Call::clear_chunk_store),
            "stored_chunks" => self.read(Call::stored_chunks),
            "install_chunked_code" => self.write(Call::install_chunked_code),
            "fetch_canister_logs" => self.read(Call::fetch_logs),
            "delete_canister" => self.write(Call::delete),
            "deposit_cycles" => self.write(Call::deposit_cycles),
            "provisional_top_up_canister" => self.write(Call::provisional_top_up),
            "raw_rand" => self.write(Call::raw_rand),
            "take_canister_snapshot" => self.write(Call::take_snapshot),
            "load_canister_snapshot" => self.write(Call::load_snapshot),
            "list_canister_snapshots" => self.read(Call::list_snapshots),
            "delete_canister_snapshot" => self.write(Call::delete_snapshot),
            "read_canister_snapshot_metadata" => self.read(Call::read_snapshot_metadata),
            "read_canister_snapshot_data" => self.read(Call::read_snapshot_data),
            "upload_canister_snapshot_metadata" => self.write(Call::upload_snapshot_metadata),
            "upload_canister_snapshot_data" => self.write(Call::upload_snapshot_data),
            method => Err(Reject::new(
                ErrorCode::CanisterMethodNotFound,
                format!("Management canister has no method '{method}'"),
            )
            .ingress_filter()),
        }
    }

    /// Runs a method that changes state.
    fn write<A: DeserializeOwned + CandidType, R: CandidType>(
        &mut self,
        f: fn(&mut Self, A) -> Outcome<R>,
    ) -> Outcome<Vec<u8>> {
        let reply = self.read(f)?;
        self.changed = true;
        Ok(reply)
    }

    /// Runs a method that only reads.
    fn read<A: DeserializeOwned + CandidType, R: CandidType>(
        &mut self,
        f: fn(&mut Self, A) -> Outcome<R>,
    ) -> Outcome<Vec<u8>> {
        let arg = candid_args::decode::<A>(self.arg).map_err(|e| {
            Reject::new(
                ErrorCode::InvalidManagementPayload,
                format!(
                    "Error decoding candid for the argument of {}: {e}",
                    self.method
                ),
            )
            .ingress_filter()
        })?;
        let reply = f(self, arg)?;
        Ok(Encode!(&reply).expect("management replies always encode"))
    }

    /// The canister, if the caller controls it (IC0512 otherwise).
    fn controlled(&mut self, id: Principal) -> Outcome<&mut CanisterState> {
        let (sender, method) = (self.sender, self.method);
        let canister = self.subnet.canister_mut(&id)?;
        if !canister.state.is_controller(&sender) {
            return Err(not_controller(&id, method, &sender));
        }
        Ok(&mut canister.state)
    }

    /// The canister, if `visibility` lets the caller see it.
    fn visible(
        &mut self,
        id: Principal,
        visibility: fn(&Settings) -> &Visibility,
    ) -> Outcome<&mut CanisterState> {
        let (sender, method) = (self.sender, self.method);
        let canister = self.subnet.canister_mut(&id)?;
        let settings = &canister.state.settings;
        if sender != id && !visibility(settings).allows(&sender, &settings.controllers) {
            return Err(not_controller(&id, method, &sender));
        }
        Ok(&mut canister.state)
    }

    fn message<'m>(&self, arg: &'m [u8]) -> Message<'m> {
        Message {
            context: Context::Update,
            caller: self.sender,
            method: "",
            arg,
            time: self.time,
            subnet_id: self.subnet.id,
            incoming: &NO_CALL,
        }
    }

    /// Rejects the calls an uninstalled canister was answering (IC interface spec,
    /// "IC method uninstall_code"), refunding their cycles.
    fn reject_dropped(&mut self, dropped: Vec<(Origin, u128)>) {
        for (origin, refund) in dropped {
            self.answers.push(Answer {
                origin,
                result: Err(Reject::new(
                    ErrorCode::CanisterRejectedMessage,
                    "Canister has been uninstalled.",
                )),
                refund,
            });
        }
    }

    fn provisional_create(
        &mut self,
        args: ic::ProvisionalCreateCanisterWithCyclesArgs,
    ) -> Outcome<ic::CanisterIdRecord> {
        let cycles = match args.amount {
            Some(amount) => u128::try_from(amount.0).unwrap_or(u128::MAX),
            None => DEFAULT_CYCLES,
        };
        // A development network honours `specified_id` (PocketIC does; the IC ignores it).
        let canister_id = create(
            self.subnet,
            args.specified_id,
            self.sender,
            self.time,
            args.settings,
            cycles.min(u128::from(u64::MAX)),
        )?;
        Ok(ic::CanisterIdRecord { canister_id })
    }

    /// Only canisters may call `create_canister`: the cycles they attach pay for it and
    /// become the new canister's balance (this replica charges no creation fee).
    fn create(&mut self, args: ic::CreateCanisterArgs) -> Outcome<ic::CanisterIdRecord> {
        if !self.from_canister {
            return Err(Reject::new(
                ErrorCode::CanisterRejectedMessage,
                "create_canister can only be called by other canisters; from outside the IC use provisional_create_canister_with_cycles",
            ));
        }
        let created = self.create_with(args.settings, self.cycles)?;
        self.accepted = self.cycles;
        Ok(created)
    }

    /// Adds the attached cycles to any canister's balance; only canisters can attach them.
    fn deposit_cycles(&mut self, args: ic::CanisterIdRecord) -> Outcome<()> {
        let cycles = self.cycles;
        self.subnet.canister_mut(&args.canister_id)?.state.cycles += cycles;
        self.accepted = cycles;
        Ok(())
    }

    /// Cycles from nowhere, for any caller: a development network's method (IC interface
    /// spec, "IC method `provisional_top_up_canister`"), as `provisional_create_canister_with_cycles`.
    fn provisional_top_up(&mut self, args: ic::ProvisionalTopUpCanisterArgs) -> Outcome<()> {
        let amount = u128::try_from(args.amount.0).unwrap_or(u128::MAX);
        let canister = self.subnet.canister_mut(&args.canister_id)?;
        canister.state.cycles = canister.state.cycles.saturating_add(amount);
        Ok(())
    }

    /// 32 bytes no canister can predict: here drawn from the subnet's own sequence, so that
    /// replaying the journal draws the same ones.
    fn raw_rand(&mut self, (): ()) -> Outcome<serde_bytes::ByteBuf> {
        if !self.from_canister {
            return Err(Reject::new(
                ErrorCode::CanisterRejectedMessage,
                "raw_rand can only be called by canisters",
            ));
        }
        Ok(serde_bytes::ByteBuf::from(
            self.subnet.draw_random(self.time),
        ))
    }

    fn create_with(
        &mut self,
        settings: Option<ic::CanisterSettings>,
        cycles: u128,
    ) -> Outcome<ic::CanisterIdRecord> {
        let canister_id = create(self.subnet, None, self.sender, self.time, settings, cycles)?;
        Ok(ic::CanisterIdRecord { canister_id })
    }

    fn install_code(&mut self, args: ic::InstallCodeArgs) -> Outcome<()> {
        self.install(args.canister_id, args.mode, &args.wasm_module, &args.arg)
    }

    fn install(
        &mut self,
        id: Principal,
        mode: ic::CanisterInstallMode,
        wasm: &[u8],
        arg: &[u8],
    ) -> Outcome<()> {
        let state = self.controlled(id)?;
        let mode = install_mode(mode);
        if mode == InstallMode::Install && state.code.is_some() {
            return Err(Reject::new(
                ErrorCode::CanisterNonEmpty,
                format!(
                    "Canister {id} cannot be installed because the canister is not empty. Try installing with mode='reinstall' instead."
                ),
            ));
        }
        let message = self.message(arg);
        let subnet = &mut *self.subnet;
        let canister = subnet.canisters.get_mut(&id).expect("checked");
        canister.install(subnet.engine, &mut subnet.store, mode, wasm, &message)
    }

    fn upload_chunk(&mut self, args: ic::UploadChunkArgs) -> Outcome<ic::ChunkHash> {
        let state = self.controlled(args.canister_id)?;
        let hash = store::hash(&args.chunk);
        chunks::check_insert(&state.chunks, &hash, args.chunk.len())?;
        state.chunks.insert(hash, args.chunk.len() as u64);
        self.subnet.store.put_hashed(hash, &args.chunk);
        Ok(ic::ChunkHash {
            hash: hash.to_vec(),
        })
    }

    fn clear_chunk_store(&mut self, args: ic::CanisterIdRecord) -> Outcome<()> {
        self.controlled(args.canister_id)?.chunks.clear();
        Ok(())
    }

    fn stored_chunks(&mut self, args: ic::CanisterIdRecord) -> Outcome<Vec<ic::ChunkHash>> {
        let state = self.controlled(args.canister_id)?;
        Ok(state
            .chunks
            .keys()
            .map(|h| ic::ChunkHash { hash: h.to_vec() })
            .collect())
    }

    fn install_chunked_code(&mut self, args: ic::InstallChunkedCodeArgs) -> Outcome<()> {
        let store_id = args.store_canister.unwrap_or(args.target_canister);
        self.controlled(args.target_canister)?;
        // The ingress filter checks the target only; a store canister that is missing or not
        // the caller's is found out when the call runs, and that answer is certified.
        let stored = self
            .controlled(store_id)
            .map_err(|reject| Reject {
                at_ingress: false,
                ..reject
            })?
            .chunks
            .clone();
        let mut wasm = Vec::new();
        for chunk in &args.chunk_hashes_list {
            let hash: Option<store::Hash> = chunk.hash.as_slice().try_into().ok();
            let Some(hash) = hash.filter(|h| stored.contains_key(h)) else {
                return Err(chunks::error(format!(
                    "Chunk {} is not present in the chunk store of canister {store_id}.",
                    store::hex(&chunk.hash)
                )));
            };
            // A short list may name one chunk many times: stop before the module outgrows
            // what any install accepts, rather than assemble gigabytes.
            if wasm.len() as u64 + stored[&hash] > MAX_MODULE_BYTES as u64 {
                return Err(chunks::error(format!(
                    "The chunks listed add up to more than the {MAX_MODULE_BYTES} bytes a wasm module may have."
                )));
            }
            let bytes = self
                .subnet
                .store
                .get(&hash)
                .map_err(|e| Reject::new(ErrorCode::CanisterRejectedMessage, e.to_string()))?;
            wasm.extend_from_slice(&bytes);
        }
        let hash = store::hash(&wasm);
        if hash.as_slice() != args.wasm_module_hash {
            return Err(chunks::error(format!(
                "Wasm module hash {} does not match given hash {}.",
                store::hex(&hash),
                store::hex(&args.wasm_module_hash)
            )));
        }
        self.install(args.target_canister, args.mode, &wasm, &args.arg)
    }

    fn fetch_logs(
        &mut self,
        args: ic::FetchCanisterLogsArgs,
    ) -> Outcome<ic::FetchCanisterLogsResult> {
        let state = self.visible(args.canister_id, |s| &s.log_visibility)?;
        let keep = |r: &&crate::canister::state::LogRecord| match &args.filter {
            None => true,
            Some(ic::CanisterLogFilter::ByIdx { start, end }) => (*start..=*end).contains(&r.index),
            Some(ic::CanisterLogFilter::ByTimestampNanos { start, end }) => {
                (*start..=*end).contains(&r.timestamp)
            }
        };
        Ok(ic::FetchCanisterLogsResult {
            canister_log_records: state
                .logs
                .iter()
                .filter(keep)
                .map(|r| ic::CanisterLogRecord {
                    idx: r.index,
                    timestamp_nanos: r.timestamp,
                    content: r.content.clone(),
                })
                .collect(),
        })
    }

    fn uninstall_code(&mut self, args: ic::UninstallCodeArgs) -> Outcome<()> {
        self.controlled(args.canister_id)?;
        let (time, sender) = (self.time, self.sender);
        let dropped = self
            .subnet
            .canister_mut(&args.canister_id)?
            .uninstall(time, sender);
        self.reject_dropped(dropped);
        Ok(())
    }

    /// Each start and stop counts as a change of the canister (`canister_version`), even of
    /// one already so, and a stop's passing from stopping to stopped counts once more (IC
    /// interface spec, "IC method start_canister" and "stop_canister").
    fn start(&mut self, args: ic::CanisterIdRecord) -> Outcome<()> {
        let id = args.canister_id;
        let canister = self.controlled(id)?;
        canister.status = Status::Running;
        canister.version += 1;
        let cancelled = std::mem::take(&mut canister.calls.stop_waiters);
        for origin in cancelled {
            self.answers.push(Answer {
                origin,
                result: Err(Reject::new(
                    ErrorCode::CanisterStoppingCancelled,
                    format!("Canister {id}'s stop request was cancelled."),
                )),
                refund: 0,
            });
        }
        Ok(())
    }

    /// A canister with calls open stays stopping, and the answer waits, until they end;
    /// one without is stopped at once (IC interface spec, "IC method stop_canister").
    fn stop(&mut self, args: ic::CanisterIdRecord) -> Outcome<()> {
        let origin = self.origin.clone();
        let canister = self.controlled(args.canister_id)?;
        canister.version += 1;
        if canister.status == Status::Stopped {
            return Ok(());
        }
        if canister.calls.contexts.is_empty() {
            canister.status = Status::Stopped;
            canister.version += 1;
            return Ok(());
        }
        canister.status = Status::Stopping;
        canister.calls.stop_waiters.push(origin);
        self.deferred = true;
        Ok(())
    }

    fn status(&mut self, args: ic::CanisterIdRecord) -> Outcome<ic::CanisterStatusResult> {
        self.visible(args.canister_id, |s| &s.status_visibility)?;
        let canister = self.subnet.canister_mut(&args.canister_id)?;
        let (heap, stable, globals, module) = canister.memory_sizes();
        let state = &canister.state;
        let chunks = state.chunk_store_size();
        let snapshots = state.snapshots_size();
        let history = 64 * state.history.len() as u64;
        let logs: u64 = state.logs.iter().map(|r| r.content.len() as u64 + 16).sum();
        let total = heap + stable + globals + module + chunks + snapshots + history;
        Ok(ic::CanisterStatusResult {
            status: match state.status {
                Status::Running => ic::CanisterStatusType::Running,
                Status::Stopping => ic::CanisterStatusType::Stopping,
                Status::Stopped => ic::CanisterStatusType::Stopped,
            },
            ready_for_migration: false,
            version: state.version,
            settings: (&state.settings).into(),
            module_hash: canister.module_hash().map(|h| h.to_vec()),
            memory_size: nat(total),
            memory_metrics: ic::MemoryMetrics {
                wasm_memory_size: nat(heap),
                stable_memory_size: nat(stable),
                global_memory_size: nat(globals),
                wasm_binary_size: nat(module),
                custom_sections_size: nat(0u64),
                canister_history_size: nat(history),
                wasm_chunk_store_size: nat(chunks),
                snapshots_size: nat(snapshots),
                log_memory_store_size: nat(logs),
            },
            cycles: nat(state.cycles),
            reserved_cycles: nat(0u64),
            idle_cycles_burned_per_day: nat(0u64),
            query_stats: ic::QueryStats {
                num_calls_total: nat(0u64),
                num_instructions_total: nat(0u64),
                request_payload_bytes_total: nat(0u64),
                response_payload_bytes_total: nat(0u64),
            },
        })
    }

    fn update_settings(&mut self, args: ic::UpdateSettingsArgs) -> Outcome<()> {
        let (time, sender) = (self.time, self.sender);
        let canister = self.controlled(args.canister_id)?;
        let mut settings = canister.settings.clone();
        let controllers_changed = args.settings.controllers.is_some();
        apply_settings(&mut settings, args.settings)?;
        canister.settings = settings;
        canister.version += 1;
        if controllers_changed {
            let controllers = canister.settings.controllers.clone();
            canister.record(
                time,
                sender,
                crate::canister::state::ChangeKind::Controllers(controllers),
            );
        }
        Ok(())
    }

    fn delete(&mut self, args: ic::CanisterIdRecord) -> Outcome<()> {
        if args.canister_id == self.sender {
            return Err(Reject::new(
                ErrorCode::CanisterContractViolation,
                format!("Canister {} cannot delete itself.", self.sender),
            ));
        }
        let canister = self.controlled(args.canister_id)?;
        if canister.status != Status::Stopped {
            return Err(Reject::new(
                ErrorCode::CanisterNotStopped,
                format!(
                    "Canister {} must be stopped before it is deleted.",
                    args.canister_id
                ),
            ));
        }
        self.subnet.canisters.remove(&args.canister_id);
        Ok(())
    }

    fn take_snapshot(&mut self, args: ic::TakeCanisterSnapshotArgs) -> Outcome<ic::Snapshot> {
        let (time, sender) = (self.time, self.sender);
        let id = args.canister_id;
        let state = self.controlled(id)?;
        let replaced = args.replace_snapshot.as_deref().map(SnapshotId::parse);
        check_room(state, replaced.as_ref())?;
        let canister = self.subnet.canister_mut(&id)?;
        let snapshot_id = ids::snapshot_id(canister.state.next_snapshot, &id);
        let Some(snapshot) = canister.snapshot(snapshot_id, time) else {
            return Err(Reject::new(
                ErrorCode::CanisterRejectedMessage,
                format!("Failed to create snapshot for empty canister {id}:"),
            ));
        };
        let state = &mut canister.state;
        state.next_snapshot += 1;
        if let Some(replaced) = &args.replace_snapshot {
            state.snapshots.retain(|s| &s.id != replaced);
        }
        let reply = describe(&snapshot);
        state.snapshots.push(snapshot);
        if args.uninstall_code == Some(true) {
            let dropped = canister.uninstall(time, sender);
            self.reject_dropped(dropped);
        }
        Ok(reply)
    }

    fn load_snapshot(&mut self, args: ic::LoadCanisterSnapshotArgs) -> Outcome<()> {
        let (time, sender) = (self.time, self.sender);
        let id = args.canister_id;
        self.controlled(id)?;
        let snapshot_id = SnapshotId::parse(&args.snapshot_id);
        let owner = snapshot_id
            .owner()
            .ok_or_else(|| snapshot_not_found(&snapshot_id, &id))?;
        if owner != id {
            let owner_state = self
                .subnet
                .canister_mut(&owner)
                .map_err(|_| snapshot_not_found(&snapshot_id, &id))?;
            if !owner_state.state.is_controller(&sender) {
                return Err(Reject::new(
                    ErrorCode::CanisterRejectedMessage,
                    format!(
                        "Only a controller of the canister that snapshot {} belongs to can load it on canister {id}.",
                        snapshot_id
                    ),
                ));
            }
        }
        let owner_state = &mut self.subnet.canister_mut(&owner)?.state;
        let snapshot = find_snapshot(owner_state, &snapshot_id)?.clone();
        let subnet = &mut *self.subnet;
        let canister = subnet.canisters.get_mut(&id).expect("checked");
        canister.load(subnet.engine, &mut subnet.store, &snapshot, time, sender)
    }

    fn list_snapshots(&mut self, args: ic::CanisterIdRecord) -> Outcome<Vec<ic::Snapshot>> {
        let state = self.visible(args.canister_id, |s| &s.snapshot_visibility)?;
        Ok(state.snapshots.iter().map(describe).collect())
    }

    fn delete_snapshot(&mut self, args: ic::DeleteCanisterSnapshotArgs) -> Outcome<()> {
        let state = self.controlled(args.canister_id)?;
        find_snapshot(state, &SnapshotId::parse(&args.snapshot_id))?;
        state.snapshots.retain(|s| s.id != args.snapshot_id);
        Ok(())
    }
}

impl Call<'_> {
    fn read_snapshot_metadata(
        &mut self,
        args: ic::ReadCanisterSnapshotMetadataArgs,
    ) -> Outcome<ic::ReadCanisterSnapshotMetadataResult> {
        let state = self.visible(args.canister_id, |s| &s.snapshot_visibility)?;
        let snapshot_id = SnapshotId::parse(&args.snapshot_id);
        Ok(transfer::metadata(find_snapshot(state, &snapshot_id)?))
    }

    fn read_snapshot_data(
        &mut self,
        args: ic::ReadCanisterSnapshotDataArgs,
    ) -> Outcome<ic::ReadCanisterSnapshotDataResult> {
        self.visible(args.canister_id, |s| &s.snapshot_visibility)?;
        let subnet = &*self.subnet;
        let state = &subnet.canisters[&args.canister_id].state;
        let snapshot = find_snapshot(state, &SnapshotId::parse(&args.snapshot_id))?;
        let chunk = transfer::read(snapshot, &subnet.store, args.kind)?;
        Ok(ic::ReadCanisterSnapshotDataResult { chunk })
    }

    fn upload_snapshot_metadata(
        &mut self,
        args: ic::UploadCanisterSnapshotMetadataArgs,
    ) -> Outcome<ic::UploadCanisterSnapshotMetadataResult> {
        let time = self.time;
        let replaced = args.replace_snapshot.as_deref().map(SnapshotId::parse);
        check_room(self.controlled(args.canister_id)?, replaced.as_ref())?;
        let subnet = &mut *self.subnet;
        let canister = subnet
            .canisters
            .get_mut(&args.canister_id)
            .expect("checked");
        let memory64 = canister.memory64(subnet.engine, &subnet.store)?;
        let state = &mut canister.state;
        let id = ids::snapshot_id(state.next_snapshot, &state.id);
        let snapshot = transfer::from_metadata(id.clone(), time, state.version, memory64, &args)?;
        state.next_snapshot += 1;
        if let Some(replaced) = &args.replace_snapshot {
            state.snapshots.retain(|s| &s.id != replaced);
        }
        state.snapshots.push(snapshot);
        Ok(ic::UploadCanisterSnapshotMetadataResult { snapshot_id: id })
    }

    fn upload_snapshot_data(&mut self, args: ic::UploadCanisterSnapshotDataArgs) -> Outcome<()> {
        let state = self.controlled(args.canister_id)?;
        find_snapshot(state, &SnapshotId::parse(&args.snapshot_id))?;
        let subnet = &mut *self.subnet;
        let state = &mut subnet
            .canisters
            .get_mut(&args.canister_id)
            .expect("checked")
            .state;
        let snapshot = state
            .snapshots
            .iter_mut()
            .find(|s| s.id == args.snapshot_id)
            .expect("found above");
        // Work on a copy so that a rejected upload leaves the snapshot as it was.
        let mut updated = snapshot.clone();
        transfer::write(&mut updated, &mut subnet.store, args.kind, &args.chunk)?;
        *snapshot = updated;
        Ok(())
    }
}

/// Whether a new snapshot fits: `replace` must name one of the canister's own, or there must
/// be fewer than the limit.
fn check_room(state: &CanisterState, replace: Option<&SnapshotId>) -> Outcome<()> {
    match replace {
        Some(replaced) => find_snapshot(state, replaced).map(drop),
        None if state.snapshots.len() >= MAX_SNAPSHOTS => Err(Reject::new(
            ErrorCode::CanisterRejectedMessage,
            format!(
                "Canister {} has reached the maximum number of snapshots allowed: {MAX_SNAPSHOTS}.",
                state.id
            ),
        )),
        None => Ok(()),
    }
}

/// Creates a canister controlled by `controller` (or by the settings' controllers).
/// Creates a canister: with id `specified`, else the next free one.
pub(crate) fn create(
    subnet: &mut Subnet,
    specified: Option<Principal>,
    controller: Principal,
    time: u64,
    settings: Option<ic::CanisterSettings>,
    cycles: u128,
) -> Outcome<Principal> {
    let mut defaults = Settings::new(vec![controller]);
    if let Some(settings) = settings {
        apply_settings(&mut defaults, settings)?;
    }
    let id = match specified {
        Some(id) if subnet.canisters.contains_key(&id) => {
            return Err(Reject::new(
                ErrorCode::CanisterIdAlreadyExists,
                format!("Canister {id} is already installed."),
            ));
        }
        Some(id) => id,
        None => subnet.new_canister_id(),
    };
    let controllers = defaults.controllers.clone();
    let mut state = CanisterState::new(id, defaults, cycles);
    state.record(
        time,
        controller,
        crate::canister::state::ChangeKind::Creation(controllers),
    );
    subnet
        .canisters
        .insert(id, crate::canister::Canister::new(state));
    Ok(id)
}

fn describe(snapshot: &Snapshot) -> ic::Snapshot {
    ic::Snapshot {
        id: snapshot.id.clone(),
        taken_at_timestamp: snapshot.taken_at,
        total_size: snapshot.size(),
    }
}

/// The canister's own snapshot `id` (IC0305 when unknown, IC0406 when another canister's).
fn find_snapshot<'s>(state: &'s CanisterState, id: &SnapshotId) -> Outcome<&'s Snapshot> {
    match id.owner() {
        Some(owner) if owner != state.id => Err(Reject::new(
            ErrorCode::CanisterRejectedMessage,
            format!(
                "The snapshot {id} does not belong to canister {}.",
                state.id
            ),
        )),
        _ => state
            .snapshots
            .iter()
            .find(|s| s.id == id.as_bytes())
            .ok_or_else(|| snapshot_not_found(id, &state.id)),
    }
}

fn snapshot_not_found(id: &SnapshotId, canister: &Principal) -> Reject {
    Reject::new(
        ErrorCode::CanisterSnapshotNotFound,
        format!("Could not find the snapshot ID {id} for canister {canister}."),
    )
}

fn not_controller(id: &Principal, method: &str, sender: &Principal) -> Reject {
    Reject::new(
        ErrorCode::CanisterInvalidController,
        format!(
            "Only controllers of canister {id} can call ic00 method {method}; {sender} is not one of them."
        ),
    )
    .ingress_filter()
}

fn install_mode(mode: ic::CanisterInstallMode) -> InstallMode {
    match mode {
        ic::CanisterInstallMode::Install => InstallMode::Install,
        ic::CanisterInstallMode::Reinstall => InstallMode::Reinstall,
        ic::CanisterInstallMode::Upgrade(flags) => {
            let flags = flags.unwrap_or_default();
            InstallMode::Upgrade {
                skip_pre_upgrade: flags.skip_pre_upgrade == Some(true),
                keep_heap: flags.wasm_memory_persistence == Some(ic::WasmMemoryPersistence::Keep),
                persistence_given: flags.wasm_memory_persistence.is_some(),
            }
        }
    }
}

/// Applies the given settings, refusing out-of-range values before changing anything.
fn apply_settings(settings: &mut Settings, new: ic::CanisterSettings) -> Outcome<()> {
    let invalid = |what: String| Reject::new(ErrorCode::InvalidManagementPayload, what);
    let u64_of = |name: &str, n: candid::Nat, max: u64| -> Outcome<u64> {
        u64::try_from(n.0)
            .ok()
            .filter(|v| *v <= max)
            .ok_or_else(|| invalid(format!("{name} must be at most {max}")))
    };
    let mut next = settings.clone();
    if let Some(controllers) = new.controllers {
        if controllers.len() > 10 {
            return Err(invalid(format!(
                "a canister may have at most 10 controllers, not {}",
                controllers.len()
            )));
        }
        next.controllers = controllers;
    }
    if let Some(n) = new.compute_allocation {
        next.compute_allocation = u64_of("compute_allocation", n, 100)?;
    }
    if let Some(n) = new.memory_allocation {
        next.memory_allocation = u64_of("memory_allocation", n, 1 << 48)?;
    }
    if let Some(n) = new.freezing_threshold {
        next.freezing_threshold = u64_of("freezing_threshold", n, u64::MAX)?;
    }
    if let Some(n) = new.reserved_cycles_limit {
        next.reserved_cycles_limit = u128::from(u64_of("reserved_cycles_limit", n, u64::MAX)?);
    }
    if let Some(n) = new.minimum_incoming_canister_call_cycles {
        next.minimum_incoming_canister_call_cycles = u128::from(u64_of(
            "minimum_incoming_canister_call_cycles",
            n,
            u64::MAX,
        )?);
    }
    if let Some(n) = new.wasm_memory_limit {
        next.wasm_memory_limit = u64_of("wasm_memory_limit", n, 1 << 48)?;
    }
    if let Some(n) = new.wasm_memory_threshold {
        next.wasm_memory_threshold = u64_of("wasm_memory_threshold", n, 1 << 48)?;
    }
    if let Some(n) = new.log_memory_limit {
        next.log_memory_limit = u64_of("log_memory_limit", n, 2 << 20)?;
    }
    if let Some(v) = new.log_visibility {
        next.log_visibility = v.into();
    }
    if let Some(v) = new.snapshot_visibility {
        next.snapshot_visibility = v.into();
    }
    if let Some(v) = new.status_visibility {
        next.status_visibility = v.into();
    }
    if let Some(vars) = new.environment_variables {
        if vars.len() > 20
            || vars
                .iter()
                .any(|v| v.name.len() > 128 || v.value.len() > 128)
        {
            return Err(invalid(
                "at most 20 environment variables, names and values of at most 128 bytes".into(),
            ));
        }
        next.environment_variables = vars.into_iter().map(|v| (v.name, v.value)).collect();
    }
    *settings = next;
    Ok(())
}

//! A canister: its persisted state, the engine that runs its wasm, and the System API.
//! `Canister` ties them together — it runs messages, installs code and takes and loads
//! snapshots, leaving permissions and routing to the replica above it.

pub mod calls;
pub mod chunks;
mod code_cache;
mod dirty;
#[cfg(feature = "fault-points")]
pub use dirty::check as dirty_check;
pub mod engine;
pub mod env;
pub mod grants;
pub mod image;
pub mod module;
pub mod stable;
pub mod state;
pub mod system_api;
pub mod transfer;

use std::{collections::BTreeSet, sync::Arc};

use candid::Principal;

use crate::error::{ErrorCode, Reject, StoreError};
use crate::store::{self, Store};
use calls::{Incoming, OutgoingCall};
use engine::{Compiled, Engine, Entry, Kept, Outcome, WasmState};
use env::{Context, Env, Response, RunStatus};
use image::MemoryImage;
use stable::StableMemory;
use state::{CanisterState, ChangeKind, Code, Snapshot, Status};

/// Largest heap of a wasm32 canister.
const MAX_WASM32_HEAP: u64 = 4 << 30;

/// The code, heap and stable memory of a canister, loaded from the store on first use.
struct Live {
    compiled: Arc<Compiled>,
    wasm: WasmState,
    stable: Vec<u8>,
    /// The instance replicated messages run on, holding `wasm` (reusable modules only).
    kept: Option<Kept>,
}

pub struct Canister {
    pub state: CanisterState,
    live: Option<Live>,
    /// Set when executions changed the live memories since `state.code` was last written;
    /// the next checkpoint saves them (`save`).
    unsaved: Option<Unsaved>,
    /// A copy for one composite query: its executions keep what they change, and the copy
    /// is dropped when the query ends.
    scratch: bool,
}

/// The pages executions changed since the last save.
#[derive(Default)]
struct Unsaved {
    stable: BTreeSet<u64>,
    /// `None` when any heap page may have changed.
    heap: Option<BTreeSet<u64>>,
}

/// What an install hands to the new code: stable memory, the heap when it is kept, and the
/// certified data.
#[derive(Default)]
struct Carried {
    stable: Vec<u8>,
    heap: Option<WasmState>,
    certified_data: Vec<u8>,
}

/// How to install code (`install_code`'s mode, decoded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstallMode {
    Install,
    Reinstall,
    Upgrade {
        skip_pre_upgrade: bool,
        keep_heap: bool,
        /// Whether `wasm_memory_persistence` was given at all (`keep` or `replace`).
        persistence_given: bool,
    },
}

/// What a successful execution left: its answer, if it gave one, whether
/// `canister_inspect_message` accepted the message, and the calls it made.
pub struct Executed {
    pub response: Option<Response>,
    pub accepted: bool,
    /// Instructions the execution used, as `ic0.performance_counter(0)` counts them.
    pub instructions: u64,
    /// Calls performed, to be sent now that the execution succeeded.
    pub calls: Vec<OutgoingCall>,
    /// Cycles of the incoming call still not accepted.
    pub available: u128,
    /// Cycles paid in call fees.
    pub fees: u128,
}

impl Executed {
    fn of(env: &mut Env, instructions: u64) -> Self {
        Self {
            response: env.response.take(),
            accepted: env.accepted,
            instructions,
            calls: std::mem::take(&mut env.calls),
            available: env.incoming.available,
            fees: env.fees,
        }
    }
}

/// What a message brings that is not a call's: no cycles, no reject, no deadline.
pub static NO_CALL: Incoming = Incoming {
    available: 0,
    refunded: 0,
    reject: None,
    deadline: 0,
    responded: false,
};

/// Everything an execution needs from outside the canister.
pub struct Message<'a> {
    pub context: Context,
    pub caller: Principal,
    pub method: &'a str,
    pub arg: &'a [u8],
    pub time: u64,
    pub subnet_id: Principal,
    /// What the call being answered carries (`NO_CALL` for what is not a call).
    pub incoming: &'a Incoming,
}

/// The custom section by which a module asks for its heap to be kept on upgrade (Motoko's
/// enhanced orthogonal persistence).
const KEEPS_HEAP_SECTION: &str = "enhanced-orthogonal-persistence";

fn keeps_heap(compiled: &Compiled) -> bool {
    let metadata = &compiled.info.metadata;
    metadata
        .iter()
        .any(|(_, name, _)| name == KEEPS_HEAP_SECTION)
}

/// The IC's guards on `wasm_memory_persistence` (its execution environment's
/// `determine_main_memory_handling`): a module that keeps its heap is never upgraded without
/// saying what becomes of it (`replace`, said, discards it), and `keep` is refused for a new
/// module that does not expect a kept heap.
fn check_persistence(
    old: Option<&Compiled>,
    new: &Compiled,
    keep: bool,
    given: bool,
) -> Result<(), Reject> {
    if !given && old.is_some_and(keeps_heap) {
        return Err(Reject::new(
            ErrorCode::CanisterContractViolation,
            "Missing upgrade option: Enhanced orthogonal persistence requires the `wasm_memory_persistence` upgrade option.",
        ));
    }
    if keep && !keeps_heap(new) {
        return Err(Reject::new(
            ErrorCode::CanisterContractViolation,
            "Invalid upgrade option: The `wasm_memory_persistence: opt Keep` upgrade option requires that the new canister module supports enhanced orthogonal persistence.",
        ));
    }
    Ok(())
}

impl Canister {
    pub fn new(state: CanisterState) -> Self {
        Self {
            state,
            live: None,
            unsaved: None,
            scratch: false,
        }
    }

    /// A copy of this canister whose executions change only the copy (a composite query's
    /// view of it, discarded at the end).
    pub fn scratch(&mut self, engine: &Engine, store: &Store) -> Result<Self, Reject> {
        let live = self.live(engine, store)?.map(|live| Live {
            compiled: live.compiled.clone(),
            wasm: live.wasm.clone(),
            stable: live.stable.clone(),
            kept: None,
        });
        Ok(Self {
            state: self.state.clone(),
            live,
            unsaved: None,
            scratch: true,
        })
    }

    pub fn id(&self) -> Principal {
        self.state.id
    }

    fn live(&mut self, engine: &Engine, store: &Store) -> Result<Option<&mut Live>, Reject> {
        let Some(code) = &self.state.code else {
            return Ok(None);
        };
        if self.live.is_none() {
            let fail = |e: StoreError| Reject::new(ErrorCode::CanisterTrapped, e.to_string());
            let module = store.get(&code.module).map_err(fail)?;
            self.live = Some(Live {
                compiled: engine.compile(&module)?,
                wasm: WasmState {
                    heap: code.heap.restore(store).map_err(fail)?,
                    globals: code.globals.clone(),
                },
                stable: code.stable.restore(store).map_err(fail)?,
                kept: None,
            });
        }
        Ok(self.live.as_mut())
    }

    /// Whether the installed module is wasm64 (false when there is none).
    pub fn memory64(&self, engine: &Engine, store: &Store) -> Result<bool, Reject> {
        if let Some(live) = &self.live {
            return Ok(live.compiled.info.memory64);
        }
        let Some(code) = &self.state.code else {
            return Ok(false);
        };
        let module = store
            .get(&code.module)
            .map_err(|e| Reject::new(ErrorCode::CanisterRejectedMessage, e.to_string()))?;
        Ok(engine.compile(&module)?.info.memory64)
    }

    /// Whether the installed module exports `entry`; `None` when there is no module.
    pub fn exports(
        &mut self,
        engine: &Engine,
        store: &Store,
        entry: &str,
    ) -> Result<Option<bool>, Reject> {
        Ok(self
            .live(engine, store)?
            .map(|live| live.compiled.exports(entry)))
    }

    /// The installed module's `icp:public` / `icp:private` metadata section.
    pub fn metadata(
        &mut self,
        engine: &Engine,
        store: &Store,
        name: &str,
    ) -> Result<Option<(bool, Vec<u8>)>, Reject> {
        Ok(self.live(engine, store)?.and_then(|live| {
            live.compiled
                .info
                .metadata
                .iter()
                .find(|(_, n, _)| n == name)
                .map(|(public, _, data)| (*public, data.clone()))
        }))
    }

    fn env(&self, message: &Message, stable: Vec<u8>, memory64: bool) -> Env {
        let mut env = Env::new(message.context, self.state.id, message.time);
        env.caller = message.caller;
        env.method = message.method.to_owned();
        env.arg = message.arg.to_vec();
        env.subnet_id = message.subnet_id;
        env.controllers = self.state.settings.controllers.clone();
        env.status = match self.state.status {
            Status::Running => RunStatus::Running,
            Status::Stopping => RunStatus::Stopping,
            Status::Stopped => RunStatus::Stopped,
        };
        env.version = self.state.version;
        env.cycles = self.state.cycles;
        env.stable = StableMemory::new(stable);
        env.certified_data = self.state.certified_data.clone();
        env.global_timer = self.state.global_timer;
        env.incoming = message.incoming.clone();
        let hard = if memory64 { u64::MAX } else { MAX_WASM32_HEAP };
        // The `wasm_memory_limit` setting holds only in update, init and post_upgrade (IC
        // interface spec, "wasm_memory_limit"), so a canister at its limit can be upgraded.
        let limited = matches!(
            message.context,
            Context::Update | Context::Init | Context::PostUpgrade
        );
        env.heap_limit = match self.state.settings.wasm_memory_limit {
            limit if limited && limit != 0 => limit.min(hard),
            _ => hard,
        };
        env
    }

    /// Runs a message on the canister's current state. Replicated executions keep what
    /// they changed when they succeed; queries never do.
    pub fn execute(
        &mut self,
        engine: &Engine,
        store: &Store,
        message: &Message,
        entry: Entry,
    ) -> Result<Executed, Reject> {
        // A scratch copy keeps what its executions change; nothing of it is ever saved.
        let scratch = self.scratch;
        let Some(live) = self.live(engine, store)? else {
            return Err(Reject::new(
                ErrorCode::CanisterWasmModuleNotFound,
                format!(
                    "Error from Canister {}: Attempted to execute a message, but the canister contains no Wasm module.",
                    self.state.id
                ),
            ));
        };
        let compiled = live.compiled.clone();
        let replicated = message.context.replicated() || scratch;
        let stable = std::mem::take(&mut live.stable);
        let env = self.env(message, stable, compiled.info.memory64);
        let live = self.live.as_mut().expect("loaded above");
        if !replicated {
            // A query changes nothing: its heap writes and stable writes are undone.
            let outcome = if compiled.info.reusable && compiled.has(entry) {
                engine.run_undone(&compiled, &mut live.kept, &live.wasm, env, entry)
            } else {
                let outcome = engine.run(&compiled, Some(&live.wasm), env, false, Some(entry));
                Outcome {
                    env: outcome.env,
                    result: outcome.result.map(drop),
                    instructions: outcome.instructions,
                }
            };
            let mut env = outcome.env;
            let executed = Executed::of(&mut env, outcome.instructions);
            env.stable.roll_back();
            live.stable = env.stable.finish().0;
            return outcome.result.map(|_| executed);
        }
        let (mut env, result, instructions) = if compiled.info.reusable && compiled.has(entry) {
            let outcome = engine.run_kept(&compiled, &mut live.kept, &mut live.wasm, env, entry);
            (outcome.env, outcome.result.map(Some), outcome.instructions)
        } else {
            let outcome = engine.run(&compiled, Some(&live.wasm), env, false, Some(entry));
            let result = outcome.result.map(|wasm| live.wasm = wasm);
            (outcome.env, result.map(|()| None), outcome.instructions)
        };
        let logs: Vec<_> = env
            .logs
            .drain(..)
            .map(|l| (l.timestamp, l.content))
            .collect();
        self.state.log(logs);
        let heap_changed = match result {
            Ok(changed) => changed,
            Err(reject) => {
                env.stable.roll_back();
                live.stable = env.stable.finish().0;
                return Err(reject);
            }
        };
        let executed = Executed::of(&mut env, instructions);
        let (stable, dirty) = env.stable.finish();
        live.stable = stable;
        self.state.certified_data = std::mem::take(&mut env.certified_data);
        self.state.global_timer = env.global_timer;
        self.state.cycles = env.cycles;
        self.state.version += 1;
        let first = self.unsaved.is_none();
        let unsaved = self.unsaved.get_or_insert_default();
        unsaved.stable.extend(dirty);
        unsaved.heap = match (first, unsaved.heap.take(), heap_changed) {
            (true, _, changed) => changed,
            (false, Some(mut known), Some(changed)) => {
                known.extend(changed);
                Some(known)
            }
            _ => None,
        };
        Ok(executed)
    }

    /// Writes what executions changed into `state.code`, for a checkpoint.
    pub fn save(&mut self, store: &mut Store) {
        if let Some(unsaved) = self.unsaved.take() {
            self.capture(store, Some(&unsaved));
        }
    }

    /// Replaces the stable memory with `bytes`, zero-padded to whole pages (PocketIC's
    /// `set_stable_memory`). The live copy is dropped; the next execution loads the new one.
    pub fn set_stable_memory(&mut self, store: &mut Store, bytes: &[u8]) -> Result<(), Reject> {
        self.save(store);
        let id = self.id();
        let Some(code) = self.state.code.as_mut() else {
            return Err(Reject::new(
                ErrorCode::CanisterWasmModuleNotFound,
                format!(
                    "Canister {id} has no wasm module: install code before setting its stable memory"
                ),
            ));
        };
        let pages = (bytes.len() as u64).div_ceil(stable::PAGE);
        if pages > stable::MAX_PAGES {
            return Err(Reject::new(
                ErrorCode::CanisterOutOfMemory,
                format!("{} bytes exceed the stable memory's limit", bytes.len()),
            ));
        }
        let mut padded = bytes.to_vec();
        padded.resize((pages * stable::PAGE) as usize, 0);
        code.stable = MemoryImage::capture(store, &padded, None);
        self.live = None;
        Ok(())
    }

    /// Writes the live memories into `state.code` (pages to the store at the next commit),
    /// hashing again only the pages `unsaved` names, when known.
    fn capture(&mut self, store: &mut Store, unsaved: Option<&Unsaved>) {
        let (Some(live), Some(code)) = (&self.live, &mut self.state.code) else {
            return;
        };
        let heap = unsaved.and_then(|u| u.heap.as_ref());
        code.heap = MemoryImage::capture(store, &live.wasm.heap, heap.map(|h| (&code.heap, h)));
        let stable = unsaved.map(|u| (&code.stable, &u.stable));
        code.stable = MemoryImage::capture(store, &live.stable, stable);
        code.globals = live.wasm.globals.clone();
    }

    /// Installs, reinstalls or upgrades code, atomically: on any failure nothing changes.
    pub fn install(
        &mut self,
        engine: &Engine,
        store: &mut Store,
        mode: InstallMode,
        wasm: &[u8],
        message: &Message,
    ) -> Result<(), Reject> {
        let compiled = engine.compile(wasm)?;
        if let InstallMode::Upgrade {
            keep_heap,
            persistence_given,
            ..
        } = mode
        {
            let old = self.live(engine, store)?.map(|live| live.compiled.clone());
            check_persistence(old.as_deref(), &compiled, keep_heap, persistence_given)?;
        }
        let carried = match mode {
            InstallMode::Install | InstallMode::Reinstall => Carried::default(),
            InstallMode::Upgrade {
                skip_pre_upgrade,
                keep_heap,
                ..
            } => self.pre_upgrade(engine, store, message, skip_pre_upgrade, keep_heap)?,
        };
        let context = match mode {
            InstallMode::Upgrade { .. } => Context::PostUpgrade,
            _ => Context::Init,
        };
        let entry = match mode {
            InstallMode::Upgrade { .. } => "canister_post_upgrade",
            _ => "canister_init",
        };
        let mut env = self.env(
            &Message {
                context,
                ..*message
            },
            carried.stable,
            compiled.info.memory64,
        );
        // IC interface spec, "IC method install_code": the new code starts with no timer, and
        // with the certified data the old code left on upgrade (none otherwise).
        env.certified_data = carried.certified_data;
        env.global_timer = 0;
        // A kept heap is the only thing kept: the new module's globals start as it declares
        // them, and its start function runs, as on every install (the IC's `MemoryHandling::
        // Keep` keeps the main memory alone).
        let heap = carried.heap.map(|heap| WasmState {
            heap: heap.heap,
            globals: Vec::new(),
        });
        let outcome = engine.run(
            &compiled,
            heap.as_ref(),
            env,
            true,
            Some(Entry::Export(entry)),
        );
        let mut env = outcome.env;
        let logs: Vec<_> = env
            .logs
            .drain(..)
            .map(|l| (l.timestamp, l.content))
            .collect();
        let wasm_state = match outcome.result {
            Ok(state) => state,
            Err(reject) => {
                self.state.log(logs);
                return Err(reject);
            }
        };
        let (stable, _) = env.stable.finish();
        let module = store.put(wasm);
        self.state.code = Some(Code {
            module,
            module_size: wasm.len() as u64,
            heap: MemoryImage::default(),
            stable: MemoryImage::default(),
            globals: Vec::new(),
        });
        self.live = Some(Live {
            compiled,
            wasm: wasm_state,
            stable,
            kept: None,
        });
        self.unsaved = None;
        self.capture(store, None);
        self.state.certified_data = env.certified_data;
        self.state.global_timer = env.global_timer;
        self.state.version += 1;
        self.state.log(logs);
        let mode = match mode {
            InstallMode::Install => "install",
            InstallMode::Reinstall => "reinstall",
            InstallMode::Upgrade { .. } => "upgrade",
        };
        self.state.record(
            message.time,
            message.caller,
            ChangeKind::Install {
                mode: mode.into(),
                module_hash: module,
            },
        );
        Ok(())
    }

    /// Runs `canister_pre_upgrade` on the old code; returns what it leaves to the new code.
    fn pre_upgrade(
        &mut self,
        engine: &Engine,
        store: &Store,
        message: &Message,
        skip: bool,
        keep_heap: bool,
    ) -> Result<Carried, Reject> {
        let Some(live) = self.live(engine, store)? else {
            return Err(Reject::new(
                ErrorCode::CanisterWasmModuleNotFound,
                format!(
                    "Canister {} has no module to upgrade; install one first.",
                    self.state.id
                ),
            ));
        };
        let compiled = live.compiled.clone();
        let (wasm, stable) = (live.wasm.clone(), live.stable.clone());
        if skip {
            return Ok(Carried {
                stable,
                heap: keep_heap.then_some(wasm),
                certified_data: self.state.certified_data.clone(),
            });
        }
        let env = self.env(
            &Message {
                context: Context::PreUpgrade,
                ..*message
            },
            stable,
            compiled.info.memory64,
        );
        let outcome = engine.run(
            &compiled,
            Some(&wasm),
            env,
            false,
            Some(Entry::Export("canister_pre_upgrade")),
        );
        let certified_data = outcome.env.certified_data;
        let (stable, _) = outcome.env.stable.finish();
        // A kept heap is the one `canister_pre_upgrade` left: Motoko's runtime marks in it
        // that an upgrade is under way, and its post-upgrade code looks for that mark.
        outcome.result.map(|after| Carried {
            stable,
            heap: keep_heap.then_some(after),
            certified_data,
        })
    }

    /// Removes the code, its memories, the chunk store and the logs; the canister stays,
    /// empty (IC interface spec, "IC method uninstall_code"). Returns the calls it was
    /// answering, each with its cycles, to be rejected.
    pub fn uninstall(&mut self, time: u64, caller: Principal) -> Vec<(calls::Origin, u128)> {
        self.state.code = None;
        self.live = None;
        self.unsaved = None;
        self.state.chunks.clear();
        self.state.logs.clear();
        self.state.certified_data.clear();
        self.state.global_timer = 0;
        self.state.version += 1;
        self.state.record(time, caller, ChangeKind::Uninstall);
        self.state.calls.drop_contexts()
    }

    /// A snapshot of the current code, memories, chunk store and certified data.
    pub fn snapshot(&self, id: Vec<u8>, time: u64) -> Option<Snapshot> {
        let code = self.state.code.clone()?;
        Some(Snapshot {
            id,
            taken_at: time,
            uploaded_module: None,
            code,
            certified_data: self.state.certified_data.clone(),
            chunks: self.state.chunks.clone(),
            canister_version: self.state.version,
            global_timer: Some(self.state.global_timer),
        })
    }

    /// Replaces code, memories, chunk store and certified data with the snapshot's.
    pub fn load(
        &mut self,
        engine: &Engine,
        store: &mut Store,
        snapshot: &Snapshot,
        time: u64,
        caller: Principal,
    ) -> Result<(), Reject> {
        let code = transfer::assemble(snapshot, store)?;
        self.load_live(engine, store, &code, snapshot.uploaded())?;
        if self.live.is_none() {
            // Not in memory: bring the snapshot's memories in now, so that one this machine
            // cannot hold is refused here, with nothing changed, not on every later call.
            let current = self.state.code.replace(code.clone());
            let loaded = self.live(engine, store).map(drop);
            if let Err(reject) = loaded {
                self.state.code = current;
                self.live = None;
                return Err(reject);
            }
        }
        self.unsaved = None;
        self.state.code = Some(code);
        self.state.certified_data = snapshot.certified_data.clone();
        self.state.chunks = snapshot.chunks.clone();
        // Only an uploaded snapshot that names a timer sets it (IC interface spec, "IC method
        // load_canister_snapshot"); a taken one leaves the canister's.
        if let (true, Some(timer)) = (snapshot.uploaded(), snapshot.global_timer) {
            self.state.global_timer = timer;
        }
        self.state.version += 1;
        self.state.record(
            time,
            caller,
            ChangeKind::LoadSnapshot {
                snapshot_id: snapshot.id.clone(),
                canister_version: snapshot.canister_version,
                taken_at: snapshot.taken_at,
                uploaded: snapshot.uploaded(),
            },
        );
        Ok(())
    }

    /// Brings the live memories to `code`. When they are loaded, only the pages that differ
    /// are read from the store and the compiled module is kept if unchanged; otherwise the
    /// module is only validated and the memories load on first use.
    /// Uploaded snapshots must also carry the globals the module has.
    fn load_live(
        &mut self,
        engine: &Engine,
        store: &Store,
        code: &Code,
        check_globals: bool,
    ) -> Result<(), Reject> {
        let fail = |e: StoreError| Reject::new(ErrorCode::CanisterRejectedMessage, e.to_string());
        let current = self.state.code.as_ref();
        let compiled = match (&self.live, current) {
            (Some(live), Some(current)) if current.module == code.module => live.compiled.clone(),
            _ => engine.compile(&store.get(&code.module).map_err(fail)?)?,
        };
        // An uploaded snapshot's globals must be the module's, in number and type.
        let expected = &compiled.info.globals;
        let globals_match = expected.len() == code.globals.len()
            && expected
                .iter()
                .zip(&code.globals)
                .all(|(e, g)| g.fits(e.ty));
        if check_globals && !globals_match {
            return Err(Reject::new(
                ErrorCode::InvalidManagementPayload,
                "Wasm exported globals of canister module and snapshot metadata do not match.",
            ));
        }
        let (Some(live), Some(current)) = (&mut self.live, current) else {
            self.live = None;
            return Ok(());
        };
        let patched = code
            .heap
            .restore_over(store, &current.heap, &mut live.wasm.heap)
            .and_then(|heap| {
                code.stable
                    .restore_over(store, &current.stable, &mut live.stable)
                    .map(|_| heap)
            });
        let changed_heap = match patched {
            Ok(changed) => changed,
            Err(error) => {
                // The live copy is half patched; drop it, the persisted state is untouched.
                self.live = None;
                return Err(fail(error));
            }
        };
        live.wasm.globals = code.globals.clone();
        if Arc::ptr_eq(&live.compiled, &compiled) {
            // The same module: bring the kept instance along, page by page.
            engine::refresh(&mut live.kept, &compiled, &live.wasm, &changed_heap);
        } else {
            live.kept = None;
        }
        live.compiled = compiled;
        Ok(())
    }

    /// Sizes for `canister_status`: (heap, stable, globals, module).
    pub fn memory_sizes(&self) -> (u64, u64, u64, u64) {
        self.state.code.as_ref().map_or((0, 0, 0, 0), |code| {
            (
                code.heap.len,
                code.stable.len,
                8 * code.globals.len() as u64,
                code.module_size,
            )
        })
    }

    pub fn module_hash(&self) -> Option<store::Hash> {
        self.state.code.as_ref().map(|c| c.module)
    }
}

//! Running one message: a wasmtime instance of the prepared module holding the canister's saved
//! heap and globals, the entry point called under its instruction limit, and the new heap and
//! globals taken out — or, on a trap, nothing kept (IC interface spec, "Traps").
//!
//! A fresh instance per message is the reference. Replicated messages may instead run on a
//! `Kept` instance, left as the last successful message left it, so the heap is not put back
//! each time; only for modules that cannot tell (`ModuleInfo::reusable`), and a trap discards
//! the instance. A kept instance knows which heap pages a message wrote from the kernel
//! (`dirty`), so that saving the heap after an update and undoing a query cost what the
//! message wrote, not the size of the heap.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    hash::{DefaultHasher, Hash, Hasher},
    sync::{Arc, Mutex, OnceLock},
};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasmtime::{Config, Instance, InstancePre, Linker, Memory, ResourceLimiter, Store, Trap, Val};

use super::calls::Closure;
use super::code_cache::{self, CodeCache};
use super::dirty::Tracker;
use super::env::{Env, LogLine};
use super::module::{self, MEMORY_EXPORT, ModuleInfo, START_EXPORT, TABLE_EXPORT};
use super::stable::PAGE;
use super::system_api;
use crate::error::{ErrorCode, Reject};

/// The value of one mutable global, kept between messages and in snapshots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Global {
    I32(i32),
    I64(i64),
    F32(u32),
    F64(u64),
    V128(u128),
}

/// The wasm side of a canister's state between messages.
#[derive(Clone, Default)]
pub struct WasmState {
    pub heap: Vec<u8>,
    pub globals: Vec<Global>,
}

/// A module compiled and linked, ready to instantiate.
pub struct Compiled {
    pre: InstancePre<Env>,
    pub info: ModuleInfo,
}

impl Compiled {
    pub fn exports(&self, entry: &str) -> bool {
        self.info.entry_points.contains(entry)
    }

    /// Whether `entry` can be run: an export the module has, or any callback (whose
    /// function is looked up, and may be missing, when it runs).
    pub fn has(&self, entry: Entry) -> bool {
        match entry {
            Entry::Export(name) => self.exports(name),
            Entry::Callback(_) => true,
        }
    }
}

/// What an execution runs: an exported entry point, or a callback of a call, which is a
/// function of the table called with its `env` (IC interface spec, "Callback invocation").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry<'a> {
    Export(&'a str),
    Callback(Closure),
}

/// wasmtime configured as the IC configures it, with the System API linked for both widths.
pub struct Engine {
    engine: wasmtime::Engine,
    linker32: Linker<Env>,
    linker64: Linker<Env>,
    names32: HashSet<&'static str>,
    names64: HashSet<&'static str>,
    /// Modules compiled in this process, by the SHA-256 of the bytes given to `compile`.
    compiled: Mutex<HashMap<[u8; 32], Arc<Compiled>>>,
    /// Machine code kept between processes.
    code_cache: Option<CodeCache>,
}

/// How many compiled modules a process keeps at most; past it the map starts again.
const COMPILED_IN_MEMORY: usize = 64;

/// What became of one execution.
pub struct Outcome<T = WasmState> {
    pub env: Env,
    /// The new wasm state, or why the execution failed (then the old state stands).
    pub result: Result<T, Reject>,
    pub instructions: u64,
}

/// An instance kept between a canister's replicated messages; its heap and globals equal
/// the `WasmState` the last message left.
pub struct Kept {
    store: Store<Env>,
    instance: Instance,
    memory: Option<Memory>,
    /// The heap pages written since it last equalled the saved state, where the kernel can tell.
    tracker: Option<Tracker>,
}

impl Engine {
    /// The process's engine: every replica in a process shares it, and so the modules it
    /// compiled (wasmtime code belongs to the engine that compiled it).
    pub fn shared() -> &'static Self {
        static SHARED: OnceLock<Engine> = OnceLock::new();
        SHARED.get_or_init(|| {
            let mut engine = Self::new();
            let mut id = DefaultHasher::new();
            engine.engine.precompile_compatibility_hash().hash(&mut id);
            engine.code_cache = CodeCache::for_user(id.finish());
            engine
        })
    }

    /// An engine of its own, with no code kept on disk.
    pub fn new() -> Self {
        let mut config = Config::new();
        config
            .consume_fuel(true)
            .cranelift_nan_canonicalization(true)
            .wasm_memory64(true)
            .wasm_multi_memory(false)
            .wasm_relaxed_simd(false)
            .async_stack_size(5 * 1024 * 1024)
            .max_wasm_stack(5 * 1024 * 1024);
        let engine = wasmtime::Engine::new(&config).expect("the configuration is valid");
        let mut linker32 = Linker::new(&engine);
        let names32 = system_api::define::<i32>(&mut linker32, false).expect("names are unique");
        let mut linker64 = Linker::new(&engine);
        let names64 = system_api::define::<i64>(&mut linker64, true).expect("names are unique");
        Self {
            engine,
            linker32,
            linker64,
            names32: names32.into_iter().collect(),
            names64: names64.into_iter().collect(),
            compiled: Mutex::default(),
            code_cache: None,
        }
    }

    /// Validates, prepares and compiles a module (gzipped or not), once per process.
    pub fn compile(&self, wasm: &[u8]) -> Result<Arc<Compiled>, Reject> {
        let key: [u8; 32] = Sha256::digest(wasm).into();
        if let Some(compiled) = self.compiled.lock().expect("not poisoned").get(&key) {
            return Ok(compiled.clone());
        }
        let compiled = Arc::new(self.compile_anew(wasm)?);
        let mut kept = self.compiled.lock().expect("not poisoned");
        if kept.len() >= COMPILED_IN_MEMORY {
            kept.clear();
        }
        kept.insert(key, compiled.clone());
        Ok(compiled)
    }

    fn compile_anew(&self, wasm: &[u8]) -> Result<Compiled, Reject> {
        let wasm = module::decompress(wasm)?;
        let info = module::prepare(&wasm)?;
        let (linker, names) = if info.memory64 {
            (&self.linker64, &self.names64)
        } else {
            (&self.linker32, &self.names32)
        };
        if let Some(unknown) = info.imports.iter().find(|n| !names.contains(n.as_str())) {
            return Err(invalid(format!(
                "it imports `ic0.{unknown}`, which is not a System API function{}",
                if info.memory64 {
                    " available to wasm64 canisters"
                } else {
                    ""
                }
            )));
        }
        let compiled = self.machine_code(&info.prepared)?;
        let pre = linker
            .instantiate_pre(&compiled)
            .map_err(|e| invalid(format!("{e:#}").replace("ic0::", "ic0.")))?;
        Ok(Compiled { pre, info })
    }

    /// The prepared module compiled, or its code as an earlier process kept it.
    fn machine_code(&self, prepared: &[u8]) -> Result<wasmtime::Module, Reject> {
        let cache = self
            .code_cache
            .as_ref()
            .filter(|_| prepared.len() >= code_cache::MIN_MODULE_BYTES);
        let key: [u8; 32] = Sha256::digest(prepared).into();
        if let Some(code) = cache.and_then(|cache| cache.read(&key)) {
            // SAFETY: `serialize` of an engine with this one's compatibility hash (the cache
            // directory is named after it) wrote these bytes, whole as their checksum shows,
            // into a directory only this user can write. wasmtime refuses, rather than runs,
            // code of another version or configuration.
            if let Ok(module) = unsafe { wasmtime::Module::deserialize(&self.engine, &code) } {
                return Ok(module);
            }
        }
        let module =
            wasmtime::Module::new(&self.engine, prepared).map_err(|e| invalid(format!("{e:#}")))?;
        if let Some(cache) = cache
            && let Ok(code) = module.serialize()
        {
            cache.write(&key, &code);
        }
        Ok(module)
    }

    /// Runs `entry` (if the module exports it) on `state`, after the start function when
    /// `start` is set; with no `state` the module starts from its own initial memory.
    pub fn run(
        &self,
        compiled: &Compiled,
        state: Option<&WasmState>,
        env: Env,
        start: bool,
        entry: Option<Entry>,
    ) -> Outcome {
        let limit = env.context.instruction_limit();
        let mut store = self.store(env, limit);
        let result = instantiate(&mut store, compiled, state).and_then(|instance| {
            store.data_mut().heap_limit_enforced = true;
            if start && compiled.info.has_start {
                call(&mut store, compiled, &instance, Entry::Export(START_EXPORT))?;
            }
            if let Some(entry) = entry.filter(|e| compiled.has(*e)) {
                call(&mut store, compiled, &instance, entry)?;
            }
            Ok(take_state(&mut store, compiled, &instance))
        });
        let instructions = limit - store.get_fuel().unwrap_or(0);
        finish(store.into_data(), result, instructions, limit)
    }

    /// Runs exported `entry` on the `kept` instance (made from `state` when there is none),
    /// and brings `state` up to date, returning the heap pages that changed; a failure
    /// discards the instance and leaves `state`.
    pub fn run_kept(
        &self,
        compiled: &Compiled,
        kept: &mut Option<Kept>,
        state: &mut WasmState,
        env: Env,
        entry: Entry,
    ) -> Outcome<BTreeSet<u64>> {
        let limit = env.context.instruction_limit();
        let mut instance = match self.resume(compiled, kept, state, env, limit) {
            Ok(instance) => instance,
            Err(failed) => return finish(failed.env, Err(failed.error), failed.used, limit),
        };
        let (env, result, instructions) = instance.call(compiled, entry, limit);
        let result = result.map(|()| {
            let written = instance.written();
            #[cfg(feature = "fault-points")]
            if let (Some(memory), Some(pages)) = (instance.memory, written.as_deref()) {
                super::dirty::check::written(memory.data(&instance.store), &state.heap, pages);
            }
            let changed = match instance.memory {
                Some(memory) => copy_changed(
                    memory.data(&instance.store),
                    &mut state.heap,
                    written.as_deref(),
                ),
                None => BTreeSet::new(),
            };
            instance.settle(written.as_deref());
            state.globals = globals(&mut instance.store, compiled, &instance.instance);
            changed
        });
        if result.is_ok() {
            *kept = Some(instance);
        }
        finish(env, result, instructions, limit)
    }

    /// Runs exported `entry` on the `kept` instance (made from `state` when there is none),
    /// then undoes what it changed — the heap pages that differ from `state`, the globals —
    /// so that the instance holds `state` again: how a query runs without a fresh instance.
    pub fn run_undone(
        &self,
        compiled: &Compiled,
        kept: &mut Option<Kept>,
        state: &WasmState,
        env: Env,
        entry: Entry,
    ) -> Outcome<()> {
        let limit = env.context.instruction_limit();
        let mut instance = match self.resume(compiled, kept, state, env, limit) {
            Ok(instance) => instance,
            Err(failed) => return finish(failed.env, Err(failed.error), failed.used, limit),
        };
        let (env, result, instructions) = instance.call(compiled, entry, limit);
        if result.is_ok() && instance.reset(compiled, state, None).is_ok() {
            *kept = Some(instance);
        }
        finish(env, result, instructions, limit)
    }

    /// The kept instance, or a new one holding `state`, with `env` in it and `limit` fuel.
    fn resume(
        &self,
        compiled: &Compiled,
        kept: &mut Option<Kept>,
        state: &WasmState,
        env: Env,
        limit: u64,
    ) -> Result<Kept, Box<Failed>> {
        if let Some(mut instance) = kept.take() {
            *instance.store.data_mut() = env;
            instance.store.set_fuel(limit).expect("fuel is enabled");
            return Ok(instance);
        }
        let mut store = self.store(env, limit);
        match instantiate(&mut store, compiled, Some(state)) {
            Ok(instance) => {
                let memory = store.data().memory;
                let tracker = memory.and_then(|memory| Tracker::watch(memory.data(&store)));
                Ok(Kept {
                    memory,
                    store,
                    instance,
                    tracker,
                })
            }
            Err(error) => {
                let used = limit - store.get_fuel().unwrap_or(0);
                Err(Box::new(Failed {
                    env: store.into_data(),
                    error,
                    used,
                }))
            }
        }
    }

    fn store(&self, env: Env, limit: u64) -> Store<Env> {
        let mut store = Store::new(&self.engine, env);
        store.set_fuel(limit).expect("fuel is enabled");
        store.limiter(|env| env);
        store
    }
}

/// The outcome of an execution that ended with `result`: a failure as the reject the host
/// recorded (or wasmtime's trap, translated), logged as the IC logs traps.
fn finish<T>(
    mut env: Env,
    result: wasmtime::Result<T>,
    instructions: u64,
    limit: u64,
) -> Outcome<T> {
    env.memory = None;
    let result = result.map_err(|error| {
        let reject = env.trap.take().unwrap_or_else(|| translate(&error, limit));
        env.logs.push(LogLine {
            timestamp: env.time,
            content: format!("[TRAP]: {}", reject.message).into_bytes(),
        });
        reject
    });
    Outcome {
        env,
        result,
        instructions,
    }
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

fn invalid(message: String) -> Reject {
    Reject::new(
        ErrorCode::CanisterInvalidWasm,
        format!("Wasm module is invalid: {message}"),
    )
}

/// A new instance holding `state` (when given): heap, then globals.
fn instantiate(
    store: &mut Store<Env>,
    compiled: &Compiled,
    state: Option<&WasmState>,
) -> wasmtime::Result<Instance> {
    let instance = compiled.pre.instantiate(&mut *store)?;
    let memory = instance.get_memory(&mut *store, MEMORY_EXPORT);
    store.data_mut().memory = memory;
    if let Some(state) = state {
        if let Some(memory) = memory {
            let have = memory.data_size(&*store) as u64;
            let want = state.heap.len() as u64;
            if want > have {
                memory.grow(&mut *store, (want - have) / PAGE)?;
            }
            memory.data_mut(&mut *store)[..state.heap.len()].copy_from_slice(&state.heap);
        }
        for (exported, value) in compiled.info.globals.iter().zip(&state.globals) {
            let global = instance
                .get_global(&mut *store, &exported.name)
                .expect("prepared modules export their globals");
            global.set(&mut *store, to_val(*value))?;
        }
    }
    Ok(instance)
}

/// An instance that could not be made: the environment back, why, and the fuel used.
struct Failed {
    env: Env,
    error: wasmtime::Error,
    used: u64,
}

impl Kept {
    /// Calls `entry` with the message's environment in place; returns that environment,
    /// the result and the instructions used.
    fn call(
        &mut self,
        compiled: &Compiled,
        entry: Entry,
        limit: u64,
    ) -> (Env, wasmtime::Result<()>, u64) {
        self.store.data_mut().memory = self.memory;
        self.store.data_mut().heap_limit_enforced = true;
        let result = call(&mut self.store, compiled, &self.instance, entry);
        let instructions = limit - self.store.get_fuel().unwrap_or(0);
        let env = std::mem::replace(self.store.data_mut(), Env::idle());
        (env, result, instructions)
    }

    /// The heap pages written since the instance last held the saved state, in order;
    /// `None` when that is not known.
    fn written(&mut self) -> Option<Vec<u64>> {
        let memory = self.memory?;
        self.tracker.as_mut()?.written(memory.data(&self.store))
    }

    /// Starts tracking afresh once the heap holds the saved state again, after the pages
    /// `written` (every page, when `None`) were brought to it.
    fn settle(&mut self, written: Option<&[u64]>) {
        let Some(memory) = self.memory else { return };
        let protected = match (written, self.tracker.as_mut()) {
            (Some(pages), Some(tracker)) => tracker.protect(pages),
            _ => false,
        };
        if !protected {
            // A range can be registered with one userfaultfd at a time: the old one goes first.
            self.tracker = None;
            self.tracker = Tracker::watch(memory.data(&self.store));
        }
    }

    /// Makes the instance hold `state` again: the heap pages `pages` names (the pages
    /// written since, when `None`) and the globals. Fails when the heap would have to shrink.
    fn reset(
        &mut self,
        compiled: &Compiled,
        state: &WasmState,
        pages: Option<&[u64]>,
    ) -> wasmtime::Result<()> {
        if let Some(memory) = self.memory {
            let have = memory.data_size(&self.store);
            if have > state.heap.len() {
                wasmtime::bail!("a heap cannot shrink");
            }
            if have < state.heap.len() {
                memory.grow(&mut self.store, ((state.heap.len() - have) as u64) / PAGE)?;
            }
            let pages = match pages {
                Some(pages) => Some(pages.to_vec()),
                None => self.written(),
            };
            let heap = memory.data_mut(&mut self.store);
            match &pages {
                Some(pages) => {
                    for &page in pages {
                        let start = (page * PAGE) as usize;
                        let end = (start + PAGE as usize).min(heap.len());
                        heap[start..end].copy_from_slice(&state.heap[start..end]);
                    }
                }
                None => restore_changed(&state.heap, heap),
            }
            #[cfg(feature = "fault-points")]
            super::dirty::check::restored(heap, &state.heap);
            self.settle(pages.as_deref());
        }
        for (exported, value) in compiled.info.globals.iter().zip(&state.globals) {
            let global = self
                .instance
                .get_global(&mut self.store, &exported.name)
                .expect("prepared modules export their globals");
            global.set(&mut self.store, to_val(*value))?;
        }
        Ok(())
    }
}

/// Brings a kept instance to `state` after a load changed the heap pages `pages` (and
/// perhaps the globals); drops it when that cannot be done.
pub fn refresh(kept: &mut Option<Kept>, compiled: &Compiled, state: &WasmState, pages: &[u64]) {
    if let Some(instance) = kept
        && instance.reset(compiled, state, Some(pages)).is_err()
    {
        *kept = None;
    }
}

/// Copies into `heap` the pages of `saved` that differ from it (same lengths).
fn restore_changed(saved: &[u8], heap: &mut [u8]) {
    let page = PAGE as usize;
    for (was, now) in saved.chunks(page).zip(heap.chunks_mut(page)) {
        if was != now {
            now.copy_from_slice(was);
        }
    }
}

/// Makes `saved` equal `heap`, looking at the pages `written` and any the heap grew by
/// (every page, when `None`); returns the pages that differed (or are new).
fn copy_changed(heap: &[u8], saved: &mut Vec<u8>, written: Option<&[u64]>) -> BTreeSet<u64> {
    let page = PAGE as usize;
    let old_len = saved.len().min(heap.len());
    saved.resize(heap.len(), 0);
    let all = heap.len().div_ceil(page) as u64;
    let grown = (old_len / page) as u64..all;
    let candidates: BTreeSet<u64> = match written {
        Some(written) => written.iter().copied().chain(grown).collect(),
        None => (0..all).collect(),
    };
    let mut changed = BTreeSet::new();
    for index in candidates {
        let start = index as usize * page;
        let end = (start + page).min(heap.len());
        if start >= old_len || heap[start..end] != saved[start..end] {
            saved[start..end].copy_from_slice(&heap[start..end]);
            changed.insert(index);
        }
    }
    changed
}

fn call(
    store: &mut Store<Env>,
    compiled: &Compiled,
    instance: &Instance,
    entry: Entry,
) -> wasmtime::Result<()> {
    let Closure { fun, env } = match entry {
        Entry::Export(export) => {
            return instance
                .get_typed_func::<(), ()>(&mut *store, export)?
                .call(&mut *store, ());
        }
        Entry::Callback(closure) => closure,
    };
    let function = instance
        .get_table(&mut *store, TABLE_EXPORT)
        .and_then(|table| table.get(&mut *store, fun))
        .and_then(|entry| entry.as_func().flatten().copied());
    let missing = |store: &mut Store<Env>| {
        store.data_mut().trap(Reject::new(
            ErrorCode::CanisterFunctionNotFound,
            format!("Canister tried to call a non-existent Wasm function {fun} as a callback."),
        ))
    };
    let Some(function) = function else {
        return Err(missing(store));
    };
    // Callbacks are `(env : I32) -> ()` in wasm32 modules, `(env : I64) -> ()` in wasm64.
    if compiled.info.memory64 {
        match function.typed::<i64, ()>(&*store) {
            Ok(f) => f.call(&mut *store, env as i64),
            Err(_) => Err(missing(store)),
        }
    } else {
        match function.typed::<i32, ()>(&*store) {
            Ok(f) => f.call(&mut *store, env as u32 as i32),
            Err(_) => Err(missing(store)),
        }
    }
}

fn take_state(store: &mut Store<Env>, compiled: &Compiled, instance: &Instance) -> WasmState {
    let heap = store
        .data()
        .memory
        .map(|m| m.data(&*store).to_vec())
        .unwrap_or_default();
    WasmState {
        heap,
        globals: globals(store, compiled, instance),
    }
}

fn globals(store: &mut Store<Env>, compiled: &Compiled, instance: &Instance) -> Vec<Global> {
    compiled
        .info
        .globals
        .iter()
        .map(|exported| {
            let global = instance
                .get_global(&mut *store, &exported.name)
                .expect("exported");
            from_val(global.get(&mut *store))
        })
        .collect()
}

impl Global {
    /// Whether this value fits a global of type `ty`.
    pub fn fits(&self, ty: wasmparser::ValType) -> bool {
        use wasmparser::ValType;
        matches!(
            (self, ty),
            (Global::I32(_), ValType::I32)
                | (Global::I64(_), ValType::I64)
                | (Global::F32(_), ValType::F32)
                | (Global::F64(_), ValType::F64)
                | (Global::V128(_), ValType::V128)
        )
    }
}

fn to_val(global: Global) -> Val {
    match global {
        Global::I32(v) => Val::I32(v),
        Global::I64(v) => Val::I64(v),
        Global::F32(v) => Val::F32(v),
        Global::F64(v) => Val::F64(v),
        Global::V128(v) => Val::V128(v.into()),
    }
}

fn from_val(value: Val) -> Global {
    match value {
        Val::I32(v) => Global::I32(v),
        Val::I64(v) => Global::I64(v),
        Val::F32(v) => Global::F32(v),
        Val::F64(v) => Global::F64(v),
        Val::V128(v) => Global::V128(v.as_u128()),
        other => unreachable!("validation admits no {other:?} globals"),
    }
}

fn translate(error: &wasmtime::Error, limit: u64) -> Reject {
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Reject::new(
            ErrorCode::CanisterInstructionLimitExceeded,
            format!(
                "Canister exceeded the limit of {limit} instructions for single message execution."
            ),
        ),
        Some(trap) => Reject::new(
            ErrorCode::CanisterTrapped,
            format!("Canister trapped: {trap}"),
        ),
        None => Reject::new(
            ErrorCode::CanisterTrapped,
            format!("Canister trapped: {error:#}"),
        ),
    }
}

impl ResourceLimiter for Env {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if self.heap_limit_enforced && desired as u64 > self.heap_limit {
            return Err(self.trap(Reject::new(
                ErrorCode::CanisterOutOfMemory,
                format!(
                    "Canister exceeded its current Wasm memory limit of {} bytes.",
                    self.heap_limit
                ),
            )));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _: usize, _: usize, _: Option<usize>) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: usize = PAGE as usize;

    #[test]
    fn copying_changed_pages_compares_every_page_unless_told_which_were_written() {
        let mut heap = vec![0u8; 4 * P];
        heap[P] = 1;
        heap[3 * P] = 1;
        let mut saved = vec![0u8; 3 * P];
        let all = copy_changed(&heap, &mut saved.clone(), None);
        assert_eq!(all, BTreeSet::from([1, 3]));
        // Told that only page 2 was written, it trusts that (and still takes the new page).
        let told = copy_changed(&heap, &mut saved, Some(&[2]));
        assert_eq!(told, BTreeSet::from([3]));
        assert_eq!(saved.len(), heap.len());
        assert_eq!(saved[P], 0, "page 1 was not looked at");
    }

    /// A module over the size the code cache keeps, exporting `name`.
    fn large_module(name: &str) -> Vec<u8> {
        let data = "a".repeat(code_cache::MIN_MODULE_BYTES);
        wat::parse_str(format!(
            r#"(module (memory 2) (data (i32.const 0) "{data}") (func (export "canister_query {name}")))"#
        ))
        .unwrap()
    }

    fn exported(compiled: &Compiled) -> Vec<String> {
        let exports = compiled.pre.module().exports();
        exports
            .map(|e| e.name().to_owned())
            .filter(|n| n.starts_with("canister_"))
            .collect()
    }

    #[test]
    fn a_module_is_compiled_once_per_process_and_its_code_kept_for_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let with_cache = || {
            let mut engine = Engine::new();
            engine.code_cache = Some(CodeCache::at(dir.path().join("code")));
            engine
        };
        let first = with_cache();
        let wasm = large_module("first");
        let compiled = first.compile(&wasm).unwrap();
        assert!(Arc::ptr_eq(&compiled, &first.compile(&wasm).unwrap()));

        // Put another module's code where the first one's is kept: a second engine that runs
        // what it reads there, rather than compiling, exports the other module's method.
        let other = first.compile(&large_module("other")).unwrap();
        let kept = |wasm: &[u8]| {
            let prepared = module::prepare(wasm).unwrap().prepared;
            dir.path()
                .join("code")
                .join(crate::store::hex(&Sha256::digest(prepared)))
        };
        std::fs::copy(kept(&large_module("other")), kept(&wasm)).unwrap();
        assert_eq!(exported(&other), ["canister_query other"]);
        assert_eq!(
            exported(&with_cache().compile(&wasm).unwrap()),
            ["canister_query other"]
        );

        // Damaged code is compiled again.
        std::fs::write(kept(&wasm), b"damaged").unwrap();
        assert_eq!(
            exported(&with_cache().compile(&wasm).unwrap()),
            ["canister_query first"]
        );
    }

    #[test]
    fn restoring_changed_pages_brings_back_the_saved_heap() {
        let saved: Vec<u8> = (0..3 * P).map(|i| i as u8).collect();
        let mut heap = saved.clone();
        heap[2 * P + 5] ^= 0xFF;
        restore_changed(&saved, &mut heap);
        assert_eq!(heap, saved);
    }
}

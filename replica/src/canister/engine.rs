//! Running one message: a fresh wasmtime instance of the prepared module, the canister's saved
//! heap and globals put back, the entry point called under its instruction limit, and the new
//! heap and globals taken out — or, on a trap, nothing kept (IC interface spec, "Traps").

use std::{collections::HashSet, sync::Arc};

use serde::{Deserialize, Serialize};
use wasmtime::{Config, InstancePre, Linker, ResourceLimiter, Store, Trap, Val};

use super::env::{Env, LogLine};
use super::module::{self, MEMORY_EXPORT, ModuleInfo, START_EXPORT};
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
}

/// wasmtime configured as the IC configures it, with the System API linked for both widths.
pub struct Engine {
    engine: wasmtime::Engine,
    linker32: Linker<Env>,
    linker64: Linker<Env>,
    names32: HashSet<&'static str>,
    names64: HashSet<&'static str>,
}

/// What became of one execution.
pub struct Outcome {
    pub env: Env,
    /// The new wasm state, or why the execution failed (then the old state stands).
    pub result: Result<WasmState, Reject>,
    pub instructions: u64,
}

impl Engine {
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
        }
    }

    /// Validates, prepares and compiles a module (gzipped or not).
    pub fn compile(&self, wasm: &[u8]) -> Result<Arc<Compiled>, Reject> {
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
        let compiled = wasmtime::Module::new(&self.engine, &info.prepared)
            .map_err(|e| invalid(format!("{e:#}")))?;
        let pre = linker
            .instantiate_pre(&compiled)
            .map_err(|e| invalid(format!("{e:#}").replace("ic0::", "ic0.")))?;
        Ok(Arc::new(Compiled { pre, info }))
    }

    /// Runs `entry` (if the module exports it) on `state`, after the start function when
    /// `start` is set; with no `state` the module starts from its own initial memory.
    pub fn run(
        &self,
        compiled: &Compiled,
        state: Option<&WasmState>,
        env: Env,
        start: bool,
        entry: Option<&str>,
    ) -> Outcome {
        let limit = env.context.instruction_limit();
        let mut store = Store::new(&self.engine, env);
        store.set_fuel(limit).expect("fuel is enabled");
        store.limiter(|env| env);
        let result = execute(&mut store, compiled, state, start, entry);
        let instructions = limit - store.get_fuel().unwrap_or(0);
        let mut env = store.into_data();
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

fn execute(
    store: &mut Store<Env>,
    compiled: &Compiled,
    state: Option<&WasmState>,
    start: bool,
    entry: Option<&str>,
) -> wasmtime::Result<WasmState> {
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
        for (name, value) in compiled.info.globals.iter().zip(&state.globals) {
            let global = instance
                .get_global(&mut *store, name)
                .expect("prepared modules export their globals");
            global.set(&mut *store, to_val(*value))?;
        }
    }
    store.data_mut().heap_limit_enforced = true;
    if start && compiled.info.has_start {
        instance
            .get_typed_func::<(), ()>(&mut *store, START_EXPORT)?
            .call(&mut *store, ())?;
    }
    if let Some(entry) = entry.filter(|e| compiled.exports(e)) {
        instance
            .get_typed_func::<(), ()>(&mut *store, entry)?
            .call(&mut *store, ())?;
    }
    let heap = memory.map(|m| m.data(&*store).to_vec()).unwrap_or_default();
    let globals = compiled
        .info
        .globals
        .iter()
        .map(|name| {
            let global = instance.get_global(&mut *store, name).expect("exported");
            from_val(global.get(&mut *store))
        })
        .collect();
    Ok(WasmState { heap, globals })
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

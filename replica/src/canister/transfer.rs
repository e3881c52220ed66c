//! Snapshot download and upload (IC interface spec, "read_/upload_canister_snapshot_*"):
//! metadata both ways, and data in slices of at most 2,000,000 bytes.

use std::collections::BTreeMap;

use candid::Nat;
use ic_management_canister_types as ic;

use super::chunks;
use super::engine::Global;
use super::image::MemoryImage;
use super::module::MAX_MODULE_BYTES;
use super::stable::{MAX_PAGES, PAGE};
use super::state::{Code, Snapshot};
use crate::error::{ErrorCode, Reject, StoreError};
use crate::store::{self, Store};

/// Largest slice one `read_canister_snapshot_data` returns.
pub const MAX_SLICE_BYTES: u64 = 2_000_000;
/// Largest heap an uploaded snapshot may declare: 4 GiB for a canister whose module is
/// wasm32 or that has none, wasm64's 6 GiB otherwise (the IC's snapshot metadata checks).
const MAX_WASM32_HEAP_BYTES: u64 = 4 << 30;
const MAX_WASM64_HEAP_BYTES: u64 = 6 << 30;
const MAX_GLOBALS: usize = 1000;

fn bad(message: impl Into<String>) -> Reject {
    Reject::new(ErrorCode::InvalidManagementPayload, message)
}

fn store_error(error: StoreError) -> Reject {
    Reject::new(ErrorCode::CanisterRejectedMessage, error.to_string())
}

pub fn metadata(snapshot: &Snapshot) -> ic::ReadCanisterSnapshotMetadataResult {
    let source = if snapshot.uploaded() {
        ic::SnapshotSource::MetadataUpload(candid::Reserved)
    } else {
        ic::SnapshotSource::TakenFromCanister(candid::Reserved)
    };
    ic::ReadCanisterSnapshotMetadataResult {
        source: Some(source),
        taken_at_timestamp: snapshot.taken_at,
        wasm_module_size: snapshot.code.module_size,
        globals: snapshot
            .code
            .globals
            .iter()
            .map(|g| Some(to_ic(*g)))
            .collect(),
        wasm_memory_size: snapshot.code.heap.len,
        stable_memory_size: snapshot.code.stable.len,
        wasm_chunk_store: snapshot
            .chunks
            .keys()
            .map(|h| ic::ChunkHash { hash: h.to_vec() })
            .collect(),
        canister_version: snapshot.canister_version,
        certified_data: snapshot.certified_data.clone(),
        global_timer: snapshot.global_timer.map(|at| match at {
            0 => ic::CanisterTimer::Inactive,
            at => ic::CanisterTimer::Active(at),
        }),
        on_low_wasm_memory_hook_status: Some(ic::OnLowWasmMemoryHookStatus::ConditionNotSatisfied),
    }
}

/// One slice of a snapshot's module, heap or stable memory, or one chunk of its chunk store.
pub fn read(
    snapshot: &Snapshot,
    store: &Store,
    kind: ic::SnapshotDataKind,
) -> Result<Vec<u8>, Reject> {
    let (offset, size, region, name) = match kind {
        ic::SnapshotDataKind::WasmChunk { hash } => {
            let known = <store::Hash>::try_from(hash.as_slice())
                .ok()
                .filter(|h| snapshot.chunks.contains_key(h));
            let Some(hash) = known else {
                return Err(bad(format!(
                    "The snapshot has no wasm chunk with hash {}.",
                    store::hex(&hash)
                )));
            };
            return store.get(&hash).map_err(store_error);
        }
        ic::SnapshotDataKind::WasmModule { offset, size } => {
            (offset, size, Region::Module, "wasm module")
        }
        ic::SnapshotDataKind::WasmMemory { offset, size } => {
            (offset, size, Region::Heap, "wasm memory")
        }
        ic::SnapshotDataKind::StableMemory { offset, size } => {
            (offset, size, Region::Stable, "stable memory")
        }
    };
    if size > MAX_SLICE_BYTES {
        return Err(bad(format!(
            "Requested slice too large: {size} bytes, more than the {MAX_SLICE_BYTES} one call returns."
        )));
    }
    let slice = match (region, &snapshot.uploaded_module) {
        (Region::Module, Some(module)) => module.read(store, offset, size),
        (Region::Module, None) => store.get(&snapshot.code.module).map(|module| {
            let end = offset
                .checked_add(size)
                .filter(|e| *e <= module.len() as u64);
            end.map(|end| module[offset as usize..end as usize].to_vec())
        }),
        (Region::Heap, _) => snapshot.code.heap.read(store, offset, size),
        (Region::Stable, _) => snapshot.code.stable.read(store, offset, size),
    }
    .map_err(store_error)?;
    slice.ok_or_else(|| {
        bad(format!(
            "Invalid slice of the snapshot's {name}: offset {offset} + size {size} is past its end."
        ))
    })
}

#[derive(Clone, Copy)]
enum Region {
    Module,
    Heap,
    Stable,
}

/// A new, empty snapshot shaped by uploaded metadata, checked against the IC's limits.
pub fn from_metadata(
    id: Vec<u8>,
    time: u64,
    canister_version: u64,
    memory64: bool,
    args: &ic::UploadCanisterSnapshotMetadataArgs,
) -> Result<Snapshot, Reject> {
    let max_heap = if memory64 {
        MAX_WASM64_HEAP_BYTES
    } else {
        MAX_WASM32_HEAP_BYTES
    };
    let module_size = args.wasm_module_size;
    if module_size == 0 || module_size > MAX_MODULE_BYTES as u64 {
        return Err(bad(format!(
            "wasm_module_size must be between 1 and {MAX_MODULE_BYTES} bytes, not {module_size}."
        )));
    }
    for (name, size, max) in [
        ("wasm_memory_size", args.wasm_memory_size, max_heap),
        (
            "stable_memory_size",
            args.stable_memory_size,
            MAX_PAGES * PAGE,
        ),
    ] {
        if size % PAGE != 0 || size > max {
            return Err(bad(format!(
                "{name} must be page aligned (a multiple of {PAGE}) and at most {max} bytes, not {size}."
            )));
        }
    }
    if args.certified_data.len() > 32 {
        return Err(bad("certified_data must be at most 32 bytes."));
    }
    if args.globals.len() > MAX_GLOBALS {
        return Err(bad(format!(
            "A snapshot holds at most {MAX_GLOBALS} globals."
        )));
    }
    let globals = args.globals.iter().map(from_ic).collect::<Result<_, _>>()?;
    Ok(Snapshot {
        id,
        taken_at: time,
        uploaded_module: Some(MemoryImage::zeros(module_size)),
        code: Code {
            module: [0; 32],
            module_size,
            heap: MemoryImage::zeros(args.wasm_memory_size),
            stable: MemoryImage::zeros(args.stable_memory_size),
            globals,
        },
        certified_data: args.certified_data.clone(),
        chunks: BTreeMap::new(),
        canister_version,
        global_timer: args.global_timer.as_ref().map(|timer| match timer {
            ic::CanisterTimer::Active(at) => *at,
            ic::CanisterTimer::Inactive => 0,
        }),
    })
}

/// Writes one uploaded slice (or chunk) into a snapshot made by metadata upload.
pub fn write(
    snapshot: &mut Snapshot,
    store: &mut Store,
    kind: ic::SnapshotDataOffset,
    chunk: &[u8],
) -> Result<(), Reject> {
    let Some(module) = &mut snapshot.uploaded_module else {
        return Err(Reject::new(
            ErrorCode::CanisterSnapshotImmutable,
            "Only canister snapshots created by metadata upload can be mutated.",
        ));
    };
    let (image, offset, name) = match kind {
        ic::SnapshotDataOffset::WasmChunk => {
            chunks::check_insert(&snapshot.chunks, &store::hash(chunk), chunk.len())?;
            let hash = store.put(chunk);
            snapshot.chunks.insert(hash, chunk.len() as u64);
            return Ok(());
        }
        ic::SnapshotDataOffset::WasmModule { offset } => (module, offset, "wasm module"),
        ic::SnapshotDataOffset::WasmMemory { offset } => {
            (&mut snapshot.code.heap, offset, "wasm memory")
        }
        ic::SnapshotDataOffset::StableMemory { offset } => {
            (&mut snapshot.code.stable, offset, "stable memory")
        }
    };
    if !image.write(store, offset, chunk).map_err(store_error)? {
        return Err(bad(format!(
            "Invalid upload to the snapshot's {name}: offset {offset} + {} bytes is past the size declared in its metadata ({}).",
            chunk.len(),
            image.len
        )));
    }
    Ok(())
}

/// The snapshot's code with its module assembled from the upload, ready to load.
pub fn assemble(snapshot: &Snapshot, store: &mut Store) -> Result<Code, Reject> {
    let mut code = snapshot.code.clone();
    if let Some(module) = &snapshot.uploaded_module {
        let bytes = module.restore(store).map_err(store_error)?;
        code.module = store.put(&bytes);
    }
    Ok(code)
}

fn to_ic(global: Global) -> ic::SnapshotMetadataGlobal {
    match global {
        Global::I32(v) => ic::SnapshotMetadataGlobal::I32(v),
        Global::I64(v) => ic::SnapshotMetadataGlobal::I64(v),
        Global::F32(v) => ic::SnapshotMetadataGlobal::F32(f32::from_bits(v)),
        Global::F64(v) => ic::SnapshotMetadataGlobal::F64(f64::from_bits(v)),
        Global::V128(v) => ic::SnapshotMetadataGlobal::V128(Nat::from(v)),
    }
}

fn from_ic(global: &ic::SnapshotMetadataGlobal) -> Result<Global, Reject> {
    Ok(match global {
        ic::SnapshotMetadataGlobal::I32(v) => Global::I32(*v),
        ic::SnapshotMetadataGlobal::I64(v) => Global::I64(*v),
        ic::SnapshotMetadataGlobal::F32(v) => Global::F32(v.to_bits()),
        ic::SnapshotMetadataGlobal::F64(v) => Global::F64(v.to_bits()),
        ic::SnapshotMetadataGlobal::V128(v) => Global::V128(
            u128::try_from(v.0.clone()).map_err(|_| bad("A v128 global must fit in 128 bits."))?,
        ),
    })
}

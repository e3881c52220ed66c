//! PocketIC's `canister_snapshot_download` and `canister_snapshot_upload`: a snapshot
//! written to, or read from, a directory in the layout dfx and icp-cli use
//! (`crate::snapshot_files`), through the management canister's snapshot data methods as
//! the request's sender, so that their checks (controllers, sizes, limits) apply unchanged.

use std::path::Path;

use candid::{CandidType, Principal};
use ic_management_canister_types::{
    self as ic, ReadCanisterSnapshotMetadataResult as Metadata, SnapshotDataKind,
    SnapshotDataOffset,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::operations::{Failure, bad};
use super::wire::{self, RawCanisterSnapshotDownload, RawCanisterSnapshotUpload, principal};
use crate::Replica;
use crate::snapshot_files::{
    CHUNK_STORE, METADATA, STABLE_MEMORY, WASM_MEMORY, WASM_MODULE, chunk_file,
};

/// The most bytes one read or upload of snapshot data moves (as dfx moves them).
const PIECE: u64 = 2_000_000;

/// The three memories: file, and the data kind that reads `size` bytes at `offset`.
type Memory = (
    &'static str,
    fn(u64, u64) -> SnapshotDataKind,
    fn(u64) -> SnapshotDataOffset,
);

const MEMORIES: [Memory; 3] = [
    (
        WASM_MODULE,
        |offset, size| SnapshotDataKind::WasmModule { offset, size },
        |offset| SnapshotDataOffset::WasmModule { offset },
    ),
    (
        WASM_MEMORY,
        |offset, size| SnapshotDataKind::WasmMemory { offset, size },
        |offset| SnapshotDataOffset::WasmMemory { offset },
    ),
    (
        STABLE_MEMORY,
        |offset, size| SnapshotDataKind::StableMemory { offset, size },
        |offset| SnapshotDataOffset::StableMemory { offset },
    ),
];

/// Calls management method `method` as `sender`; its reject as a failure.
fn manage<R: DeserializeOwned + CandidType>(
    replica: &mut Replica,
    sender: Principal,
    method: &str,
    arg: impl CandidType,
) -> Result<R, Failure> {
    let arg = candid::encode_one(arg).map_err(|e| bad(e.to_string()))?;
    let reply = replica
        .update(sender, Principal::management_canister(), method, &arg)
        .map_err(|r| bad(format!("{method}: {}", r.message)))?;
    candid::decode_one(&reply).map_err(|e| bad(format!("{method}'s reply: {e}")))
}

fn io(path: &Path, e: std::io::Error) -> Failure {
    bad(format!("{}: {e}", path.display()))
}

/// Writes snapshot `snapshot_id` of the canister into `snapshot_dir`, which must be empty
/// if it exists.
pub fn download(
    replica: &mut Replica,
    args: RawCanisterSnapshotDownload,
) -> Result<Value, Failure> {
    let sender = principal(&args.sender.principal_id, "sender").map_err(bad)?;
    let canister_id = principal(&args.canister_id.canister_id, "canister id").map_err(bad)?;
    let dir = &args.snapshot_dir;
    if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(bad(format!(
            "the snapshot directory {} is not empty: download into an empty or new directory",
            dir.display()
        )));
    }
    let snapshot_id = args.snapshot_id;
    let metadata: Metadata = manage(
        replica,
        sender,
        "read_canister_snapshot_metadata",
        ic::ReadCanisterSnapshotMetadataArgs {
            canister_id,
            snapshot_id: snapshot_id.clone(),
        },
    )?;
    std::fs::create_dir_all(dir.join(CHUNK_STORE)).map_err(|e| io(dir, e))?;
    let sizes = [
        metadata.wasm_module_size,
        metadata.wasm_memory_size,
        metadata.stable_memory_size,
    ];
    let mut read = |kind: SnapshotDataKind| -> Result<Vec<u8>, Failure> {
        let data: ic::ReadCanisterSnapshotDataResult = manage(
            replica,
            sender,
            "read_canister_snapshot_data",
            ic::ReadCanisterSnapshotDataArgs {
                canister_id,
                snapshot_id: snapshot_id.clone(),
                kind,
            },
        )?;
        Ok(data.chunk)
    };
    for ((file, kind, _), size) in MEMORIES.iter().zip(sizes) {
        let mut bytes = Vec::with_capacity(size as usize);
        let mut offset = 0;
        while offset < size {
            let piece = PIECE.min(size - offset);
            bytes.extend(read(kind(offset, piece))?);
            offset += piece;
        }
        let path = dir.join(file);
        std::fs::write(&path, bytes).map_err(|e| io(&path, e))?;
    }
    for chunk in &metadata.wasm_chunk_store {
        let bytes = read(SnapshotDataKind::WasmChunk {
            hash: chunk.hash.clone(),
        })?;
        let path = dir.join(CHUNK_STORE).join(chunk_file(&chunk.hash));
        std::fs::write(&path, bytes).map_err(|e| io(&path, e))?;
    }
    let path = dir.join(METADATA);
    let json = serde_json::to_vec_pretty(&metadata).map_err(|e| bad(e.to_string()))?;
    std::fs::write(&path, json).map_err(|e| io(&path, e))?;
    Ok(Value::Null)
}

/// Makes a snapshot of the canister from `snapshot_dir` (replacing `replace_snapshot` if
/// given); answers its id.
pub fn upload(replica: &mut Replica, args: RawCanisterSnapshotUpload) -> Result<Value, Failure> {
    let sender = principal(&args.sender.principal_id, "sender").map_err(bad)?;
    let canister_id = principal(&args.canister_id.canister_id, "canister id").map_err(bad)?;
    let dir = &args.snapshot_dir;
    let path = dir.join(METADATA);
    let json = std::fs::read(&path).map_err(|e| io(&path, e))?;
    let metadata: Metadata = serde_json::from_slice(&json).map_err(|e| {
        bad(format!(
            "{} is not snapshot metadata as dfx writes it: {e}",
            path.display()
        ))
    })?;
    let memories: Vec<Vec<u8>> = MEMORIES
        .iter()
        .map(|(file, _, _)| {
            let path = dir.join(file);
            std::fs::read(&path).map_err(|e| io(&path, e))
        })
        .collect::<Result<_, _>>()?;
    let created: ic::UploadCanisterSnapshotMetadataResult = manage(
        replica,
        sender,
        "upload_canister_snapshot_metadata",
        ic::UploadCanisterSnapshotMetadataArgs {
            canister_id,
            replace_snapshot: args.replace_snapshot.map(|r| r.snapshot_id),
            wasm_module_size: metadata.wasm_module_size,
            globals: metadata.globals.into_iter().flatten().collect(),
            wasm_memory_size: metadata.wasm_memory_size,
            stable_memory_size: metadata.stable_memory_size,
            certified_data: metadata.certified_data,
            global_timer: metadata.global_timer,
            on_low_wasm_memory_hook_status: metadata.on_low_wasm_memory_hook_status,
        },
    )?;
    let snapshot_id = created.snapshot_id;
    let mut put = |kind: SnapshotDataOffset, chunk: &[u8]| -> Result<(), Failure> {
        manage::<()>(
            replica,
            sender,
            "upload_canister_snapshot_data",
            ic::UploadCanisterSnapshotDataArgs {
                canister_id,
                snapshot_id: snapshot_id.clone(),
                kind,
                chunk: chunk.to_vec(),
            },
        )
    };
    for ((_, _, kind), bytes) in MEMORIES.iter().zip(&memories) {
        for (at, piece) in bytes.chunks(PIECE as usize).enumerate() {
            put(kind(at as u64 * PIECE), piece)?;
        }
    }
    for chunk in &metadata.wasm_chunk_store {
        let path = dir.join(CHUNK_STORE).join(chunk_file(&chunk.hash));
        let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
        put(SnapshotDataOffset::WasmChunk, &bytes)?;
    }
    serde_json::to_value(wire::RawCanisterSnapshotId { snapshot_id })
        .map_err(|e| bad(e.to_string()))
}

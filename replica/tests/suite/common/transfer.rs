//! Snapshot download and upload through the management canister, slice by slice as dfx and
//! icp-cli do.

use ic_management_canister_types as ic;
use replica::{Principal, Reject};

use super::{Local, user};

pub const SLICE: u64 = 2_000_000;

pub fn read_metadata(
    local: &mut Local,
    canister: Principal,
    id: &[u8],
) -> ic::ReadCanisterSnapshotMetadataResult {
    let args = ic::ReadCanisterSnapshotMetadataArgs {
        canister_id: canister,
        snapshot_id: id.to_vec(),
    };
    local
        .management(user(), "read_canister_snapshot_metadata", args)
        .unwrap()
}

pub fn read_data(
    local: &mut Local,
    canister: Principal,
    id: &[u8],
    kind: ic::SnapshotDataKind,
) -> Result<Vec<u8>, Reject> {
    let args = ic::ReadCanisterSnapshotDataArgs {
        canister_id: canister,
        snapshot_id: id.to_vec(),
        kind,
    };
    local
        .management::<ic::ReadCanisterSnapshotDataResult>(
            user(),
            "read_canister_snapshot_data",
            args,
        )
        .map(|r| r.chunk)
}

/// A whole region, read in slices as dfx and icp-cli do.
pub fn download(
    local: &mut Local,
    canister: Principal,
    id: &[u8],
    size: u64,
    kind: fn(u64, u64) -> ic::SnapshotDataKind,
) -> Vec<u8> {
    let mut bytes = Vec::new();
    while (bytes.len() as u64) < size {
        let offset = bytes.len() as u64;
        let slice = read_data(local, canister, id, kind(offset, SLICE.min(size - offset))).unwrap();
        bytes.extend(slice);
    }
    bytes
}

pub fn upload_data(
    local: &mut Local,
    canister: Principal,
    id: &[u8],
    kind: ic::SnapshotDataOffset,
    chunk: Vec<u8>,
) -> Result<(), Reject> {
    let args = ic::UploadCanisterSnapshotDataArgs {
        canister_id: canister,
        snapshot_id: id.to_vec(),
        kind,
        chunk,
    };
    local.management(user(), "upload_canister_snapshot_data", args)
}

pub fn upload_metadata(
    local: &mut Local,
    canister: Principal,
    m: &ic::ReadCanisterSnapshotMetadataResult,
) -> Result<Vec<u8>, Reject> {
    let args = ic::UploadCanisterSnapshotMetadataArgs {
        canister_id: canister,
        replace_snapshot: None,
        wasm_module_size: m.wasm_module_size,
        globals: m.globals.iter().map(|g| g.clone().unwrap()).collect(),
        wasm_memory_size: m.wasm_memory_size,
        stable_memory_size: m.stable_memory_size,
        certified_data: m.certified_data.clone(),
        global_timer: m.global_timer.clone(),
        on_low_wasm_memory_hook_status: None,
    };
    local
        .management::<ic::UploadCanisterSnapshotMetadataResult>(
            user(),
            "upload_canister_snapshot_metadata",
            args,
        )
        .map(|r| r.snapshot_id)
}

/// A region of a snapshot: its size, how to read a slice of it and where to upload one.
type Region = (
    u64,
    fn(u64, u64) -> ic::SnapshotDataKind,
    fn(u64) -> ic::SnapshotDataOffset,
);

/// Copies snapshot `id` of `canister` into a new, uploaded snapshot; returns its id.
pub fn copy(local: &mut Local, canister: Principal, id: &[u8]) -> Result<Vec<u8>, Reject> {
    copy_edited(local, canister, id, |_| {})
}

/// Copies snapshot `id` as `copy` does, with its metadata changed by `edit` on the way.
pub fn copy_edited(
    local: &mut Local,
    canister: Principal,
    id: &[u8],
    edit: impl FnOnce(&mut ic::ReadCanisterSnapshotMetadataResult),
) -> Result<Vec<u8>, Reject> {
    let metadata = read_metadata(local, canister, id);
    let mut edited = metadata.clone();
    edit(&mut edited);
    let regions: [Region; 3] = [
        (
            metadata.wasm_module_size,
            |offset, size| ic::SnapshotDataKind::WasmModule { offset, size },
            |offset| ic::SnapshotDataOffset::WasmModule { offset },
        ),
        (
            metadata.wasm_memory_size,
            |offset, size| ic::SnapshotDataKind::WasmMemory { offset, size },
            |offset| ic::SnapshotDataOffset::WasmMemory { offset },
        ),
        (
            metadata.stable_memory_size,
            |offset, size| ic::SnapshotDataKind::StableMemory { offset, size },
            |offset| ic::SnapshotDataOffset::StableMemory { offset },
        ),
    ];
    let uploaded = upload_metadata(local, canister, &edited)?;
    for (size, read, write) in regions {
        let bytes = download(local, canister, id, size, read);
        for (i, slice) in bytes.chunks(SLICE as usize).enumerate() {
            let offset = i as u64 * SLICE;
            upload_data(local, canister, &uploaded, write(offset), slice.to_vec())?;
        }
    }
    Ok(uploaded)
}

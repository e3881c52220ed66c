//! Snapshot uploads shaped by the fuzzer: metadata with arbitrary sizes, globals, timer and
//! certified data, then slices of data at arbitrary offsets, then a load of the result.
//! Whatever is uploaded is refused or loaded; nothing panics.
#![no_main]

use arbitrary::Arbitrary;
use candid::{Decode, Encode, Principal};
use ic_management_canister_types as ic;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Global {
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
}

#[derive(Arbitrary, Debug)]
enum Region {
    Module,
    Heap,
    Stable,
    Chunk,
}

#[derive(Arbitrary, Debug)]
struct Upload {
    module_size: u16,
    heap_pages: u8,
    stable_pages: u8,
    globals: Vec<Global>,
    certified_data: Vec<u8>,
    timer: Option<u64>,
    slices: Vec<(Region, u32, Vec<u8>)>,
    load: bool,
}

fuzz_target!(|upload: Upload| {
    let mut world = replica_fuzz::world();
    let canister = world.canister;
    let mut manage = |method: &str, arg: Vec<u8>| {
        world.replica.update(
            replica_fuzz::controller(),
            Principal::management_canister(),
            method,
            &arg,
        )
    };
    let metadata = ic::UploadCanisterSnapshotMetadataArgs {
        canister_id: canister,
        replace_snapshot: None,
        wasm_module_size: upload.module_size.into(),
        globals: upload
            .globals
            .iter()
            .map(|g| match g {
                Global::I32(v) => ic::SnapshotMetadataGlobal::I32(*v),
                Global::I64(v) => ic::SnapshotMetadataGlobal::I64(*v),
                Global::F32(v) => ic::SnapshotMetadataGlobal::F32(*v),
                Global::F64(v) => ic::SnapshotMetadataGlobal::F64(*v),
            })
            .collect(),
        wasm_memory_size: u64::from(upload.heap_pages) << 16,
        stable_memory_size: u64::from(upload.stable_pages) << 16,
        certified_data: upload.certified_data,
        global_timer: upload.timer.map(ic::CanisterTimer::Active),
        on_low_wasm_memory_hook_status: None,
    };
    let Ok(reply) = manage(
        "upload_canister_snapshot_metadata",
        Encode!(&metadata).unwrap(),
    ) else {
        return;
    };
    let id = Decode!(&reply, ic::UploadCanisterSnapshotMetadataResult)
        .unwrap()
        .snapshot_id;
    for (region, offset, chunk) in upload.slices {
        let offset = u64::from(offset);
        let kind = match region {
            Region::Module => ic::SnapshotDataOffset::WasmModule { offset },
            Region::Heap => ic::SnapshotDataOffset::WasmMemory { offset },
            Region::Stable => ic::SnapshotDataOffset::StableMemory { offset },
            Region::Chunk => ic::SnapshotDataOffset::WasmChunk,
        };
        let args = ic::UploadCanisterSnapshotDataArgs {
            canister_id: canister,
            snapshot_id: id.clone(),
            kind,
            chunk,
        };
        let _ = manage("upload_canister_snapshot_data", Encode!(&args).unwrap());
    }
    if upload.load {
        let args = ic::LoadCanisterSnapshotArgs {
            canister_id: canister,
            snapshot_id: id.clone(),
            sender_canister_version: None,
        };
        let _ = manage("load_canister_snapshot", Encode!(&args).unwrap());
    }
    // Keep room for the next input: a canister holds at most 10 snapshots.
    let args = ic::DeleteCanisterSnapshotArgs {
        canister_id: canister,
        snapshot_id: id,
    };
    let _ = manage("delete_canister_snapshot", Encode!(&args).unwrap());
});

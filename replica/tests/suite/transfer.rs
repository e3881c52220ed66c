//! Snapshot download and upload through the management canister: a snapshot read out slice
//! by slice and uploaded again loads to the same state; bad slices and uploads change nothing.

use crate::common::transfer::{
    SLICE, download, read_data, read_metadata, upload_data, upload_metadata,
};
use crate::common::{Local, user, wat};
use ic_management_canister_types as ic;
use replica::ErrorCode;

const COUNTER: &str = include_str!("common/counter.wat");
#[test]
fn a_downloaded_snapshot_uploaded_again_loads_to_the_same_state() {
    let mut local = Local::new();
    let counter = local.deploy(wat(COUNTER));
    for _ in 0..2 {
        local.replica.update(user(), counter, "inc", &[]).unwrap();
    }
    let before = local.replica.query(user(), counter, "read", &[]).unwrap();
    let taken = local.take_snapshot(counter, None).unwrap();
    let metadata = read_metadata(&mut local, counter, &taken.id);
    assert!(matches!(
        metadata.source,
        Some(ic::SnapshotSource::TakenFromCanister(_))
    ));
    let module = download(
        &mut local,
        counter,
        &taken.id,
        metadata.wasm_module_size,
        |offset, size| ic::SnapshotDataKind::WasmModule { offset, size },
    );
    assert_eq!(module, wat(COUNTER));
    let heap = download(
        &mut local,
        counter,
        &taken.id,
        metadata.wasm_memory_size,
        |offset, size| ic::SnapshotDataKind::WasmMemory { offset, size },
    );
    let stable = download(
        &mut local,
        counter,
        &taken.id,
        metadata.stable_memory_size,
        |offset, size| ic::SnapshotDataKind::StableMemory { offset, size },
    );
    assert_eq!(&stable[..4], &2u32.to_le_bytes());

    // Break the canister, then bring it back from the upload.
    local.replica.update(user(), counter, "inc", &[]).unwrap();
    let uploaded = upload_metadata(&mut local, counter, &metadata).unwrap();
    assert_eq!(&uploaded[..8], &1u64.to_be_bytes());
    for (kind, bytes) in [
        (ic::SnapshotDataOffset::WasmModule { offset: 0 }, module),
        (ic::SnapshotDataOffset::WasmMemory { offset: 0 }, heap),
        (ic::SnapshotDataOffset::StableMemory { offset: 0 }, stable),
    ] {
        upload_data(&mut local, counter, &uploaded, kind, bytes).unwrap();
    }
    local.load_snapshot(counter, uploaded.clone()).unwrap();
    assert_eq!(
        local.replica.query(user(), counter, "read", &[]).unwrap(),
        before
    );
    let again = read_metadata(&mut local, counter, &uploaded);
    assert!(matches!(
        again.source,
        Some(ic::SnapshotSource::MetadataUpload(_))
    ));
}

#[test]
fn bad_slices_and_uploads_are_refused() {
    let mut local = Local::new();
    let counter = local.deploy(wat(COUNTER));
    let taken = local.take_snapshot(counter, None).unwrap();
    let metadata = read_metadata(&mut local, counter, &taken.id);

    let too_big = read_data(
        &mut local,
        counter,
        &taken.id,
        ic::SnapshotDataKind::WasmMemory {
            offset: 0,
            size: SLICE + 1,
        },
    )
    .unwrap_err();
    assert!(
        too_big.message.contains("Requested slice too large"),
        "{too_big}"
    );
    let past = read_data(
        &mut local,
        counter,
        &taken.id,
        ic::SnapshotDataKind::StableMemory {
            offset: 65536,
            size: 1,
        },
    )
    .unwrap_err();
    assert!(past.message.contains("past its end"), "{past}");

    let immutable = upload_data(
        &mut local,
        counter,
        &taken.id,
        ic::SnapshotDataOffset::WasmModule { offset: 0 },
        vec![1],
    )
    .unwrap_err();
    assert_eq!(
        immutable.error_code,
        Some(ErrorCode::CanisterSnapshotImmutable)
    );

    let mut unaligned = metadata.clone();
    unaligned.wasm_memory_size += 1;
    let reject = upload_metadata(&mut local, counter, &unaligned).unwrap_err();
    assert!(reject.message.contains("page aligned"), "{reject}");
    assert_eq!(
        local.list_snapshots(counter).len(),
        1,
        "nothing was created"
    );

    let uploaded = upload_metadata(&mut local, counter, &metadata).unwrap();
    let overflow = upload_data(
        &mut local,
        counter,
        &uploaded,
        ic::SnapshotDataOffset::WasmModule {
            offset: metadata.wasm_module_size,
        },
        vec![1],
    )
    .unwrap_err();
    assert!(
        overflow.message.contains("past the size declared"),
        "{overflow}"
    );

    // A module whose globals differ from the metadata's cannot be loaded.
    let mut wrong = metadata.clone();
    wrong.globals.clear();
    let mismatched = upload_metadata(&mut local, counter, &wrong).unwrap();
    upload_data(
        &mut local,
        counter,
        &mismatched,
        ic::SnapshotDataOffset::WasmModule { offset: 0 },
        wat(COUNTER),
    )
    .unwrap();
    let reject = local.load_snapshot(counter, mismatched).unwrap_err();
    assert!(reject.message.contains("globals"), "{reject}");
}

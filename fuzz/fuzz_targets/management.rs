//! Management-canister calls with arbitrary arguments, from the canister's controller: every
//! method's Candid decoding and validation. Any input gets an answer; none panics.
#![no_main]

use candid::Principal;
use libfuzzer_sys::fuzz_target;

const METHODS: [&str; 22] = [
    "provisional_create_canister_with_cycles",
    "create_canister",
    "install_code",
    "uninstall_code",
    "start_canister",
    "stop_canister",
    "canister_status",
    "update_settings",
    "upload_chunk",
    "clear_chunk_store",
    "stored_chunks",
    "install_chunked_code",
    "fetch_canister_logs",
    "delete_canister",
    "take_canister_snapshot",
    "load_canister_snapshot",
    "list_canister_snapshots",
    "delete_canister_snapshot",
    "read_canister_snapshot_metadata",
    "read_canister_snapshot_data",
    "upload_canister_snapshot_metadata",
    "upload_canister_snapshot_data",
];

fuzz_target!(|input: (u8, &[u8])| {
    let (method, arg) = input;
    let method = METHODS[method as usize % METHODS.len()];
    let mut world = replica_fuzz::world();
    let _ = world.replica.update(
        replica_fuzz::controller(),
        Principal::management_canister(),
        method,
        arg,
    );
});

//! What the management canister's lifecycle methods do to a canister beyond its code, each as
//! the IC interface spec says: the timer and certified data across installs, what
//! `uninstall_code` empties, how `canister_version` counts stops and starts, when
//! `wasm_memory_limit` holds, and the checks on chunked installs and uploaded snapshots.

use crate::common::transfer::{copy_edited, read_metadata};
use crate::common::{Local, user, wat};
use candid::{Decode, Encode, Nat, Principal};
use ic_management_canister_types as ic;
use replica::ErrorCode;

const COUNTER: &str = include_str!("common/counter.wat");

/// `arm` sets the timer far ahead and certifies "abcd"; `canister_post_upgrade` keeps the
/// timer value `global_timer_set` returns in heap bytes 0..8, which `previous` replies.
const TIMED: &str = r#"(module
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "global_timer_set" (func $timer (param i64) (result i64)))
  (import "ic0" "certified_data_set" (func $certify (param i32 i32)))
  (memory 1)
  (data (i32.const 100) "abcd")
  (func (export "canister_update arm")
    (drop (call $timer (i64.const 9000000000000000000)))
    (call $certify (i32.const 100) (i32.const 4))
    (call $reply))
  (func (export "canister_post_upgrade")
    (i64.store (i32.const 0) (call $timer (i64.const 0))))
  (func (export "canister_query previous")
    (call $append (i32.const 0) (i32.const 8)) (call $reply))
)"#;

/// A timer as `global_timer_set` has it: 0 when inactive.
fn timer_at(timer: Option<ic::CanisterTimer>) -> Option<u64> {
    timer.map(|t| match t {
        ic::CanisterTimer::Active(at) => at,
        ic::CanisterTimer::Inactive => 0,
    })
}

/// The time `arm` sets the timer to.
const FAR: u64 = 9_000_000_000_000_000_000;

/// The timer and certified data a snapshot taken now records.
fn timer_and_certified(local: &mut Local, canister: Principal) -> (u64, Vec<u8>) {
    let id = local.take_snapshot(canister, None).unwrap().id;
    let metadata = read_metadata(local, canister, &id);
    local
        .management::<()>(
            user(),
            "delete_canister_snapshot",
            ic::DeleteCanisterSnapshotArgs {
                canister_id: canister,
                snapshot_id: id,
            },
        )
        .unwrap();
    let timer = timer_at(metadata.global_timer).expect("a taken snapshot records its timer");
    (timer, metadata.certified_data)
}

#[test]
fn install_code_stops_the_timer_and_an_upgrade_keeps_certified_data() {
    let mut local = Local::new();
    let canister = local.deploy(wat(TIMED));
    local.replica.update(user(), canister, "arm", &[]).unwrap();
    let armed = timer_and_certified(&mut local, canister);
    assert_eq!(armed, (FAR, b"abcd".to_vec()));

    let upgrade = ic::CanisterInstallMode::Upgrade(None);
    local.install(canister, wat(TIMED), upgrade).unwrap();
    let previous = local
        .replica
        .query(user(), canister, "previous", &[])
        .unwrap();
    assert_eq!(previous, 0i64.to_le_bytes(), "post_upgrade saw no timer");
    assert_eq!(
        timer_and_certified(&mut local, canister),
        (0, b"abcd".to_vec()),
        "the upgrade stopped the timer and kept the certified data"
    );

    let reinstall = ic::CanisterInstallMode::Reinstall;
    local.install(canister, wat(TIMED), reinstall).unwrap();
    assert_eq!(
        timer_and_certified(&mut local, canister),
        (0, Vec::new()),
        "a reinstall starts with no certified data"
    );
}

#[test]
fn uninstall_code_empties_the_chunk_store_and_the_logs() {
    let mut local = Local::new();
    let canister = local.deploy(wat(COUNTER));
    local
        .replica
        .update(user(), canister, "print", &[])
        .unwrap();
    let chunk = ic::UploadChunkArgs {
        canister_id: canister,
        chunk: vec![1; 100],
    };
    local
        .management::<ic::ChunkHash>(user(), "upload_chunk", chunk)
        .unwrap();
    let record = ic::CanisterIdRecord {
        canister_id: canister,
    };
    assert_eq!(stored_chunks(&mut local, canister), 1);
    assert_eq!(log_lines(&mut local, canister), 1);
    let chunk_usage = local.status(canister).memory_metrics.wasm_chunk_store_size;
    assert_eq!(
        chunk_usage,
        Nat::from(1u64 << 20),
        "a chunk is charged 1 MiB"
    );

    local
        .management::<()>(user(), "uninstall_code", record)
        .unwrap();
    assert_eq!(stored_chunks(&mut local, canister), 0);
    assert_eq!(log_lines(&mut local, canister), 0);
}

fn stored_chunks(local: &mut Local, canister: Principal) -> usize {
    let record = ic::CanisterIdRecord {
        canister_id: canister,
    };
    local
        .management::<Vec<ic::ChunkHash>>(user(), "stored_chunks", record)
        .unwrap()
        .len()
}

fn log_lines(local: &mut Local, canister: Principal) -> usize {
    let args = ic::FetchCanisterLogsArgs {
        canister_id: canister,
        filter: None,
    };
    let management = Principal::management_canister();
    let reply = local
        .replica
        .query(
            user(),
            management,
            "fetch_canister_logs",
            &Encode!(&args).unwrap(),
        )
        .unwrap();
    Decode!(&reply, ic::FetchCanisterLogsResult)
        .unwrap()
        .canister_log_records
        .len()
}

#[test]
fn every_stop_and_start_counts_in_the_canister_version() {
    let mut local = Local::new();
    let canister = local.deploy(wat(COUNTER));
    let version = |local: &mut Local| local.status(canister).version;
    let installed = version(&mut local);
    local.stop(canister);
    assert_eq!(
        version(&mut local),
        installed + 2,
        "stop, then stopping → stopped"
    );
    local.stop(canister);
    assert_eq!(
        version(&mut local),
        installed + 3,
        "a stop of a stopped canister"
    );
    local.start(canister);
    local.start(canister);
    assert_eq!(version(&mut local), installed + 5, "each start");
}

#[test]
fn wasm_memory_limit_holds_in_updates_but_not_in_queries() {
    let mut local = Local::new();
    let counter = local.deploy(wat(COUNTER));
    let settings = ic::CanisterSettings {
        wasm_memory_limit: Some(Nat::from(65536u64)),
        ..Default::default()
    };
    local.update_settings(counter, settings);
    local
        .replica
        .query(user(), counter, "grow_in_query", &[])
        .expect("a query may grow past the limit");
    let reject = local
        .replica
        .update(user(), counter, "grow", &[])
        .unwrap_err();
    assert_eq!(
        reject.error_code,
        Some(ErrorCode::CanisterOutOfMemory),
        "{reject}"
    );
}

#[test]
fn a_chunked_install_naming_one_chunk_over_and_over_is_refused() {
    let mut local = Local::new();
    let canister = local.deploy(wat(COUNTER));
    let before = local.status(canister);
    let chunk = ic::UploadChunkArgs {
        canister_id: canister,
        chunk: vec![7; 1 << 20],
    };
    let hash = local
        .management::<ic::ChunkHash>(user(), "upload_chunk", chunk)
        .unwrap();
    let args = ic::InstallChunkedCodeArgs {
        mode: ic::CanisterInstallMode::Upgrade(None),
        target_canister: canister,
        store_canister: None,
        // 60 GiB of module from a 2 MiB argument, were it assembled.
        chunk_hashes_list: vec![hash; 60_000],
        wasm_module_hash: vec![0; 32],
        arg: Vec::new(),
        sender_canister_version: None,
    };
    let reject = local
        .management::<()>(user(), "install_chunked_code", args)
        .unwrap_err();
    assert_eq!(
        reject.error_code,
        Some(ErrorCode::CanisterContractViolation),
        "{reject}"
    );
    assert!(reject.message.contains("add up to more than"), "{reject}");
    assert_eq!(local.status(canister).module_hash, before.module_hash);
}

#[test]
fn an_uploaded_snapshot_must_carry_globals_of_the_modules_types() {
    let mut local = Local::new();
    let counter = local.deploy(wat(COUNTER));
    local.replica.update(user(), counter, "inc", &[]).unwrap();
    let taken = local.take_snapshot(counter, None).unwrap().id;
    let retyped = copy_edited(&mut local, counter, &taken, |m| {
        m.globals = vec![Some(ic::SnapshotMetadataGlobal::I64(1))];
    })
    .unwrap();
    let reject = local.load_snapshot(counter, retyped).unwrap_err();
    assert_eq!(
        reject.error_code,
        Some(ErrorCode::InvalidManagementPayload),
        "{reject}"
    );
    assert!(reject.message.contains("globals"), "{reject}");
    let reply = local.replica.query(user(), counter, "read", &[]).unwrap();
    assert_eq!(
        reply[4..8],
        1i32.to_le_bytes(),
        "the canister runs on, unchanged"
    );
}

#[test]
fn an_uploaded_snapshot_without_a_timer_leaves_the_canisters() {
    let mut local = Local::new();
    let canister = local.deploy(wat(TIMED));
    local.replica.update(user(), canister, "arm", &[]).unwrap();
    let taken = local.take_snapshot(canister, None).unwrap().id;
    let untimed = copy_edited(&mut local, canister, &taken, |m| m.global_timer = None).unwrap();
    assert_eq!(
        timer_at(read_metadata(&mut local, canister, &untimed).global_timer),
        None
    );
    local.load_snapshot(canister, untimed).unwrap();
    let (timer, _) = timer_and_certified(&mut local, canister);
    assert_eq!(timer, FAR);

    let stopped = copy_edited(&mut local, canister, &taken, |m| {
        m.global_timer = Some(ic::CanisterTimer::Inactive);
    })
    .unwrap();
    local.load_snapshot(canister, stopped).unwrap();
    let (timer, _) = timer_and_certified(&mut local, canister);
    assert_eq!(timer, 0);
}

#[test]
fn uploaded_snapshots_that_this_machine_or_wasm32_cannot_hold_are_refused() {
    let mut local = Local::new();
    let counter = local.deploy(wat(COUNTER));
    let taken = local.take_snapshot(counter, None).unwrap().id;
    let too_big_heap = copy_edited(&mut local, counter, &taken, |m| {
        m.wasm_memory_size = 5 << 30;
    })
    .unwrap_err();
    assert_eq!(
        too_big_heap.error_code,
        Some(ErrorCode::InvalidManagementPayload)
    );
    assert!(
        too_big_heap.message.contains("wasm_memory_size"),
        "{too_big_heap}"
    );

    // 100 GiB of stable memory is within the IC's limit but beyond this machine's memory
    // (RAM and swap): the load is refused with a reason, and the replica runs on — whether
    // the canister's memories are in memory or, after a restart, not yet.
    let vast = copy_edited(&mut local, counter, &taken, |m| {
        m.stable_memory_size = 100 << 30;
    })
    .unwrap();
    let reject = local.load_snapshot(counter, vast.clone()).unwrap_err();
    assert!(reject.message.contains("does not fit"), "{reject}");
    local.replica.update(user(), counter, "inc", &[]).unwrap();
    let mut local = local.reopen();
    local.stop(counter);
    let reject = local.load_snapshot(counter, vast).unwrap_err();
    assert!(reject.message.contains("does not fit"), "{reject}");
    local.start(counter);
    let reply = local.replica.update(user(), counter, "inc", &[]).unwrap();
    assert_eq!(
        reply[4..8],
        2i32.to_le_bytes(),
        "the canister runs on, unchanged"
    );
}

/// A module that asks for its heap to be kept on upgrade, as Motoko's enhanced orthogonal
/// persistence does: `canister_pre_upgrade` marks byte 0 ('U'), `bump` counts in byte 1,
/// `read` replies both.
const KEEPS_HEAP: &str = r#"(module
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (memory 1)
  (func (export "canister_pre_upgrade") (i32.store8 (i32.const 0) (i32.const 85)))
  (func (export "canister_update bump")
    (i32.store8 (i32.const 1) (i32.add (i32.load8_u (i32.const 1)) (i32.const 1)))
    (call $reply))
  (func (export "canister_query read") (call $append (i32.const 0) (i32.const 2)) (call $reply))
  (@custom "icp:private enhanced-orthogonal-persistence" "")
)"#;

fn upgrade_keeping(
    local: &mut Local,
    canister: Principal,
    wasm: Vec<u8>,
    keep: bool,
) -> Result<(), replica::Reject> {
    let persistence = keep.then_some(ic::WasmMemoryPersistence::Keep);
    let mode = ic::CanisterInstallMode::Upgrade(Some(ic::UpgradeFlags {
        skip_pre_upgrade: None,
        wasm_memory_persistence: persistence,
    }));
    local.install(canister, wasm, mode)
}

#[test]
fn a_module_that_keeps_its_heap_is_upgraded_only_with_keep_and_keeps_what_pre_upgrade_left() {
    let mut local = Local::new();
    let canister = local.deploy(wat(KEEPS_HEAP));
    let bump = |local: &mut Local| local.replica.update(user(), canister, "bump", &[]).unwrap();
    for _ in 0..3 {
        bump(&mut local);
    }
    let read = |local: &mut Local| {
        local
            .replica
            .query(user(), canister, "read", &Encode!().unwrap())
            .unwrap()
    };
    assert_eq!(read(&mut local), [0, 3]);
    let version = local.status(canister).version;

    // Without `keep`, the IC refuses before anything changes.
    let refused = upgrade_keeping(&mut local, canister, wat(KEEPS_HEAP), false).unwrap_err();
    assert_eq!(
        refused.error_code,
        Some(ErrorCode::CanisterContractViolation)
    );
    assert_eq!(
        refused.message,
        "Missing upgrade option: Enhanced orthogonal persistence requires the `wasm_memory_persistence` upgrade option."
    );
    assert_eq!(read(&mut local), [0, 3]);
    assert_eq!(local.status(canister).version, version);

    // `keep` on a module that does not keep its heap is refused too.
    let refused = upgrade_keeping(&mut local, canister, wat(COUNTER), true).unwrap_err();
    assert!(refused.message.starts_with("Invalid upgrade option: The `wasm_memory_persistence: opt Keep` upgrade option requires"), "{refused}");

    // With `keep`, the new code starts on the heap `canister_pre_upgrade` left.
    upgrade_keeping(&mut local, canister, wat(KEEPS_HEAP), true).unwrap();
    assert_eq!(read(&mut local), [85, 3]);
    bump(&mut local);
    assert_eq!(read(&mut local), [85, 4]);
}

/// The cycles ledger's `create_canister` is an update: as a query it is refused as the IC
/// refuses a query to an update method, and creates nothing; the CMC's
/// `get_default_subnets` is a query and answers this subnet.
#[test]
fn a_query_to_a_system_canister_changes_nothing() {
    let mut local = Local::new();
    let ledger = Principal::from_text("um5iw-rqaaa-aaaaq-qaaba-cai").unwrap();
    let cmc = Principal::from_text("rkp4c-7iaaa-aaaaa-aaaca-cai").unwrap();
    let arg = Encode!(&(Nat::from(1_000_000_000_000u64), None::<()>)).unwrap();
    let refused = local
        .replica
        .query(user(), ledger, "create_canister", &arg)
        .unwrap_err();
    assert_eq!(refused.error_code, Some(ErrorCode::CanisterMethodNotFound));
    assert_eq!(
        refused.message,
        format!("Error from Canister {ledger}: Canister has no query method 'create_canister'.")
    );
    assert!(local.replica.canister_ids().is_empty());
    let subnets = local
        .replica
        .query(user(), cmc, "get_default_subnets", &Encode!().unwrap())
        .unwrap();
    let subnets = Decode!(&subnets, Vec<Principal>).unwrap();
    assert_eq!(subnets, vec![local.replica.subnet_id()]);
}

#[test]
fn a_deleted_canister_takes_its_snapshots_with_it() {
    let mut local = Local::new();
    let chat = local.deploy(crate::common::chat_wasm());
    let (): () = local.update(chat, "append", ("Hi there!",)).unwrap();
    let record = ic::CanisterIdRecord { canister_id: chat };
    let snapshot: ic::Snapshot = local
        .management(
            user(),
            "take_canister_snapshot",
            ic::TakeCanisterSnapshotArgs {
                canister_id: chat,
                replace_snapshot: None,
                uninstall_code: None,
                sender_canister_version: None,
            },
        )
        .unwrap();
    let (): () = local.management(user(), "stop_canister", &record).unwrap();
    let (): () = local
        .management(user(), "delete_canister", &record)
        .unwrap();

    let gone = local
        .management::<Vec<ic::Snapshot>>(user(), "list_canister_snapshots", &record)
        .unwrap_err();
    assert_eq!(gone.error_code, Some(ErrorCode::CanisterNotFound));
    assert_eq!(gone.message, format!("Canister {chat} not found"));
    // Nor can another canister load what the deleted one held.
    let other = local.deploy(crate::common::chat_wasm());
    let (): () = local
        .management(
            user(),
            "stop_canister",
            ic::CanisterIdRecord { canister_id: other },
        )
        .unwrap();
    let refused = local
        .management::<()>(
            user(),
            "load_canister_snapshot",
            ic::LoadCanisterSnapshotArgs {
                canister_id: other,
                snapshot_id: snapshot.id.clone(),
                sender_canister_version: None,
            },
        )
        .unwrap_err();
    assert_eq!(
        refused.error_code,
        Some(ErrorCode::CanisterSnapshotNotFound)
    );
    assert_eq!(
        refused.message,
        format!("Could not find the snapshot ID {chat}-0 for canister {other}.")
    );
}

/// Keeps 42 in its heap and 7 in its stable memory (`set`); `get` answers both. Its
/// `canister_pre_upgrade` traps once `refuse_upgrades` was called.
const GUARDED: &str = r#"(module
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "trap" (func $trap (param i32 i32)))
  (import "ic0" "stable64_grow" (func $grow (param i64) (result i64)))
  (import "ic0" "stable64_write" (func $swrite (param i64 i64 i64)))
  (import "ic0" "stable64_read" (func $sread (param i64 i64 i64)))
  (memory 1)
  (data (i32.const 100) "pre_upgrade refuses")
  (func (export "canister_update set")
    (i32.store8 (i32.const 0) (i32.const 42))
    (drop (call $grow (i64.const 1)))
    (i32.store8 (i32.const 2) (i32.const 7))
    (call $swrite (i64.const 0) (i64.const 2) (i64.const 1))
    (call $reply))
  (func (export "canister_update refuse_upgrades")
    (i32.store8 (i32.const 1) (i32.const 1))
    (call $reply))
  (func (export "canister_pre_upgrade")
    (if (i32.eq (i32.load8_u (i32.const 1)) (i32.const 1))
      (then (call $trap (i32.const 100) (i32.const 19)))))
  (func (export "canister_query get")
    (call $sread (i64.const 3) (i64.const 0) (i64.const 1))
    (call $append (i32.const 0) (i32.const 1))
    (call $append (i32.const 3) (i32.const 1))
    (call $reply)))"#;

/// A module whose `canister_post_upgrade` traps.
const FAILS_AFTER_UPGRADE: &str = r#"(module
  (import "ic0" "trap" (func $trap (param i32 i32)))
  (memory 1)
  (data (i32.const 0) "post_upgrade fails")
  (func (export "canister_post_upgrade") (call $trap (i32.const 0) (i32.const 18))))"#;

#[test]
fn an_upgrade_whose_pre_or_post_upgrade_traps_rolls_back_whole() {
    let mut local = Local::new();
    let canister = local.deploy(wat(GUARDED));
    local.replica.update(user(), canister, "set", &[]).unwrap();
    let observe = |local: &mut Local| {
        let status: ic::CanisterStatusResult = local
            .management(
                user(),
                "canister_status",
                ic::CanisterIdRecord {
                    canister_id: canister,
                },
            )
            .unwrap();
        let kept = local.replica.query(user(), canister, "get", &[]).unwrap();
        (
            status.module_hash,
            status.version,
            status.memory_metrics.stable_memory_size,
            kept,
        )
    };
    let before = observe(&mut local);
    assert_eq!(before.3, [42, 7]);

    let upgrade = ic::CanisterInstallMode::Upgrade(None);
    let failed = local
        .install(canister, wat(FAILS_AFTER_UPGRADE), upgrade)
        .unwrap_err();
    assert_eq!(failed.error_code, Some(ErrorCode::CanisterCalledTrap));
    assert_eq!(
        failed.message,
        format!(
            "Error from Canister {canister}: Canister called `ic0.trap` with message: 'post_upgrade fails'."
        )
    );
    assert_eq!(
        observe(&mut local),
        before,
        "module, version and memories as they were"
    );

    local
        .replica
        .update(user(), canister, "refuse_upgrades", &[])
        .unwrap();
    let before = observe(&mut local);
    let refused = local
        .install(canister, wat("(module (memory 1))"), upgrade)
        .unwrap_err();
    assert_eq!(refused.error_code, Some(ErrorCode::CanisterCalledTrap));
    assert!(
        refused.message.contains("'pre_upgrade refuses'"),
        "{}",
        refused.message
    );
    assert_eq!(observe(&mut local), before);
}

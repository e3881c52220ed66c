//! Snapshot rules as on the IC: contents restored byte for byte, id format, the limit of 10,
//! `replace_snapshot`, permissions, version and lifetime.

use crate::common::{Local, stranger, user, wat};
use ic_management_canister_types as ic;
use replica::{ErrorCode, Principal};

const COUNTER: &str = include_str!("common/counter.wat");

fn inc(local: &mut Local, canister: Principal) -> Vec<u8> {
    local.replica.update(user(), canister, "inc", &[]).unwrap()
}

fn read(local: &mut Local, canister: Principal) -> Vec<u8> {
    local.replica.query(user(), canister, "read", &[]).unwrap()
}

#[test]
fn load_restores_heap_globals_and_stable_memory_exactly() {
    let mut local = Local::new();
    let counter = local.deploy(wat(COUNTER));
    for _ in 0..3 {
        inc(&mut local, counter);
    }
    let at_snapshot = read(&mut local, counter);
    let snapshot = local.take_snapshot(counter, None).unwrap();
    inc(&mut local, counter);
    inc(&mut local, counter);
    assert_ne!(read(&mut local, counter), at_snapshot);
    let version = local.status(counter).version;
    local.load_snapshot(counter, snapshot.id).unwrap();
    assert_eq!(read(&mut local, counter), at_snapshot);
    assert_eq!(
        local.status(counter).version,
        version + 1,
        "load bumps the canister version"
    );
    // and after a restart too
    let mut local = local.reopen();
    assert_eq!(read(&mut local, counter), at_snapshot);
}

#[test]
fn ids_count_up_per_canister_and_are_never_reused() {
    let mut local = Local::new();
    let counter = local.deploy(wat(COUNTER));
    let first = local.take_snapshot(counter, None).unwrap();
    let args = ic::DeleteCanisterSnapshotArgs {
        canister_id: counter,
        snapshot_id: first.id.clone(),
    };
    local
        .management::<()>(user(), "delete_canister_snapshot", args)
        .unwrap();
    let second = local.take_snapshot(counter, None).unwrap();
    assert_eq!(&first.id[..8], &0u64.to_be_bytes());
    assert_eq!(&second.id[..8], &1u64.to_be_bytes());
    assert_eq!(&second.id[8..], counter.as_slice());
}

#[test]
fn the_eleventh_snapshot_is_refused_and_replace_snapshot_makes_room() {
    let mut local = Local::new();
    let counter = local.deploy(wat(COUNTER));
    let ids: Vec<_> = (0..10)
        .map(|_| local.take_snapshot(counter, None).unwrap().id)
        .collect();
    let reject = local.take_snapshot(counter, None).unwrap_err();
    assert_eq!(reject.error_code, Some(ErrorCode::CanisterRejectedMessage));
    assert_eq!(
        reject.message,
        format!("Canister {counter} has reached the maximum number of snapshots allowed: 10.")
    );
    inc(&mut local, counter);
    let replacement = local.take_snapshot(counter, Some(ids[3].clone())).unwrap();
    assert_eq!(
        &replacement.id[..8],
        &10u64.to_be_bytes(),
        "the replacement gets a new id"
    );
    let listed: Vec<_> = local
        .list_snapshots(counter)
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed.len(), 10);
    assert!(!listed.contains(&ids[3]) && listed.contains(&replacement.id));
}

#[test]
fn unknown_and_foreign_snapshot_ids_are_refused() {
    let mut local = Local::new();
    let a = local.deploy(wat(COUNTER));
    let b = local.deploy(wat(COUNTER));
    let of_b = local.take_snapshot(b, None).unwrap();
    let mut unknown = of_b.id.clone();
    unknown[7] = 9;
    let reject = local.load_snapshot(b, unknown).unwrap_err();
    assert_eq!(reject.error_code, Some(ErrorCode::CanisterSnapshotNotFound));
    assert_eq!(
        reject.message,
        format!("Could not find the snapshot ID {b}-9 for canister {b}.")
    );
    let args = ic::DeleteCanisterSnapshotArgs {
        canister_id: a,
        snapshot_id: of_b.id.clone(),
    };
    let reject = local
        .management::<()>(user(), "delete_canister_snapshot", args)
        .unwrap_err();
    assert_eq!(
        reject.message,
        format!("The snapshot {b}-0 does not belong to canister {a}.")
    );
}

#[test]
fn an_empty_canister_has_nothing_to_snapshot() {
    let mut local = Local::new();
    let empty = local.create();
    let reject = local.take_snapshot(empty, None).unwrap_err();
    assert_eq!(reject.error_code, Some(ErrorCode::CanisterRejectedMessage));
    assert!(
        reject
            .message
            .starts_with("Failed to create snapshot for empty canister")
    );
}

#[test]
fn only_controllers_may_manage_a_canister() {
    let mut local = Local::new();
    let counter = local.deploy(wat(COUNTER));
    let record = ic::CanisterIdRecord {
        canister_id: counter,
    };
    for method in [
        "stop_canister",
        "list_canister_snapshots",
        "canister_status",
    ] {
        let reject = local
            .management::<()>(stranger(), method, record.clone())
            .unwrap_err();
        assert_eq!(
            reject.error_code,
            Some(ErrorCode::CanisterInvalidController),
            "{method}"
        );
    }
    let args = ic::TakeCanisterSnapshotArgs {
        canister_id: counter,
        replace_snapshot: None,
        uninstall_code: None,
        sender_canister_version: None,
    };
    let reject = local
        .management::<ic::Snapshot>(stranger(), "take_canister_snapshot", args)
        .unwrap_err();
    assert_eq!(
        reject.error_code,
        Some(ErrorCode::CanisterInvalidController)
    );
    assert!(local.list_snapshots(counter).is_empty());
}

#[test]
fn snapshots_survive_upgrade_and_uninstall_and_count_in_status() {
    let mut local = Local::new();
    let counter = local.deploy(wat(COUNTER));
    inc(&mut local, counter);
    let snapshot = local.take_snapshot(counter, None).unwrap();
    let status = local.status(counter);
    assert_eq!(
        status.memory_metrics.snapshots_size,
        candid::Nat::from(snapshot.total_size)
    );
    local
        .install(
            counter,
            wat(COUNTER),
            ic::CanisterInstallMode::Upgrade(None),
        )
        .unwrap();
    let args = ic::UninstallCodeArgs {
        canister_id: counter,
        sender_canister_version: None,
    };
    local
        .management::<()>(user(), "uninstall_code", args)
        .unwrap();
    assert_eq!(local.list_snapshots(counter).len(), 1);
    local.load_snapshot(counter, snapshot.id).unwrap();
    assert_eq!(&read(&mut local, counter)[..4], &1u32.to_le_bytes());
}

#[test]
fn malformed_arguments_change_nothing() {
    let mut local = Local::new();
    let counter = local.deploy(wat(COUNTER));
    let reject = local
        .replica
        .update(
            user(),
            Principal::management_canister(),
            "take_canister_snapshot",
            b"not candid",
        )
        .unwrap_err();
    assert_eq!(reject.error_code, Some(ErrorCode::InvalidManagementPayload));
    assert!(local.list_snapshots(counter).is_empty());
}

#[test]
fn load_brings_back_the_module_of_the_snapshot() {
    let mut local = Local::new();
    let counter = local.deploy(wat(COUNTER));
    inc(&mut local, counter);
    let snapshot = local.take_snapshot(counter, None).unwrap();
    let other = wat(r#"(module (memory 1) (func (export "canister_update other")))"#);
    local
        .install(counter, other, ic::CanisterInstallMode::Upgrade(None))
        .unwrap();
    let reject = local
        .replica
        .query(user(), counter, "read", &[])
        .unwrap_err();
    assert_eq!(reject.error_code, Some(ErrorCode::CanisterMethodNotFound));
    local.load_snapshot(counter, snapshot.id).unwrap();
    assert_eq!(&read(&mut local, counter)[..4], &1u32.to_le_bytes());
}

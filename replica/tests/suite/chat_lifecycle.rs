//! The seed's lifecycle on the real chat canister: populate, snapshot, lose the chat to the
//! deliberate bug, restore, and find it again — also across a restart of the replica.

use crate::common::{Local, chat_wasm};
use replica::ErrorCode;

#[test]
fn snapshot_restores_the_chat_that_remove_spam_lost() {
    let mut local = Local::new();
    let chat = local.deploy(chat_wasm());

    local.update::<()>(chat, "append", ("Hi there!",)).unwrap();
    let before: Vec<String> = local.query(chat, "dump", ()).unwrap();
    assert_eq!(before, ["Hi there!"]);

    local.stop(chat);
    let snapshot = local.take_snapshot(chat, None).unwrap();
    assert_eq!(snapshot.id.len(), 18);
    assert_eq!(
        &snapshot.id[..8],
        &[0; 8],
        "the first snapshot has local id 0"
    );
    assert_eq!(&snapshot.id[8..], chat.as_slice());
    local.start(chat);

    let removed: u64 = local.update(chat, "remove_spam", ()).unwrap();
    assert_eq!(removed, 0);
    let lost: Vec<String> = local.query(chat, "dump", ()).unwrap();
    assert!(lost.is_empty(), "the deliberate bug empties the chat");

    local.stop(chat);
    let listed = local.list_snapshots(chat);
    assert_eq!(listed, std::slice::from_ref(&snapshot));
    local.load_snapshot(chat, snapshot.id.clone()).unwrap();
    local.start(chat);
    let after: Vec<String> = local.query(chat, "dump", ()).unwrap();
    assert_eq!(after, before);

    // Everything, snapshots included, survives a restart.
    let mut local = local.reopen();
    let again: Vec<String> = local.query(chat, "dump", ()).unwrap();
    assert_eq!(again, before);
    assert_eq!(local.list_snapshots(chat), [snapshot]);
}

#[test]
fn a_stopped_canister_rejects_calls() {
    let mut local = Local::new();
    let chat = local.deploy(chat_wasm());
    local.stop(chat);
    let reject = local.update::<()>(chat, "append", ("hello",)).unwrap_err();
    assert_eq!(reject.error_code, Some(ErrorCode::CanisterStopped));
    assert!(reject.message.contains("is stopped"), "{reject}");
    local.start(chat);
    local.update::<()>(chat, "append", ("hello",)).unwrap();
}

#[test]
fn a_trap_rolls_back_and_rejects_with_the_trap_text() {
    let mut local = Local::new();
    let chat = local.deploy(chat_wasm());
    local.update::<()>(chat, "append", ("kept",)).unwrap();
    let reject = local.update::<()>(chat, "append", ("",)).unwrap_err();
    assert_eq!(reject.error_code, Some(ErrorCode::CanisterCalledTrap));
    assert_eq!(reject.code as u8, 5);
    assert!(reject.message.contains("the message is empty"), "{reject}");
    let dump: Vec<String> = local.query(chat, "dump", ()).unwrap();
    assert_eq!(dump, ["kept"]);
}

#[test]
fn upgrade_keeps_stable_memory() {
    let mut local = Local::new();
    let chat = local.deploy(chat_wasm());
    local.update::<()>(chat, "append", ("survives",)).unwrap();
    let upgrade = ic_management_canister_types::CanisterInstallMode::Upgrade(None);
    local.install(chat, chat_wasm(), upgrade).unwrap();
    let dump: Vec<String> = local.query(chat, "dump", ()).unwrap();
    assert_eq!(dump, ["survives"]);
    let len: u64 = local.query(chat, "len", ()).unwrap();
    assert_eq!(len, 1);
}

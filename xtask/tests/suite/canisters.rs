//! Any canister, not only the chat: `--canister NAME|ID` on the embedded backend, with the
//! relay (a canister of its own state and interface) deployed beside the chat.

use candid::{Decode, Encode, Principal};
use replica::Replica;

use crate::common::User;

fn relay_wasm() -> String {
    let target = project_tools::target_dir_of_tests(env!("CARGO_TARGET_TMPDIR"));
    let path = project_tools::canister_wasm(&target, "relay").unwrap_or_else(|e| panic!("{e}"));
    path.display().to_string()
}

/// The relay's counter, read and bumped on the embedded replica between commands.
fn counter(user: &User, relay: Principal, bumps: u32) -> u64 {
    let mut replica = Replica::open(&user.state.path().join("embedded")).unwrap();
    for _ in 0..bumps {
        replica
            .update(Principal::anonymous(), relay, "count", &Encode!().unwrap())
            .unwrap();
    }
    let reply = replica
        .query(
            Principal::anonymous(),
            relay,
            "counter",
            &Encode!().unwrap(),
        )
        .unwrap();
    Decode!(&reply, u64).unwrap()
}

fn replica_hex(id: Principal) -> String {
    id.as_slice().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_canister_of_its_own_is_snapshot_and_restored_by_name_and_by_id() {
    let user = User::new();
    user.ok(&["start"]);
    user.ok(&["deploy"]);
    let wasm = relay_wasm();
    let deployed = user.json(&["deploy", "--canister", "relay", "--wasm", &wasm]);
    let id = deployed["canister"].as_str().unwrap().to_owned();
    let relay = Principal::from_text(&id).unwrap();
    assert_eq!(counter(&user, relay, 2), 2);

    let taken = user.json(&["snapshot", "--canister", "relay"]);
    assert!(taken["messages"].is_null(), "no chat to record: {taken}");
    let snapshot = taken["snapshot_id"].as_str().unwrap().to_owned();
    assert!(
        snapshot.ends_with(&replica_hex(relay)),
        "a snapshot id names its canister: {snapshot}"
    );
    assert_eq!(counter(&user, relay, 3), 5);

    let restored = user.json(&["restore", "--canister", &id]);
    assert_eq!(restored["snapshot_id"], snapshot.as_str());
    assert_eq!(
        counter(&user, relay, 0),
        2,
        "the restore brings the count back"
    );

    let listed = user.json(&["list", "--canister", "relay"]);
    assert_eq!(listed["snapshots"].as_array().unwrap().len(), 1);
    let chats = user.json(&["list"]);
    assert_eq!(
        chats["snapshots"].as_array().unwrap().len(),
        0,
        "the chat's snapshots are its own"
    );
    let status = user.json(&["status", "--canister", "relay"]);
    assert_eq!(status["canister"], id.as_str());
    assert_eq!(status["status"], "running");
    let chat = user.json(&["status"]);
    assert_ne!(chat["canister"], id.as_str());
    assert_ne!(chat["module_hash"], status["module_hash"]);
}

#[test]
fn what_only_the_chat_has_and_bad_names_are_refused_clearly() {
    let user = User::new();
    user.ok(&["start"]);
    let wasm = relay_wasm();
    user.ok(&["deploy", "--canister", "relay", "--wasm", &wasm]);
    let error = user.fails(1, &["verify", "--canister", "relay"]);
    assert!(error.contains("relay is not the chat"), "{error}");
    let error = user.fails(1, &["deploy", "--canister", "other"]);
    assert!(
        error.contains("cargo xtask deploy --canister other --wasm FILE"),
        "{error}"
    );
    let error = user.fails(1, &["snapshot", "--canister", "missing"]);
    assert!(
        error.contains("no canister `missing` on the embedded replica yet"),
        "{error}"
    );
    let error = user.fails(2, &["list", "--canister", "a b"]);
    assert!(error.contains("neither a canister name"), "{error}");
    let stranger = "aaaaa-aa";
    let error = user.fails(1, &["deploy", "--canister", stranger, "--wasm", &wasm]);
    assert!(error.contains("deploy by name"), "{error}");
}

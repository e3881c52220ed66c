//! The `pocket-ic` crate 16.1.0, as a canister developer uses it, against this replica as
//! its PocketIC server (`with_server_binary` = the `replica` binary, which the crate runs
//! with `--version` first, then `--port-file`): the chat's lifecycle with snapshots, time
//! and ticks, the IC's rejects, several instances on one server, and an instance's state
//! kept across instances.

use std::time::Duration;

use candid::{Decode, Encode, Principal};
use pocket_ic::{ErrorCode, PocketIc, PocketIcBuilder, RejectCode};

use crate::common::{chat_wasm, relay_wasm, user};

fn builder() -> PocketIcBuilder {
    PocketIcBuilder::new()
        .with_server_binary(env!("CARGO_BIN_EXE_replica").into())
        .with_application_subnet()
}

fn deploy(pic: &PocketIc, wasm: Vec<u8>) -> Principal {
    let canister = pic.create_canister_with_settings(Some(user()), None);
    pic.install_canister(canister, wasm, Encode!().unwrap(), Some(user()));
    canister
}

fn append(pic: &PocketIc, chat: Principal, text: &str) {
    let reply = pic
        .update_call(chat, user(), "append", Encode!(&text).unwrap())
        .unwrap();
    Decode!(&reply, ()).unwrap();
}

fn dump(pic: &PocketIc, chat: Principal) -> Vec<String> {
    let reply = pic
        .query_call(chat, user(), "dump", Encode!().unwrap())
        .unwrap();
    Decode!(&reply, Vec<String>).unwrap()
}

#[test]
fn the_chat_lifecycle_runs_with_snapshots_taken_listed_loaded_and_deleted() {
    let pic = builder().build();
    let chat = deploy(&pic, chat_wasm());
    assert_eq!(pic.get_controllers(chat), [user()]);
    assert!(pic.canister_exists(chat));
    append(&pic, chat, "Hi there!");
    append(&pic, chat, "How are you?");
    let before = dump(&pic, chat);
    assert_eq!(before, ["Hi there!", "How are you?"]);

    pic.stop_canister(chat, Some(user())).unwrap();
    let snapshot = pic
        .take_canister_snapshot(chat, Some(user()), None)
        .unwrap();
    assert_eq!(&snapshot.id[8..], chat.as_slice());
    pic.start_canister(chat, Some(user())).unwrap();

    let reply = pic
        .update_call(chat, user(), "remove_spam", Encode!().unwrap())
        .unwrap();
    Decode!(&reply, u64).unwrap();
    assert!(
        dump(&pic, chat).is_empty(),
        "the deliberate bug empties the chat"
    );

    pic.stop_canister(chat, Some(user())).unwrap();
    let listed = pic.list_canister_snapshots(chat, Some(user())).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, snapshot.id);
    pic.load_canister_snapshot(chat, Some(user()), snapshot.id.clone())
        .unwrap();
    pic.start_canister(chat, Some(user())).unwrap();
    assert_eq!(dump(&pic, chat), before);

    // An upgrade keeps the chat (it is in stable memory across upgrades).
    pic.upgrade_canister(chat, chat_wasm(), Encode!().unwrap(), Some(user()))
        .unwrap();
    assert_eq!(dump(&pic, chat), before);

    pic.delete_canister_snapshot(chat, Some(user()), snapshot.id)
        .unwrap();
    assert!(
        pic.list_canister_snapshots(chat, Some(user()))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_snapshot_downloaded_in_dfxs_layout_uploads_to_another_instance() {
    let pic = builder().build();
    let chat = deploy(&pic, chat_wasm());
    append(&pic, chat, "carried over");
    pic.stop_canister(chat, Some(user())).unwrap();
    let snapshot = pic
        .take_canister_snapshot(chat, Some(user()), None)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let download = dir.path().join("snapshot");
    pic.canister_snapshot_download(chat, user(), snapshot.id, download.clone());
    let metadata: serde_json::Value =
        serde_json::from_slice(&std::fs::read(download.join("metadata.json")).unwrap()).unwrap();
    let module = std::fs::read(download.join("wasm_module.bin")).unwrap();
    assert_eq!(module, chat_wasm());
    assert_eq!(metadata["wasm_module_size"], module.len());
    assert_eq!(
        metadata["stable_memory_size"],
        std::fs::metadata(download.join("stable_memory.bin"))
            .unwrap()
            .len()
    );

    let other = builder().build();
    let copy = deploy(&other, chat_wasm());
    other.stop_canister(copy, Some(user())).unwrap();
    let uploaded = other.canister_snapshot_upload(copy, user(), None, download);
    other
        .load_canister_snapshot(copy, Some(user()), uploaded)
        .unwrap();
    other.start_canister(copy, Some(user())).unwrap();
    assert_eq!(dump(&other, copy), ["carried over"]);
}

#[test]
fn stable_memory_copied_into_another_chat_carries_its_messages_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let pic = builder().with_state_dir(dir.path().to_path_buf()).build();
    let chat = deploy(&pic, chat_wasm());
    append(&pic, chat, "in stable memory");
    let stable = pic.get_stable_memory(chat);
    assert_eq!(stable.len() % 65536, 0, "whole pages");
    let copy = deploy(&pic, chat_wasm());
    assert!(dump(&pic, copy).is_empty());
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gzip, &stable).unwrap();
    pic.set_stable_memory(
        copy,
        gzip.finish().unwrap(),
        pocket_ic::common::rest::BlobCompression::Gzip,
    );
    assert_eq!(pic.get_stable_memory(copy), stable);
    // The chat reads its log from stable memory at each call, so the copy has the message.
    assert_eq!(dump(&pic, copy), ["in stable memory"]);
    drop(pic);
    // It is journaled with the state: the next instance on the directory has it.
    let pic = builder().with_state_dir(dir.path().to_path_buf()).build();
    assert_eq!(dump(&pic, copy), ["in stable memory"]);
    let no_code = pic.create_canister_with_settings(Some(user()), None);
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pic.set_stable_memory(
            no_code,
            vec![1],
            pocket_ic::common::rest::BlobCompression::NoCompression,
        )
    }));
    assert!(
        refused.is_err(),
        "a canister without code has no stable memory to set"
    );
}

#[test]
fn a_canister_is_created_with_the_id_asked_for_once() {
    let pic = builder().build();
    let asked = replica::ids::canister_id(1);
    let made = pic
        .create_canister_with_id(Some(user()), None, asked)
        .unwrap();
    assert_eq!(made, asked);
    let again = pic
        .create_canister_with_id(Some(user()), None, asked)
        .unwrap_err();
    assert!(again.contains("CanisterIdAlreadyExists"), "{again}");
    assert!(
        again.contains(&format!("Canister {asked} is already installed.")),
        "{again}"
    );
    // The ids handed out in sequence pass over the one taken.
    let first = pic.create_canister_with_settings(Some(user()), None);
    let second = pic.create_canister_with_settings(Some(user()), None);
    assert_eq!(
        [first, second],
        [replica::ids::canister_id(0), replica::ids::canister_id(2)]
    );
}

#[test]
fn management_calls_from_someone_else_get_the_ics_reject() {
    let pic = builder().build();
    let chat = deploy(&pic, chat_wasm());
    let stranger = Principal::self_authenticating(b"stranger");
    let reject = pic.stop_canister(chat, Some(stranger)).unwrap_err();
    assert_eq!(reject.reject_code, RejectCode::CanisterError);
    assert_eq!(reject.error_code, ErrorCode::CanisterInvalidController);
    assert!(
        reject
            .reject_message
            .contains("Only controllers of canister"),
        "{}",
        reject.reject_message
    );

    let reject = pic
        .update_call(chat, user(), "no_such_method", Encode!().unwrap())
        .unwrap_err();
    assert_eq!(reject.error_code, ErrorCode::CanisterMethodNotFound);
    let reject = pic
        .query_call(chat, user(), "append", Encode!(&"x").unwrap())
        .unwrap_err();
    assert_eq!(reject.reject_code, RejectCode::CanisterError);
    assert!(!reject.certified, "a query's reject is not certified");
}

#[test]
fn cycles_are_added_and_read_back() {
    let pic = builder().build();
    let chat = deploy(&pic, chat_wasm());
    let before = pic.cycle_balance(chat);
    let after = pic.add_cycles(chat, 5_000_000_000_000);
    assert!(
        after >= before + 5_000_000_000_000 - 1_000_000_000,
        "{before} → {after}"
    );
    assert_eq!(pic.cycle_balance(chat), after);
}

#[test]
fn time_stands_still_until_set_and_timers_fire_when_it_passes() {
    let pic = builder().build();
    let relay = deploy(&pic, relay_wasm());
    let start = pic.get_time();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(pic.get_time(), start, "no auto progress: time stands still");
    pic.advance_time(Duration::from_secs(10));
    assert_eq!(
        pic.get_time().as_nanos_since_unix_epoch(),
        start.as_nanos_since_unix_epoch() + 10_000_000_000
    );

    pic.update_call(relay, user(), "set_timer", Encode!(&60u64).unwrap())
        .unwrap();
    let fired = || {
        let reply = pic
            .query_call(relay, user(), "timers_fired", Encode!().unwrap())
            .unwrap();
        Decode!(&reply, u64).unwrap()
    };
    pic.tick();
    assert_eq!(fired(), 0, "60 s have not passed");
    pic.advance_time(Duration::from_secs(61));
    pic.tick();
    pic.tick();
    assert_eq!(fired(), 1, "the timer fired once the time passed");
}

#[test]
fn a_submitted_call_runs_at_the_next_round_and_answers_only_its_sender() {
    let pic = builder().build();
    let chat = deploy(&pic, chat_wasm());
    let message = pic
        .submit_call(chat, user(), "append", Encode!(&"held").unwrap())
        .unwrap();
    assert!(
        pic.ingress_status(message.clone()).is_none(),
        "held until a round"
    );
    assert!(dump(&pic, chat).is_empty());
    pic.tick();
    let answer = pic.ingress_status(message.clone()).expect("answered");
    Decode!(&answer.unwrap(), ()).unwrap();
    assert_eq!(dump(&pic, chat), ["held"]);
    let stranger = Principal::self_authenticating(b"stranger");
    assert!(matches!(
        pic.ingress_status_as(message.clone(), stranger),
        pocket_ic::IngressStatusResult::Forbidden(_)
    ));
    Decode!(&pic.await_call(message).unwrap(), ()).unwrap();

    let reject = pic
        .update_call(
            Principal::management_canister(),
            user(),
            "no_such_method",
            vec![],
        )
        .unwrap_err();
    assert_eq!(reject.error_code, ErrorCode::CanisterMethodNotFound);
    assert_eq!(
        reject.reject_message,
        "Management canister has no method 'no_such_method'"
    );
}

#[test]
fn two_instances_on_one_server_share_nothing() {
    let one = builder().build();
    let two = builder().build();
    assert_eq!(one.get_server_url(), two.get_server_url(), "one server");
    assert_ne!(one.instance_id(), two.instance_id());
    let chat = deploy(&one, chat_wasm());
    append(&one, chat, "only here");
    assert!(one.canister_exists(chat));
    assert!(
        !two.canister_exists(chat),
        "the other instance has no canisters"
    );
    let other = deploy(&two, chat_wasm());
    assert_eq!(other, chat, "each instance hands out ids from the start");
    assert!(dump(&two, other).is_empty());
    assert_eq!(dump(&one, chat), ["only here"]);
}

#[test]
fn an_instance_state_dir_keeps_its_canisters_for_the_next_instance() {
    let dir = tempfile::tempdir().unwrap();
    let pic = builder().with_state_dir(dir.path().to_path_buf()).build();
    let chat = deploy(&pic, chat_wasm());
    append(&pic, chat, "kept");
    drop(pic);
    let pic = builder().with_state_dir(dir.path().to_path_buf()).build();
    assert_eq!(dump(&pic, chat), ["kept"]);
}

#[test]
fn the_instance_api_serves_ic_agent_with_auto_progress() {
    let mut pic = builder().build();
    let chat = deploy(&pic, chat_wasm());
    let url = pic.make_live(None);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let agent = ic_agent::Agent::builder()
            .with_url(url.as_str())
            .build()
            .unwrap();
        agent.fetch_root_key().await.unwrap();
        agent
            .update(&chat, "append")
            .with_arg(Encode!(&"through the gateway").unwrap())
            .call_and_wait()
            .await
            .unwrap();
        let reply = agent
            .query(&chat, "dump")
            .with_arg(Encode!().unwrap())
            .call()
            .await
            .unwrap();
        assert_eq!(
            Decode!(&reply, Vec<String>).unwrap(),
            ["through the gateway"]
        );
    });
    pic.stop_live();
}

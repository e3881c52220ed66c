//! The journal: calls acknowledged since the last checkpoint survive the process dying (it
//! aborts here, so no destructor runs and no checkpoint is written), and replaying them on
//! open gives the same state — messages, trapped calls' logs, versions and timers alike.

use std::process::Command;

use crate::common::relay::{Forwarded, Outcome};
use crate::common::{Local, chat_wasm, user};
use candid::{Decode, Encode};
use ic_management_canister_types as ic;

/// Set in the child process, naming the state directory it works in.
const CHILD: &str = "JOURNAL_TEST_STATE";

/// Runs `test` of this file in a child process on `dir`; the child ends by aborting.
fn in_child(test: &str, dir: &std::path::Path) {
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &format!("journal::{test}"),
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD, dir)
        .status()
        .unwrap();
    assert!(!status.success(), "the child was to abort, not to finish");
}

fn child_dir() -> Option<std::path::PathBuf> {
    std::env::var_os(CHILD).map(Into::into)
}

#[test]
fn acknowledged_calls_survive_an_abort_and_replay_to_the_same_state() {
    const TEST: &str = "acknowledged_calls_survive_an_abort_and_replay_to_the_same_state";
    if let Some(dir) = child_dir() {
        let mut replica = replica::Replica::open(&dir).unwrap();
        let chat = replica.canister_ids()[0];
        for n in 0..250 {
            let arg = Encode!(&format!("message {n}")).unwrap();
            replica.update(user(), chat, "append", &arg).unwrap();
        }
        // An empty message traps: it changes nothing but the canister's log.
        let empty = Encode!(&"").unwrap();
        assert!(replica.update(user(), chat, "append", &empty).is_err());
        std::process::abort();
    }
    let mut local = Local::new();
    let chat = local.deploy(chat_wasm());
    drop(local.replica);
    in_child(TEST, local.dir.path());

    let mut local = Local {
        replica: replica::Replica::open(local.dir.path()).unwrap(),
        dir: local.dir,
    };
    let messages: Vec<String> = local.query(chat, "dump", ()).unwrap();
    assert_eq!(messages.len(), 250);
    assert_eq!(messages[249], "message 249");
    let logs: ic::FetchCanisterLogsResult = local
        .management(
            user(),
            "fetch_canister_logs",
            ic::FetchCanisterLogsArgs {
                canister_id: chat,
                filter: None,
            },
        )
        .unwrap();
    assert!(
        logs.canister_log_records
            .iter()
            .any(|r| String::from_utf8_lossy(&r.content).contains("[TRAP]")),
        "the trapped call's log line is replayed too"
    );
    // The replayed state was checkpointed: opening again replays nothing and agrees.
    let mut local = local.reopen();
    let again: Vec<String> = local.query(chat, "dump", ()).unwrap();
    assert_eq!(again, messages);
    let (): () = local.update(chat, "append", ("after",)).unwrap();
    let len: u64 = local.query(chat, "len", ()).unwrap();
    assert_eq!(len, 251);
}

#[test]
fn a_snapshot_taken_after_journaled_calls_holds_them() {
    let mut local = Local::new();
    let chat = local.deploy(chat_wasm());
    for n in 0..10 {
        let _: () = local.update(chat, "append", (format!("m{n}"),)).unwrap();
    }
    local.stop(chat);
    let snapshot = local.take_snapshot(chat, None).unwrap();
    local.start(chat);
    let _: u64 = local.update(chat, "remove_spam", ()).unwrap();
    local.stop(chat);
    local.load_snapshot(chat, snapshot.id).unwrap();
    local.start(chat);
    let messages: Vec<String> = local.query(chat, "dump", ()).unwrap();
    assert_eq!(messages.len(), 10);
}

/// What the state shows without running anything: each relay's count, version and cycles
/// (by query), and the cycles burned.
fn observe(replica: &mut replica::Replica, relays: &[candid::Principal]) -> String {
    let mut seen = Vec::new();
    for relay in relays {
        let count = replica
            .query(user(), *relay, "counter", &Encode!().unwrap())
            .unwrap();
        let id = Encode!(&ic::CanisterIdRecord {
            canister_id: *relay
        })
        .unwrap();
        let status = replica
            .query(
                user(),
                candid::Principal::management_canister(),
                "canister_status",
                &id,
            )
            .unwrap();
        let status = Decode!(&status, ic::CanisterStatusResult).unwrap();
        let count = Decode!(&count, u64).unwrap();
        seen.push(format!(
            "{relay}: count {count}, version {}, cycles {}",
            status.version, status.cycles
        ));
    }
    seen.push(format!("burned {}", replica.burned_cycles()));
    seen.join("\n")
}

/// When `canister`'s snapshots were taken, as its controller `by` lists them: by a call
/// from a canister, since a user's call to the management canister checkpoints first.
fn snapshot_times(
    replica: &mut replica::Replica,
    by: candid::Principal,
    canister: candid::Principal,
) -> Vec<u64> {
    let id = Encode!(&ic::CanisterIdRecord {
        canister_id: canister
    })
    .unwrap();
    let management = candid::Principal::management_canister();
    let arg = Encode!(&management, &"list_canister_snapshots", &id, &0u128).unwrap();
    let forwarded = replica.update(user(), by, "forward", &arg).unwrap();
    let Outcome::Reply(listed) = Decode!(&forwarded, Forwarded).unwrap().outcome else {
        panic!("the controller lists the snapshots")
    };
    let snapshots = Decode!(&listed, Vec<ic::Snapshot>).unwrap();
    snapshots.iter().map(|s| s.taken_at_timestamp).collect()
}

#[test]
fn calls_between_canisters_and_calls_in_flight_survive_an_abort() {
    const TEST: &str = "calls_between_canisters_and_calls_in_flight_survive_an_abort";
    if let Some(dir) = child_dir() {
        let mut replica = replica::Replica::open(&dir).unwrap();
        let relays = replica.canister_ids();
        let [a, b, c] = relays[..] else {
            panic!("three relays")
        };
        let forward = |target: candid::Principal, method: &str, arg: Vec<u8>, cycles: u128| {
            Encode!(&target, &method, &arg, &cycles).unwrap()
        };
        for _ in 0..20 {
            let arg = forward(b, "count", Encode!().unwrap(), 1_000);
            replica.update(user(), a, "forward", &arg).unwrap();
        }
        let arg = Encode!(&vec![b, c], &"go").unwrap();
        replica.update(user(), a, "chain", &arg).unwrap();
        replica
            .update(user(), b, "random", &Encode!().unwrap())
            .unwrap();
        // A controller canister's snapshot: replayed, it is taken at the same time.
        replica
            .update(user(), a, "backup", &Encode!(&c).unwrap())
            .unwrap();
        let taken = format!("{:?}", snapshot_times(&mut replica, a, c));
        std::fs::write(dir.join("taken"), taken).unwrap();
        // Left in flight: c calls itself 20,000 times, over several rounds.
        let long = forward(c, "count_by_self_calls", Encode!(&20_000u32).unwrap(), 0);
        replica.submit(user(), b, "forward", &long).unwrap();
        std::fs::write(dir.join("observed"), observe(&mut replica, &relays)).unwrap();
        std::process::abort();
    }
    let mut local = Local::new();
    let relays: Vec<_> = (0..3)
        .map(|_| local.deploy(crate::common::relay_wasm()))
        .collect();
    local.update_settings(
        relays[2],
        ic::CanisterSettings {
            controllers: Some(vec![user(), relays[0]]),
            ..Default::default()
        },
    );
    drop(local.replica);
    in_child(TEST, local.dir.path());

    let mut replica = replica::Replica::open(local.dir.path()).unwrap();
    let observed = std::fs::read_to_string(local.dir.path().join("observed")).unwrap();
    assert_eq!(
        observe(&mut replica, &relays),
        observed,
        "the replay differs"
    );
    // The call in flight goes on where it was, to the end.
    let counter = |replica: &mut replica::Replica| {
        let count = replica
            .query(user(), relays[2], "counter", &Encode!().unwrap())
            .unwrap();
        Decode!(&count, u64).unwrap()
    };
    assert!(counter(&mut replica) < 20_000);
    while counter(&mut replica) < 20_000 {
        replica.tick().unwrap();
    }
    assert_eq!(counter(&mut replica), 20_000);
    let taken = std::fs::read_to_string(local.dir.path().join("taken")).unwrap();
    assert_eq!(
        format!("{:?}", snapshot_times(&mut replica, relays[0], relays[2])),
        taken,
        "a snapshot taken by a canister is taken at another time on replay"
    );
}

/// Keeps `subnet_self` in its heap when told to, and answers what it kept.
const SUBNET_KEEPER: &str = r#"(module
  (import "ic0" "subnet_self_size" (func $size (result i32)))
  (import "ic0" "subnet_self_copy" (func $copy (param i32 i32 i32)))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (memory 1)
  (global $kept (mut i32) (i32.const 0))
  (func (export "canister_update keep")
    (call $copy (i32.const 0) (i32.const 0) (call $size))
    (global.set $kept (call $size))
    (call $reply))
  (func (export "canister_query kept")
    (call $append (i32.const 0) (global.get $kept))
    (call $reply)))"#;

#[test]
fn subnet_self_is_the_served_subnets_id_in_process_and_while_the_journal_replays() {
    const TEST: &str =
        "subnet_self_is_the_served_subnets_id_in_process_and_while_the_journal_replays";
    if let Some(dir) = child_dir() {
        let mut replica = replica::Replica::open(&dir).unwrap();
        let keeper = replica.canister_ids()[0];
        replica.update(user(), keeper, "keep", &[]).unwrap();
        std::process::abort();
    }
    let mut local = Local::new();
    let keeper = local.deploy(crate::common::wat(SUBNET_KEEPER));
    let served = local.replica.keys().unwrap().subnet_id;
    assert_eq!(
        local.replica.subnet_id(),
        served,
        "fixed when the state is made"
    );
    drop(local.replica);
    in_child(TEST, local.dir.path());

    // The reopened replica replays `keep`, which must see the same subnet as it did.
    let mut replica = replica::Replica::open(local.dir.path()).unwrap();
    let kept = replica.query(user(), keeper, "kept", &[]).unwrap();
    assert_eq!(candid::Principal::from_slice(&kept), served);
    assert_ne!(served, candid::Principal::management_canister());
}

/// Grows stable memory by the pages its argument names (a u64) and keeps each grow's
/// result; answers them all.
const GROWER: &str = r#"(module
  (import "ic0" "stable64_grow" (func $grow (param i64) (result i64)))
  (import "ic0" "msg_arg_data_copy" (func $arg (param i32 i32 i32)))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (memory 1)
  (global $kept (mut i32) (i32.const 8))
  (func (export "canister_update grow")
    (call $arg (i32.const 0) (i32.const 0) (i32.const 8))
    (i64.store (global.get $kept) (call $grow (i64.load (i32.const 0))))
    (global.set $kept (i32.add (global.get $kept) (i32.const 8)))
    (call $reply))
  (func (export "canister_query grown")
    (call $append (i32.const 8) (i32.sub (global.get $kept) (i32.const 8)))
    (call $reply)))"#;

#[test]
fn a_grow_the_allocator_refused_is_refused_again_when_the_journal_replays() {
    const TEST: &str = "a_grow_the_allocator_refused_is_refused_again_when_the_journal_replays";
    if let Some(dir) = child_dir() {
        let mut replica = replica::Replica::open(&dir).unwrap();
        let grower = replica.canister_ids()[0];
        for pages in [1u64, 1_000, 2] {
            replica
                .update(user(), grower, "grow", &pages.to_le_bytes())
                .unwrap();
        }
        std::process::abort();
    }
    let grown = |replica: &mut replica::Replica, grower| -> Vec<i64> {
        let reply = replica.query(user(), grower, "grown", &[]).unwrap();
        reply
            .chunks(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    let mut local = Local::new();
    let grower = local.deploy(crate::common::wat(GROWER));
    drop(local.replica);
    // The child's allocator refuses stable memory past 1 MiB, as a small machine's would.
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &format!("journal::{TEST}"), "--nocapture"])
        .env(CHILD, local.dir.path())
        .env(replica::fault::REFUSE_STABLE_OVER, (1u64 << 20).to_string())
        .status()
        .unwrap();
    assert!(!status.success(), "the child was to abort");

    // This process's allocator would grant the 1,000 pages; the replay refuses them as the
    // child's did, so the state is the one the child answered from.
    let mut replica = replica::Replica::open(local.dir.path()).unwrap();
    assert_eq!(grown(&mut replica, grower), [0, -1, 1]);
}

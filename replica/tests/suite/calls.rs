//! Canisters calling canisters, on the relay (ic-cdk's own call API and ic-cdk-timers): replies
//! and rejects with the IC's codes and messages, chains, self-calls, ordering, cycles that
//! add up, timers, stopping and uninstalling with calls open, and a backup agent canister
//! that snapshots and restores the chat by calls to the management canister.

use candid::{Decode, Encode, Principal};
use ic_management_canister_types as ic;
use replica::Replica;

use crate::common::relay::{Forwarded, Outcome};
use crate::common::{Local, chat_wasm, relay_wasm, user};

fn relays(local: &mut Local, n: usize) -> Vec<Principal> {
    (0..n).map(|_| local.deploy(relay_wasm())).collect()
}

fn forward(
    local: &mut Local,
    from: Principal,
    to: Principal,
    method: &str,
    arg: Vec<u8>,
    cycles: u128,
) -> Forwarded {
    local
        .update(from, "forward", (to, method.to_owned(), arg, cycles))
        .unwrap()
}

fn reject_of(forwarded: Forwarded) -> (u32, String) {
    match forwarded.outcome {
        Outcome::Reject { code, message } => (code, message),
        other => panic!("expected a reject, got {other:?}"),
    }
}

/// Every canister's balance plus what was burned: what calls must conserve.
fn cycles_in(local: &mut Local, canisters: &[Principal]) -> u128 {
    let balances: u128 = canisters
        .iter()
        .map(|c| u128::try_from(local.status(*c).cycles.0).unwrap())
        .sum();
    balances + local.replica.burned_cycles()
}

#[test]
fn a_canister_calls_another_and_the_reply_comes_back() {
    let mut local = Local::new();
    let [a, b] = relays(&mut local, 2)[..] else {
        unreachable!()
    };
    let forwarded = forward(&mut local, a, b, "count", Encode!().unwrap(), 0);
    let Outcome::Reply(bytes) = forwarded.outcome else {
        panic!("{forwarded:?}")
    };
    assert_eq!(Decode!(&bytes, u64).unwrap(), 1);
    assert_eq!(local.query::<u64>(b, "counter", ()).unwrap(), 1);
    assert_eq!(local.query::<u64>(a, "counter", ()).unwrap(), 0);
}

#[test]
fn a_chain_of_ten_canisters_passes_the_call_along_and_back() {
    let mut local = Local::new();
    let hops = relays(&mut local, 10);
    let text: String = local
        .update(hops[0], "chain", (hops[1..].to_vec(), "go".to_owned()))
        .unwrap();
    let marks: Vec<String> = hops.iter().map(|h| h.to_text()[..5].to_owned()).collect();
    assert_eq!(text, format!("go>{}", marks.join(">")));
}

#[test]
fn a_canister_calls_itself_and_each_call_is_its_own_message() {
    let mut local = Local::new();
    let [a] = relays(&mut local, 1)[..] else {
        unreachable!()
    };
    let counted: u64 = local.update(a, "count_by_self_calls", (25u32,)).unwrap();
    assert_eq!(counted, 25);
}

#[test]
fn requests_between_two_canisters_start_in_the_order_they_were_made() {
    let mut local = Local::new();
    let [a, b] = relays(&mut local, 2)[..] else {
        unreachable!()
    };
    local
        .update::<()>(a, "record_in_order", (b, 30u32))
        .unwrap();
    let records: Vec<String> = local.query(b, "records", ()).unwrap();
    let from = &a.to_text()[..5];
    let expected: Vec<String> = (0..30).map(|i| format!("{i} from {from}")).collect();
    assert_eq!(records, expected);
}

#[test]
fn calls_that_fail_are_rejected_to_the_caller_with_the_ic_codes() {
    let mut local = Local::new();
    let [a, b] = relays(&mut local, 2)[..] else {
        unreachable!()
    };

    let (code, message) = reject_of(forward(
        &mut local,
        a,
        b,
        "fail",
        Encode!(&"boom").unwrap(),
        0,
    ));
    assert_eq!(code, 5, "{message}");
    assert!(
        message.contains("Canister called `ic0.trap` with message: 'boom'"),
        "{message}"
    );

    let (code, message) = reject_of(forward(&mut local, a, b, "nope", Encode!().unwrap(), 0));
    assert_eq!(
        (code, message),
        (
            5,
            format!("Error from Canister {b}: Canister has no update method 'nope'.")
        )
    );

    let (code, message) = reject_of(forward(&mut local, a, b, "silent", Encode!().unwrap(), 0));
    assert_eq!(
        (code, message),
        (
            5,
            format!("Error from Canister {b}: Canister did not reply to the call")
        )
    );

    let missing = Principal::from_text("rdmx6-jaaaa-aaaaa-aaadq-cai").unwrap();
    let (code, message) = reject_of(forward(
        &mut local,
        a,
        missing,
        "count",
        Encode!().unwrap(),
        0,
    ));
    assert_eq!(
        (code, message),
        (3, format!("Canister {missing} not found"))
    );

    local.stop(b);
    let (code, message) = reject_of(forward(&mut local, a, b, "count", Encode!().unwrap(), 0));
    assert_eq!(code, 5);
    assert!(
        message.contains(&format!("Canister {b} is stopped")),
        "{message}"
    );
}

#[test]
fn attached_cycles_move_are_refunded_and_add_up() {
    let mut local = Local::new();
    let [a, b] = relays(&mut local, 2)[..] else {
        unreachable!()
    };
    let before = cycles_in(&mut local, &[a, b]);
    let a_before = u128::try_from(local.status(a).cycles.0).unwrap();
    let b_before = u128::try_from(local.status(b).cycles.0).unwrap();

    let forwarded = forward(
        &mut local,
        a,
        b,
        "accept",
        Encode!(&400u128).unwrap(),
        1_000,
    );
    let Outcome::Reply(bytes) = &forwarded.outcome else {
        panic!("{forwarded:?}")
    };
    assert_eq!(Decode!(bytes, u128).unwrap(), 400);
    assert_eq!(forwarded.refunded, 600);

    let a_after = u128::try_from(local.status(a).cycles.0).unwrap();
    let b_after = u128::try_from(local.status(b).cycles.0).unwrap();
    assert_eq!(b_after, b_before + 400);
    let fee = a_before - 400 - a_after;
    // The fee of one call of `accept` with a 16-byte Candid nat: 260,000 + 1,000 per byte.
    let arg = Encode!(&400u128).unwrap();
    assert_eq!(fee, 260_000 + 1_000 * ("accept".len() + arg.len()) as u128);
    assert_eq!(
        cycles_in(&mut local, &[a, b]),
        before,
        "cycles were made or lost"
    );

    // A callee that traps takes nothing: all comes back.
    let forwarded = forward(&mut local, a, b, "fail", Encode!(&"no").unwrap(), 5_000);
    assert_eq!(forwarded.refunded, 5_000);
    assert_eq!(
        cycles_in(&mut local, &[a, b]),
        before,
        "cycles were made or lost"
    );
}

#[test]
fn an_ic_cdk_timer_fires_through_a_self_call() {
    let mut local = Local::new();
    let [a] = relays(&mut local, 1)[..] else {
        unreachable!()
    };
    local.update::<()>(a, "set_timer", (0u64,)).unwrap();
    for _ in 0..3 {
        local.replica.tick().unwrap();
    }
    assert_eq!(local.query::<u64>(a, "timers_fired", ()).unwrap(), 1);
}

#[test]
fn raw_rand_answers_canisters_with_32_fresh_bytes_and_refuses_users() {
    let mut local = Local::new();
    let [a] = relays(&mut local, 1)[..] else {
        unreachable!()
    };
    let first: Vec<u8> = local.update(a, "random", ()).unwrap();
    let second: Vec<u8> = local.update(a, "random", ()).unwrap();
    assert_eq!(first.len(), 32);
    assert_ne!(first, second);
    let refused = local
        .management::<Vec<u8>>(user(), "raw_rand", ())
        .unwrap_err();
    assert_eq!(refused.message, "raw_rand can only be called by canisters");
}

/// Starts a call from `a` through `b` to `c` that keeps `b` waiting for several rounds: `c`
/// calls itself 20,000 times, two executions each, and a round runs 10,000. (A canister
/// calling itself could not be made to wait so: stopping, its own calls are refused.)
/// Returns the ingress message's number.
fn start_long_call(replica: &mut Replica, [a, b, c]: [Principal; 3]) -> u64 {
    let inner = Encode!(
        &c,
        &"count_by_self_calls",
        &Encode!(&20_000u32).unwrap(),
        &0u128
    )
    .unwrap();
    let arg = Encode!(&b, &"forward", &inner, &0u128).unwrap();
    replica.submit(user(), a, "forward", &arg).unwrap()
}

fn three(local: &mut Local) -> [Principal; 3] {
    relays(local, 3).try_into().unwrap()
}

/// Sends `stop_canister` for `canister` without waiting for its answer; returns its number.
fn submit_stop(replica: &mut Replica, canister: Principal) -> u64 {
    let id = Encode!(&ic::CanisterIdRecord {
        canister_id: canister
    })
    .unwrap();
    replica
        .submit(
            user(),
            Principal::management_canister(),
            "stop_canister",
            &id,
        )
        .unwrap()
}

fn status_of(local: &mut Local, canister: Principal) -> ic::CanisterStatusType {
    local.status(canister).status
}

#[test]
fn a_canister_with_calls_open_stays_stopping_until_they_end() {
    let mut local = Local::new();
    let [a, b, c] = three(&mut local);
    let call = start_long_call(&mut local.replica, [a, b, c]);
    let stop = submit_stop(&mut local.replica, b);
    assert!(
        local.replica.answer_of(stop).is_none(),
        "stopped with calls open"
    );
    assert_eq!(status_of(&mut local, b), ic::CanisterStatusType::Stopping);
    let refused = local.update::<u64>(b, "count", ()).unwrap_err();
    assert_eq!(refused.message, format!("Canister {b} is stopping"));

    while local.replica.answer_of(stop).is_none() {
        local.replica.tick().unwrap();
    }
    assert_eq!(status_of(&mut local, b), ic::CanisterStatusType::Stopped);
    let forwarded = Decode!(
        &local
            .replica
            .answer_of(call)
            .unwrap_or_else(|| {
                panic!("the long call was answered before the stop, so its answer was taken")
            })
            .unwrap(),
        Forwarded
    )
    .unwrap();
    assert!(
        matches!(forwarded.outcome, Outcome::Reply(_)),
        "{forwarded:?}"
    );
}

#[test]
fn starting_a_stopping_canister_cancels_the_stop() {
    let mut local = Local::new();
    let [a, b, c] = three(&mut local);
    start_long_call(&mut local.replica, [a, b, c]);
    let stop = submit_stop(&mut local.replica, b);
    local.start(b);
    let cancelled = local.replica.answer_of(stop).unwrap().unwrap_err();
    assert_eq!(
        cancelled.message,
        format!("Canister {b}'s stop request was cancelled.")
    );
    assert_eq!(cancelled.error_code.unwrap().to_string(), "IC0511");
}

#[test]
fn uninstalling_a_canister_rejects_the_calls_it_was_answering() {
    let mut local = Local::new();
    let [a, b, c] = three(&mut local);
    let call = start_long_call(&mut local.replica, [a, b, c]);
    let args = ic::UninstallCodeArgs {
        canister_id: b,
        sender_canister_version: None,
    };
    local
        .management::<()>(user(), "uninstall_code", args)
        .unwrap();
    let answer = loop {
        if let Some(answer) = local.replica.answer_of(call) {
            break answer;
        }
        local.replica.tick().unwrap();
    };
    let forwarded = Decode!(&answer.unwrap(), Forwarded).unwrap();
    assert_eq!(
        forwarded.outcome,
        Outcome::Reject {
            code: 4,
            message: "Canister has been uninstalled.".into()
        }
    );
}

#[test]
fn a_backup_agent_canister_snapshots_and_restores_the_chat_by_calls() {
    let mut local = Local::new();
    let chat = local.deploy(chat_wasm());
    let [agent] = relays(&mut local, 1)[..] else {
        unreachable!()
    };
    local.update_settings(
        chat,
        ic::CanisterSettings {
            controllers: Some(vec![user(), agent]),
            ..Default::default()
        },
    );
    local.update::<()>(chat, "append", ("kept",)).unwrap();
    let snapshot: Vec<u8> = local.update(agent, "backup", (chat,)).unwrap();
    assert_eq!(local.list_snapshots(chat)[0].id, snapshot);
    assert_eq!(status_of(&mut local, chat), ic::CanisterStatusType::Running);

    local.update::<()>(chat, "append", ("lost",)).unwrap();
    local
        .update::<()>(agent, "restore", (chat, snapshot))
        .unwrap();
    let messages: Vec<String> = local.query(chat, "dump", ()).unwrap();
    assert_eq!(messages, ["kept"]);
    let status: String = local.update(agent, "status_of", (chat,)).unwrap();
    assert_eq!(status, "Running");

    // A canister that is not a controller is refused, with the IC's message.
    let [other] = relays(&mut local, 1)[..] else {
        unreachable!()
    };
    let refused = local
        .update::<Vec<u8>>(other, "backup", (chat,))
        .unwrap_err();
    assert!(
        refused.message.contains(&format!("Only controllers of canister {chat} can call ic00 method stop_canister; {other} is not one of them.")),
        "{refused}"
    );
}

#[test]
fn a_composite_query_reads_other_canisters_as_deep_as_the_ic_allows() {
    let mut local = Local::new();
    let three = relays(&mut local, 3);
    for (n, relay) in three.iter().enumerate() {
        for _ in 0..=n {
            local.update::<u64>(*relay, "count", ()).unwrap();
        }
    }
    let sum: u64 = local
        .query(three[0], "sum_counters", (three[1..].to_vec(),))
        .unwrap();
    assert_eq!(sum, 2 + 3);

    // Through six composite queries to the seventh canister: as deep as the IC allows.
    let chain = relays(&mut local, 7);
    let deep: u64 = local
        .query(chain[0], "deep", (chain[1..].to_vec(),))
        .unwrap();
    assert_eq!(deep, 0);
    // One more is refused, with the IC's code.
    let chain = relays(&mut local, 8);
    let refused = local
        .query::<u64>(chain[0], "deep", (chain[1..].to_vec(),))
        .unwrap_err();
    assert!(
        refused
            .message
            .contains("Composite query calls exceeded the maximum call depth."),
        "{refused}"
    );

    // Called by an update, a composite query is refused (IC0527).
    let refused = local
        .update::<u64>(three[0], "sum_counters", (three[1..].to_vec(),))
        .unwrap_err();
    assert_eq!(refused.error_code.unwrap().to_string(), "IC0527");
}

#[test]
fn a_bounded_wait_call_past_its_deadline_is_answered_sys_unknown() {
    let mut local = Local::new();
    let [a, b, _] = three(&mut local);
    // `b` keeps itself busy for 40,000 executions, four rounds; `a` waits 0 s, so its deadline
    // passes at the next round whatever the machine's speed.
    let inner = Encode!(&20_000u32).unwrap();
    let outcome: Outcome = local
        .update(
            a,
            "forward_bounded",
            (b, "count_by_self_calls".to_owned(), inner, 1u32),
        )
        .unwrap();
    assert_eq!(
        outcome,
        Outcome::Reject {
            code: 6,
            message: "Call deadline has expired.".into()
        }
    );
    // The callee goes on: its work is not undone by the caller giving up.
    while local.replica.busy() {
        local.replica.tick().unwrap();
    }
    assert_eq!(local.query::<u64>(b, "counter", ()).unwrap(), 20_000);
}

/// `go` calls its own `ping`; the reply callback marks heap byte 0 and traps; the cleanup
/// marks byte 1. `read` replies both bytes; `call_in_query` tries a call from a query.
const CLEANUP: &str = r#"(module
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "canister_self_size" (func $self_size (result i32)))
  (import "ic0" "canister_self_copy" (func $self_copy (param i32 i32 i32)))
  (import "ic0" "call_new" (func $call_new (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "ic0" "call_on_cleanup" (func $on_cleanup (param i32 i32)))
  (import "ic0" "call_perform" (func $perform (result i32)))
  (import "ic0" "trap" (func $trap (param i32 i32)))
  (memory 1)
  (table 2 funcref)
  (elem (i32.const 0) $callback $cleanup)
  (data (i32.const 200) "pingcallback failed")
  (func $callback (param i32)
    (i32.store8 (i32.const 0) (i32.const 1))
    (call $trap (i32.const 204) (i32.const 15)))
  (func $cleanup (param i32) (i32.store8 (i32.const 1) (i32.const 2)))
  (func $call_self
    (call $self_copy (i32.const 100) (i32.const 0) (call $self_size))
    (call $call_new (i32.const 100) (call $self_size) (i32.const 200) (i32.const 4)
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
    (call $on_cleanup (i32.const 1) (i32.const 0))
    (drop (call $perform)))
  (func (export "canister_update go") (call $call_self))
  (func (export "canister_update ping") (call $reply))
  (func (export "canister_query call_in_query") (call $call_self) (call $reply))
  (func (export "canister_query read") (call $append (i32.const 0) (i32.const 2)) (call $reply))
)"#;

#[test]
fn a_trapping_callback_is_undone_its_cleanup_runs_and_the_caller_gets_the_trap() {
    let mut local = Local::new();
    let canister = local.deploy(crate::common::wat(CLEANUP));
    let refused = local
        .replica
        .update(user(), canister, "go", &[])
        .unwrap_err();
    assert_eq!(refused.code as u8, 5);
    assert!(
        refused
            .message
            .contains("Canister called `ic0.trap` with message: 'callback failed'"),
        "{refused}"
    );
    let read = local.replica.query(user(), canister, "read", &[]).unwrap();
    assert_eq!(
        read,
        [0, 2],
        "the callback's write stays undone, the cleanup's is kept"
    );

    // Calls cannot be made from a query, with the IC's message.
    let refused = local
        .replica
        .query(user(), canister, "call_in_query", &[])
        .unwrap_err();
    assert_eq!(refused.error_code.unwrap().to_string(), "IC0504");
    assert!(
        refused
            .message
            .contains("\"ic0_call_new\" cannot be executed in non-replicated query mode"),
        "{refused}"
    );
}

/// A canister as a factory: it creates a canister with cycles attached (they become the new
/// canister's balance), installs the chat on it and reads its status, all by calls; it is
/// the new canister's controller, and the user is not.
#[test]
fn a_canister_creates_a_canister_and_installs_code_on_it() {
    let mut local = Local::new();
    let [factory] = relays(&mut local, 1)[..] else {
        unreachable!()
    };
    let management = Principal::management_canister();
    let before = cycles_in(&mut local, &[factory]);
    let create = Encode!(&ic::CreateCanisterArgs::default()).unwrap();
    let created = forward(
        &mut local,
        factory,
        management,
        "create_canister",
        create,
        2_000_000_000_000,
    );
    let Outcome::Reply(bytes) = created.outcome else {
        panic!("{created:?}")
    };
    let child = Decode!(&bytes, ic::CanisterIdRecord).unwrap().canister_id;
    assert_eq!(
        created.refunded, 0,
        "create_canister keeps what is attached"
    );
    let child_cycles = u128::try_from(status_by(&mut local, factory, child).cycles.0).unwrap();
    assert_eq!(child_cycles, 2_000_000_000_000);
    assert_eq!(
        cycles_in(&mut local, &[factory]) + child_cycles,
        before,
        "cycles were made or lost"
    );

    let install = Encode!(&ic::InstallCodeArgs {
        mode: ic::CanisterInstallMode::Install,
        canister_id: child,
        wasm_module: chat_wasm(),
        arg: Encode!().unwrap(),
        sender_canister_version: None,
    })
    .unwrap();
    let installed = forward(&mut local, factory, management, "install_code", install, 0);
    assert!(
        matches!(installed.outcome, Outcome::Reply(_)),
        "{installed:?}"
    );
    local
        .update::<()>(child, "append", ("made by a canister",))
        .unwrap();
    let messages: Vec<String> = local.query(child, "dump", ()).unwrap();
    assert_eq!(messages, ["made by a canister"]);

    let status = status_by(&mut local, factory, child);
    assert_eq!(status.settings.controllers, vec![factory]);
    assert_eq!(
        status.module_hash,
        Some(replica::store::hash(&chat_wasm()).to_vec())
    );
    let refused = local
        .management::<()>(
            user(),
            "stop_canister",
            ic::CanisterIdRecord { canister_id: child },
        )
        .unwrap_err();
    assert_eq!(
        refused.error_code,
        Some(replica::ErrorCode::CanisterInvalidController)
    );
}

/// `canister`'s status as its controller `by` reads it, by a call.
fn status_by(local: &mut Local, by: Principal, canister: Principal) -> ic::CanisterStatusResult {
    let id = Encode!(&ic::CanisterIdRecord {
        canister_id: canister
    })
    .unwrap();
    let management = Principal::management_canister();
    let status = forward(local, by, management, "canister_status", id, 0);
    let Outcome::Reply(bytes) = status.outcome else {
        panic!("{status:?}")
    };
    Decode!(&bytes, ic::CanisterStatusResult).unwrap()
}

/// `msg_deadline` is 0 for ingress and unbounded-wait calls, and for a bounded-wait call the
/// time it was made plus its timeout (IC interface spec, "Deadline").
#[test]
fn msg_deadline_is_the_bounded_wait_calls_deadline_and_zero_otherwise() {
    let mut local = Local::new();
    let [a, b] = relays(&mut local, 2)[..] else {
        unreachable!()
    };
    let no_arg = Encode!().unwrap();
    assert_eq!(local.update::<u64>(b, "deadline", ()).unwrap(), 0);
    let unbounded = forward(&mut local, a, b, "deadline", no_arg.clone(), 0);
    let Outcome::Reply(bytes) = unbounded.outcome else {
        panic!("{unbounded:?}")
    };
    assert_eq!(Decode!(&bytes, u64).unwrap(), 0);

    let wall = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    };
    let before = wall();
    let bounded: Outcome = local
        .update(
            a,
            "forward_bounded",
            (b, "deadline".to_owned(), no_arg.clone(), 30u32),
        )
        .unwrap();
    let after = wall();
    let Outcome::Reply(bytes) = bounded else {
        panic!("{bounded:?}")
    };
    let made_at = Decode!(&bytes, u64).unwrap() - 30_000_000_000;
    assert!(
        (before..=after + 1_000_000_000).contains(&made_at),
        "made at {made_at}, between {before} and {after}"
    );
    let to_query: Outcome = local
        .update(
            a,
            "forward_bounded",
            (b, "deadline_in_query".to_owned(), no_arg, 30u32),
        )
        .unwrap();
    assert_eq!(to_query, Outcome::Reply(Encode!(&0u64).unwrap()));
}

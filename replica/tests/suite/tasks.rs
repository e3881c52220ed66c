//! System tasks and message inspection: the global timer fires once when due, heartbeats run
//! every round, and `canister_inspect_message` can refuse ingress.

use crate::common::{Local, user, wat};
use replica::ErrorCode;

/// Counts timer runs at heap byte 0 and heartbeats at byte 1; `arm` sets the timer to 1 ns
/// after the epoch (long due); `read` replies with both counters.
const TASKS: &str = r#"(module
  (import "ic0" "global_timer_set" (func $timer (param i64) (result i64)))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (memory 1)
  (func (export "canister_update arm") (drop (call $timer (i64.const 1))) (call $reply))
  (func (export "canister_global_timer")
    (i32.store8 (i32.const 0) (i32.add (i32.load8_u (i32.const 0)) (i32.const 1))))
  (func (export "canister_heartbeat")
    (i32.store8 (i32.const 1) (i32.add (i32.load8_u (i32.const 1)) (i32.const 1))))
  (func (export "canister_query read") (call $append (i32.const 0) (i32.const 2)) (call $reply)))"#;

#[test]
fn a_due_timer_fires_once_and_heartbeats_run_every_round() {
    let mut local = Local::new();
    let canister = local.deploy(wat(TASKS));
    local.replica.update(user(), canister, "arm", &[]).unwrap();
    assert_eq!(
        local.replica.query(user(), canister, "read", &[]).unwrap()[0],
        0
    );
    local.replica.tick().unwrap();
    local.replica.tick().unwrap();
    let counters = local.replica.query(user(), canister, "read", &[]).unwrap();
    assert_eq!(counters[0], 1, "the timer fired once, then was inactive");
    assert!(counters[1] >= 3, "a heartbeat each round: {counters:?}");
}

#[test]
fn a_stopped_canister_runs_no_tasks() {
    let mut local = Local::new();
    let canister = local.deploy(wat(TASKS));
    local.replica.update(user(), canister, "arm", &[]).unwrap();
    local.stop(canister);
    local.replica.tick().unwrap();
    local.start(canister);
    // The first round after starting fires the timer that waited.
    local.replica.tick().unwrap();
    assert_eq!(
        local.replica.query(user(), canister, "read", &[]).unwrap()[0],
        1
    );
}

/// Accepts ingress only for the method named `ok` (two bytes).
const PICKY: &str = r#"(module
  (import "ic0" "msg_method_name_size" (func $size (result i32)))
  (import "ic0" "msg_method_name_copy" (func $copy (param i32 i32 i32)))
  (import "ic0" "accept_message" (func $accept))
  (import "ic0" "msg_reply" (func $reply))
  (memory 1)
  (func (export "canister_inspect_message")
    (if (i32.eq (call $size) (i32.const 2))
      (then
        (call $copy (i32.const 0) (i32.const 0) (i32.const 2))
        (if (i32.eq (i32.load16_u (i32.const 0)) (i32.const 0x6b6f)) (then (call $accept))))))
  (func (export "canister_update ok") (call $reply))
  (func (export "canister_update no") (call $reply))
  (func (export "canister_query look") (call $reply)))"#;

#[test]
fn inspect_message_decides_which_ingress_updates_run() {
    let mut local = Local::new();
    let canister = local.deploy(wat(PICKY));
    local.replica.update(user(), canister, "ok", &[]).unwrap();
    let reject = local
        .replica
        .update(user(), canister, "no", &[])
        .unwrap_err();
    assert_eq!(reject.error_code, Some(ErrorCode::CanisterRejectedMessage));
    assert!(reject.message.contains("rejected the message"), "{reject}");
    local.replica.query(user(), canister, "look", &[]).unwrap();
}

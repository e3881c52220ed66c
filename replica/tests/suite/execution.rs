//! Execution semantics the IC guarantees, on small WAT canisters: rollback on trap, queries
//! that change nothing, instruction and memory limits, module validation, wasm64.

use crate::common::{Local, user, wat};
use candid::{Decode, Encode};
use ic_management_canister_types as ic;
use replica::{ErrorCode, Principal};

const COUNTER: &str = include_str!("common/counter.wat");

/// (heap, global, stable) counters from a raw reply.
fn counters(reply: &[u8]) -> (u32, u32, u32) {
    let word = |i: usize| u32::from_le_bytes(reply[i..i + 4].try_into().unwrap());
    (word(0), word(4), word(8))
}

type Counters = Result<(u32, u32, u32), replica::Reject>;

fn update(local: &mut Local, canister: Principal, method: &str) -> Counters {
    let reply = local.replica.update(user(), canister, method, &[]);
    reply.map(|r| counters(&r))
}

fn query(local: &mut Local, canister: Principal, method: &str) -> Counters {
    let reply = local.replica.query(user(), canister, method, &[]);
    reply.map(|r| counters(&r))
}

#[test]
fn a_trap_rolls_back_heap_globals_and_stable_memory() {
    let mut local = Local::new();
    let counter = local.deploy(wat(COUNTER));
    assert_eq!(update(&mut local, counter, "inc").unwrap(), (1, 1, 1));
    let reject = update(&mut local, counter, "inc_then_trap").unwrap_err();
    assert_eq!(reject.error_code, Some(ErrorCode::CanisterCalledTrap));
    assert!(
        reject
            .message
            .contains("Canister called `ic0.trap` with message: 'boom'"),
        "{reject}"
    );
    assert_eq!(query(&mut local, counter, "read").unwrap(), (1, 1, 1));
}

#[test]
fn a_query_changes_nothing() {
    let mut local = Local::new();
    let counter = local.deploy(wat(COUNTER));
    update(&mut local, counter, "inc").unwrap();
    assert_eq!(query(&mut local, counter, "query_inc").unwrap(), (2, 2, 2));
    assert_eq!(query(&mut local, counter, "read").unwrap(), (1, 1, 1));
}

#[test]
fn an_update_call_to_a_query_method_runs_replicated_and_commits() {
    let mut local = Local::new();
    let counter = local.deploy(wat(COUNTER));
    // As on the IC, an update call to a query method runs it replicated, and it commits.
    assert_eq!(update(&mut local, counter, "query_inc").unwrap(), (1, 1, 1));
    assert_eq!(query(&mut local, counter, "read").unwrap(), (1, 1, 1));
}

#[test]
fn unknown_methods_and_missing_replies_are_rejected() {
    let mut local = Local::new();
    let counter = local.deploy(wat(COUNTER));
    let reject = local
        .replica
        .update(user(), counter, "nope", &[])
        .unwrap_err();
    assert_eq!(reject.error_code, Some(ErrorCode::CanisterMethodNotFound));
    let reject = local
        .replica
        .update(user(), counter, "no_reply", &[])
        .unwrap_err();
    assert_eq!(reject.error_code, Some(ErrorCode::CanisterDidNotReply));
    let reject = local
        .replica
        .query(user(), counter, "inc", &[])
        .unwrap_err();
    assert_eq!(
        reject.error_code,
        Some(ErrorCode::CanisterMethodNotFound),
        "an update method is no query"
    );
}

#[test]
fn the_instruction_limit_stops_an_endless_loop() {
    let mut local = Local::new();
    let counter = local.deploy(wat(COUNTER));
    let reject = query(&mut local, counter, "spin").unwrap_err();
    assert_eq!(
        reject.error_code,
        Some(ErrorCode::CanisterInstructionLimitExceeded)
    );
    assert!(
        reject.message.contains("5000000000 instructions"),
        "{reject}"
    );
}

#[test]
fn the_wasm_memory_limit_stops_growth() {
    let mut local = Local::new();
    let counter = local.deploy(wat(COUNTER));
    let settings = ic::CanisterSettings {
        wasm_memory_limit: Some(candid::Nat::from(4u64 << 20)),
        ..Default::default()
    };
    local.update_settings(counter, settings);
    let reject = update(&mut local, counter, "grow").unwrap_err();
    assert!(
        reject
            .message
            .contains("Wasm memory limit of 4194304 bytes"),
        "{reject}"
    );
    assert_eq!(
        local.status(counter).memory_metrics.wasm_memory_size,
        candid::Nat::from(65536u64)
    );
}

fn install_error(wasm: Vec<u8>) -> String {
    let mut local = Local::new();
    let canister = local.create();
    let reject = local
        .install(canister, wasm, ic::CanisterInstallMode::Install)
        .unwrap_err();
    assert_eq!(
        reject.error_code,
        Some(ErrorCode::CanisterInvalidWasm),
        "{reject}"
    );
    assert!(
        local.status(canister).module_hash.is_none(),
        "a failed install changes nothing"
    );
    reject.message
}

#[test]
fn invalid_modules_are_refused_with_the_reason() {
    assert!(install_error(b"hello".to_vec()).contains("wasm magic bytes"));
    let unknown = install_error(wat(r#"(module (import "ic0" "launch_rockets" (func)))"#));
    assert!(unknown.contains("`ic0.launch_rockets`"), "{unknown}");
    let other = install_error(wat(r#"(module (import "env" "f" (func)))"#));
    assert!(other.contains("only from `ic0`"), "{other}");
    let mistyped = install_error(wat(
        r#"(module (import "ic0" "msg_reply" (func (param i32))))"#,
    ));
    assert!(mistyped.contains("msg_reply"), "{mistyped}");
    let export = install_error(wat(r#"(module (func (export "canister_bogus")))"#));
    assert!(export.contains("`canister_bogus`"), "{export}");
    let typed = install_error(wat(
        r#"(module (func (export "canister_update f") (param i32)))"#,
    ));
    assert!(typed.contains("() -> ()"), "{typed}");
    let twice = install_error(wat(
        r#"(module (func $f) (export "canister_update f" (func $f)) (export "canister_query f" (func $f)))"#,
    ));
    assert!(
        twice.contains("both as an update and as a query"),
        "{twice}"
    );
}

#[test]
fn a_trap_in_init_leaves_the_canister_empty() {
    let mut local = Local::new();
    let canister = local.create();
    let wasm = wat(r#"(module (func (export "canister_init") unreachable))"#);
    let reject = local
        .install(canister, wasm, ic::CanisterInstallMode::Install)
        .unwrap_err();
    assert_eq!(reject.error_code, Some(ErrorCode::CanisterTrapped));
    assert!(local.status(canister).module_hash.is_none());
}

#[test]
fn system_api_calls_outside_their_context_trap() {
    let mut local = Local::new();
    let canister = local.create();
    let wasm = wat(
        r#"(module (import "ic0" "msg_reply" (func $reply)) (func (export "canister_init") (call $reply)))"#,
    );
    let reject = local
        .install(canister, wasm, ic::CanisterInstallMode::Install)
        .unwrap_err();
    assert_eq!(
        reject.error_code,
        Some(ErrorCode::CanisterContractViolation)
    );
    assert!(
        reject
            .message
            .contains("\"ic0_msg_reply\" cannot be executed in init mode"),
        "{reject}"
    );
}

#[test]
fn calls_to_other_canisters_trap_naming_the_function() {
    let mut local = Local::new();
    let wasm = wat(
        r#"(module (import "ic0" "call_perform" (func $perform (result i32)))
           (func (export "canister_update go") (drop (call $perform))))"#,
    );
    let canister = local.deploy(wasm);
    let reject = local
        .replica
        .update(user(), canister, "go", &[])
        .unwrap_err();
    assert!(reject.message.contains("ic0.call_perform"), "{reject}");
}

#[test]
fn wasm64_canisters_run_with_64_bit_pointers() {
    let mut local = Local::new();
    let wasm = wat(r#"(module
          (import "ic0" "msg_arg_data_size" (func $size (result i64)))
          (import "ic0" "msg_arg_data_copy" (func $copy (param i64 i64 i64)))
          (import "ic0" "msg_reply_data_append" (func $append (param i64 i64)))
          (import "ic0" "msg_reply" (func $reply))
          (memory i64 1)
          (func (export "canister_update echo")
            (call $copy (i64.const 16) (i64.const 0) (call $size))
            (call $append (i64.const 16) (call $size))
            (call $reply)))"#);
    let canister = local.deploy(wasm);
    let reply = local
        .replica
        .update(user(), canister, "echo", b"sixty-four")
        .unwrap();
    assert_eq!(reply, b"sixty-four");
}

#[test]
fn chunked_install_checks_the_module_hash() {
    let mut local = Local::new();
    let canister = local.create();
    let wasm = wat(COUNTER);
    let (first, second) = wasm.split_at(wasm.len() / 2);
    let mut hashes = Vec::new();
    for chunk in [first, second] {
        let args = ic::UploadChunkArgs {
            canister_id: canister,
            chunk: chunk.to_vec(),
        };
        hashes.push(
            local
                .management::<ic::ChunkHash>(user(), "upload_chunk", args)
                .unwrap(),
        );
    }
    let stored: Vec<ic::ChunkHash> = local
        .management(
            user(),
            "stored_chunks",
            ic::CanisterIdRecord {
                canister_id: canister,
            },
        )
        .unwrap();
    assert_eq!(stored.len(), 2);
    let install = |hash: Vec<u8>| ic::InstallChunkedCodeArgs {
        mode: ic::CanisterInstallMode::Install,
        target_canister: canister,
        store_canister: None,
        chunk_hashes_list: hashes.clone(),
        wasm_module_hash: hash,
        arg: vec![],
        sender_canister_version: None,
    };
    let reject = local
        .management::<()>(user(), "install_chunked_code", install(vec![0; 32]))
        .unwrap_err();
    assert!(
        reject.message.contains("does not match given hash"),
        "{reject}"
    );
    assert!(local.status(canister).module_hash.is_none());
    let hash = replica::store::hash(&wasm).to_vec();
    local
        .management::<()>(user(), "install_chunked_code", install(hash.clone()))
        .unwrap();
    assert_eq!(local.status(canister).module_hash, Some(hash));
    assert_eq!(update(&mut local, canister, "inc").unwrap(), (1, 1, 1));
}

#[test]
fn fetch_canister_logs_returns_debug_print_and_traps() {
    let mut local = Local::new();
    let counter = local.deploy(wat(COUNTER));
    update(&mut local, counter, "print").unwrap();
    update(&mut local, counter, "inc_then_trap").unwrap_err();
    let args = Encode!(&ic::FetchCanisterLogsArgs {
        canister_id: counter,
        filter: None
    })
    .unwrap();
    let reply = local
        .replica
        .query(
            user(),
            Principal::management_canister(),
            "fetch_canister_logs",
            &args,
        )
        .unwrap();
    let logs = Decode!(&reply, ic::FetchCanisterLogsResult)
        .unwrap()
        .canister_log_records;
    let lines: Vec<_> = logs
        .iter()
        .map(|r| String::from_utf8_lossy(&r.content).into_owned())
        .collect();
    assert_eq!(lines[0], "boom");
    assert!(
        lines[1].starts_with("[TRAP]: ") && lines[1].contains("'boom'"),
        "{lines:?}"
    );
    assert_eq!((logs[0].idx, logs[1].idx), (0, 1));
}

#[test]
fn an_argument_over_2_mib_is_refused() {
    let mut local = Local::new();
    let counter = local.deploy(wat(COUNTER));
    let arg = vec![0; 2 * 1024 * 1024 + 1];
    let reject = local
        .replica
        .update(user(), counter, "inc", &arg)
        .unwrap_err();
    assert!(reject.message.contains("2097152"), "{reject}");
    assert_eq!(query(&mut local, counter, "read").unwrap(), (0, 0, 0));
}

#[test]
fn a_query_that_grows_the_heap_leaves_it_as_it_was() {
    let mut local = Local::new();
    let counter = local.deploy(wat(COUNTER));
    update(&mut local, counter, "inc").unwrap();
    let grown = local.replica.query(user(), counter, "grow_in_query", &[]);
    assert!(grown.is_ok(), "{grown:?}");
    assert_eq!(query(&mut local, counter, "read").unwrap(), (1, 1, 1));
    assert_eq!(update(&mut local, counter, "inc").unwrap(), (2, 2, 2));
    assert_eq!(
        local.status(counter).memory_metrics.wasm_memory_size,
        candid::Nat::from(65536u64)
    );
}

/// A table set in one message is back to its initial contents in the next, as on the IC,
/// where only memory and globals persist.
#[test]
fn tables_start_fresh_in_every_message() {
    let mut local = Local::new();
    let canister = local.deploy(wat(r#"(module
      (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
      (import "ic0" "msg_reply" (func $reply))
      (type $get (func (result i32)))
      (memory 1)
      (table 1 funcref)
      (elem (i32.const 0) $one)
      (func $one (result i32) (i32.const 1))
      (func $two (result i32) (i32.const 2))
      (func $answer
        (i32.store (i32.const 0) (call_indirect (type $get) (i32.const 0)))
        (call $append (i32.const 0) (i32.const 4))
        (call $reply))
      (func (export "canister_update swap") (table.set (i32.const 0) (ref.func $two)) (call $answer))
      (func (export "canister_update get") (call $answer))
      (elem declare func $two))"#));
    let answer = |local: &mut Local, method: &str| {
        let reply = local.replica.update(user(), canister, method, &[]).unwrap();
        u32::from_le_bytes(reply[..4].try_into().unwrap())
    };
    assert_eq!(answer(&mut local, "get"), 1);
    assert_eq!(answer(&mut local, "swap"), 2);
    assert_eq!(answer(&mut local, "get"), 1);
}

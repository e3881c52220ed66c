//! The dirty-page tracker checked against the truth: with the check on
//! (`replica::canister::dirty_check`), every update's written pages are compared with a
//! full comparison of the heap and its saved copy, and every undo (a query's writes, a
//! snapshot load) with the saved copy whole; a page that changed unreported fails the run.
//! The workload: random fills by the canister, host writes (`msg_arg_data_copy` into the
//! heap), memory growth, queries that scribble, and snapshots taken and loaded. A model of
//! the heap is compared with the canister's as it goes. The seed is printed.

use candid::Principal;
use replica::canister::dirty_check;

use crate::common::{Local, Random, user, wat};

/// A heap the test writes as it likes: `fill` (offset, length, byte: memory.fill; it also
/// certifies the byte and sets the timer from the offset),
/// `host_write` (offset, then the bytes the system API copies to it), `grow` (pages),
/// `scribble` (a query that fills, then is undone), `read` (offset, length).
pub const HEAP: &str = r#"(module
  (import "ic0" "msg_arg_data_size" (func $size (result i32)))
  (import "ic0" "msg_arg_data_copy" (func $copy (param i32 i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "msg_reply_data_append" (func $append (param i32 i32)))
  (import "ic0" "certified_data_set" (func $certify (param i32 i32)))
  (import "ic0" "global_timer_set" (func $timer (param i64) (result i64)))
  (memory 2)
  ;; The argument's first 12 bytes, read without writing the heap: a, b, c.
  (global $a (mut i32) (i32.const 0))
  (global $b (mut i32) (i32.const 0))
  (func $args
    (call $copy (i32.const 0) (i32.const 0) (i32.const 12))
    (global.set $a (i32.load (i32.const 0)))
    (global.set $b (i32.load (i32.const 4))))
  ;; A fill also certifies its value and sets the timer (far ahead: it never fires), so
  ;; that both are state a crash test can check.
  (func (export "canister_update fill")
    (call $args)
    (memory.fill (global.get $a) (i32.load (i32.const 8)) (global.get $b))
    (call $certify (i32.const 8) (i32.const 4))
    (drop (call $timer (i64.add (i64.const 4000000000000000000) (i64.extend_i32_u (global.get $a)))))
    (call $reply))
  (func (export "canister_update host_write")
    (call $copy (i32.const 0) (i32.const 0) (i32.const 4))
    (call $copy (i32.load (i32.const 0)) (i32.const 4) (i32.sub (call $size) (i32.const 4)))
    (call $reply))
  (func (export "canister_update grow")
    (call $args)
    (drop (memory.grow (global.get $a)))
    (call $reply))
  (func (export "canister_query scribble")
    (call $args)
    (memory.fill (global.get $a) (i32.const 255) (global.get $b))
    (call $reply))
  (func (export "canister_query read")
    (call $args)
    (call $append (global.get $a) (global.get $b))
    (call $reply))
)"#;

const PAGE: usize = 64 << 10;
/// The first 12 bytes hold each call's argument; the model does not check them.
pub const SCRATCH: usize = 12;

fn below(random: &mut Random, n: usize) -> usize {
    random.below(n as u64) as usize
}

pub fn words(values: [u32; 3]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn the_tracker_reports_every_page_a_full_comparison_finds() {
    dirty_check::enable();
    let before = dirty_check::checked();
    let seed = crate::http_client::now() | 1;
    println!("seed {seed}");
    let mut random = Random(seed);
    let mut local = Local::new();
    let heap = local.deploy(wat(HEAP));
    let mut model = vec![0u8; 2 * PAGE];
    let mut snapshots: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let call = |local: &mut Local, method: &str, arg: Vec<u8>| {
        local
            .replica
            .update(user(), heap, method, &arg)
            .unwrap_or_else(|e| panic!("{method} (seed {seed}): {e}"));
    };
    for _ in 0..300 {
        let len = model.len();
        let offset = SCRATCH + below(&mut random, len - SCRATCH);
        let size = below(&mut random, (len - offset).min(3 * PAGE)) + 1;
        match below(&mut random, 10) {
            0..=3 => {
                let byte = below(&mut random, 256) as u8;
                call(
                    &mut local,
                    "fill",
                    words([offset as u32, size as u32, byte.into()]),
                );
                model[offset..offset + size].fill(byte);
            }
            4..=5 => {
                let size = size.min(PAGE);
                let bytes: Vec<u8> = (0..size).map(|_| below(&mut random, 256) as u8).collect();
                let arg = [&(offset as u32).to_le_bytes()[..], &bytes].concat();
                call(&mut local, "host_write", arg);
                model[offset..offset + size].copy_from_slice(&bytes);
            }
            6 if len < 40 * PAGE => {
                let pages = below(&mut random, 3) + 1;
                call(&mut local, "grow", words([pages as u32, 0, 0]));
                model.resize(len + pages * PAGE, 0);
            }
            7 => {
                let arg = words([offset as u32, size as u32, 0]);
                local
                    .replica
                    .query(Principal::anonymous(), heap, "scribble", &arg)
                    .unwrap();
            }
            8 if snapshots.len() < 5 => {
                local.stop(heap);
                let taken = local.take_snapshot(heap, None).unwrap();
                local.start(heap);
                snapshots.push((taken.id, model.clone()));
            }
            8 | 9 if !snapshots.is_empty() => {
                let (id, kept) = snapshots[below(&mut random, snapshots.len())].clone();
                local.stop(heap);
                local.load_snapshot(heap, id).unwrap();
                local.start(heap);
                model = kept;
            }
            _ => {}
        }
        let at = SCRATCH + below(&mut random, model.len() - SCRATCH - 64);
        let read = local
            .replica
            .query(
                Principal::anonymous(),
                heap,
                "read",
                &words([at as u32, 64, 0]),
            )
            .unwrap();
        assert_eq!(read, model[at..at + 64], "the heap at {at} (seed {seed})");
    }
    let checked = dirty_check::checked() - before;
    if checked == 0 {
        // The replica compares every page instead: there is no tracker to check.
        crate::common::skipped(
            "dirty_pages::the_tracker_reports_…",
            "this kernel does not track heap writes (userfaultfd write-protect, Linux ≥ 6.7)",
        );
        return;
    }
    assert!(checked >= 300, "only {checked} checks ran");
    println!("{checked} written-page sets and undos checked against a full comparison");
}

;; Benchmark canister: `fill` grows stable memory by the number of 64 KiB pages given as an
;; 8-byte little-endian argument and writes each new page with distinct contents; `touch`
;; rewrites the first N pages (8-byte N, then an 8-byte salt) with contents they never had.
(module
  (import "ic0" "msg_arg_data_copy" (func $arg (param i32 i32 i32)))
  (import "ic0" "msg_reply" (func $reply))
  (import "ic0" "stable64_grow" (func $grow (param i64) (result i64)))
  (import "ic0" "stable64_write" (func $write (param i64 i64 i64)))
  (memory 2)
  (func (export "canister_update fill")
    (local $first i64) (local $page i64) (local $end i64)
    (call $arg (i32.const 0) (i32.const 0) (i32.const 8))
    (local.set $first (call $grow (i64.load (i32.const 0))))
    (local.set $end (i64.add (local.get $first) (i64.load (i32.const 0))))
    (local.set $page (local.get $first))
    (block $done
      (loop $next
        (br_if $done (i64.ge_u (local.get $page) (local.get $end)))
        (i64.store (i32.const 65536) (local.get $page))
        (call $write (i64.mul (local.get $page) (i64.const 65536)) (i64.const 65536) (i64.const 65536))
        (local.set $page (i64.add (local.get $page) (i64.const 1)))
        (br $next)))
    (call $reply))
  (func (export "canister_update touch")
    (local $page i64)
    (call $arg (i32.const 0) (i32.const 0) (i32.const 16))
    (block $done
      (loop $next
        (br_if $done (i64.ge_u (local.get $page) (i64.load (i32.const 0))))
        (i64.store (i32.const 65536) (i64.xor (local.get $page) (i64.shl (i64.load (i32.const 8)) (i64.const 40))))
        (call $write (i64.mul (local.get $page) (i64.const 65536)) (i64.const 65536) (i64.const 65536))
        (local.set $page (i64.add (local.get $page) (i64.const 1)))
        (br $next)))
    (call $reply))
  (func (export "canister_query probe") (call $reply))
)

;; Benchmark canister: `fill` grows stable memory by the number of 64 KiB pages given as an
;; 8-byte little-endian argument and writes each new page with distinct contents; `touch`
;; rewrites the first N pages (8-byte N, then an 8-byte salt) with contents they never had.
;; `grow_heap` and `touch_heap` do the same to the wasm heap, from its third page on.
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
  (func (export "canister_update grow_heap")
    (local $page i32) (local $end i32)
    (call $arg (i32.const 0) (i32.const 0) (i32.const 8))
    (local.set $page (memory.grow (i32.wrap_i64 (i64.load (i32.const 0)))))
    (local.set $end (i32.add (local.get $page) (i32.wrap_i64 (i64.load (i32.const 0)))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $page) (local.get $end)))
        (i64.store (i32.mul (local.get $page) (i32.const 65536)) (i64.extend_i32_u (local.get $page)))
        (local.set $page (i32.add (local.get $page) (i32.const 1)))
        (br $next)))
    (call $reply))
  (func (export "canister_update touch_heap")
    (local $page i32) (local $end i32)
    (call $arg (i32.const 0) (i32.const 0) (i32.const 16))
    (local.set $page (i32.const 2))
    (local.set $end (i32.add (i32.const 2) (i32.wrap_i64 (i64.load (i32.const 0)))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $page) (local.get $end)))
        (i64.store (i32.mul (local.get $page) (i32.const 65536))
          (i64.xor (i64.extend_i32_u (local.get $page)) (i64.shl (i64.load (i32.const 8)) (i64.const 40))))
        (local.set $page (i32.add (local.get $page) (i32.const 1)))
        (br $next)))
    (call $reply))
  (func (export "canister_query probe") (call $reply))
)

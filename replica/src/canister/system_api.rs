//! The `ic0` System API as wasmtime host functions (IC interface spec, "System API imports"),
//! for wasm32 and wasm64 canisters alike, with the spec's rules on which execution may call
//! which function.

use candid::Principal;
use wasmtime::{Caller, Linker, WasmTy};

use super::calls::{
    Closure, MAX_CALL_BYTES, MAX_CALL_TIMEOUT_SECONDS, MAX_METHOD_NAME_BYTES, OutgoingCall,
    call_fee,
};
use super::env::{Context, Env, LogLine, Response};
use super::stable::{MAX_PAGES, PAGE};
use crate::error::{ErrorCode, Reject, RejectCode};

type C<'a> = Caller<'a, Env>;
type R<T> = wasmtime::Result<T>;

/// A pointer or size: `i32` for wasm32 canisters, `i64` for wasm64 (the spec's `I`).
pub trait Ptr: WasmTy + Copy + Send + Sync + 'static {
    fn get(self) -> u64;
    fn of(value: u64) -> Self;
}

impl Ptr for i32 {
    fn get(self) -> u64 {
        u64::from(self as u32)
    }
    fn of(value: u64) -> Self {
        value as u32 as i32
    }
}

impl Ptr for i64 {
    fn get(self) -> u64 {
        self as u64
    }
    fn of(value: u64) -> Self {
        value as i64
    }
}

const fn set(contexts: &[Context]) -> u16 {
    let mut bits = 0;
    let mut i = 0;
    while i < contexts.len() {
        bits |= contexts[i].bit();
        i += 1;
    }
    bits
}

use Context::*;
/// Everywhere but the start function (the spec's `*`).
const ANY: u16 = !Start.bit();
/// Everywhere, the start function included (`* s`).
const ANY_S: u16 = u16::MAX;
const ARG: u16 = set(&[
    Init,
    PostUpgrade,
    Update,
    ReplicatedQuery,
    Query,
    CompositeQuery,
    InspectMessage,
    ReplyCallback,
    CompositeReplyCallback,
]);
const REPLY: u16 = set(&[
    Update,
    ReplicatedQuery,
    Query,
    CompositeQuery,
    ReplyCallback,
    RejectCallback,
    CompositeReplyCallback,
    CompositeRejectCallback,
]);
const CYCLES: u16 = set(&[Update, ReplicatedQuery, ReplyCallback, RejectCallback]);
const REFUNDED: u16 = set(&[ReplyCallback, RejectCallback]);
const REJECT_CODE: u16 = set(&[
    ReplyCallback,
    RejectCallback,
    CompositeReplyCallback,
    CompositeRejectCallback,
    Cleanup,
]);
const REJECT_MESSAGE: u16 = set(&[RejectCallback, CompositeRejectCallback]);
const DEADLINE: u16 = set(&[
    Update,
    ReplicatedQuery,
    Query,
    CompositeQuery,
    ReplyCallback,
    RejectCallback,
    CompositeReplyCallback,
    CompositeRejectCallback,
]);
const INSPECT: u16 = set(&[InspectMessage]);
const CERTIFY: u16 = set(&[
    Init,
    PostUpgrade,
    PreUpgrade,
    Update,
    ReplyCallback,
    RejectCallback,
    SystemTask,
]);
const TIMER: u16 = CERTIFY | Cleanup.bit();
const BURN: u16 = TIMER | ReplicatedQuery.bit();
const CERTIFICATE: u16 = set(&[Query, CompositeQuery]);
/// Where calls may be made (`call_new` and the rest).
const CALL: u16 = set(&[
    Update,
    CompositeQuery,
    ReplyCallback,
    RejectCallback,
    CompositeReplyCallback,
    CompositeRejectCallback,
    SystemTask,
]);
/// Where cycles may be attached to a call: not in composite queries.
const CALL_CYCLES: u16 = set(&[Update, ReplyCallback, RejectCallback, SystemTask]);

fn allow(c: &mut C, name: &str, contexts: u16) -> R<()> {
    let context = c.data().context;
    if contexts & context.bit() == 0 {
        return Err(c.data_mut().violation(format!(
            "\"ic0_{name}\" cannot be executed in {} mode",
            context.name()
        )));
    }
    Ok(())
}

fn memory(c: &mut C) -> R<wasmtime::Memory> {
    match c.data().memory {
        Some(memory) => Ok(memory),
        None => Err(c
            .data_mut()
            .violation("the System API needs a memory but the module has none")),
    }
}

/// Copies `src(env)[offset..offset+size]` into canister memory at `dst` (the spec's blob idiom).
fn copy_out(
    c: &mut C,
    name: &str,
    dst: u64,
    offset: u64,
    size: u64,
    src: fn(&Env) -> &[u8],
) -> R<()> {
    let memory = memory(c)?;
    let (heap, env) = memory.data_and_store_mut(&mut *c);
    let source = src(env);
    let from = offset
        .checked_add(size)
        .filter(|end| *end <= source.len() as u64);
    let to = dst
        .checked_add(size)
        .filter(|end| *end <= heap.len() as u64);
    match (from, to) {
        (Some(end), Some(_)) => {
            heap[dst as usize..(dst + size) as usize]
                .copy_from_slice(&source[offset as usize..end as usize]);
            Ok(())
        }
        (None, _) => Err(env.violation(format!(
            "ic0.{name}: offset {offset} + size {size} is past the end of the source ({} bytes)",
            source.len()
        ))),
        (_, None) => Err(env.trap(Reject::new(
            ErrorCode::CanisterTrapped,
            format!("ic0.{name}: heap out of bounds (destination {dst} + size {size})"),
        ))),
    }
}

/// Reads `size` bytes of canister memory at `src`.
fn copy_in(c: &mut C, name: &str, src: u64, size: u64) -> R<Vec<u8>> {
    let memory = memory(c)?;
    let (heap, env) = memory.data_and_store_mut(&mut *c);
    match src
        .checked_add(size)
        .filter(|end| *end <= heap.len() as u64)
    {
        Some(end) => Ok(heap[src as usize..end as usize].to_vec()),
        None => Err(env.trap(Reject::new(
            ErrorCode::CanisterTrapped,
            format!("ic0.{name}: heap out of bounds (source {src} + size {size})"),
        ))),
    }
}

fn write_u128(c: &mut C, name: &str, dst: u64, value: u128) -> R<()> {
    let memory = memory(c)?;
    let (heap, env) = memory.data_and_store_mut(&mut *c);
    match heap.get_mut(dst as usize..(dst as usize).saturating_add(16)) {
        Some(slot) if dst.checked_add(16).is_some() => {
            slot.copy_from_slice(&value.to_le_bytes());
            Ok(())
        }
        _ => Err(env.trap(Reject::new(
            ErrorCode::CanisterTrapped,
            format!("ic0.{name}: heap out of bounds (destination {dst})"),
        ))),
    }
}

/// Defines every `ic0` function for pointer width `P`; returns their names.
pub fn define<P: Ptr>(linker: &mut Linker<Env>, memory64: bool) -> R<Vec<&'static str>> {
    let mut names = Vec::new();
    let mut f = |name: &'static str| {
        names.push(name);
        name
    };

    define_blob::<P>(
        linker,
        &mut f,
        ("msg_arg_data_size", "msg_arg_data_copy"),
        ARG,
        |e| &e.arg,
    )?;
    define_blob::<P>(
        linker,
        &mut f,
        ("msg_caller_size", "msg_caller_copy"),
        ANY,
        |e| e.caller.as_slice(),
    )?;
    linker.func_wrap("ic0", f("msg_reject_code"), |mut c: C| -> R<i32> {
        allow(&mut c, "msg_reject_code", REJECT_CODE)?;
        Ok(c.data()
            .incoming
            .reject
            .as_ref()
            .map_or(0, |(code, _)| *code as i32))
    })?;
    define_blob::<P>(
        linker,
        &mut f,
        ("msg_reject_msg_size", "msg_reject_msg_copy"),
        REJECT_MESSAGE,
        |e| reject_message(e).as_bytes(),
    )?;
    linker.func_wrap("ic0", f("msg_deadline"), |mut c: C| -> R<i64> {
        allow(&mut c, "msg_deadline", DEADLINE)?;
        Ok(c.data().incoming.deadline as i64)
    })?;
    linker.func_wrap(
        "ic0",
        f("msg_reply_data_append"),
        |mut c: C, src: P, size: P| {
            allow(&mut c, "msg_reply_data_append", REPLY)?;
            not_answered(&mut c, "msg_reply_data_append")?;
            let data = copy_in(&mut c, "msg_reply_data_append", src.get(), size.get())?;
            let env = c.data_mut();
            let max = env.context.max_reply_bytes();
            if env.reply_buffer.len() + data.len() > max {
                return Err(env.trap(Reject::new(
                    ErrorCode::CanisterContractViolation,
                    format!("Canister violated contract: ic0.msg_reply_data_append: the reply exceeds the limit of {max} bytes"),
                )));
            }
            env.reply_buffer.extend_from_slice(&data);
            Ok(())
        },
    )?;
    linker.func_wrap("ic0", f("msg_reply"), |mut c: C| {
        allow(&mut c, "msg_reply", REPLY)?;
        not_answered(&mut c, "msg_reply")?;
        let env = c.data_mut();
        env.response = Some(Response::Reply(std::mem::take(&mut env.reply_buffer)));
        Ok(())
    })?;
    linker.func_wrap("ic0", f("msg_reject"), |mut c: C, src: P, size: P| {
        allow(&mut c, "msg_reject", REPLY)?;
        not_answered(&mut c, "msg_reject")?;
        let bytes = copy_in(&mut c, "msg_reject", src.get(), size.get())?;
        let env = c.data_mut();
        match String::from_utf8(bytes) {
            Ok(message) => {
                env.response = Some(Response::Reject(message));
                Ok(())
            }
            Err(_) => Err(env.violation("ic0.msg_reject: the message is not valid UTF-8")),
        }
    })?;
    define_blob::<P>(
        linker,
        &mut f,
        ("msg_method_name_size", "msg_method_name_copy"),
        INSPECT,
        |e| e.method.as_bytes(),
    )?;
    linker.func_wrap("ic0", f("accept_message"), |mut c: C| {
        allow(&mut c, "accept_message", INSPECT)?;
        let env = c.data_mut();
        if env.accepted {
            return Err(env.violation("ic0.accept_message called twice"));
        }
        env.accepted = true;
        Ok(())
    })?;

    // Identity, status and environment.
    define_blob::<P>(
        linker,
        &mut f,
        ("canister_self_size", "canister_self_copy"),
        ANY,
        |e| e.canister_id.as_slice(),
    )?;
    define_blob::<P>(
        linker,
        &mut f,
        ("subnet_self_size", "subnet_self_copy"),
        ANY,
        |e| e.subnet_id.as_slice(),
    )?;
    linker.func_wrap("ic0", f("canister_status"), |mut c: C| -> R<i32> {
        allow(&mut c, "canister_status", ANY)?;
        Ok(c.data().status as i32)
    })?;
    linker.func_wrap("ic0", f("canister_version"), |mut c: C| -> R<i64> {
        allow(&mut c, "canister_version", ANY)?;
        Ok(c.data().version as i64)
    })?;
    linker.func_wrap("ic0", f("time"), |mut c: C| -> R<i64> {
        allow(&mut c, "time", ANY)?;
        Ok(c.data().time as i64)
    })?;
    linker.func_wrap(
        "ic0",
        f("performance_counter"),
        |mut c: C, counter: i32| -> R<i64> {
            allow(&mut c, "performance_counter", ANY_S)?;
            if !(0..=1).contains(&counter) {
                return Err(c.data_mut().violation(format!(
                    "ic0.performance_counter: unknown counter type {counter}"
                )));
            }
            let limit = c.data().context.instruction_limit();
            Ok(limit.saturating_sub(c.get_fuel()?) as i64)
        },
    )?;
    linker.func_wrap(
        "ic0",
        f("is_controller"),
        |mut c: C, src: P, size: P| -> R<i32> {
            allow(&mut c, "is_controller", ANY_S)?;
            let bytes = copy_in(&mut c, "is_controller", src.get(), size.get())?;
            let env = c.data_mut();
            match Principal::try_from_slice(&bytes) {
                Ok(principal) => Ok(env.controllers.contains(&principal) as i32),
                Err(_) => {
                    Err(env.violation("ic0.is_controller: the argument is not a valid principal"))
                }
            }
        },
    )?;
    linker.func_wrap("ic0", f("in_replicated_execution"), |mut c: C| -> R<i32> {
        allow(&mut c, "in_replicated_execution", ANY_S)?;
        Ok(c.data().context.replicated() as i32)
    })?;

    // Cycles: balances change by what calls carry, what is accepted and burned, and call
    // fees; executions themselves are not charged (docs/cycles.md).
    linker.func_wrap("ic0", f("canister_cycle_balance128"), |mut c: C, dst: P| {
        allow(&mut c, "canister_cycle_balance128", ANY)?;
        let cycles = c.data().cycles;
        write_u128(&mut c, "canister_cycle_balance128", dst.get(), cycles)
    })?;
    linker.func_wrap(
        "ic0",
        f("canister_liquid_cycle_balance128"),
        |mut c: C, dst: P| {
            allow(&mut c, "canister_liquid_cycle_balance128", ANY)?;
            let cycles = c.data().cycles;
            write_u128(
                &mut c,
                "canister_liquid_cycle_balance128",
                dst.get(),
                cycles,
            )
        },
    )?;
    linker.func_wrap("ic0", f("msg_cycles_available128"), |mut c: C, dst: P| {
        allow(&mut c, "msg_cycles_available128", CYCLES)?;
        let available = available(c.data());
        write_u128(&mut c, "msg_cycles_available128", dst.get(), available)
    })?;
    linker.func_wrap("ic0", f("msg_cycles_refunded128"), |mut c: C, dst: P| {
        allow(&mut c, "msg_cycles_refunded128", REFUNDED)?;
        let refunded = c.data().incoming.refunded;
        write_u128(&mut c, "msg_cycles_refunded128", dst.get(), refunded)
    })?;
    linker.func_wrap(
        "ic0",
        f("msg_cycles_accept128"),
        |mut c: C, high: i64, low: i64, dst: P| {
            allow(&mut c, "msg_cycles_accept128", CYCLES)?;
            let accepted = accept(c.data_mut(), u128_of(high, low));
            write_u128(&mut c, "msg_cycles_accept128", dst.get(), accepted)
        },
    )?;
    linker.func_wrap(
        "ic0",
        f("cycles_burn128"),
        |mut c: C, high: i64, low: i64, dst: P| {
            allow(&mut c, "cycles_burn128", BURN)?;
            let wanted = u128_of(high, low);
            let env = c.data_mut();
            let burnt = wanted.min(env.cycles);
            env.cycles -= burnt;
            write_u128(&mut c, "cycles_burn128", dst.get(), burnt)
        },
    )?;

    // Certification and the timer.
    linker.func_wrap(
        "ic0",
        f("certified_data_set"),
        |mut c: C, src: P, size: P| {
            allow(&mut c, "certified_data_set", CERTIFY)?;
            if size.get() > 32 {
                return Err(c.data_mut().violation(format!(
                    "ic0.certified_data_set: {} bytes is more than the 32 allowed",
                    size.get()
                )));
            }
            let data = copy_in(&mut c, "certified_data_set", src.get(), size.get())?;
            c.data_mut().certified_data = data;
            Ok(())
        },
    )?;
    linker.func_wrap("ic0", f("data_certificate_present"), |mut c: C| -> R<i32> {
        allow(&mut c, "data_certificate_present", ANY)?;
        Ok(c.data().data_certificate.is_some() as i32)
    })?;
    define_blob::<P>(
        linker,
        &mut f,
        ("data_certificate_size", "data_certificate_copy"),
        CERTIFICATE,
        |e| e.data_certificate.as_deref().unwrap_or_default(),
    )?;
    linker.func_wrap(
        "ic0",
        f("global_timer_set"),
        |mut c: C, time: i64| -> R<i64> {
            allow(&mut c, "global_timer_set", TIMER)?;
            let env = c.data_mut();
            Ok(std::mem::replace(&mut env.global_timer, time as u64) as i64)
        },
    )?;

    // Logs and traps.
    linker.func_wrap("ic0", f("debug_print"), |mut c: C, src: P, size: P| {
        allow(&mut c, "debug_print", ANY_S)?;
        let content = copy_in(&mut c, "debug_print", src.get(), size.get())?;
        let env = c.data_mut();
        env.logs.push(LogLine {
            timestamp: env.time,
            content,
        });
        Ok(())
    })?;
    linker.func_wrap("ic0", f("trap"), |mut c: C, src: P, size: P| -> R<()> {
        allow(&mut c, "trap", ANY_S)?;
        let bytes = copy_in(&mut c, "trap", src.get(), size.get())?;
        let message = String::from_utf8_lossy(&bytes);
        let env = c.data_mut();
        Err(env.trap(Reject::new(
            ErrorCode::CanisterCalledTrap,
            format!(
                "Error from Canister {}: Canister called `ic0.trap` with message: '{message}'.",
                env.canister_id
            ),
        )))
    })?;

    define_stable(linker, &mut f)?;
    define_costs::<P>(linker, &mut f)?;
    define_calls::<P>(linker, &mut f)?;
    if !memory64 {
        define_wasm32_only(linker, &mut f)?;
    }
    Ok(names)
}

/// Defines a `*_size` / `*_copy` pair for the blob `source` gives (the spec's blob idiom),
/// allowed in `contexts`.
fn define_blob<P: Ptr>(
    linker: &mut Linker<Env>,
    f: &mut impl FnMut(&'static str) -> &'static str,
    (size, copy): (&'static str, &'static str),
    contexts: u16,
    source: fn(&Env) -> &[u8],
) -> R<()> {
    linker.func_wrap("ic0", f(size), move |mut c: C| -> R<P> {
        allow(&mut c, size, contexts)?;
        Ok(P::of(source(c.data()).len() as u64))
    })?;
    linker.func_wrap(
        "ic0",
        f(copy),
        move |mut c: C, dst: P, offset: P, length: P| {
            allow(&mut c, copy, contexts)?;
            copy_out(&mut c, copy, dst.get(), offset.get(), length.get(), source)
        },
    )?;
    Ok(())
}

fn reject_message(env: &Env) -> &str {
    env.incoming.reject.as_ref().map_or("", |(_, m)| m.as_str())
}

fn not_answered(c: &mut C, name: &str) -> R<()> {
    if c.data().response.is_some() || c.data().incoming.responded {
        return Err(c
            .data_mut()
            .violation(format!("ic0.{name}: the call was already answered")));
    }
    Ok(())
}

/// 64-bit stable memory, available to every canister.
fn define_stable(
    linker: &mut Linker<Env>,
    f: &mut impl FnMut(&'static str) -> &'static str,
) -> R<()> {
    linker.func_wrap("ic0", f("stable64_size"), |mut c: C| -> R<i64> {
        allow(&mut c, "stable64_size", ANY_S)?;
        Ok(c.data().stable.pages() as i64)
    })?;
    linker.func_wrap(
        "ic0",
        f("stable64_grow"),
        |mut c: C, pages: i64| -> R<i64> {
            allow(&mut c, "stable64_grow", ANY_S)?;
            Ok(grow_stable(c.data_mut(), pages as u64, MAX_PAGES))
        },
    )?;
    linker.func_wrap(
        "ic0",
        f("stable64_write"),
        |mut c: C, offset: i64, src: i64, size: i64| {
            allow(&mut c, "stable64_write", ANY_S)?;
            stable_write(
                &mut c,
                "stable64_write",
                offset as u64,
                src as u64,
                size as u64,
            )
        },
    )?;
    linker.func_wrap(
        "ic0",
        f("stable64_read"),
        |mut c: C, dst: i64, offset: i64, size: i64| {
            allow(&mut c, "stable64_read", ANY_S)?;
            stable_read(
                &mut c,
                "stable64_read",
                dst as u64,
                offset as u64,
                size as u64,
            )
        },
    )?;
    Ok(())
}

fn grow_stable(env: &mut Env, pages: u64, max_pages: u64) -> i64 {
    let replicated = env.context.replicated();
    env.stable
        .grow(pages, max_pages, replicated)
        .map_or(-1, |old| old as i64)
}

fn stable_write(c: &mut C, name: &str, offset: u64, src: u64, size: u64) -> R<()> {
    let data = copy_in(c, name, src, size)?;
    let env = c.data_mut();
    if !env.stable.write(offset, &data) {
        return Err(env.trap(Reject::new(
            ErrorCode::CanisterTrapped,
            format!("ic0.{name}: stable memory out of bounds (offset {offset} + size {size})"),
        )));
    }
    Ok(())
}

fn stable_read(c: &mut C, name: &str, dst: u64, offset: u64, size: u64) -> R<()> {
    let memory = memory(c)?;
    let (heap, env) = memory.data_and_store_mut(&mut *c);
    let Some(source) = env.stable.read(offset, size) else {
        return Err(env.trap(Reject::new(
            ErrorCode::CanisterTrapped,
            format!("ic0.{name}: stable memory out of bounds (offset {offset} + size {size})"),
        )));
    };
    match heap.get_mut(dst as usize..(dst as usize).saturating_add(size as usize)) {
        Some(target) if target.len() as u64 == size => {
            target.copy_from_slice(source);
            Ok(())
        }
        _ => Err(env.trap(Reject::new(
            ErrorCode::CanisterTrapped,
            format!("ic0.{name}: heap out of bounds (destination {dst} + size {size})"),
        ))),
    }
}

/// Costs as on a 13-node application subnet (IC interface spec, "Cycles costs").
fn define_costs<P: Ptr>(
    linker: &mut Linker<Env>,
    f: &mut impl FnMut(&'static str) -> &'static str,
) -> R<()> {
    linker.func_wrap(
        "ic0",
        f("cost_call"),
        |mut c: C, method_size: i64, payload_size: i64, dst: P| {
            allow(&mut c, "cost_call", ANY_S)?;
            let cost = call_fee(method_size as u64, payload_size as u64);
            write_u128(&mut c, "cost_call", dst.get(), cost)
        },
    )?;
    linker.func_wrap("ic0", f("cost_create_canister"), |mut c: C, dst: P| {
        allow(&mut c, "cost_create_canister", ANY_S)?;
        write_u128(&mut c, "cost_create_canister", dst.get(), 500_000_000_000)
    })?;
    linker.func_wrap(
        "ic0",
        f("cost_http_request"),
        |mut c: C, request_size: i64, max_response: i64, dst: P| {
            allow(&mut c, "cost_http_request", ANY_S)?;
            let n = 13u128;
            let cost = (3_000_000 + 60_000 * n) * n
                + 400 * n * u128::from(request_size as u64)
                + 800 * n * u128::from(max_response as u64);
            write_u128(&mut c, "cost_http_request", dst.get(), cost)
        },
    )?;
    // This subnet holds no threshold keys, so every key name is unknown (result 2).
    for name in [
        "cost_sign_with_ecdsa",
        "cost_sign_with_schnorr",
        "cost_vetkd_derive_key",
    ] {
        linker.func_wrap(
            "ic0",
            f(name),
            move |mut c: C, _src: P, _size: P, _curve: i32, _dst: P| -> R<i32> {
                allow(&mut c, name, ANY_S)?;
                Ok(2)
            },
        )?;
    }
    Ok(())
}

/// Calls to canisters and the management canister (IC interface spec, "Inter-canister
/// method calls"): built by `call_new` … `call_perform`, sent when the execution succeeds.
fn define_calls<P: Ptr>(
    linker: &mut Linker<Env>,
    f: &mut impl FnMut(&'static str) -> &'static str,
) -> R<()> {
    linker.func_wrap(
        "ic0",
        f("call_new"),
        |mut c: C,
         callee_src: P,
         callee_size: P,
         name_src: P,
         name_size: P,
         reply_fun: P,
         reply_env: P,
         reject_fun: P,
         reject_env: P|
         -> R<()> {
            allow(&mut c, "call_new", CALL)?;
            let callee = copy_in(&mut c, "call_new", callee_src.get(), callee_size.get())?;
            if name_size.get() > MAX_METHOD_NAME_BYTES as u64 {
                return Err(c.data_mut().violation(format!(
                    "ic0.call_new: Size of method_name {} exceeds the allowed limit of {MAX_METHOD_NAME_BYTES}.",
                    name_size.get()
                )));
            }
            let name = copy_in(&mut c, "call_new", name_src.get(), name_size.get())?;
            let env = c.data_mut();
            let Ok(callee) = Principal::try_from_slice(&callee) else {
                return Err(env.violation("ic0.call_new: the callee is not a valid principal"));
            };
            let Ok(method) = String::from_utf8(name) else {
                return Err(env.violation("ic0.call_new: the method name is not valid UTF-8"));
            };
            // A call begun and never performed is dropped, and its cycles come back.
            discard_pending(env);
            let closure = |fun: P, env: P| Closure {
                fun: fun.get(),
                env: env.get(),
            };
            env.pending_call = Some(OutgoingCall::new(
                callee,
                method,
                closure(reply_fun, reply_env),
                closure(reject_fun, reject_env),
            ));
            Ok(())
        },
    )?;
    linker.func_wrap(
        "ic0",
        f("call_on_cleanup"),
        |mut c: C, fun: P, env: P| -> R<()> {
            allow(&mut c, "call_on_cleanup", CALL)?;
            let call = pending(&mut c, "call_on_cleanup")?;
            if call.cleanup.is_some() {
                return Err(c
                    .data_mut()
                    .violation("ic0.call_on_cleanup can be called only once per call"));
            }
            call.cleanup = Some(Closure {
                fun: fun.get(),
                env: env.get(),
            });
            Ok(())
        },
    )?;
    linker.func_wrap(
        "ic0",
        f("call_data_append"),
        |mut c: C, src: P, size: P| -> R<()> {
            allow(&mut c, "call_data_append", CALL)?;
            pending(&mut c, "call_data_append")?;
            let data = copy_in(&mut c, "call_data_append", src.get(), size.get())?;
            let call = pending(&mut c, "call_data_append")?;
            let total = call.bytes() + data.len();
            if total > MAX_CALL_BYTES {
                let (callee, method) = (call.callee, call.method.clone());
                return Err(c.data_mut().violation(format!(
                    "ic0.call_data_append: Request to {callee}:{method} has a payload size of {total}, which exceeds the allowed limit of {MAX_CALL_BYTES}."
                )));
            }
            call.arg.extend_from_slice(&data);
            Ok(())
        },
    )?;
    linker.func_wrap(
        "ic0",
        f("call_with_best_effort_response"),
        |mut c: C, timeout: i32| -> R<()> {
            allow(&mut c, "call_with_best_effort_response", CALL)?;
            let call = pending(&mut c, "call_with_best_effort_response")?;
            if call.timeout_seconds.is_some() {
                return Err(c.data_mut().violation(
                    "ic0.call_with_best_effort_response can be called only once per call",
                ));
            }
            call.timeout_seconds = Some((timeout as u32).min(MAX_CALL_TIMEOUT_SECONDS));
            Ok(())
        },
    )?;
    linker.func_wrap(
        "ic0",
        f("call_cycles_add128"),
        |mut c: C, high: i64, low: i64| -> R<()> {
            allow(&mut c, "call_cycles_add128", CALL_CYCLES)?;
            add_cycles(&mut c, "call_cycles_add128", u128_of(high, low))
        },
    )?;
    linker.func_wrap("ic0", f("call_perform"), |mut c: C| -> R<i32> {
        allow(&mut c, "call_perform", CALL)?;
        pending(&mut c, "call_perform")?;
        let env = c.data_mut();
        let call = env.pending_call.take().expect("checked above");
        let fee = call_fee(call.method.len() as u64, call.arg.len() as u64);
        // IC interface spec, "ic0.call_perform": a call the caller cannot pay for is not
        // sent, its cycles come back, and the result is the SYS_TRANSIENT code.
        if env.cycles < fee {
            env.cycles += call.cycles;
            return Ok(RejectCode::SysTransient as i32);
        }
        env.cycles -= fee;
        env.fees += fee;
        env.calls.push(call);
        Ok(0)
    })?;
    Ok(())
}

/// The call under construction, or a trap when there is none.
fn pending<'c>(c: &'c mut C, name: &str) -> R<&'c mut OutgoingCall> {
    if c.data().pending_call.is_none() {
        return Err(c.data_mut().violation(format!(
            "ic0.{name} called when no call is under construction."
        )));
    }
    Ok(c.data_mut().pending_call.as_mut().expect("checked above"))
}

fn discard_pending(env: &mut Env) {
    if let Some(call) = env.pending_call.take() {
        env.cycles += call.cycles;
    }
}

/// Moves `amount` from the balance onto the call under construction.
fn add_cycles(c: &mut C, name: &str, amount: u128) -> R<()> {
    pending(c, name)?;
    let env = c.data_mut();
    if amount > env.cycles {
        let balance = env.cycles;
        return Err(env.trap(Reject::new(
            ErrorCode::CanisterOutOfCycles,
            format!(
                "Canister {} is out of cycles: ic0.{name} asked for {amount} cycles, more than its balance of {balance}.",
                env.canister_id
            ),
        )));
    }
    env.cycles -= amount;
    env.pending_call.as_mut().expect("checked above").cycles += amount;
    Ok(())
}

/// Cycles of the incoming call still to accept: none once the call is answered.
fn available(env: &Env) -> u128 {
    if env.response.is_some() || env.incoming.responded {
        0
    } else {
        env.incoming.available
    }
}

fn accept(env: &mut Env, max: u128) -> u128 {
    let accepted = max.min(available(env));
    env.incoming.available -= accepted;
    env.cycles += accepted;
    accepted
}

fn u128_of(high: i64, low: i64) -> u128 {
    (u128::from(high as u64) << 64) | u128::from(low as u64)
}

fn low_64(amount: u128) -> i64 {
    amount.min(u128::from(u64::MAX)) as u64 as i64
}

/// Imports the IC still accepts from wasm32 modules: 32-bit stable memory (bounded to
/// 4 GiB) and 64-bit cycle amounts.
fn define_wasm32_only(
    linker: &mut Linker<Env>,
    f: &mut impl FnMut(&'static str) -> &'static str,
) -> R<()> {
    const MAX_PAGES_32: u64 = (1 << 32) / PAGE;
    fn too_big(c: &mut C, name: &str) -> R<()> {
        if c.data().stable.pages() > MAX_PAGES_32 {
            return Err(c.data_mut().trap(Reject::new(
                ErrorCode::CanisterTrapped,
                format!("ic0.{name}: stable memory is over 4 GiB; use the stable64 functions"),
            )));
        }
        Ok(())
    }
    linker.func_wrap("ic0", f("stable_size"), |mut c: C| -> R<i32> {
        allow(&mut c, "stable_size", ANY_S)?;
        too_big(&mut c, "stable_size")?;
        Ok(c.data().stable.pages() as i32)
    })?;
    linker.func_wrap("ic0", f("stable_grow"), |mut c: C, pages: i32| -> R<i32> {
        allow(&mut c, "stable_grow", ANY_S)?;
        too_big(&mut c, "stable_grow")?;
        Ok(grow_stable(c.data_mut(), u64::from(pages as u32), MAX_PAGES_32) as i32)
    })?;
    linker.func_wrap(
        "ic0",
        f("stable_write"),
        |mut c: C, offset: i32, src: i32, size: i32| {
            allow(&mut c, "stable_write", ANY_S)?;
            too_big(&mut c, "stable_write")?;
            stable_write(&mut c, "stable_write", offset.get(), src.get(), size.get())
        },
    )?;
    linker.func_wrap(
        "ic0",
        f("stable_read"),
        |mut c: C, dst: i32, offset: i32, size: i32| {
            allow(&mut c, "stable_read", ANY_S)?;
            too_big(&mut c, "stable_read")?;
            stable_read(&mut c, "stable_read", dst.get(), offset.get(), size.get())
        },
    )?;
    linker.func_wrap("ic0", f("canister_cycle_balance"), |mut c: C| -> R<i64> {
        allow(&mut c, "canister_cycle_balance", ANY)?;
        Ok(c.data().cycles.min(u128::from(u64::MAX)) as i64)
    })?;
    linker.func_wrap("ic0", f("msg_cycles_available"), |mut c: C| -> R<i64> {
        allow(&mut c, "msg_cycles_available", CYCLES)?;
        Ok(low_64(available(c.data())))
    })?;
    linker.func_wrap("ic0", f("msg_cycles_refunded"), |mut c: C| -> R<i64> {
        allow(&mut c, "msg_cycles_refunded", REFUNDED)?;
        Ok(low_64(c.data().incoming.refunded))
    })?;
    linker.func_wrap(
        "ic0",
        f("msg_cycles_accept"),
        |mut c: C, max: i64| -> R<i64> {
            allow(&mut c, "msg_cycles_accept", CYCLES)?;
            Ok(accept(c.data_mut(), u128::from(max as u64)) as i64)
        },
    )?;
    linker.func_wrap(
        "ic0",
        f("call_cycles_add"),
        |mut c: C, amount: i64| -> R<()> {
            allow(&mut c, "call_cycles_add", CALL_CYCLES)?;
            add_cycles(&mut c, "call_cycles_add", u128::from(amount as u64))
        },
    )?;
    Ok(())
}

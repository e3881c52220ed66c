//! The relay: a canister that calls other canisters, itself and the management canister
//! through ic-cdk's own call API (`ic_cdk::call::Call`) and ic-cdk-timers, for the replica's
//! tests of the IC's message model. One module, many roles: caller, callee, link of a chain,
//! timer owner, and a backup agent that snapshots and restores a canister it controls.

mod agent;

use std::cell::RefCell;
use std::time::Duration;

use candid::{CandidType, Deserialize, Principal};
use ic_cdk::call::{Call, CallFailed};
use ic_cdk::{api, query, update};

thread_local! {
    static COUNT: RefCell<u64> = const { RefCell::new(0) };
    static RECORDS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    static FIRED: RefCell<u64> = const { RefCell::new(0) };
}

/// How a call ended, as the calling canister saw it.
#[derive(CandidType, Deserialize, Debug, PartialEq, Eq)]
pub enum Outcome {
    Reply(Vec<u8>),
    Reject { code: u32, message: String },
    NotSent(String),
}

/// What a forwarded call came back with.
#[derive(CandidType, Deserialize, Debug)]
pub struct Forwarded {
    pub outcome: Outcome,
    pub refunded: u128,
    pub balance_after: u128,
}

fn outcome(result: Result<ic_cdk::call::Response, CallFailed>) -> Outcome {
    match result {
        Ok(response) => Outcome::Reply(response.into_bytes()),
        Err(CallFailed::CallRejected(rejected)) => Outcome::Reject {
            code: rejected.raw_reject_code(),
            message: rejected.reject_message().to_owned(),
        },
        Err(other) => Outcome::NotSent(other.to_string()),
    }
}

/// Calls `method` of `target` with the raw argument `arg` and `cycles` attached.
#[update]
async fn forward(target: Principal, method: String, arg: Vec<u8>, cycles: u128) -> Forwarded {
    let call = Call::unbounded_wait(target, &method)
        .with_raw_args(&arg)
        .with_cycles(cycles);
    let outcome = outcome(call.await);
    Forwarded {
        outcome,
        refunded: api::msg_cycles_refunded(),
        balance_after: api::canister_cycle_balance(),
    }
}

/// The same as a bounded-wait call of at most `timeout_seconds`.
#[update]
async fn forward_bounded(
    target: Principal,
    method: String,
    arg: Vec<u8>,
    timeout_seconds: u32,
) -> Outcome {
    let call = Call::bounded_wait(target, &method)
        .with_raw_args(&arg)
        .change_timeout(timeout_seconds);
    outcome(call.await)
}

/// The deadline of the call being answered: 0 for ingress and unbounded-wait calls.
#[update]
fn deadline() -> u64 {
    api::msg_deadline().map_or(0, |deadline| deadline.get())
}

/// The same from a query method, where it is always 0.
#[query]
fn deadline_in_query() -> u64 {
    api::msg_deadline().map_or(0, |deadline| deadline.get())
}

/// Passes `text` along `hops` (A → B → C …); the last one answers, and each adds its mark.
#[update]
async fn chain(hops: Vec<Principal>, text: String) -> String {
    let here = format!("{text}>{}", short(api::canister_self()));
    let Some((next, rest)) = hops.split_first() else {
        return here;
    };
    let reply = Call::unbounded_wait(*next, "chain")
        .with_args(&(rest.to_vec(), here))
        .await
        .unwrap_or_else(|e| api::trap(format!("the chain broke at {next}: {e}")));
    reply.candid::<String>().expect("a text")
}

fn short(id: Principal) -> String {
    id.to_text().chars().take(5).collect()
}

/// Accepts at most `max` of the cycles that came with the call.
#[update]
fn accept(max: u128) -> u128 {
    api::msg_cycles_accept(max)
}

#[update]
fn fail(message: String) {
    api::trap(message)
}

/// Returns without answering: the system answers for it.
#[update(manual_reply = true)]
fn silent() {}

#[update]
fn count() -> u64 {
    COUNT.with_borrow_mut(|c| {
        *c += 1;
        *c
    })
}

#[query]
fn counter() -> u64 {
    COUNT.with_borrow(|c| *c)
}

/// Calls its own `count` `times` times, one after another.
#[update]
async fn count_by_self_calls(times: u32) -> u64 {
    for _ in 0..times {
        Call::unbounded_wait(api::canister_self(), "count")
            .await
            .unwrap_or_else(|e| api::trap(format!("a self-call failed: {e}")));
    }
    counter()
}

/// Calls `count` of `target` `times` times, one after another: round trips to measure.
#[update]
async fn count_on(target: Principal, times: u32) -> u64 {
    let mut last = 0;
    for _ in 0..times {
        last = Call::unbounded_wait(target, "count")
            .await
            .unwrap_or_else(|e| api::trap(format!("count failed: {e}")))
            .candid::<u64>()
            .unwrap_or_else(|e| api::trap(format!("count answered no nat64: {e}")));
    }
    last
}

/// Sends `record(i)` to `target` for i in 0..n, all performed before any is answered.
#[update]
async fn record_in_order(target: Principal, n: u32) {
    let tags: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    // Polled together, every call is performed before the first answer comes.
    let calls = tags.iter().map(|tag| {
        Call::unbounded_wait(target, "record")
            .with_arg(tag.clone())
            .into_future()
    });
    for result in futures::future::join_all(calls).await {
        result.unwrap_or_else(|e| api::trap(format!("record failed: {e}")));
    }
}

#[update]
fn record(tag: String) {
    RECORDS.with_borrow_mut(|r| r.push(format!("{tag} from {}", short(api::msg_caller()))));
}

#[query]
fn records() -> Vec<String> {
    RECORDS.with_borrow(Clone::clone)
}

/// Sets an ic-cdk-timers timer that fires after `delay_seconds` (run as a self-call).
#[update]
fn set_timer(delay_seconds: u64) {
    ic_cdk_timers::set_timer(Duration::from_secs(delay_seconds), async {
        FIRED.with_borrow_mut(|f| *f += 1);
    });
}

#[query]
fn timers_fired() -> u64 {
    FIRED.with_borrow(|f| *f)
}

#[query]
fn balance() -> u128 {
    api::canister_cycle_balance()
}

/// 32 random bytes from the management canister.
#[update]
async fn random() -> Vec<u8> {
    Call::bounded_wait(Principal::management_canister(), "raw_rand")
        .await
        .unwrap_or_else(|e| api::trap(format!("raw_rand failed: {e}")))
        .candid::<Vec<u8>>()
        .unwrap_or_else(|e| api::trap(format!("raw_rand answered no blob: {e}")))
}

/// Adds up `counter` of each of `targets`, read one after another in a composite query.
#[query(composite = true)]
async fn sum_counters(targets: Vec<Principal>) -> u64 {
    let mut sum = 0;
    for target in targets {
        sum += Call::unbounded_wait(target, "counter")
            .await
            .unwrap_or_else(|e| api::trap(format!("counter of {target} failed: {e}")))
            .candid::<u64>()
            .unwrap_or_else(|e| api::trap(format!("counter answered no nat64: {e}")));
    }
    sum
}

/// Goes through `hops` by composite queries; the last answers its own counter.
#[query(composite = true)]
async fn deep(hops: Vec<Principal>) -> u64 {
    let Some((next, rest)) = hops.split_first() else {
        return counter();
    };
    Call::unbounded_wait(*next, "deep")
        .with_arg(rest.to_vec())
        .await
        .unwrap_or_else(|e| api::trap(format!("deep failed at {next}: {e}")))
        .candid::<u64>()
        .unwrap_or_else(|e| api::trap(format!("deep answered no nat64: {e}")))
}

//! Calls as one canister sees them (IC interface spec, "Abstract behaviour": call contexts,
//! callbacks, "Message execution"): the calls its executions make, the call contexts of the
//! calls it is answering, and the callbacks waiting for answers to the calls it made.

use std::collections::BTreeMap;

use candid::Principal;
use serde::{Deserialize, Serialize};

/// Largest method name of a call (`call_new`), as the IC's replica allows.
pub const MAX_METHOD_NAME_BYTES: usize = 20_000;
/// Largest method name plus argument of a call to a canister of the same subnet.
pub const MAX_CALL_BYTES: usize = 10 * 1024 * 1024;
/// Longest a bounded-wait call may wait (`MAX_CALL_TIMEOUT`), in seconds.
pub const MAX_CALL_TIMEOUT_SECONDS: u32 = 300;

/// A function of the canister's table and the value it is called with (`reply_fun` and
/// `reply_env` of `call_new`, or those of `call_on_cleanup`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closure {
    pub fun: u64,
    pub env: u64,
}

/// A call made with `call_new` … `call_perform`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingCall {
    pub callee: Principal,
    pub method: String,
    #[serde(with = "serde_bytes")]
    pub arg: Vec<u8>,
    pub cycles: u128,
    pub reply: Closure,
    pub reject: Closure,
    pub cleanup: Option<Closure>,
    /// Set for a bounded-wait (best-effort) call: seconds it waits at most.
    pub timeout_seconds: Option<u32>,
}

impl OutgoingCall {
    pub fn new(callee: Principal, method: String, reply: Closure, reject: Closure) -> Self {
        Self {
            callee,
            method,
            arg: Vec::new(),
            cycles: 0,
            reply,
            reject,
            cleanup: None,
            timeout_seconds: None,
        }
    }

    /// Bytes the call carries: what the IC's call fee and size limit count.
    pub fn bytes(&self) -> usize {
        self.method.len() + self.arg.len()
    }
}

/// The fee a call costs its caller, as `ic0.cost_call` reports it (IC interface spec,
/// "Cycles costs", a 13-node subnet): burned when the call is performed.
pub fn call_fee(method_bytes: u64, arg_bytes: u64) -> u128 {
    260_000 + 1_000 * u128::from(method_bytes.saturating_add(arg_bytes))
}

/// Who waits for the answer of a call context.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    /// An ingress message, by its number on this replica.
    Ingress(u64),
    /// A call from a canister, answered by running its callback `callback`.
    Canister { caller: Principal, callback: u64 },
    /// A system task (timer, heartbeat): nobody waits for an answer.
    System,
}

/// A call the canister is answering (IC interface spec, "Call contexts").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallContext {
    pub origin: Origin,
    /// `msg_caller` of every execution in this context.
    pub caller: Principal,
    /// Cycles that came with the call and were not accepted yet.
    pub available: u128,
    /// The deadline of a bounded-wait call (`msg_deadline`), 0 otherwise.
    pub deadline: u64,
    pub responded: bool,
    /// Calls made in this context that have not been answered.
    pub outstanding: u32,
}

/// A call the canister made and waits for the answer of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Callback {
    /// The call context it was made in; `None` once that context was dropped (uninstall).
    pub context: Option<u64>,
    pub callee: Principal,
    pub reply: Closure,
    pub reject: Closure,
    pub cleanup: Option<Closure>,
    /// The deadline of a bounded-wait call, 0 for a guaranteed one.
    pub deadline: u64,
}

/// What an execution finds of the call it serves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Incoming {
    /// Cycles still available to accept (`msg_cycles_available128`).
    pub available: u128,
    /// Cycles the answer brought back (`msg_cycles_refunded128`).
    pub refunded: u128,
    /// The reject a reject callback handles: code and message.
    pub reject: Option<(u32, String)>,
    pub deadline: u64,
    /// Whether another execution of this call context answered it already.
    pub responded: bool,
}

/// A canister's side of the calls it is in: the contexts it answers, the callbacks it waits
/// on, and who waits for it to stop.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calls {
    pub contexts: BTreeMap<u64, CallContext>,
    pub callbacks: BTreeMap<u64, Callback>,
    next_context: u64,
    next_callback: u64,
    /// The `stop_canister` calls answered when the canister is stopped.
    pub stop_waiters: Vec<Origin>,
}

impl Calls {
    pub fn open(&mut self, context: CallContext) -> u64 {
        let id = self.next_context;
        self.next_context += 1;
        self.contexts.insert(id, context);
        id
    }

    /// Registers the callback of a call made in context `context`.
    pub fn register(&mut self, context: u64, call: &OutgoingCall, deadline: u64) -> u64 {
        let id = self.next_callback;
        self.next_callback += 1;
        if let Some(open) = self.contexts.get_mut(&context) {
            open.outstanding += 1;
        }
        self.callbacks.insert(
            id,
            Callback {
                context: Some(context),
                callee: call.callee,
                reply: call.reply,
                reject: call.reject,
                cleanup: call.cleanup,
                deadline,
            },
        );
        id
    }

    /// Drops every call context (IC interface spec, "uninstall_code"): returns the origins
    /// still owed an answer, each with the cycles to refund. Callbacks stay, to take in the
    /// refunds of their answers, but run no code.
    pub fn drop_contexts(&mut self) -> Vec<(Origin, u128)> {
        for callback in self.callbacks.values_mut() {
            callback.context = None;
        }
        std::mem::take(&mut self.contexts)
            .into_values()
            .filter(|c| !c.responded)
            .map(|c| (c.origin, c.available))
            .collect()
    }
}

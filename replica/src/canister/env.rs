//! What a canister sees while one message runs: the message, its own identity and status,
//! its stable memory, and what it leaves behind (reply, logs, certified data, timer).

use candid::Principal;

use super::calls::{Incoming, OutgoingCall};
use super::stable::StableMemory;
use crate::error::{ErrorCode, Reject};

/// The kind of execution, which decides what the System API allows (IC interface spec,
/// "Overview of imports": I, G, U, RQ, NRQ, CQ, F, T, s; Ry, Rt, C for the callbacks of
/// calls and CRy, CRt, CC for those of composite queries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    Start,
    Init,
    PostUpgrade,
    PreUpgrade,
    Update,
    ReplicatedQuery,
    Query,
    CompositeQuery,
    InspectMessage,
    SystemTask,
    ReplyCallback,
    RejectCallback,
    Cleanup,
    CompositeReplyCallback,
    CompositeRejectCallback,
    CompositeCleanup,
}

impl Context {
    pub const fn bit(self) -> u16 {
        1 << self as u16
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Init => "init",
            Self::PostUpgrade => "post_upgrade",
            Self::PreUpgrade => "pre_upgrade",
            Self::Update => "update",
            Self::ReplicatedQuery => "replicated query",
            Self::Query => "non-replicated query",
            Self::CompositeQuery => "composite query",
            Self::InspectMessage => "inspect message",
            Self::SystemTask => "system task",
            Self::ReplyCallback => "reply callback",
            Self::RejectCallback => "reject callback",
            Self::Cleanup => "cleanup",
            Self::CompositeReplyCallback => "composite query reply callback",
            Self::CompositeRejectCallback => "composite query reject callback",
            Self::CompositeCleanup => "composite query cleanup",
        }
    }

    pub fn replicated(self) -> bool {
        !matches!(
            self,
            Self::Query
                | Self::CompositeQuery
                | Self::InspectMessage
                | Self::CompositeReplyCallback
                | Self::CompositeRejectCallback
                | Self::CompositeCleanup
        )
    }

    /// Instruction limit per execution (IC interface spec, "Resource limits").
    pub fn instruction_limit(self) -> u64 {
        match self {
            Self::Start | Self::Init | Self::PostUpgrade | Self::PreUpgrade => 300_000_000_000,
            Self::Update | Self::SystemTask | Self::ReplyCallback | Self::RejectCallback => {
                40_000_000_000
            }
            Self::ReplicatedQuery
            | Self::Query
            | Self::CompositeQuery
            | Self::Cleanup
            | Self::CompositeReplyCallback
            | Self::CompositeRejectCallback
            | Self::CompositeCleanup => 5_000_000_000,
            Self::InspectMessage => 200_000_000,
        }
    }

    /// Largest reply: 2 MiB when replicated, 3 MiB otherwise.
    pub fn max_reply_bytes(self) -> usize {
        if self.replicated() {
            2 * 1024 * 1024
        } else {
            3 * 1024 * 1024
        }
    }
}

/// Canister status as `ic0.canister_status` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStatus {
    Running = 1,
    Stopping = 2,
    Stopped = 3,
}

/// How a message ended from the canister's side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Reply(Vec<u8>),
    Reject(String),
}

impl Response {
    /// The answer a caller gets from canister `id`: its reply, its reject, or — when it gave
    /// none — the IC's "did not reply".
    pub fn answer(response: Option<Self>, id: &Principal) -> Result<Vec<u8>, Reject> {
        match response {
            Some(Self::Reply(bytes)) => Ok(bytes),
            Some(Self::Reject(message)) => Err(Reject::by_canister(message)),
            None => Err(Reject::did_not_reply(id)),
        }
    }
}

/// One `debug_print` or trap line of the canister log.
#[derive(Clone, Debug)]
pub struct LogLine {
    pub timestamp: u64,
    pub content: Vec<u8>,
}

/// The state of one execution.
pub struct Env {
    pub context: Context,
    pub caller: Principal,
    pub method: String,
    pub arg: Vec<u8>,
    pub canister_id: Principal,
    pub subnet_id: Principal,
    pub controllers: Vec<Principal>,
    pub status: RunStatus,
    pub version: u64,
    pub time: u64,
    pub cycles: u128,
    pub stable: StableMemory,
    pub certified_data: Vec<u8>,
    pub data_certificate: Option<Vec<u8>>,
    pub global_timer: u64,
    /// Largest heap in bytes the canister may grow to (`wasm_memory_limit`, 4 GiB for wasm32).
    pub heap_limit: u64,
    /// Off while the saved heap is put back, on while the canister runs.
    pub heap_limit_enforced: bool,
    pub memory: Option<wasmtime::Memory>,
    pub reply_buffer: Vec<u8>,
    pub response: Option<Response>,
    pub accepted: bool,
    pub logs: Vec<LogLine>,
    /// Why the host stopped the canister, when it did.
    pub trap: Option<Reject>,
    /// What the call being answered carries in: cycles, a reject, a deadline.
    pub incoming: Incoming,
    /// The call `call_new` began and `call_perform` has not sent yet.
    pub pending_call: Option<OutgoingCall>,
    /// Calls performed, sent only if the execution ends without trapping.
    pub calls: Vec<OutgoingCall>,
    /// Cycles this execution paid in call fees (burned, as the IC burns fees).
    pub fees: u128,
}

impl Env {
    pub fn new(context: Context, canister_id: Principal, time: u64) -> Self {
        Self {
            context,
            caller: Principal::anonymous(),
            method: String::new(),
            arg: Vec::new(),
            canister_id,
            subnet_id: Principal::management_canister(),
            controllers: Vec::new(),
            status: RunStatus::Running,
            version: 0,
            time,
            cycles: 0,
            stable: StableMemory::default(),
            certified_data: Vec::new(),
            data_certificate: None,
            global_timer: 0,
            heap_limit: u64::MAX,
            heap_limit_enforced: false,
            memory: None,
            reply_buffer: Vec::new(),
            response: None,
            accepted: false,
            logs: Vec::new(),
            trap: None,
            incoming: Incoming::default(),
            pending_call: None,
            calls: Vec::new(),
            fees: 0,
        }
    }

    /// What a kept instance holds between messages: nothing of any message.
    pub fn idle() -> Self {
        Self::new(Context::SystemTask, Principal::anonymous(), 0)
    }

    /// Stops the execution with `reject`, to be reported instead of wasmtime's error.
    pub fn trap(&mut self, reject: Reject) -> wasmtime::Error {
        let error = wasmtime::Error::msg(reject.message.clone());
        self.trap = Some(reject);
        error
    }

    pub fn violation(&mut self, message: impl Into<String>) -> wasmtime::Error {
        self.trap(Reject::new(
            ErrorCode::CanisterContractViolation,
            format!("Canister violated contract: {}", message.into()),
        ))
    }
}

//! The subnet's messages in flight: requests to canisters and to the management canister,
//! and the responses going back to the callbacks of their callers. One queue in order, so
//! requests from one canister to another start in the order they were made (IC interface
//! spec, "Ordering guarantees"); part of the state, checkpointed with it.

use candid::Principal;
use serde::{Deserialize, Serialize};

use crate::canister::calls::Origin;
use crate::error::Reject;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Queued {
    Request(Request),
    Response(Response),
}

/// A call on its way to `receiver`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Request {
    pub origin: Origin,
    pub sender: Principal,
    pub receiver: Principal,
    pub method: String,
    #[serde(with = "serde_bytes")]
    pub arg: Vec<u8>,
    pub cycles: u128,
    /// The deadline of a bounded-wait call, 0 for a guaranteed one.
    pub deadline: u64,
}

/// An answer on its way to the callback `callback` of canister `receiver`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Response {
    pub receiver: Principal,
    pub callback: u64,
    pub refund: u128,
    pub payload: Payload,
}

/// A reply, or a reject as the calling canister sees it: a reject code and a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    Reply(#[serde(with = "serde_bytes")] Vec<u8>),
    Reject { code: u32, message: String },
}

impl Payload {
    pub fn of(result: Result<Vec<u8>, Reject>) -> Self {
        match result {
            Ok(bytes) => Self::Reply(bytes),
            Err(reject) => Self::Reject {
                code: reject.code as u32,
                message: reject.message,
            },
        }
    }
}

//! The relay canister's Candid types, as its callers decode them.

use candid::{CandidType, Deserialize};

/// How a call the relay made ended.
#[derive(CandidType, Deserialize, Debug, PartialEq, Eq)]
pub enum Outcome {
    Reply(Vec<u8>),
    Reject { code: u32, message: String },
    NotSent(String),
}

/// What `forward` answers.
#[derive(CandidType, Deserialize, Debug)]
pub struct Forwarded {
    pub outcome: Outcome,
    pub refunded: u128,
    pub balance_after: u128,
}

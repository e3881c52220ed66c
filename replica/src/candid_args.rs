//! Decoding Candid arguments that come from outside: management-canister and cycles-ledger
//! arguments, and the effective canister id of an ingress message. They are decoded with
//! the IC's skipping quota (its `management_canister_types` decoder), so that a few bytes
//! declaring a vast `vec null` in an extra field cannot keep the replica decoding for hours.

use candid::{CandidType, Decode, de::DecoderConfig};
use serde::de::DeserializeOwned;

/// The IC's `DEFAULT_SKIPPING_QUOTA` for management payloads.
const SKIPPING_QUOTA: usize = 10_000;

/// Decodes one argument of type `A`, within the quota; errors leave out the input's bytes,
/// as the IC's do.
pub fn decode<A: DeserializeOwned + CandidType>(bytes: &[u8]) -> candid::Result<A> {
    let mut config = DecoderConfig::new();
    config
        .set_skipping_quota(SKIPPING_QUOTA)
        .set_full_error_message(false);
    Decode!([config]; bytes, A)
}

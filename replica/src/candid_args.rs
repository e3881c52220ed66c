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
    decode_within(bytes, SKIPPING_QUOTA)
}

/// Decodes the fields of `A` out of a larger record, skipping the rest (a module, a chunk)
/// within a quota that grows with the argument's length: any genuine argument fits, and no
/// short one can demand more than work in proportion to its bytes.
pub fn decode_part<A: DeserializeOwned + CandidType>(bytes: &[u8]) -> candid::Result<A> {
    decode_within(bytes, SKIPPING_QUOTA + 4 * bytes.len())
}

fn decode_within<A: DeserializeOwned + CandidType>(
    bytes: &[u8],
    skipping_quota: usize,
) -> candid::Result<A> {
    let mut config = DecoderConfig::new();
    config
        .set_skipping_quota(skipping_quota)
        .set_full_error_message(false);
    Decode!([config]; bytes, A)
}

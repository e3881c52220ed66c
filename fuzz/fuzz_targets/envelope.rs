//! Request bodies as the HTTP interface receives them: CBOR envelope decoding, request ids,
//! signatures, delegations and expiry. Any input gets an answer; none panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// A fixed "now", so that an input means the same every time.
const NOW: u64 = 1_795_600_000_000_000_000;

fuzz_target!(|body: &[u8]| {
    let _ = replica::http::authenticate(body, NOW);
});

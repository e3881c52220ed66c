//! The wasm chunk store's rules, shared by a canister's own store and an uploaded
//! snapshot's: chunk size and count limits, the IC's error for them, and the memory a store
//! is charged (IC interface spec, "IC method upload_chunk").

use std::collections::BTreeMap;

use crate::error::{ErrorCode, Reject};
use crate::store::Hash;

/// Largest chunk, and how many a store holds.
pub const MAX_CHUNK_BYTES: usize = 1024 * 1024;
pub const MAX_CHUNKS: usize = 100;

/// The IC's answer for a chunk-store failure (`WasmChunkStoreError`, IC0504).
pub fn error(message: impl std::fmt::Display) -> Reject {
    Reject::new(
        ErrorCode::CanisterContractViolation,
        format!("Error from Wasm chunk store: {message}"),
    )
}

/// Checks that a chunk of `len` bytes hashing to `hash` may join `chunks`; one already
/// there always may.
pub fn check_insert(chunks: &BTreeMap<Hash, u64>, hash: &Hash, len: usize) -> Result<(), Reject> {
    if len > MAX_CHUNK_BYTES {
        return Err(error(format!(
            "Wasm chunk size {len} exceeds the maximum chunk size of {MAX_CHUNK_BYTES} bytes."
        )));
    }
    if !chunks.contains_key(hash) && chunks.len() >= MAX_CHUNKS {
        return Err(error(format!(
            "The chunk store is full ({MAX_CHUNKS} chunks); clear it first."
        )));
    }
    Ok(())
}

/// The memory a store is charged: a whole chunk's worth for each chunk, as on the IC.
pub fn usage(chunks: &BTreeMap<Hash, u64>) -> u64 {
    (chunks.len() * MAX_CHUNK_BYTES) as u64
}

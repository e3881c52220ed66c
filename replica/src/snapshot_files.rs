//! The snapshot directory as dfx and icp-cli write it, and PocketIC's
//! `canister_snapshot_download` too: `metadata.json` (the management canister's
//! `read_canister_snapshot_metadata` result as JSON), the three memories, and the chunk
//! store's chunks by hash.

pub const METADATA: &str = "metadata.json";
pub const WASM_MODULE: &str = "wasm_module.bin";
pub const WASM_MEMORY: &str = "wasm_memory.bin";
pub const STABLE_MEMORY: &str = "stable_memory.bin";
pub const CHUNK_STORE: &str = "wasm_chunk_store";

/// A chunk's file name in `CHUNK_STORE`.
pub fn chunk_file(hash: &[u8]) -> String {
    format!("{}.bin", crate::store::hex(hash))
}

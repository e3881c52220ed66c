//! An embedded Internet Computer replica: runs canister wasm on wasmtime as the IC does,
//! implements the management canister (lifecycle and snapshots) and keeps its state on disk.
//!
//! Layers, each knowing only those below it: `http` → `replica` (the scheduler's API:
//! ingress, queries, clock, journal and commits) → `scheduler` (rounds) → `management`,
//! `system_canisters` and `composite` (compute on the subnet) → `subnet` (the state) →
//! `canister` (state, System API, execution) → `store` (persistence).

mod candid_args;
pub mod canister;
mod composite;
pub mod error;
pub mod fault;
pub mod http;
pub mod ids;
mod keys;
mod ledgers;
mod management;
mod queue;
mod replica;
mod scheduler;
pub mod snapshot_files;
pub mod store;
mod subnet;
mod system_canisters;

pub use candid::Principal;
pub use error::{ErrorCode, Reject, RejectCode, StoreError};
pub use replica::{CanisterFacts, Recovered, Replica};

/// This replica's version, recorded in what it helps produce (backup manifests).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

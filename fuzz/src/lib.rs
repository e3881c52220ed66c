//! What the fuzz targets share: a replica with one canister, kept across executions (opening
//! one per input would fuzz the file system, not the replica).

use std::sync::{Mutex, MutexGuard, OnceLock};

use candid::{Decode, Encode, Principal};
use ic_management_canister_types as ic;
use replica::Replica;

pub struct World {
    _dir: tempfile::TempDir,
    pub replica: Replica,
    pub canister: Principal,
}

/// The caller: the canister's controller.
pub fn controller() -> Principal {
    Principal::self_authenticating(b"fuzz")
}

/// The shared replica; created on first use.
pub fn world() -> MutexGuard<'static, World> {
    static WORLD: OnceLock<Mutex<World>> = OnceLock::new();
    WORLD
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let mut replica = Replica::open(dir.path()).expect("a new replica");
            let args = ic::ProvisionalCreateCanisterWithCyclesArgs {
                amount: None,
                settings: None,
                specified_id: None,
                sender_canister_version: None,
            };
            let reply = replica
                .update(
                    controller(),
                    Principal::management_canister(),
                    "provisional_create_canister_with_cycles",
                    &Encode!(&args).expect("encodes"),
                )
                .expect("a canister");
            let canister = Decode!(&reply, ic::CanisterIdRecord)
                .expect("decodes")
                .canister_id;
            Mutex::new(World {
                _dir: dir,
                replica,
                canister,
            })
        })
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

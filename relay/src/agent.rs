//! The backup agent: as a controller of a canister, it stops it, takes a snapshot and starts
//! it again, and later loads that snapshot — all by calls to the management canister, as
//! canister controllers (Juno's console, Canic) take and load snapshots.

use candid::{CandidType, Principal};
use ic_cdk::api;
use ic_cdk::call::{Call, Response};
use ic_cdk::update;
use ic_management_canister_types::{
    CanisterIdRecord, CanisterStatusResult, LoadCanisterSnapshotArgs, Snapshot,
    TakeCanisterSnapshotArgs,
};

async fn management(method: &str, arg: impl CandidType) -> Response {
    Call::unbounded_wait(Principal::management_canister(), method)
        .with_arg(arg)
        .await
        .unwrap_or_else(|e| api::trap(format!("{method} failed: {e}")))
}

fn decode<R: CandidType + for<'de> candid::Deserialize<'de>>(method: &str, reply: Response) -> R {
    reply
        .candid::<R>()
        .unwrap_or_else(|e| api::trap(format!("{method} answered what does not decode: {e}")))
}

/// Runs `step` with `canister` stopped, and starts it again.
async fn while_stopped<F: Future>(canister: Principal, step: F) -> F::Output {
    let id = CanisterIdRecord {
        canister_id: canister,
    };
    management("stop_canister", &id).await;
    let done = step.await;
    management("start_canister", &id).await;
    done
}

/// Stops `canister`, takes a snapshot of it and starts it again; returns the snapshot's id.
#[update]
async fn backup(canister: Principal) -> Vec<u8> {
    let snapshot = while_stopped(canister, async {
        let args = TakeCanisterSnapshotArgs {
            canister_id: canister,
            replace_snapshot: None,
            uninstall_code: None,
            sender_canister_version: Some(api::canister_version()),
        };
        let reply = management("take_canister_snapshot", &args).await;
        decode::<Snapshot>("take_canister_snapshot", reply)
    });
    snapshot.await.id
}

/// Stops `canister`, loads snapshot `snapshot` into it and starts it again.
#[update]
async fn restore(canister: Principal, snapshot: Vec<u8>) {
    while_stopped(canister, async {
        let args = LoadCanisterSnapshotArgs {
            canister_id: canister,
            snapshot_id: snapshot,
            sender_canister_version: Some(api::canister_version()),
        };
        management("load_canister_snapshot", &args).await;
    })
    .await;
}

/// The status `canister_status` reports of `canister`, as its controller sees it.
#[update]
async fn status_of(canister: Principal) -> String {
    let id = CanisterIdRecord {
        canister_id: canister,
    };
    let status: CanisterStatusResult =
        decode("canister_status", management("canister_status", &id).await);
    format!("{:?}", status.status)
}

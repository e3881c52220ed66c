//! The `read/` and `update/` operations of one instance: each reads its JSON body, runs on
//! the instance's replica, and answers JSON, or an HTTP status with a message that says
//! what was wrong.

use axum::http::StatusCode;
use candid::Principal;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use super::calls::{Message, Status};
use super::hosted::Hosted;
use super::wire::{self, RawCanisterResult, RejectResponse, principal};
use crate::Replica;

pub type Failure = (StatusCode, String);

/// A blob of the server's store, by id.
pub type Blobs<'a> = dyn Fn(&[u8]) -> Option<Vec<u8>> + 'a;

/// Runs operation `kind/name` (`read/query`, `update/tick`, …) with `body`.
pub fn run(
    hosted: &Hosted,
    kind: &str,
    name: &str,
    body: &[u8],
    blobs: &Blobs,
) -> Result<Value, Failure> {
    let mut replica = hosted.instance.replica();
    let replica = &mut *replica;
    match (kind, name) {
        ("read", "topology") => json(&hosted.topology),
        ("read", "get_time") => json(&wire::RawTime {
            nanos_since_epoch: replica.time(),
        }),
        ("read", "query") => query(replica, parse(body)?),
        ("read", "ingress_status") => ingress_status(hosted, replica, parse(body)?),
        ("read", "get_cycles") => {
            let id = canister(parse(body)?)?;
            let cycles = replica.cycles_of(&id).ok_or_else(|| not_found(&id))?;
            json(&wire::RawCycles { cycles })
        }
        ("read", "get_controllers") => get_controllers(replica, parse(body)?),
        ("read", "get_subnet") => {
            let id = canister(parse(body)?)?;
            let subnet = replica
                .canister_ids()
                .contains(&id)
                .then(|| wire::RawSubnetId {
                    subnet_id: replica.subnet_id().as_slice().to_vec(),
                });
            json(&subnet)
        }
        ("read", "get_stable_memory") => {
            let id = canister(parse(body)?)?;
            let blob = replica.stable_memory(&id).map_err(|r| bad(r.message))?;
            json(&wire::RawStableMemory { blob })
        }
        ("read", "pub_key") => {
            let wire::RawSubnetId { subnet_id } = parse(body)?;
            if subnet_id != hosted.instance.keys().subnet_id.as_slice() {
                return Err(bad("there is no such subnet on this instance"));
            }
            json(&hosted.instance.keys().root_der)
        }
        // This replica makes no HTTP outcalls, so none is ever pending.
        ("read", "get_canister_http") => json(&Vec::<Value>::new()),
        ("update", "submit_ingress_message") => submit(hosted, replica, parse(body)?),
        ("update", "await_ingress_message") => {
            let id: wire::RawMessageId = parse(body)?;
            let mut calls = hosted.calls.lock().expect("not poisoned");
            let answer = calls.wait(replica, &id.message_id).map_err(bad)?;
            json(&RawCanisterResult::of(answer, true))
        }
        ("update", "execute_ingress_message") => {
            let call: wire::RawCanisterCall = parse(body)?;
            let sender = principal(&call.sender, "sender").map_err(bad)?;
            let canister = principal(&call.canister_id, "canister id").map_err(bad)?;
            let answer = replica.update(sender, canister, &call.method, &call.payload);
            json(&RawCanisterResult::of(answer, true))
        }
        ("update", "set_time" | "set_certified_time") => {
            let time: wire::RawTime = parse(body)?;
            replica.set_time(time.nanos_since_epoch).map_err(bad)?;
            json(&())
        }
        ("update", "tick") => {
            hosted.calls.lock().expect("not poisoned").tick(replica);
            json(&())
        }
        ("update", "add_cycles") => add_cycles(replica, parse(body)?),
        ("update", "set_stable_memory") => {
            let args: wire::RawSetStableMemory = parse(body)?;
            let id = canister(wire::RawCanisterId {
                canister_id: args.canister_id,
            })?;
            let bytes = blobs(&args.blob_id.0)
                .ok_or_else(|| bad("there is no such blob: upload it to /blobstore first"))?;
            replica
                .set_stable_memory(id, &bytes)
                .map_err(|r| bad(r.message))?;
            json(&())
        }
        ("update", "canister_snapshot_download") => {
            super::snapshot_dir::download(replica, parse(body)?)
        }
        ("update", "canister_snapshot_upload") => {
            super::snapshot_dir::upload(replica, parse(body)?)
        }
        ("update", "mock_canister_http" | "mock_flexible_canister_http") => Err(bad(
            "this replica makes no HTTP outcalls, so there is none to answer",
        )),
        _ => Err((
            StatusCode::NOT_FOUND,
            format!("this PocketIC server (the embedded replica) has no operation {kind}/{name}"),
        )),
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Failure> {
    serde_json::from_slice(body).map_err(|e| bad(format!("the request body does not parse: {e}")))
}

fn json(value: &impl Serialize) -> Result<Value, Failure> {
    serde_json::to_value(value).map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

pub fn bad(message: impl Into<String>) -> Failure {
    (StatusCode::BAD_REQUEST, message.into())
}

fn not_found(id: &Principal) -> Failure {
    (StatusCode::BAD_REQUEST, format!("canister {id} not found"))
}

fn canister(id: wire::RawCanisterId) -> Result<Principal, Failure> {
    principal(&id.canister_id, "canister id").map_err(bad)
}

fn query(replica: &mut Replica, call: wire::RawCanisterCall) -> Result<Value, Failure> {
    let sender = principal(&call.sender, "sender").map_err(bad)?;
    let canister = principal(&call.canister_id, "canister id").map_err(bad)?;
    let answer = replica.query(sender, canister, &call.method, &call.payload);
    json(&RawCanisterResult::of(answer, false))
}

fn submit(
    hosted: &Hosted,
    replica: &mut Replica,
    call: wire::RawCanisterCall,
) -> Result<Value, Failure> {
    let message = Message {
        sender: principal(&call.sender, "sender").map_err(bad)?,
        canister: principal(&call.canister_id, "canister id").map_err(bad)?,
        method: call.method,
        arg: call.payload,
    };
    let mut calls = hosted.calls.lock().expect("not poisoned");
    let submitted = calls.submit(replica, message);
    if hosted.instance.auto_progress() {
        calls.take_in(replica);
    }
    let result: Result<wire::RawMessageId, RejectResponse> = match submitted {
        Ok(message_id) => Ok(wire::RawMessageId {
            effective_principal: call.effective_principal,
            message_id,
        }),
        Err(reject) => Err(RejectResponse::of(reject, false)),
    };
    json(&result)
}

/// A message's status. With auto progress the rounds that ran by themselves may have
/// answered it (dfx's `--impersonate` polls without ticking), so their answers are taken
/// first.
fn ingress_status(
    hosted: &Hosted,
    replica: &mut Replica,
    args: wire::RawIngressStatusArgs,
) -> Result<Value, Failure> {
    let caller = match &args.raw_caller {
        Some(caller) => Some(principal(&caller.principal_id, "caller").map_err(bad)?),
        None => None,
    };
    let mut calls = hosted.calls.lock().expect("not poisoned");
    if hosted.instance.auto_progress() {
        calls.take_in(replica);
    }
    match calls.status(&args.raw_message_id.message_id, caller) {
        Status::Unknown => json(&None::<()>),
        Status::Answered(answer) => json(&Some(RawCanisterResult::of(answer, true))),
        Status::Forbidden => Err((
            StatusCode::FORBIDDEN,
            "The user tries to access Request ID not signed by the caller.".into(),
        )),
    }
}

fn get_controllers(replica: &mut Replica, id: wire::RawCanisterId) -> Result<Value, Failure> {
    let id = canister(id)?;
    let facts = replica.facts();
    let found = facts
        .iter()
        .find(|f| f.id == id)
        .ok_or_else(|| not_found(&id))?;
    let controllers: Vec<wire::RawPrincipalId> = found
        .controllers
        .iter()
        .map(|p| wire::RawPrincipalId {
            principal_id: p.as_slice().to_vec(),
        })
        .collect();
    json(&controllers)
}

/// Cycles from nowhere, through the management canister's `provisional_top_up_canister`,
/// so that they are journaled as any call is.
fn add_cycles(replica: &mut Replica, args: wire::RawAddCycles) -> Result<Value, Failure> {
    let id = principal(&args.canister_id, "canister id").map_err(bad)?;
    let arg = candid::encode_one(ic_management_canister_types::ProvisionalTopUpCanisterArgs {
        canister_id: id,
        amount: candid::Nat::from(args.amount),
    })
    .map_err(|e| bad(e.to_string()))?;
    replica
        .update(
            Principal::anonymous(),
            Principal::management_canister(),
            "provisional_top_up_canister",
            &arg,
        )
        .map_err(|r| bad(r.message))?;
    let cycles = replica.cycles_of(&id).ok_or_else(|| not_found(&id))?;
    json(&wire::RawCycles { cycles })
}

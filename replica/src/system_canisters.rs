//! The two system canisters clients call before any canister of theirs exists (icp-cli's
//! `canister create` / `deploy`): the cycles ledger's `create_canister`, and the cycles
//! minting canister's `get_default_subnets`, answering this replica's own subnet.

use candid::{CandidType, Encode, Nat, Principal};
use ic_management_canister_types as ic;
use serde::Deserialize;

use crate::candid_args;
use crate::error::{ErrorCode, Reject};
use crate::management;
use crate::subnet::Subnet;

pub fn cycles_ledger() -> Principal {
    Principal::from_text("um5iw-rqaaa-aaaaq-qaaba-cai").expect("valid id")
}

pub fn cycles_minting_canister() -> Principal {
    Principal::from_text("rkp4c-7iaaa-aaaaa-aaaca-cai").expect("valid id")
}

#[derive(CandidType, Deserialize)]
struct CreateCanisterArgs {
    amount: Nat,
    creation_args: Option<CreationArgs>,
}

#[derive(CandidType, Deserialize)]
struct CreationArgs {
    settings: Option<ic::CanisterSettings>,
}

#[derive(CandidType)]
struct CreateCanisterSuccess {
    block_id: Nat,
    canister_id: Principal,
}

#[derive(CandidType)]
enum CreateCanisterError {
    GenericError { message: String, error_code: Nat },
}

#[derive(CandidType)]
enum CreateCanisterResult {
    Ok(CreateCanisterSuccess),
    Err(CreateCanisterError),
}

/// Whether `canister` is one of the system canisters answered here.
pub fn handles(canister: Principal) -> bool {
    canister == cycles_ledger() || canister == cycles_minting_canister()
}

/// Answers a call to a system canister, and says whether the state changed (for the caller
/// to commit); `None` when `canister` is not one.
pub fn call(
    subnet: &mut Subnet,
    sender: Principal,
    canister: Principal,
    method: &str,
    arg: &[u8],
    time: u64,
) -> Option<(Result<Vec<u8>, Reject>, bool)> {
    let answer = if canister == cycles_minting_canister() {
        match method {
            "get_default_subnets" => (Ok(Encode!(&vec![subnet.id]).expect("encodes")), false),
            _ => (Err(no_method(&canister, method)), false),
        }
    } else if canister == cycles_ledger() {
        match method {
            "create_canister" => create_canister(subnet, sender, arg, time),
            _ => (Err(no_method(&canister, method)), false),
        }
    } else {
        return None;
    };
    Some(answer)
}

/// Answers a query call to a system canister: only the CMC's `get_default_subnets` is one.
pub fn query(subnet: &Subnet, canister: Principal, method: &str) -> Result<Vec<u8>, Reject> {
    if canister == cycles_minting_canister() && method == "get_default_subnets" {
        return Ok(default_subnets(subnet));
    }
    Err(Reject::new(
        ErrorCode::CanisterMethodNotFound,
        format!("Error from Canister {canister}: Canister has no query method '{method}'."),
    )
    .ingress_filter())
}

fn default_subnets(subnet: &Subnet) -> Vec<u8> {
    Encode!(&vec![subnet.id]).expect("encodes")
}

/// Creates a canister with `amount` cycles, as the cycles ledger would after charging it;
/// says whether it did.
fn create_canister(
    subnet: &mut Subnet,
    sender: Principal,
    arg: &[u8],
    time: u64,
) -> (Result<Vec<u8>, Reject>, bool) {
    let args = match candid_args::decode::<CreateCanisterArgs>(arg) {
        Ok(args) => args,
        Err(e) => {
            let reject = Reject::new(
                ErrorCode::InvalidManagementPayload,
                format!("create_canister: the argument does not decode: {e}"),
            );
            return (Err(reject), false);
        }
    };
    let cycles = u128::try_from(args.amount.0)
        .unwrap_or(u128::MAX)
        .min(u128::from(u64::MAX));
    let settings = args.creation_args.and_then(|c| c.settings);
    let (result, created) = match management::create(subnet, sender, time, settings, cycles) {
        Ok(canister_id) => {
            let success = CreateCanisterSuccess {
                block_id: Nat::from(time),
                canister_id,
            };
            (CreateCanisterResult::Ok(success), true)
        }
        Err(reject) => {
            let error = CreateCanisterError::GenericError {
                message: reject.message,
                error_code: Nat::from(0u8),
            };
            (CreateCanisterResult::Err(error), false)
        }
    };
    (Ok(Encode!(&result).expect("encodes")), created)
}

fn no_method(canister: &Principal, method: &str) -> Reject {
    Reject::new(
        ErrorCode::CanisterMethodNotFound,
        format!("Canister {canister} has no method '{method}' on this replica"),
    )
    .ingress_filter()
}

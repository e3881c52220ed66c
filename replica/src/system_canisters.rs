//! The system canisters clients call before any canister of theirs exists: the cycles
//! ledger's `create_canister` (icp-cli's `canister create` / `deploy`), the cycles minting
//! canister's `get_default_subnets`, answering this replica's own subnet, and the token
//! transfers with which icp-cli funds its identities when a network starts (`ledgers`).

use candid::{CandidType, Encode, Nat, Principal};
use ic_management_canister_types as ic;
use serde::Deserialize;

use crate::candid_args;
use crate::error::{ErrorCode, Reject};
use crate::ledgers::{Ledgers, icp_ledger};
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
    canister == cycles_ledger() || canister == cycles_minting_canister() || canister == icp_ledger()
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
            "icrc1_transfer" => changed(subnet.ledgers.cycles_transfer(sender, arg)),
            "icrc1_balance_of" => (subnet.ledgers.balance_of(false, arg), false),
            _ => (Err(no_method(&canister, method)), false),
        }
    } else if canister == icp_ledger() {
        match method {
            "transfer" => changed(subnet.ledgers.icp_transfer(sender, arg)),
            "icrc1_balance_of" => (subnet.ledgers.balance_of(true, arg), false),
            _ => (Err(no_method(&canister, method)), false),
        }
    } else {
        return None;
    };
    Some(answer)
}

/// A transfer's answer, and whether it changed the balances.
fn changed(answer: Result<(Vec<u8>, bool), Reject>) -> (Result<Vec<u8>, Reject>, bool) {
    match answer {
        Ok((reply, changed)) => (Ok(reply), changed),
        Err(reject) => (Err(reject), false),
    }
}

/// Answers a query call to a system canister: the CMC's `get_default_subnets` and the
/// ledgers' `icrc1_balance_of`.
pub fn query(
    subnet: &Subnet,
    canister: Principal,
    method: &str,
    arg: &[u8],
) -> Result<Vec<u8>, Reject> {
    match (method, canister) {
        ("get_default_subnets", c) if c == cycles_minting_canister() => {
            return Ok(default_subnets(subnet));
        }
        ("icrc1_balance_of", c) if c == cycles_ledger() || c == icp_ledger() => {
            return subnet.ledgers.balance_of(c == icp_ledger(), arg);
        }
        (method, c) if c == cycles_ledger() || c == icp_ledger() => {
            if let Some(reply) = Ledgers::metadata(c == icp_ledger(), method) {
                return Ok(reply);
            }
        }
        _ => {}
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
    let (result, created) = match management::create(subnet, None, sender, time, settings, cycles) {
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

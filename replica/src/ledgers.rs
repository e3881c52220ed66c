//! The two token ledgers icp-cli funds its identities from when a local network starts
//! (shared/reference/icp-cli.md §8.3): the ICP ledger's `transfer` (to an account
//! identifier) and the cycles ledger's `icrc1_transfer` (to an ICRC-1 account), with their
//! fees, and `icrc1_balance_of` and the token's metadata on both. As on PocketIC's local networks, the anonymous
//! principal's default accounts start funded. The balances are part of the subnet's state.
//! Nothing else of the ledgers is here (no blocks to read, no approvals): a call to any
//! other method gets the IC's "no such method".

use std::collections::BTreeMap;

use candid::{CandidType, Encode, Nat, Principal};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha224};

use crate::candid_args;
use crate::error::{ErrorCode, Reject};

pub fn icp_ledger() -> Principal {
    Principal::from_text("ryjl3-tyaaa-aaaaa-aaaba-cai").expect("valid id")
}

/// The ICP ledger's fee, in e8s.
const ICP_FEE: u64 = 10_000;
/// The cycles ledger's fee, in cycles.
const CYCLES_FEE: u64 = 100_000_000;
/// The anonymous principal's opening balances: a billion ICP (as PocketIC's) and a million
/// T cycles. Balances are kept in 64 bits, which the state's encoding stores (a local
/// network's need no more): a larger amount is refused.
const ICP_FUNDED: u64 = 100_000_000 * 1_000_000_000;
const CYCLES_FUNDED: u64 = 1_000_000 * 1_000_000_000_000;

/// An ICRC-1 account: an owner and a 32-byte subaccount (zeros by default).
type Account = (Principal, [u8; 32]);

/// The balances of both ledgers.
#[derive(Clone, Serialize, Deserialize)]
pub struct Ledgers {
    /// ICP, in e8s, by account identifier.
    icp: BTreeMap<[u8; 32], u64>,
    /// Cycles, by account.
    cycles: BTreeMap<Account, u64>,
    /// Blocks written, counted across both.
    blocks: u64,
}

impl Default for Ledgers {
    fn default() -> Self {
        let anonymous = (Principal::anonymous(), [0; 32]);
        Self {
            icp: BTreeMap::from([(account_identifier(&anonymous), ICP_FUNDED)]),
            cycles: BTreeMap::from([(anonymous, CYCLES_FUNDED)]),
            blocks: 0,
        }
    }
}

/// The ICP ledger's account identifier: CRC-32 ‖ SHA-224("\x0Aaccount-id" ‖ owner ‖
/// subaccount).
pub fn account_identifier((owner, subaccount): &Account) -> [u8; 32] {
    let hash = Sha224::new()
        .chain_update(b"\x0Aaccount-id")
        .chain_update(owner.as_slice())
        .chain_update(subaccount)
        .finalize();
    let mut crc = flate2::Crc::new();
    crc.update(&hash);
    let mut id = [0; 32];
    id[..4].copy_from_slice(&crc.sum().to_be_bytes());
    id[4..].copy_from_slice(&hash);
    id
}

#[derive(CandidType, Deserialize)]
struct Tokens {
    e8s: u64,
}

#[derive(CandidType, Deserialize)]
struct IcpTransferArgs {
    amount: Tokens,
    fee: Tokens,
    from_subaccount: Option<serde_bytes::ByteBuf>,
    to: serde_bytes::ByteBuf,
}

#[derive(CandidType)]
enum IcpTransferError {
    BadFee { expected_fee: Tokens },
    InsufficientFunds { balance: Tokens },
}

#[derive(CandidType)]
enum IcpTransferResult {
    Ok(u64),
    Err(IcpTransferError),
}

#[derive(CandidType, Deserialize)]
struct Icrc1Account {
    owner: Principal,
    subaccount: Option<serde_bytes::ByteBuf>,
}

#[derive(CandidType, Deserialize)]
struct Icrc1TransferArgs {
    from_subaccount: Option<serde_bytes::ByteBuf>,
    to: Icrc1Account,
    fee: Option<Nat>,
    amount: Nat,
}

#[derive(CandidType)]
enum Icrc1TransferError {
    BadFee { expected_fee: Nat },
    InsufficientFunds { balance: Nat },
    GenericError { error_code: Nat, message: String },
}

#[derive(CandidType)]
enum Icrc1TransferResult {
    Ok(Nat),
    Err(Icrc1TransferError),
}

/// A subaccount as sent: none is the default (zeros); one must be 32 bytes.
fn subaccount(bytes: Option<serde_bytes::ByteBuf>) -> Result<[u8; 32], Reject> {
    match bytes {
        None => Ok([0; 32]),
        Some(bytes) => bytes.as_slice().try_into().map_err(|_| {
            trap(format!(
                "a subaccount has 32 bytes, this one {}",
                bytes.len()
            ))
        }),
    }
}

fn trap(message: String) -> Reject {
    Reject::new(
        ErrorCode::CanisterCalledTrap,
        format!("Canister called `ic0.trap` with message: {message}"),
    )
}

fn decoded<T: for<'de> Deserialize<'de> + CandidType>(
    method: &str,
    arg: &[u8],
) -> Result<T, Reject> {
    candid_args::decode(arg).map_err(|e| trap(format!("failed to decode {method} argument: {e}")))
}

impl Ledgers {
    /// The ICP ledger's `transfer`; says whether the balances changed.
    pub fn icp_transfer(
        &mut self,
        sender: Principal,
        arg: &[u8],
    ) -> Result<(Vec<u8>, bool), Reject> {
        let args: IcpTransferArgs = decoded("transfer", arg)?;
        let from = account_identifier(&(sender, subaccount(args.from_subaccount)?));
        let to: [u8; 32] = args.to.as_slice().try_into().map_err(|_| {
            trap(format!(
                "invalid account identifier: it has 32 bytes, this one {}",
                args.to.len()
            ))
        })?;
        let balance = self.icp.get(&from).copied().unwrap_or(0);
        let debit = args.amount.e8s.checked_add(args.fee.e8s);
        let result = if args.fee.e8s != ICP_FEE {
            IcpTransferResult::Err(IcpTransferError::BadFee {
                expected_fee: Tokens { e8s: ICP_FEE },
            })
        } else if debit.is_none_or(|debit| debit > balance) {
            IcpTransferResult::Err(IcpTransferError::InsufficientFunds {
                balance: Tokens { e8s: balance },
            })
        } else {
            self.icp.insert(from, balance - debit.expect("checked"));
            *self.icp.entry(to).or_default() += args.amount.e8s;
            IcpTransferResult::Ok(self.block())
        };
        let changed = matches!(result, IcpTransferResult::Ok(_));
        Ok((Encode!(&result).expect("encodes"), changed))
    }

    /// The cycles ledger's `icrc1_transfer`; says whether the balances changed.
    pub fn cycles_transfer(
        &mut self,
        sender: Principal,
        arg: &[u8],
    ) -> Result<(Vec<u8>, bool), Reject> {
        let args: Icrc1TransferArgs = decoded("icrc1_transfer", arg)?;
        let from = (sender, subaccount(args.from_subaccount)?);
        let to = (args.to.owner, subaccount(args.to.subaccount)?);
        let balance = self.cycles.get(&from).copied().unwrap_or(0);
        let fee = args.fee.map(|f| u64::try_from(f.0).ok());
        let amount = u64::try_from(args.amount.0).ok();
        let result = match (fee, amount) {
            (Some(fee), _) if fee != Some(CYCLES_FEE) => {
                Icrc1TransferResult::Err(Icrc1TransferError::BadFee {
                    expected_fee: Nat::from(CYCLES_FEE),
                })
            }
            (_, None) => Icrc1TransferResult::Err(Icrc1TransferError::GenericError {
                error_code: Nat::from(0u8),
                message: "the amount is larger than any balance on this replica (2^64 cycles)"
                    .into(),
            }),
            (_, Some(amount)) => match amount.checked_add(CYCLES_FEE) {
                Some(debit) if debit <= balance => {
                    self.cycles.insert(from, balance - debit);
                    *self.cycles.entry(to).or_default() += amount;
                    Icrc1TransferResult::Ok(Nat::from(self.block()))
                }
                _ => Icrc1TransferResult::Err(Icrc1TransferError::InsufficientFunds {
                    balance: Nat::from(balance),
                }),
            },
        };
        let changed = matches!(result, Icrc1TransferResult::Ok(_));
        Ok((Encode!(&result).expect("encodes"), changed))
    }

    /// `icrc1_balance_of` on the ICP ledger (`icp`) or the cycles ledger.
    pub fn balance_of(&self, icp: bool, arg: &[u8]) -> Result<Vec<u8>, Reject> {
        let account: Icrc1Account = decoded("icrc1_balance_of", arg)?;
        let account = (account.owner, subaccount(account.subaccount)?);
        let balance = if icp {
            Nat::from(
                self.icp
                    .get(&account_identifier(&account))
                    .copied()
                    .unwrap_or(0),
            )
        } else {
            Nat::from(self.cycles.get(&account).copied().unwrap_or(0))
        };
        Ok(Encode!(&balance).expect("encodes"))
    }

    /// The ledgers' metadata queries (`icrc1_decimals`, `_symbol`, `_name`, `_fee`) on the
    /// ICP ledger (`icp`) or the cycles ledger; `None` for another method.
    pub fn metadata(icp: bool, method: &str) -> Option<Vec<u8>> {
        let encoded = match (method, icp) {
            ("icrc1_decimals", true) => Encode!(&8u8),
            ("icrc1_decimals", false) => Encode!(&12u8),
            ("icrc1_symbol", true) => Encode!(&"ICP"),
            ("icrc1_symbol", false) => Encode!(&"TCYCLES"),
            ("icrc1_name", true) => Encode!(&"Internet Computer"),
            ("icrc1_name", false) => Encode!(&"Trillion Cycles"),
            ("icrc1_fee", true) => Encode!(&Nat::from(ICP_FEE)),
            ("icrc1_fee", false) => Encode!(&Nat::from(CYCLES_FEE)),
            _ => return None,
        };
        Some(encoded.expect("encodes"))
    }

    fn block(&mut self) -> u64 {
        self.blocks += 1;
        self.blocks - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_identifier_of_the_anonymous_principal_is_the_ledgers() {
        // As `dfx ledger account-id` prints it for the anonymous identity.
        assert_eq!(
            crate::store::hex(&account_identifier(&(Principal::anonymous(), [0; 32]))),
            "1c7a48ba6a562aa9eaa2481a9049cdf0433b9738c992d698c31d8abf89cadc79"
        );
    }
}

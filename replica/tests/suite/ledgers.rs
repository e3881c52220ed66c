//! The ICP and cycles ledgers icp-cli funds its identities from: transfers move balances
//! less the fee, a wrong fee or an overdraft is answered with the ledgers' errors and moves
//! nothing, and the balances survive a reopen. (icp-cli's own funding at `network start`
//! runs in xtask/tests/suite/icp_sets.rs.)

use candid::{CandidType, Decode, Encode, Nat, Principal};
use replica::Replica;
use serde::Deserialize;

use crate::common::{Local, user};

fn icp_ledger() -> Principal {
    Principal::from_text("ryjl3-tyaaa-aaaaa-aaaba-cai").unwrap()
}

fn cycles_ledger() -> Principal {
    Principal::from_text("um5iw-rqaaa-aaaaq-qaaba-cai").unwrap()
}

#[derive(CandidType, Deserialize, Debug, PartialEq)]
struct Tokens {
    e8s: u64,
}

#[derive(CandidType)]
struct IcpTransfer {
    memo: u64,
    amount: Tokens,
    fee: Tokens,
    from_subaccount: Option<Vec<u8>>,
    to: serde_bytes::ByteBuf,
    created_at_time: Option<()>,
}

#[derive(CandidType, Deserialize, Debug, PartialEq)]
enum IcpError {
    BadFee { expected_fee: Tokens },
    InsufficientFunds { balance: Tokens },
}

#[derive(CandidType, Deserialize)]
struct Account {
    owner: Principal,
    subaccount: Option<serde_bytes::ByteBuf>,
}

#[derive(CandidType)]
struct CyclesTransfer {
    from_subaccount: Option<serde_bytes::ByteBuf>,
    to: Account,
    fee: Option<Nat>,
    created_at_time: Option<u64>,
    memo: Option<serde_bytes::ByteBuf>,
    amount: Nat,
}

#[derive(CandidType, Deserialize, Debug, PartialEq)]
enum CyclesError {
    BadFee { expected_fee: Nat },
    InsufficientFunds { balance: Nat },
    GenericError { error_code: Nat, message: String },
}

/// The ICP ledger's account identifier of `owner`'s default account, as dfx prints it.
fn account_id(owner: Principal) -> serde_bytes::ByteBuf {
    use sha2::Digest;
    let hash = sha2::Sha224::new()
        .chain_update(b"\x0Aaccount-id")
        .chain_update(owner.as_slice())
        .chain_update([0u8; 32])
        .finalize();
    let mut crc = flate2::Crc::new();
    crc.update(&hash);
    serde_bytes::ByteBuf::from([&crc.sum().to_be_bytes()[..], &hash].concat())
}

fn icp_transfer(local: &mut Local, from: Principal, e8s: u64, fee: u64) -> Result<u64, IcpError> {
    let args = IcpTransfer {
        memo: 0,
        amount: Tokens { e8s },
        fee: Tokens { e8s: fee },
        from_subaccount: None,
        to: account_id(user()),
        created_at_time: None,
    };
    let reply = local
        .replica
        .update(from, icp_ledger(), "transfer", &Encode!(&args).unwrap())
        .unwrap();
    Decode!(&reply, Result<u64, IcpError>).unwrap()
}

fn cycles_transfer(local: &mut Local, from: Principal, amount: u128) -> Result<Nat, CyclesError> {
    let args = CyclesTransfer {
        from_subaccount: None,
        to: Account {
            owner: user(),
            subaccount: None,
        },
        fee: None,
        created_at_time: None,
        memo: None,
        amount: Nat::from(amount),
    };
    let reply = local
        .replica
        .update(
            from,
            cycles_ledger(),
            "icrc1_transfer",
            &Encode!(&args).unwrap(),
        )
        .unwrap();
    Decode!(&reply, Result<Nat, CyclesError>).unwrap()
}

fn balance(replica: &mut Replica, ledger: Principal, owner: Principal) -> Nat {
    let account = Account {
        owner,
        subaccount: None,
    };
    let reply = replica
        .query(
            user(),
            ledger,
            "icrc1_balance_of",
            &Encode!(&account).unwrap(),
        )
        .unwrap();
    Decode!(&reply, Nat).unwrap()
}

#[test]
fn transfers_move_balances_less_the_fee_and_refuse_what_the_ledgers_refuse() {
    let mut local = Local::new();
    let anonymous = Principal::anonymous();
    let funded = balance(&mut local.replica, icp_ledger(), anonymous);
    assert_eq!(funded, Nat::from(100_000_000u64 * 1_000_000_000));

    assert_eq!(icp_transfer(&mut local, anonymous, 500, 10_000), Ok(0));
    assert_eq!(
        icp_transfer(&mut local, anonymous, 500, 1),
        Err(IcpError::BadFee {
            expected_fee: Tokens { e8s: 10_000 }
        })
    );
    assert_eq!(
        icp_transfer(&mut local, user(), 501, 10_000),
        Err(IcpError::InsufficientFunds {
            balance: Tokens { e8s: 500 }
        })
    );
    assert_eq!(
        cycles_transfer(&mut local, anonymous, 7_000),
        Ok(Nat::from(1u8))
    );
    assert_eq!(
        cycles_transfer(&mut local, user(), 7_000),
        Err(CyclesError::InsufficientFunds {
            balance: Nat::from(7_000u32)
        }),
        "the fee is on top"
    );

    let Local { dir, replica } = local;
    drop(replica);
    let mut reopened = Replica::open(dir.path()).unwrap();
    assert_eq!(
        balance(&mut reopened, icp_ledger(), user()),
        Nat::from(500u32)
    );
    assert_eq!(
        balance(&mut reopened, icp_ledger(), anonymous),
        funded - Nat::from(10_500u32)
    );
    assert_eq!(
        balance(&mut reopened, cycles_ledger(), user()),
        Nat::from(7_000u32)
    );
}

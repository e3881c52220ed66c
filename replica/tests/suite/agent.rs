//! ic-agent 0.49 with its default checks (root key fetched from `/api/v2/status`, certificates
//! verified, query signatures verified) runs the chat lifecycle on the served replica, as an
//! Ed25519 identity, an ECDSA P-256 one and an ECDSA secp256k1 one (dfx's default kind).

use crate::common::{Local, Served, chat_wasm};
use candid::{CandidType, Decode, Encode, Principal};
use ic_agent::{
    Agent, Identity,
    identity::{BasicIdentity, Prime256v1Identity, Secp256k1Identity},
};
use ic_management_canister_types as ic;

async fn manage<R: CandidType + serde::de::DeserializeOwned>(
    agent: &Agent,
    method: &str,
    effective: Principal,
    arg: impl CandidType,
) -> R {
    let reply = agent
        .update(&Principal::management_canister(), method)
        .with_effective_canister_id(effective)
        .with_arg(Encode!(&arg).unwrap())
        .call_and_wait()
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"));
    Decode!(&reply, R).unwrap()
}

/// The chat's lifecycle through ic-agent at `url`, as `identity`; returns the chat, whose
/// messages end as `["Hi there!"]`.
pub async fn lifecycle(url: &str, identity: impl Identity + 'static) -> Principal {
    let agent = Agent::builder()
        .with_url(url)
        .with_identity(identity)
        .build()
        .unwrap();
    agent.fetch_root_key().await.unwrap();
    let anywhere = Principal::from_text("bkyz2-fmaaa-aaaaa-qaaaq-cai").unwrap();
    let args = ic::ProvisionalCreateCanisterWithCyclesArgs {
        amount: None,
        settings: None,
        specified_id: None,
        sender_canister_version: None,
    };
    let chat = manage::<ic::CanisterIdRecord>(
        &agent,
        "provisional_create_canister_with_cycles",
        anywhere,
        args,
    )
    .await
    .canister_id;
    let install = ic::InstallCodeArgs {
        mode: ic::CanisterInstallMode::Install,
        canister_id: chat,
        wasm_module: chat_wasm(),
        arg: Encode!().unwrap(),
        sender_canister_version: None,
    };
    manage::<()>(&agent, "install_code", chat, install).await;
    agent
        .update(&chat, "append")
        .with_arg(Encode!(&"Hi there!").unwrap())
        .call_and_wait()
        .await
        .unwrap();
    let dump = || async {
        let reply = agent
            .query(&chat, "dump")
            .with_arg(Encode!().unwrap())
            .call()
            .await
            .unwrap();
        Decode!(&reply, Vec<String>).unwrap()
    };
    assert_eq!(dump().await, ["Hi there!"]);

    let record = ic::CanisterIdRecord { canister_id: chat };
    manage::<()>(&agent, "stop_canister", chat, record.clone()).await;
    let take = ic::TakeCanisterSnapshotArgs {
        canister_id: chat,
        replace_snapshot: None,
        uninstall_code: None,
        sender_canister_version: None,
    };
    let snapshot = manage::<ic::Snapshot>(&agent, "take_canister_snapshot", chat, take).await;
    manage::<()>(&agent, "start_canister", chat, record.clone()).await;

    let removed = agent
        .update(&chat, "remove_spam")
        .with_arg(Encode!().unwrap())
        .call_and_wait()
        .await
        .unwrap();
    assert_eq!(Decode!(&removed, u64).unwrap(), 0);
    assert!(dump().await.is_empty());

    manage::<()>(&agent, "stop_canister", chat, record.clone()).await;
    let listed =
        manage::<Vec<ic::Snapshot>>(&agent, "list_canister_snapshots", chat, record.clone()).await;
    assert_eq!(listed, std::slice::from_ref(&snapshot));
    let load = ic::LoadCanisterSnapshotArgs {
        canister_id: chat,
        snapshot_id: snapshot.id,
        sender_canister_version: None,
    };
    manage::<()>(&agent, "load_canister_snapshot", chat, load).await;
    manage::<()>(&agent, "start_canister", chat, record).await;
    assert_eq!(dump().await, ["Hi there!"]);

    // The certified state tree as clients read it.
    let controllers = agent.read_state_canister_controllers(chat).await.unwrap();
    assert_eq!(controllers, [agent.get_principal().unwrap()]);
    let candid = agent
        .read_state_canister_metadata(chat, "candid:service")
        .await
        .unwrap();
    assert!(String::from_utf8(candid).unwrap().contains("remove_spam"));
    chat
}

#[test]
fn ic_agent_runs_the_lifecycle_with_default_checks() {
    let served = Served::new(Local::new());
    let url = served.url();
    served.block_on(lifecycle(&url, BasicIdentity::from_raw_key(&[7; 32])));
    let p256 = p256::SecretKey::from_slice(&[9; 32]).unwrap();
    served.block_on(lifecycle(&url, Prime256v1Identity::from_private_key(p256)));
    let pem = ic_secp256k1::PrivateKey::generate().serialize_rfc5915_pem();
    let secp256k1 = Secp256k1Identity::from_pem(pem.as_bytes()).unwrap();
    served.block_on(lifecycle(&url, secp256k1));
}

/// `key`'s delegation to `to`, as ic-agent signs one, lasting an hour, for `targets`.
fn delegate(
    key: &dyn Identity,
    to: &dyn Identity,
    targets: Option<Vec<Principal>>,
) -> ic_agent::identity::SignedDelegation {
    let delegation = ic_agent::identity::Delegation {
        pubkey: to.public_key().unwrap(),
        expiration: crate::http_client::now() + 3_600_000_000_000,
        targets,
        permissions: None,
    };
    let signature = key.sign_delegation(&delegation).unwrap().signature.unwrap();
    ic_agent::identity::SignedDelegation {
        delegation,
        signature,
    }
}

#[test]
fn ic_agent_runs_the_lifecycle_under_delegation_chains_of_one_and_two_with_targets() {
    use ic_agent::identity::DelegatedIdentity;
    let served = Served::new(Local::new());
    let url = served.url();
    let root_key = served.root_key();
    let root = BasicIdentity::from_raw_key(&[1; 32]);
    let session = BasicIdentity::from_raw_key(&[2; 32]);
    let chain = vec![delegate(&root, &session, None)];
    let one = DelegatedIdentity::new_with_root_key(
        root.public_key().unwrap(),
        Box::new(session),
        chain,
        &root_key,
    )
    .unwrap();
    assert_eq!(
        one.sender().unwrap(),
        root.sender().unwrap(),
        "the root's principal calls"
    );
    served.block_on(lifecycle(&url, one));

    let middle = BasicIdentity::from_raw_key(&[3; 32]);
    let session = BasicIdentity::from_raw_key(&[4; 32]);
    // The second chain allows only what the lifecycle calls: the management canister and
    // the chat it creates (the replica's second canister).
    let targets = vec![
        Principal::management_canister(),
        replica::ids::canister_id(1),
    ];
    let chain = vec![
        delegate(&root, &middle, None),
        delegate(&middle, &session, Some(targets)),
    ];
    let two = DelegatedIdentity::new_with_root_key(
        root.public_key().unwrap(),
        Box::new(session),
        chain,
        &root_key,
    )
    .unwrap();
    served.block_on(lifecycle(&url, two));
}

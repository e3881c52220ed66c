//! Who controls what the embedded backend makes: the xtask's own Ed25519 identity, never
//! the anonymous principal, whom any web page can call as while `cargo xtask serve` runs.

use candid::{Decode, Encode, Principal};
use ic_management_canister_types as ic;
use replica::{RejectCode, Replica};

use crate::common::User;

/// The principal of the identity the xtask keeps in `user`'s state directory.
pub fn me(user: &User) -> Principal {
    let pem = std::fs::read_to_string(user.state.path().join("identity.pem")).unwrap();
    let key = ic_ed25519::PrivateKey::deserialize_pkcs8_pem(&pem).unwrap();
    Principal::self_authenticating(key.public_key().serialize_rfc8410_der())
}

#[test]
fn anonymous_controls_nothing_the_demo_made_and_every_management_method_refuses_it() {
    use std::os::unix::fs::PermissionsExt;
    let user = User::new();
    user.ok(&["demo"]);
    let chat = Principal::from_text(user.json(&["status"])["canister"].as_str().unwrap()).unwrap();
    let snapshot = user.json(&["list"])["snapshots"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let snapshot_id = (0..snapshot.len() / 2)
        .map(|i| u8::from_str_radix(&snapshot[2 * i..2 * i + 2], 16).unwrap())
        .collect::<Vec<u8>>();
    let key = user.state.path().join("identity.pem");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the key is the owner's alone");

    let mut replica = Replica::open(&user.state.path().join("embedded")).unwrap();
    let status: ic::CanisterStatusResult = {
        let reply = replica
            .update(
                me(&user),
                Principal::management_canister(),
                "canister_status",
                &Encode!(&ic::CanisterIdRecord { canister_id: chat }).unwrap(),
            )
            .unwrap();
        Decode!(&reply, ic::CanisterStatusResult).unwrap()
    };
    assert_eq!(status.settings.controllers, [me(&user)]);

    let record = Encode!(&ic::CanisterIdRecord { canister_id: chat }).unwrap();
    let snapshot_args = Encode!(&ic::LoadCanisterSnapshotArgs {
        canister_id: chat,
        snapshot_id: snapshot_id.clone(),
        sender_canister_version: None,
    })
    .unwrap();
    let calls: Vec<(&str, Vec<u8>)> = vec![
        ("canister_status", record.clone()),
        ("stop_canister", record.clone()),
        ("start_canister", record.clone()),
        ("delete_canister", record.clone()),
        ("list_canister_snapshots", record.clone()),
        ("stored_chunks", record.clone()),
        ("clear_chunk_store", record.clone()),
        (
            "uninstall_code",
            Encode!(&ic::UninstallCodeArgs {
                canister_id: chat,
                sender_canister_version: None,
            })
            .unwrap(),
        ),
        (
            "update_settings",
            Encode!(&ic::UpdateSettingsArgs {
                canister_id: chat,
                settings: ic::CanisterSettings::default(),
                sender_canister_version: None,
            })
            .unwrap(),
        ),
        (
            "take_canister_snapshot",
            Encode!(&ic::TakeCanisterSnapshotArgs {
                canister_id: chat,
                replace_snapshot: None,
                uninstall_code: None,
                sender_canister_version: None,
            })
            .unwrap(),
        ),
        ("load_canister_snapshot", snapshot_args),
        (
            "delete_canister_snapshot",
            Encode!(&ic::DeleteCanisterSnapshotArgs {
                canister_id: chat,
                snapshot_id: snapshot_id.clone(),
            })
            .unwrap(),
        ),
        (
            "read_canister_snapshot_metadata",
            Encode!(&ic::ReadCanisterSnapshotMetadataArgs {
                canister_id: chat,
                snapshot_id: snapshot_id.clone(),
            })
            .unwrap(),
        ),
        (
            "read_canister_snapshot_data",
            Encode!(&ic::ReadCanisterSnapshotDataArgs {
                canister_id: chat,
                snapshot_id: snapshot_id.clone(),
                kind: ic::SnapshotDataKind::StableMemory {
                    offset: 0,
                    size: 1024,
                },
            })
            .unwrap(),
        ),
    ];
    for (method, arg) in calls {
        let reject = replica
            .update(
                Principal::anonymous(),
                Principal::management_canister(),
                method,
                &arg,
            )
            .expect_err(method);
        assert_eq!(reject.code, RejectCode::CanisterError, "{method}");
        assert_eq!(
            reject.error_code.map(|c| c.to_string()).as_deref(),
            Some("IC0512"),
            "{method}"
        );
        assert_eq!(
            reject.message,
            format!(
                "Only controllers of canister {chat} can call ic00 method {method}; 2vxsx-fae is not one of them."
            ),
            "{method}"
        );
    }
    drop(replica);
    // Nothing changed: the chat runs, holds its message and its one snapshot.
    assert_eq!(user.json(&["status"])["status"], "running");
    assert_eq!(
        user.json(&["list"])["snapshots"].as_array().unwrap().len(),
        1
    );
    assert_eq!(user.json(&["verify", &snapshot])["messages"], 1);
}

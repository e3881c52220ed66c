//! Load over HTTP: 8 clients append 1,000 messages each at once; a snapshot then holds every
//! acknowledged append; a second concurrent round follows, and a restore brings the chat back
//! to exactly the snapshot. Nothing deadlocks, nothing is lost or duplicated, and the
//! process's memory stays bounded. `LOAD_APPENDS=N` changes the appends per client.

use std::net::SocketAddr;

use crate::common::{Local, Served, chat_wasm, user};
use crate::http_client::{self, principal_of};
use candid::{CandidType, Decode, Encode, Principal};
use ic_management_canister_types as ic;

const CLIENTS: usize = 8;

/// A client with its own Ed25519 identity.
struct Client {
    key: ic_ed25519::PrivateKey,
    address: SocketAddr,
}

impl Client {
    fn new(address: SocketAddr) -> Self {
        Self {
            key: ic_ed25519::PrivateKey::generate(),
            address,
        }
    }

    /// A synchronous update call; returns the certified reply.
    fn call(
        &self,
        canister: Principal,
        effective: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Vec<u8> {
        let (status, body, request_id) = http_client::call_v4(
            self.address,
            Some(&self.key),
            canister,
            effective,
            method,
            arg,
        );
        assert_eq!(status, 200, "{method}: {}", String::from_utf8_lossy(&body));
        http_client::certified_status(&body, &request_id)(b"reply")
            .unwrap_or_else(|| panic!("{method} was not replied to"))
    }

    fn manage<R: CandidType + serde::de::DeserializeOwned>(
        &self,
        chat: Principal,
        method: &str,
        arg: impl CandidType,
    ) -> R {
        let reply = self.call(
            Principal::management_canister(),
            chat,
            method,
            Encode!(&arg).unwrap(),
        );
        Decode!(&reply, R).unwrap()
    }

    fn dump(&self, chat: Principal) -> Vec<String> {
        let reply = self.call(chat, chat, "dump", Encode!().unwrap());
        Decode!(&reply, Vec<String>).unwrap()
    }
}

/// `clients` clients appending `appends` messages each, all at once; returns them all.
fn round(address: SocketAddr, chat: Principal, name: &str, appends: usize) -> Vec<String> {
    let threads: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let name = name.to_owned();
            std::thread::spawn(move || {
                let client = Client::new(address);
                (0..appends)
                    .map(|n| {
                        let message = format!("{name} client {c} message {n}");
                        client.call(chat, chat, "append", Encode!(&message).unwrap());
                        message
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().expect("no client failed"))
        .collect()
}

fn sorted(mut messages: Vec<String>) -> Vec<String> {
    messages.sort();
    messages
}

fn resident_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb / 1024
}

/// Set in the child process the test runs in: its memory figure is then its own, not that
/// of the other tests running beside it in this binary.
const CHILD: &str = "LOAD_TEST_CHILD";

#[test]
fn concurrent_appends_snapshot_and_restore_lose_nothing() {
    if std::env::var_os(CHILD).is_some() {
        return concurrent_appends();
    }
    let run = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "load::concurrent_appends_snapshot_and_restore_lose_nothing",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && said.contains("1 passed"),
        "{said}{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

fn concurrent_appends() {
    let appends: usize = std::env::var("LOAD_APPENDS").map_or(1000, |n| n.parse().unwrap());
    let mut local = Local::new();
    let chat = local.deploy(chat_wasm());
    let admin_key = ic_ed25519::PrivateKey::generate();
    let settings = ic::CanisterSettings {
        controllers: Some(vec![user(), principal_of(&admin_key)]),
        ..Default::default()
    };
    local.update_settings(chat, settings);
    let served = Served::new(local);
    let admin = Client {
        key: admin_key,
        address: served.address(),
    };
    let record = ic::CanisterIdRecord { canister_id: chat };

    let first = round(served.address(), chat, "first", appends);
    let memory_after_first = resident_mib();
    let acknowledged = sorted(first);
    let chat_now = admin.dump(chat);
    assert_eq!(chat_now.len(), CLIENTS * appends);
    assert_eq!(
        sorted(chat_now.clone()),
        acknowledged,
        "no append lost or duplicated"
    );

    admin.manage::<()>(chat, "stop_canister", &record);
    let snapshot: ic::Snapshot = admin.manage(
        chat,
        "take_canister_snapshot",
        ic::TakeCanisterSnapshotArgs {
            canister_id: chat,
            replace_snapshot: None,
            uninstall_code: None,
            sender_canister_version: None,
        },
    );
    admin.manage::<()>(chat, "start_canister", &record);

    let second = round(served.address(), chat, "second", appends);
    assert_eq!(admin.dump(chat).len(), 2 * CLIENTS * appends);
    assert_eq!(second.len(), CLIENTS * appends);

    admin.manage::<()>(chat, "stop_canister", &record);
    admin.manage::<()>(
        chat,
        "load_canister_snapshot",
        ic::LoadCanisterSnapshotArgs {
            canister_id: chat,
            snapshot_id: snapshot.id,
            sender_canister_version: None,
        },
    );
    admin.manage::<()>(chat, "start_canister", &record);
    assert_eq!(
        admin.dump(chat),
        chat_now,
        "the restored chat is the snapshot's, in order"
    );

    let growth = resident_mib().saturating_sub(memory_after_first);
    println!(
        "{} appends by {CLIENTS} clients at once; memory grew {growth} MiB over the second round",
        2 * CLIENTS * appends
    );
    assert!(
        growth < 64,
        "memory grew {growth} MiB over a round of appends"
    );
}

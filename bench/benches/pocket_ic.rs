//! The replica binary as a PocketIC server (`$REPLICA_BIN`, which `cargo xtask bench` builds):
//! its start to the first answered `/status`, against a state-directory server's start to
//! its first `/api/v2/status`; an instance's creation (`POST /instances`), against opening a
//! replica in-process; and the chat's lifecycle through the REST interface, made of the
//! requests the pocket-ic crate makes (`update/submit_ingress_message` then
//! `update/await_ingress_message`, `read/query`), against the same lifecycle in-process.
//! Prints JSON lines (see `common/figures.rs`).

#[path = "common/figures.rs"]
mod figures;
#[path = "../../replica/tests/suite/common/http_client.rs"]
mod http_client;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use candid::{Decode, Encode, Principal};
use figures::{Spread, report};
use ic_management_canister_types as ic;
use replica::Replica;
use serde_json::json;

fn main() {
    let binary = PathBuf::from(
        std::env::var_os("REPLICA_BIN").expect("REPLICA_BIN names the replica binary"),
    );
    let target = project_tools::target_dir_of_tests(env!("CARGO_TARGET_TMPDIR"));
    let path = project_tools::chat_wasm(&target).unwrap_or_else(|e| panic!("{e}"));
    let wasm = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path:?}: {e}"));
    let group = "PocketIC server";
    let mut starts = (Vec::new(), Vec::new());
    let mut creations = (Vec::new(), Vec::new());
    let mut lifecycles = (Vec::new(), Vec::new());
    for _ in 0..figures::RUNS {
        let dir = tempfile::tempdir().unwrap();
        let (server, started) = start(
            &binary,
            dir.path(),
            &["--state-dir", "state"],
            "/api/v2/status",
        );
        stop(server);
        starts.0.push(started);
        let (server, started) = start(&binary, dir.path(), &[], "/status");
        starts.1.push(started);
        let address = address(dir.path());

        let opened = Instant::now();
        let mut replica = Replica::open(&dir.path().join("in-process")).unwrap();
        creations.0.push(opened.elapsed());
        let created = Instant::now();
        let (status, body) = http_client::json(
            address,
            "POST",
            "/instances",
            &json!({
                "subnet_config_set": { "application": [{}] }
            }),
        );
        creations.1.push(created.elapsed());
        assert_eq!(status, 200, "{body}");
        let instance = body["Created"]["instance_id"].as_u64().unwrap();

        let ran = Instant::now();
        lifecycle(&wasm, &mut |canister, method, arg, update| {
            if update {
                replica
                    .update(Principal::anonymous(), canister, method, &arg)
                    .unwrap()
            } else {
                replica
                    .query(Principal::anonymous(), canister, method, &arg)
                    .unwrap()
            }
        });
        lifecycles.0.push(ran.elapsed());
        let ran = Instant::now();
        lifecycle(&wasm, &mut |canister, method, arg, update| {
            rest_call(address, instance, canister, method, arg, update)
        });
        lifecycles.1.push(ran.elapsed());
        stop(server);
    }
    let pairs = [
        (
            "start to the first answered status",
            "state-directory server",
            starts,
        ),
        ("instance creation", "Replica::open in-process", creations),
        ("the chat's lifecycle", "in-process", lifecycles),
    ];
    for (name, baseline, (base, measured)) in pairs {
        let base = Spread::of_ms(&base);
        report(
            group,
            &format!("{name}: {baseline}"),
            "ms",
            base,
            None,
            None,
        );
        report(
            group,
            name,
            "ms",
            Spread::of_ms(&measured),
            Some((baseline, base)),
            None,
        );
    }
}

/// A call: canister, method, argument, whether an update; its reply.
type Call<'a> = dyn FnMut(Principal, &str, Vec<u8>, bool) -> Vec<u8> + 'a;

/// The chat's lifecycle: create, install, three appends, a snapshot, the bug, the restore,
/// each call through `call(canister, method, arg, is_update)`.
fn lifecycle(wasm: &[u8], call: &mut Call) {
    let management = Principal::management_canister();
    let create = ic::ProvisionalCreateCanisterWithCyclesArgs {
        amount: None,
        settings: None,
        specified_id: None,
        sender_canister_version: None,
    };
    let reply = call(
        management,
        "provisional_create_canister_with_cycles",
        Encode!(&create).unwrap(),
        true,
    );
    let chat = Decode!(&reply, ic::CanisterIdRecord).unwrap().canister_id;
    let install = ic::InstallCodeArgs {
        mode: ic::CanisterInstallMode::Install,
        canister_id: chat,
        wasm_module: wasm.to_vec(),
        arg: Encode!().unwrap(),
        sender_canister_version: None,
    };
    call(management, "install_code", Encode!(&install).unwrap(), true);
    for text in ["one", "two", "three"] {
        call(chat, "append", Encode!(&text).unwrap(), true);
    }
    let record = Encode!(&ic::CanisterIdRecord { canister_id: chat }).unwrap();
    call(management, "stop_canister", record.clone(), true);
    let take = ic::TakeCanisterSnapshotArgs {
        canister_id: chat,
        replace_snapshot: None,
        uninstall_code: None,
        sender_canister_version: None,
    };
    let taken = call(
        management,
        "take_canister_snapshot",
        Encode!(&take).unwrap(),
        true,
    );
    let snapshot = Decode!(&taken, ic::Snapshot).unwrap();
    call(management, "start_canister", record.clone(), true);
    call(chat, "remove_spam", Encode!().unwrap(), true);
    call(management, "stop_canister", record.clone(), true);
    let load = ic::LoadCanisterSnapshotArgs {
        canister_id: chat,
        snapshot_id: snapshot.id,
        sender_canister_version: None,
    };
    call(
        management,
        "load_canister_snapshot",
        Encode!(&load).unwrap(),
        true,
    );
    call(management, "start_canister", record, true);
    let dumped = call(chat, "dump", Encode!().unwrap(), false);
    assert_eq!(
        Decode!(&dumped, Vec<String>).unwrap(),
        ["one", "two", "three"]
    );
}

/// A call as the pocket-ic crate makes it: submitted, then awaited; a query at once.
fn rest_call(
    server: SocketAddr,
    instance: u64,
    canister: Principal,
    method: &str,
    arg: Vec<u8>,
    update: bool,
) -> Vec<u8> {
    let call = json!({
        "sender": STANDARD.encode(Principal::anonymous().as_slice()),
        "canister_id": STANDARD.encode(canister.as_slice()),
        "effective_principal": "None",
        "method": method,
        "payload": STANDARD.encode(arg),
    });
    let at = |op: &str| format!("/instances/{instance}/{op}");
    let (_, result) = if update {
        let (_, submitted) =
            http_client::json(server, "POST", &at("update/submit_ingress_message"), &call);
        http_client::json(
            server,
            "POST",
            &at("update/await_ingress_message"),
            &submitted["Ok"],
        )
    } else {
        http_client::json(server, "POST", &at("read/query"), &call)
    };
    let reply = result["Ok"]
        .as_str()
        .unwrap_or_else(|| panic!("{method}: {result}"));
    STANDARD.decode(reply).unwrap()
}

/// Starts the binary with `args` and a port file in `dir`; returns it once `ready_path`
/// answers 200, with how long that took.
fn start(binary: &Path, dir: &Path, args: &[&str], ready_path: &str) -> (Child, Duration) {
    let port_file = dir.join("port");
    let _ = std::fs::remove_file(&port_file);
    let started = Instant::now();
    let mut child = Command::new(binary)
        .args(args)
        .arg("--port-file")
        .arg(&port_file)
        .current_dir(dir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    if ready(&port_file, ready_path, started) {
        return (child, started.elapsed());
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server did not start");
}

/// Waits up to a minute from `started` for the port file, then a 200 from `ready_path`.
fn ready(port_file: &Path, ready_path: &str, started: Instant) -> bool {
    while started.elapsed() < Duration::from_secs(60) {
        if let Ok(written) = std::fs::read_to_string(port_file)
            && let Some(port) = written.strip_suffix('\n')
        {
            let address = SocketAddr::from(([127, 0, 0, 1], port.parse().unwrap()));
            let head = format!("GET {ready_path} HTTP/1.1\r\nHost: {address}");
            let (answer, _) = http_client::exchange(address, &head, &[]);
            if answer.starts_with("HTTP/1.1 200") {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

fn address(dir: &Path) -> SocketAddr {
    let port = std::fs::read_to_string(dir.join("port")).unwrap();
    SocketAddr::from(([127, 0, 0, 1], port.trim().parse().unwrap()))
}

fn stop(mut server: Child) {
    let _ = server.kill();
    let _ = server.wait();
}

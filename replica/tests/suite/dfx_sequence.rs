//! `dfx start` and `dfx stop` (dfx 0.32, `src/dfx/src/actors/pocketic.rs`) replayed against
//! the replica binary as dfx's PocketIC server, since dfx cannot be installed where this is
//! built: dfx's command line, its port file, its instance config JSON (as its pocket-ic
//! crate serializes it), the readiness ping, ic-agent traffic on the gateway port, the
//! REST calls of `--impersonate`, then `dfx stop` (DELETE, then SIGKILL) and a second
//! `dfx start` on the same state directory and gateway port.

use std::{
    net::SocketAddr,
    os::unix::process::CommandExt,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use candid::{Decode, Encode, Principal};
use ic_agent::identity::Secp256k1Identity;

use crate::agent::lifecycle;
use crate::http_client::{exchange, json as json_request};

/// dfx's server: `<bin> --port-file <tmp>/pocketic-tmp-port --ttl 2592000 --log-levels
/// error` in a process group of its own; the port, once the file ends in a newline.
fn start_server(tmp: &Path) -> (Child, SocketAddr) {
    let port_file = tmp.join("pocketic-tmp-port");
    let _ = std::fs::remove_file(&port_file);
    let mut child = Command::new(env!("CARGO_BIN_EXE_replica"))
        .arg("--port-file")
        .arg(&port_file)
        .args(["--ttl", "2592000", "--log-levels", "error"])
        .process_group(0)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    match port_of(&port_file) {
        Some(port) => (child, SocketAddr::from(([127, 0, 0, 1], port))),
        None => {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("no port file");
        }
    }
}

/// The port written to `port_file`, waiting up to a minute for it.
fn port_of(port_file: &Path) -> Option<u16> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let written = std::fs::read_to_string(port_file).unwrap_or_default();
        if let Some(port) = written.strip_suffix('\n') {
            return port.trim().parse().ok();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// The body of dfx 0.32's `POST /instances` for `dfx start` on the default network.
fn instance_config(state_dir: &Path, gateway_port: u16) -> serde_json::Value {
    let spec = serde_json::json!({
        "state_config": "New", "instruction_config": "Production",
        "subnet_admins": null, "cost_schedule": "Normal"
    });
    serde_json::json!({
        "subnet_config_set": {
            "nns": spec, "sns": spec, "ii": spec, "fiduciary": spec, "bitcoin": spec,
            "test_threshold_keys": null,
            "system": [], "application": [spec], "cloud_engine": [], "verified_application": []
        },
        "http_gateway_config": {
            "ip_addr": "127.0.0.1", "port": gateway_port, "domains": null,
            "https_config": null, "domain_custom_provider_local_file": null
        },
        "state_dir": state_dir,
        "icp_config": {
            "beta_features": "Enabled", "function_name_length_limits": null,
            "canister_execution_rate_limiting": null
        },
        "log_level": "ERROR",
        "bitcoind_addr": null,
        "dogecoind_addr": null,
        "icp_features": {
            "registry": null, "cycles_minting": null, "icp_token": null, "cycles_token": null,
            "nns_governance": null, "sns": null, "ii": null, "nns_ui": null, "bitcoin": null,
            "dogecoin": null, "canister_migration": null
        },
        "incomplete_state": null,
        "initial_time": { "AutoProgress": { "artificial_delay_ms": 600 } },
        "mainnet_nns_subnet_id": null,
        "disable_ingress_validation": null
    })
}

/// dfx's `initialize_pocketic`: the instance, its default effective canister id, and the
/// readiness ping through ic-agent at `/instances/<id>/`.
fn create_instance(server: SocketAddr, state_dir: &Path, gateway_port: u16) -> (u64, Principal) {
    let (status, created) = json_request(
        server,
        "POST",
        "/instances",
        &instance_config(state_dir, gateway_port),
    );
    assert_eq!(status, 200, "{created}");
    let created = &created["Created"];
    let id = created["instance_id"].as_u64().unwrap();
    let topology = &created["topology"];
    for (_, subnet) in topology["subnet_configs"].as_object().unwrap() {
        for field in [
            "subnet_kind",
            "subnet_admins",
            "cost_schedule",
            "subnet_seed",
            "instruction_config",
            "canister_ranges",
        ] {
            assert!(subnet.get(field).is_some(), "dfx reads {field}: {subnet}");
        }
    }
    let effective = topology["default_effective_canister_id"]["canister_id"]
        .as_str()
        .unwrap();
    let effective = Principal::from_slice(&STANDARD.decode(effective).unwrap());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let agent = ic_agent::Agent::builder()
            .with_url(format!(
                "http://localhost:{}/instances/{id}/",
                server.port()
            ))
            .build()
            .unwrap();
        let status = agent.status().await.unwrap();
        assert_eq!(status.replica_health_status.as_deref(), Some("healthy"));
    });
    (id, effective)
}

/// `dfx stop`: `DELETE /instances/<id>`, then SIGKILL.
fn stop(mut child: Child, server: SocketAddr, id: u64) {
    let (status, _) = json_request(
        server,
        "DELETE",
        &format!("/instances/{id}"),
        &serde_json::Value::Null,
    );
    assert_eq!(status, 200);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// `dfx canister call --impersonate`: a REST submit to instance 0, then `ingress_status`
/// polled without ticks (the instance progresses by itself).
fn impersonated_dump(server: SocketAddr, sender: Principal, chat: Principal) -> Vec<String> {
    let call = serde_json::json!({
        "sender": STANDARD.encode(sender.as_slice()),
        "canister_id": STANDARD.encode(chat.as_slice()),
        "effective_principal": { "CanisterId": STANDARD.encode(chat.as_slice()) },
        "method": "dump",
        "payload": STANDARD.encode(Encode!().unwrap()),
    });
    let (status, submitted) = json_request(
        server,
        "POST",
        "/instances/0/update/submit_ingress_message",
        &call,
    );
    assert_eq!(status, 200, "{submitted}");
    let args = serde_json::json!({ "raw_message_id": submitted["Ok"], "raw_caller": null });
    let started = Instant::now();
    loop {
        let (status, answer) =
            json_request(server, "POST", "/instances/0/read/ingress_status", &args);
        assert_eq!(status, 200, "{answer}");
        if let Some(reply) = answer["Ok"].as_str() {
            return Decode!(&STANDARD.decode(reply).unwrap(), Vec<String>).unwrap();
        }
        assert!(answer.is_null(), "{answer}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never answered"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn dfx_start_deploy_stop_and_start_again_keep_the_chat() {
    let tmp = tempfile::tempdir().unwrap();
    let state_dir = tmp.path().join("network/local/state/replicated_state");
    let gateway_port = free_port();
    let gateway = format!("http://127.0.0.1:{gateway_port}");

    let (child, server) = start_server(tmp.path());
    let (id, effective) = create_instance(server, &state_dir, gateway_port);
    assert_eq!(id, 0);
    assert_eq!(effective.to_text(), "bkyz2-fmaaa-aaaaa-qaaaq-cai");
    // dfx's default identity kind, on the gateway port as every dfx command's agent.
    let pem = ic_secp256k1::PrivateKey::generate().serialize_rfc5915_pem();
    let identity = Secp256k1Identity::from_pem(pem.as_bytes()).unwrap();
    let owner = ic_agent::Identity::sender(&identity).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let chat = runtime.block_on(lifecycle(&gateway, identity));
    assert_eq!(impersonated_dump(server, owner, chat), ["Hi there!"]);
    stop(child, server, id);

    // `dfx start` without --clean: a new server, the same state and gateway port.
    let (child, server) = start_server(tmp.path());
    let (id, _) = create_instance(server, &state_dir, gateway_port);
    runtime.block_on(async {
        let agent = ic_agent::Agent::builder()
            .with_url(&gateway)
            .build()
            .unwrap();
        agent.fetch_root_key().await.unwrap();
        let reply = agent
            .query(&chat, "dump")
            .with_arg(Encode!().unwrap())
            .call()
            .await
            .unwrap();
        assert_eq!(Decode!(&reply, Vec<String>).unwrap(), ["Hi there!"]);
    });
    stop(child, server, id);
}

#[test]
fn what_the_replica_cannot_be_is_refused_in_pocketics_error_shape() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, server) = start_server(tmp.path());
    let mut config = instance_config(&tmp.path().join("state"), 0);
    config["icp_features"]["nns_governance"] = "DefaultConfig".into();
    let (status, refused) = json_request(server, "POST", "/instances", &config);
    assert_eq!(status, 400);
    let message = refused["Error"]["message"].as_str().unwrap();
    assert!(message.contains("no nns_governance"), "{message}");

    let mut config = instance_config(&tmp.path().join("state"), 0);
    config["subnet_config_set"]["application"] = serde_json::json!([{}, {}]);
    let (_, refused) = json_request(server, "POST", "/instances", &config);
    let message = refused["Error"]["message"].as_str().unwrap();
    assert!(message.contains("2 were asked for"), "{message}");

    let (status, missing) = json_request(
        server,
        "GET",
        "/instances/7/read/get_time",
        &serde_json::Value::Null,
    );
    assert_eq!(status, 404);
    assert_eq!(missing["message"], "there is no instance 7");
    let (_, listed) = json_request(server, "GET", "/instances", &serde_json::Value::Null);
    assert_eq!(listed, serde_json::json!([]), "nothing was made");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The REST interface calls as anyone, so no web page may drive it: a cross-origin
/// preflight gets no CORS header, and a "simple" text/plain POST (which needs none) is
/// refused before it runs.
#[test]
fn a_web_page_cannot_drive_the_rest_interface() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut child, server) = start_server(tmp.path());
    let (id, _) = create_instance(server, &tmp.path().join("state"), 0);
    let preflight = format!(
        "OPTIONS /instances/{id}/update/add_cycles HTTP/1.1\r\nHost: localhost\r\nOrigin: http://evil.example\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type"
    );
    let (answer, _) = exchange(server, &preflight, &[]);
    assert!(
        !answer
            .to_ascii_lowercase()
            .contains("access-control-allow-origin"),
        "{answer}"
    );
    let body = br#"{"subnet_config_set":{}}"#;
    let simple = format!(
        "POST /instances HTTP/1.1\r\nHost: localhost\r\nOrigin: http://evil.example\r\nContent-Type: text/plain\r\nContent-Length: {}",
        body.len()
    );
    let (answer, refused) = exchange(server, &simple, body);
    assert!(answer.starts_with("HTTP/1.1 415"), "{answer}");
    let refused: serde_json::Value = serde_json::from_slice(&refused).unwrap();
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("Content-Type: application/json")
    );
    let (_, listed) = json_request(server, "GET", "/instances", &serde_json::Value::Null);
    assert_eq!(
        listed,
        serde_json::json!(["Available"]),
        "no second instance"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

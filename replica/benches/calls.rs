//! Update calls to the chat canister: in-process (`Replica::update`, the baseline) and over
//! HTTP as a certified synchronous call (`/api/v4/…/call`, signed with Ed25519), in the same
//! run. Prints calls per second, latency p50/p99, and the HTTP/in-process ratio.
//! `cargo bench -p replica --bench calls` (needs `CHAT_WASM`, set by `cargo xtask build`'s
//! output: `CHAT_WASM=target/canister/chat.wasm`).

#[path = "../tests/common/http_client.rs"]
mod http_client;

use std::time::{Duration, Instant};

use candid::{Decode, Encode, Principal};
use ic_management_canister_types as ic;
use replica::{Replica, http};

const CALLS: usize = 300;

fn main() {
    let wasm = std::fs::read(
        std::env::var("CHAT_WASM")
            .expect("set CHAT_WASM=target/canister/chat.wasm (run `cargo xtask build` first)"),
    )
    .expect("CHAT_WASM names the built chat canister");
    let (in_process, http) = (in_process(&wasm), over_http(&wasm));
    println!("| {CALLS} appends | calls/s | p50 | p99 |");
    println!("|---|---|---|---|");
    for (name, latencies) in [
        ("in-process (baseline)", &in_process),
        ("HTTP, certified, signed", &http),
    ] {
        println!(
            "| {name} | {:.0} | {} | {} |",
            rate(latencies),
            us(percentile(latencies, 50)),
            us(percentile(latencies, 99))
        );
    }
    println!(
        "\nHTTP / in-process time per call: {:.2}×",
        rate(&in_process) / rate(&http)
    );
}

fn deploy(dir: &std::path::Path, wasm: &[u8]) -> (Replica, Principal) {
    let mut replica = Replica::open(dir).unwrap();
    let me = Principal::anonymous();
    let args = ic::ProvisionalCreateCanisterWithCyclesArgs {
        amount: None,
        settings: None,
        specified_id: None,
        sender_canister_version: None,
    };
    let created = replica
        .update(
            me,
            Principal::management_canister(),
            "provisional_create_canister_with_cycles",
            &Encode!(&args).unwrap(),
        )
        .unwrap();
    let chat = Decode!(&created, ic::CanisterIdRecord).unwrap().canister_id;
    let install = ic::InstallCodeArgs {
        mode: ic::CanisterInstallMode::Install,
        canister_id: chat,
        wasm_module: wasm.to_vec(),
        arg: Encode!().unwrap(),
        sender_canister_version: None,
    };
    replica
        .update(
            me,
            Principal::management_canister(),
            "install_code",
            &Encode!(&install).unwrap(),
        )
        .unwrap();
    (replica, chat)
}

fn in_process(wasm: &[u8]) -> Vec<Duration> {
    let dir = tempfile::tempdir().unwrap();
    let (mut replica, chat) = deploy(dir.path(), wasm);
    (0..CALLS)
        .map(|n| {
            let arg = Encode!(&format!("message {n}")).unwrap();
            let started = Instant::now();
            replica
                .update(Principal::anonymous(), chat, "append", &arg)
                .unwrap();
            started.elapsed()
        })
        .collect()
}

fn over_http(wasm: &[u8]) -> Vec<Duration> {
    let dir = tempfile::tempdir().unwrap();
    let (replica, chat) = deploy(dir.path(), wasm);
    let keys = http::Keys::load_or_create(&replica).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime
        .block_on(http::serve(replica, keys, "127.0.0.1:0".parse().unwrap()))
        .unwrap();
    let key = ic_ed25519::PrivateKey::generate();
    let sender = http_client::principal_of(&key);
    let path = format!("/api/v4/canister/{chat}/call");
    let latencies = (0..CALLS)
        .map(|n| {
            let expiry = http_client::now() + 60_000_000_000;
            let content = http_client::call_content(
                sender,
                chat,
                "append",
                Encode!(&format!("message {n}")).unwrap(),
                expiry,
            );
            let body = http_client::envelope(content, Some(&key));
            let started = Instant::now();
            let (status, _) = http_client::post(server.address, &path, &body);
            assert_eq!(status, 200);
            started.elapsed()
        })
        .collect();
    runtime.block_on(server.stop());
    latencies
}

fn rate(latencies: &[Duration]) -> f64 {
    latencies.len() as f64 / latencies.iter().sum::<Duration>().as_secs_f64()
}

fn percentile(latencies: &[Duration], p: usize) -> Duration {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

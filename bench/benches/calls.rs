//! Calls to the chat canister: appends in-process (`Replica::update`, the baseline) and over
//! HTTP as certified synchronous calls (`/api/v4/…/call`, signed with Ed25519), in the same
//! run — calls per second and latency p50/p99 — and the instructions (performance counter)
//! an `append` and a `page` take as the chat grows to 1, 10,000 and 1,000,000 messages.
//! Prints JSON lines (see `common/figures.rs`); `-- --quick` runs fewer calls and stops at
//! 1,000 messages. Runs the canister `cargo xtask build` wrote (or `$CHAT_WASM`). Calls
//! between canisters: round trips of the relay calling another relay (A calls B, B replies)
//! and 10-deep chains, against the in-process appends of the same run.

#[path = "common/figures.rs"]
mod figures;
// The replica tests' own client, so that the bench signs and reads calls as they do.
#[path = "../../replica/tests/suite/common/http_client.rs"]
mod http_client;

use std::time::{Duration, Instant};

use candid::{Decode, Encode, Principal};
use figures::{Spread, at_least, report};
use ic_management_canister_types as ic;
use replica::{Replica, http};

struct Sizes {
    in_process: usize,
    http: usize,
    chat_lengths: &'static [u64],
}

fn main() {
    let target = project_tools::target_dir_of_tests(env!("CARGO_TARGET_TMPDIR"));
    let path = project_tools::chat_wasm(&target).unwrap_or_else(|e| panic!("{e}"));
    let wasm = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path:?}: {e}"));
    let sizes = if std::env::args().any(|a| a == "--quick") {
        Sizes {
            in_process: 300,
            http: 100,
            chat_lengths: &[1, 1_000],
        }
    } else {
        Sizes {
            in_process: 3_000,
            http: 300,
            chat_lengths: &[1, 10_000, 1_000_000],
        }
    };
    let in_process: Vec<Vec<Duration>> = (0..figures::RUNS)
        .map(|_| in_process(&wasm, sizes.in_process))
        .collect();
    let over_http: Vec<Vec<Duration>> = (0..figures::RUNS)
        .map(|_| over_http(&wasm, sizes.http))
        .collect();
    let concurrent: Vec<f64> = (0..figures::RUNS)
        .map(|_| concurrent_http(&wasm, CLIENTS, sizes.http))
        .collect();
    let base = rates(&in_process);
    let group = "appends to the chat";
    report(
        group,
        "in-process",
        "calls/s",
        base,
        None,
        at_least(base, 10_000.0, "≥ 10,000/s"),
    );
    let certified = rates(&over_http);
    report(
        group,
        "HTTP, signed, certified",
        "calls/s",
        certified,
        Some(("in-process", base)),
        at_least(certified, 1_000.0, "≥ 1,000/s"),
    );
    let concurrent = Spread::of(&concurrent);
    report(
        group,
        "HTTP, signed, certified, 8 clients at once",
        "calls/s",
        concurrent,
        Some(("in-process", base)),
        at_least(concurrent, base.median / 4.0, "≥ 0.25× in-process"),
    );
    for (name, runs) in [("in-process", &in_process), ("HTTP, certified", &over_http)] {
        for p in [50, 99] {
            let spread = Spread::of(
                &runs
                    .iter()
                    .map(|l| percentile(l, p).as_secs_f64() * 1e6)
                    .collect::<Vec<_>>(),
            );
            report(
                group,
                &format!("{name} latency p{p}"),
                "µs",
                spread,
                None,
                None,
            );
        }
    }
    between_canisters(base, sizes.in_process);
    instructions(&wasm, sizes.chat_lengths);
}

/// Round trips between two relays, and chains through ten, in-process.
fn between_canisters(appends: Spread, calls: usize) {
    let target = project_tools::target_dir_of_tests(env!("CARGO_TARGET_TMPDIR"));
    let path = project_tools::canister_wasm(&target, "relay").unwrap_or_else(|e| panic!("{e}"));
    let relay = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path:?}: {e}"));
    let group = "calls between canisters";
    let mut round_trips = Vec::new();
    let mut chains = Vec::new();
    for _ in 0..figures::RUNS {
        let dir = tempfile::tempdir().unwrap();
        let (mut replica, relays) = deploy_many(dir.path(), &relay, 10);
        let arg = Encode!(&relays[1], &(calls as u32)).unwrap();
        let started = Instant::now();
        replica
            .update(Principal::anonymous(), relays[0], "count_on", &arg)
            .unwrap();
        round_trips.push(calls as f64 / started.elapsed().as_secs_f64());
        let arg = Encode!(&relays[1..].to_vec(), &"go").unwrap();
        let chained = calls / 10;
        let started = Instant::now();
        for _ in 0..chained {
            replica
                .update(Principal::anonymous(), relays[0], "chain", &arg)
                .unwrap();
        }
        chains.push(chained as f64 / started.elapsed().as_secs_f64());
    }
    let round_trips = Spread::of(&round_trips);
    report(
        group,
        "round trips A → B → A, in-process",
        "calls/s",
        round_trips,
        Some(("in-process appends", appends)),
        at_least(round_trips, appends.median / 2.0, "≥ 0.5× appends"),
    );
    report(
        group,
        "10-deep chains, in-process",
        "chains/s",
        Spread::of(&chains),
        Some(("in-process appends", appends)),
        None,
    );
}

fn rates(runs: &[Vec<Duration>]) -> Spread {
    Spread::of(&runs.iter().map(|l| rate(l)).collect::<Vec<_>>())
}

/// Instructions of an `append` and of a `page` of 100 messages from the middle, as the
/// chat grows.
fn instructions(wasm: &[u8], lengths: &[u64]) {
    let dir = tempfile::tempdir().unwrap();
    let (mut replica, chat) = deploy(dir.path(), wasm);
    let me = Principal::anonymous();
    let mut len = 0;
    for &target in lengths {
        while len < target - 1 {
            append(&mut replica, chat, len);
            len += 1;
        }
        let appends: Vec<f64> = (0..figures::RUNS)
            .map(|_| {
                append(&mut replica, chat, len);
                len += 1;
                replica.last_instructions() as f64
            })
            .collect();
        let group = "chat canister, instructions";
        let at = format!("at {target} messages");
        report(
            group,
            &format!("append, {at}"),
            "instructions",
            Spread::of(&appends),
            None,
            None,
        );
        let arg = Encode!(&(len / 2), &100u32).unwrap();
        let pages: Vec<f64> = (0..figures::RUNS)
            .map(|_| {
                let reply = replica.query(me, chat, "page", &arg).unwrap();
                assert!(!Decode!(&reply, Vec<String>).unwrap().is_empty());
                replica.last_instructions() as f64
            })
            .collect();
        report(
            group,
            &format!("page of 100, {at}"),
            "instructions",
            Spread::of(&pages),
            None,
            None,
        );
    }
}

fn append(replica: &mut Replica, chat: Principal, n: u64) {
    let arg = Encode!(&format!("message {n}")).unwrap();
    replica
        .update(Principal::anonymous(), chat, "append", &arg)
        .unwrap();
}

fn deploy(dir: &std::path::Path, wasm: &[u8]) -> (Replica, Principal) {
    let (replica, mut canisters) = deploy_many(dir, wasm, 1);
    (replica, canisters.remove(0))
}

fn deploy_many(dir: &std::path::Path, wasm: &[u8], n: usize) -> (Replica, Vec<Principal>) {
    let mut replica = Replica::open(dir).unwrap();
    let canisters = (0..n).map(|_| install_new(&mut replica, wasm)).collect();
    (replica, canisters)
}

fn install_new(replica: &mut Replica, wasm: &[u8]) -> Principal {
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
    chat
}

fn in_process(wasm: &[u8], calls: usize) -> Vec<Duration> {
    let dir = tempfile::tempdir().unwrap();
    let (mut replica, chat) = deploy(dir.path(), wasm);
    (0..calls)
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

fn over_http(wasm: &[u8], calls: usize) -> Vec<Duration> {
    let dir = tempfile::tempdir().unwrap();
    let (runtime, server, chat) = serve(dir.path(), wasm);
    let key = ic_ed25519::PrivateKey::generate();
    let sender = http_client::principal_of(&key);
    let path = format!("/api/v4/canister/{chat}/call");
    let mut connection = http_client::Connection::open(server.address);
    let latencies = (0..calls)
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
            let (status, _) = connection.post(&path, &body);
            assert_eq!(status, 200);
            started.elapsed()
        })
        .collect();
    runtime.block_on(server.stop());
    latencies
}

/// Concurrent HTTP clients, as a served replica meets them.
const CLIENTS: usize = 8;

/// Calls per second of `clients` clients, each making `calls` certified synchronous appends
/// one after another on its own kept-alive connection, all at once.
fn concurrent_http(wasm: &[u8], clients: usize, calls: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let (runtime, server, chat) = serve(dir.path(), wasm);
    let address = server.address;
    let path = format!("/api/v4/canister/{chat}/call");
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|client| {
            let path = path.clone();
            std::thread::spawn(move || {
                let key = ic_ed25519::PrivateKey::generate();
                let sender = http_client::principal_of(&key);
                let mut connection = http_client::Connection::open(address);
                for n in 0..calls {
                    let expiry = http_client::now() + 60_000_000_000;
                    let message = Encode!(&format!("client {client} message {n}")).unwrap();
                    let content =
                        http_client::call_content(sender, chat, "append", message, expiry);
                    let body = http_client::envelope(content, Some(&key));
                    let (status, _) = connection.post(&path, &body);
                    assert_eq!(status, 200);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let rate = (clients * calls) as f64 / started.elapsed().as_secs_f64();
    runtime.block_on(server.stop());
    rate
}

/// The chat deployed in `dir` and served on a free port.
fn serve(dir: &std::path::Path, wasm: &[u8]) -> (tokio::runtime::Runtime, http::Server, Principal) {
    let (replica, chat) = deploy(dir, wasm);
    let keys = replica.keys().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime
        .block_on(http::serve(replica, keys, "127.0.0.1:0".parse().unwrap()))
        .unwrap();
    (runtime, server, chat)
}

fn rate(latencies: &[Duration]) -> f64 {
    latencies.len() as f64 / latencies.iter().sum::<Duration>().as_secs_f64()
}

fn percentile(latencies: &[Duration], p: usize) -> Duration {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

//! The served path killed under load: the `replica` binary serves a counter while clients
//! call it over HTTP (signed, synchronous v4 calls, each a new request), and it is killed
//! with SIGKILL several times at random instants and started again on the same state and
//! port. The clients send each call, byte for byte, until it is answered with a certified
//! reply, as agents retry. Every call must have run exactly once: the replies are 1..=N,
//! each once, and the counter ends at N — none lost, none run again after a restart.
//! `SERVE_KILLS=N` sets the number of kills (default 10); the seed is printed.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use crate::common::{Local, Random, wat};
use crate::http_client::{call_content, envelope, now, principal_of};
use ic_certification::LookupResult;
use replica::{Principal, Replica};

const COUNTER: &str = include_str!("common/counter.wat");
const CLIENTS: usize = 4;
const CALLS_PER_CLIENT: usize = 150;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The replica binary serving `dir` on `port`, once it accepts connections.
fn serve(dir: &Path, port: u16) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_replica"))
        .arg("--state-dir")
        .arg(dir)
        .args(["--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the replica did not start serving"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

/// A POST that reports a connection cut by the kill instead of panicking.
fn try_post(address: SocketAddr, path: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(address)?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/cbor\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(&[head.as_bytes(), body].concat())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let cut = || std::io::Error::other("the answer was cut off");
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(cut)?;
    let status = std::str::from_utf8(response.get(9..12).ok_or_else(cut)?)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(cut)?;
    Ok((status, response[split + 4..].to_vec()))
}

/// The counter's value in a certified reply to `request_id`, checked against `root_key`.
fn certified_count(root_key: &[u8], body: &[u8], request_id: &[u8]) -> u32 {
    let certificate = crate::common::replied_certificate(root_key, body);
    let path: [&[u8]; 3] = [b"request_status", request_id, b"reply"];
    let LookupResult::Found(reply) = certificate.tree.lookup_path(&path) else {
        panic!("a replied call's certificate holds its reply");
    };
    u32::from_le_bytes(reply[4..8].try_into().unwrap())
}

/// Sends `calls` new calls to `counter`, each until it is answered; returns the counts.
fn client(address: SocketAddr, root_key: &[u8], counter: Principal, calls: usize) -> Vec<u32> {
    let key = ic_ed25519::PrivateKey::generate();
    let path = format!("/api/v4/canister/{counter}/call");
    let mut counts = Vec::new();
    for _ in 0..calls {
        let content = call_content(
            principal_of(&key),
            counter,
            "inc",
            Vec::new(),
            now() + 120_000_000_000,
        );
        let request_id = content.to_request_id();
        let signed = envelope(content, Some(&key));
        let started = Instant::now();
        loop {
            assert!(
                started.elapsed() < Duration::from_secs(100),
                "a call was never answered"
            );
            match try_post(address, &path, &signed) {
                Ok((200, body)) => {
                    counts.push(certified_count(root_key, &body, request_id.as_slice()));
                    break;
                }
                // Not answered in time, or the server is going down: ask again.
                Ok((202 | 503, _)) | Err(_) => std::thread::sleep(Duration::from_millis(20)),
                Ok((status, body)) => panic!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&body).into_owned()
                ),
            }
        }
    }
    counts
}

#[test]
fn serve_killed_under_load_runs_every_acknowledged_call_exactly_once() {
    let kills: usize = std::env::var("SERVE_KILLS").map_or(10, |n| n.parse().unwrap());
    let mut local = Local::new();
    let counter = local.deploy(wat(COUNTER));
    let root_key = local.replica.keys().unwrap().root_der;
    let Local { dir, replica } = local;
    drop(replica);
    let port = free_port();
    let address: SocketAddr = ([127, 0, 0, 1], port).into();
    let server = Arc::new(Mutex::new(serve(dir.path(), port)));

    let done = Arc::new(AtomicBool::new(false));
    let seed = now() | 1;
    println!("seed {seed}");
    let killer = {
        let (server, done, state) = (server.clone(), done.clone(), dir.path().to_owned());
        std::thread::spawn(move || {
            let mut random = Random(seed);
            let mut landed = 0;
            for _ in 0..kills {
                std::thread::sleep(Duration::from_millis(100 + random.below(400)));
                if done.load(Ordering::SeqCst) {
                    break;
                }
                let mut server = server.lock().unwrap();
                server.kill().unwrap();
                server.wait().unwrap();
                landed += 1;
                *server = serve(&state, port);
            }
            landed
        })
    };
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let root_key = root_key.clone();
            std::thread::spawn(move || client(address, &root_key, counter, CALLS_PER_CLIENT))
        })
        .collect();
    let mut counts: Vec<u32> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    done.store(true, Ordering::SeqCst);
    let landed = killer.join().unwrap();
    let mut server = server.lock().unwrap();
    server.kill().unwrap();
    server.wait().unwrap();

    let total = (CLIENTS * CALLS_PER_CLIENT) as u32;
    counts.sort_unstable();
    let expected: Vec<u32> = (1..=total).collect();
    assert_eq!(
        counts, expected,
        "every call answered once, with its own count (seed {seed}, {landed} kills)"
    );
    let mut reopened = Replica::open(dir.path()).unwrap();
    let read = reopened
        .query(Principal::anonymous(), counter, "read", &[])
        .unwrap();
    assert_eq!(
        u32::from_le_bytes(read[4..8].try_into().unwrap()),
        total,
        "the counter ran each call once (seed {seed}, {landed} kills)"
    );
    println!("{landed} kills under load, {total} calls, each run exactly once");
}

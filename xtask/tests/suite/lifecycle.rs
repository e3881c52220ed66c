//! The lifecycle as a user runs it: the xtask binary, invoked command by command on the
//! embedded backend, with its state in a temporary directory. `cargo xtask test` builds the
//! canister and sets `CHAT_WASM`, which the binary installs instead of building again.

use std::process::Command;

use crate::common::User;

#[test]
fn the_demo_walks_the_seed_and_verifies_the_restore() {
    let user = User::new();
    let out = user.ok(&["demo"]);
    for expected in [
        "[1/8] clean start",
        "[8/8] verify",
        "  ()",
        "(vec { \"Hi there!\" })",
        "(0 : nat64)",
        "(vec {})",
        "snapshot 000000000000000080000000001000010101",
        "verified: the chat equals snapshot",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn snapshot_and_restore_work_as_separate_invocations() {
    let user = User::new();
    user.ok(&["start"]);
    user.ok(&["deploy"]);
    user.ok(&["populate", "Hi there!", "second message"]);
    let snapshot = user.json(&["snapshot"]);
    let id = snapshot["snapshot_id"].as_str().unwrap().to_owned();
    assert_eq!(snapshot["messages"], 2);

    let broken = user.json(&["break"]);
    assert_eq!(broken["removed"], 0);
    let mismatch = user.run(&["verify", &id]);
    assert_eq!(
        mismatch.status.code(),
        Some(3),
        "a lost chat fails verification"
    );

    let listed = user.json(&["list"]);
    assert_eq!(listed["snapshots"][0]["id"], id.as_str());
    let restored = user.json(&["restore"]);
    assert_eq!(
        restored["snapshot_id"],
        id.as_str(),
        "the newest snapshot by default"
    );
    let verified = user.json(&["verify"]);
    assert_eq!(verified["verified"], true);
    assert_eq!(verified["messages"], 2);
    assert_eq!(user.json(&["status"])["status"], "running");
}

#[test]
fn populate_with_many_messages_and_delete_a_snapshot() {
    let user = User::new();
    user.ok(&["start"]);
    user.ok(&["deploy"]);
    assert_eq!(user.json(&["populate", "--messages", "50"])["appended"], 50);
    let id = user.json(&["snapshot"])["snapshot_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(user.json(&["delete", &id])["deleted"], id.as_str());
    assert!(
        user.json(&["list"])["snapshots"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn bad_arguments_get_one_clear_line() {
    let user = User::new();
    let malformed = user.run(&["restore", "not-hex"]);
    assert_eq!(malformed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&malformed.stderr).contains("malformed snapshot id"));

    let unknown = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["--backend", "nonsense", "list"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));

    user.ok(&["start"]);
    user.ok(&["deploy"]);
    let missing = user.run(&["restore", "00000000000000ff80000000001000010101"]);
    assert_eq!(missing.status.code(), Some(1));
    let error = String::from_utf8_lossy(&missing.stderr);
    assert!(error.contains("the canister has no snapshots"), "{error}");
    assert_eq!(
        user.json(&["status"])["status"],
        "running",
        "a failed restore leaves it running"
    );

    let no_dfx = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["--backend", "dfx", "status"])
        .env("PATH", user.state.path())
        .output()
        .unwrap();
    assert_eq!(no_dfx.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&no_dfx.stderr).contains("dfx is not on PATH"));
}

#[test]
fn guard_restores_the_chat_that_remove_spam_loses_and_keeps_a_safe_call() {
    let user = User::new();
    user.ok(&["start"]);
    user.ok(&["deploy"]);
    user.ok(&["populate", "Hi there!", "hello"]);
    let guarded = user.json(&["guard", "remove_spam"]);
    assert_eq!(
        (guarded["before"].as_u64(), guarded["after"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(guarded["restored"], true);
    assert_eq!(user.json(&["verify"])["messages"], 2, "the chat is intact");

    let kept = user.json(&["guard", "append", "one more"]);
    assert_eq!(
        (kept["after"].as_u64(), kept["restored"].as_bool()),
        (Some(3), Some(false))
    );
}

/// Whoever starts `serve` may stop reading its output (a launcher, `| head -1`): it serves on.
#[test]
fn serve_keeps_serving_after_its_output_is_closed() {
    use std::io::{Read, Write};
    let state = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut served = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["serve", "--port", &port.to_string(), "--state"])
        .arg(state.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Closed before it prints a word.
    drop(served.stdout.take());
    let mut response = Vec::new();
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            continue;
        };
        write!(
            stream,
            "GET /api/v2/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let _ = stream.read_to_end(&mut response);
        break;
    }
    let alive = served.try_wait().unwrap().is_none();
    let _ = served.kill();
    let _ = served.wait();
    assert!(alive, "serve died when its output was closed");
    assert!(
        response.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&response)
    );
}

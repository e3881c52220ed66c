//! The dfx and icp backends' command lines, checked end to end: the demo runs through
//! stand-ins for the two tools (`tests/sdk/`), which answer with the tools' real output
//! strings and log what they were asked. Neither SDK can be installed on the machines this
//! project is built on; the stand-ins stop at the command line, where the real tools begin.

use std::{fs, path::Path, process::Command};

/// Copies the stand-in for `tool` into a fresh directory and runs the demo through it.
fn demo_through(tool: &str, extra: &[&str]) -> (String, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join(tool);
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/sdk")
            .join(tool),
        &fake,
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap()
    );
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["--state-dir"])
        .arg(dir.path().join("state"))
        .args(extra)
        .arg("demo")
        .env("PATH", path)
        .env("ICP_BIN", &fake)
        .env(
            "ICP_CLI_NETWORK_LAUNCHER_PATH",
            "/the/stand-in/needs/no/launcher",
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let log = fs::read_to_string(dir.path().join("commands.log")).unwrap();
    (stdout, log.lines().map(str::to_owned).collect())
}

#[test]
fn auto_picks_dfx_and_the_demo_runs_the_seed_commands() {
    let (stdout, commands) = demo_through("dfx", &[]);
    assert!(
        stdout.contains("backend: dfx (auto: dfx is on PATH)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("verified: the chat equals snapshot 000000000000000080000000001000010101")
    );
    assert!(stdout.contains("  $ dfx canister call chat append '(\"Hi there!\")' --output raw"));
    let expected = [
        "dfx stop",
        "dfx start --clean --background",
        "dfx deploy chat --yes",
        "dfx canister id chat",
        r#"dfx canister call chat append ("Hi there!") --output raw"#,
        "dfx canister call chat dump () --output raw --query",
        "dfx canister stop chat",
        "dfx canister snapshot create chat",
        "dfx canister start chat",
        "dfx canister call chat remove_spam () --output raw",
        "dfx canister call chat dump () --output raw --query",
        "dfx canister snapshot list chat",
        "dfx canister stop chat",
        "dfx canister snapshot load chat 000000000000000080000000001000010101",
        "dfx canister start chat",
        "dfx canister call chat dump () --output raw --query",
    ];
    assert_eq!(commands, expected);
}

#[test]
fn the_icp_backend_runs_the_demo_through_icp_json_output() {
    let (stdout, commands) = demo_through("icp", &["--backend", "icp"]);
    assert!(
        stdout.contains("verified: the chat equals snapshot"),
        "{stdout}"
    );
    let expected = [
        "icp network stop",
        "icp network start -d",
        "icp deploy chat --yes -e local",
        "icp canister status chat --json -e local",
        r#"icp canister call chat append ("Hi there!") -o hex -e local"#,
        "icp canister call chat dump () -o hex --query -e local",
        "icp canister stop chat -e local",
        "icp canister snapshot create chat --json -e local",
        "icp canister start chat -e local",
        "icp canister call chat remove_spam () -o hex -e local",
        "icp canister call chat dump () -o hex --query -e local",
        "icp canister snapshot list chat --json -e local",
        "icp canister stop chat -e local",
        "icp canister snapshot restore chat 000000000000000080000000001000010101 -e local",
        "icp canister start chat -e local",
        "icp canister call chat dump () -o hex --query -e local",
    ];
    assert_eq!(commands, expected);
}

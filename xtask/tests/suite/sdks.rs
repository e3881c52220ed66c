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
        .env(project_tools::CHAT_WASM_ENV, crate::common::chat_wasm())
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
    let on_local = [
        "deploy chat --yes",
        "canister id chat",
        r#"canister call chat append ("Hi there!") --output raw"#,
        "canister call chat dump () --output raw --query",
        "canister stop chat",
        "canister snapshot create chat",
        "canister start chat",
        "canister call chat remove_spam () --output raw",
        "canister call chat dump () --output raw --query",
        "canister snapshot list chat",
        "canister stop chat",
        "canister snapshot load chat 000000000000000080000000001000010101",
        "canister start chat",
        "canister call chat dump () --output raw --query",
    ];
    let expected: Vec<String> = ["dfx stop".into(), "dfx start --clean --background".into()]
        .into_iter()
        .chain(on_local.iter().map(|c| format!("dfx {c} --network local")))
        .collect();
    assert_eq!(commands, expected);
}

#[test]
fn the_icp_backend_runs_the_demo_through_icp_json_output() {
    let (stdout, commands) = demo_through("icp", &["--backend", "icp"]);
    assert!(
        stdout.contains("verified: the chat equals snapshot"),
        "{stdout}"
    );
    let on_local = [
        "deploy chat --yes",
        "canister status chat --json",
        r#"canister call chat append ("Hi there!") -o hex"#,
        "canister call chat dump () -o hex --query",
        "canister stop chat",
        "canister snapshot create chat --json",
        "canister start chat",
        "canister call chat remove_spam () -o hex",
        "canister call chat dump () -o hex --query",
        "canister snapshot list chat --json",
        "canister stop chat",
        "canister snapshot restore chat 000000000000000080000000001000010101",
        "canister start chat",
        "canister call chat dump () -o hex --query",
    ];
    // icp's identity is anonymous here: the xtask makes one of its own and names it.
    let expected: Vec<String> = [
        "icp identity default",
        "icp identity list",
        "icp identity new canister-snapshots --storage plaintext --output-seed /dev/null",
        "icp network stop",
        "icp network start -d",
    ]
    .into_iter()
    .map(String::from)
    .chain(
        on_local
            .iter()
            .map(|c| format!("icp {c} -e local --identity canister-snapshots")),
    )
    .collect();
    assert_eq!(commands, expected);
}

/// Runs the xtask with `args` and the environment given; returns stdout, asserting success.
fn xtask(args: &[&str], env: &[(&str, &Path)]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command
        .args(args)
        .env(project_tools::CHAT_WASM_ENV, crate::common::chat_wasm());
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "xtask {args:?}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn through_dfx_a_download_fills_an_empty_directory_and_an_upload_leaves_the_backup_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    // What dfx writes, stood for by a real backup from the embedded backend.
    let embedded = path("embedded");
    let fixture = path("fixture");
    for args in [
        &["demo"][..],
        &["download", "-o", fixture.to_str().unwrap()],
    ] {
        let mut all = vec!["--backend", "embedded", "--state-dir"];
        all.push(embedded.to_str().unwrap());
        all.extend(args);
        xtask(&all, &[]);
    }
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/dfx"),
        path("dfx"),
    )
    .unwrap();
    let search = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap()
    );
    let env = [
        ("PATH", Path::new(&search)),
        ("DFX_FIXTURE", fixture.as_path()),
    ];
    let state = path("state");
    let backup = path("backup");
    let with_dfx = |args: &[&str]| {
        let mut all = vec!["--backend", "dfx", "--state-dir", state.to_str().unwrap()];
        all.extend(args);
        xtask(&all, &env)
    };
    let downloaded = with_dfx(&["download", "-o", backup.to_str().unwrap()]);
    assert!(downloaded.contains("downloaded snapshot"), "{downloaded}");
    with_dfx(&["verify-backup", backup.to_str().unwrap()]);
    let uploaded = with_dfx(&["upload", backup.to_str().unwrap()]);
    assert!(uploaded.contains("uploaded"), "{uploaded}");
    assert!(
        backup
            .join("000000000000000180000000001000010101.json")
            .is_file(),
        "the stand-in left dfx's progress file"
    );
    let verified = with_dfx(&["verify-backup", backup.to_str().unwrap()]);
    assert!(verified.contains("intact"), "{verified}");
}

/// Runs the demo through the dfx stand-in, with its slow commands taking `slow` seconds, and
/// sends Ctrl-C as a terminal does (to the whole foreground process group) once `step`
/// shows in the output; returns the exit code, the commands the stand-in finished, and the
/// commands it was asked to run.
fn interrupted_demo(step: &str) -> (Option<i32>, Vec<String>, Vec<String>) {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/dfx"),
        dir.path().join("dfx"),
    )
    .unwrap();
    let search = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap()
    );
    let mut demo = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["--backend", "dfx", "--state-dir"])
        .arg(dir.path().join("state"))
        .arg("demo")
        .env(project_tools::CHAT_WASM_ENV, crate::common::chat_wasm())
        .env("PATH", search)
        .env("DFX_SLOW", "3")
        .stdout(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let stdout = BufReader::new(demo.stdout.take().unwrap());
    // Read to the end: the xtask goes on printing after Ctrl-C.
    for line in stdout.lines() {
        if line.unwrap().contains(step) {
            std::thread::sleep(std::time::Duration::from_millis(500));
            let group = format!("-{}", demo.id());
            Command::new("kill")
                .args(["-INT", "--", &group])
                .status()
                .unwrap();
        }
    }
    let code = demo.wait().unwrap().code();
    // Long enough for a slow command that was not stopped to finish.
    std::thread::sleep(std::time::Duration::from_secs(4));
    let lines = |name: &str| -> Vec<String> {
        fs::read_to_string(dir.path().join(name))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    (code, lines("done"), lines("commands.log"))
}

#[test]
fn ctrl_c_while_the_canister_is_stopped_lets_the_step_finish_and_starts_it_again() {
    let (code, finished, asked) = interrupted_demo("[5/8]");
    assert_eq!(code, Some(130));
    assert!(
        finished.contains(&"canister snapshot create chat".to_owned()),
        "the snapshot was let finish: {finished:?}"
    );
    assert_eq!(
        asked.last().map(String::as_str),
        Some("dfx canister start chat --network local"),
        "{asked:?}"
    );
}

#[test]
fn ctrl_c_elsewhere_ends_the_sdk_command_too() {
    let (code, finished, _) = interrupted_demo("[2/8]");
    assert_eq!(code, Some(130));
    assert!(
        !finished.contains(&"deploy chat --yes".to_owned()),
        "the deploy ran on: {finished:?}"
    );
}

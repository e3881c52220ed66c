//! The real icp-cli 1.5 against the served replica, addressing the canister by id on a
//! connected network: create (through the CMC and the cycles ledger), install, calls,
//! stop/start, snapshot create/list/restore, and snapshot download → upload round trip.
//! icp-cli is `$ICP_BIN`, else the project's own install (made by the first test to need it).

use std::{path::Path, process::Command};

use crate::common::{Local, Served, chat_wasm};

struct Icp<'a> {
    binary: String,
    home: &'a Path,
    url: String,
    root_key: String,
}

impl Icp<'_> {
    /// Runs `icp <args> -n <url> -k <root key>`; returns stdout and stderr together.
    fn run(&self, args: &[&str]) -> String {
        let (stdout, stderr) = self.output(args);
        format!("{stdout}{stderr}")
    }

    /// The JSON document a `--json` command prints on stdout.
    fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.output(args).0).unwrap()
    }

    fn output(&self, args: &[&str]) -> (String, String) {
        let output = Command::new(&self.binary)
            .args(args)
            .args(["-n", &self.url, "-k", &self.root_key])
            .current_dir(self.home)
            .env("ICP_HOME", self.home)
            .env("DO_NOT_TRACK", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            output.status.success(),
            "icp {} failed:\n{stdout}{stderr}",
            args.join(" ")
        );
        (stdout, stderr)
    }
}

impl<'a> Icp<'a> {
    fn new(home: &'a Path, served: &Served) -> Self {
        Self {
            binary: crate::common::icp_binary().display().to_string(),
            home,
            url: served.url(),
            root_key: served
                .root_key()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        }
    }
}

#[test]
fn icp_cli_runs_the_lifecycle_and_a_download_upload_round_trip() {
    let home = tempfile::tempdir().unwrap();
    let served = Served::new(Local::new());
    let icp = Icp::new(home.path(), &served);
    let wasm = home.path().join("chat.wasm");
    std::fs::write(&wasm, chat_wasm()).unwrap();

    let created = icp.run(&["canister", "create", "--detached", "-q"]);
    let id = created.split_whitespace().last().unwrap().to_owned();
    assert!(
        icp.run(&["canister", "install", &id, "--wasm", wasm.to_str().unwrap()])
            .contains("installed successfully")
    );
    assert!(
        icp.run(&["canister", "call", &id, "append", "(\"Hi there!\")"])
            .contains("()")
    );
    assert!(
        icp.run(&["canister", "call", &id, "dump", "()", "--query"])
            .contains("(vec { \"Hi there!\" })")
    );
    icp.run(&["canister", "stop", &id]);
    let snapshot = icp.json(&["canister", "snapshot", "create", &id, "--json"]);
    let snapshot_id = snapshot["snapshot_id"].as_str().unwrap().to_owned();

    let backup = home.path().join("backup");
    std::fs::create_dir(&backup).unwrap();
    icp.run(&[
        "canister",
        "snapshot",
        "download",
        &id,
        &snapshot_id,
        "-o",
        backup.to_str().unwrap(),
    ]);
    for file in [
        "metadata.json",
        "wasm_module.bin",
        "wasm_memory.bin",
        "stable_memory.bin",
    ] {
        assert!(backup.join(file).is_file(), "download wrote no {file}");
    }
    assert_eq!(
        std::fs::read(backup.join("wasm_module.bin")).unwrap(),
        chat_wasm()
    );

    icp.run(&["canister", "start", &id]);
    assert!(
        icp.run(&["canister", "call", &id, "remove_spam", "()"])
            .contains("(0 : nat64)")
    );
    assert!(
        icp.run(&["canister", "call", &id, "dump", "()"])
            .contains("(vec {})")
    );

    // Restore from the uploaded copy, not the original snapshot.
    let uploaded = icp.json(&[
        "canister",
        "snapshot",
        "upload",
        &id,
        "-i",
        backup.to_str().unwrap(),
        "--json",
    ]);
    let uploaded_id = uploaded["snapshot_id"].as_str().unwrap().to_owned();
    assert_ne!(uploaded_id, snapshot_id);
    icp.run(&["canister", "stop", &id]);
    let listed = icp.run(&["canister", "snapshot", "list", &id]);
    assert!(
        listed.contains(&snapshot_id) && listed.contains(&uploaded_id),
        "{listed}"
    );
    icp.run(&["canister", "snapshot", "restore", &id, &uploaded_id]);
    icp.run(&["canister", "start", &id]);
    assert!(
        icp.run(&["canister", "call", &id, "dump", "()"])
            .contains("(vec { \"Hi there!\" })")
    );
}

/// A Motoko actor with enhanced orthogonal persistence (moc's default) upgraded by icp-cli:
/// with `keep` its state lives on; with `replace` (confirmed) it starts afresh, as on the IC.
#[test]
fn icp_cli_upgrades_a_motoko_actor_keeping_its_state() {
    let home = tempfile::tempdir().unwrap();
    let served = Served::new(Local::new());
    let icp = Icp::new(home.path(), &served);
    let wasm = home.path().join("counter.wasm");
    std::fs::write(&wasm, crate::motoko::moc(crate::motoko::CALLEE)).unwrap();
    let wasm = wasm.to_str().unwrap();

    let created = icp.run(&["canister", "create", "--detached", "-q"]);
    let id = created.split_whitespace().last().unwrap().to_owned();
    icp.run(&["canister", "install", &id, "--wasm", wasm]);
    icp.run(&["canister", "call", &id, "bump", "()"]);
    icp.run(&["canister", "call", &id, "bump", "()"]);
    let current = || icp.run(&["canister", "call", &id, "current", "()", "--query"]);

    let upgrade = |persistence: &str| {
        let args = ["canister", "install", &id, "--wasm", wasm, "-m", "upgrade"];
        let mut args = args.to_vec();
        args.extend(["--wasm-memory-persistence", persistence, "--yes"]);
        icp.run(&args)
    };
    assert!(upgrade("keep").contains("installed successfully"));
    assert!(
        current().contains("(2 : nat)"),
        "the counter did not survive the upgrade"
    );
    assert!(upgrade("replace").contains("installed successfully"));
    assert!(current().contains("(0 : nat)"), "replace kept the heap");
}

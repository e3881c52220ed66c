//! Backups cross between tools: the real icp-cli uploads and restores a backup that
//! `cargo xtask download` made, and the xtask reads and uploads one that icp-cli downloaded.
//! icp-cli talks to the replica served by `cargo xtask serve`. icp-cli is `$ICP_BIN`, else the
//! project's own install (made by the first test to need it).

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

use crate::common::User;

const CHAT: [&str; 2] = ["Hi there!", "from the embedded backend"];

/// `cargo xtask serve` on a free port, killed when dropped.
struct Served {
    child: Child,
    url: String,
    root_key: String,
    _state: tempfile::TempDir,
}

impl Served {
    fn start() -> Self {
        let state = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["serve", "--port", "0", "--state"])
            .arg(state.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut next = || lines.next().expect("serve printed too little").unwrap();
        let serving = next();
        let url = serving.rsplit(' ').next().unwrap().to_owned();
        let root_key = next().trim_start_matches("root key: ").to_owned();
        // Keep reading what it prints, so that it never writes into a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        assert!(url.starts_with("http://127.0.0.1:"), "{serving}");
        Self {
            child,
            url,
            root_key,
            _state: state,
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Icp<'a> {
    served: &'a Served,
    home: tempfile::TempDir,
}

impl Icp<'_> {
    /// `icp <args> -n <url> -k <root key>`; stdout.
    fn run(&self, args: &[&str]) -> String {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap();
        let binary = project_tools::icp(root).unwrap_or_else(|e| panic!("{e}"));
        let output = Command::new(binary)
            .args(args)
            .args(["-n", &self.served.url, "-k", &self.served.root_key])
            .current_dir(self.home.path())
            .env("ICP_HOME", self.home.path())
            .env("DO_NOT_TRACK", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "icp {} failed:\n{stdout}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    fn snapshot_id(&self, args: &[&str]) -> String {
        let printed: serde_json::Value = serde_json::from_str(&self.run(args)).unwrap();
        printed["snapshot_id"].as_str().unwrap().to_owned()
    }
}

#[test]
fn icp_cli_restores_an_xtask_backup_and_the_xtask_reads_an_icp_cli_download() {
    let user = User::chat(&CHAT);
    let id = user.snapshot();
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("from-xtask");
    user.json(&["download", &id, "-o", ours.to_str().unwrap()]);

    let served = Served::start();
    let icp = Icp {
        served: &served,
        home: tempfile::tempdir().unwrap(),
    };
    let created = icp.run(&["canister", "create", "--detached", "-q"]);
    let canister = created.split_whitespace().last().unwrap().to_owned();
    let input = ours.to_str().unwrap();
    let uploaded = icp.snapshot_id(&[
        "canister", "snapshot", "upload", &canister, "-i", input, "--json",
    ]);
    icp.run(&["canister", "stop", &canister]);
    icp.run(&["canister", "snapshot", "restore", &canister, &uploaded]);
    icp.run(&["canister", "start", &canister]);
    let dumped = icp.run(&["canister", "call", &canister, "dump", "()", "--query"]);
    assert!(
        dumped.contains(r#"vec { "Hi there!"; "from the embedded backend" }"#),
        "{dumped}"
    );
    // icp-cli's own lock and progress files are not damage.
    user.json(&["verify-backup", input]);

    icp.run(&[
        "canister",
        "call",
        &canister,
        "append",
        r#"("from icp-cli")"#,
    ]);
    icp.run(&["canister", "stop", &canister]);
    let taken = icp.snapshot_id(&["canister", "snapshot", "create", &canister, "--json"]);
    let theirs = dir.path().join("from-icp");
    std::fs::create_dir(&theirs).unwrap();
    let output = theirs.to_str().unwrap();
    icp.run(&[
        "canister", "snapshot", "download", &canister, &taken, "-o", output,
    ]);

    let mut expected = CHAT.map(String::from).to_vec();
    expected.push("from icp-cli".into());
    assert_eq!(user.messages_in(output), expected);
    let refused = user.fails(1, &["verify-backup", output]);
    assert!(refused.contains("no manifest.json"), "{refused}");
    let uploaded = user.json(&["upload", output, "--unverified"]);
    let uploaded = uploaded["snapshot_id"].as_str().unwrap().to_owned();
    user.ok(&["restore", &uploaded]);
    let now = user.snapshot();
    let inspected = user.json(&["inspect", &now, "--all"]);
    assert_eq!(inspected["messages"], 3);
}

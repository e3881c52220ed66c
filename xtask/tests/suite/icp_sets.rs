//! A set of two canisters — the chat and the notes of this project's icp.yaml — snapshot and
//! restored through the real icp-cli (`--backend icp`), on icp's local network with the
//! replica binary as its launcher, in this checkout with a temporary ICP_HOME.

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

struct Project {
    home: tempfile::TempDir,
    state: tempfile::TempDir,
}

impl Project {
    fn run(&self, args: &[&str]) -> std::process::Output {
        let icp = project_tools::icp(root()).unwrap_or_else(|e| panic!("{e}"));
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["--backend", "icp", "--state-dir"])
            .arg(self.state.path())
            .args(args)
            .current_dir(root())
            .env(project_tools::ICP_BIN_ENV, icp)
            .env("ICP_HOME", self.home.path())
            .env("DO_NOT_TRACK", "1")
            .output()
            .unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let output = self.run(&[&["--json"], args].concat());
        assert!(
            output.status.success(),
            "`{}` failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("one JSON document")
    }
}

impl Project {
    /// In a fresh ICP_HOME icp's default identity is `anonymous`: the xtask calls as one of
    /// its own, whose key only its owner can read, so icp-cli itself, as anonymous, is
    /// refused a controller's call with the IC's answer.
    fn anonymous_controls_nothing(&self) {
        use std::os::unix::fs::PermissionsExt;
        let key = self
            .home
            .path()
            .join("identity/keys/canister-snapshots.pem");
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the key is the owner's alone");
        let icp = project_tools::icp(root()).unwrap();
        let stop = Command::new(icp)
            .args([
                "canister",
                "stop",
                "chat",
                "-e",
                "local",
                "--identity",
                "anonymous",
            ])
            .current_dir(root())
            .env("ICP_HOME", self.home.path())
            .env("DO_NOT_TRACK", "1")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&stop.stderr);
        assert!(!stop.status.success(), "anonymous stopped the chat");
        assert!(
            said.contains("IC0512") && said.contains("2vxsx-fae is not one of them"),
            "{said}"
        );
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.run(&["stop"]);
    }
}

#[test]
fn icp_cli_takes_and_restores_a_set_of_the_chat_and_the_notes() {
    let project = Project {
        home: tempfile::tempdir().unwrap(),
        state: tempfile::tempdir().unwrap(),
    };
    project.json(&["start"]);
    project.json(&["deploy"]);
    project.json(&["deploy", "--canister", "notes"]);
    project.anonymous_controls_nothing();
    project.json(&["populate", "Hi there!"]);
    let both = ["--canister", "chat", "--canister", "notes"];
    let set = project.json(&[&["snapshot"], &both[..]].concat());
    let set_id = set["set_id"].as_str().unwrap().to_owned();
    assert_eq!(set["members"].as_array().unwrap().len(), 2, "{set}");

    assert_eq!(project.json(&["break"])["removed"], 0);
    let restored = project.json(&[&["restore"], &both[..]].concat());
    assert_eq!(restored["set_id"], set_id.as_str());
    let verified = project.json(&["verify", "--set", &set_id]);
    let members = verified["members"].as_array().unwrap();
    assert_eq!(members[0]["messages"], 1, "the chat is back: {verified}");
    assert_eq!(members[1]["module_hash"], true, "{verified}");
}

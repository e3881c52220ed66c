//! The xtask binary run as a user runs it: on the embedded backend, with its state in a
//! temporary directory. The binary installs the canister that `cargo xtask build` wrote
//! (or `$CHAT_WASM`), named to it by `CHAT_WASM`, instead of building again.

#![allow(dead_code)]

use std::{
    path::PathBuf,
    process::{Command, Output},
};

pub struct User {
    pub state: tempfile::TempDir,
    pub wasm: PathBuf,
}

/// The chat canister that `cargo xtask build` wrote (or `$CHAT_WASM`).
pub fn chat_wasm() -> PathBuf {
    let target = project_tools::target_dir_of_tests(env!("CARGO_TARGET_TMPDIR"));
    project_tools::chat_wasm(&target).unwrap_or_else(|e| panic!("{e}"))
}

impl User {
    pub fn new() -> Self {
        Self {
            state: tempfile::tempdir().unwrap(),
            wasm: chat_wasm(),
        }
    }

    /// `cargo xtask --backend embedded --state-dir … <args>`.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["--backend", "embedded", "--state-dir"])
            .arg(self.state.path())
            .args(args)
            .env(project_tools::CHAT_WASM_ENV, &self.wasm)
            .output()
            .unwrap()
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "`{}` failed: {}{}",
            args.join(" "),
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).expect("--json prints one JSON document")
    }
}

impl User {
    /// Runs and expects failure with exit `code`; returns stderr.
    pub fn fails(&self, code: i32, args: &[&str]) -> String {
        let output = self.run(args);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(
            output.status.code(),
            Some(code),
            "`{}` should exit {code}: {}{stderr}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout)
        );
        stderr
    }

    /// A deployed chat holding `messages`.
    pub fn chat(messages: &[&str]) -> Self {
        let user = Self::new();
        user.ok(&["start"]);
        user.ok(&["deploy"]);
        let mut populate = vec!["populate"];
        populate.extend_from_slice(messages);
        user.ok(&populate);
        user
    }

    /// Takes a snapshot; returns its id.
    pub fn snapshot(&self) -> String {
        self.json(&["snapshot"])["snapshot_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The chat in a snapshot or backup directory, read by `inspect --all`.
    pub fn messages_in(&self, source: &str) -> Vec<String> {
        let inspected = self.json(&["inspect", source, "--all"]);
        inspected["shown"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["message"].as_str().unwrap().to_owned())
            .collect()
    }
}

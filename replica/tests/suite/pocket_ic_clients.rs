//! The PocketIC clients for Node.js (`@dfinity/pic` 0.23.0) and Python (`pocket-ic` 3.1.2)
//! run the chat's lifecycle against the replica binary as their PocketIC server, each from
//! a script of its own (`tests/clients/`), as a developer's test suite would: installed
//! project-locally (`project_tools`), the server named by `POCKET_IC_BIN`.

use std::{path::Path, process::Command};

use crate::common::chat_wasm;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// Runs `program script` with the server and the chat named, and expects it to pass.
fn run_client(mut program: Command, script: &str, passed: &str) {
    let dir = tempfile::tempdir().unwrap();
    let chat = dir.path().join("chat.wasm");
    std::fs::write(&chat, chat_wasm()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    let run = program
        .arg(script)
        .env("POCKET_IC_BIN", env!("CARGO_BIN_EXE_replica"))
        .env("CHAT_WASM", &chat)
        // The servers they start write their port files here. Python's runs in the
        // background until idle: muted, it holds no pipe of ours open meanwhile.
        .env("TMPDIR", dir.path())
        .env("POCKET_IC_MUTE_SERVER", "1")
        .current_dir(dir.path())
        .output()
        .expect("the client's interpreter runs");
    let said = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && said.contains(passed),
        "{said}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn pic_js_runs_the_chat_lifecycle() {
    let modules = project_tools::install_pic_js(root()).unwrap_or_else(|e| panic!("{e}"));
    let mut node = Command::new("node");
    node.env("NODE_PATH", modules);
    run_client(
        node,
        "chat_lifecycle.cjs",
        "pic-js: the chat lifecycle passed",
    );
}

#[test]
fn the_python_client_runs_the_chat_lifecycle() {
    let python = project_tools::install_pic_python(root()).unwrap_or_else(|e| panic!("{e}"));
    run_client(
        Command::new(python),
        "chat_lifecycle.py",
        "python pocket-ic: the chat lifecycle passed",
    );
}

//! A newcomer's first run: a command acts on the checkout it runs in, and what a long command
//! needs — the wasm target, npm for icp-cli — is checked, or added, before anything long
//! starts. rustup, rustc and cargo are stood for by scripts where the real ones would change
//! the machine's toolchain; CI removes the real wasm target and runs the README's commands.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// A directory that looks like a checkout of the project to the xtask.
fn checkout(dir: &Path) -> PathBuf {
    fs::create_dir_all(dir.join("xtask/src")).unwrap();
    for file in ["Cargo.toml", "xtask/Cargo.toml"] {
        fs::write(dir.join(file), "").unwrap();
    }
    dir.to_path_buf()
}

/// A directory of `/bin/sh` scripts, the whole PATH of a machine that has only them.
fn tools(dir: &Path, scripts: &[(&str, &str)]) -> PathBuf {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    for (name, body) in scripts {
        let path = bin.join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

/// `cargo xtask <args>` in `checkout`, with only `bin` on PATH.
fn xtask_in(checkout: &Path, bin: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env("CARGO_MANIFEST_DIR", checkout.join("xtask"))
        .env("PATH", bin)
        .env_remove("CARGO")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove(project_tools::ICP_BIN_ENV)
        .env_remove(project_tools::CHAT_WASM_ENV)
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A rustc whose sysroot is `sysroot`.
fn rustc(sysroot: &Path) -> (&'static str, String) {
    ("rustc", format!("echo {}", sysroot.display()))
}

#[test]
fn a_missing_wasm_target_is_added_with_rustup_before_the_build() {
    let dir = tempfile::tempdir().unwrap();
    let checkout = checkout(&dir.path().join("checkout"));
    let sysroot = dir.path().join("sysroot");
    let wasm = sysroot.join("lib/rustlib/wasm32-unknown-unknown");
    let log = dir.path().join("log");
    let rustup = format!(
        r#"echo "rustup $*" >> {log}
[ "$*" = "target add wasm32-unknown-unknown" ] && /bin/mkdir -p {wasm}
exit 0"#,
        log = log.display(),
        wasm = wasm.display()
    );
    let cargo = format!(r#"echo "cargo $*" >> {}; exit 1"#, log.display());
    let (name, body) = rustc(&sysroot);
    let bin = tools(
        dir.path(),
        &[(name, &body), ("rustup", &rustup), ("cargo", &cargo)],
    );
    let output = xtask_in(&checkout, &bin, &["build"]);
    let said = stderr(&output);
    assert!(
        said.starts_with("adding the Rust target wasm32-unknown-unknown (rustup target add wasm32-unknown-unknown)\n"),
        "{said}"
    );
    assert!(wasm.is_dir());
    let log = fs::read_to_string(&log).unwrap();
    // Each command without its options (`rustup --version` checks that rustup is there).
    let steps: Vec<&str> = log
        .lines()
        .map(|l| l.split(" --").next().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "rustup",
            "rustup target add wasm32-unknown-unknown",
            "cargo build"
        ],
        "the target is added before the build starts"
    );
}

#[test]
fn a_missing_wasm_target_without_rustup_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let checkout = checkout(&dir.path().join("checkout"));
    let (name, body) = rustc(&dir.path().join("sysroot"));
    let bin = tools(dir.path(), &[(name, &body)]);
    for command in ["build", "demo", "test", "bench"] {
        let output = xtask_in(&checkout, &bin, &[command]);
        assert_eq!(output.status.code(), Some(1), "{command}");
        let said = stderr(&output);
        assert!(
            said.contains("error: the Rust target wasm32-unknown-unknown is not installed")
                && said.contains("rustup is not on PATH")
                && said.contains("`rustup target add wasm32-unknown-unknown`"),
            "{command}: {said}"
        );
        assert!(!checkout.join("target").exists(), "{command} built nothing");
    }
}

#[test]
fn the_tests_without_npm_stop_at_once_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let checkout = checkout(&dir.path().join("checkout"));
    let sysroot = dir.path().join("sysroot");
    fs::create_dir_all(sysroot.join("lib/rustlib/wasm32-unknown-unknown")).unwrap();
    let (name, body) = rustc(&sysroot);
    let bin = tools(dir.path(), &[(name, &body)]);
    let output = xtask_in(&checkout, &bin, &["test"]);
    assert_eq!(output.status.code(), Some(1));
    let said = stderr(&output);
    assert!(
        said.contains("error: icp-cli is installed from npm, and npm is not on PATH"),
        "{said}"
    );
    assert!(!checkout.join("target").exists(), "nothing was built");
}

/// Two clones that share one `CARGO_TARGET_DIR` share this binary; each run acts on the
/// checkout it runs in — where cargo says (`CARGO_MANIFEST_DIR` at run time), else the one
/// above the working directory — never on the checkout that compiled it.
#[test]
fn each_checkout_sharing_the_binary_acts_on_its_own_tree() {
    let clones = tempfile::tempdir().unwrap();
    for (name, by_cargo) in [("first", true), ("second", false)] {
        let checkout = checkout(&clones.path().join(name));
        let tools = checkout.join("stand-ins");
        fs::create_dir(&tools).unwrap();
        fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/dfx"),
            tools.join("dfx"),
        )
        .unwrap();
        let run = |backend: &str| {
            let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
            command
                .args(["--backend", backend, "demo"])
                .env(project_tools::CHAT_WASM_ENV, crate::common::chat_wasm())
                .env(
                    "PATH",
                    format!("{}:{}", tools.display(), std::env::var("PATH").unwrap()),
                );
            if by_cargo {
                command
                    .env("CARGO_MANIFEST_DIR", checkout.join("xtask"))
                    .current_dir(clones.path());
            } else {
                command
                    .env_remove("CARGO_MANIFEST_DIR")
                    .current_dir(checkout.join("xtask/src"));
            }
            let output = command.output().unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            assert!(
                output.status.success(),
                "{stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            );
            stdout
        };
        let embedded = run("embedded");
        let state = checkout.join(".canister-snapshots/embedded");
        assert!(
            embedded.contains(&format!("state in {}", state.display())),
            "{embedded}"
        );
        assert!(state.is_dir(), "the replica's state is in {name}'s tree");
        run("dfx");
        let cwds = fs::read_to_string(tools.join("cwd.log")).unwrap();
        assert!(
            !cwds.is_empty() && cwds.lines().all(|cwd| Path::new(cwd) == checkout),
            "every dfx command ran in {}: {cwds}",
            checkout.display()
        );
    }
}

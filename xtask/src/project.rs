//! Where things are in the project, and the shell that runs its commands from the root.

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

use anyhow::{Context, Result};
use xshell::{Cmd, Shell};

static ROOT: OnceLock<PathBuf> = OnceLock::new();

/// Finds the checkout this command runs in: the one cargo names at run time
/// (`CARGO_MANIFEST_DIR` is the xtask's own directory under `cargo xtask`), else the nearest
/// one above the working directory. Never the checkout the binary was compiled in: clones
/// sharing one `CARGO_TARGET_DIR` share this binary too.
pub fn find_root() -> Result<&'static Path> {
    if let Some(root) = ROOT.get() {
        return Ok(root);
    }
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let cwd = std::env::current_dir().context("cannot read the working directory")?;
    let found = manifest_dir
        .iter()
        .chain([&cwd])
        .find_map(|start| start.ancestors().find(|dir| is_root(dir)))
        .with_context(|| {
            format!(
                "{} is not inside a canister-snapshots checkout: run `cargo xtask` in one",
                cwd.display()
            )
        })?;
    Ok(ROOT.get_or_init(|| found.to_path_buf()))
}

fn is_root(dir: &Path) -> bool {
    dir.join("Cargo.toml").is_file() && dir.join("xtask/Cargo.toml").is_file()
}

/// The workspace root; `main` has found it with `find_root` before anything asks.
pub fn root() -> &'static Path {
    find_root().expect("the project root is found at start")
}

/// Cargo's target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// The cargo that runs this xtask, so that the toolchain stays the same.
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// A shell whose working directory is the workspace root.
pub fn shell() -> Result<Shell> {
    let sh = Shell::new()?;
    sh.change_dir(root());
    Ok(sh)
}

/// Runs `cmd` with the terminal as its stdout and stderr, so that long output streams, and
/// returns its exit status for the caller to explain.
pub fn status(cmd: Cmd<'_>) -> Result<std::process::ExitStatus> {
    let program = format!("{cmd}");
    std::process::Command::from(cmd)
        .status()
        .with_context(|| format!("cannot run `{program}`"))
}

static STATE_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Where the xtask keeps the embedded replica's state and what it recorded (git-ignored):
/// `--state-dir`, else `.canister-snapshots` in the project.
pub fn state_dir() -> &'static Path {
    STATE_DIR.get_or_init(|| root().join(".canister-snapshots"))
}

/// Chooses the state directory; only before the first `state_dir()`.
pub fn set_state_dir(dir: PathBuf) {
    STATE_DIR
        .set(dir)
        .expect("the state directory is chosen once, at start");
}

/// Bytes as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex as bytes; `None` unless it is an even number of hex digits.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("checked hex"))
            .collect(),
    )
}

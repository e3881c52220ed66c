//! Where things are in the project, and the shell that runs its commands from the root.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use xshell::{Cmd, Shell};

/// The workspace root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
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

//! Tools the project installs for itself, never globally: icp-cli from npm into `.tools/`,
//! and the replica binary that stands in for icp's network launcher.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use xshell::cmd;

use crate::project;

/// The icp-cli release the project is tested with.
const ICP_PACKAGE: &str = "@icp-sdk/icp-cli-linux-x64@1.5.0";

fn tools_dir() -> PathBuf {
    project::root().join(".tools")
}

/// Where `install_icp` puts the icp binary.
pub fn icp_path() -> PathBuf {
    tools_dir().join("node_modules/@icp-sdk/icp-cli-linux-x64/bin/icp")
}

/// Installs icp-cli from npm into `.tools/` (once); returns the binary.
pub fn install_icp() -> Result<PathBuf> {
    let icp = icp_path();
    if icp.is_file() {
        return Ok(icp);
    }
    let sh = project::shell()?;
    let dir = tools_dir();
    std::fs::create_dir_all(&dir)?;
    let installed = cmd!(
        sh,
        "npm install --prefix {dir} --no-audit --no-fund --no-save {ICP_PACKAGE}"
    )
    .quiet()
    .run();
    if installed.is_err() || !icp.is_file() {
        bail!(
            "could not install icp-cli ({ICP_PACKAGE}) with npm into {}: install Node.js and npm, or set ICP_BIN",
            dir.display()
        );
    }
    Ok(icp)
}

/// Builds the replica binary (a no-op when it is current) and returns its path.
pub fn replica_binary() -> Result<PathBuf> {
    let binary = project::target_dir().join("debug/replica");
    if !binary.is_file() {
        eprintln!("  building the replica binary, icp-cli's network (the first time only)…");
    }
    let sh = project::shell()?;
    let cargo = project::cargo();
    // Selecting the xtask too resolves features as its own build did, so the replica's
    // dependencies (wasmtime above all) are not compiled a second time.
    cmd!(
        sh,
        "{cargo} build --quiet --locked -p xtask -p replica --bin replica"
    )
    .quiet()
    .run()
    .context("could not build the replica binary")?;
    Ok(binary)
}

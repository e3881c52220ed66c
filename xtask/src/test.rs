//! `cargo xtask test`: builds what the tests need (the canister; icp-cli from npm into the
//! project), then runs every test of the workspace.

use anyhow::{Result, bail};
use xshell::cmd;

use crate::{build, project, tools};

/// Tells the tests where the built canister is.
pub const CHAT_WASM_ENV: &str = "CHAT_WASM";

pub fn run() -> Result<()> {
    let artifact = build::build()?;
    artifact.report();
    // The HTTP tests drive the real icp-cli.
    let icp = match std::env::var_os("ICP_BIN") {
        Some(icp) => std::path::PathBuf::from(icp),
        None => tools::install_icp()?,
    };
    let sh = project::shell()?;
    let cargo = project::cargo();
    let tests = cmd!(sh, "{cargo} test --workspace --locked")
        .env(CHAT_WASM_ENV, &artifact.wasm)
        .env("ICP_BIN", icp);
    let status = project::status(tests)?;
    if !status.success() {
        bail!("tests failed ({status}); see the failures above");
    }
    Ok(())
}

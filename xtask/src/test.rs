//! `cargo xtask test`: builds what the tests need, then runs every test of the workspace.

use anyhow::{Result, bail};
use xshell::cmd;

use crate::{build, project};

/// Tells the tests where the built canister is.
pub const CHAT_WASM_ENV: &str = "CHAT_WASM";

pub fn run() -> Result<()> {
    let artifact = build::build()?;
    artifact.report();
    let sh = project::shell()?;
    let cargo = project::cargo();
    let tests = cmd!(sh, "{cargo} test --workspace --locked").env(CHAT_WASM_ENV, &artifact.wasm);
    let status = project::status(tests)?;
    if !status.success() {
        bail!("tests failed ({status}); see the failures above");
    }
    Ok(())
}

//! `cargo xtask test`: checks what the run needs, installs icp-cli, the Motoko compiler and
//! the PocketIC clients (npm, PyPI) into the project and builds the canisters, then runs
//! every test of the workspace.

use anyhow::{Result, bail};
use project_tools::{CHAT_WASM_ENV, ICP_BIN_ENV};
use xshell::cmd;

use crate::{build, preflight, project, tools};

pub fn run() -> Result<()> {
    preflight::wasm_target()?;
    preflight::disk("cargo xtask test", TEST_BUILD_GIB)?;
    // The HTTP tests drive the real icp-cli; the Motoko tests compile with the real moc;
    // the PocketIC tests run the real clients.
    let icp = tools::icp()?;
    tools::install_motoko()?;
    tools::install_pocket_ic_clients()?;
    let artifact = build::build()?;
    artifact.report();
    let sh = project::shell()?;
    let cargo = project::cargo();
    let tests = cmd!(sh, "{cargo} test --workspace --locked")
        .env(CHAT_WASM_ENV, &artifact.wasm)
        .env(ICP_BIN_ENV, icp);
    let status = project::status(tests)?;
    if !status.success() {
        bail!("tests failed ({status}); see the failures above");
    }
    Ok(())
}

/// What a cold test build writes to the target directory (2.8 GB measured), with room.
const TEST_BUILD_GIB: u64 = 4;

//! Tools the project installs for itself, never globally: icp-cli and the Motoko compiler
//! from npm into `.tools/`, and the replica binary that stands in for icp's network launcher.

use std::path::PathBuf;

use anyhow::{Context, Result};
use xshell::cmd;

use crate::{preflight, project};

/// Where `install_icp` puts the icp binary.
pub fn icp_path() -> PathBuf {
    project_tools::icp_path(project::root())
}

/// The icp binary the tests and benches run: `$ICP_BIN`, else the project's install (made now).
pub fn icp() -> Result<PathBuf> {
    match std::env::var_os(project_tools::ICP_BIN_ENV) {
        Some(icp) => Ok(PathBuf::from(icp)),
        None => install_icp(),
    }
}

/// Installs icp-cli from npm into `.tools/` (once); returns the binary.
pub fn install_icp() -> Result<PathBuf> {
    let icp = icp_path();
    if !icp.is_file() {
        preflight::npm()?;
        eprintln!(
            "installing icp-cli ({}) into .tools/ with npm",
            project_tools::ICP_PACKAGE
        );
    }
    project_tools::install_icp(project::root()).map_err(anyhow::Error::msg)
}

/// Installs the Motoko compiler from npm into `.tools/motoko/` (once), for the replica's
/// Motoko tests.
pub fn install_motoko() -> Result<PathBuf> {
    if !project_tools::motoko_path(project::root()).is_dir() {
        preflight::npm()?;
        eprintln!(
            "installing the Motoko compiler ({}) into .tools/motoko/ with npm",
            project_tools::MOTOKO_PACKAGE
        );
    }
    project_tools::install_motoko(project::root()).map_err(anyhow::Error::msg)
}

/// Installs the PocketIC clients the replica's PocketIC server is tested with: @dfinity/pic
/// from npm into `.tools/pic-js/`, and the Python pocket-ic from PyPI into a virtual
/// environment in `.tools/pic-python/` (once each).
pub fn install_pocket_ic_clients() -> Result<()> {
    let root = project::root();
    if !project_tools::pic_js_modules(root).is_dir() {
        preflight::npm()?;
        eprintln!(
            "installing the PocketIC clients ({} from npm, {} from PyPI) into .tools/",
            project_tools::PIC_JS_PACKAGE,
            project_tools::PIC_PYTHON_PACKAGE
        );
    }
    project_tools::install_pic_js(root).map_err(anyhow::Error::msg)?;
    project_tools::install_pic_python(root).map_err(anyhow::Error::msg)?;
    Ok(())
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

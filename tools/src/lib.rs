//! Where the project's built canister and its project-local tools are, and how a tool gets
//! installed: one answer for `cargo xtask` and for tests run by plain `cargo test`, so that
//! both find the same files without being told.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::Command,
};

/// Names the built canister for the tests, overriding where `cargo xtask build` writes it.
pub const CHAT_WASM_ENV: &str = "CHAT_WASM";
/// Names an icp binary to use instead of the project's own install.
pub const ICP_BIN_ENV: &str = "ICP_BIN";

/// The icp-cli release the project is tested with.
pub const ICP_PACKAGE: &str = "@icp-sdk/icp-cli-linux-x64@1.5.0";
/// The Motoko compiler (moc, as JavaScript) the replica's Motoko tests compile with.
pub const MOTOKO_PACKAGE: &str = "motoko@4.10.0";
/// The PocketIC client for Node.js the replica's PocketIC server is tested with. Its
/// install script downloads a PocketIC server, so it is installed without scripts.
pub const PIC_JS_PACKAGE: &str = "@dfinity/pic@0.23.0";
/// The PocketIC client for Python, from PyPI, tested the same way.
pub const PIC_PYTHON_PACKAGE: &str = "pocket-ic==3.1.2";

/// Where `cargo xtask build` writes the canister, under cargo's target directory.
pub fn canister_dir(target_dir: &Path) -> PathBuf {
    target_dir.join("canister")
}

/// The chat canister for a test: `$CHAT_WASM`, else what `cargo xtask build` wrote.
pub fn chat_wasm(target_dir: &Path) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(CHAT_WASM_ENV) {
        return Ok(PathBuf::from(path));
    }
    let built = canister_dir(target_dir).join("chat.wasm");
    if built.is_file() {
        Ok(built)
    } else {
        Err(format!(
            "{} is missing: run `cargo xtask build` (or set {CHAT_WASM_ENV} to a built chat.wasm)",
            built.display()
        ))
    }
}

/// Another canister `cargo xtask build` writes beside the chat (`relay`, `notes`): `target/canister/<name>.wasm`.
pub fn canister_wasm(target_dir: &Path, name: &str) -> Result<PathBuf, String> {
    let built = canister_dir(target_dir).join(format!("{name}.wasm"));
    if built.is_file() {
        Ok(built)
    } else {
        Err(format!(
            "{} is missing: run `cargo xtask build`",
            built.display()
        ))
    }
}

/// The cargo target directory of a test crate, from the `CARGO_TARGET_TMPDIR` (its `tmp/`)
/// that cargo gives integration tests and benches.
pub fn target_dir_of_tests(target_tmpdir: &str) -> PathBuf {
    Path::new(target_tmpdir)
        .parent()
        .expect("CARGO_TARGET_TMPDIR lies inside the target directory")
        .to_path_buf()
}

/// The project's own tools directory (git-ignored).
pub fn tools_dir(root: &Path) -> PathBuf {
    root.join(".tools")
}

/// Where `install_icp` puts the icp binary.
pub fn icp_path(root: &Path) -> PathBuf {
    tools_dir(root).join("node_modules/@icp-sdk/icp-cli-linux-x64/bin/icp")
}

/// The icp binary: `$ICP_BIN`, else the project's install, made now if it is missing.
pub fn icp(root: &Path) -> Result<PathBuf, String> {
    match std::env::var_os(ICP_BIN_ENV) {
        Some(path) => Ok(PathBuf::from(path)),
        None => install_icp(root),
    }
}

/// Installs icp-cli from npm into the project's tools directory, once; returns the binary.
pub fn install_icp(root: &Path) -> Result<PathBuf, String> {
    let icp = icp_path(root);
    install_npm(&tools_dir(root), ICP_PACKAGE, &[], &icp)
        .map_err(|why| format!("could not install icp-cli ({ICP_PACKAGE}) with npm into {}: install Node.js and npm, or set {ICP_BIN_ENV}\n{why}", tools_dir(root).display()))?;
    Ok(icp)
}

/// Where `install_motoko` puts the compiler's package (a folder of its own, so that npm,
/// installing one package, does not remove the other).
pub fn motoko_path(root: &Path) -> PathBuf {
    tools_dir(root).join("motoko/node_modules/motoko")
}

/// Installs the Motoko compiler from npm into the project's tools directory, once; returns
/// its package folder (what `require` takes).
pub fn install_motoko(root: &Path) -> Result<PathBuf, String> {
    let motoko = motoko_path(root);
    let dir = tools_dir(root).join("motoko");
    install_npm(&dir, MOTOKO_PACKAGE, &[], &motoko.join("package.json")).map_err(|why| {
        format!(
            "could not install the Motoko compiler ({MOTOKO_PACKAGE}) with npm into {}: install Node.js and npm\n{why}",
            dir.display()
        )
    })?;
    Ok(motoko)
}

/// The `node_modules` folder `install_pic_js` fills, for `NODE_PATH`.
pub fn pic_js_modules(root: &Path) -> PathBuf {
    tools_dir(root).join("pic-js/node_modules")
}

/// Installs @dfinity/pic from npm into the project's tools directory, once (without its
/// install script, which would download a PocketIC server); returns its `node_modules`.
pub fn install_pic_js(root: &Path) -> Result<PathBuf, String> {
    let modules = pic_js_modules(root);
    let dir = tools_dir(root).join("pic-js");
    let installed = modules.join("@dfinity/pic/package.json");
    install_npm(&dir, PIC_JS_PACKAGE, &["--ignore-scripts"], &installed).map_err(|why| {
        format!(
            "could not install {PIC_JS_PACKAGE} with npm into {}: install Node.js and npm\n{why}",
            dir.display()
        )
    })?;
    Ok(modules)
}

/// Installs the Python pocket-ic client from PyPI into a virtual environment in the
/// project's tools directory, once; returns the environment's python.
pub fn install_pic_python(root: &Path) -> Result<PathBuf, String> {
    let dir = tools_dir(root).join("pic-python");
    let python = dir.join("bin/python");
    let installed = dir.join(format!("{PIC_PYTHON_PACKAGE}.installed"));
    locked_install(&dir, &installed, || {
        let venv = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&dir)
            .output();
        let failed = failure(&venv, &python);
        if failed.is_some() {
            return failed;
        }
        let pip = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
            .arg(PIC_PYTHON_PACKAGE)
            .output();
        failure(&pip, &python).or_else(|| {
            std::fs::write(&installed, b"")
                .err()
                .map(|e| format!("cannot write {}: {e}", installed.display()))
        })
    })
    .map_err(|why| {
        format!(
            "could not install {PIC_PYTHON_PACKAGE} with pip into {}: install Python 3 with venv and pip\n{why}",
            dir.display()
        )
    })?;
    Ok(python)
}

/// Runs `install` unless `installed` exists, under a lock in `dir`, so that concurrent
/// installs (two test binaries, two terminals) do not mix.
fn locked_install(
    dir: &Path,
    installed: &Path,
    install: impl FnOnce() -> Option<String>,
) -> Result<(), String> {
    if installed.is_file() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let lock = File::create(dir.join(".install.lock"))
        .and_then(|file| file.lock().map(|()| file))
        .map_err(|e| format!("cannot lock {}: {e}", dir.display()))?;
    if installed.is_file() {
        return Ok(());
    }
    let failed = install();
    drop(lock);
    failed.map_or(Ok(()), Err)
}

/// Why a command failed (the last lines it wrote), or why `made` is still missing after it.
fn failure(output: &std::io::Result<std::process::Output>, made: &Path) -> Option<String> {
    match output {
        Err(e) => Some(format!("cannot run it ({e})")),
        Ok(output) if !output.status.success() || !made.exists() => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let lines: Vec<_> = stderr.lines().collect();
            Some(lines[lines.len().saturating_sub(5)..].join("\n"))
        }
        Ok(_) => None,
    }
}

/// Installs `package` with npm (and `options`) into `dir` unless `installed` exists.
fn install_npm(
    dir: &Path,
    package: &str,
    options: &[&str],
    installed: &Path,
) -> Result<(), String> {
    locked_install(dir, installed, || {
        let output = Command::new("npm")
            .args(["install", "--prefix"])
            .arg(dir)
            .args(["--no-audit", "--no-fund", "--no-save"])
            .args(options)
            .arg(package)
            .output();
        failure(&output, installed)
    })
}

//! What a long command needs before it starts — the wasm target, Node.js for icp-cli, disk
//! for a build — checked first, so that no command compiles for minutes and then fails on
//! something it could have known at once. What can be fixed here (the wasm target) is.

use std::path::Path;

use anyhow::{Context, Result, bail};
use xshell::cmd;

use crate::project;

pub const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Adds the wasm target to the active toolchain when it is missing; rustup installs a
/// `rust-toolchain.toml`'s targets only when it installs the toolchain itself.
pub fn wasm_target() -> Result<()> {
    let sh = project::shell()?;
    let sysroot = cmd!(sh, "rustc --print sysroot")
        .quiet()
        .read()
        .context("cannot run rustc: install Rust with rustup (https://rustup.rs)")?;
    if Path::new(&sysroot)
        .join("lib/rustlib")
        .join(WASM_TARGET)
        .is_dir()
    {
        return Ok(());
    }
    if cmd!(sh, "rustup --version")
        .quiet()
        .ignore_stderr()
        .read()
        .is_err()
    {
        bail!(
            "the Rust target {WASM_TARGET} is not installed for {sysroot}, and rustup is not on PATH to add it: install the target for this toolchain (with rustup: `rustup target add {WASM_TARGET}`)"
        );
    }
    eprintln!("adding the Rust target {WASM_TARGET} (rustup target add {WASM_TARGET})");
    let added = cmd!(sh, "rustup target add {WASM_TARGET}")
        .quiet()
        .ignore_status()
        .output()
        .context("cannot run rustup")?;
    if !added.status.success() {
        bail!(
            "`rustup target add {WASM_TARGET}` failed ({}): {}",
            added.status,
            String::from_utf8_lossy(&added.stderr).trim()
        );
    }
    Ok(())
}

/// npm, which installs icp-cli into the project.
pub fn npm() -> Result<()> {
    let sh = project::shell()?;
    if cmd!(sh, "npm --version")
        .quiet()
        .ignore_stderr()
        .read()
        .is_err()
    {
        bail!(
            "icp-cli is installed from npm, and npm is not on PATH: install Node.js with npm (https://nodejs.org), or set ICP_BIN to an icp binary"
        );
    }
    Ok(())
}

/// Enough free disk under the target directory for what `kind` writes: `cold_gib` when
/// nothing is built yet, 1 GiB over an existing build.
pub fn disk(kind: &str, cold_gib: u64) -> Result<()> {
    let target = project::target_dir();
    let need_gib = if target.join("debug/deps").is_dir() {
        1
    } else {
        cold_gib
    };
    let existing = target
        .ancestors()
        .find(|dir| dir.exists())
        .unwrap_or(&target);
    let free = free_bytes(existing)?;
    if free < need_gib << 30 {
        bail!(
            "{kind} needs about {need_gib} GiB of free disk under {}, and {:.1} GiB is free: free some space (or set CARGO_TARGET_DIR to a roomier disk) and run it again",
            target.display(),
            free as f64 / (1u64 << 30) as f64
        );
    }
    Ok(())
}

fn free_bytes(dir: &Path) -> Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: a valid C string and a buffer of the size statvfs writes.
    if unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot read the free disk of {}", dir.display()));
    }
    // SAFETY: statvfs succeeded and filled it.
    let stat = unsafe { stat.assume_init() };
    Ok(stat.f_bavail * stat.f_frsize)
}

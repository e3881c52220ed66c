//! `cargo xtask build`: compiles the chat canister for wasm32 with the size-tuned `canister`
//! profile, shrinks it with ic-wasm and embeds its Candid interface as public metadata, the
//! section dfx and icp-cli read back to type their calls. Two test canisters are built
//! beside it: the relay, the replica tests' canister that calls others, and the notes, the
//! xtask tests' canister of a user's own (with its Candid, as a user's would carry).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ic_wasm::metadata::{Kind, add_metadata};
use sha2::{Digest, Sha256};
use xshell::{Shell, cmd};

use crate::{
    preflight::{self, WASM_TARGET},
    project,
};

const PROFILE: &str = "canister";
/// The canisters' shadow stack (see `compile`).
const STACK_BYTES: u32 = 256 << 10;
/// The metadata name under which dfx and icp-cli look for a canister's interface.
pub const CANDID_METADATA: &str = "candid:service";

/// The built canister.
#[derive(serde::Serialize)]
pub struct Artifact {
    pub wasm: PathBuf,
    pub did: PathBuf,
    pub compiled_bytes: usize,
    pub shrunk_bytes: usize,
    pub sha256: String,
}

impl Artifact {
    pub fn report(&self) {
        println!(
            "chat.wasm: {} bytes compiled, {} bytes shrunk with Candid metadata\n  {}\n  {}\n  sha256 {}",
            self.compiled_bytes,
            self.shrunk_bytes,
            self.wasm.display(),
            self.did.display(),
            self.sha256
        );
    }
}

/// Where `cargo xtask build` writes the canister.
pub fn output_dir() -> PathBuf {
    project_tools::canister_dir(&project::target_dir())
}

/// The checked-in interface of the chat canister.
pub fn did_source() -> PathBuf {
    project::root().join("canister/chat.did")
}

pub fn build() -> Result<Artifact> {
    preflight::wasm_target()?;
    // A cold build of the xtask and the canister writes 2.3 GB.
    preflight::disk("building the canister", 3)?;
    let sh = project::shell()?;
    compile(&sh)?;
    let compiled = compiled_module("chat")?;
    let did = std::fs::read_to_string(did_source())
        .with_context(|| format!("cannot read {}", did_source().display()))?;
    let wasm = package(&compiled, &did)?;

    let dir = output_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let artifact = Artifact {
        wasm: dir.join("chat.wasm"),
        did: dir.join("chat.did"),
        compiled_bytes: compiled.len(),
        shrunk_bytes: wasm.len(),
        sha256: project::hex(&Sha256::digest(&wasm)),
    };
    write_atomically(&artifact.wasm, &wasm)?;
    write_atomically(&artifact.did, did.as_bytes())?;
    write_atomically(
        &dir.join("relay.wasm"),
        &shrink(&compiled_module("relay")?)?,
    )?;
    let notes_did = project::root().join("notes/notes.did");
    let notes_did = std::fs::read_to_string(&notes_did)
        .with_context(|| format!("cannot read {}", notes_did.display()))?;
    write_atomically(
        &dir.join("notes.wasm"),
        &package(&compiled_module("notes")?, &notes_did)?,
    )?;
    Ok(artifact)
}

/// What cargo built for canister `name`.
fn compiled_module(name: &str) -> Result<Vec<u8>> {
    let path = project::target_dir()
        .join(WASM_TARGET)
        .join(PROFILE)
        .join(format!("{name}.wasm"));
    std::fs::read(&path).with_context(|| format!("cargo built no {}", path.display()))
}

/// Shrinks a compiled module with ic-wasm.
fn shrink(compiled: &[u8]) -> Result<Vec<u8>> {
    let mut module = ic_wasm::utils::parse_wasm(compiled, false)
        .context("the compiled canister is not a valid wasm module")?;
    ic_wasm::shrink::shrink(&mut module);
    Ok(module.emit_wasm())
}

/// Shrinks a compiled module and embeds `did` as its public `candid:service` metadata.
pub fn package(compiled: &[u8], did: &str) -> Result<Vec<u8>> {
    let mut module = ic_wasm::utils::parse_wasm(compiled, false)
        .context("the compiled canister is not a valid wasm module")?;
    ic_wasm::shrink::shrink(&mut module);
    add_metadata(
        &mut module,
        Kind::Public,
        CANDID_METADATA,
        did.as_bytes().to_vec(),
    );
    Ok(module.emit_wasm())
}

fn compile(sh: &Shell) -> Result<()> {
    let cargo = project::cargo();
    // Paths of the checkout and of cargo's registry end up in panic messages; mapping them to
    // fixed names makes the same source give the same bytes wherever it is built.
    let root = project::root().display().to_string();
    let cargo_home = std::env::var("CARGO_HOME").unwrap_or_else(|_| {
        std::env::var("HOME").map_or_else(|_| "/root/.cargo".into(), |h| format!("{h}/.cargo"))
    });
    // Every page of the heap is in every snapshot, and the linker's default 1 MiB stack is
    // most of a small canister's heap; the canisters recurse little, and a stack overflow
    // traps (rolling the message back), so 256 KiB is ample and keeps a one-message chat's
    // snapshot under the upstream example's 1.61 MiB.
    let rustflags = format!(
        "--remap-path-prefix={root}=/project\x1f--remap-path-prefix={cargo_home}=/cargo\x1f-Clink-arg=-zstack-size={STACK_BYTES}"
    );
    let compile = cmd!(
        sh,
        "{cargo} build --quiet --locked -p chat -p relay -p notes --profile {PROFILE} --target {WASM_TARGET}"
    )
    .env("CARGO_ENCODED_RUSTFLAGS", rustflags);
    let status = project::status(compile)?;
    if !status.success() {
        bail!(
            "building the canisters failed ({status}); fix the errors above and run `cargo xtask build` again"
        );
    }
    Ok(())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes)
        .and_then(|()| std::fs::rename(&partial, path))
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built_wasm() -> Vec<u8> {
        let path =
            project_tools::chat_wasm(&project::target_dir()).unwrap_or_else(|e| panic!("{e}"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path:?}: {e}"))
    }

    #[test]
    fn built_canister_carries_the_checked_in_candid_as_public_metadata() {
        let module = ic_wasm::utils::parse_wasm(&built_wasm(), true).unwrap();
        let did = std::fs::read(did_source()).unwrap();
        let embedded = ic_wasm::metadata::get_metadata(&module, CANDID_METADATA).unwrap();
        assert_eq!(embedded.as_ref(), did.as_slice());
        let sections: Vec<_> = module
            .customs
            .iter()
            .map(|(_, s)| s.name().to_owned())
            .collect();
        assert_eq!(
            sections,
            ["icp:public candid:service"],
            "shrinking keeps only icp:* sections"
        );
    }

    #[test]
    fn built_canister_exports_the_chat_interface() {
        let module = ic_wasm::utils::parse_wasm(&built_wasm(), false).unwrap();
        let exports: Vec<_> = module.exports.iter().map(|e| e.name.as_str()).collect();
        for entry in [
            "canister_update append",
            "canister_query dump",
            "canister_update remove_spam",
            "canister_query len",
            "canister_query page",
        ] {
            assert!(exports.contains(&entry), "{entry} missing from {exports:?}");
        }
    }

    #[test]
    fn packaging_is_deterministic() {
        let compiled = std::fs::read(
            project::target_dir()
                .join(WASM_TARGET)
                .join(PROFILE)
                .join("chat.wasm"),
        )
        .expect("the compiled canister is missing: run `cargo xtask build`");
        let did = std::fs::read_to_string(did_source()).unwrap();
        let once = package(&compiled, &did).unwrap();
        assert_eq!(once, package(&compiled, &did).unwrap());
        assert_eq!(
            once,
            built_wasm(),
            "the build wrote what packaging produces"
        );
        assert!(once.len() < compiled.len());
    }

    #[test]
    fn packaging_refuses_what_is_not_wasm() {
        let error = package(b"not a wasm module", "service : {}").unwrap_err();
        assert!(format!("{error:#}").contains("not a valid wasm module"));
    }
}

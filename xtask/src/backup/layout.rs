//! The snapshot directory as dfx and icp-cli write it (`metadata.json`, `wasm_module.bin`,
//! `wasm_memory.bin`, `stable_memory.bin`, `wasm_chunk_store/<hash>.bin`; facts:
//! shared/reference/icp-cli.md), and whether a directory holds one whose sizes add up.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ic_management_canister_types::ReadCanisterSnapshotMetadataResult as Metadata;

use crate::project;

pub use replica::snapshot_files::{CHUNK_STORE, METADATA};
use replica::snapshot_files::{STABLE_MEMORY, WASM_MEMORY, WASM_MODULE};

/// The three memories a snapshot holds, in the order the tools transfer them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blob {
    Module,
    Heap,
    Stable,
}

impl Blob {
    pub const ALL: [Blob; 3] = [Blob::Module, Blob::Heap, Blob::Stable];

    pub fn file_name(self) -> &'static str {
        match self {
            Blob::Module => WASM_MODULE,
            Blob::Heap => WASM_MEMORY,
            Blob::Stable => STABLE_MEMORY,
        }
    }

    /// Its size as the metadata declares it.
    pub fn size(self, metadata: &Metadata) -> u64 {
        match self {
            Blob::Module => metadata.wasm_module_size,
            Blob::Heap => metadata.wasm_memory_size,
            Blob::Stable => metadata.stable_memory_size,
        }
    }
}

/// A snapshot directory: where each of its files goes.
#[derive(Clone, Debug)]
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn metadata_path(&self) -> PathBuf {
        self.dir.join(METADATA)
    }

    pub fn blob(&self, blob: Blob) -> PathBuf {
        self.dir.join(blob.file_name())
    }

    pub fn chunk_store(&self) -> PathBuf {
        self.dir.join(CHUNK_STORE)
    }

    pub fn chunk(&self, hash: &[u8]) -> PathBuf {
        self.chunk_store()
            .join(replica::snapshot_files::chunk_file(hash))
    }

    pub fn has_metadata(&self) -> bool {
        self.metadata_path().is_file()
    }

    pub fn read_metadata(&self) -> Result<Metadata> {
        let path = self.metadata_path();
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "{} has no {METADATA}: it is not a snapshot downloaded by cargo xtask, dfx or icp-cli",
                self.dir.display()
            )
        })?;
        serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is not snapshot metadata as dfx and icp-cli write it",
                path.display()
            )
        })
    }

    pub fn write_metadata(&self, metadata: &Metadata) -> Result<()> {
        write_atomically(&self.metadata_path(), &serde_json::to_vec_pretty(metadata)?)
    }

    /// Checks that every file the metadata names is there with the size it declares; what a
    /// directory without a manifest can still be checked for.
    pub fn check_sizes(&self, metadata: &Metadata) -> Result<()> {
        let mut problems = Vec::new();
        for blob in Blob::ALL {
            let expected = blob.size(metadata);
            match std::fs::metadata(self.blob(blob)) {
                Ok(file) if file.len() == expected => {}
                Ok(file) => problems.push(format!(
                    "{} holds {} bytes, the metadata says {expected}",
                    blob.file_name(),
                    file.len()
                )),
                Err(_) if expected == 0 => {}
                Err(_) => problems.push(format!("{} is missing", blob.file_name())),
            }
        }
        for chunk in &metadata.wasm_chunk_store {
            if !self.chunk(&chunk.hash).is_file() {
                problems.push(format!(
                    "{CHUNK_STORE}/{}.bin is missing",
                    project::hex(&chunk.hash)
                ));
            }
        }
        if !problems.is_empty() {
            bail!(
                "{} is not a complete snapshot: {}",
                self.dir.display(),
                problems.join("; ")
            );
        }
        Ok(())
    }
}

/// Writes a file so that a crash leaves the old one or the new one, never a torn one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes)
        .and_then(|()| std::fs::File::open(&partial)?.sync_all())
        .and_then(|()| std::fs::rename(&partial, path))
        .with_context(|| format!("cannot write {}", path.display()))
}

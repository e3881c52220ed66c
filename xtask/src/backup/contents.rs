//! What a snapshot directory holds, read offline for any canister: the module's hash and
//! metadata sections (its `candid:service` among them), the memories' sizes, the globals,
//! the chunk store, the certified data and the canister version.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::layout::{Blob, Layout};
use crate::build::CANDID_METADATA as CANDID_SERVICE;
use crate::project;

#[derive(Serialize)]
pub struct Contents {
    /// SHA-256 of the module, as `canister_status` reports it.
    pub module_hash: String,
    pub module_bytes: u64,
    pub heap_bytes: u64,
    pub stable_bytes: u64,
    pub metadata: Vec<Section>,
    /// The exported globals, as Candid text (`i32 7`, `f64 1.5`).
    pub globals: Vec<String>,
    /// The hashes of the chunks in the chunk store (hex).
    pub chunks: Vec<String>,
    pub certified_data: String,
    pub canister_version: u64,
    pub taken_at: String,
}

/// A metadata section of the module.
#[derive(Serialize)]
pub struct Section {
    pub name: String,
    pub public: bool,
    /// The contents, when they are text (as Candid interfaces are).
    pub text: Option<String>,
    pub bytes: usize,
}

impl Contents {
    pub fn read(dir: &Path) -> Result<Self> {
        let layout = Layout::new(dir);
        let metadata = layout.read_metadata()?;
        let module_path = layout.blob(Blob::Module);
        let module = std::fs::read(&module_path)
            .with_context(|| format!("cannot read {}", module_path.display()))?;
        Ok(Self {
            module_hash: project::hex(&Sha256::digest(&module)),
            module_bytes: metadata.wasm_module_size,
            heap_bytes: metadata.wasm_memory_size,
            stable_bytes: metadata.stable_memory_size,
            metadata: sections(&module)?,
            globals: metadata.globals.iter().map(global).collect(),
            chunks: metadata
                .wasm_chunk_store
                .iter()
                .map(|c| project::hex(&c.hash))
                .collect(),
            certified_data: project::hex(&metadata.certified_data),
            canister_version: metadata.canister_version,
            taken_at: crate::backend::utc(metadata.taken_at_timestamp),
        })
    }

    /// The canister's Candid interface, if its module carries one.
    pub fn candid(&self) -> Option<&str> {
        self.metadata
            .iter()
            .find(|s| s.name == CANDID_SERVICE)
            .and_then(|s| s.text.as_deref())
    }
}

fn sections(module: &[u8]) -> Result<Vec<Section>> {
    let module = ic_wasm::utils::parse_wasm(module, false)
        .context("the backup's wasm_module.bin is not a wasm module")?;
    let names: Vec<String> = ic_wasm::metadata::list_metadata(&module)
        .into_iter()
        .map(str::to_owned)
        .collect();
    Ok(names
        .into_iter()
        .filter_map(|full| {
            let (visibility, name) = full.split_once(' ')?;
            let data = ic_wasm::metadata::get_metadata(&module, name)?;
            Some(Section {
                name: name.to_owned(),
                public: visibility == "icp:public",
                text: String::from_utf8(data.to_vec()).ok(),
                bytes: data.len(),
            })
        })
        .collect())
}

fn global(global: &Option<ic_management_canister_types::SnapshotMetadataGlobal>) -> String {
    use ic_management_canister_types::SnapshotMetadataGlobal as G;
    match global {
        Some(G::I32(v)) => format!("i32 {v}"),
        Some(G::I64(v)) => format!("i64 {v}"),
        Some(G::F32(v)) => format!("f32 {v}"),
        Some(G::F64(v)) => format!("f64 {v}"),
        Some(G::V128(v)) => format!("v128 {v}"),
        None => "(unknown)".into(),
    }
}

/// The WebAssembly page: what memories are compared by.
const PAGE: usize = 64 << 10;

/// The pages (as inclusive ranges of page numbers) where two memory files differ, read a
/// page at a time; a page one file has and the other lacks differs.
pub fn changed_pages(a: &Path, b: &Path) -> Result<Vec<(u64, u64)>> {
    use std::io::Read;
    let open =
        |p: &Path| std::fs::File::open(p).with_context(|| format!("cannot read {}", p.display()));
    let (mut a, mut b) = (
        std::io::BufReader::new(open(a)?),
        std::io::BufReader::new(open(b)?),
    );
    let (mut page_a, mut page_b) = (vec![0; PAGE], vec![0; PAGE]);
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for page in 0u64.. {
        let read_a = read_page(&mut a, &mut page_a)?;
        let read_b = read_page(&mut b, &mut page_b)?;
        if read_a == 0 && read_b == 0 {
            break;
        }
        if read_a != read_b || page_a[..read_a] != page_b[..read_b] {
            match ranges.last_mut() {
                Some((_, end)) if *end + 1 == page => *end = page,
                _ => ranges.push((page, page)),
            }
        }
    }
    fn read_page(file: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
        let mut filled = 0;
        while filled < buffer.len() {
            match file.read(&mut buffer[filled..])? {
                0 => break,
                n => filled += n,
            }
        }
        Ok(filled)
    }
    Ok(ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_pages_are_ranges_of_the_pages_that_differ() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let mut bytes = vec![0u8; 6 * PAGE];
        std::fs::write(&a, &bytes).unwrap();
        bytes[PAGE + 7] = 1;
        bytes[2 * PAGE] = 1;
        bytes[4 * PAGE + PAGE - 1] = 1;
        bytes.extend_from_slice(&[0; 10]);
        std::fs::write(&b, &bytes).unwrap();
        assert_eq!(changed_pages(&a, &b).unwrap(), [(1, 2), (4, 4), (6, 6)]);
        assert!(changed_pages(&a, &a).unwrap().is_empty());
    }
}

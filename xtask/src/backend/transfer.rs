//! Moving a snapshot between a canister and a directory through the management canister's
//! read/upload methods (IC interface spec, "Canister snapshots"), in slices of at most
//! 2,000,000 bytes as dfx and icp-cli do, with a progress bar of bytes and rate. A download
//! appends each memory in order, so an interrupted one resumes from the files' lengths.

use std::{
    fs::{File, OpenOptions},
    io::{Read, Seek, SeekFrom, Write},
};

use anyhow::{Context, Result, anyhow, bail};
use candid::{CandidType, Decode, Encode, Principal};
use ic_management_canister_types as ic;
use indicatif::{ProgressBar, ProgressStyle};
use serde::de::DeserializeOwned;

use crate::backup::layout::{Blob, Layout, write_atomically};

/// The largest slice one read or upload moves (the IC's limit, and the tools').
pub const SLICE_BYTES: u64 = 2_000_000;

/// Calls a management-canister method with a Candid argument; returns the Candid reply.
pub type Call<'a> = dyn FnMut(&str, Vec<u8>) -> Result<Vec<u8>> + 'a;

fn manage<A: CandidType, R: CandidType + DeserializeOwned>(
    call: &mut Call,
    method: &str,
    arg: A,
) -> Result<R> {
    let reply = call(method, Encode!(&arg)?)?;
    Ok(Decode!(&reply, R)?)
}

fn bar(total: u64, verb: &str) -> ProgressBar {
    let template = format!(
        "  {verb} {{bar:30}} {{bytes}}/{{total_bytes}}, {{binary_bytes_per_sec}}, {{eta}} left"
    );
    ProgressBar::new(total).with_style(ProgressStyle::with_template(&template).expect("valid"))
}

/// The snapshot `id` of `canister` into `layout`; `resume` continues what is already there.
pub fn download(
    call: &mut Call,
    canister: Principal,
    id: &[u8],
    layout: &Layout,
    resume: bool,
) -> Result<()> {
    let metadata = if resume && layout.has_metadata() {
        layout.read_metadata()?
    } else {
        let args = ic::ReadCanisterSnapshotMetadataArgs {
            canister_id: canister,
            snapshot_id: id.to_vec(),
        };
        let metadata: ic::ReadCanisterSnapshotMetadataResult =
            manage(call, "read_canister_snapshot_metadata", args)?;
        layout.write_metadata(&metadata)?;
        metadata
    };
    std::fs::create_dir_all(layout.chunk_store())?;
    let total = Blob::ALL.iter().map(|b| b.size(&metadata)).sum();
    let bar = bar(total, "downloading");
    for blob in Blob::ALL {
        let size = blob.size(&metadata);
        download_blob(call, canister, id, layout, blob, size, &bar)?;
    }
    for chunk in &metadata.wasm_chunk_store {
        let path = layout.chunk(&chunk.hash);
        if path.is_file() {
            continue;
        }
        let kind = ic::SnapshotDataKind::WasmChunk {
            hash: chunk.hash.clone(),
        };
        let data = read(call, canister, id, kind)?;
        write_atomically(&path, &data)?;
    }
    bar.finish_and_clear();
    Ok(())
}

fn read(
    call: &mut Call,
    canister: Principal,
    id: &[u8],
    kind: ic::SnapshotDataKind,
) -> Result<Vec<u8>> {
    let args = ic::ReadCanisterSnapshotDataArgs {
        canister_id: canister,
        snapshot_id: id.to_vec(),
        kind,
    };
    let result: ic::ReadCanisterSnapshotDataResult =
        manage(call, "read_canister_snapshot_data", args)?;
    Ok(result.chunk)
}

fn download_blob(
    call: &mut Call,
    canister: Principal,
    id: &[u8],
    layout: &Layout,
    blob: Blob,
    size: u64,
    bar: &ProgressBar,
) -> Result<()> {
    let path = layout.blob(blob);
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let mut offset = file.metadata()?.len();
    if offset > size {
        bail!(
            "{} already holds {offset} bytes, more than the snapshot's {size}: it belongs to another download; use an empty directory",
            path.display()
        );
    }
    bar.inc(offset);
    while offset < size {
        let length = SLICE_BYTES.min(size - offset);
        let kind = match blob {
            Blob::Module => ic::SnapshotDataKind::WasmModule {
                offset,
                size: length,
            },
            Blob::Heap => ic::SnapshotDataKind::WasmMemory {
                offset,
                size: length,
            },
            Blob::Stable => ic::SnapshotDataKind::StableMemory {
                offset,
                size: length,
            },
        };
        let data = read(call, canister, id, kind)
            .with_context(|| format!("reading {} at byte {offset}", blob.file_name()))?;
        if data.len() as u64 != length {
            bail!(
                "the replica returned {} bytes of {} at {offset}, not the {length} asked for",
                data.len(),
                blob.file_name()
            );
        }
        file.write_all(&data)
            .with_context(|| format!("cannot write {}", path.display()))?;
        offset += length;
        bar.inc(length);
    }
    file.sync_all()?;
    Ok(())
}

/// The snapshot in `layout` as a new snapshot of `canister` (replacing `replace`); returns
/// its id. A failure after the metadata went up deletes the half-uploaded snapshot.
pub fn upload(
    call: &mut Call,
    canister: Principal,
    layout: &Layout,
    replace: Option<&[u8]>,
) -> Result<Vec<u8>> {
    let metadata = layout.read_metadata()?;
    layout.check_sizes(&metadata)?;
    let globals = metadata
        .globals
        .iter()
        .cloned()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| anyhow!("the snapshot metadata holds a global of a type this tool does not know; upload it with the tool that downloaded it"))?;
    let args = ic::UploadCanisterSnapshotMetadataArgs {
        canister_id: canister,
        replace_snapshot: replace.map(<[u8]>::to_vec),
        wasm_module_size: metadata.wasm_module_size,
        globals,
        wasm_memory_size: metadata.wasm_memory_size,
        stable_memory_size: metadata.stable_memory_size,
        certified_data: metadata.certified_data.clone(),
        global_timer: metadata.global_timer.clone(),
        on_low_wasm_memory_hook_status: metadata.on_low_wasm_memory_hook_status.clone(),
    };
    let created: ic::UploadCanisterSnapshotMetadataResult =
        manage(call, "upload_canister_snapshot_metadata", args)?;
    let id = created.snapshot_id;
    match upload_data(call, canister, &id, layout, &metadata) {
        Ok(()) => Ok(id),
        Err(error) => {
            let args = ic::DeleteCanisterSnapshotArgs {
                canister_id: canister,
                snapshot_id: id.clone(),
            };
            let cleaned = manage::<_, ()>(call, "delete_canister_snapshot", args);
            let what = if cleaned.is_ok() {
                "the half-uploaded snapshot was deleted"
            } else {
                "the half-uploaded snapshot could not be deleted: delete it with `cargo xtask delete`"
            };
            Err(error.context(format!(
                "uploading snapshot {} failed; {what}",
                crate::project::hex(&id)
            )))
        }
    }
}

fn upload_data(
    call: &mut Call,
    canister: Principal,
    id: &[u8],
    layout: &Layout,
    metadata: &ic::ReadCanisterSnapshotMetadataResult,
) -> Result<()> {
    let total = Blob::ALL.iter().map(|b| b.size(metadata)).sum();
    let bar = bar(total, "uploading");
    for blob in Blob::ALL {
        let size = blob.size(metadata);
        if size == 0 {
            continue;
        }
        let path = layout.blob(blob);
        let mut file =
            File::open(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut offset = 0;
        while offset < size {
            let mut data = vec![0; SLICE_BYTES.min(size - offset) as usize];
            file.seek(SeekFrom::Start(offset))?;
            file.read_exact(&mut data)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let kind = match blob {
                Blob::Module => ic::SnapshotDataOffset::WasmModule { offset },
                Blob::Heap => ic::SnapshotDataOffset::WasmMemory { offset },
                Blob::Stable => ic::SnapshotDataOffset::StableMemory { offset },
            };
            offset += data.len() as u64;
            bar.inc(data.len() as u64);
            send(call, canister, id, kind, data)?;
        }
    }
    for chunk in &metadata.wasm_chunk_store {
        let path = layout.chunk(&chunk.hash);
        let data =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        send(call, canister, id, ic::SnapshotDataOffset::WasmChunk, data)?;
    }
    bar.finish_and_clear();
    Ok(())
}

fn send(
    call: &mut Call,
    canister: Principal,
    id: &[u8],
    kind: ic::SnapshotDataOffset,
    chunk: Vec<u8>,
) -> Result<()> {
    let args = ic::UploadCanisterSnapshotDataArgs {
        canister_id: canister,
        snapshot_id: id.to_vec(),
        kind,
        chunk,
    };
    manage(call, "upload_canister_snapshot_data", args)
}

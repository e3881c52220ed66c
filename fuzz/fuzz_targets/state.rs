//! The state on disk as `Replica::open` reads it: a manifest (raw, or with a valid checksum
//! around an arbitrary body, so that decoding is reached), a journal (raw, or with valid
//! record checksums around arbitrary entries, so that replay is reached) and a pack file.
//! Whatever is there is opened or refused with an error; nothing panics.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

#[derive(Arbitrary, Debug)]
enum File {
    Manifest(Vec<u8>),
    ManifestBody(Vec<u8>),
    Journal(Vec<u8>),
    JournalRecords(Vec<(u64, Vec<u8>)>),
    Pack(Vec<u8>),
}

fn manifest(body: &[u8]) -> Vec<u8> {
    let mut bytes = b"CSST".to_vec();
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&Sha256::digest(body));
    bytes.extend_from_slice(body);
    bytes
}

fn journal(records: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut bytes = b"CSJOURN1".to_vec();
    for (sequence, record) in records {
        let mut check = Sha256::new();
        check.update(sequence.to_le_bytes());
        check.update(record);
        bytes.extend_from_slice(&sequence.to_le_bytes());
        bytes.extend_from_slice(&(record.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&check.finalize()[..8]);
        bytes.extend_from_slice(record);
    }
    bytes
}

fuzz_target!(|files: Vec<File>| {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("packs")).unwrap();
    for file in &files {
        let (name, bytes) = match file {
            File::Manifest(raw) => ("state", raw.clone()),
            File::ManifestBody(body) => ("state", manifest(body)),
            File::Journal(raw) => ("journal", raw.clone()),
            File::JournalRecords(records) => ("journal", journal(records)),
            File::Pack(raw) => ("packs/0000000000000000.pack", raw.clone()),
        };
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let _ = replica::Replica::open(dir.path());
});

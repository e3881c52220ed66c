//! Pack files: immutable, append-once files of objects, each stored as
//! `hash (32) ‖ length (u64 LE) ‖ bytes` after an 8-byte header.

use std::{
    collections::HashMap,
    fs::File,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
};

use super::{Hash, disk, hash, hex};
use crate::error::StoreError;

const MAGIC: &[u8; 4] = b"CSPK";
const VERSION: u32 = 1;
const HEADER: u64 = 8;
const RECORD_HEADER: u64 = 40;

/// Where an object's bytes are in its pack.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    offset: u64,
    len: u64,
}

/// Objects gathered for the next commit.
#[derive(Default)]
pub struct PackWriter {
    objects: HashMap<Hash, Vec<u8>>,
    order: Vec<Hash>,
}

impl PackWriter {
    pub fn add(&mut self, hash: Hash, bytes: &[u8]) {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.objects.entry(hash) {
            slot.insert(bytes.to_vec());
            self.order.push(hash);
        }
    }

    pub fn get(&self, hash: &Hash) -> Option<&[u8]> {
        self.objects.get(hash).map(Vec::as_slice)
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Writes the pack durably under `path` (through a temporary name) and opens it.
    pub fn write(self, path: &Path) -> Result<Pack, StoreError> {
        let size: usize = self.objects.values().map(|o| o.len() + 40).sum();
        let mut bytes = Vec::with_capacity(size + HEADER as usize);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        let mut entries = HashMap::with_capacity(self.order.len());
        for hash in &self.order {
            let object = &self.objects[hash];
            bytes.extend_from_slice(hash);
            bytes.extend_from_slice(&(object.len() as u64).to_le_bytes());
            let entry = Entry {
                offset: bytes.len() as u64,
                len: object.len() as u64,
            };
            bytes.extend_from_slice(object);
            entries.insert(*hash, entry);
        }
        let partial = path.with_extension("pack.tmp");
        disk::write_new(&partial, &bytes, disk::SHARED)?;
        crate::fault::point("pack:written-not-renamed");
        disk::rename(&partial, path)?;
        disk::sync_dir(path.parent().expect("packs live in a directory"))?;
        let file = disk::open_read(path)?;
        Ok(Pack {
            path: path.to_owned(),
            file,
            entries,
        })
    }
}

/// A committed pack, open for reading.
pub struct Pack {
    path: PathBuf,
    file: File,
    entries: HashMap<Hash, Entry>,
}

impl Pack {
    /// Opens a pack and indexes its records (their bytes are checked when read).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let file = disk::open_read(path)?;
        let corrupt = |what: String| StoreError::Corrupt {
            path: path.to_owned(),
            what,
        };
        let size = file.metadata().map_err(StoreError::io(path))?.len();
        let mut header = [0u8; HEADER as usize];
        file.read_exact_at(&mut header, 0)
            .map_err(|_| corrupt("it is shorter than a pack header".into()))?;
        if &header[..4] != MAGIC {
            return Err(corrupt("not a pack file".into()));
        }
        let version = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        if version != VERSION {
            return Err(StoreError::Version {
                path: path.to_owned(),
                found: version,
                supported: VERSION,
            });
        }
        let mut entries = HashMap::new();
        let mut offset = HEADER;
        while offset < size {
            let mut record = [0u8; RECORD_HEADER as usize];
            file.read_exact_at(&mut record, offset)
                .map_err(|_| corrupt(format!("truncated record header at byte {offset}")))?;
            let hash: Hash = record[..32].try_into().expect("32 bytes");
            let len = u64::from_le_bytes(record[32..].try_into().expect("8 bytes"));
            let start = offset + RECORD_HEADER;
            if start.checked_add(len).is_none_or(|end| end > size) {
                return Err(corrupt(format!("truncated object at byte {start}")));
            }
            entries.insert(hash, Entry { offset: start, len });
            offset = start + len;
        }
        Ok(Self {
            path: path.to_owned(),
            file,
            entries,
        })
    }

    pub fn entries(&self) -> impl Iterator<Item = (&Hash, &Entry)> {
        self.entries.iter()
    }

    /// Reads one object and checks it against its hash.
    pub fn read(&self, entry: &Entry, expected: &Hash) -> Result<Vec<u8>, StoreError> {
        let mut bytes = vec![0; entry.len as usize];
        self.file
            .read_exact_at(&mut bytes, entry.offset)
            .map_err(StoreError::io(&self.path))?;
        if hash(&bytes) != *expected {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                what: format!(
                    "object {} at byte {} does not match its checksum",
                    hex(expected),
                    entry.offset
                ),
            });
        }
        Ok(bytes)
    }
}

//! An append-only log of opaque records kept with the state for the layer above (the HTTP
//! layer's ingress history), owner-readable only. Each record is length-prefixed and
//! checksummed, so a tail torn by a crash mid-append is dropped on reading, never misread.
//! It is made durable with the journal, and rewritten whole to drop what has expired.

use std::fs::File;
use std::path::PathBuf;

use super::{disk, hash};
use crate::error::StoreError;

pub struct SideLog {
    path: PathBuf,
    file: File,
}

fn framed(record: &[u8]) -> Vec<u8> {
    let length = u32::try_from(record.len()).expect("records are small");
    [&length.to_le_bytes()[..], &hash(record), record].concat()
}

impl SideLog {
    pub(crate) fn open(path: PathBuf) -> Result<Self, StoreError> {
        let file = disk::open_append(&path, disk::PRIVATE)?;
        disk::sync_dir(path.parent().expect("in the state directory"))?;
        Ok(Self { path, file })
    }

    /// Every whole record, oldest first; reading stops at the first torn or damaged one.
    pub fn records(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let bytes = disk::read(&self.path).map_err(StoreError::io(&self.path))?;
        let mut records = Vec::new();
        let mut at = 0;
        while let Some(header) = bytes.get(at..at + 36) {
            let length = u32::from_le_bytes(header[..4].try_into().expect("4")) as usize;
            let Some(record) = bytes.get(at + 36..at + 36 + length) else {
                break;
            };
            if hash(record) != header[4..36] {
                break;
            }
            records.push(record.to_vec());
            at += 36 + length;
        }
        Ok(records)
    }

    pub fn append(&mut self, record: &[u8]) -> Result<(), StoreError> {
        disk::append(&mut self.file, &self.path, &framed(record))
    }

    pub fn sync(&self) -> Result<(), StoreError> {
        disk::sync(&self.file, &self.path)
    }

    /// Replaces the log with `records`, atomically and durably.
    pub fn rewrite(&mut self, records: &[Vec<u8>]) -> Result<(), StoreError> {
        let bytes: Vec<u8> = records.iter().flat_map(|r| framed(r)).collect();
        disk::replace(&self.path, &bytes, disk::PRIVATE)?;
        self.file = disk::open_append(&self.path, disk::PRIVATE)?;
        Ok(())
    }
}

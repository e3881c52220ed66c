//! The journal: what happened since the last checkpoint, one record per replicated
//! execution, appended before the execution runs. A checkpoint (a commit of the store) makes
//! the records up to its sequence number redundant; opening the state replays the rest.
//!
//! Each append is one `write` to the file, so an acknowledged call survives the process
//! being killed at any instant; `sync` makes it survive a power failure too. A record is
//! `sequence (u64 LE) ‖ length (u32 LE) ‖ first 8 bytes of SHA-256(sequence ‖ bytes) ‖
//! bytes`. A torn last record — an append that never finished, or one a power failure cut
//! before it was synced — is cut off; a damaged record with others after it is corruption.

use std::{
    fs::File,
    io::Read,
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};

use super::disk;
use crate::error::StoreError;

const MAGIC: &[u8; 8] = b"CSJOURN1";
const RECORD_HEADER: usize = 20;

pub struct Journal {
    path: PathBuf,
    file: File,
    /// Bytes of whole records after the header.
    len: u64,
    records: usize,
    next: u64,
    unsynced: bool,
}

/// Makes the journal durable from another thread (`Journal::syncer`).
pub struct JournalSyncer {
    file: File,
    path: PathBuf,
}

impl JournalSyncer {
    pub fn sync(&self) -> Result<(), StoreError> {
        disk::sync(&self.file, &self.path)
    }
}

/// A record read back at open.
pub struct Record {
    pub sequence: u64,
    pub bytes: Vec<u8>,
}

impl Journal {
    /// Opens (creating) the journal in `dir`; returns it and its intact records, in order.
    pub fn open(dir: &Path) -> Result<(Self, Vec<Record>), StoreError> {
        let path = dir.join("journal");
        let io = StoreError::io(&path);
        let mut file = disk::open_append(&path, disk::PRIVATE)?;
        let mut contents = Vec::new();
        file.read_to_end(&mut contents).map_err(io)?;
        if contents.len() < MAGIC.len() {
            // New (or never synced before a power loss): a header, durably, under its name.
            contents = MAGIC.to_vec();
            disk::set_len(&file, &path, 0)?;
            disk::append(&mut file, &path, MAGIC)?;
            disk::sync(&file, &path)?;
            disk::sync_dir(dir)?;
        }
        let records = records_in(&path, &contents)?;
        let len: u64 = records
            .iter()
            .map(|r| (RECORD_HEADER + r.bytes.len()) as u64)
            .sum();
        // Cut off a torn tail, so that new records follow the last intact one.
        disk::set_len(&file, &path, MAGIC.len() as u64 + len)?;
        let next = match records.last() {
            None => 1,
            Some(last) => last
                .sequence
                .checked_add(1)
                .ok_or_else(|| StoreError::Corrupt {
                    path: path.clone(),
                    what: "its record numbers are exhausted".into(),
                })?,
        };
        let journal = Self {
            path,
            file,
            len,
            records: records.len(),
            next,
            unsynced: false,
        };
        Ok((journal, records))
    }

    /// The intact records as they are on disk now.
    pub fn read_back(&self) -> Result<Vec<Record>, StoreError> {
        let contents = disk::read(&self.path).map_err(StoreError::io(&self.path))?;
        records_in(&self.path, &contents)
    }

    /// Appends a record; returns its sequence number.
    pub fn append(&mut self, bytes: &[u8]) -> Result<u64, StoreError> {
        let sequence = self.next;
        let mut record = Vec::with_capacity(RECORD_HEADER + bytes.len());
        record.extend_from_slice(&sequence.to_le_bytes());
        record.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        record.extend_from_slice(&check(sequence, bytes));
        record.extend_from_slice(bytes);
        crate::fault::point("journal:before-append");
        if let Err(e) = disk::append(&mut self.file, &self.path, &record) {
            // Leave no partial record behind for the next append to follow.
            let _ = disk::set_len(&self.file, &self.path, MAGIC.len() as u64 + self.len);
            return Err(e);
        }
        crate::fault::point("journal:appended");
        self.len += record.len() as u64;
        self.records += 1;
        self.next += 1;
        self.unsynced = true;
        Ok(sequence)
    }

    /// How many records a replay would apply.
    pub fn records(&self) -> usize {
        self.records
    }

    /// The sequence number the next record gets.
    pub fn next_sequence(&self) -> u64 {
        self.next
    }

    /// Continues numbering after `sequence` (what the last checkpoint covered), so that
    /// numbers never repeat after the journal was emptied.
    pub fn continue_after(&mut self, sequence: u64) {
        self.next = self.next.max(sequence.saturating_add(1));
    }

    /// Makes the records durable against power loss.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        if self.unsynced {
            disk::sync(&self.file, &self.path)?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// A second handle on the journal's file, which makes it durable without the journal
    /// itself: while one thread runs calls, another syncs what they journaled.
    pub fn syncer(&self) -> Result<JournalSyncer, StoreError> {
        Ok(JournalSyncer {
            file: self.file.try_clone().map_err(StoreError::io(&self.path))?,
            path: self.path.clone(),
        })
    }

    /// Drops every record: a checkpoint now holds their effects.
    pub fn clear(&mut self) -> Result<(), StoreError> {
        // Durably, before anything is appended again: a lost truncation under later records
        // would leave old and new records interleaved for the next replay to misread.
        disk::set_len(&self.file, &self.path, MAGIC.len() as u64)?;
        disk::sync(&self.file, &self.path)?;
        self.len = 0;
        self.records = 0;
        Ok(())
    }
}

fn records_in(path: &Path, contents: &[u8]) -> Result<Vec<Record>, StoreError> {
    let corrupt = |what: String| StoreError::Corrupt {
        path: path.to_owned(),
        what,
    };
    if contents.get(..MAGIC.len()) != Some(MAGIC) {
        return Err(corrupt("it is not a replica journal".into()));
    }
    parse(&contents[MAGIC.len()..]).map_err(|sequence| {
        corrupt(format!(
            "record {sequence} is damaged or out of order, and records follow it"
        ))
    })
}

fn check(sequence: u64, bytes: &[u8]) -> [u8; 8] {
    let mut hasher = Sha256::new();
    hasher.update(sequence.to_le_bytes());
    hasher.update(bytes);
    hasher.finalize()[..8].try_into().expect("8 bytes")
}

/// The intact records at the start of `body`, up to a torn last one; the sequence number of
/// a damaged record that others follow is an error.
fn parse(mut body: &[u8]) -> Result<Vec<Record>, u64> {
    let mut records = Vec::new();
    while body.len() >= RECORD_HEADER {
        let sequence = u64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(body[8..12].try_into().expect("4 bytes")) as usize;
        let Some(bytes) = body.get(RECORD_HEADER..RECORD_HEADER + len) else {
            break;
        };
        if body[12..20] != check(sequence, bytes) {
            if body.len() > RECORD_HEADER + len {
                return Err(sequence);
            }
            break;
        }
        // Records are numbered one after another; a gap or a step back is damage.
        if records
            .last()
            .is_some_and(|r: &Record| r.sequence.checked_add(1) != Some(sequence))
        {
            return Err(sequence);
        }
        records.push(Record {
            sequence,
            bytes: bytes.to_vec(),
        });
        body = &body[RECORD_HEADER + len..];
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_in_order_and_a_torn_tail_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut journal, records) = Journal::open(dir.path()).unwrap();
            assert!(records.is_empty());
            assert_eq!(journal.append(b"one").unwrap(), 1);
            assert_eq!(journal.append(b"two").unwrap(), 2);
        }
        let path = dir.path().join("journal");
        let whole = std::fs::read(&path).unwrap();
        let mut torn = whole.clone();
        torn.extend_from_slice(&3u64.to_le_bytes());
        torn.extend_from_slice(&[9, 0, 0, 0, 1, 2]);
        std::fs::write(&path, &torn).unwrap();
        let (mut journal, records) = Journal::open(dir.path()).unwrap();
        let read: Vec<&[u8]> = records.iter().map(|r| r.bytes.as_slice()).collect();
        assert_eq!(read, [b"one".as_slice(), b"two"]);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            whole,
            "the torn tail is gone"
        );
        assert_eq!(journal.append(b"three").unwrap(), 3);
        journal.clear().unwrap();
        journal.continue_after(3);
        assert_eq!(journal.append(b"four").unwrap(), 4);
        drop(journal);
        let (_, records) = Journal::open(dir.path()).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].sequence, 4);
    }

    #[test]
    fn a_damaged_last_record_is_cut_and_a_damaged_middle_one_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut journal, _) = Journal::open(dir.path()).unwrap();
            journal.append(b"one").unwrap();
            journal.append(b"two").unwrap();
        }
        let path = dir.path().join("journal");
        let intact = std::fs::read(&path).unwrap();
        let mut bytes = intact.clone();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let (_, records) = Journal::open(dir.path()).unwrap();
        assert_eq!(records.len(), 1);

        let mut bytes = intact;
        bytes[MAGIC.len() + RECORD_HEADER] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let error = Journal::open(dir.path()).err().unwrap().to_string();
        assert!(error.contains("record 1 is damaged"), "{error}");
        assert!(error.contains("journal"), "{error}");
    }
}

//! Stable memory during one message: its bytes, an undo log so a trap rolls it back, and
//! the pages the message touched, so that only those are hashed at commit.

use std::collections::BTreeSet;

pub const PAGE: u64 = 64 * 1024;
/// Stable memory limit (IC interface spec, "Resource limits": 500 GiB).
pub const MAX_PAGES: u64 = 500 * 1024 * 1024 * 1024 / PAGE;

#[derive(Default)]
pub struct StableMemory {
    bytes: Vec<u8>,
    undo: Vec<(u64, Vec<u8>)>,
    len_before: usize,
    dirty: BTreeSet<u64>,
}

impl StableMemory {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self {
            len_before: bytes.len(),
            bytes,
            ..Self::default()
        }
    }

    pub fn pages(&self) -> u64 {
        self.bytes.len() as u64 / PAGE
    }

    /// Grows by `new_pages`; returns the old size in pages, or `None` past `max_pages` or
    /// when the allocator refuses that much (the canister sees -1, as on a subnet out of
    /// memory, and the replica does not abort; with the kernel's overcommit set to "always",
    /// the kernel may grant it and later run out). A `replicated` grow's refusal is the
    /// round's to record (`grants`), so that a replay refuses the same.
    pub fn grow(&mut self, new_pages: u64, max_pages: u64, replicated: bool) -> Option<u64> {
        let old = self.pages();
        let total = old.checked_add(new_pages).filter(|t| *t <= max_pages)?;
        let len = usize::try_from(total * PAGE).ok()?;
        let more = len - self.bytes.len();
        // Room to grow into again, if the machine has it; else exactly what is asked.
        let bytes = &mut self.bytes;
        let mut allocate = || {
            #[cfg(feature = "fault-points")]
            if crate::fault::refuses_stable(len) {
                return false;
            }
            bytes.try_reserve(more).is_ok() || bytes.try_reserve_exact(more).is_ok()
        };
        let granted = match replicated {
            true => super::grants::grant(allocate),
            false => allocate(),
        };
        if !granted {
            return None;
        }
        self.bytes.resize(len, 0);
        Some(old)
    }

    /// The bytes at `offset..offset + size`, or `None` when out of bounds.
    pub fn read(&self, offset: u64, size: u64) -> Option<&[u8]> {
        let end = offset.checked_add(size)?;
        self.bytes.get(offset as usize..usize::try_from(end).ok()?)
    }

    /// Writes `data` at `offset`; `false` when out of bounds.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> bool {
        let Some(end) = offset.checked_add(data.len() as u64) else {
            return false;
        };
        if end > self.bytes.len() as u64 || data.is_empty() {
            return end <= self.bytes.len() as u64;
        }
        let range = offset as usize..end as usize;
        // Bytes past the old end need no undo: rolling back truncates them.
        let old_end = (end as usize).min(self.len_before);
        if (offset as usize) < old_end {
            self.undo
                .push((offset, self.bytes[offset as usize..old_end].to_vec()));
        }
        self.bytes[range].copy_from_slice(data);
        self.dirty.extend(offset / PAGE..=(end - 1) / PAGE);
        true
    }

    /// Undoes every write and growth of this message.
    pub fn roll_back(&mut self) {
        for (offset, old) in self.undo.drain(..).rev() {
            let offset = offset as usize;
            self.bytes[offset..offset + old.len()].copy_from_slice(&old);
        }
        self.bytes.truncate(self.len_before);
        self.dirty.clear();
    }

    /// The bytes and the pages written since `new` (pages past the old end count as written).
    pub fn finish(self) -> (Vec<u8>, BTreeSet<u64>) {
        let mut dirty = self.dirty;
        dirty.extend(self.len_before as u64 / PAGE..self.bytes.len() as u64 / PAGE);
        (self.bytes, dirty)
    }
}

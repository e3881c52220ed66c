//! Memory images: a heap or stable memory as a list of 64 KiB page hashes in the store, so
//! that the live state and its snapshots share every page they have in common and all-zero
//! pages cost nothing.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::stable::PAGE;
use crate::error::StoreError;
use crate::store::{self, Hash, Store};

/// Stands for an all-zero page, which is never stored.
const ZERO: Hash = [0; 32];

/// Whether a page (or a shorter last one) is all zeros: compared with zeros as a whole,
/// which runs as a vectorised `memcmp` rather than a byte at a time.
fn is_zero(page: &[u8]) -> bool {
    static ZEROS: [u8; PAGE as usize] = [0; PAGE as usize];
    page == &ZEROS[..page.len()]
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryImage {
    /// Length in bytes, a multiple of the page size.
    pub len: u64,
    /// One hash per page, concatenated.
    #[serde(with = "serde_bytes")]
    pages: Vec<u8>,
}

impl MemoryImage {
    /// Stores `bytes` page by page. With a `previous` image of the same memory, only the
    /// pages in `changed` are hashed again; without one, every page is.
    pub fn capture(
        store: &mut Store,
        bytes: &[u8],
        previous: Option<(&MemoryImage, &BTreeSet<u64>)>,
    ) -> Self {
        let pages = bytes.len().div_ceil(PAGE as usize);
        let mut hashes = Vec::with_capacity(pages * 32);
        for (index, page) in bytes.chunks(PAGE as usize).enumerate() {
            let unchanged = previous.and_then(|(image, changed)| {
                (!changed.contains(&(index as u64)))
                    .then(|| image.page(index))
                    .flatten()
            });
            let hash = match unchanged {
                Some(hash) => hash,
                None if is_zero(page) => ZERO,
                None => {
                    let hash = store::hash(page);
                    store.put_hashed(hash, page);
                    hash
                }
            };
            hashes.extend_from_slice(&hash);
        }
        Self {
            len: bytes.len() as u64,
            pages: hashes,
        }
    }

    /// The memory's bytes, each page checked against its hash.
    pub fn restore(&self, store: &Store) -> Result<Vec<u8>, StoreError> {
        let mut bytes = zeroed(self.len)?;
        for (index, page) in bytes.chunks_mut(PAGE as usize).enumerate() {
            let hash = self.page(index).expect("one hash per page");
            if hash != ZERO {
                page.copy_from_slice(&store.get(&hash)?);
            }
        }
        Ok(bytes)
    }

    /// A memory of `len` zero bytes (`len` need not be a whole number of pages).
    pub fn zeros(len: u64) -> Self {
        let pages = len.div_ceil(PAGE) as usize;
        Self {
            len,
            pages: ZERO.repeat(pages),
        }
    }

    /// `size` bytes from `offset`, reading only the pages they lie in; `None` past the end.
    pub fn read(
        &self,
        store: &Store,
        offset: u64,
        size: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(end) = offset.checked_add(size).filter(|end| *end <= self.len) else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(size as usize);
        let mut at = offset;
        while at < end {
            let index = (at / PAGE) as usize;
            let page = self.page_bytes(store, index)?;
            let from = (at % PAGE) as usize;
            let to = page.len().min(from + (end - at) as usize);
            out.extend_from_slice(&page[from..to]);
            at += (to - from) as u64;
        }
        Ok(Some(out))
    }

    /// Writes `data` at `offset`, storing the pages it changes; `false` past the end.
    pub fn write(
        &mut self,
        store: &mut Store,
        offset: u64,
        data: &[u8],
    ) -> Result<bool, StoreError> {
        let Some(end) = offset
            .checked_add(data.len() as u64)
            .filter(|end| *end <= self.len)
        else {
            return Ok(false);
        };
        let mut at = offset;
        while at < end {
            let index = (at / PAGE) as usize;
            let mut page = self.page_bytes(store, index)?;
            let from = (at % PAGE) as usize;
            let to = page.len().min(from + (end - at) as usize);
            let source = (at - offset) as usize;
            page[from..to].copy_from_slice(&data[source..source + to - from]);
            let hash = if is_zero(&page) {
                ZERO
            } else {
                let hash = store::hash(&page);
                store.put_hashed(hash, &page);
                hash
            };
            self.pages[index * 32..index * 32 + 32].copy_from_slice(&hash);
            at += (to - from) as u64;
        }
        Ok(true)
    }

    /// The bytes of page `index` (shorter for a partial last page).
    fn page_bytes(&self, store: &Store, index: usize) -> Result<Vec<u8>, StoreError> {
        let hash = self.page(index).expect("index within len");
        let len = (self.len - index as u64 * PAGE).min(PAGE) as usize;
        if hash == ZERO {
            Ok(vec![0; len])
        } else {
            store.get(&hash)
        }
    }

    /// Turns `bytes`, which hold the memory `current` describes, into this one, reading
    /// from the store only the pages that differ; returns those pages.
    pub fn restore_over(
        &self,
        store: &Store,
        current: &MemoryImage,
        bytes: &mut Vec<u8>,
    ) -> Result<Vec<u64>, StoreError> {
        let len = self.len as usize;
        let more = len.saturating_sub(bytes.len());
        (bytes.try_reserve(more))
            .or_else(|_| bytes.try_reserve_exact(more))
            .map_err(|_| StoreError::OutOfMemory { bytes: self.len })?;
        bytes.resize(len, 0);
        let mut changed = Vec::new();
        for (index, page) in bytes.chunks_mut(PAGE as usize).enumerate() {
            let hash = self.page(index).expect("one hash per page");
            if current.page(index) == Some(hash) {
                continue;
            }
            changed.push(index as u64);
            if hash == ZERO {
                page.fill(0);
            } else {
                page.copy_from_slice(&store.get(&hash)?);
            }
        }
        Ok(changed)
    }

    fn page(&self, index: usize) -> Option<Hash> {
        self.pages
            .get(index * 32..index * 32 + 32)
            .map(|h| h.try_into().expect("32 bytes"))
    }

    /// The stored pages this image refers to.
    pub fn hashes(&self) -> impl Iterator<Item = Hash> + '_ {
        self.pages
            .chunks(32)
            .map(|h| h.try_into().expect("32 bytes"))
            .filter(|h| *h != ZERO)
    }
}

/// `len` zero bytes, or an error rather than an abort when the machine cannot hold them (an
/// uploaded snapshot may declare up to 500 GiB of stable memory). The allocator hands out
/// fresh zero pages for large sizes, so nothing is written until the pages are used.
fn zeroed(len: u64) -> Result<Vec<u8>, StoreError> {
    let out_of_memory = StoreError::OutOfMemory { bytes: len };
    let Ok(len) = usize::try_from(len) else {
        return Err(out_of_memory);
    };
    if len == 0 {
        return Ok(Vec::new());
    }
    let layout = std::alloc::Layout::array::<u8>(len).map_err(|_| out_of_memory)?;
    // SAFETY: `layout` has a non-zero size. A non-null result is `len` zeroed bytes from the
    // global allocator with the alignment of `u8`: a valid buffer for a `Vec<u8>` of length
    // and capacity `len`, which then owns and frees it.
    let bytes = unsafe {
        let pointer = std::alloc::alloc_zeroed(layout);
        (!pointer.is_null()).then(|| Vec::from_raw_parts(pointer, len, len))
    };
    bytes.ok_or(StoreError::OutOfMemory { bytes: len as u64 })
}

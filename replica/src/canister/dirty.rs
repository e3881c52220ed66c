//! Which 64 KiB pages of a wasm heap were written since they were last protected, asked of
//! the kernel instead of found by comparing the heap with its saved copy: the heap is
//! registered with a userfaultfd in asynchronous write-protect mode, where a write to a
//! protected page only clears its protection, and `PAGEMAP_SCAN` lists the pages whose
//! protection was cleared (Linux ≥ 6.7; `Documentation/admin-guide/mm/pagemap.rst`,
//! "PAGEMAP_SCAN IOCTL", and `userfaultfd.rst`, "Write Protect Notifications").
//!
//! A `Tracker` is an optimisation only: where the kernel cannot track (another OS, an older
//! kernel, no userfaultfd allowed), `watch` gives none and callers compare every page.

use std::ops::Range;

use super::stable::PAGE;

/// The write tracking of one wasm heap, from its base address up to the length it had
/// when last seen.
pub struct Tracker {
    uffd: sys::Uffd,
    base: usize,
    len: usize,
}

impl Tracker {
    /// Starts tracking `heap`, every page protected; `None` when the kernel cannot.
    pub fn watch(heap: &[u8]) -> Option<Self> {
        let mut tracker = Self {
            uffd: sys::Uffd::new()?,
            base: heap.as_ptr() as usize,
            len: 0,
        };
        tracker.extend(heap.len()).then_some(tracker)
    }

    /// The pages of `heap` written since they were last protected, in order, each once;
    /// pages the heap grew by count as written and are tracked from now on. `None` when it
    /// cannot tell (the heap moved, or the kernel refused): then the tracker is spent, and
    /// the caller compares every page and watches anew.
    pub fn written(&mut self, heap: &[u8]) -> Option<Vec<u64>> {
        if heap.as_ptr() as usize != self.base || heap.len() < self.len {
            return None;
        }
        let mut pages = Vec::new();
        for range in sys::scan_written(self.base..self.base + self.len)? {
            let first = ((range.start - self.base) as u64) / PAGE;
            let end = ((range.end - self.base) as u64).div_ceil(PAGE);
            for page in first..end {
                if pages.last() != Some(&page) {
                    pages.push(page);
                }
            }
        }
        if heap.len() > self.len {
            let from = (self.len as u64).div_ceil(PAGE);
            if !self.extend(heap.len()) {
                return None;
            }
            let from = from.max(pages.last().map_or(0, |last| last + 1));
            pages.extend(from..(heap.len() as u64).div_ceil(PAGE));
        }
        Some(pages)
    }

    /// Protects `pages` again, so that only later writes to them count.
    pub fn protect(&mut self, pages: &[u64]) -> bool {
        runs(pages).all(|run| {
            let start = self.base + (run.start * PAGE) as usize;
            let end = (self.base + (run.end * PAGE) as usize).min(self.base + self.len);
            start >= end || self.uffd.protect(start..end)
        })
    }

    /// Registers and protects the heap from its tracked length up to `len`.
    fn extend(&mut self, len: usize) -> bool {
        let range = self.base + self.len..self.base + len;
        let done =
            range.is_empty() || (self.uffd.register(range.clone()) && self.uffd.protect(range));
        if done {
            self.len = len;
        }
        done
    }
}

/// The tracker checked against the truth, for the tests (feature `fault-points`): once
/// `enable`d, every message's written pages are compared with a full comparison of the
/// heap and its saved copy, and every undo with the saved copy whole; a page that changed
/// unreported aborts the process with what was missed.
#[cfg(feature = "fault-points")]
pub mod check {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    use super::PAGE;

    static ON: AtomicBool = AtomicBool::new(false);
    static CHECKED: AtomicU64 = AtomicU64::new(0);

    pub fn enable() {
        ON.store(true, Ordering::SeqCst);
    }

    /// How many written-page sets and undos were checked.
    pub fn checked() -> u64 {
        CHECKED.load(Ordering::SeqCst)
    }

    /// The first page (over the common length) where `heap` and `saved` differ that
    /// `written` does not name.
    pub fn missed(heap: &[u8], saved: &[u8], written: &[u64]) -> Option<u64> {
        let page = PAGE as usize;
        heap.chunks(page)
            .zip(saved.chunks(page))
            .enumerate()
            .find(|(index, (now, was))| now != was && !written.contains(&(*index as u64)))
            .map(|(index, _)| index as u64)
    }

    /// After a message: the tracker's `written` pages against a full comparison.
    pub fn written(heap: &[u8], saved: &[u8], written: &[u64]) {
        if ON.load(Ordering::SeqCst) {
            CHECKED.fetch_add(1, Ordering::SeqCst);
            if let Some(page) = missed(heap, saved, written) {
                panic!("the dirty-page tracker missed heap page {page}: it changed, unreported");
            }
        }
    }

    /// After an undo: the heap must be its saved copy again.
    pub fn restored(heap: &[u8], saved: &[u8]) {
        if ON.load(Ordering::SeqCst) {
            CHECKED.fetch_add(1, Ordering::SeqCst);
            if let Some(page) = missed(heap, saved, &[]) {
                panic!("an undo left heap page {page} changed: the tracker did not report it");
            }
        }
    }
}

/// Consecutive pages as ranges.
fn runs(pages: &[u64]) -> impl Iterator<Item = Range<u64>> + '_ {
    let mut rest = pages;
    std::iter::from_fn(move || {
        let (&first, _) = rest.split_first()?;
        let len = rest
            .iter()
            .enumerate()
            .take_while(|&(i, &p)| p == first + i as u64)
            .count();
        rest = &rest[len..];
        Some(first..first + len as u64)
    })
}

#[cfg(target_os = "linux")]
mod sys {
    //! The kernel's interfaces, as `linux/userfaultfd.h` and `linux/fs.h` define them.

    use std::{
        fs::File,
        ops::Range,
        os::fd::{AsRawFd, FromRawFd, OwnedFd},
        sync::OnceLock,
    };

    const UFFDIO: u64 = 0xAA;
    const UFFD_API: u64 = 0xAA;
    /// Handle only faults from user mode: what an unprivileged process may ask for.
    const UFFD_USER_MODE_ONLY: libc::c_int = 1;
    const UFFD_FEATURE_WP_UNPOPULATED: u64 = 1 << 13;
    const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;
    const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
    const UFFDIO_WRITEPROTECT_MODE_WP: u64 = 1 << 0;
    const PM_SCAN_CHECK_WPASYNC: u64 = 1 << 1;
    const PAGE_IS_WRITTEN: u64 = 1 << 1;

    #[repr(C)]
    struct UffdioApi {
        api: u64,
        features: u64,
        ioctls: u64,
    }

    #[repr(C)]
    struct UffdioRange {
        start: u64,
        len: u64,
    }

    #[repr(C)]
    struct UffdioRegister {
        range: UffdioRange,
        mode: u64,
        ioctls: u64,
    }

    #[repr(C)]
    struct UffdioWriteprotect {
        range: UffdioRange,
        mode: u64,
    }

    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct PageRegion {
        start: u64,
        end: u64,
        categories: u64,
    }

    #[repr(C)]
    struct PmScanArg {
        size: u64,
        flags: u64,
        start: u64,
        end: u64,
        walk_end: u64,
        vec: u64,
        vec_len: u64,
        max_pages: u64,
        category_inverted: u64,
        category_mask: u64,
        category_anyof_mask: u64,
        return_mask: u64,
    }

    /// `_IOWR(kind, number, T)`.
    const fn iowr<T>(kind: u64, number: u64) -> libc::c_ulong {
        ((3 << 30) | ((size_of::<T>() as u64) << 16) | (kind << 8) | number) as libc::c_ulong
    }

    const UFFDIO_API: libc::c_ulong = iowr::<UffdioApi>(UFFDIO, 0x3F);
    const UFFDIO_REGISTER: libc::c_ulong = iowr::<UffdioRegister>(UFFDIO, 0x00);
    const UFFDIO_WRITEPROTECT: libc::c_ulong = iowr::<UffdioWriteprotect>(UFFDIO, 0x06);
    const PAGEMAP_SCAN: libc::c_ulong = iowr::<PmScanArg>(b'f' as u64, 16);

    /// A userfaultfd whose write protection resolves itself: no thread ever waits on it.
    pub struct Uffd(OwnedFd);

    impl Uffd {
        pub fn new() -> Option<Self> {
            // SAFETY: the syscall takes flags only and returns a new descriptor or -1.
            let fd = unsafe {
                libc::syscall(
                    libc::SYS_userfaultfd,
                    libc::O_CLOEXEC | libc::O_NONBLOCK | UFFD_USER_MODE_ONLY,
                )
            };
            if fd < 0 || pagemap().is_none() {
                return None;
            }
            // SAFETY: `fd` was just returned to us and is owned by nothing else.
            let uffd = Self(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) });
            let wanted = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
            let mut api = UffdioApi {
                api: UFFD_API,
                features: wanted,
                ioctls: 0,
            };
            uffd.ioctl(UFFDIO_API, &mut api)
                .then_some(uffd)
                .filter(|_| api.features & wanted == wanted)
        }

        pub fn register(&self, range: Range<usize>) -> bool {
            let mut register = UffdioRegister {
                range: uffd_range(range),
                mode: UFFDIO_REGISTER_MODE_WP,
                ioctls: 0,
            };
            self.ioctl(UFFDIO_REGISTER, &mut register)
        }

        pub fn protect(&self, range: Range<usize>) -> bool {
            let mut protect = UffdioWriteprotect {
                range: uffd_range(range),
                mode: UFFDIO_WRITEPROTECT_MODE_WP,
            };
            self.ioctl(UFFDIO_WRITEPROTECT, &mut protect)
        }

        fn ioctl<T>(&self, request: libc::c_ulong, arg: &mut T) -> bool {
            // SAFETY: `arg` is the `repr(C)` struct `request` is defined with, and lives
            // across the call; the kernel only reads and writes that struct.
            unsafe { libc::ioctl(self.0.as_raw_fd(), request, arg as *mut T) == 0 }
        }
    }

    fn uffd_range(range: Range<usize>) -> UffdioRange {
        UffdioRange {
            start: range.start as u64,
            len: (range.end - range.start) as u64,
        }
    }

    /// This process's page map, opened once.
    fn pagemap() -> Option<&'static File> {
        static PAGEMAP: OnceLock<Option<File>> = OnceLock::new();
        PAGEMAP
            .get_or_init(|| File::open("/proc/self/pagemap").ok())
            .as_ref()
    }

    /// The address ranges in `range` written since they were last protected.
    pub fn scan_written(range: Range<usize>) -> Option<Vec<Range<usize>>> {
        let pagemap = pagemap()?;
        let mut found = Vec::new();
        let mut regions = [PageRegion::default(); 256];
        let mut start = range.start as u64;
        while start < range.end as u64 {
            let mut arg = PmScanArg {
                size: size_of::<PmScanArg>() as u64,
                flags: PM_SCAN_CHECK_WPASYNC,
                start,
                end: range.end as u64,
                walk_end: 0,
                vec: regions.as_mut_ptr() as u64,
                vec_len: regions.len() as u64,
                max_pages: 0,
                category_inverted: 0,
                category_mask: PAGE_IS_WRITTEN,
                category_anyof_mask: 0,
                return_mask: PAGE_IS_WRITTEN,
            };
            // SAFETY: `arg` is the kernel's `pm_scan_arg` and `regions` the buffer it names,
            // both alive across the call; the kernel writes at most `vec_len` regions.
            let count =
                unsafe { libc::ioctl(pagemap.as_raw_fd(), PAGEMAP_SCAN, &mut arg as *mut _) };
            if count < 0 || arg.walk_end <= start {
                return None;
            }
            found.extend(
                regions[..count as usize]
                    .iter()
                    .map(|r| r.start as usize..r.end as usize),
            );
            start = arg.walk_end;
        }
        Some(found)
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    //! No kernel tracking here: every heap is compared page by page.

    use std::ops::Range;

    pub struct Uffd;

    impl Uffd {
        pub fn new() -> Option<Self> {
            None
        }

        pub fn register(&self, _: Range<usize>) -> bool {
            false
        }

        pub fn protect(&self, _: Range<usize>) -> bool {
            false
        }
    }

    pub fn scan_written(_: Range<usize>) -> Option<Vec<Range<usize>>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A heap of `pages` wasm pages, aligned as wasmtime aligns one (never freed).
    fn heap(pages: u64) -> &'static mut [u8] {
        let layout = std::alloc::Layout::from_size_align((pages * PAGE) as usize, PAGE as usize);
        let layout = layout.expect("a valid layout");
        // SAFETY: the layout is not empty; the bytes are initialised before the slice is made.
        unsafe {
            let base = std::alloc::alloc(layout);
            assert!(!base.is_null());
            base.write_bytes(1, layout.size());
            std::slice::from_raw_parts_mut(base, layout.size())
        }
    }

    /// A tracker of `heap`, which Linux 6.7 and later must give; older kernels and other
    /// systems may not, and then the replica compares pages (the engine's tests cover that).
    fn watch(heap: &[u8]) -> Option<Tracker> {
        let tracker = Tracker::watch(heap);
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut version = release
            .split(['.', '-'])
            .map_while(|n| n.parse::<u32>().ok());
        let new_enough = (version.next(), version.next()) >= (Some(6), Some(7));
        if new_enough {
            assert!(
                tracker.is_some(),
                "Linux {release} should track heap writes"
            );
        } else if tracker.is_none() {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED a dirty-page tracker test: Linux {} cannot track heap writes",
                release.trim()
            );
        }
        tracker
    }

    #[test]
    fn finds_exactly_the_pages_written_and_forgets_them_once_protected() {
        let heap = heap(64);
        let Some(mut tracker) = watch(heap) else {
            return;
        };
        assert_eq!(tracker.written(heap), Some(vec![]));
        heap[3 * PAGE as usize] = 9;
        heap[3 * PAGE as usize + 70_000] = 9;
        heap[(10 * PAGE) as usize - 1] = 9;
        heap[(63 * PAGE) as usize] = 1; // the same value: still a write
        assert_eq!(tracker.written(heap), Some(vec![3, 4, 9, 63]));
        assert_eq!(tracker.written(heap), Some(vec![3, 4, 9, 63]));
        assert!(tracker.protect(&[3, 4, 9, 63]));
        assert_eq!(tracker.written(heap), Some(vec![]));
        heap[5 * PAGE as usize] = 2;
        assert_eq!(tracker.written(heap), Some(vec![5]));
    }

    #[test]
    fn pages_the_heap_grew_by_count_as_written_and_are_tracked_from_then_on() {
        let heap = heap(48);
        let Some(mut tracker) = watch(&heap[..(32 * PAGE) as usize]) else {
            return;
        };
        heap[PAGE as usize] = 5;
        assert_eq!(tracker.written(heap), Some((1..2).chain(32..48).collect()));
        assert!(tracker.protect(&(1..2).chain(32..48).collect::<Vec<_>>()));
        heap[(40 * PAGE) as usize] = 5;
        assert_eq!(tracker.written(heap), Some(vec![40]));
        assert_eq!(
            tracker.written(&heap[..(32 * PAGE) as usize]),
            None,
            "a heap never shrinks"
        );
    }

    #[test]
    fn writes_to_pages_never_touched_before_are_found() {
        // A large zeroed allocation is a fresh mapping whose pages the kernel has not
        // populated (calloc need not touch them), as a heap's are after it grows.
        let layout = std::alloc::Layout::from_size_align((32 * PAGE) as usize, PAGE as usize);
        let layout = layout.expect("a valid layout");
        // SAFETY: the layout is not empty, and the bytes are zeroed.
        let heap = unsafe {
            let base = std::alloc::alloc_zeroed(layout);
            assert!(!base.is_null());
            std::slice::from_raw_parts_mut(base, layout.size())
        };
        let Some(mut tracker) = watch(heap) else {
            return;
        };
        assert_eq!(heap[(3 * PAGE) as usize], 0, "reading a page is no write");
        heap[(7 * PAGE) as usize + 3] = 1;
        heap[(20 * PAGE) as usize] = 1;
        assert_eq!(tracker.written(heap), Some(vec![7, 20]));
    }

    #[test]
    fn a_heap_is_watched_by_one_tracker_at_a_time() {
        let heap = heap(4);
        let Some(first) = watch(heap) else {
            return;
        };
        assert!(
            Tracker::watch(heap).is_none(),
            "the kernel refuses a second"
        );
        drop(first);
        assert!(Tracker::watch(heap).is_some(), "once the first is gone");
    }

    #[cfg(feature = "fault-points")]
    #[test]
    fn the_check_names_a_changed_page_the_tracker_did_not_report() {
        let saved = vec![0u8; 3 * PAGE as usize];
        let mut heap = saved.clone();
        heap[PAGE as usize + 7] = 1;
        heap[2 * PAGE as usize] = 1;
        assert_eq!(super::check::missed(&heap, &saved, &[1, 2]), None);
        assert_eq!(super::check::missed(&heap, &saved, &[2]), Some(1));
        assert_eq!(super::check::missed(&heap, &saved, &[]), Some(1));
    }

    #[test]
    fn runs_of_consecutive_pages() {
        let runs: Vec<_> = runs(&[1, 2, 3, 7, 9, 10]).collect();
        assert_eq!(runs, vec![1..4, 7..8, 9..11]);
    }
}

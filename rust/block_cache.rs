//! Large blocks kept for the next call (docs/spec.md §0.5).
//!
//! A call's buffers (the k-d tree's copy of the points, its index, the distances, …) are a few
//! MiB each, freed when the call returns. glibc hands freed blocks this large back to the system,
//! so the next call's buffers fault their pages in afresh: about 1 600 minor page faults per
//! 4-D entropy at N = 10⁵, some 3 ms of a 23 ms call on the 2-core test machine. [`BlockCache`],
//! the extension's global allocator, keeps up to [`SLOTS`] freed blocks of at least
//! [`MIN_BLOCK`] bytes, [`MAX_HELD`] bytes in all, and hands one back for a request of exactly its
//! size and alignment; the least recently kept are freed to make room. Everything else goes to
//! the system allocator unchanged.
//!
//! The cache is guarded by a flag taken without waiting: when another thread holds it the block
//! goes to or comes from the system allocator instead, so no allocation ever blocks (nor
//! deadlocks in a child forked while the flag was held).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, Ordering};

/// Blocks smaller than this are not kept.
pub const MIN_BLOCK: usize = 256 << 10;
/// The most bytes kept at once.
pub const MAX_HELD: usize = 64 << 20;
/// The most blocks kept at once.
pub const SLOTS: usize = 16;

/// A kept block: where, its layout, and when it was kept (larger is later).
#[derive(Clone, Copy)]
struct Kept {
    ptr: *mut u8,
    size: usize,
    align: usize,
    stamp: u64,
}

impl Kept {
    /// Gives the block back to the system allocator.
    ///
    /// # Safety
    /// The block is kept (it came from [`System`] with this size and alignment) and nothing else
    /// refers to it.
    unsafe fn free(self) {
        // SAFETY: the caller's guarantee; the layout is the one the block was allocated with.
        unsafe { System.dealloc(self.ptr, Layout::from_size_align_unchecked(self.size, self.align)) };
    }
}

const EMPTY: Kept = Kept {
    ptr: null_mut(),
    size: 0,
    align: 0,
    stamp: 0,
};

struct Shelf {
    kept: [Kept; SLOTS],
    held: usize,
    clock: u64,
}

/// The system allocator with a small cache of large freed blocks (see the module notes).
pub struct BlockCache {
    busy: AtomicBool,
    shelf: UnsafeCell<Shelf>,
}

// SAFETY: `shelf` is only touched by the thread that set `busy` (see `with_shelf`).
unsafe impl Sync for BlockCache {}

impl Default for BlockCache {
    fn default() -> Self {
        Self::new()
    }
}

impl BlockCache {
    pub const fn new() -> Self {
        BlockCache {
            busy: AtomicBool::new(false),
            shelf: UnsafeCell::new(Shelf {
                kept: [EMPTY; SLOTS],
                held: 0,
                clock: 0,
            }),
        }
    }

    /// `f` on the shelf, or None when another thread holds it.
    fn with_shelf<R>(&self, f: impl FnOnce(&mut Shelf) -> R) -> Option<R> {
        if self
            .busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        // SAFETY: the flag above gives this thread sole access until it is cleared below.
        let r = f(unsafe { &mut *self.shelf.get() });
        self.busy.store(false, Ordering::Release);
        Some(r)
    }

    fn kept_size(layout: &Layout) -> bool {
        layout.size() >= MIN_BLOCK
    }

    /// A kept block of exactly this layout, taken off the shelf; null when there is none.
    fn take(&self, layout: &Layout) -> *mut u8 {
        self.with_shelf(|shelf| {
            let found = shelf
                .kept
                .iter()
                .enumerate()
                .filter(|(_, k)| !k.ptr.is_null() && k.size == layout.size() && k.align == layout.align())
                .max_by_key(|(_, k)| k.stamp)
                .map(|(i, _)| i);
            match found {
                Some(i) => {
                    let k = std::mem::replace(&mut shelf.kept[i], EMPTY);
                    shelf.held -= k.size;
                    k.ptr
                }
                None => null_mut(),
            }
        })
        .unwrap_or(null_mut())
    }

    /// Keeps `ptr` if it fits under [`MAX_HELD`], freeing the least recently kept blocks to make
    /// room; false when it is not kept (the caller frees it).
    ///
    /// # Safety
    /// `ptr` was allocated by [`System`] with `layout`, and is no longer used by its owner.
    unsafe fn keep(&self, ptr: *mut u8, layout: &Layout) -> bool {
        let size = layout.size();
        if size > MAX_HELD {
            return false;
        }
        self.with_shelf(|shelf| {
            loop {
                let free = shelf.kept.iter().position(|k| k.ptr.is_null());
                if let (Some(i), true) = (free, shelf.held + size <= MAX_HELD) {
                    shelf.clock += 1;
                    shelf.kept[i] = Kept {
                        ptr,
                        size,
                        align: layout.align(),
                        stamp: shelf.clock,
                    };
                    shelf.held += size;
                    return true;
                }
                let oldest = shelf
                    .kept
                    .iter()
                    .enumerate()
                    .filter(|(_, k)| !k.ptr.is_null())
                    .min_by_key(|(_, k)| k.stamp)
                    .map(|(i, _)| i);
                let Some(i) = oldest else { return false };
                let k = std::mem::replace(&mut shelf.kept[i], EMPTY);
                shelf.held -= k.size;
                // SAFETY: taken off the shelf, so nobody else refers to it.
                unsafe { k.free() };
            }
        })
        .unwrap_or(false)
    }

    /// Bytes kept now (0 while another thread holds the shelf).
    pub fn held(&self) -> usize {
        self.with_shelf(|shelf| shelf.held).unwrap_or(0)
    }

    /// Frees every kept block (none while another thread holds the shelf).
    pub fn release(&self) {
        self.with_shelf(|shelf| {
            for k in shelf.kept.iter_mut().filter(|k| !k.ptr.is_null()) {
                // SAFETY: taken off the shelf, so nobody else refers to it.
                unsafe { std::mem::replace(k, EMPTY).free() };
            }
            shelf.held = 0;
        });
    }
}

// SAFETY: every block comes from `System` with the caller's layout (a kept block is handed out
// only for exactly the layout it was allocated with) and goes back to it with that layout.
unsafe impl GlobalAlloc for BlockCache {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if Self::kept_size(&layout) {
            let p = self.take(&layout);
            if !p.is_null() {
                return p;
            }
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if Self::kept_size(&layout) {
            let p = self.take(&layout);
            if !p.is_null() {
                // SAFETY: the block holds `layout.size()` bytes.
                unsafe { p.write_bytes(0, layout.size()) };
                return p;
            }
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller gives up `ptr`, which came from `System` with `layout`.
        if Self::kept_size(&layout) && unsafe { self.keep(ptr, &layout) } {
            return;
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees; `ptr` came from `System` with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize) -> Layout {
        Layout::from_size_align(size, 8).unwrap()
    }

    #[test]
    fn a_freed_large_block_serves_the_next_request_of_its_layout() {
        let cache = BlockCache::new();
        unsafe {
            let a = cache.alloc(layout(MIN_BLOCK));
            cache.dealloc(a, layout(MIN_BLOCK));
            assert_eq!(cache.held(), MIN_BLOCK);
            // Another size or alignment is not served by it.
            let other = cache.alloc(layout(MIN_BLOCK + 8));
            assert_ne!(other, a);
            let aligned = cache.alloc(Layout::from_size_align(MIN_BLOCK, 64).unwrap());
            assert_ne!(aligned, a);
            let b = cache.alloc(layout(MIN_BLOCK));
            assert_eq!(b, a);
            assert_eq!(cache.held(), 0);
            cache.dealloc(b, layout(MIN_BLOCK));
            cache.dealloc(other, layout(MIN_BLOCK + 8));
            cache.dealloc(aligned, Layout::from_size_align(MIN_BLOCK, 64).unwrap());
            cache.release();
            assert_eq!(cache.held(), 0);
        }
    }

    #[test]
    fn small_blocks_are_not_kept() {
        let cache = BlockCache::new();
        unsafe {
            let a = cache.alloc(layout(MIN_BLOCK - 1));
            cache.dealloc(a, layout(MIN_BLOCK - 1));
        }
        assert_eq!(cache.held(), 0);
    }

    #[test]
    fn a_reused_block_is_zeroed_when_zeros_are_asked_for() {
        let cache = BlockCache::new();
        unsafe {
            let a = cache.alloc(layout(MIN_BLOCK));
            a.write_bytes(0xAB, MIN_BLOCK);
            cache.dealloc(a, layout(MIN_BLOCK));
            let b = cache.alloc_zeroed(layout(MIN_BLOCK));
            assert_eq!(b, a);
            assert!(std::slice::from_raw_parts(b, MIN_BLOCK).iter().all(|&v| v == 0));
            cache.dealloc(b, layout(MIN_BLOCK));
        }
        cache.release();
    }

    #[test]
    fn what_is_kept_stays_within_its_bounds_oldest_freed_first() {
        let cache = BlockCache::new();
        let big = MAX_HELD / 4 + 4096;
        unsafe {
            // Four blocks of a quarter and a bit: the fourth pushes the first out.
            let blocks: Vec<*mut u8> = (0..4).map(|_| cache.alloc(layout(big))).collect();
            for &b in &blocks {
                cache.dealloc(b, layout(big));
                assert!(cache.held() <= MAX_HELD);
            }
            assert_eq!(cache.held(), 3 * big);
            // The three kept are the last three freed, handed out latest first.
            for &b in blocks[1..].iter().rev() {
                assert_eq!(cache.alloc(layout(big)), b);
            }
            assert_eq!(cache.held(), 0);
            for &b in &blocks[1..] {
                cache.dealloc(b, layout(big));
            }
            // More blocks than slots: SLOTS kept, the rest freed.
            cache.release();
            let many: Vec<*mut u8> = (0..SLOTS + 3).map(|_| cache.alloc(layout(MIN_BLOCK))).collect();
            for &b in &many {
                cache.dealloc(b, layout(MIN_BLOCK));
            }
            assert_eq!(cache.held(), SLOTS * MIN_BLOCK);
            // Larger than the whole cache: never kept.
            let huge = cache.alloc(layout(MAX_HELD + 1));
            cache.release();
            cache.dealloc(huge, layout(MAX_HELD + 1));
            assert_eq!(cache.held(), 0);
        }
    }

    #[test]
    fn threads_never_share_a_block() {
        // Four threads allocate, fill with their own mark, check and free blocks of two sizes: a
        // block handed to two owners at once would show the other's mark.
        let cache = BlockCache::new();
        std::thread::scope(|scope| {
            for mark in 1..=4u8 {
                let cache = &cache;
                scope.spawn(move || {
                    for round in 0..300 {
                        let l = layout(MIN_BLOCK + (round % 2) * 4096);
                        unsafe {
                            let p = cache.alloc(l);
                            assert!(!p.is_null());
                            p.write_bytes(mark, l.size());
                            std::thread::yield_now();
                            let block = std::slice::from_raw_parts(p, l.size());
                            assert!(block.iter().all(|&v| v == mark), "a block with two owners");
                            cache.dealloc(p, l);
                        }
                    }
                });
            }
        });
        assert!(cache.held() <= SLOTS * (MIN_BLOCK + 4096));
        cache.release();
    }

    #[test]
    fn a_busy_cache_is_passed_by_not_waited_for() {
        let cache = BlockCache::new();
        unsafe {
            let a = cache.alloc(layout(MIN_BLOCK));
            cache.busy.store(true, Ordering::Relaxed);
            // Freed while busy: to the system, not kept.
            cache.dealloc(a, layout(MIN_BLOCK));
            let b = cache.alloc(layout(MIN_BLOCK));
            assert!(!b.is_null());
            cache.busy.store(false, Ordering::Relaxed);
            assert_eq!(cache.held(), 0);
            cache.dealloc(b, layout(MIN_BLOCK));
            assert_eq!(cache.held(), MIN_BLOCK);
        }
        cache.release();
    }
}

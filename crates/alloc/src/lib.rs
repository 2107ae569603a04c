//! The global allocator the `alc` binaries install.
//!
//! It is mimalloc, with one difference in how alignment requests reach it. mlua asks
//! for every Lua allocation with 16-byte alignment (`SYS_MIN_ALIGN`), whatever its
//! size, 8-byte arrays included. mimalloc's aligned entry point over-allocates (size
//! plus alignment minus one) a request smaller than its alignment, and one whose size
//! class is not a power of two (a 40-byte upvalue's 48-byte class) whenever the class's
//! current page has no free block at hand. Every mimalloc size class whose block size is a multiple of
//! 16 hands out 16-byte aligned blocks (the first block of a page starts 16-byte aligned;
//! on x86-64 the classes step by 16 bytes up to 64 and are multiples of 16 above). So a
//! request whose alignment is at most 16 is rounded up to a multiple of its alignment and
//! served by the plain entry point: the block of the class the request would take anyway,
//! never more. Larger alignments go to mimalloc's aligned entry points unchanged. The
//! benchmark effect is recorded in `docs/benchmarks.md`.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// Largest alignment the plain mimalloc entry points guarantee for a size that is a
/// multiple of it.
const PLAIN_ALIGN: usize = 16;

/// mimalloc, serving alignments up to 16 from size classes that are multiples of
/// the alignment (see the crate documentation).
pub struct Allocator;

/// `size` rounded up to a multiple of `align` (a power of two).
#[inline]
fn padded(size: usize, align: usize) -> usize {
    (size + align - 1) & !(align - 1)
}

// SAFETY: every pointer comes from mimalloc and goes back to it; sizes passed to the
// plain entry points are multiples of the requested alignment (at most 16), for which
// mimalloc's blocks are aligned (crate documentation; checked by the tests below and
// by a debug assertion). Larger alignments use mimalloc's aligned entry points.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= PLAIN_ALIGN {
            let p = mi::mi_malloc(padded(layout.size(), layout.align())) as *mut u8;
            debug_assert!((p as usize).is_multiple_of(layout.align()));
            p
        } else {
            mi::mi_malloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= PLAIN_ALIGN {
            mi::mi_zalloc(padded(layout.size(), layout.align())) as *mut u8
        } else {
            mi::mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        mi::mi_free(ptr as *mut c_void);
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= PLAIN_ALIGN {
            let p = mi::mi_realloc(ptr as *mut c_void, padded(new_size, layout.align()));
            debug_assert!((p as usize).is_multiple_of(layout.align()));
            p as *mut u8
        } else {
            mi::mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) as *mut u8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every size up to 64 KiB (and a few large ones), at every alignment up to 16,
    /// allocated several times over so blocks come from the middle of pages as well
    /// as their start: each pointer is aligned, and reallocation keeps it so.
    #[test]
    fn small_alignments_are_honoured() {
        let sizes = (1..=1024)
            .chain((1025..=65536).step_by(97))
            .chain([1 << 20, 3 << 20]);
        for size in sizes {
            for align in [1, 2, 4, 8, 16] {
                let layout = Layout::from_size_align(size, align).unwrap();
                let ptrs: Vec<*mut u8> =
                    (0..5).map(|_| unsafe { Allocator.alloc(layout) }).collect();
                for p in ptrs {
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size} align {align}");
                    unsafe {
                        p.write_bytes(0xa5, size);
                        let q = Allocator.realloc(p, layout, size + 7);
                        assert_eq!(q as usize % align, 0, "realloc {size} align {align}");
                        assert_eq!(*q.add(size - 1), 0xa5, "realloc keeps the contents");
                        let grown = Layout::from_size_align(size + 7, align).unwrap();
                        Allocator.dealloc(q, grown);
                    }
                }
            }
        }
    }

    #[test]
    fn zeroed_and_large_alignments() {
        for (size, align) in [(24, 16), (100, 16), (24, 64), (5000, 4096), (3, 32)] {
            let layout = Layout::from_size_align(size, align).unwrap();
            unsafe {
                let p = Allocator.alloc_zeroed(layout);
                assert_eq!(p as usize % align, 0);
                assert!(std::slice::from_raw_parts(p, size).iter().all(|&b| b == 0));
                Allocator.dealloc(p, layout);
            }
        }
    }
}

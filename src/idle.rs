//! What a long-lived sexton process (init, the daemon monitor, the
//! supervisor, and the guards above them) does once it settles: give back
//! the pages start-up touched, code and freed heap alike.
//!
//! Argument parsing, spawning and setting up touch most of the static
//! executable (the kernel maps file pages in 64 KiB runs around each
//! fault); the waiting loop needs a few pages of it, which fault back in
//! on their own. Without this an idle monitor keeps ~1 MiB of code
//! resident, counted in its RSS and PSS for the whole life of the
//! program it watches.

use nix::sys::mman::{MmapAdvise, madvise};

/// Drops this process's resident pages of its read-only file mappings,
/// and the free memory of its heap.
///
/// Every range gets `MADV_PAGEOUT` (Linux 5.4+), which keeps contents:
/// it reclaims the pages nothing else maps (a private copy only where
/// there is swap), so what the loop needs later is read back alone
/// rather than with the 64 KiB around it. A range with no private copy
/// (every page the file's page-cache page, and read-only so none can
/// become one) then gets `MADV_DONTNEED`, which empties the mapping in
/// this process alone, whoever else maps the same pages (the twin guard
/// or worker of a fork); the next access maps the page-cache page back,
/// the same bytes. Best effort: an old kernel says EINVAL and nothing
/// changes.
///
/// The cost: PAGEOUT drops from the page cache the pages of the binary
/// that no other process maps, so the next sexton started on the machine
/// reads those back from disk, as it would after any memory pressure.
///
/// Never inlined: `layout/profile` finds the steady phase of a long-lived
/// process by this function's name.
#[inline(never)]
pub fn shed_startup_pages() {
    // Freed start-up allocations (argument parsing, configuration) too.
    crate::sys::malloc_trim();
    for r in crate::procfs::own_code_ranges() {
        let Some(ptr) = std::ptr::NonNull::new(r.start as *mut std::ffi::c_void) else {
            continue;
        };
        let len = r.end - r.start;
        // SAFETY: the range is a whole read-only file mapping of this
        // process, from /proc/self/smaps. PAGEOUT keeps contents by
        // definition. DONTNEED is given only where no page is a private
        // copy, so the refault reads the same bytes from the page cache
        // (the executable cannot change under us: writing a running
        // executable fails with ETXTBSY). No memory anything refers to is
        // invalidated.
        unsafe {
            let _ = madvise(ptr, len, MmapAdvise::MADV_PAGEOUT);
            if r.pristine {
                let _ = madvise(ptr, len, MmapAdvise::MADV_DONTNEED);
            }
        }
    }
}

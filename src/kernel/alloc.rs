//! The global allocator: tagged, non-paged, non-executable pool.
//!
//! `ExAllocatePool2` (Windows 10 2004+) is found at run time with `MmGetSystemRoutineAddress`; older systems
//! fall back to `ExAllocatePoolWithTag(NonPagedPoolNx)`. Every allocation carries the tag [`POOL_TAG`], so
//! `!poolused` in WinDbg and Driver Verifier's pool tracking attribute it to rawlink.
//!
//! Alignment: pool blocks are 16-byte aligned on x64. Larger alignments are served by over-allocating and
//! keeping the start of the block in the word just below the aligned pointer (wdk-alloc ignores alignment).

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;
use core::sync::atomic::{AtomicUsize, Ordering};
use ndis_sys::{
    ExAllocatePoolWithTag, ExFreePoolWithTag, MmGetSystemRoutineAddress, NonPagedPoolNx, PEX_ALLOCATE_POOL2,
    POOL_FLAG_NON_PAGED,
};

/// `'RwLk'`: the pool tag of every rawlink allocation (bytes `R w L k` in memory, as WinDbg prints it).
pub const POOL_TAG: u32 = u32::from_le_bytes(*b"RwLk");

/// What pool gives without extra work on x64.
const POOL_ALIGN: usize = 16;

/// `ExAllocatePool2`'s address, or 0 when the OS lacks it (or before [`init`]).
static EX_ALLOCATE_POOL2: AtomicUsize = AtomicUsize::new(0);

/// Looks up optional pool routines. Call once from DriverEntry (PASSIVE_LEVEL, as MmGetSystemRoutineAddress
/// requires), before the allocator is used from other contexts.
pub fn init() {
    let name = crate::kernel::string::StaticUnicode::new(crate::utf16!("ExAllocatePool2"));
    let Some(name) = name else { return };
    // SAFETY: DriverEntry runs at PASSIVE_LEVEL; the name is a valid UNICODE_STRING the routine only reads.
    let p = unsafe { MmGetSystemRoutineAddress(name.as_ptr()) };
    EX_ALLOCATE_POOL2.store(p as usize, Ordering::Release);
}

/// The driver's global allocator.
#[derive(Debug)]
pub struct PoolAllocator;

fn raw_alloc(size: usize) -> *mut u8 {
    let pool2 = EX_ALLOCATE_POOL2.load(Ordering::Acquire);
    if pool2 != 0 {
        // SAFETY: a non-zero value was returned by MmGetSystemRoutineAddress for "ExAllocatePool2", whose
        // prototype is PEX_ALLOCATE_POOL2; function pointers and usize have the same size on x64.
        let f: PEX_ALLOCATE_POOL2 = unsafe { core::mem::transmute::<usize, PEX_ALLOCATE_POOL2>(pool2) };
        if let Some(f) = f {
            // SAFETY: non-paged pool may be allocated at IRQL <= DISPATCH_LEVEL, which is every context the
            // driver runs in; a null return is handled by the caller.
            return unsafe { f(POOL_FLAG_NON_PAGED, size, POOL_TAG) }.cast();
        }
    }
    // SAFETY: as above; NonPagedPoolNx with a non-zero tag is valid at IRQL <= DISPATCH_LEVEL.
    unsafe { ExAllocatePoolWithTag(NonPagedPoolNx, size, POOL_TAG) }.cast()
}

fn raw_free(p: *mut u8) {
    // SAFETY: `p` came from `raw_alloc` with the same tag and has not been freed (GlobalAlloc contract).
    unsafe { ExFreePoolWithTag(p.cast::<c_void>(), POOL_TAG) }
}

// SAFETY: blocks come from pool, which never hands out overlapping live blocks; alignment is honoured as
// described in the module docs; `dealloc` receives the layout `alloc` was given.
unsafe impl GlobalAlloc for PoolAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= POOL_ALIGN {
            return raw_alloc(layout.size().max(1));
        }
        // Room for the worst-case shift plus the word that records the block start.
        let Some(total) = layout.size().checked_add(layout.align()) else { return core::ptr::null_mut() };
        let base = raw_alloc(total);
        if base.is_null() {
            return base;
        }
        // `base` is 16-aligned and align > 16, so the shift is at least 16 bytes: a word always fits below.
        let shift = layout.align() - (base as usize % layout.align());
        // SAFETY: shift <= align, so base + shift stays inside the `total`-byte block.
        let aligned = unsafe { base.add(shift) };
        // SAFETY: aligned - 8 >= base (shift >= 16) and is 8-aligned; the block is ours and writable.
        unsafe { aligned.cast::<*mut u8>().sub(1).write(base) };
        aligned
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.align() <= POOL_ALIGN {
            raw_free(ptr);
        } else {
            // SAFETY: `alloc` stored the block start in the word below every over-aligned pointer.
            let base = unsafe { ptr.cast::<*mut u8>().sub(1).read() };
            raw_free(base);
        }
    }
}

/// `Box::new` that reports allocation failure instead of bug-checking (the stable `Box` has no `try_new`).
pub fn try_box<T>(value: T) -> crate::error::Result<::alloc::boxed::Box<T>> {
    let layout = Layout::new::<T>();
    if layout.size() == 0 {
        return Ok(::alloc::boxed::Box::new(value));
    }
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { ::alloc::alloc::alloc(layout) }.cast::<T>();
    if p.is_null() {
        return Err(crate::error::Error::INSUFFICIENT_RESOURCES);
    }
    // SAFETY: `p` is a fresh, suitably aligned allocation for one T.
    unsafe { p.write(value) };
    // SAFETY: `p` was allocated by the global allocator with T's layout and now holds a T.
    Ok(unsafe { ::alloc::boxed::Box::from_raw(p) })
}

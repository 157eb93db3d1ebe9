//! Memory of a caller's process that stays shared with the driver while a request is outstanding (a mapped
//! ring): the caller allocates it (VirtualAlloc), the I/O manager locks its pages for a METHOD_*_DIRECT
//! request, and both sides read and write it concurrently. A PROT_NONE guard page follows it, so a driver
//! write past its end faults instead of landing in other memory.

use super::mapping::{Mapping, Protection, PAGE_SIZE};
use std::sync::atomic::{AtomicU32, Ordering};

/// Page-aligned caller memory of `len` bytes (rounded up to pages), zeroed, followed by a guard page.
///
/// # Invariants
///
/// `map` holds `pages + PAGE_SIZE` bytes; the first `pages` are read-write, the last page is PROT_NONE.
#[derive(Debug)]
pub struct UserMemory {
    map: Mapping,
    len: usize,
}

impl UserMemory {
    pub fn new(len: usize) -> std::io::Result<Self> {
        let pages = len.max(1).checked_next_multiple_of(PAGE_SIZE).ok_or_else(|| std::io::Error::other("too large"))?;
        let map = Mapping::new(pages + PAGE_SIZE)?;
        map.protect(pages, PAGE_SIZE, Protection::NoAccess)?;
        // INVARIANT: as documented above.
        Ok(Self { map, len })
    }

    pub fn addr(&self) -> usize {
        self.map.base()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn word(&self, offset: usize) -> Option<&AtomicU32> {
        if offset % 4 != 0 || offset.checked_add(4).is_none_or(|e| e > self.len) {
            return None;
        }
        // SAFETY: inside the read-write pages (checked) and 4-byte aligned (the mapping is page-aligned); the
        // driver accesses these words atomically too, or writes them with plain stores a process cannot
        // prevent either.
        Some(unsafe { AtomicU32::from_ptr((self.map.base() + offset) as *mut u32) })
    }

    /// An acquire load of the u32 at `offset` (0 outside the memory).
    pub fn load_u32(&self, offset: usize) -> u32 {
        self.word(offset).map_or(0, |w| w.load(Ordering::Acquire))
    }

    /// A release store of `v` at `offset` (nothing outside the memory).
    pub fn store_u32(&self, offset: usize, v: u32) {
        if let Some(w) = self.word(offset) {
            w.store(v, Ordering::Release);
        }
    }

    /// Copies `out.len()` bytes from `offset` out; false if they do not lie inside the memory.
    pub fn read_into(&self, offset: usize, out: &mut [u8]) -> bool {
        if offset.checked_add(out.len()).is_none_or(|e| e > self.len) {
            return false;
        }
        // SAFETY: the range lies inside the read-write pages (checked); the bytes are copied, never referenced.
        unsafe { std::ptr::copy_nonoverlapping((self.map.base() + offset) as *const u8, out.as_mut_ptr(), out.len()) };
        true
    }

    /// Writes `bytes` at `offset`, as any thread of the process may at any time; false if they do not fit.
    pub fn write(&self, offset: usize, bytes: &[u8]) -> bool {
        if offset.checked_add(bytes.len()).is_none_or(|e| e > self.len) {
            return false;
        }
        // SAFETY: the range lies inside the read-write pages (checked).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), (self.map.base() + offset) as *mut u8, bytes.len()) };
        true
    }
}

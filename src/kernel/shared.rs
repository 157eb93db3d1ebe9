//! Memory shared with a user-mode process: the system mapping of pages the I/O manager locked for a
//! pending request (a mapped ring). The process can write any byte of it at any time, so no Rust reference
//! to it is ever formed: the driver stores bytes through raw pointers, publishes with release-ordered
//! stores, and reads only single aligned words, each with one atomic load, which its caller validates.

use core::sync::atomic::{AtomicU32, Ordering};

/// A mapped, writable region of `len` bytes at `base`.
///
/// # Invariants
///
/// `base..base + len` is mapped, writable system memory for as long as this value lives (the owner keeps
/// the request whose MDL locks it pending), and `base` is page-aligned.
#[derive(Debug)]
pub struct SharedRegion {
    base: *mut u8,
    len: usize,
}

// SAFETY: the region is plain memory; every access goes through raw pointers or atomics (no references), and
// the owner serialises the driver's own writers (the handle's receive lock).
unsafe impl Send for SharedRegion {}

impl SharedRegion {
    /// Wraps a mapping.
    ///
    /// # Safety
    ///
    /// `base..base + len` stays mapped and writable until the value is dropped, and `base` is page-aligned.
    pub unsafe fn new(base: *mut u8, len: usize) -> Self {
        // INVARIANT: guaranteed by the caller.
        Self { base, len }
    }

    fn word(&self, offset: usize) -> Option<&AtomicU32> {
        if offset % 4 != 0 || offset.checked_add(4).is_none_or(|e| e > self.len) {
            return None;
        }
        // SAFETY: inside the region (checked) and 4-byte aligned (base is page-aligned, offset a multiple of
        // 4); an AtomicU32 may alias memory another thread writes, which is what the process does.
        Some(unsafe { AtomicU32::from_ptr(self.base.add(offset).cast::<u32>()) })
    }

    /// One acquire load of the u32 at `offset` (the process's word: the caller validates it).
    pub fn load_u32(&self, offset: usize) -> Option<u32> {
        self.word(offset).map(|w| w.load(Ordering::Acquire))
    }

    /// Stores `v` at `offset` with release ordering: everything written before is visible first.
    pub fn store_u32(&self, offset: usize, v: u32) {
        if let Some(w) = self.word(offset) {
            w.store(v, Ordering::Release);
        }
    }

    /// Writes `bytes` at `offset`, if they fit; never reads the region.
    pub fn write(&self, offset: usize, bytes: &[u8]) {
        if offset.checked_add(bytes.len()).is_none_or(|e| e > self.len) {
            return;
        }
        // SAFETY: the range lies inside the region (checked above, type invariant).
        unsafe { copy_to(self.base.add(offset), bytes) };
    }
}

/// Copies `src` to `dst` in 16-byte pieces of compile-time size (plain loads and stores, as
/// [`crate::copy::copy`] does for driver memory, without forming a slice over `dst`).
///
/// # Safety
///
/// `dst..dst + src.len()` is writable memory.
#[inline]
unsafe fn copy_to(dst: *mut u8, src: &[u8]) {
    let n = src.len();
    let mut at = 0;
    while let Some(piece) = src.get(at..at + 16).and_then(|s| s.first_chunk::<16>()) {
        // SAFETY: at + 16 <= n, inside the destination (caller's guarantee); unaligned stores are allowed.
        unsafe { dst.add(at).cast::<[u8; 16]>().write_unaligned(*piece) };
        at += 16;
    }
    if at == n {
        return;
    }
    if n >= 16 {
        // The last 1..15 bytes: one 16-byte piece ending at the end (overlapping what is copied).
        if let Some(piece) = src.get(n - 16..).and_then(|s| s.first_chunk::<16>()) {
            // SAFETY: n - 16 + 16 = n, inside the destination.
            unsafe { dst.add(n - 16).cast::<[u8; 16]>().write_unaligned(*piece) };
        }
        return;
    }
    for (i, b) in src.iter().enumerate().skip(at) {
        // SAFETY: i < n, inside the destination.
        unsafe { dst.add(i).write(*b) };
    }
}

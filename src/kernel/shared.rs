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
    #[inline]
    pub fn write(&self, offset: usize, bytes: &[u8]) {
        if offset.checked_add(bytes.len()).is_none_or(|e| e > self.len) {
            return;
        }
        // SAFETY: the range lies inside the region (checked above, type invariant).
        unsafe { copy_to(self.base.add(offset), bytes) };
    }
}

/// [`copy_to`] of more than [`crate::copy::LONG`] bytes: a frame in 128-byte steps of two 64-byte blocks,
/// then at most two blocks, the last ending at the end (overlapping what the others wrote); anything longer
/// than a frame with memcpy.
///
/// # Safety
///
/// `dst..dst + src.len()` is writable memory.
#[inline(never)]
unsafe fn copy_long_to(dst: *mut u8, src: &[u8]) {
    let n = src.len();
    if n > crate::copy::BULK {
        // SAFETY: `dst..dst + n` is writable (caller's guarantee) and cannot overlap `src`, a driver borrow.
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), dst, n) };
        return;
    }
    let block = |at: usize| {
        if let Some(b) = src.get(at..).and_then(<[u8]>::first_chunk::<64>) {
            for (i, piece) in b.chunks_exact(16).enumerate() {
                if let Some(p) = piece.first_chunk::<16>() {
                    // SAFETY: `at + 64 <= n`: the piece lies inside the destination (caller's guarantee).
                    unsafe { put(dst, at + 16 * i, p) };
                }
            }
        }
    };
    let mut at = 0;
    while at + 128 <= n {
        block(at);
        block(at + 64);
        at += 128;
    }
    if at < n {
        if n - at > 64 {
            block(at);
        }
        if let Some(last) = n.checked_sub(64) {
            block(last);
        }
    }
}

/// Stores 16 bytes at `dst + at`, unaligned.
///
/// # Safety
///
/// `dst + at .. dst + at + 16` is writable memory.
#[inline(always)]
unsafe fn put(dst: *mut u8, at: usize, piece: &[u8; 16]) {
    // SAFETY: guaranteed by the caller; unaligned stores are allowed.
    unsafe { dst.add(at).cast::<[u8; 16]>().write_unaligned(*piece) };
}

/// Copies `src` to `dst` in 16-byte pieces of compile-time size (plain loads and stores, as
/// [`crate::copy::copy`] does for driver memory, without forming a slice over `dst`); long frames in 128-byte
/// steps and anything longer than a frame with memcpy, as there.
///
/// # Safety
///
/// `dst..dst + src.len()` is writable memory.
#[inline]
unsafe fn copy_to(dst: *mut u8, src: &[u8]) {
    let n = src.len();
    if n > crate::copy::LONG {
        // SAFETY: `dst..dst + n` is writable (caller's guarantee).
        unsafe { copy_long_to(dst, src) };
        return;
    }
    // 16..=64 bytes (short frames): two or four 16-byte pieces, the last ones ending at the end (overlapping
    // what the first ones wrote), no loop.
    if let (Some(first), Some(last), true) = (src.first_chunk::<16>(), src.last_chunk::<16>(), n <= 64) {
        // SAFETY: 16 <= n: both pieces lie inside the destination.
        unsafe {
            put(dst, 0, first);
            put(dst, n - 16, last);
        }
        let second = src.get(16..).and_then(<[u8]>::first_chunk::<16>);
        let third = n.checked_sub(32).and_then(|at| src.get(at..)).and_then(<[u8]>::first_chunk::<16>);
        if let (Some(second), Some(third), true) = (second, third, n > 32) {
            // SAFETY: 32 < n: 16 + 16 and n - 32 + 16 lie inside the destination.
            unsafe {
                put(dst, 16, second);
                put(dst, n - 32, third);
            }
        }
        return;
    }
    let mut at = 0;
    let mut chunks = src.chunks_exact(32);
    for c in &mut chunks {
        if let Some((p0, rest)) = c.split_first_chunk::<16>() {
            // SAFETY: at + 16 <= at + 32 <= n, inside the destination.
            unsafe { put(dst, at, p0) };
            if let Some(p1) = rest.first_chunk::<16>() {
                // SAFETY: as above, at + 32 <= n.
                unsafe { put(dst, at + 16, p1) };
            }
        }
        at += 32;
    }
    if at == n {
        return;
    }
    if let Some(last) = src.last_chunk::<16>() {
        // The last 1..31 bytes: one or two 16-byte pieces, the last ending at the end (overlapping what is
        // copied).
        if let Some(p) = chunks.remainder().first_chunk::<16>() {
            // SAFETY: the remainder holds these 16 bytes: at + 16 <= n.
            unsafe { put(dst, at, p) };
        }
        // SAFETY: n - 16 + 16 = n, inside the destination.
        unsafe { put(dst, n - 16, last) };
        return;
    }
    for (i, b) in src.iter().enumerate().skip(at) {
        // SAFETY: i < n, inside the destination.
        unsafe { dst.add(i).write(*b) };
    }
}

//! A binding's send slots: NBLs with one NET_BUFFER and an MDL over a driver-owned buffer, built once and
//! reused for every frame, so the send path allocates nothing per frame (nor per write) once the pool has
//! grown to what the binding's traffic needs. [`crate::txpool`] keeps the books (free list, sizes, bounds);
//! this module owns the memory.
//!
//! A chunk of [`CHUNK_SLOTS`] slots is one budget charge, one buffer allocation (the slots' frame buffers
//! back to back), one allocation of slot records, and per slot an MDL ([`NdisAllocateMdl`]) and an NBL with
//! its NET_BUFFER ([`NdisAllocateNetBufferAndNetBufferList`], from the binding's NBL pool). Chunks are built
//! when a write finds no free slot ([`Taker`]), up to [`crate::txpool::MAX_CHUNKS`], and freed when they
//! are retired (the MTU grew) or with the pool.
//!
//! [`NdisAllocateMdl`]: https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisallocatemdl
//! [`NdisAllocateNetBufferAndNetBufferList`]: https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisallocatenetbufferandnetbufferlist

use super::alloc::try_box;
use super::sync::{AtDispatch, SpinLock};
use crate::budget::Charge;
use crate::error::{Error, Result};
use crate::txpool::{Accounting, Chunks, SlotId, CHUNK_SLOTS, MAX_CHUNKS};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};
use ndis_sys::*;

/// One send slot: an NBL with one NET_BUFFER whose MDL describes `bytes` of driver memory at `buf`, and the
/// sender's context `T`.
///
/// # Invariants
///
/// `nbl`, its NET_BUFFER and `mdl` were allocated for this slot and stay valid while the slot exists;
/// `NET_BUFFER_LIST.ProtocolReserved[0]` of `nbl` points to the slot. Whoever took the slot from the pool
/// (until it is given back) is the only one to touch it.
#[derive(Debug)]
pub struct Slot<T> {
    nbl: PNET_BUFFER_LIST,
    mdl: PMDL,
    buf: *mut u8,
    bytes: usize,
    id: SlotId,
    /// The next slot of a list the slot's owner builds (a write's slots, the slots a completion gives back).
    next: *mut Slot<T>,
    pub ctx: T,
}

impl<T> Slot<T> {
    /// The slot's NBL.
    pub fn nbl(&self) -> PNET_BUFFER_LIST {
        self.nbl
    }

    /// The frame buffer: `bytes` long.
    pub fn buffer(&mut self) -> &mut [u8] {
        // SAFETY: type invariant: `buf` is `bytes` of driver memory that only this slot describes, and the
        // slot's owner is the only one to use it (`&mut self`).
        unsafe { core::slice::from_raw_parts_mut(self.buf, self.bytes) }
    }

    /// Makes the NBL describe the first `len` bytes of the buffer (`len` ≤ its size), as one frame to send:
    /// the MDL's ByteCount (NdisAdjustMdlLength), the NET_BUFFER's DataLength, the NBL's link and status, and
    /// its NDIS 6.30 info slots zeroed as a fresh NBL has them (a driver below may have left per-packet
    /// information — a cancel ID, a VLAN tag, an offload's completion — in them). The NET_BUFFER's DataOffset
    /// (0), current MDL (the slot's, at offset 0) and link (none) are written once, when the slot is built
    /// ([`NdisAllocateNetBufferAndNetBufferList`] with the MDL and offset 0): NDIS requires every driver below
    /// that moves a NET_BUFFER's data start to move it back before completing, so they are as built whenever
    /// the slot is back.
    ///
    /// [`NdisAllocateNetBufferAndNetBufferList`]: https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/nf-ndis-ndisallocatenetbufferandnetbufferlist
    pub fn set_frame(&mut self, len: usize) {
        let len = len.min(self.bytes);
        // CAST: at most the slot's size, far below 4 GiB.
        let len32 = len as u32;
        // Read once: the stores below go through raw pointers, which the compiler cannot tell apart from the
        // slot's own fields.
        let (nbl, mdl) = (self.nbl, self.mdl);
        // SAFETY: type invariant: the slot's own NBL, NET_BUFFER and MDL, not with NDIS while the slot is
        // owned.
        unsafe {
            (*mdl).ByteCount = len32;
            let nb = (*nbl).u1.s.FirstNetBuffer;
            (*nb).u1.s.u.DataLength = len32;
            (*nbl).u1.s.Next = ptr::null_mut();
            (*nbl).u2.Status = NDIS_STATUS_SUCCESS;
            (*nbl).NetBufferListInfo = [ptr::null_mut(); MaxNetBufferListInfo as usize];
        }
    }

    /// The next slot of the owner's list.
    pub fn next(&self) -> *mut Slot<T> {
        self.next
    }

    /// Links `next` after this slot in the owner's list.
    pub fn set_next(&mut self, next: *mut Slot<T>) {
        self.next = next;
    }
}

/// One chunk of slots and the memory behind them; frees its NBLs and MDLs in `Drop`.
#[derive(Debug)]
struct Chunk<T> {
    /// Built in place: the vector never grows past the capacity it was given, so slots do not move.
    slots: Vec<Slot<T>>,
    _buffers: Vec<u8>,
    _charge: Charge,
    /// The next chunk of a list of chunks to free.
    next_dead: *mut Chunk<T>,
}

impl<T> Drop for Chunk<T> {
    fn drop(&mut self) {
        for s in &self.slots {
            // SAFETY: the slot's NBL and MDL (type invariant of Slot), no longer with NDIS: a chunk is freed
            // only when none of its slots is out.
            unsafe {
                NdisFreeNetBufferList(s.nbl);
                NdisFreeMdl(s.mdl);
            }
        }
    }
}

/// A binding's send slots.
///
/// # Invariants
///
/// `chunks[n]` is null or a chunk built by this pool whose number `n` the accounting holds as reserved or
/// ready; it is published before the accounting makes its slots free and cleared (under the lock) when the
/// accounting gives the number up. `slots[n * CHUNK_SLOTS + i]` is null or slot `i` of `chunks[n]`, published
/// and cleared with it.
pub struct SendPool<T> {
    books: SpinLock<Accounting>,
    chunks: [AtomicPtr<Chunk<T>>; MAX_CHUNKS],
    /// Every slot by its number (one load from a [`SlotId`] to its slot): [`crate::txpool::MAX_SLOTS`] entries.
    slots: Vec<AtomicPtr<Slot<T>>>,
}

impl<T> core::fmt::Debug for SendPool<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SendPool").finish_non_exhaustive()
    }
}

// SAFETY: the pool's mutable state is behind its spin lock or in atomics; slots are handed to one owner at a
// time, and the raw pointers in them are NDIS objects and pool memory usable from any thread.
unsafe impl<T: Send> Send for SendPool<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for SendPool<T> {}

/// How many slots a write takes from the pool under one acquisition of its lock.
pub const TAKE_AT_ONCE: usize = 64;

impl<T: Default> SendPool<T> {
    /// An empty pool (its free list's room is allocated now; chunks come with the first write).
    pub fn new() -> Result<Self> {
        let mut slots = Vec::new();
        slots.try_reserve_exact(MAX_CHUNKS * CHUNK_SLOTS)?;
        slots.resize_with(MAX_CHUNKS * CHUNK_SLOTS, || AtomicPtr::new(ptr::null_mut()));
        Ok(Self {
            books: SpinLock::new(Accounting::new()?),
            chunks: [const { AtomicPtr::new(ptr::null_mut()) }; MAX_CHUNKS],
            slots,
        })
    }

    /// Builds one chunk of slots able to hold frames of `max_frame` bytes and makes them free.
    /// Errors: the pool is at its bound, or pool memory, an MDL or an NBL cannot be had →
    /// STATUS_INSUFFICIENT_RESOURCES; the driver's budget is spent → STATUS_QUOTA_EXCEEDED.
    fn grow(&self, binding: NDIS_HANDLE, nbl_pool: NDIS_HANDLE, max_frame: usize) -> Result {
        let (n, bytes) = {
            let mut books = self.books.lock();
            let dead = books.ensure_size(max_frame);
            let reserved = books.reserve_chunk();
            let dead = self.unpublish(dead);
            drop(books);
            free_list(dead);
            reserved?
        };
        match build_chunk::<T>(binding, nbl_pool, n, bytes) {
            Ok(chunk) => {
                let chunk = Box::into_raw(chunk);
                // INVARIANT: number `n` is reserved for this chunk; nothing else stores there.
                let table = self.slots.get(usize::from(n) * CHUNK_SLOTS..).unwrap_or_default();
                // SAFETY: the chunk just built, not yet reachable by anyone else; its slots do not move.
                let built = unsafe { (*chunk).slots.iter_mut() };
                for (entry, slot) in table.iter().zip(built) {
                    entry.store(ptr::from_mut(slot), Ordering::Release);
                }
                if let Some(p) = self.chunks.get(usize::from(n)) {
                    p.store(chunk, Ordering::Release);
                }
                let mut books = self.books.lock();
                let dead = books.add_chunk(n);
                let dead = self.unpublish(dead);
                drop(books);
                free_list(dead);
                Ok(())
            }
            Err(e) => {
                self.books.lock().abandon_chunk(n);
                Err(e)
            }
        }
    }
}

impl<T> SendPool<T> {
    /// Takes the chunks of `set` out of the table (the accounting just gave their numbers up; called under the
    /// lock so that a new chunk cannot take a number before its old pointer is cleared), as a list to free.
    fn unpublish(&self, set: Chunks) -> *mut Chunk<T> {
        let mut list: *mut Chunk<T> = ptr::null_mut();
        for c in set.iter() {
            let Some(p) = self.chunks.get(usize::from(c)) else { continue };
            let p = p.swap(ptr::null_mut(), Ordering::AcqRel);
            let from = usize::from(c) * CHUNK_SLOTS;
            for entry in self.slots.get(from..from + CHUNK_SLOTS).unwrap_or_default() {
                entry.store(ptr::null_mut(), Ordering::Release);
            }
            if !p.is_null() {
                // SAFETY: a chunk of this pool (type invariant) that nobody else reaches any more.
                unsafe { (*p).next_dead = list };
                list = p;
            }
        }
        list
    }

    /// The slot an id names (null if there is none).
    fn slot(&self, id: SlotId) -> *mut Slot<T> {
        let n = usize::from(id.chunk) * CHUNK_SLOTS + usize::from(id.index);
        self.slots.get(n).map_or(ptr::null_mut(), |p| p.load(Ordering::Acquire))
    }

    /// Gives back a list of slots (linked through [`Slot::set_next`]) under one acquisition of the lock;
    /// `at` proves the caller runs at DISPATCH_LEVEL (no IRQL read then).
    ///
    /// # Safety
    ///
    /// Every slot of the list was taken from this pool, is owned by the caller, and is no longer with NDIS.
    pub unsafe fn put_list(&self, head: *mut Slot<T>, at: Option<AtDispatch<'_>>) {
        if head.is_null() {
            return;
        }
        let mut books = match at {
            Some(at) => self.books.lock_dpc(at),
            None => self.books.lock(),
        };
        let mut s = head;
        let ids = core::iter::from_fn(|| {
            if s.is_null() {
                return None;
            }
            // SAFETY: a slot of this pool the caller owns (caller's contract); read before it is free again.
            let (id, next) = unsafe { ((*s).id, (*s).next) };
            s = next;
            Some(id)
        });
        let dead = books.put_all(ids);
        let dead = self.unpublish(dead);
        drop(books);
        free_list(dead);
    }

    /// (slots out, free slots, chunks) now.
    pub fn counts(&self) -> (usize, usize, usize) {
        let b = self.books.lock();
        (b.out(), b.free(), b.chunks())
    }
}

impl<T> Drop for SendPool<T> {
    fn drop(&mut self) {
        // The binding goes only after every send completed (an unbind follows a pause, which waits for them),
        // so no slot is out.
        let all = self.books.get_mut().drain();
        free_list(self.unpublish(all));
    }
}

/// Frees a list of chunks (outside the pool's lock).
fn free_list<T>(mut list: *mut Chunk<T>) {
    while !list.is_null() {
        // SAFETY: chunks `unpublish` took out of a pool; each is on one list only.
        let chunk = unsafe { Box::from_raw(list) };
        list = chunk.next_dead;
        drop(chunk);
    }
}

/// Builds a chunk of [`CHUNK_SLOTS`] slots of `bytes` each, numbered `n`. On failure what was built is freed.
fn build_chunk<T: Default>(binding: NDIS_HANDLE, nbl_pool: NDIS_HANDLE, n: u8, bytes: usize) -> Result<Box<Chunk<T>>> {
    let total = bytes.checked_mul(CHUNK_SLOTS).ok_or(Error::INSUFFICIENT_RESOURCES)?;
    let charge = crate::budget::POOL.charge(total.saturating_add(CHUNK_SLOTS * core::mem::size_of::<Slot<T>>()))?;
    let mut buffers = Vec::new();
    buffers.try_reserve_exact(total)?;
    buffers.resize(total, 0u8);
    let mut slots = Vec::new();
    slots.try_reserve_exact(CHUNK_SLOTS)?;
    let mut chunk = try_box(Chunk::<T> { slots, _buffers: buffers, _charge: charge, next_dead: ptr::null_mut() })?;
    let base = chunk._buffers.as_mut_ptr();
    // CAST: a slot size, far below 4 GiB.
    let (len32, lensz) = (bytes as u32, bytes);
    for index in 0..CHUNK_SLOTS {
        // SAFETY: `index * bytes` lies inside the `total` bytes of `buffers`, which never move (the vector is
        // not resized again).
        let buf = unsafe { base.add(index * bytes) };
        // SAFETY: IRQL <= DISPATCH_LEVEL; the binding handle is open; the buffer is non-paged pool that
        // outlives the MDL (both are freed with the chunk, the MDL first).
        let mdl = unsafe { NdisAllocateMdl(binding, buf.cast::<c_void>(), len32) };
        if mdl.is_null() {
            return Err(Error::INSUFFICIENT_RESOURCES);
        }
        // SAFETY: the binding's NBL pool; one NET_BUFFER describing the whole MDL.
        let nbl = unsafe { NdisAllocateNetBufferAndNetBufferList(nbl_pool, 0, 0, mdl, 0, lensz) };
        if nbl.is_null() {
            // SAFETY: the MDL was just allocated and is attached to nothing.
            unsafe { NdisFreeMdl(mdl) };
            return Err(Error::INSUFFICIENT_RESOURCES);
        }
        // CAST: below CHUNK_SLOTS (64).
        let id = SlotId { chunk: n, index: index as u8 };
        // Room for CHUNK_SLOTS was reserved: the push does not move the slots already built.
        chunk.slots.push(Slot { nbl, mdl, buf, bytes, id, next: ptr::null_mut(), ctx: T::default() });
        if let Some(s) = chunk.slots.last_mut() {
            // SAFETY: the fresh NBL of the slot, with the driver; the slot's address is final.
            unsafe { (*nbl).ProtocolReserved[0] = ptr::from_mut(s).cast::<c_void>() };
        }
    }
    Ok(chunk)
}

/// A write's supply of slots: takes them from the pool [`TAKE_AT_ONCE`] at a time, builds a chunk when the
/// pool has none free, and gives back what the write did not use when dropped.
pub struct Taker<'p, T> {
    pool: &'p SendPool<T>,
    binding: NDIS_HANDLE,
    nbl_pool: NDIS_HANDLE,
    max_frame: usize,
    ids: [SlotId; TAKE_AT_ONCE],
    next: usize,
    got: usize,
}

impl<T> core::fmt::Debug for Taker<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Taker").field("next", &self.next).field("got", &self.got).finish_non_exhaustive()
    }
}

impl<'p, T: Default> Taker<'p, T> {
    /// Slots for frames of up to `max_frame` bytes from `pool` (of the binding `binding`, whose NBLs come
    /// from `nbl_pool`).
    pub fn new(pool: &'p SendPool<T>, binding: NDIS_HANDLE, nbl_pool: NDIS_HANDLE, max_frame: usize) -> Self {
        Self { pool, binding, nbl_pool, max_frame, ids: [SlotId { chunk: 0, index: 0 }; TAKE_AT_ONCE], next: 0, got: 0 }
    }

    /// The next slot, owned by the caller until it is given back; `hint` says how many more the write will
    /// likely want (it takes that many at once, up to [`TAKE_AT_ONCE`]), asked only when the taker has none
    /// left. Errors: [`SendPool::grow`]'s.
    pub fn take(&mut self, hint: impl FnOnce() -> usize) -> Result<*mut Slot<T>> {
        if self.next == self.got {
            self.refill(hint().clamp(1, TAKE_AT_ONCE))?;
        }
        let id = self.ids.get(self.next).copied().ok_or(Error::INSUFFICIENT_RESOURCES)?;
        self.next += 1;
        let s = self.pool.slot(id);
        if s.is_null() {
            return Err(Error::INSUFFICIENT_RESOURCES);
        }
        Ok(s)
    }

    fn refill(&mut self, want: usize) -> Result {
        loop {
            let got = {
                let mut books = self.pool.books.lock();
                let dead = books.ensure_size(self.max_frame);
                let got = books.take(self.ids.get_mut(..want).unwrap_or_default());
                let dead = self.pool.unpublish(dead);
                drop(books);
                free_list(dead);
                got
            };
            if got > 0 {
                (self.next, self.got) = (0, got);
                return Ok(());
            }
            // None free: one more chunk (if another write takes its slots first, the loop grows again; the
            // pool's bound ends it).
            self.pool.grow(self.binding, self.nbl_pool, self.max_frame)?;
        }
    }
}

impl<T> Drop for Taker<'_, T> {
    fn drop(&mut self) {
        if self.next == self.got {
            return;
        }
        let mut books = self.pool.books.lock();
        let dead = books.put_all(self.ids.get(self.next..self.got).unwrap_or_default().iter().copied());
        let dead = self.pool.unpublish(dead);
        drop(books);
        free_list(dead);
    }
}

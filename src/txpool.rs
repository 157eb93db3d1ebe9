//! The bookkeeping of a binding's send pool: which send slots exist, which are free, how big they are, and
//! when memory is added or given back. Pure logic, no FFI; the memory itself (each slot an NBL with one
//! NET_BUFFER and an MDL over a driver-owned buffer) is built and freed by `kernel::sendpool`.
//!
//! Slots come in chunks of [`CHUNK_SLOTS`], at most [`MAX_CHUNKS`] per binding ([`MAX_SLOTS`] = one write of
//! [`MAX_BATCH`] frames). Every slot of a chunk has the same buffer size. The pool's slot size follows the
//! largest frame the binding's MTU allows: when a write needs larger slots than the pool has (the MTU grew
//! at a restart), the pool's size goes up, free slots of the old size are retired at once, slots of the old
//! size still out with NDIS are retired when they come back, and a chunk whose slots are all retired is
//! freed. A smaller MTU keeps the larger slots.
//!
//! [`MAX_BATCH`]: crate::tx::MAX_BATCH

use crate::error::{Error, Result};
use alloc::vec::Vec;

/// Slots per chunk (one allocation of buffers, one NBL and one MDL per slot).
pub const CHUNK_SLOTS: usize = 64;
/// Chunks per binding.
pub const MAX_CHUNKS: usize = 64;
/// The most slots a binding has: one write of [`crate::tx::MAX_BATCH`] frames fits when nothing else is in
/// flight.
pub const MAX_SLOTS: usize = CHUNK_SLOTS * MAX_CHUNKS;
/// Slot buffers are a multiple of this (a cache line).
pub const SLOT_ALIGN: usize = 64;

const _: () = assert!(MAX_SLOTS == crate::tx::MAX_BATCH);
// Chunk sets are u64 bit masks.
const _: () = assert!(MAX_CHUNKS == 64);

/// A slot: its chunk and its place in the chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotId {
    pub chunk: u8,
    pub index: u8,
}

const _: () = assert!(CHUNK_SLOTS <= u8::MAX as usize && MAX_CHUNKS <= u8::MAX as usize);

/// The slot buffer size for frames of up to `max_frame` bytes: rounded up to [`SLOT_ALIGN`].
pub fn slot_bytes(max_frame: usize) -> usize {
    max_frame.max(1).div_ceil(SLOT_ALIGN).saturating_mul(SLOT_ALIGN)
}

/// A set of chunks (bit `n` = chunk `n`), for the caller to free outside the pool's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[must_use = "the chunks of the set must be freed"]
pub struct Chunks(pub u64);

impl Chunks {
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The chunk numbers in the set, lowest first (one step per member: the empty set, the common case, costs
    /// one test).
    pub fn iter(self) -> impl Iterator<Item = u8> {
        let mut rest = self.0;
        core::iter::from_fn(move || {
            if rest == 0 {
                return None;
            }
            // CAST: a bit position below 64.
            let c = rest.trailing_zeros() as u8;
            rest &= rest - 1;
            Some(c)
        })
    }
}

/// The free slots: a stack in storage allocated once, [`MAX_SLOTS`] long (a push is a store and an increment,
/// no capacity check of `Vec::push`).
#[derive(Debug)]
struct Stack {
    ids: Vec<SlotId>,
    len: usize,
}

impl Stack {
    fn new() -> Result<Self> {
        let mut ids = Vec::new();
        ids.try_reserve_exact(MAX_SLOTS)?;
        ids.resize(MAX_SLOTS, SlotId { chunk: 0, index: 0 });
        Ok(Self { ids, len: 0 })
    }

    /// Pushes `id` unless the stack is full (it never is: it has room for every slot there can be).
    fn push(&mut self, id: SlotId) {
        if let Some(e) = self.ids.get_mut(self.len) {
            *e = id;
            self.len += 1;
        }
    }

    /// Moves up to `out.len()` ids off the top into `out`, the top one last; returns how many.
    fn pop_into(&mut self, out: &mut [SlotId]) -> usize {
        let n = out.len().min(self.len);
        let from = self.len - n;
        if let (Some(dst), Some(src)) = (out.get_mut(..n), self.ids.get(from..self.len)) {
            dst.copy_from_slice(src);
        }
        self.len = from;
        n
    }

    /// Keeps the ids `keep` says yes to, in order.
    fn retain(&mut self, mut keep: impl FnMut(SlotId) -> bool) {
        let mut kept = 0;
        for i in 0..self.len {
            let Some(&id) = self.ids.get(i) else { break };
            if keep(id) {
                if let Some(e) = self.ids.get_mut(kept) {
                    *e = id;
                }
                kept += 1;
            }
        }
        self.len = kept;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// No chunk has this number.
    Vacant,
    /// Reserved by [`Accounting::reserve_chunk`]; its memory is being built for slots of this size.
    Building(usize),
    /// In use with slots of `bytes`, of which `live` are not retired (free or out).
    Ready { bytes: usize, live: u8 },
}

/// The pool's accounting.
///
/// # Invariants
///
/// Every slot of a `Ready` chunk that is not retired is either in `free` or out (counted in `out`); `free`
/// holds only slots of chunks whose size is the pool's `bytes`.
#[derive(Debug)]
pub struct Accounting {
    chunks: [ChunkState; MAX_CHUNKS],
    /// Free slots, the most recently returned on top (taken first: its buffer is likely still in cache).
    free: Stack,
    /// The size every slot taken now has (0: none yet).
    bytes: usize,
    /// Slots taken and not yet returned.
    out: usize,
}

impl Accounting {
    /// An empty pool; reserves room for [`MAX_SLOTS`] free slots, so nothing allocates later.
    pub fn new() -> Result<Self> {
        Ok(Self { chunks: [ChunkState::Vacant; MAX_CHUNKS], free: Stack::new()?, bytes: 0, out: 0 })
    }

    /// The slot size of the pool now.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Slots taken and not returned.
    pub fn out(&self) -> usize {
        self.out
    }

    /// Free slots.
    pub fn free(&self) -> usize {
        self.free.len
    }

    /// Chunks that exist (ready or being built).
    pub fn chunks(&self) -> usize {
        self.chunks.iter().filter(|c| !matches!(c, ChunkState::Vacant)).count()
    }

    /// Makes the pool's slots at least `slot_bytes(max_frame)` long: if they are shorter, the size goes up,
    /// every free slot of the old size is retired, and the chunks left with no live slot are returned.
    pub fn ensure_size(&mut self, max_frame: usize) -> Chunks {
        let want = slot_bytes(max_frame);
        if want <= self.bytes {
            return Chunks::default();
        }
        self.bytes = want;
        let mut dead = Chunks::default();
        let chunks = &mut self.chunks;
        self.free.retain(|id| match chunks.get_mut(usize::from(id.chunk)) {
            Some(ChunkState::Ready { bytes, live }) if *bytes < want => {
                *live = live.saturating_sub(1);
                if *live == 0 {
                    dead.0 |= 1u64 << id.chunk;
                }
                false
            }
            _ => true,
        });
        for c in dead.iter() {
            if let Some(s) = self.chunks.get_mut(usize::from(c)) {
                *s = ChunkState::Vacant;
            }
        }
        dead
    }

    /// Takes up to `out.len()` free slots (the most recently returned first); returns how many.
    pub fn take(&mut self, out: &mut [SlotId]) -> usize {
        let n = self.free.pop_into(out);
        self.out += n;
        n
    }

    /// Gives a slot back: free again, or retired if it is smaller than the pool's size now (then its chunk is
    /// returned once no slot of it is live).
    pub fn put(&mut self, id: SlotId) -> Chunks {
        self.put_all([id])
    }

    /// Gives slots back, as [`put`](Self::put) each (the common case — a slot of the pool's size — is a store
    /// on the free stack; the counts are written once).
    pub fn put_all(&mut self, ids: impl IntoIterator<Item = SlotId>) -> Chunks {
        let want = self.bytes;
        let (mut n, mut len, mut dead) = (0usize, self.free.len, Chunks::default());
        // The chunk of the previous slot, if its slots are of the pool's size (slots come back in runs from
        // the same chunk; such a chunk's state does not change in this loop).
        let mut current = None;
        for id in ids {
            n += 1;
            if current != Some(id.chunk) {
                match self.chunks.get_mut(usize::from(id.chunk)) {
                    Some(ChunkState::Ready { bytes, .. }) if *bytes >= want => current = Some(id.chunk),
                    // A slot of an older, smaller size: retired; its chunk goes with its last live slot.
                    Some(ChunkState::Ready { live, .. }) => {
                        *live = live.saturating_sub(1);
                        if *live == 0 {
                            dead.0 |= 1u64 << id.chunk;
                        }
                        continue;
                    }
                    // Not a slot of this pool: nothing to account.
                    _ => continue,
                }
            }
            // Room was reserved for every slot there is.
            if let Some(e) = self.free.ids.get_mut(len) {
                *e = id;
                len += 1;
            }
        }
        self.free.len = len;
        self.out = self.out.saturating_sub(n);
        for c in dead.iter() {
            if let Some(s) = self.chunks.get_mut(usize::from(c)) {
                *s = ChunkState::Vacant;
            }
        }
        dead
    }

    /// Reserves a chunk number for a new chunk with slots of the pool's size: `(chunk, slot bytes)`.
    /// STATUS_INSUFFICIENT_RESOURCES when the pool has [`MAX_CHUNKS`] already; STATUS_INVALID_DEVICE_STATE
    /// before [`ensure_size`](Self::ensure_size) set a size.
    pub fn reserve_chunk(&mut self) -> Result<(u8, usize)> {
        if self.bytes == 0 {
            return Err(Error::INVALID_DEVICE_STATE);
        }
        let bytes = self.bytes;
        let (n, s) = self
            .chunks
            .iter_mut()
            .enumerate()
            .find(|(_, c)| matches!(c, ChunkState::Vacant))
            .ok_or(Error::INSUFFICIENT_RESOURCES)?;
        *s = ChunkState::Building(bytes);
        // CAST: below MAX_CHUNKS (64).
        Ok((n as u8, bytes))
    }

    /// A reserved chunk could not be built: its number is free again.
    pub fn abandon_chunk(&mut self, chunk: u8) {
        if let Some(s @ ChunkState::Building(_)) = self.chunks.get_mut(usize::from(chunk)) {
            *s = ChunkState::Vacant;
        }
    }

    /// A reserved chunk is built: its slots become free — unless the pool's size grew meanwhile, in which
    /// case the chunk is returned at once (the caller frees it).
    pub fn add_chunk(&mut self, chunk: u8) -> Chunks {
        let Some(s) = self.chunks.get_mut(usize::from(chunk)) else { return Chunks::default() };
        let ChunkState::Building(bytes) = *s else { return Chunks::default() };
        if bytes < self.bytes {
            *s = ChunkState::Vacant;
            return Chunks(1u64 << chunk);
        }
        // CAST: CHUNK_SLOTS (64) fits a u8.
        *s = ChunkState::Ready { bytes, live: CHUNK_SLOTS as u8 };
        for index in 0..CHUNK_SLOTS {
            // CAST: below CHUNK_SLOTS.
            self.free.push(SlotId { chunk, index: index as u8 });
        }
        Chunks::default()
    }

    /// Every chunk, for the pool's owner to free at the end (no slot may be out then).
    pub fn drain(&mut self) -> Chunks {
        let mut all = Chunks::default();
        for (n, s) in self.chunks.iter_mut().enumerate() {
            if matches!(s, ChunkState::Ready { .. }) {
                all.0 |= 1u64 << n;
            }
            *s = ChunkState::Vacant;
        }
        self.free.len = 0;
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    fn ready(a: &mut Accounting) -> u8 {
        let (c, _) = a.reserve_chunk().expect("room");
        assert!(a.add_chunk(c).is_empty());
        c
    }

    #[test]
    fn slot_sizes_cover_the_largest_frame_in_whole_cache_lines() {
        assert_eq!(slot_bytes(1518), 1536);
        assert_eq!(slot_bytes(1536), 1536);
        assert_eq!(slot_bytes(9018), 9024);
        assert_eq!(slot_bytes(0), 64);
        assert_eq!(slot_bytes(usize::MAX), usize::MAX, "saturates instead of overflowing");
    }

    #[test]
    fn a_chunk_gives_its_slots_and_takes_them_back() {
        let mut a = Accounting::new().unwrap();
        assert_eq!(a.reserve_chunk(), Err(Error::INVALID_DEVICE_STATE), "no size yet");
        assert!(a.ensure_size(1518).is_empty());
        let c = ready(&mut a);
        assert_eq!((a.free(), a.out(), a.chunks()), (CHUNK_SLOTS, 0, 1));
        let mut got = vec![SlotId { chunk: 0, index: 0 }; 100];
        assert_eq!(a.take(&mut got), CHUNK_SLOTS, "only what is free");
        assert_eq!((a.free(), a.out()), (0, CHUNK_SLOTS));
        assert_eq!(a.take(&mut got[..1]), 0, "empty");
        let mut seen: Vec<u8> = got[..CHUNK_SLOTS].iter().map(|s| s.index).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..CHUNK_SLOTS as u8).collect::<Vec<_>>(), "each slot once");
        assert!(got[..CHUNK_SLOTS].iter().all(|s| s.chunk == c));
        for &id in &got[..CHUNK_SLOTS] {
            assert!(a.put(id).is_empty());
        }
        assert_eq!((a.free(), a.out()), (CHUNK_SLOTS, 0));
        // The last returned is taken first.
        assert_eq!(a.take(&mut got[..1]), 1);
        assert_eq!(got[0], got[CHUNK_SLOTS - 1]);
        assert!(a.put(got[0]).is_empty());
        assert_eq!(a.drain(), Chunks(1 << c));
        assert_eq!((a.free(), a.chunks()), (0, 0));
    }

    #[test]
    fn chunk_sets_list_their_members() {
        assert_eq!(Chunks(0).iter().count(), 0);
        assert_eq!(Chunks(0b1010_0001).iter().collect::<Vec<_>>(), [0, 5, 7]);
        assert_eq!(Chunks(u64::MAX).iter().count(), 64);
        assert_eq!(Chunks(1 << 63).iter().collect::<Vec<_>>(), [63]);
    }

    #[test]
    fn the_pool_is_bounded() {
        let mut a = Accounting::new().unwrap();
        let _ = a.ensure_size(1518);
        for _ in 0..MAX_CHUNKS {
            ready(&mut a);
        }
        assert_eq!(a.free(), MAX_SLOTS);
        assert_eq!(a.reserve_chunk(), Err(Error::INSUFFICIENT_RESOURCES));
        assert_eq!(a.drain(), Chunks(u64::MAX));
    }

    #[test]
    fn a_chunk_that_could_not_be_built_frees_its_number() {
        let mut a = Accounting::new().unwrap();
        let _ = a.ensure_size(100);
        let (c, bytes) = a.reserve_chunk().unwrap();
        assert_eq!(bytes, 128);
        assert_eq!(a.chunks(), 1);
        a.abandon_chunk(c);
        assert_eq!(a.chunks(), 0);
        assert_eq!(a.reserve_chunk().unwrap().0, c);
    }

    #[test]
    fn a_larger_mtu_retires_free_slots_now_and_slots_out_when_they_return() {
        let mut a = Accounting::new().unwrap();
        let _ = a.ensure_size(1518);
        let c0 = ready(&mut a);
        let c1 = ready(&mut a);
        // Three slots of chunk c1 are out (the last added are taken first), chunk c0 is all free.
        let mut out = [SlotId { chunk: 0, index: 0 }; 3];
        assert_eq!(a.take(&mut out), 3);
        assert!(out.iter().all(|s| s.chunk == c1));
        // A smaller frame changes nothing.
        assert!(a.ensure_size(1000).is_empty());
        assert_eq!(a.bytes(), 1536);
        // Jumbo frames: c0 has no slot out and goes at once; c1 waits for its three.
        assert_eq!(a.ensure_size(9018), Chunks(1 << c0));
        assert_eq!((a.bytes(), a.free(), a.out(), a.chunks()), (9024, 0, 3, 1));
        // A chunk built meanwhile at the old size is stale on arrival.
        let mut b = Accounting::new().unwrap();
        let _ = b.ensure_size(1518);
        let (stale, _) = b.reserve_chunk().unwrap();
        let _ = b.ensure_size(9018);
        assert_eq!(b.add_chunk(stale), Chunks(1 << stale));
        assert_eq!(b.chunks(), 0);
        // New slots have the new size; old ones coming back are retired, the last frees its chunk.
        let c2 = ready(&mut a);
        assert_eq!(a.free(), CHUNK_SLOTS);
        assert!(a.put(out[0]).is_empty());
        assert!(a.put(out[1]).is_empty());
        assert_eq!(a.put(out[2]), Chunks(1 << c1));
        assert_eq!((a.free(), a.out(), a.chunks()), (CHUNK_SLOTS, 0, 1));
        let mut one = [SlotId { chunk: 0, index: 0 }];
        assert_eq!(a.take(&mut one), 1);
        assert_eq!(one[0].chunk, c2, "only slots of the new size are handed out");
        assert!(a.put(one[0]).is_empty());
        assert_eq!(a.drain(), Chunks(1 << c2));
    }

    #[test]
    fn unknown_slots_are_ignored() {
        let mut a = Accounting::new().unwrap();
        assert!(a.put(SlotId { chunk: 200, index: 3 }).is_empty());
        assert!(a.put(SlotId { chunk: 5, index: 3 }).is_empty());
        assert_eq!(a.free(), 0);
        assert!(a.add_chunk(250).is_empty());
        a.abandon_chunk(250);
    }
}

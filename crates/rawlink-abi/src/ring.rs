//! The mapped receive ring: frames written by the driver straight into memory shared with the process.
//!
//! The design follows the rings of XDP for Windows (and Linux AF_XDP): a single-producer, single-consumer
//! ring of fixed-size slots, `slot_count` a power of two, with free-running 32-bit producer and consumer
//! indices (slot = index mod `slot_count`), each index on a 64-byte cache line of its own so the two sides
//! never write the same line. The driver is the only producer, the process the only consumer; like
//! XDP for Windows' `XskNotifySocket`, waiting for frames is a request (here [`IOCTL_RAWLINK_RING_WAIT`]),
//! not a spinning poll.
//!
//! **Setup.** The process allocates a buffer of [`RingLayout::len`] bytes (page-aligned, e.g. VirtualAlloc)
//! and sends [`IOCTL_RAWLINK_RING_ATTACH`] (METHOD_OUT_DIRECT) with a [`RingSetup`] as input and the buffer
//! as the output buffer, overlapped. The I/O manager probes and locks the buffer's pages once, for as long as
//! the request is outstanding; the driver maps them once, writes the [`RingLayout::header`] at offset 0,
//! zeroes both indices and leaves the request pending: from then on the ring is live, and frames the
//! handle's filter accepts go into the ring instead of the read queue. The request completes only when the
//! ring is detached — STATUS_CANCELLED on CancelIo or when the handle closes (IRP_MJ_CLEANUP),
//! STATUS_INVALID_DEVICE_STATE when the adapter goes away, STATUS_INVALID_PARAMETER when the process broke the
//! ring (see below) — and the pages are unlocked then. A second ring on one handle is refused with
//! STATUS_INVALID_DEVICE_STATE (also before the handle is attached to an adapter); a ring is charged to the
//! driver's pool budget like a read queue (STATUS_QUOTA_EXCEEDED).
//!
//! ```text
//!   0  header (driver-written once): magic, version, slot size, slot count, offsets, length
//!  64  producer index (u32, driver-written, release)
//! 128  consumer index (u32, process-written)
//! 192  status (u32, driver-written: BROKEN), dropped (u64: frames lost to a full ring)
//! 4096 slot 0, slot 1, ... each: FrameHeader (24 bytes) + captured bytes, at most slot_size - 24
//! ```
//!
//! **Consuming.** Read the producer index with acquire ordering; the slots `consumer..producer` hold one
//! frame each (a frame longer than the slot keeps its first `slot_size - 24` bytes, with TRUNCATED and the
//! original length in its header). Copy them out, then store the new consumer index with release ordering.
//!
//! **Hostile input.** Everything the process can write is read by the driver once per batch and validated:
//! the consumer index must lie between the last consumer index the driver saw and its own producer index
//! ([`consumer_valid`]). Any other value marks the ring broken: the driver stops writing (no slot outside the
//! ring is ever addressed: slots are `index mod slot_count`), sets [`status::BROKEN`], and detaches the
//! ring with STATUS_INVALID_PARAMETER. The header, status and slot bytes are never read back by the driver.

use crate::{ctl_code, FrameHeader, FILE_DEVICE_NETWORK, FILE_READ_WRITE_ACCESS};

/// `METHOD_OUT_DIRECT`: the output buffer is described by an MDL the I/O manager probed and locked.
pub const METHOD_OUT_DIRECT: u32 = 2;

/// Input: a [`RingSetup`]; output buffer: the ring memory ([`RingLayout::len`] bytes, page-aligned).
/// Pends while the ring is attached (see the module documentation).
pub const IOCTL_RAWLINK_RING_ATTACH: u32 =
    ctl_code(FILE_DEVICE_NETWORK, 0x90D, METHOD_OUT_DIRECT, FILE_READ_WRITE_ACCESS);
/// No input or output. Completes with STATUS_SUCCESS once the ring holds a frame (at once if it does
/// already); pends until then, cancellable (CancelIoEx, closing the handle). STATUS_INVALID_DEVICE_STATE
/// without a ring; STATUS_INVALID_PARAMETER when the process broke the ring.
pub const IOCTL_RAWLINK_RING_WAIT: u32 = ctl_code(FILE_DEVICE_NETWORK, 0x90E, 0, FILE_READ_WRITE_ACCESS);

/// "RLRG", little-endian, at offset 0 of a live ring.
pub const MAGIC: u32 = u32::from_le_bytes(*b"RLRG");
pub const VERSION: u32 = 1;
pub const CACHE_LINE: usize = 64;
pub const PRODUCER_OFFSET: usize = 64;
pub const CONSUMER_OFFSET: usize = 128;
pub const STATUS_OFFSET: usize = 192;
/// The u64 count of frames dropped because the ring was full (driver-written, at each batch).
pub const DROPPED_OFFSET: usize = 200;
/// Slots start on the second page.
pub const DATA_OFFSET: usize = 4096;
pub const PAGE: usize = 4096;
/// Slot sizes: powers of two in this range.
pub const SLOT_MIN: u32 = 64;
pub const SLOT_MAX: u32 = 64 << 10;
/// The largest data area: 8 MiB. The whole ring is one buffer the I/O manager describes with one MDL, and an
/// MDL describes at most (65535 - sizeof(MDL)) / 8 pages on x64 (IoAllocateMdl), about 32 MiB; 8 MiB stays
/// well inside that everywhere.
pub const DATA_MAX: usize = 8 << 20;
/// The slot size [`RingLayout::default_for`] picks: a whole 1514-byte frame (plus a VLAN tag) fits.
pub const SLOT_DEFAULT: u32 = 2048;

/// Bits of the status word.
pub mod status {
    /// The process wrote an invalid consumer index; the driver stopped writing and detached the ring.
    pub const BROKEN: u32 = 1;
}

/// IOCTL_RAWLINK_RING_ATTACH's input: `u32 slot_size`, `u32 flags` (0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingSetup {
    pub slot_size: u32,
    pub flags: u32,
}

impl RingSetup {
    pub const LEN: usize = 8;

    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[..4].copy_from_slice(&self.slot_size.to_le_bytes());
        b[4..].copy_from_slice(&self.flags.to_le_bytes());
        b
    }

    pub fn parse(b: &[u8]) -> Result<Self, RingError> {
        let (s, f) = match (b.get(0..4), b.get(4..8)) {
            (Some(s), Some(f)) => (s, f),
            _ => return Err(RingError::TooShort),
        };
        let word = |x: &[u8]| x.first_chunk::<4>().map_or(0, |w| u32::from_le_bytes(*w));
        Ok(Self { slot_size: word(s), flags: word(f) })
    }
}

/// Why a ring request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingError {
    /// The input is shorter than a [`RingSetup`] (STATUS_BUFFER_TOO_SMALL).
    TooShort,
    /// A slot size, flags, buffer length or header that is not allowed (STATUS_INVALID_PARAMETER).
    Invalid,
}

/// Where everything of one ring is; computed the same way by the driver and the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingLayout {
    pub slot_size: u32,
    pub slot_count: u32,
}

impl RingLayout {
    /// The layout of a ring buffer of `len` bytes with `slot_size`-byte slots: `len` must be
    /// [`DATA_OFFSET`] plus a power of two of at least one page and at most [`DATA_MAX`], holding at least two
    /// slots; `slot_size` a power of two in [`SLOT_MIN`]..=[`SLOT_MAX`].
    pub fn new(len: usize, slot_size: u32) -> Result<Self, RingError> {
        if !slot_size.is_power_of_two() || !(SLOT_MIN..=SLOT_MAX).contains(&slot_size) {
            return Err(RingError::Invalid);
        }
        let data = len.checked_sub(DATA_OFFSET).ok_or(RingError::Invalid)?;
        if !data.is_power_of_two() || !(PAGE..=DATA_MAX).contains(&data) {
            return Err(RingError::Invalid);
        }
        let count = data / slot_size as usize;
        if count < 2 {
            return Err(RingError::Invalid);
        }
        let slot_count = u32::try_from(count).map_err(|_| RingError::Invalid)?;
        Ok(Self { slot_size, slot_count })
    }

    /// A layout with `slots` slots (rounded up to a power of two, at least 2) of `slot_size` bytes.
    pub fn with_slots(slots: u32, slot_size: u32) -> Result<Self, RingError> {
        let slots = slots.max(2).checked_next_power_of_two().ok_or(RingError::Invalid)?;
        let data = (slots as usize).checked_mul(slot_size as usize).ok_or(RingError::Invalid)?.max(PAGE);
        Self::new(DATA_OFFSET + data, slot_size)
    }

    /// The buffer length this layout needs.
    pub fn len(&self) -> usize {
        DATA_OFFSET + self.slot_count as usize * self.slot_size as usize
    }

    /// Never true (a ring holds at least two slots); for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The offset of the slot of free-running index `index`.
    pub fn slot_offset(&self, index: u32) -> usize {
        DATA_OFFSET + (index & (self.slot_count - 1)) as usize * self.slot_size as usize
    }

    /// The most frame bytes one slot holds.
    pub fn capacity(&self) -> usize {
        self.slot_size as usize - FrameHeader::LEN
    }

    /// The header line the driver writes at offset 0.
    pub fn header(&self) -> [u8; CACHE_LINE] {
        let mut b = [0u8; CACHE_LINE];
        let words = [
            MAGIC,
            VERSION,
            self.slot_size,
            self.slot_count,
            word(PRODUCER_OFFSET),
            word(CONSUMER_OFFSET),
            word(STATUS_OFFSET),
            word(DATA_OFFSET),
        ];
        for (d, w) in b.chunks_exact_mut(4).zip(words) {
            d.copy_from_slice(&w.to_le_bytes());
        }
        b[32..40].copy_from_slice(&(self.len() as u64).to_le_bytes());
        b
    }

    /// Reads a header the driver wrote (the process's check that the ring is live and laid out as it thinks).
    pub fn parse_header(b: &[u8]) -> Result<Self, RingError> {
        let w = |i: usize| b.get(i * 4..i * 4 + 4).and_then(|x| x.first_chunk::<4>()).map(|x| u32::from_le_bytes(*x));
        let fixed = [
            (0, MAGIC),
            (1, VERSION),
            (4, word(PRODUCER_OFFSET)),
            (5, word(CONSUMER_OFFSET)),
            (6, word(STATUS_OFFSET)),
            (7, word(DATA_OFFSET)),
        ];
        if fixed.iter().any(|&(i, v)| w(i) != Some(v)) {
            return Err(RingError::Invalid);
        }
        let (Some(slot_size), Some(slot_count)) = (w(2), w(3)) else { return Err(RingError::Invalid) };
        let l = Self::with_slots(slot_count, slot_size)?;
        if l.slot_count != slot_count {
            return Err(RingError::Invalid);
        }
        Ok(l)
    }
}

/// An offset of the fixed layout as the header's u32.
fn word(offset: usize) -> u32 {
    u32::try_from(offset).unwrap_or(u32::MAX)
}

/// Whether a consumer index the process wrote is acceptable: between `last` (the consumer index the driver
/// saw before; consumption never goes back) and `producer` (nothing not yet produced is consumed), in
/// free-running wrapping arithmetic. `producer - last` never exceeds the slot count (the driver's invariant),
/// so an accepted index always leaves `producer - consumer` within the ring.
pub const fn consumer_valid(last: u32, consumer: u32, producer: u32) -> bool {
    consumer.wrapping_sub(last) <= producer.wrapping_sub(last)
}

/// Free slots for the producer given a validated consumer index.
pub const fn free_slots(layout: &RingLayout, consumer: u32, producer: u32) -> u32 {
    layout.slot_count - producer.wrapping_sub(consumer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_checked() {
        let l = RingLayout::new(DATA_OFFSET + (1 << 20), 2048).unwrap();
        assert_eq!((l.slot_count, l.capacity(), l.len()), (512, 2024, DATA_OFFSET + (1 << 20)));
        assert_eq!(l.slot_offset(0), DATA_OFFSET);
        assert_eq!(l.slot_offset(513), DATA_OFFSET + 2048);
        assert_eq!(RingLayout::new(DATA_OFFSET + 4096, 4096), Err(RingError::Invalid), "one slot");
        assert_eq!(RingLayout::new(DATA_OFFSET + 8192, 4096).map(|l| l.slot_count), Ok(2));
        assert_eq!(RingLayout::new(DATA_OFFSET + 3 * 4096, 64), Err(RingError::Invalid), "not a power of two");
        assert_eq!(RingLayout::new(DATA_OFFSET + 4096, 100), Err(RingError::Invalid));
        assert_eq!(RingLayout::new(DATA_OFFSET + 4096, 32), Err(RingError::Invalid));
        assert_eq!(RingLayout::new(DATA_OFFSET + (128 << 10), 128 << 10), Err(RingError::Invalid));
        assert_eq!(RingLayout::new(DATA_OFFSET + 2048, 64), Err(RingError::Invalid), "less than a page");
        assert_eq!(RingLayout::new(DATA_OFFSET + (16 << 20), 2048), Err(RingError::Invalid), "too large");
        assert_eq!(RingLayout::new(DATA_OFFSET + (8 << 20), 2048).map(|l| l.slot_count), Ok(4096));
        assert_eq!(RingLayout::new(100, 64), Err(RingError::Invalid));
        assert_eq!(RingLayout::new(usize::MAX, 64), Err(RingError::Invalid));
        assert_eq!(RingLayout::with_slots(1000, 2048).map(|l| l.slot_count), Ok(1024));
        assert_eq!(RingLayout::with_slots(2, 64).map(|l| l.slot_count), Ok(64), "at least a page of data");
    }

    #[test]
    fn headers_round_trip_and_garbage_is_refused() {
        let l = RingLayout::with_slots(256, 2048).unwrap();
        assert_eq!(RingLayout::parse_header(&l.header()), Ok(l));
        let mut bad = l.header();
        bad[0] ^= 1;
        assert_eq!(RingLayout::parse_header(&bad), Err(RingError::Invalid));
        let mut bad = l.header();
        bad[12..16].copy_from_slice(&3u32.to_le_bytes());
        assert_eq!(RingLayout::parse_header(&bad), Err(RingError::Invalid));
        assert_eq!(RingLayout::parse_header(&[0; 10]), Err(RingError::Invalid));
    }

    #[test]
    fn consumer_indices_stay_between_the_last_seen_and_the_producer() {
        assert!(consumer_valid(0, 0, 0));
        assert!(consumer_valid(0, 5, 5));
        assert!(!consumer_valid(0, 6, 5), "past the producer");
        assert!(!consumer_valid(3, 2, 5), "backwards");
        assert!(consumer_valid(u32::MAX - 1, 1, 3), "across the wrap");
        assert!(!consumer_valid(u32::MAX - 1, u32::MAX - 2, 3));
        assert!(!consumer_valid(10, 0x8000_0000, 12));
        let l = RingLayout::with_slots(4, 1024).unwrap();
        assert_eq!(free_slots(&l, 7, 9), l.slot_count - 2);
    }

    #[test]
    fn setup_parses() {
        let s = RingSetup { slot_size: 2048, flags: 0 };
        assert_eq!(RingSetup::parse(&s.to_bytes()), Ok(s));
        assert_eq!(RingSetup::parse(&[0; 7]), Err(RingError::TooShort));
        assert_eq!(IOCTL_RAWLINK_RING_ATTACH & 3, METHOD_OUT_DIRECT);
        assert_eq!(IOCTL_RAWLINK_RING_WAIT & 3, 0);
    }
}

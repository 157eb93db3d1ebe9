//! A handle's receive queue: a bounded byte ring of frame records, allocated once when the handle attaches
//! to a binding. The receive path only copies into it (counting a drop when it is full); reads copy whole
//! records out. No allocation after creation, no FFI: unit-tested on the host.

use crate::copy::copy;
use crate::error::Result;
use alloc::vec::Vec;
use rawlink_abi::FrameHeader;

/// Default queue size per handle.
pub const DEFAULT_CAPACITY: usize = 1 << 20;

/// Counters of one queue.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RxStats {
    /// Frames queued.
    pub queued: u64,
    /// Frames dropped because the queue was full.
    pub dropped_full: u64,
    /// Frames dropped because their record is larger than the whole queue.
    pub dropped_too_large: u64,
    /// Frames handed to reads.
    pub delivered: u64,
}

/// What [`RxQueue::push`] did with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    Queued,
    /// No room now (counted in `dropped_full`).
    Full,
    /// Larger than the whole queue (counted in `dropped_too_large`).
    TooLarge,
}

/// The ring. Records are laid out exactly as a read returns them ([`FrameHeader`], data, padding), so a read
/// is one or two copies.
#[derive(Debug)]
pub struct RxQueue {
    buf: Vec<u8>,
    /// Offset of the oldest byte.
    head: usize,
    /// Bytes in use.
    len: usize,
    /// Whole records queued.
    records: usize,
    /// Where the next record goes (`head + len`, wrapped; may equal the capacity, read as 0 by the slow
    /// path) and the end of the free bytes that follow it without wrapping: the capacity when the records
    /// do not wrap, else the head. [`RxQueue::push_slice`]'s usual record lies in between and needs no
    /// other check; every other change of `head` or `len` recomputes both ([`RxQueue::resync`]).
    tail: usize,
    limit: usize,
    pub stats: RxStats,
}

impl RxQueue {
    /// A queue of `capacity` bytes (rounded up to whole 8-byte units), allocated now.
    pub fn new(capacity: usize) -> Result<Self> {
        let capacity = capacity.next_multiple_of(FrameHeader::ALIGN).max(FrameHeader::ALIGN);
        let mut buf = Vec::new();
        buf.try_reserve_exact(capacity)?;
        buf.resize(capacity, 0);
        Ok(Self { buf, head: 0, len: 0, records: 0, tail: 0, limit: capacity, stats: RxStats::default() })
    }

    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Frames queued.
    pub fn records(&self) -> usize {
        self.records
    }

    /// Recomputes the write window (`tail`, `limit`) from `head` and `len`.
    fn resync(&mut self) {
        let cap = self.buf.len();
        self.tail = self.wrap(self.head + self.len);
        self.limit = if self.len == cap {
            // Full: no free byte.
            self.tail
        } else if self.tail < self.head {
            self.head
        } else {
            cap
        };
    }

    /// Copies `src` into the ring at logical position `at` (relative to head), wrapping.
    fn put(&mut self, at: usize, src: &[u8]) {
        let cap = self.buf.len();
        let start = self.wrap(self.head + at);
        let first = src.len().min(cap - start);
        let (a, b) = src.split_at(first);
        if let Some(d) = self.buf.get_mut(start..start + first) {
            copy(d, a);
        }
        if let Some(d) = self.buf.get_mut(..b.len()) {
            copy(d, b);
        }
    }

    fn get(&self, at: usize, dst: &mut [u8]) {
        let cap = self.buf.len();
        let start = self.wrap(self.head + at);
        let first = dst.len().min(cap - start);
        let (a, b) = dst.split_at_mut(first);
        if let Some(s) = self.buf.get(start..start + first) {
            copy(a, s);
        }
        let n = b.len();
        if let Some(s) = self.buf.get(..n) {
            copy(b, s);
        }
    }

    /// `pos` (below twice the capacity) as an offset into the ring.
    #[inline]
    fn wrap(&self, pos: usize) -> usize {
        if pos >= self.buf.len() {
            pos - self.buf.len()
        } else {
            pos
        }
    }

    /// [`RxQueue::push`]'s copy of a record that wraps around the end of the ring, piece by piece.
    #[cold]
    fn push_wrapping<'a>(&mut self, record: usize, header: FrameHeader, parts: impl IntoIterator<Item = &'a [u8]>) {
        let mut at = self.len;
        self.put(at, &header.to_bytes());
        at += FrameHeader::LEN;
        let mut left = header.captured_length as usize;
        for p in parts {
            if left == 0 {
                break;
            }
            let take = p.get(..left.min(p.len())).unwrap_or_default();
            self.put(at, take);
            at += take.len();
            left -= take.len();
        }
        // A short gather (fewer bytes than the header promised) leaves zeros, never stale data.
        let pad = record - (at - self.len);
        let zeros = [0u8; 64];
        let mut p = pad;
        while p > 0 {
            let n = p.min(zeros.len());
            self.put(at, zeros.get(..n).unwrap_or_default());
            at += n;
            p -= n;
        }
    }

    /// The record length for `captured` bytes if it fits now; else the drop, counted.
    #[inline]
    fn room(&mut self, captured: usize) -> core::result::Result<usize, Push> {
        let record = FrameHeader::record_len(captured);
        if record > self.buf.len() {
            self.stats.dropped_too_large += 1;
            return Err(Push::TooLarge);
        }
        if record > self.buf.len() - self.len {
            self.stats.dropped_full += 1;
            return Err(Push::Full);
        }
        Ok(record)
    }

    /// Counts a record just written behind the others.
    #[inline]
    fn queued(&mut self, record: usize) -> Push {
        self.len += record;
        self.records += 1;
        self.stats.queued += 1;
        Push::Queued
    }

    /// Queues one frame given as pieces (its MDL fragments), or counts a drop when there is no room.
    #[inline(never)]
    pub fn push<'a>(&mut self, header: FrameHeader, parts: impl IntoIterator<Item = &'a [u8]>) -> Push {
        let captured = header.captured_length as usize;
        let record = match self.room(captured) {
            Ok(r) => r,
            Err(drop) => return drop,
        };
        let start = self.wrap(self.head + self.len);
        if let Some((h, data)) =
            self.buf.get_mut(start..start + record).and_then(|d| d.split_first_chunk_mut::<{ FrameHeader::LEN }>())
        {
            // The whole record is contiguous (the usual case): header, data and padding are written in place.
            // The data's last 8 bytes are zeroed first: the padding (under 8 bytes) lies in them, and the
            // data copied over them next leaves only the padding zero.
            if let Some(tail) = data.last_chunk_mut::<{ FrameHeader::ALIGN }>() {
                *tail = [0; FrameHeader::ALIGN];
            }
            *h = header.to_bytes();
            let mut left = data.get_mut(..captured).unwrap_or_default();
            for p in parts {
                if left.is_empty() {
                    break;
                }
                copy(left, p);
                left = left.get_mut(p.len()..).unwrap_or_default();
            }
            // A short gather (fewer bytes than the header promised) leaves zeros, never stale data.
            if !left.is_empty() {
                left.fill(0);
            }
        } else {
            self.push_wrapping(record, header, parts);
        }
        let pushed = self.queued(record);
        self.resync();
        pushed
    }

    /// [`RxQueue::push`] of a frame whose bytes are one slice (the usual frame): the same record, with no
    /// walk over pieces. A record that fits the write window is written there with one check; anything
    /// else (a full queue, a record too large, one that wraps) takes [`RxQueue::push_slice_slow`].
    #[inline]
    pub fn push_slice(&mut self, header: FrameHeader, bytes: &[u8]) -> Push {
        let captured = header.captured_length as usize;
        let record = FrameHeader::record_len(captured);
        let start = self.tail;
        // `limit >= tail` always (see the fields), so the difference does not wrap.
        if record > self.limit.wrapping_sub(start) {
            return self.push_slice_slow(header, bytes);
        }
        let Some(r) = self.buf.get_mut(start..start + record) else { return self.push_slice_slow(header, bytes) };
        Self::write_record(r, header, bytes);
        self.tail = start + record;
        self.queued(record)
    }

    /// [`RxQueue::push_slice`] outside the write window: the drop, counted, or the record written where
    /// `head + len` says, wrapping if it must; then the window is recomputed.
    #[cold]
    #[inline(never)]
    fn push_slice_slow(&mut self, header: FrameHeader, bytes: &[u8]) -> Push {
        let captured = header.captured_length as usize;
        let record = match self.room(captured) {
            Ok(r) => r,
            Err(drop) => return drop,
        };
        let start = self.wrap(self.head + self.len);
        match self.buf.get_mut(start..start + record) {
            Some(r) => Self::write_record(r, header, bytes),
            None => self.push_wrapping(record, header, [bytes]),
        }
        let pushed = self.queued(record);
        self.resync();
        pushed
    }

    /// Writes a whole record (`r`: exactly its bytes) of the frame `bytes`: the header, the data, and zeros
    /// after the data up to the record's end.
    #[inline(always)]
    fn write_record(r: &mut [u8], header: FrameHeader, bytes: &[u8]) {
        let captured = header.captured_length as usize;
        // The last 8 bytes zeroed first (the padding, under 8 bytes, lies in them), then the header, then
        // the data over the rest.
        if let Some(tail) = r.last_chunk_mut::<{ FrameHeader::ALIGN }>() {
            *tail = [0; FrameHeader::ALIGN];
        }
        let (h, data) = r.split_at_mut(FrameHeader::LEN.min(r.len()));
        if let Some(h) = h.first_chunk_mut::<{ FrameHeader::LEN }>() {
            *h = header.to_bytes();
        }
        let data = data.get_mut(..captured).unwrap_or_default();
        copy(data, bytes);
        // A slice shorter than the header says leaves zeros, never stale data.
        if bytes.len() < data.len() {
            if let Some(rest) = data.get_mut(bytes.len()..) {
                rest.fill(0);
            }
        }
    }

    /// Takes over `old`'s records (oldest first) and counters, when they all fit; `old` is left empty.
    /// Returns false, changing nothing, when they do not.
    pub fn adopt(&mut self, old: &mut RxQueue) -> bool {
        if old.len > self.buf.len() - self.len {
            return false;
        }
        let mut at = self.len;
        let mut chunk = [0u8; 256];
        let mut done = 0;
        while done < old.len {
            let n = (old.len - done).min(chunk.len());
            let c = chunk.get_mut(..n).unwrap_or_default();
            old.get(done, c);
            self.put(at, c);
            at += n;
            done += n;
        }
        self.len += old.len;
        self.records += old.records;
        self.stats = old.stats;
        (old.head, old.len, old.records) = (0, 0, 0);
        self.resync();
        old.resync();
        true
    }

    /// Moves as many whole records as fit into `out`; returns the bytes written.
    pub fn pop_into(&mut self, out: &mut [u8]) -> usize {
        // Only the records' lengths are read here; their bytes then go out in one copy (two when they wrap).
        // When everything queued fits, no length needs reading.
        let (mut total, mut records) = if self.len <= out.len() { (self.len, self.records) } else { (0, 0) };
        while records < self.records {
            let Some(record) = self.record_len_at(total) else { break };
            if record > out.len() - total {
                break;
            }
            total += record;
            records += 1;
        }
        if let Some(dst) = out.get_mut(..total) {
            self.get(0, dst);
        }
        self.head = self.wrap(self.head + total);
        self.len -= total;
        self.records -= records;
        self.stats.delivered += records as u64;
        self.resync();
        total
    }

    /// The length of the record starting `at` bytes past the head (`at` is a record boundary).
    #[inline]
    fn record_len_at(&self, at: usize) -> Option<usize> {
        // Records start 8-aligned and the capacity is a multiple of 8, so the header's first 4 bytes (the
        // captured length) never wrap.
        let start = self.wrap(self.head + at);
        let b = self.buf.get(start..).and_then(|b| b.first_chunk::<4>())?;
        Some(FrameHeader::record_len(u32::from_le_bytes(*b) as usize))
    }

    /// Moves the oldest frame's bytes alone (no header) into `out` — the one-frame-per-read form of
    /// NDISPROT handles. `None` when empty; `Err(needed)` when `out` is too small (nothing is lost).
    pub fn pop_frame(&mut self, out: &mut [u8]) -> Option<core::result::Result<usize, usize>> {
        if self.records == 0 {
            return None;
        }
        let mut h = [0u8; FrameHeader::LEN];
        self.get(0, &mut h);
        let header = FrameHeader::parse(&h).ok()?;
        let len = header.captured_length as usize;
        let Some(dst) = out.get_mut(..len) else { return Some(Err(len)) };
        self.get(FrameHeader::LEN, dst);
        let record = FrameHeader::record_len(len);
        self.head = (self.head + record) % self.buf.len();
        self.len -= record;
        self.records -= 1;
        self.stats.delivered += 1;
        self.resync();
        Some(Ok(len))
    }

    /// The size of the oldest record, if any (a read shorter than this can return nothing).
    pub fn next_record_len(&self) -> Option<usize> {
        if self.records == 0 {
            return None;
        }
        let mut h = [0u8; FrameHeader::LEN];
        self.get(0, &mut h);
        FrameHeader::parse(&h).ok().map(|h| FrameHeader::record_len(h.captured_length as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rawlink_abi::Frames;
    use std::vec;

    fn hdr(len: usize, ts: u64) -> FrameHeader {
        // CAST: test frames are small.
        FrameHeader {
            captured_length: len as u32,
            original_length: len as u32,
            timestamp: ts,
            flags: 0,
            ..Default::default()
        }
    }

    #[test]
    fn frames_come_out_in_order_byte_for_byte_across_fragments() {
        let mut q = RxQueue::new(4096).unwrap();
        let a: Vec<u8> = (0..60).collect();
        let b: Vec<u8> = (100..175).collect();
        assert_eq!(q.push(hdr(60, 1), [&a[..10], &a[10..]]), Push::Queued);
        assert_eq!(q.push(hdr(75, 2), [&b[..]]), Push::Queued);
        let mut out = vec![0u8; 4096];
        let n = q.pop_into(&mut out);
        let got: Vec<_> = Frames::new(&out[..n]).map(|(h, d)| (h.timestamp, d.to_vec())).collect();
        assert_eq!(got, [(1, a), (2, b)]);
        assert!(q.is_empty());
        assert_eq!(q.stats, RxStats { queued: 2, dropped_full: 0, dropped_too_large: 0, delivered: 2 });
    }

    #[test]
    fn push_slice_writes_the_records_push_writes() {
        // Two queues fed the same frames, one through each method: truncated, short and wrapping records
        // among them, over stale bytes of earlier records.
        let (mut a, mut b) = (RxQueue::new(1000).unwrap(), RxQueue::new(1000).unwrap());
        let frame: Vec<u8> = (0..=255).collect();
        let (mut out_a, mut out_b) = (vec![0u8; 300], vec![0u8; 300]);
        for i in 0..300usize {
            let len = (i * 37) % 220;
            let captured = if i % 3 == 0 { len / 2 } else { len };
            let bytes = &frame[..if i % 5 == 0 { captured.saturating_sub(3) } else { len }];
            let h = FrameHeader {
                captured_length: captured as u32,
                original_length: len as u32,
                timestamp: i as u64,
                flags: 1,
                segment_count: 2,
                segment_size: 3,
            };
            assert_eq!(a.push(h, [bytes]), b.push_slice(h, bytes), "frame {i}");
            if i % 4 == 0 {
                let n = a.pop_into(&mut out_a);
                assert_eq!(b.pop_into(&mut out_b), n);
                assert_eq!(out_a[..n], out_b[..n], "after frame {i}");
            }
        }
        assert_eq!(a.stats, b.stats);
        assert!(a.stats.dropped_full > 0 && a.stats.dropped_too_large == 0, "{:?}", a.stats);
    }

    #[test]
    fn a_full_queue_drops_and_counts_and_keeps_what_it_has() {
        let mut q = RxQueue::new(200).unwrap();
        let f = [7u8; 60];
        assert_eq!(q.push(hdr(60, 1), [&f[..]]), Push::Queued);
        assert_eq!(q.push(hdr(60, 2), [&f[..]]), Push::Queued);
        assert_eq!(q.push(hdr(60, 3), [&f[..]]), Push::Full);
        assert_eq!(q.push(hdr(300, 3), [&[0u8; 300][..]]), Push::TooLarge);
        assert_eq!((q.stats.dropped_full, q.stats.dropped_too_large), (1, 1));
        assert_eq!(q.records(), 2);
    }

    #[test]
    fn a_bigger_or_smaller_queue_takes_over_what_fits() {
        let mut q = RxQueue::new(256).unwrap();
        // Wrap the ring first so the records straddle its end.
        for i in 0..5u8 {
            assert_eq!(q.push(hdr(50, u64::from(i)), [&[i; 50][..]]), Push::Queued);
            let mut out = [0u8; 80];
            if i < 3 {
                assert_eq!(q.pop_into(&mut out), 80);
            }
        }
        let mut small = RxQueue::new(80).unwrap();
        assert!(!small.adopt(&mut q), "two records do not fit 80 bytes");
        assert_eq!(q.records(), 2);
        let mut big = RxQueue::new(4096).unwrap();
        assert!(big.adopt(&mut q));
        assert_eq!((q.records(), big.records(), big.stats.queued, big.stats.delivered), (0, 2, 5, 3));
        let mut out = vec![0u8; 4096];
        let n = big.pop_into(&mut out);
        let got: Vec<_> = Frames::new(&out[..n]).map(|(h, d)| (h.timestamp, d[0])).collect();
        assert_eq!(got, [(3, 3), (4, 4)]);
    }

    #[test]
    fn reads_take_whole_records_only_and_wrap_around() {
        let mut q = RxQueue::new(256).unwrap();
        let mut out = vec![0u8; 256];
        for round in 0..20u8 {
            let f = [round; 50];
            assert_eq!(q.push(hdr(50, u64::from(round)), [&f[..]]), Push::Queued);
            assert_eq!(q.push(hdr(50, u64::from(round)), [&f[..]]), Push::Queued);
            // Room for one record of 80 bytes but not two.
            assert_eq!(q.next_record_len(), Some(80));
            let n = q.pop_into(&mut out[..100]);
            assert_eq!(n, 80);
            let n2 = q.pop_into(&mut out[80..]);
            assert_eq!(n2, 80);
            for (h, d) in Frames::new(&out[..160]) {
                assert_eq!(h.timestamp, u64::from(round));
                assert!(d.iter().all(|&b| b == round));
            }
        }
        assert!(q.is_empty());
    }

    #[test]
    fn one_frame_at_a_time_without_headers() {
        let mut q = RxQueue::new(1024).unwrap();
        let (a, b) = ([1u8; 70], [2u8; 20]);
        assert_eq!(q.push(hdr(70, 0), [&a[..]]), Push::Queued);
        assert_eq!(q.push(hdr(20, 0), [&b[..]]), Push::Queued);
        let mut out = [0u8; 64];
        assert_eq!(q.pop_frame(&mut out), Some(Err(70)), "too small: nothing lost");
        let mut out = [0u8; 100];
        assert_eq!(q.pop_frame(&mut out), Some(Ok(70)));
        assert_eq!(&out[..70], &a[..]);
        assert_eq!(q.pop_frame(&mut out), Some(Ok(20)));
        assert_eq!(&out[..20], &b[..]);
        assert_eq!(q.pop_frame(&mut out), None);
    }

    #[test]
    fn short_gathers_are_zero_filled() {
        let mut q = RxQueue::new(256).unwrap();
        assert_eq!(q.push(hdr(10, 0), [&[1u8, 2][..]]), Push::Queued);
        let mut out = vec![0xEE; 64];
        let n = q.pop_into(&mut out);
        let (_, d) = Frames::new(&out[..n]).next().unwrap();
        assert_eq!(d, &[1, 2, 0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn padding_and_short_gathers_are_zero_over_stale_bytes_contiguous_or_wrapping() {
        let mut q = RxQueue::new(256).unwrap();
        let mut out = vec![0u8; 256];
        // Walk the record start round the ring so records land both in one piece and across its end.
        for round in 0..40u8 {
            assert_eq!(q.push(hdr(100, 0), [&[0xAB; 100][..]]), Push::Queued);
            assert_eq!(q.pop_into(&mut out), 128);
            // 13 bytes promised, 5 given: 8 zero bytes of data, then 4 of padding.
            let len = 13 + usize::from(round % 3);
            assert_eq!(q.push(hdr(len, 1), [&[1u8, 2][..], &[3, 4, 5][..]]), Push::Queued);
            let n = q.pop_into(&mut out);
            assert_eq!(n, FrameHeader::record_len(len));
            let (_, d) = Frames::new(&out[..n]).next().unwrap();
            assert_eq!(&d[..5], &[1, 2, 3, 4, 5]);
            assert!(d[5..].iter().all(|&b| b == 0), "round {round}");
            assert!(out[FrameHeader::LEN + len..n].iter().all(|&b| b == 0), "padding, round {round}");
        }
    }

    #[test]
    fn random_pushes_and_reads_match_a_model_queue_and_keep_the_write_window_exact() {
        // A model (whole frames in a VecDeque, the same room rule) against the queue, over a long random
        // mix of one-slice and piecewise pushes, batched and one-frame reads, on capacities that make
        // records wrap, fill the ring to the byte and end exactly at its end.
        use std::collections::VecDeque;
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let frame: Vec<u8> = (0..=255u8).cycle().take(600).collect();
        for cap in [64, 200, 256, 1000, 4096] {
            let mut q = RxQueue::new(cap).unwrap();
            let mut model: VecDeque<(u64, Vec<u8>)> = VecDeque::new();
            let (mut used, mut ts) = (0usize, 0u64);
            for step in 0..20_000 {
                let len = match rnd(10) {
                    0 => 0,
                    1 => cap.saturating_sub(FrameHeader::LEN + rnd(16)),
                    _ => rnd(300),
                };
                let len = len.min(frame.len() - 8);
                ts += 1;
                let h = FrameHeader {
                    captured_length: len as u32,
                    original_length: len as u32,
                    timestamp: ts,
                    ..Default::default()
                };
                let bytes = &frame[step % 7..step % 7 + len];
                let record = FrameHeader::record_len(len);
                let expect = if record > cap {
                    Push::TooLarge
                } else if record > cap - used {
                    Push::Full
                } else {
                    Push::Queued
                };
                let got = if rnd(4) == 0 {
                    let cut = rnd(len + 1);
                    q.push(h, [&bytes[..cut], &bytes[cut..]])
                } else {
                    q.push_slice(h, bytes)
                };
                assert_eq!(got, expect, "cap {cap} step {step} len {len}");
                if got == Push::Queued {
                    model.push_back((ts, bytes.to_vec()));
                    used += record;
                }
                match rnd(5) {
                    0 => {
                        let mut out = vec![0u8; rnd(cap + 64)];
                        let n = q.pop_into(&mut out);
                        for (h, d) in Frames::new(&out[..n]) {
                            let (t, m) = model.pop_front().unwrap();
                            assert_eq!((h.timestamp, d), (t, &m[..]), "cap {cap} step {step}");
                            used -= FrameHeader::record_len(m.len());
                        }
                    }
                    1 => {
                        let mut out = vec![0u8; 600];
                        if let Some(Ok(n)) = q.pop_frame(&mut out) {
                            let (_, m) = model.pop_front().unwrap();
                            assert_eq!(&out[..n], &m[..], "cap {cap} step {step}");
                            used -= FrameHeader::record_len(m.len());
                        }
                    }
                    _ => {}
                }
                assert_eq!((q.len(), q.records()), (used, model.len()), "cap {cap} step {step}");
                assert_eq!(q.tail % q.capacity(), (q.head + q.len) % q.capacity(), "cap {cap} step {step}");
                assert!(q.tail <= q.limit && q.limit <= q.capacity(), "cap {cap} step {step}");
            }
            assert!(q.stats.queued > 100 && q.stats.dropped_full > 0, "cap {cap}: {:?}", q.stats);
        }
    }
}

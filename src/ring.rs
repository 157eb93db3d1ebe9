//! The producer side of a mapped receive ring (see `rawlink_abi::ring`): which slot the next frame goes to,
//! when the ring is full, and whether what the process wrote as its consumer index is acceptable. Pure
//! logic, no FFI: the handle's receive path feeds it the consumer index it read (once per batch) and writes
//! the slots it is given.

use rawlink_abi::ring::{consumer_valid, free_slots, RingLayout};

/// The driver's own state of one ring. Only this state decides where the driver writes: the producer index
/// is the driver's, and a consumer index is used only after it passed [`consumer_valid`].
#[derive(Debug, Clone)]
pub struct Producer {
    pub layout: RingLayout,
    /// The next index to produce (free-running).
    producer: u32,
    /// The last consumer index accepted.
    seen: u32,
    /// Free slots in the current batch; `None` outside a batch.
    free: Option<u32>,
    /// Frames produced in the current batch.
    batch: u32,
    /// The process wrote an invalid consumer index: nothing is written any more.
    pub broken: bool,
    /// Frames written into the ring, and frames dropped because it was full.
    pub written: u64,
    pub dropped: u64,
}

impl Producer {
    pub fn new(layout: RingLayout) -> Self {
        Self { layout, producer: 0, seen: 0, free: None, batch: 0, broken: false, written: 0, dropped: 0 }
    }

    /// Whether a batch is open ([`Producer::begin`] ran since the last [`Producer::end`]).
    pub fn in_batch(&self) -> bool {
        self.free.is_some()
    }

    /// Opens a batch with the consumer index read from the ring; an invalid one breaks the ring (false).
    pub fn begin(&mut self, consumer: u32) -> bool {
        if self.broken {
            return false;
        }
        if !consumer_valid(self.seen, consumer, self.producer) {
            self.broken = true;
            return false;
        }
        self.seen = consumer;
        self.free = Some(free_slots(&self.layout, consumer, self.producer));
        self.batch = 0;
        true
    }

    /// The offset of the slot for the next frame of the batch, or `None` (counted as a drop) when the ring
    /// is full, broken or no batch is open.
    pub fn claim(&mut self) -> Option<usize> {
        match self.free {
            Some(f) if f > 0 && !self.broken => {
                self.free = Some(f - 1);
                let at = self.layout.slot_offset(self.producer);
                self.producer = self.producer.wrapping_add(1);
                self.batch += 1;
                self.written += 1;
                Some(at)
            }
            _ => {
                self.dropped += 1;
                None
            }
        }
    }

    /// Closes the batch: the producer index to publish if frames were produced in it.
    pub fn end(&mut self) -> Option<u32> {
        self.free = None;
        (core::mem::take(&mut self.batch) != 0).then_some(self.producer)
    }

    /// Whether the ring holds frames, judged by a consumer index the process wrote (validated like
    /// [`Producer::begin`]'s; an invalid one breaks the ring and reads as `None`).
    pub fn holds_frames(&mut self, consumer: u32) -> Option<bool> {
        if self.broken || !consumer_valid(self.seen, consumer, self.producer) {
            self.broken = true;
            return None;
        }
        self.seen = consumer;
        Some(consumer != self.producer)
    }

    /// Frames produced and not yet consumed, as last seen.
    pub fn pending(&self) -> u32 {
        self.producer.wrapping_sub(self.seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rawlink_abi::ring::DATA_OFFSET;

    fn layout() -> RingLayout {
        RingLayout::with_slots(64, 64).unwrap()
    }

    #[test]
    fn slots_fill_in_order_and_a_full_ring_drops() {
        let l = layout();
        let mut p = Producer::new(l);
        assert_eq!(p.claim(), None, "no batch open");
        assert_eq!(p.dropped, 1);
        assert!(p.begin(0));
        let n = l.slot_count as usize;
        for i in 0..n {
            assert_eq!(p.claim(), Some(DATA_OFFSET + i * 64));
        }
        assert_eq!(p.claim(), None);
        assert_eq!(p.end(), Some(l.slot_count));
        assert_eq!(p.end(), None, "nothing produced in an empty batch");
        // The consumer takes 3: three more fit, at the start again.
        assert!(p.begin(3));
        assert_eq!(p.claim(), Some(DATA_OFFSET));
        assert_eq!(p.pending(), l.slot_count - 3 + 1);
        assert_eq!((p.written, p.dropped), (n as u64 + 1, 2));
    }

    #[test]
    fn hostile_consumer_indices_break_the_ring_for_good() {
        let mut p = Producer::new(layout());
        assert!(p.begin(0));
        for _ in 0..5 {
            p.claim();
        }
        p.end();
        assert!(!p.begin(6), "past the producer");
        assert!(p.broken);
        assert_eq!(p.claim(), None, "a broken ring is never written");
        assert!(!p.begin(5), "stays broken");
        let mut q = Producer::new(layout());
        assert!(q.begin(0));
        q.claim();
        q.claim();
        q.end();
        assert!(q.begin(2));
        assert_eq!(q.holds_frames(2), Some(false));
        assert!(!q.begin(1), "backwards");
        assert_eq!(q.holds_frames(2), None);
    }

    #[test]
    fn indices_wrap() {
        let l = layout();
        let mut p = Producer::new(l);
        p.producer = u32::MAX - 1;
        p.seen = u32::MAX - 1;
        assert!(p.begin(u32::MAX - 1));
        let a = p.claim();
        let b = p.claim();
        let c = p.claim();
        assert_eq!(p.end(), Some(1));
        assert_eq!(a, Some(l.slot_offset(u32::MAX - 1)));
        assert_eq!(b, Some(l.slot_offset(u32::MAX)));
        assert_eq!(c, Some(DATA_OFFSET));
        assert!(p.begin(0), "consumer across the wrap");
        assert_eq!(p.pending(), 1);
    }
}

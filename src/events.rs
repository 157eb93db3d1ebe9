//! A handle's adapter events (link up/down, power, removal) waiting for an IOCTL_RAWLINK_WAIT_EVENT. Pure
//! logic: a bounded FIFO that never allocates after creation and reports when it had to drop.

use rawlink_abi::{event, Event};

/// Events kept per handle while no request waits.
pub const CAPACITY: usize = 64;

/// The FIFO. When full, the oldest events are dropped and the next one taken is an OVERFLOW event.
#[derive(Debug, Clone)]
pub struct EventQueue {
    ring: [Event; CAPACITY],
    head: usize,
    len: usize,
    lost: u64,
}

impl Default for EventQueue {
    fn default() -> Self {
        Self { ring: [Event { kind: 0, value: 0 }; CAPACITY], head: 0, len: 0, lost: 0 }
    }
}

impl EventQueue {
    /// Appends an event, dropping the oldest when full.
    pub fn push(&mut self, e: Event) {
        if self.len == CAPACITY {
            self.head = (self.head + 1) % CAPACITY;
            self.len -= 1;
            self.lost += 1;
        }
        if let Some(slot) = self.ring.get_mut((self.head + self.len) % CAPACITY) {
            *slot = e;
        }
        self.len += 1;
    }

    /// The next event: an OVERFLOW (with the number lost) first if any were dropped.
    pub fn pop(&mut self) -> Option<Event> {
        if self.lost != 0 {
            return Some(Event { kind: event::OVERFLOW, value: core::mem::take(&mut self.lost) });
        }
        if self.len == 0 {
            return None;
        }
        let e = self.ring.get(self.head).copied();
        self.head = (self.head + 1) % CAPACITY;
        self.len -= 1;
        e
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0 && self.lost == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_out_in_order_and_overflow_is_reported() {
        let mut q = EventQueue::default();
        assert!(q.is_empty());
        q.push(Event { kind: event::LINK_DOWN, value: 0 });
        q.push(Event { kind: event::LINK_UP, value: 10 });
        assert_eq!(q.pop(), Some(Event { kind: event::LINK_DOWN, value: 0 }));
        assert_eq!(q.pop(), Some(Event { kind: event::LINK_UP, value: 10 }));
        assert_eq!(q.pop(), None);
        for i in 0..(CAPACITY as u64 + 3) {
            q.push(Event { kind: event::LINK_UP, value: i });
        }
        assert_eq!(q.pop(), Some(Event { kind: event::OVERFLOW, value: 3 }));
        assert_eq!(q.pop().map(|e| e.value), Some(3), "the oldest three went");
        let rest = core::iter::from_fn(|| q.pop()).count();
        assert_eq!(rest, CAPACITY - 1);
        assert!(q.is_empty());
    }
}

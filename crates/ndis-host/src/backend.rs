//! Where a virtual adapter's frames go and come from.
//!
//! A [`Backend`] is the far side of an adapter's cable: what the driver sends through the adapter is
//! [`Backend::transmit`]ted; what arrives is collected with [`Backend::poll`] and indicated to the driver.
//! Backends: [`Wire`] (an in-process cable between two adapters, or an adapter and a test acting as the
//! peer) and, on Linux, a TAP device (frames reach the real network stack, e.g. in a network namespace).

use std::collections::VecDeque;
use std::fmt::Debug;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

#[cfg(target_os = "linux")]
pub mod tap;

/// The far side of an adapter.
pub trait Backend: Send + Sync + Debug {
    /// Carries one frame the adapter transmitted.
    fn transmit(&self, frame: &[u8]);
    /// Takes the frames that arrived for the adapter since the last call (never blocks).
    fn poll(&self) -> Vec<Vec<u8>>;
    /// Waits at most `timeout` for a frame to arrive (the receive pump's idle wait), returning early when one
    /// does. The default just sleeps; a backend that can be woken (a condition variable, `poll(2)` on a file
    /// descriptor) returns as soon as a frame is there, so an idle pump adds no latency.
    fn wait(&self, timeout: Duration) {
        std::thread::sleep(timeout);
    }
}

/// Frames in flight in one direction of a wire.
#[derive(Debug, Default)]
struct Lane {
    frames: Mutex<VecDeque<Vec<u8>>>,
    /// Signalled on every push.
    arrived: Condvar,
}

impl Lane {
    fn push(&self, f: &[u8]) {
        self.frames.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push_back(f.to_vec());
        self.arrived.notify_all();
    }
    fn wait(&self, timeout: Duration) {
        let q = self.frames.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if q.is_empty() {
            let _ = self.arrived.wait_timeout(q, timeout);
        }
    }
    fn drain(&self) -> Vec<Vec<u8>> {
        self.frames.lock().unwrap_or_else(std::sync::PoisonError::into_inner).drain(..).collect()
    }
}

/// One end of an in-process cable: what one end transmits, the other end polls.
#[derive(Debug, Clone)]
pub struct Wire {
    tx: Arc<Lane>,
    rx: Arc<Lane>,
}

impl Wire {
    /// A cable with two ends.
    pub fn pair() -> (Wire, Wire) {
        let (a, b) = (Arc::new(Lane::default()), Arc::new(Lane::default()));
        (Wire { tx: Arc::clone(&a), rx: Arc::clone(&b) }, Wire { tx: b, rx: a })
    }
}

impl Backend for Wire {
    fn transmit(&self, frame: &[u8]) {
        self.tx.push(frame);
    }
    fn poll(&self) -> Vec<Vec<u8>> {
        self.rx.drain()
    }
    fn wait(&self, timeout: Duration) {
        self.rx.wait(timeout);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wire_carries_frames_both_ways_in_order() {
        let (a, b) = Wire::pair();
        a.transmit(&[1]);
        a.transmit(&[2, 2]);
        b.transmit(&[3]);
        assert_eq!(b.poll(), [vec![1], vec![2, 2]]);
        assert!(b.poll().is_empty());
        assert_eq!(a.poll(), [vec![3]]);
    }

    #[test]
    fn a_wire_wakes_its_waiting_end_when_a_frame_arrives() {
        let (a, b) = Wire::pair();
        let start = std::time::Instant::now();
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(20));
                a.transmit(&[7]);
            });
            b.wait(Duration::from_secs(30));
        });
        assert!(start.elapsed() < Duration::from_secs(20), "woken by the frame, not the timeout");
        assert_eq!(b.poll(), [vec![7]]);
        // Nothing queued: the wait ends at its timeout.
        b.wait(Duration::from_millis(1));
    }
}

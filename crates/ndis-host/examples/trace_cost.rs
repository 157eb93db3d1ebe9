//! What one traced call costs the machine: an NdisSendNetBufferLists-shaped event (four arguments and a
//! status result) recorded into a ring, under a lock as `Inner::trace_call` takes it, over and over.
//!
//! `cargo run --release -p ndis-host --example trace_cost [CALLS]` prints nanoseconds per call. Before the
//! trace kept raw events (commit 40f135f), the same loop formatted the arguments into Strings at the call
//! site and pushed a heap-allocated event: see the README's ndis-host section for both figures.

use ndis_host::trace::{Arg, Direction, TraceRing};
use std::time::Instant;

fn main() {
    let calls: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2_000_000);
    let ring = std::sync::Mutex::new(TraceRing::new(4096, None));
    let start = Instant::now();
    for i in 0..calls {
        let mut t = ring.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let seq = t.push(
            Direction::DriverToHost,
            Arg::Word("NdisSendNetBufferLists"),
            2,
            &[
                ("NdisBindingHandle", Arg::Hex(0x7f00_1234_0000 + i)),
                ("NetBufferList", Arg::Hex(0x7f00_5678_0000 + i)),
                ("PortNumber", Arg::Dec(0)),
                ("SendFlags", Arg::Hex(0x8)),
            ],
        );
        t.complete(seq, Arg::Status(0));
    }
    let elapsed = start.elapsed();
    let t = ring.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    // Reading formats: the cost moves here, paid only for what is read.
    let read = Instant::now();
    let events = t.events();
    let read = read.elapsed();
    println!(
        "{:.1} ns per traced call ({calls} calls into a ring of 4096); formatting the {} kept events on read: {:.1} ns each",
        elapsed.as_secs_f64() * 1e9 / calls as f64,
        events.len(),
        read.as_secs_f64() * 1e9 / events.len().max(1) as f64,
    );
}

//! A structured record of every call across the driver boundary.

use std::fmt;

/// Which way a call crossed the boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The driver called a kernel/NDIS export.
    DriverToHost,
    /// The host called into the driver (DriverEntry, a ProtocolXxx handler, a dispatch routine ...).
    HostToDriver,
}

/// One call, with its arguments decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEvent {
    pub seq: u64,
    pub direction: Direction,
    pub name: String,
    pub args: Vec<(&'static str, String)>,
    /// The result as the callee returned it (`None` until it returned, or for void functions).
    pub result: Option<String>,
    /// The IRQL at the call.
    pub irql: u8,
}

impl TraceEvent {
    /// The value of argument `name`, if recorded.
    pub fn arg(&self, name: &str) -> Option<&str> {
        self.args.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let arrow = match self.direction {
            Direction::DriverToHost => "driver -> host",
            Direction::HostToDriver => "host -> driver",
        };
        write!(f, "#{:<5} [irql {}] {arrow}  {}(", self.seq, self.irql, self.name)?;
        for (i, (n, v)) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{n}={v}")?;
        }
        f.write_str(")")?;
        if let Some(r) = &self.result {
            write!(f, " = {r}")?;
        }
        Ok(())
    }
}

/// Formats an NTSTATUS/NDIS_STATUS with its name when known.
pub fn status(s: i32) -> String {
    // CAST: statuses are printed as the unsigned hex the docs use.
    let u = s as u32;
    let name = match u {
        0 => "STATUS_SUCCESS",
        0x103 => "STATUS_PENDING",
        0xC000_0001 => "STATUS_UNSUCCESSFUL",
        0xC000_000D => "STATUS_INVALID_PARAMETER",
        0xC000_0010 => "STATUS_INVALID_DEVICE_REQUEST",
        0xC000_0035 => "STATUS_OBJECT_NAME_COLLISION",
        0xC000_009A => "STATUS_INSUFFICIENT_RESOURCES",
        0xC000_00BB => "STATUS_NOT_SUPPORTED",
        0xC000_0120 => "STATUS_CANCELLED",
        0xC001_0004 => "NDIS_STATUS_BAD_VERSION",
        0xC001_0005 => "NDIS_STATUS_BAD_CHARACTERISTICS",
        0xC001_0019 => "NDIS_STATUS_UNSUPPORTED_MEDIA",
        _ => return format!("{u:#010x}"),
    };
    format!("{name} ({u:#x})")
}

/// How many trace events [`TraceRing`] keeps by default: the newest are kept, the oldest dropped.
pub const TRACE_KEPT: usize = 1 << 18;

/// The trace of a machine: the newest `capacity` events in a ring (a run of days keeps a bounded number),
/// optionally every event written to a file as well, one line per call and one per result.
#[derive(Debug)]
pub struct TraceRing {
    events: std::collections::VecDeque<TraceEvent>,
    capacity: usize,
    /// Events dropped from the front to keep `capacity`.
    dropped: u64,
    file: Option<std::io::BufWriter<std::fs::File>>,
}

impl TraceRing {
    /// A ring of `capacity` events (at least 1), writing to `file` too when given.
    pub fn new(capacity: usize, file: Option<std::fs::File>) -> Self {
        Self {
            events: std::collections::VecDeque::new(),
            capacity: capacity.max(1),
            dropped: 0,
            file: file.map(std::io::BufWriter::new),
        }
    }

    /// Adds an event (its `seq` must be above every earlier one's).
    pub fn push(&mut self, ev: TraceEvent) {
        if let Some(f) = &mut self.file {
            // A trace file that cannot be written does not stop the machine; the ring still has the events.
            let _ = std::io::Write::write_fmt(f, format_args!("{ev}\n"));
        }
        if self.events.len() == self.capacity {
            self.events.pop_front();
            self.dropped += 1;
        }
        self.events.push_back(ev);
    }

    /// Records the result of event `seq` (if it is still kept) and writes it to the file.
    pub fn complete(&mut self, seq: u64, result: String) {
        if let Some(f) = &mut self.file {
            let _ = std::io::Write::write_fmt(f, format_args!("#{seq:<5} -> {result}\n"));
        }
        let Some(front) = self.events.front().map(|e| e.seq) else { return };
        // Events are pushed in seq order, but two processors may interleave between taking a seq and pushing.
        let guess = usize::try_from(seq.saturating_sub(front)).unwrap_or(usize::MAX);
        let at = match self.events.get(guess) {
            Some(e) if e.seq == seq => Some(guess),
            _ => self.events.iter().rposition(|e| e.seq == seq),
        };
        if let Some(ev) = at.and_then(|i| self.events.get_mut(i)) {
            ev.result = Some(result);
        }
    }

    /// The events kept, oldest first.
    pub fn events(&self) -> Vec<TraceEvent> {
        self.events.iter().cloned().collect()
    }

    /// How many events are kept.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether no event is kept.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// How many events were dropped to keep the ring's capacity.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Writes what is buffered to the trace file.
    pub fn flush(&mut self) {
        if let Some(f) = &mut self.file {
            let _ = std::io::Write::flush(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: u64) -> TraceEvent {
        TraceEvent { seq, direction: Direction::DriverToHost, name: "X".into(), args: vec![], result: None, irql: 0 }
    }

    #[test]
    fn the_ring_keeps_the_newest_events_and_counts_the_dropped() {
        let mut r = TraceRing::new(3, None);
        for s in 0..10 {
            r.push(ev(s));
            r.complete(s, format!("r{s}"));
        }
        assert_eq!(r.len(), 3);
        assert_eq!(r.dropped(), 7);
        let kept: Vec<(u64, Option<String>)> = r.events().into_iter().map(|e| (e.seq, e.result)).collect();
        assert_eq!(kept, [(7, Some("r7".into())), (8, Some("r8".into())), (9, Some("r9".into()))]);
        // A result for an event already dropped changes nothing.
        r.complete(2, "late".into());
        assert!(r.events().iter().all(|e| e.result.as_deref() != Some("late")));
    }

    #[test]
    fn a_trace_file_gets_every_call_and_result() {
        let path = std::env::temp_dir().join(format!("ndis-host-trace-{}.txt", std::process::id()));
        let mut r = TraceRing::new(1, Some(std::fs::File::create(&path).expect("file")));
        r.push(ev(0));
        r.complete(0, "done".into());
        r.push(ev(1));
        r.flush();
        let text = std::fs::read_to_string(&path).expect("read");
        let _ = std::fs::remove_file(&path);
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.contains("-> done"));
        assert_eq!(r.len(), 1);
    }
}

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

/// One argument or result as a call site records it: a raw value, formatted only when the trace is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg<'a> {
    /// An address, handle or flag word: `0x1f`.
    Hex(u64),
    /// A count or length: `31`.
    Dec(u64),
    /// A signed number: `-1`.
    Int(i64),
    /// `true` / `false`.
    Bool(bool),
    /// An NTSTATUS / NDIS_STATUS, with its name when known (see [`status`]).
    Status(i32),
    /// A pool tag as WinDbg prints it (`RwLk`).
    Tag(u32),
    /// A word the host chose (`NULL`, `TRUE`, `returned`).
    Word(&'static str),
    /// Text from the driver (a name, a debug message): copied into the event's small payload, cut to fit.
    Text(&'a str),
    /// An IRP's final IoStatus (Status, Information).
    IoStatus(i32, u64),
    /// An NDIS version `(major << 16) | minor`: `6.30`.
    Version(u32),
    /// A LUID (HighPart, LowPart): `0:20`.
    Luid(i32, u32),
}

impl fmt::Display for Arg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Arg::Hex(v) => write!(f, "{v:#x}"),
            Arg::Dec(v) => write!(f, "{v}"),
            Arg::Int(v) => write!(f, "{v}"),
            Arg::Bool(v) => write!(f, "{v}"),
            Arg::Status(s) => f.write_str(&status(s)),
            Arg::Tag(t) => f.write_str(&tag_text(t)),
            Arg::Word(w) => f.write_str(w),
            Arg::Text(t) => f.write_str(t),
            Arg::IoStatus(s, info) => write!(f, "IoStatus {} / {info}", status(s)),
            Arg::Version(v) => write!(f, "{}.{}", v >> 16, v & 0xFF),
            Arg::Luid(high, low) => write!(f, "{high}:{low}"),
        }
    }
}

/// Text formatted on the stack for an [`Arg::Text`] (a list of objects): at most [`PAYLOAD`] bytes, the
/// rest dropped, so a call site builds it without allocating.
#[derive(Debug)]
pub struct TextBuf {
    buf: [u8; PAYLOAD],
    len: usize,
}

impl Default for TextBuf {
    fn default() -> Self {
        Self { buf: [0; PAYLOAD], len: 0 }
    }
}

impl TextBuf {
    /// What was written.
    pub fn as_str(&self) -> &str {
        let b = self.buf.get(..self.len).unwrap_or_default();
        std::str::from_utf8(b).unwrap_or_default()
    }
}

impl fmt::Write for TextBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut n = s.len().min(PAYLOAD - self.len);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        if let (Some(dst), Some(src)) = (self.buf.get_mut(self.len..self.len + n), s.as_bytes().get(..n)) {
            dst.copy_from_slice(src);
        }
        self.len += n;
        Ok(())
    }
}

impl From<u8> for Arg<'_> {
    fn from(v: u8) -> Self {
        Arg::Dec(v.into())
    }
}
impl From<u16> for Arg<'_> {
    fn from(v: u16) -> Self {
        Arg::Dec(v.into())
    }
}
impl From<u32> for Arg<'_> {
    fn from(v: u32) -> Self {
        Arg::Dec(v.into())
    }
}
impl From<u64> for Arg<'_> {
    fn from(v: u64) -> Self {
        Arg::Dec(v)
    }
}
impl From<usize> for Arg<'_> {
    fn from(v: usize) -> Self {
        // CAST: usize is 64 bits on the only host ndis-host runs on.
        Arg::Dec(v as u64)
    }
}
impl From<i8> for Arg<'_> {
    fn from(v: i8) -> Self {
        Arg::Int(v.into())
    }
}
impl From<i32> for Arg<'_> {
    fn from(v: i32) -> Self {
        Arg::Int(v.into())
    }
}
impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}
impl From<bool> for Arg<'_> {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}
impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(v)
    }
}
impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(v)
    }
}

/// Arguments an event keeps; a call with more keeps the first ones and says so.
pub const MAX_ARGS: usize = 8;
/// Bytes of driver text (names, debug messages) an event keeps; longer text is cut and marked `…`.
pub const PAYLOAD: usize = 96;

/// A recorded value: [`Arg`] with text replaced by a range of the event's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    Hex(u64),
    Dec(u64),
    Int(i64),
    Bool(bool),
    Status(i32),
    Tag(u32),
    Word(&'static str),
    /// `len` bytes of the payload from `at`; `cut` when the text was longer.
    Text {
        at: u8,
        len: u8,
        cut: bool,
    },
    IoStatus(i32, u64),
    Version(u32),
    Luid(i32, u32),
}

/// One call as it is kept: fixed size, no heap, so recording it allocates nothing.
#[derive(Debug, Clone, Copy)]
struct Raw {
    seq: u64,
    name: Value,
    direction: Direction,
    irql: u8,
    nargs: u8,
    /// More arguments than [`MAX_ARGS`] were passed.
    more: bool,
    used: u8,
    args: [(&'static str, Value); MAX_ARGS],
    result: Option<Value>,
    payload: [u8; PAYLOAD],
}

const EMPTY: Raw = Raw {
    seq: 0,
    name: Value::Word(""),
    direction: Direction::DriverToHost,
    irql: 0,
    nargs: 0,
    more: false,
    used: 0,
    args: [("", Value::Dec(0)); MAX_ARGS],
    result: None,
    payload: [0; PAYLOAD],
};

impl Raw {
    /// Stores `a`, copying text into the payload (cut at a character boundary when it does not fit).
    fn value(&mut self, a: Arg<'_>) -> Value {
        match a {
            Arg::Hex(v) => Value::Hex(v),
            Arg::Dec(v) => Value::Dec(v),
            Arg::Int(v) => Value::Int(v),
            Arg::Bool(v) => Value::Bool(v),
            Arg::Status(v) => Value::Status(v),
            Arg::Tag(v) => Value::Tag(v),
            Arg::Word(w) => Value::Word(w),
            Arg::IoStatus(s, i) => Value::IoStatus(s, i),
            Arg::Version(v) => Value::Version(v),
            Arg::Luid(h, l) => Value::Luid(h, l),
            Arg::Text(t) => {
                let at = usize::from(self.used);
                let room = PAYLOAD - at;
                let mut len = t.len().min(room);
                while !t.is_char_boundary(len) {
                    len -= 1;
                }
                let (src, dst) = (t.as_bytes().get(..len), self.payload.get_mut(at..at + len));
                if let (Some(src), Some(dst)) = (src, dst) {
                    dst.copy_from_slice(src);
                }
                // at + len <= PAYLOAD < 256, so the conversions cannot fail.
                let small = |n: usize| u8::try_from(n).unwrap_or(u8::MAX);
                self.used = small(at + len);
                Value::Text { at: small(at), len: small(len), cut: len < t.len() }
            }
        }
    }

    fn text(&self, v: &Value) -> String {
        match *v {
            Value::Hex(v) => format!("{v:#x}"),
            Value::Dec(v) => v.to_string(),
            Value::Int(v) => v.to_string(),
            Value::Bool(v) => v.to_string(),
            Value::Status(s) => status(s),
            Value::Tag(t) => tag_text(t),
            Value::Word(w) => w.to_owned(),
            Value::IoStatus(s, i) => Arg::IoStatus(s, i).to_string(),
            Value::Version(v) => Arg::Version(v).to_string(),
            Value::Luid(h, l) => Arg::Luid(h, l).to_string(),
            Value::Text { at, len, cut } => {
                let (at, len) = (usize::from(at), usize::from(len));
                let bytes = self.payload.get(at..at + len).unwrap_or_default();
                let mut s = String::from_utf8_lossy(bytes).into_owned();
                if cut {
                    s.push('…');
                }
                s
            }
        }
    }

    /// The event as readers see it.
    fn event(&self) -> TraceEvent {
        let mut args: Vec<(&'static str, String)> =
            self.args.iter().take(usize::from(self.nargs)).map(|(n, v)| (*n, self.text(v))).collect();
        if self.more {
            args.push(("…", "more arguments not kept".to_owned()));
        }
        TraceEvent {
            seq: self.seq,
            direction: self.direction,
            name: self.text(&self.name),
            args,
            result: self.result.as_ref().map(|r| self.text(r)),
            irql: self.irql,
        }
    }
}

/// A pool tag as WinDbg prints it (`RwLk`; bytes that are not printable ASCII as `.`).
pub fn tag_text(tag: u32) -> String {
    tag.to_le_bytes().iter().map(|&b| if b.is_ascii_graphic() { b as char } else { '.' }).collect()
}

/// How many trace events [`TraceRing`] keeps by default: the newest are kept, the oldest dropped.
pub const TRACE_KEPT: usize = 1 << 18;

/// The trace of a machine: the newest `capacity` events in a ring of fixed-size raw records (a run of days
/// keeps a bounded number and, once the ring is full, allocates nothing per event), formatted only when read
/// ([`TraceRing::events`]), echoed, or written to the optional file (one line per call and one per result).
#[derive(Debug)]
pub struct TraceRing {
    /// Slot `seq % capacity` holds event `seq` (the vector grows to `capacity`, then slots are reused).
    slots: Vec<Raw>,
    capacity: usize,
    /// The seq the next event gets.
    next: u64,
    file: Option<std::io::BufWriter<std::fs::File>>,
}

impl TraceRing {
    /// A ring of `capacity` events (at least 1), writing to `file` too when given. The ring's memory is
    /// reserved at once (pages are touched only as events fill them).
    pub fn new(capacity: usize, file: Option<std::fs::File>) -> Self {
        let capacity = capacity.max(1);
        Self { slots: Vec::with_capacity(capacity), capacity, next: 0, file: file.map(std::io::BufWriter::new) }
    }

    /// The slot of event `seq`.
    fn index(&self, seq: u64) -> usize {
        // The remainder is below the capacity, a usize.
        usize::try_from(seq % u64::try_from(self.capacity).unwrap_or(u64::MAX)).unwrap_or(0)
    }

    fn slot(&self, seq: u64) -> Option<&Raw> {
        self.slots.get(self.index(seq)).filter(|r| r.seq == seq)
    }

    /// Records a call and returns its seq (for [`TraceRing::complete`]). Arguments past [`MAX_ARGS`] are
    /// not kept (the event says so); text past [`PAYLOAD`] bytes in all is cut.
    pub fn push(&mut self, direction: Direction, name: Arg<'_>, irql: u8, args: &[(&'static str, Arg<'_>)]) -> u64 {
        self.push_iter(direction, name, irql, args.iter().copied())
    }

    /// [`TraceRing::push`] with the arguments from an iterator (a caller with raw values builds no array).
    ///
    /// The event is written in place into its slot: this runs under driver code on the driver's stack
    /// budget (see `native::stack`), so it keeps no event-sized value in its frame.
    pub fn push_iter<'a>(
        &mut self,
        direction: Direction,
        name: Arg<'_>,
        irql: u8,
        args: impl Iterator<Item = (&'static str, Arg<'a>)>,
    ) -> u64 {
        let seq = self.next;
        self.next += 1;
        let at = self.index(seq);
        while self.slots.len() <= at {
            self.grow();
        }
        let Some(raw) = self.slots.get_mut(at) else { return seq };
        raw.seq = seq;
        raw.direction = direction;
        raw.irql = irql;
        raw.used = 0;
        raw.nargs = 0;
        raw.more = false;
        raw.result = None;
        raw.name = raw.value(name);
        for (n, a) in args {
            let i = usize::from(raw.nargs);
            if i == MAX_ARGS {
                raw.more = true;
                break;
            }
            let v = raw.value(a);
            if let Some(slot) = raw.args.get_mut(i) {
                *slot = (n, v);
            }
            raw.nargs += 1;
        }
        if let Some(f) = &mut self.file {
            // A trace file that cannot be written does not stop the machine; the ring still has the events.
            let _ = std::io::Write::write_fmt(f, format_args!("{}\n", raw.event()));
        }
        seq
    }

    /// Adds empty slots (up to the capacity) by copying them from a static block, so no event-sized
    /// temporary lands on the stack.
    #[inline(never)]
    fn grow(&mut self) {
        static BLANK: [Raw; 16] = [EMPTY; 16];
        let n = BLANK.len().min(self.capacity - self.slots.len());
        self.slots.extend_from_slice(BLANK.get(..n).unwrap_or_default());
    }

    /// Records the result of event `seq` (if it is still kept) and writes it to the file.
    pub fn complete(&mut self, seq: u64, result: Arg<'_>) {
        let at = self.index(seq);
        match self.slots.get_mut(at) {
            Some(raw) if raw.seq == seq => {
                let v = raw.value(result);
                raw.result = Some(v);
                if let Some(f) = &mut self.file {
                    let _ = std::io::Write::write_fmt(f, format_args!("#{seq:<5} -> {}\n", raw.text(&v)));
                }
            }
            // Dropped already: the file still gets the result.
            _ => {
                if let Some(f) = &mut self.file {
                    let _ = std::io::Write::write_fmt(f, format_args!("#{seq:<5} -> {result}\n"));
                }
            }
        }
    }

    /// Event `seq` formatted, if it is still kept.
    pub fn event(&self, seq: u64) -> Option<TraceEvent> {
        self.slot(seq).map(Raw::event)
    }

    /// The result of event `seq` formatted, if it is kept and has returned.
    pub fn result(&self, seq: u64) -> Option<String> {
        self.slot(seq).and_then(|r| r.result.as_ref().map(|v| r.text(v)))
    }

    /// The events kept, oldest first, formatted.
    pub fn events(&self) -> Vec<TraceEvent> {
        let first = self.next - self.len() as u64;
        (first..self.next).filter_map(|s| self.slot(s)).map(Raw::event).collect()
    }

    /// How many events are kept.
    pub fn len(&self) -> usize {
        usize::try_from(self.next).unwrap_or(usize::MAX).min(self.capacity)
    }

    /// Whether no event is kept.
    pub fn is_empty(&self) -> bool {
        self.next == 0
    }

    /// How many events were dropped to keep the ring's capacity.
    pub fn dropped(&self) -> u64 {
        self.next - self.len() as u64
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

    fn push(r: &mut TraceRing) -> u64 {
        r.push(Direction::DriverToHost, Arg::Word("X"), 0, &[])
    }

    #[test]
    fn the_ring_keeps_the_newest_events_and_counts_the_dropped() {
        let mut r = TraceRing::new(3, None);
        for s in 0..10 {
            assert_eq!(push(&mut r), s);
            r.complete(s, Arg::Dec(s));
        }
        assert_eq!(r.len(), 3);
        assert_eq!(r.dropped(), 7);
        let kept: Vec<(u64, Option<String>)> = r.events().into_iter().map(|e| (e.seq, e.result)).collect();
        assert_eq!(kept, [(7, Some("7".into())), (8, Some("8".into())), (9, Some("9".into()))]);
        // A result for an event already dropped changes nothing.
        r.complete(2, Arg::Word("late"));
        assert!(r.events().iter().all(|e| e.result.as_deref() != Some("late")));
    }

    #[test]
    fn a_trace_file_gets_every_call_and_result() {
        let path = std::env::temp_dir().join(format!("ndis-host-trace-{}.txt", std::process::id()));
        let mut r = TraceRing::new(1, Some(std::fs::File::create(&path).expect("file")));
        push(&mut r);
        r.complete(0, Arg::Word("done"));
        push(&mut r);
        r.flush();
        let text = std::fs::read_to_string(&path).expect("read");
        let _ = std::fs::remove_file(&path);
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.contains("-> done"));
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn events_are_formatted_when_read_as_the_call_sites_used_to_format_them() {
        let mut r = TraceRing::new(4, None);
        let seq = r.push(
            Direction::HostToDriver,
            Arg::Word("ProtocolReceiveNetBufferLists"),
            2,
            &[
                ("NetBufferLists", Arg::Hex(0x7f00_1000)),
                ("NumberOfNetBufferLists", Arg::Dec(8)),
                ("Delta", Arg::Int(-3)),
                ("Tag", Arg::Tag(u32::from_le_bytes(*b"RwLk"))),
                ("Name", Arg::Text("\\Device\\RawLink")),
                ("Flag", Arg::Bool(true)),
            ],
        );
        r.complete(seq, Arg::Status(0x103));
        let e = r.event(seq).expect("kept");
        assert_eq!(e.name, "ProtocolReceiveNetBufferLists");
        assert_eq!(e.arg("NetBufferLists"), Some("0x7f001000"));
        assert_eq!(e.arg("NumberOfNetBufferLists"), Some("8"));
        assert_eq!(e.arg("Delta"), Some("-3"));
        assert_eq!(e.arg("Tag"), Some("RwLk"));
        assert_eq!(e.arg("Name"), Some("\\Device\\RawLink"));
        assert_eq!(e.arg("Flag"), Some("true"));
        assert_eq!(e.result.as_deref(), Some("STATUS_PENDING (0x103)"));
        assert_eq!(
            e.to_string(),
            "#0     [irql 2] host -> driver  ProtocolReceiveNetBufferLists(NetBufferLists=0x7f001000, \
             NumberOfNetBufferLists=8, Delta=-3, Tag=RwLk, Name=\\Device\\RawLink, Flag=true) = STATUS_PENDING (0x103)"
        );
    }

    #[test]
    fn long_text_and_many_arguments_are_cut_and_say_so() {
        let mut r = TraceRing::new(2, None);
        let long = "é".repeat(PAYLOAD);
        let args: Vec<(&'static str, Arg<'_>)> = (0..MAX_ARGS + 2).map(|_| ("A", Arg::Text(&long))).collect();
        let seq = r.push(Direction::DriverToHost, Arg::Text("DbgPrint"), 0, &args);
        let e = r.event(seq).expect("kept");
        assert_eq!(e.name, "DbgPrint");
        assert_eq!(e.args.len(), MAX_ARGS + 1, "the kept arguments and the note");
        let first = e.arg("A").expect("first");
        assert!(first.ends_with('…') && first.starts_with("éé"), "{first}");
        assert!(first.len() <= PAYLOAD + '…'.len_utf8());
        assert_eq!(e.args.last().map(|(n, _)| *n), Some("…"));
        // Later text arguments found the payload full: empty, and marked as cut.
        assert_eq!(e.args.get(1).map(|(_, v)| v.as_str()), Some("…"));
    }

    #[test]
    fn the_ring_stops_growing_at_its_capacity() {
        let mut r = TraceRing::new(16, None);
        for _ in 0..1000 {
            let s = push(&mut r);
            r.complete(s, Arg::Status(0));
        }
        assert_eq!(r.slots.len(), 16);
        assert_eq!(r.slots.capacity(), 16, "no reallocation past the first reservation");
        assert_eq!(r.events().first().map(|e| e.seq), Some(1000 - 16));
    }
}

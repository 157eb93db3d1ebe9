//! rawlink: raw Ethernet send and receive through the rawlink.sys NDIS protocol driver.
//!
//! ```no_run
//! # fn demo(backend: std::sync::Arc<dyn rawlink::Backend>) -> rawlink::Result<()> {
//! let rl = rawlink::Rawlink::new(backend)?;
//! for a in rl.adapters()? {
//!     println!("{} {} {}", a.index, a.friendly_name, a.mac_text());
//! }
//! let link = rl.open_adapter("0")?;
//! link.set_filter(&rawlink::Filter::promiscuous())?;
//! link.set_read_mode(rawlink::ReadMode::Blocking { min_bytes: 1, timeout_ms: 100 })?;
//! let mut buf = rawlink::RecvBuffer::new(256 * 1024);
//! for frame in link.recv(&mut buf)? {
//!     println!("{} bytes at {}", frame.data.len(), frame.header.timestamp);
//! }
//! # Ok(()) }
//! ```
//!
//! Every request goes through one [`Backend`]: on Windows [`windows::WindowsBackend`] (`\\.\RawLink`,
//! overlapped I/O), on Linux [`hosted::Hosted`] (the real rawlink.sys running in ndis-host inside this process,
//! its adapter on a TAP device or on an in-process wire).
#![deny(unsafe_code)]

pub mod backend;
pub mod error;
#[cfg(target_os = "linux")]
pub mod hosted;
pub mod oid;
pub mod packet;
#[cfg(windows)]
#[allow(unsafe_code)]
pub mod windows;

pub use backend::{Backend, Failure, RawHandle, RingMemory};
pub use error::{Error, Result, Status, StatusKind};
pub use rawlink_abi as abi;
pub use rawlink_abi::{frame_flags, BindingStatistics, FrameHeader, HandleStatistics};

use rawlink_abi::rawlink as ioctl;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What one adapter binding is, as the driver reports it (IOCTL_RAWLINK_QUERY_BINDING).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterInfo {
    /// The binding index (what [`Rawlink::open_adapter`] accepts as a number).
    pub index: u32,
    /// `\DEVICE\{GUID}`.
    pub name: String,
    pub friendly_name: String,
    pub mac: [u8; 6],
    pub mtu: u32,
    /// Bits per second.
    pub link_speed: u64,
    pub link_up: bool,
    pub state: BindingState,
}

/// Where a binding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingState {
    Opening,
    Paused,
    Restarting,
    Running,
    Pausing,
    Closing,
    Unknown(u32),
}

impl BindingState {
    fn from_abi(v: u32) -> Self {
        use rawlink_abi::binding_state as s;
        match v {
            s::OPENING => Self::Opening,
            s::PAUSED => Self::Paused,
            s::RESTARTING => Self::Restarting,
            s::RUNNING => Self::Running,
            s::PAUSING => Self::Pausing,
            s::CLOSING => Self::Closing,
            other => Self::Unknown(other),
        }
    }
}

impl std::fmt::Display for BindingState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unknown(v) => write!(f, "state {v}"),
            other => write!(f, "{}", format!("{other:?}").to_lowercase()),
        }
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_text(mac: &[u8]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Reads `aa:bb:cc:dd:ee:ff` (or `-` separated).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (m, p) in mac.iter_mut().zip(parts) {
        if p.len() != 2 {
            return None;
        }
        *m = u8::from_str_radix(p, 16).ok()?;
    }
    Some(mac)
}

impl AdapterInfo {
    pub fn mac_text(&self) -> String {
        mac_text(&self.mac)
    }

    /// `1 Gbit/s`, `100 Mbit/s`, ...
    pub fn speed_text(&self) -> String {
        speed_text(self.link_speed)
    }

    /// How adapter lists name it in messages: `0: Friendly name (\DEVICE\{...}, aa:bb:..)`.
    pub fn label(&self) -> String {
        format!("{}: {} ({}, {})", self.index, self.friendly_name, self.name, self.mac_text())
    }

    /// Whether `selector` names this adapter: its index, its name (or the GUID in it), its friendly name, or
    /// its MAC, compared without regard to case.
    pub fn matches(&self, selector: &str) -> bool {
        let s = selector.trim();
        let eq = |a: &str| a.eq_ignore_ascii_case(s);
        s.parse::<u32>().ok() == Some(self.index)
            || eq(&self.name)
            || eq(&self.friendly_name)
            || (s.len() >= 8 && self.name.to_ascii_lowercase().contains(&s.to_ascii_lowercase()))
            || parse_mac(s) == Some(self.mac)
    }
}

/// Link speed in words.
pub fn speed_text(bps: u64) -> String {
    match bps {
        0 => "unknown".into(),
        b if b >= 1_000_000_000 && b % 1_000_000_000 == 0 => format!("{} Gbit/s", b / 1_000_000_000),
        b if b >= 1_000_000 => format!("{} Mbit/s", b / 1_000_000),
        b if b >= 1_000 => format!("{} kbit/s", b / 1_000),
        b => format!("{b} bit/s"),
    }
}

/// Which frames a handle receives (IOCTL_RAWLINK_SET_FILTER): destination classes and up to 16 EtherTypes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// [`abi::class`] bits.
    pub classes: u32,
    /// Empty: every EtherType. VLAN-tagged frames match by the EtherType inside the tag.
    pub ethertypes: Vec<u16>,
}

impl Default for Filter {
    /// Directed, multicast (of the adapter's list) and broadcast: the filter a handle starts with.
    fn default() -> Self {
        Self { classes: abi::class::DEFAULT, ethertypes: Vec::new() }
    }
}

impl Filter {
    /// Everything on the wire.
    pub fn promiscuous() -> Self {
        Self { classes: abi::class::PROMISCUOUS | abi::class::ALL_MULTICAST | abi::class::DEFAULT, ethertypes: vec![] }
    }

    /// Only these EtherTypes.
    pub fn with_ethertypes(mut self, types: &[u16]) -> Self {
        self.ethertypes = types.to_vec();
        self
    }
}

/// How reads wait (IOCTL_RAWLINK_SET_READ_MODE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// A read returns at once, maybe with nothing (the default).
    NonBlocking,
    /// A read waits until `min_bytes` of records are queued (at least one frame) or `timeout_ms` (0: no
    /// limit) passed since it was issued.
    Blocking { min_bytes: u32, timeout_ms: u32 },
}

/// An adapter event (IOCTL_RAWLINK_WAIT_EVENT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    LinkUp {
        speed: u64,
    },
    LinkDown,
    /// The adapter left D0 (`state`: 2..=4 for D1..D3): I/O stops until [`Event::PowerOn`].
    PowerLow {
        state: u64,
    },
    PowerOn,
    /// The adapter was unbound; this handle no longer reaches it.
    AdapterGone,
    /// Events were lost: the handle's list was full.
    Overflow,
    Unknown {
        kind: u32,
        value: u64,
    },
}

impl Event {
    fn from_abi(e: abi::Event) -> Self {
        use abi::event as k;
        match e.kind {
            k::LINK_UP => Self::LinkUp { speed: e.value },
            k::LINK_DOWN => Self::LinkDown,
            k::POWER_LOW => Self::PowerLow { state: e.value },
            k::POWER_ON => Self::PowerOn,
            k::ADAPTER_GONE => Self::AdapterGone,
            k::OVERFLOW => Self::Overflow,
            kind => Self::Unknown { kind, value: e.value },
        }
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LinkUp { speed } => write!(f, "link up, {}", speed_text(*speed)),
            Self::LinkDown => write!(f, "link down"),
            Self::PowerLow { state } => write!(f, "power: D{} (I/O stopped)", state.saturating_sub(1)),
            Self::PowerOn => write!(f, "power: D0"),
            Self::AdapterGone => write!(f, "adapter removed"),
            Self::Overflow => write!(f, "events lost (list full)"),
            Self::Unknown { kind, value } => write!(f, "event {kind} ({value})"),
        }
    }
}

/// A buffer reads fill; [`Link::recv`] borrows frames out of it.
#[derive(Debug, Clone)]
pub struct RecvBuffer {
    buf: Vec<u8>,
}

impl RecvBuffer {
    /// A buffer of `capacity` bytes (frames plus their 24-byte headers, 8-byte aligned).
    pub fn new(capacity: usize) -> Self {
        Self { buf: vec![0; capacity.max(FrameHeader::LEN + 64)] }
    }
}

/// One received frame, borrowed from the [`RecvBuffer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub header: FrameHeader,
    /// The captured bytes (`header.captured_length`).
    pub data: &'a [u8],
}

impl Frame<'_> {
    pub fn truncated(&self) -> bool {
        self.header.flags & frame_flags::TRUNCATED != 0
    }
    pub fn vlan_tagged(&self) -> bool {
        self.header.flags & frame_flags::VLAN_TAGGED != 0
    }
    pub fn sent_by_host(&self) -> bool {
        self.header.flags & frame_flags::SENT_BY_HOST != 0
    }
}

/// The frames one read returned, in arrival order.
#[derive(Debug, Clone)]
pub struct Batch<'a> {
    bytes: &'a [u8],
}

impl<'a> Batch<'a> {
    /// The records' bytes as the driver wrote them.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
    pub fn iter(&self) -> Frames<'a> {
        Frames(abi::Frames::new(self.bytes))
    }
}

impl<'a> IntoIterator for Batch<'a> {
    type Item = Frame<'a>;
    type IntoIter = Frames<'a>;
    fn into_iter(self) -> Frames<'a> {
        self.iter()
    }
}

/// Iterator over a [`Batch`].
#[derive(Debug, Clone)]
pub struct Frames<'a>(abi::Frames<'a>);

impl<'a> Iterator for Frames<'a> {
    type Item = Frame<'a>;
    fn next(&mut self) -> Option<Frame<'a>> {
        self.0.next().map(|(header, data)| Frame { header, data })
    }
}

/// Frames to send, laid out as the driver takes them (one record each).
#[derive(Debug, Clone, Default)]
pub struct SendBatch {
    bytes: Vec<u8>,
    lengths: Vec<usize>,
}

impl SendBatch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one frame.
    pub fn push(&mut self, frame: &[u8]) -> &mut Self {
        let at = self.bytes.len();
        self.bytes.resize(at + FrameHeader::record_len(frame.len()), 0);
        // The record was sized for the frame just above.
        if let Some(dst) = self.bytes.get_mut(at..) {
            let _ = abi::write_record(dst, frame);
        }
        self.lengths.push(frame.len());
        self
    }

    pub fn len(&self) -> usize {
        self.lengths.len()
    }
    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// The length of frame `i`.
    pub fn frame_len(&self, i: usize) -> Option<usize> {
        self.lengths.get(i).copied()
    }
}

impl<T: AsRef<[u8]>> FromIterator<T> for SendBatch {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut b = SendBatch::new();
        for f in iter {
            b.push(f.as_ref());
        }
        b
    }
}

/// IOCTL_RAWLINK_SEND's per-batch reply: how many frames went out and, if one was refused, which and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReport {
    pub sent: usize,
    pub refused: Option<Refusal>,
}

/// The first frame of a batch the driver did not send (the frames after it were not sent either).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub index: usize,
    pub len: usize,
    pub status: Status,
    /// The reason in words (from the status and what the library knows of the adapter).
    pub reason: String,
}

impl SendReport {
    /// The frames sent, or [`Error::BadFrame`] naming the first refused one.
    pub fn check(self) -> Result<usize> {
        match self.refused {
            None => Ok(self.sent),
            Some(r) => Err(Error::BadFrame { index: r.index, len: r.len, reason: r.reason }),
        }
    }
}

/// The connection to the driver: one control handle, for enumerating adapters and opening them.
#[derive(Debug)]
pub struct Rawlink {
    backend: Arc<dyn Backend>,
    control: RawHandle,
}

/// The longest binding record: the fixed part and two names of up to 256 UTF-16 units each.
const BINDING_RECORD_MAX: usize = abi::BindingRecord::LEN + 2 * 514;

impl Rawlink {
    /// Opens the driver's control device through `backend`.
    pub fn new(backend: Arc<dyn Backend>) -> Result<Self> {
        let control = backend.open()?;
        Ok(Self { backend, control })
    }

    /// The Windows driver (`\\.\RawLink`).
    #[cfg(windows)]
    pub fn open_windows() -> Result<Self> {
        Self::new(Arc::new(windows::WindowsBackend::new()))
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Every adapter the driver is bound to.
    pub fn adapters(&self) -> Result<Vec<AdapterInfo>> {
        let mut out = Vec::new();
        for index in 0u32.. {
            match query_binding(&*self.backend, self.control, index)? {
                Some(a) => out.push(a),
                None => break,
            }
        }
        Ok(out)
    }

    /// The adapter `selector` names (see [`AdapterInfo::matches`]), or [`Error::AdapterNotFound`] listing
    /// the valid ones.
    pub fn find(&self, selector: &str) -> Result<AdapterInfo> {
        let all = self.adapters()?;
        let by_index = selector.trim().parse::<u32>().ok();
        let found = match by_index {
            Some(i) => all.iter().find(|a| a.index == i),
            None => all.iter().find(|a| a.matches(selector)),
        };
        match found {
            Some(a) => Ok(a.clone()),
            None => Err(Error::AdapterNotFound {
                wanted: selector.to_owned(),
                available: all.iter().map(AdapterInfo::label).collect(),
            }),
        }
    }

    /// Opens a new handle attached to the adapter `selector` names.
    pub fn open_adapter(&self, selector: &str) -> Result<Link> {
        let info = self.find(selector)?;
        Link::attach(Arc::clone(&self.backend), info)
    }

    /// The counters of binding `index` (received, delivered, filtered, dropped, sent, send failures).
    pub fn binding_statistics(&self, index: u32) -> Result<BindingStatistics> {
        let mut out = [0u8; BindingStatistics::LEN];
        let n = request(
            &*self.backend,
            self.control,
            "GET_BINDING_STATISTICS",
            ioctl::IOCTL_RAWLINK_GET_BINDING_STATISTICS,
            &index.to_le_bytes(),
            &mut out,
        )?;
        BindingStatistics::parse(out.get(..n).unwrap_or(&[]))
            .map_err(|e| malformed("GET_BINDING_STATISTICS", format!("{n} bytes, {} needed", e.needed)))
    }
}

impl Drop for Rawlink {
    fn drop(&mut self) {
        self.backend.close(self.control);
    }
}

fn malformed(op: &'static str, why: String) -> Error {
    Error::Malformed { op, why }
}

/// What a failed request means to the user, with the operation's name.
fn request_error(op: &'static str, f: Failure) -> Error {
    match f {
        Failure::Status(status) => match status.kind() {
            StatusKind::AccessDenied => Error::AccessDenied {
                what: format!("({op}: {status})"),
                hint: "the handle was opened without read/write access; on Windows run the program as \
                       Administrator (elevated)"
                    .into(),
            },
            StatusKind::InvalidDeviceState => Error::Driver {
                op,
                status,
                hint: Some("the adapter is not running (paused, being removed) or the handle is not attached".into()),
            },
            StatusKind::PoweredOff => Error::Driver {
                op,
                status,
                hint: Some("the adapter is in a low-power state; I/O resumes when it returns to D0".into()),
            },
            _ => Error::Driver { op, status, hint: None },
        },
        Failure::TimedOut => Error::Backend(format!("{op}: the driver did not complete the request in time")),
        Failure::Backend(e) => Error::Backend(format!("{op}: {e}")),
    }
}

/// DeviceIoControl with no timeout, mapping failures.
fn request(
    backend: &dyn Backend,
    h: RawHandle,
    op: &'static str,
    code: u32,
    input: &[u8],
    output: &mut [u8],
) -> Result<usize> {
    backend.ioctl(h, code, input, output, None).map_err(|f| request_error(op, f))
}

fn utf16_range(b: &[u8], r: std::ops::Range<usize>) -> String {
    let units: Vec<u16> = b
        .get(r)
        .unwrap_or(&[])
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c.first().copied().unwrap_or(0), c.get(1).copied().unwrap_or(0)]))
        .collect();
    String::from_utf16_lossy(&units)
}

fn query_binding(backend: &dyn Backend, h: RawHandle, index: u32) -> Result<Option<AdapterInfo>> {
    let mut out = vec![0u8; BINDING_RECORD_MAX];
    let n = match backend.ioctl(h, ioctl::IOCTL_RAWLINK_QUERY_BINDING, &index.to_le_bytes(), &mut out, None) {
        Ok(n) => n,
        Err(Failure::Status(s)) if s.kind() == StatusKind::NoMoreEntries => return Ok(None),
        Err(f) => return Err(request_error("QUERY_BINDING", f)),
    };
    let bytes = out.get(..n).unwrap_or(&[]);
    let (rec, name, friendly) = abi::BindingRecord::parse(bytes)
        .map_err(|e| malformed("QUERY_BINDING", format!("{n} bytes, {} needed", e.needed)))?;
    Ok(Some(AdapterInfo {
        index: rec.index,
        name: utf16_range(bytes, name),
        friendly_name: utf16_range(bytes, friendly),
        mac: rec.mac,
        mtu: rec.mtu,
        link_speed: rec.link_speed,
        link_up: rec.link_up,
        state: BindingState::from_abi(rec.state),
    }))
}

/// A handle attached to one adapter: receive, send, filters, OIDs, counters, events.
#[derive(Debug)]
pub struct Link {
    backend: Arc<dyn Backend>,
    handle: RawHandle,
    info: AdapterInfo,
    /// The mapped receive ring, when one is attached ([`Link::attach_ring`]).
    ring: Mutex<Option<LinkRing>>,
}

/// A mapped receive ring of a [`Link`]: its memory, layout, this side's consumer index and a scratch frame.
#[derive(Debug)]
struct LinkRing {
    mem: Box<dyn RingMemory>,
    layout: abi::ring::RingLayout,
    consumer: u32,
    scratch: Vec<u8>,
}

impl Link {
    /// Opens a new handle and attaches it to `info`'s binding (IOCTL_RAWLINK_OPEN).
    pub fn attach(backend: Arc<dyn Backend>, info: AdapterInfo) -> Result<Self> {
        let handle = backend.open()?;
        let link = Self { backend, handle, info, ring: Mutex::new(None) };
        link.ioctl_in("OPEN", ioctl::IOCTL_RAWLINK_OPEN, &link.info.index.to_le_bytes())?;
        Ok(link)
    }

    /// The adapter as it was when the handle was opened.
    pub fn info(&self) -> &AdapterInfo {
        &self.info
    }

    fn ioctl_in(&self, op: &'static str, code: u32, input: &[u8]) -> Result<()> {
        request(&*self.backend, self.handle, op, code, input, &mut []).map(drop)
    }

    /// Which destination classes and EtherTypes this handle receives.
    pub fn set_filter(&self, filter: &Filter) -> Result<()> {
        let req = abi::FilterRequest::new(filter.classes, &filter.ethertypes).map_err(|_| {
            Error::InvalidArgument(format!(
                "filter: classes {:#x} (allowed {:#x}) with {} EtherTypes (at most {})",
                filter.classes,
                abi::class::ALL,
                filter.ethertypes.len(),
                abi::FilterRequest::MAX_TYPES
            ))
        })?;
        let (b, n) = req.to_bytes();
        self.ioctl_in("SET_FILTER", ioctl::IOCTL_RAWLINK_SET_FILTER, b.get(..n).unwrap_or(&[]))
    }

    pub fn set_read_mode(&self, mode: ReadMode) -> Result<()> {
        let m = match mode {
            ReadMode::NonBlocking => abi::ReadMode { blocking: false, min_bytes: 0, timeout_ms: 0 },
            ReadMode::Blocking { min_bytes, timeout_ms } => abi::ReadMode { blocking: true, min_bytes, timeout_ms },
        };
        self.ioctl_in("SET_READ_MODE", ioctl::IOCTL_RAWLINK_SET_READ_MODE, &m.to_bytes())
    }

    /// Keep only the first `bytes` of each frame (0: whole frames; otherwise at least 14).
    pub fn set_capture_length(&self, bytes: u32) -> Result<()> {
        if bytes != 0 && bytes < 14 {
            return Err(Error::InvalidArgument(format!(
                "capture length {bytes}: must be 0 (whole frames) or at least 14 (the Ethernet header)"
            )));
        }
        self.ioctl_in("SET_CAPTURE_LENGTH", ioctl::IOCTL_RAWLINK_SET_CAPTURE_LENGTH, &bytes.to_le_bytes())
    }

    /// The receive queue size in bytes (64 KiB – 64 MiB).
    pub fn set_queue_size(&self, bytes: u32) -> Result<()> {
        if !(abi::QUEUE_MIN..=abi::QUEUE_MAX).contains(&bytes) {
            return Err(Error::InvalidArgument(format!(
                "queue size {bytes}: must be {} to {} bytes (64 KiB to 64 MiB)",
                abi::QUEUE_MIN,
                abi::QUEUE_MAX
            )));
        }
        self.ioctl_in("SET_QUEUE_SIZE", ioctl::IOCTL_RAWLINK_SET_QUEUE_SIZE, &bytes.to_le_bytes())
    }

    /// Let this handle send frames whose source MAC is not the adapter's.
    pub fn allow_any_source(&self, allow: bool) -> Result<()> {
        self.ioctl_in("ALLOW_ANY_SOURCE", ioctl::IOCTL_RAWLINK_ALLOW_ANY_SOURCE, &u32::from(allow).to_le_bytes())
    }

    /// Reads one batch (as the read mode says: at once, or blocking).
    pub fn recv<'b>(&self, buf: &'b mut RecvBuffer) -> Result<Batch<'b>> {
        self.recv_inner(buf, None)
    }

    /// Reads one batch, cancelling the read when `timeout` passes (an empty batch then). With a blocking
    /// read mode this bounds the wait from the caller's side.
    pub fn recv_timeout<'b>(&self, buf: &'b mut RecvBuffer, timeout: Duration) -> Result<Batch<'b>> {
        self.recv_inner(buf, Some(timeout))
    }

    fn recv_inner<'b>(&self, buf: &'b mut RecvBuffer, timeout: Option<Duration>) -> Result<Batch<'b>> {
        let n = match self.backend.read(self.handle, &mut buf.buf, timeout) {
            Ok(n) => n,
            Err(Failure::TimedOut) => 0,
            Err(Failure::Status(s)) if s.kind() == StatusKind::Cancelled => 0,
            Err(f) => return Err(request_error("ReadFile", f)),
        };
        Ok(Batch { bytes: buf.buf.get(..n).unwrap_or(&[]) })
    }

    /// Sends a batch (IOCTL_RAWLINK_SEND): the frames before the first bad one go out; the report says how
    /// many, and which frame was refused and why.
    pub fn send(&self, batch: &SendBatch) -> Result<SendReport> {
        if batch.is_empty() {
            return Ok(SendReport { sent: 0, refused: None });
        }
        let mut out = [0u8; abi::SendReply::LEN];
        let n = request(&*self.backend, self.handle, "SEND", ioctl::IOCTL_RAWLINK_SEND, batch.as_bytes(), &mut out)?;
        let r = abi::SendReply::parse(out.get(..n).unwrap_or(&[]))
            .map_err(|e| malformed("SEND", format!("{n} bytes, {} needed", e.needed)))?;
        let sent = usize::try_from(r.frames_sent).unwrap_or(usize::MAX);
        let refused = (r.first_failure != abi::SendReply::NONE).then(|| {
            let index = usize::try_from(r.first_failure).unwrap_or(usize::MAX);
            let len = batch.frame_len(index).unwrap_or(0);
            let frame = frame_bytes(batch, index);
            let status = Status::Nt(r.status);
            Refusal { index, len, status, reason: explain_refusal(frame, status, &self.info) }
        });
        Ok(SendReport { sent, refused })
    }

    /// Sends frames one batch at a time; [`Error::BadFrame`] names the first refused.
    pub fn send_frames<T: AsRef<[u8]>>(&self, frames: &[T]) -> Result<usize> {
        self.send(&frames.iter().collect())?.check()
    }

    /// Queries an OID of the adapter (`len`: the most bytes expected); returns the value.
    pub fn query_oid(&self, oid: u32, len: usize) -> Result<Vec<u8>> {
        let h = abi::OidHeader { oid, port: 0, timeout_ms: 0 };
        let mut out = vec![0u8; abi::OidHeader::LEN + len];
        let n =
            request(&*self.backend, self.handle, "QUERY_OID", ioctl::IOCTL_RAWLINK_QUERY_OID, &h.to_bytes(), &mut out)
                .map_err(|e| oid_error(e, oid))?;
        Ok(out.get(abi::OidHeader::LEN..n).unwrap_or(&[]).to_vec())
    }

    /// Sets an OID (only the packet filter, the multicast list and the lookahead are allowed).
    pub fn set_oid(&self, oid: u32, value: &[u8]) -> Result<()> {
        let mut input = abi::OidHeader { oid, port: 0, timeout_ms: 0 }.to_bytes().to_vec();
        input.extend_from_slice(value);
        self.ioctl_in("SET_OID", ioctl::IOCTL_RAWLINK_SET_OID, &input).map_err(|e| oid_error(e, oid))
    }

    /// This handle's receive counters.
    pub fn statistics(&self) -> Result<HandleStatistics> {
        let mut out = [0u8; HandleStatistics::LEN];
        let n =
            request(&*self.backend, self.handle, "GET_STATISTICS", ioctl::IOCTL_RAWLINK_GET_STATISTICS, &[], &mut out)?;
        HandleStatistics::parse(out.get(..n).unwrap_or(&[]))
            .map_err(|e| malformed("GET_STATISTICS", format!("{n} bytes, {} needed", e.needed)))
    }

    /// The binding's counters.
    pub fn binding_statistics(&self) -> Result<BindingStatistics> {
        let mut out = [0u8; BindingStatistics::LEN];
        let n = request(
            &*self.backend,
            self.handle,
            "GET_BINDING_STATISTICS",
            ioctl::IOCTL_RAWLINK_GET_BINDING_STATISTICS,
            &self.info.index.to_le_bytes(),
            &mut out,
        )?;
        BindingStatistics::parse(out.get(..n).unwrap_or(&[]))
            .map_err(|e| malformed("GET_BINDING_STATISTICS", format!("{n} bytes, {} needed", e.needed)))
    }

    /// Waits for the adapter's next event; `None` when `timeout` passed first (the request is cancelled).
    pub fn wait_event(&self, timeout: Option<Duration>) -> Result<Option<Event>> {
        let mut out = [0u8; abi::Event::LEN];
        match self.backend.ioctl(self.handle, ioctl::IOCTL_RAWLINK_WAIT_EVENT, &[], &mut out, timeout) {
            Ok(n) => abi::Event::parse(out.get(..n).unwrap_or(&[]))
                .map(|e| Some(Event::from_abi(e)))
                .map_err(|e| malformed("WAIT_EVENT", format!("{n} bytes, {} needed", e.needed))),
            Err(Failure::TimedOut) => Ok(None),
            Err(Failure::Status(s)) if s.kind() == StatusKind::Cancelled => Ok(None),
            Err(f) => Err(request_error("WAIT_EVENT", f)),
        }
    }
}

impl Link {
    fn ring_lock(&self) -> std::sync::MutexGuard<'_, Option<LinkRing>> {
        self.ring.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Attaches a mapped receive ring of at least `slots` slots of `slot_size` bytes (powers of two; see
    /// `rawlink_abi::ring`): from then on received frames go into memory shared with the driver, locked once,
    /// and [`Link::recv_ring`] takes them without a read per batch. A driver or backend without rings
    /// answers [`StatusKind::NotSupported`] (or STATUS_INVALID_DEVICE_REQUEST from an older driver): then
    /// keep using [`Link::recv`].
    pub fn attach_ring(&self, slots: u32, slot_size: u32) -> Result<abi::ring::RingLayout> {
        let layout = abi::ring::RingLayout::with_slots(slots, slot_size).map_err(|_| {
            Error::InvalidArgument(format!(
                "ring of {slots} slots of {slot_size} bytes: the slot size must be a power of two from {} to {},                  the whole ring at most {} bytes",
                abi::ring::SLOT_MIN,
                abi::ring::SLOT_MAX,
                abi::ring::DATA_MAX
            ))
        })?;
        let mut g = self.ring_lock();
        if g.is_some() {
            return Err(Error::InvalidArgument("this handle has a ring already".into()));
        }
        let setup = abi::ring::RingSetup { slot_size, flags: 0 }.to_bytes();
        let mem =
            self.backend.attach_ring(self.handle, &setup, layout.len()).map_err(|f| request_error("RING_ATTACH", f))?;
        let mut head = [0u8; abi::ring::CACHE_LINE];
        if !mem.read_into(0, &mut head) || abi::ring::RingLayout::parse_header(&head) != Ok(layout) {
            self.backend.detach_ring(&*mem);
            return Err(malformed("RING_ATTACH", "the ring's header is not the layout asked for".into()));
        }
        *g = Some(LinkRing { mem, layout, consumer: 0, scratch: vec![0; layout.capacity()] });
        Ok(layout)
    }

    /// Whether a ring is attached (and the driver has not detached it).
    pub fn has_ring(&self) -> bool {
        self.ring_lock().as_ref().is_some_and(|r| self.backend.ring_detached(&*r.mem).is_none())
    }

    /// Takes up to `max` frames from the ring, in arrival order, calling `f` with each (the data is a copy:
    /// the ring's memory is never lent out). When the ring is empty it waits up to `timeout` (`None`: for
    /// ever) for frames (IOCTL_RAWLINK_RING_WAIT); returns how many frames `f` saw (0: none came). An error
    /// when the driver detached the ring (the adapter went away, or the ring was found broken).
    pub fn recv_ring(&self, max: usize, timeout: Option<Duration>, mut f: impl FnMut(Frame<'_>)) -> Result<usize> {
        let mut g = self.ring_lock();
        let r = g.as_mut().ok_or_else(|| Error::InvalidArgument("no ring is attached (Link::attach_ring)".into()))?;
        if let Some(fail) = self.backend.ring_detached(&*r.mem) {
            return Err(request_error("RING_ATTACH", fail));
        }
        let mut producer = r.mem.load_u32(abi::ring::PRODUCER_OFFSET);
        if producer == r.consumer {
            match self.backend.ioctl(self.handle, abi::ring::IOCTL_RAWLINK_RING_WAIT, &[], &mut [], timeout) {
                Ok(_) => {}
                Err(Failure::TimedOut) => return Ok(0),
                Err(Failure::Status(s)) if s.kind() == StatusKind::Cancelled => return Ok(0),
                Err(fail) => return Err(request_error("RING_WAIT", fail)),
            }
            producer = r.mem.load_u32(abi::ring::PRODUCER_OFFSET);
        }
        let available = producer.wrapping_sub(r.consumer);
        if available > r.layout.slot_count {
            return Err(malformed("ring", format!("producer index {producer} is {available} slots ahead")));
        }
        let take = available.min(u32::try_from(max).unwrap_or(u32::MAX));
        let mut head = [0u8; FrameHeader::LEN];
        for i in 0..take {
            let at = r.layout.slot_offset(r.consumer.wrapping_add(i));
            let header = if r.mem.read_into(at, &mut head) { FrameHeader::parse(&head).ok() } else { None };
            let header = header.filter(|h| h.captured_length as usize <= r.layout.capacity());
            let Some(header) = header else {
                return Err(malformed("ring", format!("slot at {at} has no valid header")));
            };
            let data = r.scratch.get_mut(..header.captured_length as usize).unwrap_or_default();
            r.mem.read_into(at + FrameHeader::LEN, data);
            f(Frame { header, data });
        }
        r.consumer = r.consumer.wrapping_add(take);
        r.mem.store_u32(abi::ring::CONSUMER_OFFSET, r.consumer);
        Ok(take as usize)
    }

    /// Detaches the ring (frames go to reads again); nothing if none is attached.
    pub fn detach_ring(&self) {
        if let Some(r) = self.ring_lock().take() {
            self.backend.detach_ring(&*r.mem);
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // The ring's memory is freed only after its attach request completed.
        self.detach_ring();
        self.backend.close(self.handle);
    }
}

fn oid_error(e: Error, oid: u32) -> Error {
    let name = crate::oid::name(oid).map(str::to_owned).unwrap_or_else(|| format!("OID {oid:#010x}"));
    match e {
        Error::AccessDenied { .. } => Error::Driver {
            op: "SET_OID",
            status: Status::Nt(0xC000_0022u32 as i32),
            hint: Some(format!(
                "{name} may not be set through rawlink: only OID_GEN_CURRENT_PACKET_FILTER, OID_802_3_MULTICAST_LIST \
                 and OID_GEN_CURRENT_LOOKAHEAD are"
            )),
        },
        Error::Driver { op, status, hint: None } => {
            let hint = match status.kind() {
                StatusKind::NotSupported => Some(format!("the adapter does not support {name}, or not this value")),
                StatusKind::BufferTooSmall => Some(format!("the value of {name} is larger: ask for more bytes")),
                StatusKind::InvalidParameter => Some(format!("the value given for {name} is not valid")),
                StatusKind::Timeout => Some(format!("the adapter did not answer {name} in time; it was cancelled")),
                _ => Some(name),
            };
            Error::Driver { op, status, hint }
        }
        other => other,
    }
}

/// Frame `index` of a batch.
fn frame_bytes(batch: &SendBatch, index: usize) -> &[u8] {
    let mut at = 0;
    for i in 0..index {
        at += FrameHeader::record_len(batch.frame_len(i).unwrap_or(0));
    }
    let len = batch.frame_len(index).unwrap_or(0);
    batch.as_bytes().get(at + FrameHeader::LEN..at + FrameHeader::LEN + len).unwrap_or(&[])
}

/// Why the driver refused `frame` with `status`, in words.
pub fn explain_refusal(frame: &[u8], status: Status, info: &AdapterInfo) -> String {
    let tagged = frame.get(12..14).is_some_and(|t| t == [0x81, 0x00] || t == [0x88, 0xA8]);
    let max = info.mtu as usize + 14 + if tagged { 4 } else { 0 };
    match status.kind() {
        StatusKind::InvalidBufferSize => {
            if frame.len() < 14 {
                format!("{} bytes is shorter than an Ethernet header (14 bytes)", frame.len())
            } else {
                format!(
                    "{} bytes is longer than the adapter's MTU allows ({} + 14{} = {max} bytes)",
                    frame.len(),
                    info.mtu,
                    if tagged { " + 4 for the VLAN tag" } else { "" }
                )
            }
        }
        StatusKind::AccessDenied => "IEEE 802.3 MAC-control frames (EtherType 0x8808, e.g. PAUSE, or to \
             01:80:c2:00:00:01) are never sent: the NIC itself would act on them"
            .into(),
        StatusKind::InvalidParameter => match frame.get(6..12) {
            Some(src) if src != info.mac => format!(
                "source MAC {} is not the adapter's ({}); allow other sources first (--any-source, \
                 Link::allow_any_source)",
                mac_text(src),
                info.mac_text()
            ),
            _ => format!("the driver refused it as malformed ({status})"),
        },
        StatusKind::PoweredOff => "the adapter is in a low-power state".into(),
        StatusKind::InvalidDeviceState => "the adapter is not running (paused or being removed)".into(),
        _ => format!("{status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> AdapterInfo {
        AdapterInfo {
            index: 0,
            name: "\\DEVICE\\{5E1A0000-0000-4000-8000-000000000001}".into(),
            friendly_name: "Virtual Ethernet Adapter #1".into(),
            mac: [2, 0x52, 0x4c, 0, 0, 1],
            mtu: 1500,
            link_speed: 1_000_000_000,
            link_up: true,
            state: BindingState::Running,
        }
    }

    #[test]
    fn adapters_are_found_by_index_name_guid_friendly_name_or_mac() {
        let a = info();
        for s in ["0", "virtual ethernet adapter #1", "{5e1a0000-0000-4000-8000-000000000001}", "02:52:4C:00:00:01"] {
            assert!(a.matches(s), "{s}");
        }
        for s in ["1", "eth0", "02:52:4c:00:00:02", "4000-8000-00000000000f"] {
            assert!(!a.matches(s), "{s}");
        }
    }

    #[test]
    fn refusals_say_why() {
        let a = info();
        let long = vec![0u8; 1515];
        assert!(explain_refusal(&long, Status::Nt(0xC000_0206u32 as i32), &a).contains("1500 + 14 = 1514"));
        let short = [0u8; 13];
        assert!(explain_refusal(&short, Status::Nt(0xC000_0206u32 as i32), &a).contains("shorter"));
        let mut foreign = vec![0xFF; 6];
        foreign.extend_from_slice(&[2, 0, 0, 0, 0, 9]);
        foreign.extend_from_slice(&[0x08, 0x00]);
        let why = explain_refusal(&foreign, Status::Nt(0xC000_000Du32 as i32), &a);
        assert!(why.contains("02:00:00:00:00:09") && why.contains("02:52:4c:00:00:01"), "{why}");
        assert!(explain_refusal(&foreign, Status::Nt(0xC000_0022u32 as i32), &a).contains("0x8808"));
    }

    #[test]
    fn a_send_batch_holds_one_record_per_frame() {
        let b: SendBatch = [vec![1u8; 20], vec![2u8; 60]].iter().collect();
        assert_eq!(b.len(), 2);
        assert_eq!(b.as_bytes().len(), FrameHeader::record_len(20) + FrameHeader::record_len(60));
        assert_eq!(frame_bytes(&b, 1), &[2u8; 60][..]);
        let got: Vec<usize> = abi::Frames::new(b.as_bytes()).map(|(_, d)| d.len()).collect();
        assert_eq!(got, [20, 60]);
    }

    #[test]
    fn macs_and_speeds_read_and_print() {
        assert_eq!(parse_mac("02-52-4c-00-00-01"), Some([2, 0x52, 0x4c, 0, 0, 1]));
        assert_eq!(parse_mac("02:52:4c:00:00"), None);
        assert_eq!(parse_mac("02:52:4c:00:00:1"), None);
        assert_eq!(speed_text(10_000_000_000), "10 Gbit/s");
        assert_eq!(speed_text(100_000_000), "100 Mbit/s");
    }
}

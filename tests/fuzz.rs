//! A seeded random test of the whole device interface of the real rawlink.sys in ndis-host: handles opened
//! and closed (also by a standard user, who is refused), attaches to valid and invalid bindings, every IOCTL
//! code of rawlink-abi plus unknown ones with random and boundary lengths and bytes, well-formed and malformed
//! write batches, SEND, reads in every mode, OID requests, receive indications, pause / restart / unbind /
//! rebind, CLEANUP without CLOSE. Every status must be in the set defined for its operation; at the end every
//! handle is closed, the driver unloaded, and the verifier must be clean and the pool empty.
//!
//! CI runs [`bounded_random_run`] (a fixed seed, a few seconds). `cargo xtask fuzz --ops N --seed S` runs
//! [`long_random_run`] with `RAWLINK_FUZZ_OPS` / `RAWLINK_FUZZ_SEED`. A failure names the seed and the
//! operation number, so `cargo xtask fuzz --ops <n> --seed <seed>` replays it.
#![cfg(target_os = "linux")]

mod common;

use common::status::*;
use ndis_host::host::{Host, HostConfig};
use ndis_host::io::{Access, Handle, IoResult, ProcessId, UserMemory};
use ndis_host::ndis::AdapterConfig;
use rawlink_abi::{ndisprot, rawlink, FrameHeader, OidHeader, SendReply};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const STATUS_DELETE_PENDING: i32 = 0xC000_0056u32 as i32;
/// Stands for "the request never finished" (not a status anything returns).
const STATUS_PENDING_NEVER: i32 = 0x0000_0103;
const STATUS_OBJECT_PATH_NOT_FOUND: i32 = 0xC000_003Au32 as i32;
const STATUS_QUOTA_EXCEEDED: i32 = 0xC000_0044u32 as i32;
const STATUS_PRIVILEGE_NOT_HELD: i32 = 0xC000_0061u32 as i32;
const STATUS_UNSUCCESSFUL: i32 = 0xC000_0001u32 as i32;
const STATUS_BUFFER_OVERFLOW: i32 = 0x8000_0005u32 as i32;
const STATUS_REVISION_MISMATCH: i32 = 0xC000_0059u32 as i32;
const STATUS_NOT_IMPLEMENTED: i32 = 0xC000_0002u32 as i32;
const NDIS_STATUS_INVALID_LENGTH: i32 = 0xC001_0014u32 as i32;
const NDIS_STATUS_INVALID_OID: i32 = 0xC001_0017u32 as i32;
const NDIS_STATUS_INVALID_DATA: i32 = 0xC001_0015u32 as i32;
const NDIS_STATUS_MULTICAST_FULL: i32 = 0xC001_0009u32 as i32;

/// What a miniport may answer an OID request with; the driver hands these back as they are.
const MINIPORT_OID: &[i32] = &[NDIS_STATUS_INVALID_DATA, NDIS_STATUS_MULTICAST_FULL];

/// splitmix64: a tiny, well-known deterministic generator; the run only needs reproducible, well-spread
/// numbers, not cryptographic ones, so no dependency.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        // CAST: the remainder is below `n`, a usize.
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// A length: often a boundary (0, 1, record and header sizes ± 1, page and frame sizes), else random.
    fn length(&mut self, max: usize) -> usize {
        const EDGES: &[usize] = &[0, 1, 3, 4, 5, 7, 8, 11, 12, 13, 15, 16, 23, 24, 25, 31, 32, 40, 60, 64, 512, 1514];
        if self.chance(60) {
            (*self.pick(EDGES)).min(max)
        } else {
            self.below(max + 1)
        }
    }
}

/// Every status the driver declares (src/error.rs), success, and what the I/O manager itself reports.
const DEFINED: &[i32] = &[
    STATUS_SUCCESS,
    STATUS_UNSUCCESSFUL,
    STATUS_ACCESS_DENIED,
    STATUS_DEVICE_POWERED_OFF,
    STATUS_NOT_IMPLEMENTED,
    STATUS_INVALID_PARAMETER,
    STATUS_INVALID_DEVICE_REQUEST,
    STATUS_INSUFFICIENT_RESOURCES,
    STATUS_NOT_SUPPORTED,
    STATUS_BUFFER_TOO_SMALL,
    STATUS_BUFFER_OVERFLOW,
    STATUS_DEVICE_NOT_READY,
    STATUS_INVALID_DEVICE_STATE,
    STATUS_CANCELLED,
    STATUS_INVALID_BUFFER_SIZE,
    STATUS_REVISION_MISMATCH,
    STATUS_NO_MORE_ENTRIES,
    STATUS_NOT_FOUND,
    STATUS_IO_TIMEOUT,
    STATUS_DELETE_PENDING,
    STATUS_PRIVILEGE_NOT_HELD,
    STATUS_QUOTA_EXCEEDED,
    NDIS_STATUS_INVALID_LENGTH,
    NDIS_STATUS_INVALID_OID,
];

/// What an operation may answer.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Any defined status.
    Defined,
    /// A defined failure: the request was malformed (never success).
    Failure,
    /// Exactly these.
    OneOf(&'static [i32]),
    /// Any defined status or a miniport's answer to an OID request.
    Oid,
}

impl Expect {
    fn admits(self, st: i32) -> bool {
        match self {
            Expect::Defined => DEFINED.contains(&st),
            Expect::Failure => st != STATUS_SUCCESS && DEFINED.contains(&st),
            Expect::OneOf(set) => set.contains(&st),
            Expect::Oid => DEFINED.contains(&st) || MINIPORT_OID.contains(&st),
        }
    }
}

/// The engine's view of one open handle.
#[derive(Debug, Clone)]
struct Slot {
    handle: Handle,
    /// IRP_MJ_CLEANUP ran (cleanup_only): every later request must be refused with DELETE_PENDING.
    cleaned: bool,
    /// ALLOW_ANY_SOURCE may be on (a successful request with a non-zero input): foreign-source writes may pass.
    any_source: bool,
    /// The handle was attached in NDISPROT mode: writes are single raw frames.
    ndisprot: bool,
    /// The last read mode set successfully may block without a timeout.
    may_block: bool,
    /// The MAC of the binding the handle was last attached to successfully.
    mac: Option<[u8; 6]>,
    /// A mapped ring attached to the handle: its memory, layout and attach request.
    ring: Option<(Arc<UserMemory>, rawlink_abi::ring::RingLayout, usize)>,
}

/// How a ring's attach request may end: cancelled (CancelIo, CLEANUP), the adapter gone, or broken by the
/// process's consumer index.
const RING_ENDS: &[i32] = &[STATUS_CANCELLED, STATUS_INVALID_DEVICE_STATE, STATUS_INVALID_PARAMETER];

/// The outcome of a run.
#[derive(Debug)]
pub struct Report {
    pub seed: u64,
    pub ops: u64,
    pub elapsed: Duration,
    /// (operation, status) → how often.
    pub seen: BTreeMap<(&'static str, i32), u64>,
    /// Operation kind → (count, time spent).
    pub cost: BTreeMap<&'static str, (u64, Duration)>,
}

struct Engine {
    h: Host,
    rng: Rng,
    seed: u64,
    op: u64,
    slots: Vec<Slot>,
    user: ProcessId,
    /// Adapters ever added (indices of the host's adapter list); bound = not removed.
    adapters: Vec<(AdapterConfig, bool)>,
    paused: Vec<bool>,
    seen: BTreeMap<(&'static str, i32), u64>,
    /// Operation kind → (count, time spent).
    cost: BTreeMap<&'static str, (u64, Duration)>,
}

const MAX_HANDLES: usize = 12;
/// Adapters ever added (each rebind adds a new one, ethernet(n) numbers them up to 255).
const MAX_ADAPTERS: usize = 250;
/// Bindings live at once.
const MAX_LIVE: usize = 4;

const CODES: &[u32] = &[
    ndisprot::IOCTL_NDISPROT_OPEN_DEVICE,
    ndisprot::IOCTL_NDISPROT_QUERY_OID_VALUE,
    ndisprot::IOCTL_NDISPROT_QUERY_BINDING,
    ndisprot::IOCTL_NDISPROT_BIND_WAIT,
    ndisprot::IOCTL_NDISPROT_SET_OID_VALUE,
    rawlink::IOCTL_RAWLINK_QUERY_BINDING,
    rawlink::IOCTL_RAWLINK_OPEN,
    rawlink::IOCTL_RAWLINK_GET_STATISTICS,
    rawlink::IOCTL_RAWLINK_SET_READ_MODE,
    rawlink::IOCTL_RAWLINK_ALLOW_ANY_SOURCE,
    rawlink::IOCTL_RAWLINK_SET_FILTER,
    rawlink::IOCTL_RAWLINK_QUERY_OID,
    rawlink::IOCTL_RAWLINK_SET_OID,
    rawlink::IOCTL_RAWLINK_GET_BINDING_STATISTICS,
    rawlink::IOCTL_RAWLINK_SET_QUEUE_SIZE,
    rawlink::IOCTL_RAWLINK_WAIT_EVENT,
    rawlink::IOCTL_RAWLINK_SEND,
    rawlink::IOCTL_RAWLINK_SET_CAPTURE_LENGTH,
];

/// OIDs worth asking for: allow-listed ones, settable ones, refused and vendor-private ones.
const OIDS: &[u32] = &[
    0x0001_0101, // OID_GEN_SUPPORTED_LIST
    0x0001_0102, // OID_GEN_HARDWARE_STATUS
    0x0001_0106, // OID_GEN_MAXIMUM_FRAME_SIZE
    0x0001_010E, // OID_GEN_CURRENT_PACKET_FILTER
    0x0001_010F, // OID_GEN_CURRENT_LOOKAHEAD
    0x0001_0114, // OID_GEN_MEDIA_CONNECT_STATUS
    0x0001_0202, // OID_GEN_RCV_OK
    0x0102_0101, // OID_802_3_PERMANENT_ADDRESS
    0x0102_0102, // OID_802_3_CURRENT_ADDRESS
    0x0102_0103, // OID_802_3_MULTICAST_LIST
    0x0102_0104, // OID_802_3_MAXIMUM_LIST_SIZE
    0xFF00_0001, // vendor-private
    0x0000_0000,
    0xFFFF_FFFF,
];

fn utf16z(s: &str) -> Vec<u8> {
    s.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect()
}

impl Engine {
    fn new(seed: u64) -> Self {
        let bytes = common::package_file("rawlink.sys");
        let mut h = Host::load(&bytes, HostConfig::default()).unwrap_or_else(|e| panic!("loading rawlink.sys: {e}"));
        let mut adapters = Vec::new();
        for n in 1..=2 {
            let a = AdapterConfig::ethernet(n);
            h.add_adapter(a.clone()).expect("adapter");
            adapters.push((a, true));
        }
        assert_eq!(h.driver_entry().expect("DriverEntry ran"), 0);
        let user = h.new_process_as(ndis_host::security::Token::standard_user());
        Engine {
            h,
            rng: Rng(seed),
            seed,
            op: 0,
            slots: Vec::new(),
            user,
            paused: vec![false; adapters.len()],
            adapters,
            seen: BTreeMap::new(),
            cost: BTreeMap::new(),
        }
    }

    fn check(&mut self, what: &'static str, st: i32, expect: Expect, detail: impl FnOnce() -> String) {
        *self.seen.entry((what, st)).or_insert(0) += 1;
        assert!(
            expect.admits(st),
            "seed {:#x}, operation #{}: {what} → {st:#010x}, expected {expect:?}: {}\n\
             replay: cargo xtask fuzz --ops {} --seed {:#x}",
            self.seed,
            self.op,
            detail(),
            self.op + 1,
            self.seed,
        );
    }

    /// A frame from a random bound adapter's MAC (or a foreign one), of a random EtherType.
    fn frame(&mut self, own_source: bool, len: usize) -> Vec<u8> {
        let a = self.rng.below(self.adapters.len());
        let mac = self.adapters[a].0.mac;
        self.frame_of(if own_source { Some(mac) } else { None }, len)
    }

    /// A frame whose source is `source` (or a foreign MAC), of a random EtherType.
    fn frame_of(&mut self, source: Option<[u8; 6]>, len: usize) -> Vec<u8> {
        let mut f = Vec::with_capacity(len.max(14));
        let dst = *self.rng.pick(&[[0xFF; 6], [0x01, 0x00, 0x5E, 0, 0, 1], [0x02, 0x52, 0x4C, 0, 0, 9]]);
        f.extend_from_slice(&dst);
        if let Some(mac) = source {
            f.extend_from_slice(&mac);
        } else {
            f.extend_from_slice(&[0x0A, 0xBA, 0xD0, 0xBE, 0xEF, self.rng.next() as u8]);
        }
        let ty: u16 = *self.rng.pick(&[0x88B5, 0x0800, 0x86DD, 0x8100, 0x88CC, 0x0806]);
        f.extend_from_slice(&ty.to_be_bytes());
        let rest = len.saturating_sub(f.len());
        f.extend(self.rng.bytes(rest));
        f.truncate(len.max(14));
        f
    }

    /// A write batch and whether it is certainly malformed (must never succeed).
    fn write_batch(&mut self, any_source: bool, mac: Option<[u8; 6]>) -> (Vec<u8>, bool) {
        let own = mac.unwrap_or(self.adapters[0].0.mac);
        let kind = self.rng.below(8);
        match kind {
            // Well-formed records, each a frame of this handle's first adapter (may be the wrong binding).
            0..=2 => {
                let n = 1 + self.rng.below(4);
                let frames: Vec<Vec<u8>> = (0..n)
                    .map(|_| {
                        let len = 14 + self.rng.below(1500);
                        self.frame_of(Some(own), len)
                    })
                    .collect();
                (common::batch(&frames), false)
            }
            // A record whose length runs past the buffer.
            3 => {
                let f = self.frame_of(Some(own), 60);
                let mut b = common::batch(&[f]);
                let grow = 1 + self.rng.below(1 << 20) as u32;
                let bad = 60 + grow;
                b[0..4].copy_from_slice(&bad.to_le_bytes());
                if self.rng.chance(50) {
                    b[4..8].copy_from_slice(&bad.to_le_bytes());
                }
                (b, true)
            }
            // An oversize frame (past the MTU of 1500 + 14 header bytes).
            4 => {
                let len = 1515 + self.rng.below(9000);
                let f = self.frame_of(Some(own), len);
                (common::batch(&[f]), true)
            }
            // A foreign source MAC.
            5 => {
                let f = self.frame_of(None, 60);
                (common::batch(&[f]), !any_source)
            }
            // An 802.3x PAUSE frame (MAC control, 0x8808).
            6 => {
                let mut f = vec![0x01, 0x80, 0xC2, 0x00, 0x00, 0x01];
                f.extend_from_slice(&own);
                f.extend_from_slice(&[0x88, 0x08, 0x00, 0x01, 0xFF, 0xFF]);
                f.resize(60, 0);
                (common::batch(&[f]), true)
            }
            // Random bytes (a truncated header is malformed; anything else may parse).
            _ => {
                let n = self.rng.length(256);
                let b = self.rng.bytes(n);
                let malformed = (1..FrameHeader::LEN).contains(&n);
                (b, malformed)
            }
        }
    }

    /// Finishes a submitted request: requests that may wait for data or events are cancelled if they did not
    /// complete at once; everything else must complete.
    fn settle(seed: u64, op: u64, mut p: ndis_host::io::PendingIo<'_>, may_wait: bool) -> IoResult {
        if may_wait && p.wait(Duration::from_millis(50)).expect("wait").is_none() {
            p.cancel().expect("cancel");
        }
        match p.wait(Duration::from_secs(20)).expect("wait") {
            Some(r) => r,
            None => panic!("seed {seed:#x}, operation #{op}: a request never completed"),
        }
    }

    fn random_slot(&mut self) -> Option<usize> {
        if self.slots.is_empty() {
            None
        } else {
            Some(self.rng.below(self.slots.len()))
        }
    }

    fn step(&mut self) {
        let choice = self.rng.below(100);
        let t = Instant::now();
        let kind: (&'static str, fn(&mut Self)) = match choice {
            0..=5 => ("open", Self::open),
            6..=7 => ("open as user", Self::open_as_user),
            8 => ("open below", Self::open_below),
            9..=10 => ("close", Self::close),
            11 => ("close while pending", Self::close_while_pending),
            12 => ("cleanup", Self::cleanup_only),
            13..=20 => ("attach", Self::attach),
            21..=34 => ("ioctl", Self::ioctl_known),
            35..=38 => ("ioctl unknown", Self::ioctl_unknown),
            39..=50 => ("write", Self::write),
            51..=55 => ("send", Self::send),
            56..=63 => ("read", Self::read),
            64..=67 => ("read mode", Self::read_mode),
            68..=73 => ("oid", Self::oid),
            74..=89 => ("indicate", Self::indicate),
            90..=93 => ("pause/restart", Self::pause_restart),
            94..=95 => ("unbind/rebind", Self::unbind_rebind),
            96..=97 => ("ring", Self::ring),
            _ => ("filter", Self::filter),
        };
        (kind.1)(self);
        let c = self.cost.entry(kind.0).or_default();
        c.0 += 1;
        c.1 += t.elapsed();
    }

    fn open(&mut self) {
        if self.slots.len() >= MAX_HANDLES {
            return self.close();
        }
        match self.h.open("\\\\.\\RawLink") {
            Ok(handle) => {
                self.check("create", STATUS_SUCCESS, Expect::Defined, String::new);
                self.slots.push(Slot {
                    handle,
                    cleaned: false,
                    any_source: false,
                    ndisprot: false,
                    may_block: false,
                    mac: None,
                    ring: None,
                });
            }
            Err(e) => {
                let st = e.status().unwrap_or_else(|| panic!("seed {:#x}: open: {e}", self.seed));
                self.check(
                    "create",
                    st,
                    Expect::OneOf(&[STATUS_INSUFFICIENT_RESOURCES, STATUS_QUOTA_EXCEEDED]),
                    || e.to_string(),
                );
            }
        }
    }

    fn open_as_user(&mut self) {
        let access = *self.rng.pick(&[Access::READ, Access::WRITE, Access::READ_WRITE]);
        match self.h.open_in(self.user, "\\\\.\\RawLink", access) {
            Ok(f) => {
                let _ = self.h.close(f);
                self.check("create (standard user)", STATUS_SUCCESS, Expect::OneOf(&[STATUS_ACCESS_DENIED]), || {
                    "a standard user opened the control device".into()
                });
            }
            Err(e) => {
                let st = e.status().unwrap_or_else(|| panic!("seed {:#x}: open: {e}", self.seed));
                self.check("create (standard user)", st, Expect::OneOf(&[STATUS_ACCESS_DENIED]), || e.to_string());
            }
        }
    }

    fn open_below(&mut self) {
        let path = *self.rng.pick(&["\\\\.\\RawLink\\x", "\\\\.\\RawLink\\..\\RawLink", "\\\\.\\RawLink\\a\\b"]);
        match self.h.open(path) {
            Ok(f) => {
                let _ = self.h.close(f);
                self.check("create (below the device)", STATUS_SUCCESS, Expect::Failure, || path.into());
            }
            Err(e) => {
                let st = e.status().unwrap_or_else(|| panic!("seed {:#x}: open: {e}", self.seed));
                self.check("create (below the device)", st, Expect::OneOf(&[STATUS_OBJECT_PATH_NOT_FOUND]), || {
                    path.into()
                });
            }
        }
    }

    fn close(&mut self) {
        let Some(i) = self.random_slot() else { return self.open() };
        let s = self.slots.swap_remove(i);
        let st = self.h.close(s.handle).expect("close");
        self.check("close", st, Expect::OneOf(&[STATUS_SUCCESS]), String::new);
        self.ring_closed(&s);
    }

    /// After the handle's CLEANUP: its ring's attach request must have ended.
    fn ring_closed(&mut self, s: &Slot) {
        if let Some((_, _, irp)) = &s.ring {
            let r = self.h.wait_request(*irp, Duration::from_secs(20)).expect("wait");
            let st = r.map_or(STATUS_PENDING_NEVER, |r| r.status);
            self.check("ring at close", st, Expect::OneOf(RING_ENDS), String::new);
        }
    }

    /// Mapped rings: attach one (well-formed or not), consume as a good process does, scribble over the
    /// consumer index or anything else of the ring, wait for frames, cancel the attach request, or look
    /// whether the driver detached it (broken, or the adapter went away).
    fn ring(&mut self) {
        use rawlink_abi::ring::{self as r, RingLayout, RingSetup};
        let Some(i) = self.random_slot() else { return self.open() };
        let Some((mem, layout, irp)) = self.slots[i].ring.clone() else {
            let slot_size = if self.rng.chance(80) {
                *self.rng.pick(&[64u32, 128, 256, 2048, 4096, 65536])
            } else {
                self.rng.next() as u32
            };
            let slots = *self.rng.pick(&[2u32, 16, 64, 1024]);
            let len = match RingLayout::with_slots(slots, slot_size.clamp(64, 65536).next_power_of_two()) {
                Ok(l) if self.rng.chance(85) => l.len(),
                _ => self.rng.length(1 << 20),
            };
            let mut setup = RingSetup { slot_size, flags: 0 }.to_bytes().to_vec();
            if self.rng.chance(10) {
                let n = self.rng.below(12);
                setup = self.rng.bytes(n);
            }
            let Ok(mem) = UserMemory::new(len) else { return };
            let mem = Arc::new(mem);
            let handle = self.slots[i].handle;
            let mut p = self.h.submit_ioctl_shared(handle, r::IOCTL_RAWLINK_RING_ATTACH, &setup, &mem).expect("ioctl");
            let (done, irp) = (p.is_completed(), p.irp());
            let st = if done {
                p.wait(Duration::from_secs(20)).expect("wait").map_or(STATUS_PENDING_NEVER, |r| r.status)
            } else {
                STATUS_SUCCESS
            };
            drop(p);
            if done {
                let e = self.on(i, Expect::Failure);
                self.check("ring attach", st, e, || format!("setup {setup:02x?}, {len} bytes"));
                return;
            }
            let e = self.on(i, Expect::Defined);
            self.check("ring attach", STATUS_SUCCESS, e, || "a ring attached after CLEANUP".into());
            let l = RingLayout::parse_header(&{
                let mut b = [0u8; 64];
                mem.read_into(0, &mut b);
                b
            });
            match l {
                Ok(l) => self.slots[i].ring = Some((mem, l, irp)),
                Err(_) => panic!("seed {:#x}, operation #{}: an attached ring has no valid header", self.seed, self.op),
            }
            return;
        };
        match self.rng.below(10) {
            0..=3 => {
                // A good process: take everything produced.
                let producer = mem.load_u32(r::PRODUCER_OFFSET);
                let consumer = mem.load_u32(r::CONSUMER_OFFSET);
                if producer.wrapping_sub(consumer) > layout.slot_count {
                    // The consumer index is garbage already; the driver breaks the ring when it looks.
                    return;
                }
                mem.store_u32(r::CONSUMER_OFFSET, producer);
            }
            4 => mem.store_u32(r::CONSUMER_OFFSET, self.rng.next() as u32),
            5 => {
                let at = self.rng.below(layout.len()) & !3;
                mem.store_u32(at, self.rng.next() as u32);
            }
            6..=7 => {
                let handle = self.slots[i].handle;
                let p = self.h.submit_ioctl(handle, r::IOCTL_RAWLINK_RING_WAIT, &[], 0).expect("ioctl");
                let res = Self::settle(self.seed, self.op, p, true);
                let e = self.on(i, Expect::Defined);
                self.check("ring wait", res.status, e, String::new);
            }
            8 => {
                let _ = self.h.cancel_request(irp).expect("cancel");
                let r = self.h.wait_request(irp, Duration::from_secs(20)).expect("wait");
                let st = r.map_or(STATUS_PENDING_NEVER, |r| r.status);
                self.check("ring cancel", st, Expect::OneOf(RING_ENDS), String::new);
                self.slots[i].ring = None;
            }
            _ => {
                if let Some(res) = self.h.wait_request(irp, Duration::ZERO).expect("wait") {
                    self.check("ring detached", res.status, Expect::OneOf(RING_ENDS), String::new);
                    self.slots[i].ring = None;
                }
            }
        }
    }

    /// A request that waits (a blocking read without a timeout, or WAIT_EVENT) is in flight when the handle is
    /// closed: CLEANUP must complete it (cancelled, or with what arrived), and CLOSE must find nothing left.
    fn close_while_pending(&mut self) {
        let Some(i) = self.random_slot() else { return self.open() };
        let s = self.slots.swap_remove(i);
        let read = self.rng.chance(50);
        if read && !s.cleaned {
            let mode = rawlink_abi::ReadMode { blocking: true, min_bytes: 1, timeout_ms: 0 };
            let r = self.h.device_io_control(s.handle, rawlink::IOCTL_RAWLINK_SET_READ_MODE, &mode.to_bytes(), 0);
            let st = r.expect("ioctl").status;
            self.check("read mode", st, Expect::Defined, String::new);
        }
        let (seed, op) = (self.seed, self.op);
        let mut p = if read {
            self.h.submit_read(s.handle, 4096).expect("read")
        } else {
            self.h.submit_ioctl(s.handle, rawlink::IOCTL_RAWLINK_WAIT_EVENT, &[], 16).expect("ioctl")
        };
        let closed = self.h.close(s.handle).expect("close");
        let r = match p.wait(Duration::from_secs(20)).expect("wait") {
            Some(r) => r,
            None => panic!("seed {seed:#x}, operation #{op}: a request outlived its handle's close"),
        };
        drop(p);
        self.ring_closed(&s);
        let what = if read { "read pending at close" } else { "WAIT_EVENT pending at close" };
        self.check("close (request pending)", closed, Expect::OneOf(&[STATUS_SUCCESS]), String::new);
        self.check(what, r.status, Expect::Defined, String::new);
    }

    fn cleanup_only(&mut self) {
        let Some(i) = self.random_slot() else { return };
        if self.slots[i].cleaned {
            return;
        }
        let st = self.h.cleanup_only(self.slots[i].handle).expect("cleanup");
        self.slots[i].cleaned = true;
        self.check("cleanup", st, Expect::OneOf(&[STATUS_SUCCESS]), String::new);
        let s = self.slots[i].clone();
        self.ring_closed(&s);
        self.slots[i].ring = None;
    }

    /// The expectation for a request on `slot`, given what the operation would otherwise expect.
    fn on(&self, slot: usize, e: Expect) -> Expect {
        if self.slots[slot].cleaned {
            Expect::OneOf(&[STATUS_DELETE_PENDING])
        } else {
            e
        }
    }

    fn ioctl(&mut self, slot: usize, code: u32, input: &[u8], out: usize, may_wait: bool) -> IoResult {
        let handle = self.slots[slot].handle;
        let p = self.h.submit_ioctl(handle, code, input, out).expect("ioctl");
        Self::settle(self.seed, self.op, p, may_wait)
    }

    fn attach(&mut self) {
        let Some(i) = self.random_slot() else { return self.open() };
        let n = self.adapters.len() as u32;
        let live = self.adapters.iter().filter(|a| a.1).count();
        let index = match self.rng.below(10) {
            0..=6 => self.rng.below(live) as u32,
            7..=8 => self.rng.below(n as usize + 1) as u32,
            _ => self.rng.next() as u32,
        };
        if self.rng.chance(25) {
            // NDISPROT's open names the adapter (any case), or a bad name.
            let name = if index < n {
                let a = &self.adapters[index as usize].0.name;
                if self.rng.chance(50) {
                    a.to_lowercase()
                } else {
                    a.clone()
                }
            } else {
                "\\DEVICE\\{00000000-0000-0000-0000-000000000000}".into()
            };
            let mut input = utf16z(&name);
            if self.rng.chance(10) {
                input.pop();
            }
            let r = self.ioctl(i, ndisprot::IOCTL_NDISPROT_OPEN_DEVICE, &input, 0, false);
            if r.status == STATUS_SUCCESS {
                self.slots[i].ndisprot = true;
                self.slots[i].mac = Some(self.adapters[index as usize].0.mac);
            }
            let e = self.on(i, Expect::Defined);
            self.check("NDISPROT open", r.status, e, || name.clone());
        } else {
            let mut input = index.to_le_bytes().to_vec();
            if self.rng.chance(10) {
                input.truncate(self.rng.below(4));
            }
            let r = self.ioctl(i, rawlink::IOCTL_RAWLINK_OPEN, &input, 0, false);
            if r.status == STATUS_SUCCESS {
                // The binding's MAC, from its record (binding indices are the driver's, not the adapters').
                let q = self.ioctl(i, rawlink::IOCTL_RAWLINK_QUERY_BINDING, &index.to_le_bytes(), 1024, false);
                self.check("query binding", q.status, Expect::OneOf(&[STATUS_SUCCESS]), String::new);
                let (rec, _, _) = rawlink_abi::BindingRecord::parse(&q.output).expect("binding record");
                self.slots[i].mac = Some(rec.mac);
            }
            let e = if input.len() < 4 {
                Expect::OneOf(&[STATUS_BUFFER_TOO_SMALL, STATUS_INVALID_PARAMETER])
            } else if index as usize >= live {
                Expect::OneOf(&[STATUS_NOT_FOUND, STATUS_INVALID_DEVICE_STATE])
            } else {
                Expect::Defined
            };
            let e = self.on(i, e);
            self.check("attach", r.status, e, || format!("binding {index}, input {input:?}"));
        }
    }

    fn ioctl_known(&mut self) {
        let Some(i) = self.random_slot() else { return self.open() };
        let code = *self.rng.pick(CODES);
        let in_len = self.rng.length(2048);
        let input = self.rng.bytes(in_len);
        let out = self.rng.length(4096);
        let r = self.ioctl(i, code, &input, out, true);
        if code == rawlink::IOCTL_RAWLINK_ALLOW_ANY_SOURCE && r.status == STATUS_SUCCESS {
            self.slots[i].any_source = true;
        }
        if code == ndisprot::IOCTL_NDISPROT_OPEN_DEVICE && r.status == STATUS_SUCCESS {
            self.slots[i].ndisprot = true;
        }
        if code == rawlink::IOCTL_RAWLINK_SET_READ_MODE && r.status == STATUS_SUCCESS {
            self.slots[i].may_block = true;
        }
        let oid_codes = [
            ndisprot::IOCTL_NDISPROT_QUERY_OID_VALUE,
            ndisprot::IOCTL_NDISPROT_SET_OID_VALUE,
            rawlink::IOCTL_RAWLINK_QUERY_OID,
            rawlink::IOCTL_RAWLINK_SET_OID,
        ];
        let e = self.on(i, if oid_codes.contains(&code) { Expect::Oid } else { Expect::Defined });
        self.check("ioctl (random input)", r.status, e, || format!("code {code:#x}, in {in_len}, out {out}"));
        assert!(r.information <= out.max(in_len), "seed {:#x}, #{}: Information past the buffers", self.seed, self.op);
    }

    fn ioctl_unknown(&mut self) {
        let Some(i) = self.random_slot() else { return self.open() };
        // Same device type (FILE_DEVICE_NETWORK) and methods, functions the driver does not define, any access
        // a READ_WRITE handle holds; or an entirely random code whose access bits might not be granted.
        let code = if self.rng.chance(70) {
            let function = loop {
                let f = self.rng.below(0x1000) as u32;
                if !CODES.iter().any(|c| (c >> 2) & 0xFFF == f) {
                    break f;
                }
            };
            (0x12 << 16) | ((self.rng.below(3) as u32) << 14) | (function << 2) | self.rng.below(4) as u32
        } else {
            loop {
                let c = self.rng.next() as u32;
                if !CODES.contains(&c) {
                    break c;
                }
            }
        };
        let in_len = self.rng.length(512);
        let input = self.rng.bytes(in_len);
        let out = self.rng.length(512);
        let r = self.ioctl(i, code, &input, out, false);
        let e = self.on(i, Expect::OneOf(&[STATUS_INVALID_DEVICE_REQUEST, STATUS_NOT_SUPPORTED]));
        self.check("ioctl (unknown code)", r.status, e, || format!("code {code:#x}"));
    }

    fn write(&mut self) {
        let Some(i) = self.random_slot() else { return self.open() };
        let s = self.slots[i].clone();
        let (bytes, malformed) = if s.ndisprot {
            let len = self.rng.length(1600);
            let own = if self.rng.chance(70) { Some(s.mac.unwrap_or(self.adapters[0].0.mac)) } else { None };
            let f = self.frame_of(own, len);
            (f, false)
        } else {
            self.write_batch(s.any_source, s.mac)
        };
        let p = self.h.submit_write(s.handle, &bytes).expect("write");
        let r = Self::settle(self.seed, self.op, p, false);
        let e = self.on(i, if malformed { Expect::Failure } else { Expect::Defined });
        let what = if s.ndisprot {
            "write (NDISPROT)"
        } else if malformed {
            "write (malformed)"
        } else {
            "write"
        };
        self.check(what, r.status, e, || format!("{} bytes: {:02x?}", bytes.len(), &bytes[..bytes.len().min(32)]));
    }

    fn send(&mut self) {
        let Some(i) = self.random_slot() else { return self.open() };
        let s = self.slots[i].clone();
        let (bytes, malformed) = self.write_batch(s.any_source, s.mac);
        let out = *self.rng.pick(&[0, SendReply::LEN - 1, SendReply::LEN, SendReply::LEN + 8]);
        let r = self.ioctl(i, rawlink::IOCTL_RAWLINK_SEND, &bytes, out, false);
        // A malformed batch is answered with the partial reply: success, and the reply names the first frame
        // not sent and a defined failure status. Without room for the reply nothing is sent.
        let e = if out < SendReply::LEN { Expect::Failure } else { Expect::Defined };
        let e = self.on(i, e);
        self.check("SEND", r.status, e, || format!("{} bytes, out {out}", bytes.len()));
        if r.status == STATUS_SUCCESS {
            assert_eq!(r.information, SendReply::LEN, "seed {:#x}, #{}: SEND reply length", self.seed, self.op);
            let reply = SendReply::parse(&r.output).expect("reply");
            if reply.first_failure != SendReply::NONE {
                let st = reply.status;
                self.check("SEND reply (a frame failed)", st, Expect::Failure, || format!("{reply:?}"));
            } else {
                self.check("SEND reply (all sent)", reply.status, Expect::OneOf(&[STATUS_SUCCESS]), || {
                    format!("{reply:?}")
                });
                assert!(!malformed, "seed {:#x}, #{}: a malformed batch was sent whole: {reply:?}", self.seed, self.op);
            }
        }
    }

    fn read(&mut self) {
        let Some(i) = self.random_slot() else { return self.open() };
        let len = self.rng.length(70_000);
        let p = self.h.submit_read(self.slots[i].handle, len).expect("read");
        let r = Self::settle(self.seed, self.op, p, true);
        let e = self.on(i, Expect::Defined);
        self.check("read", r.status, e, || format!("{len} bytes"));
        if r.status == STATUS_SUCCESS {
            assert!(r.information <= len, "seed {:#x}, #{}: read past the buffer", self.seed, self.op);
        }
    }

    fn read_mode(&mut self) {
        let Some(i) = self.random_slot() else { return self.open() };
        let blocking = self.rng.chance(60);
        let mode = rawlink_abi::ReadMode {
            blocking,
            min_bytes: *self.rng.pick(&[0, 1, 64, 1 << 20]),
            timeout_ms: *self.rng.pick(&[0, 1, 2, 5]),
        };
        let n = *self.rng.pick(&[4usize, 8, 12, 12, 12]);
        let r = self.ioctl(i, rawlink::IOCTL_RAWLINK_SET_READ_MODE, &mode.to_bytes()[..n], 0, false);
        if r.status == STATUS_SUCCESS {
            self.slots[i].may_block = blocking;
        }
        let e = self.on(i, Expect::Defined);
        self.check("read mode", r.status, e, || format!("{mode:?} ({n} bytes)"));
    }

    fn oid(&mut self) {
        let Some(i) = self.random_slot() else { return self.open() };
        let oid = *self.rng.pick(OIDS);
        let set = self.rng.chance(40);
        let ndisprot = self.rng.chance(30);
        let (code, mut input) = if ndisprot {
            let code =
                if set { ndisprot::IOCTL_NDISPROT_SET_OID_VALUE } else { ndisprot::IOCTL_NDISPROT_QUERY_OID_VALUE };
            (code, oid.to_le_bytes().to_vec())
        } else {
            let code = if set { rawlink::IOCTL_RAWLINK_SET_OID } else { rawlink::IOCTL_RAWLINK_QUERY_OID };
            let hdr = OidHeader { oid, port: 0, timeout_ms: *self.rng.pick(&[0, 1, 100]) };
            (code, hdr.to_bytes().to_vec())
        };
        let extra = self.rng.length(64);
        if set {
            input.extend(self.rng.bytes(extra));
        }
        let out = if set { 0 } else { input.len() + extra };
        let r = self.ioctl(i, code, &input, out, false);
        let e = self.on(i, Expect::Oid);
        self.check(if set { "OID set" } else { "OID query" }, r.status, e, || format!("oid {oid:#x}, code {code:#x}"));
    }

    fn filter(&mut self) {
        let Some(i) = self.random_slot() else { return self.open() };
        let classes = self.rng.next() as u32 & 0x3F;
        let n = self.rng.below(5);
        let types: Vec<u16> = (0..n).map(|_| *self.rng.pick(&[0x88B5u16, 0x0800, 0x86DD, 0x0806])).collect();
        // Built by hand: unknown class bits (0x10) and counts past the types given must be refused, not parsed.
        let mut b = classes.to_le_bytes().to_vec();
        let count = if self.rng.chance(10) { self.rng.below(40) as u32 } else { n as u32 };
        b.extend_from_slice(&count.to_le_bytes());
        b.extend(types.iter().flat_map(|t| t.to_le_bytes()));
        let len = b.len();
        let cut = if self.rng.chance(15) { self.rng.below(len + 1) } else { len };
        let r = self.ioctl(i, rawlink::IOCTL_RAWLINK_SET_FILTER, &b[..cut], 0, false);
        let e = self.on(i, Expect::Defined);
        self.check("filter", r.status, e, || format!("classes {classes:#x}, {n} types, {cut} of {len} bytes"));
    }

    fn indicate(&mut self) {
        let live: Vec<usize> = (0..self.adapters.len()).filter(|&a| self.adapters[a].1).collect();
        if live.is_empty() {
            return;
        }
        let a = *self.rng.pick(&live);
        let n = 1 + self.rng.below(6);
        let frames: Vec<Vec<u8>> = (0..n)
            .map(|_| {
                let len = self.rng.length(1514).max(14);
                let own = self.rng.chance(50);
                self.frame(own, len)
            })
            .collect();
        let resources = self.rng.chance(20);
        self.h.indicate_receive(a, frames, resources).expect("receive");
    }

    fn pause_restart(&mut self) {
        let live: Vec<usize> = (0..self.adapters.len()).filter(|&a| self.adapters[a].1).collect();
        if live.is_empty() {
            return;
        }
        let a = *self.rng.pick(&live);
        if self.paused[a] {
            let st = self.h.restart(a).expect("restart");
            self.paused[a] = false;
            self.check("restart", st, Expect::OneOf(&[STATUS_SUCCESS]), String::new);
        } else if self.rng.chance(30) {
            let st = self.h.pause(a).expect("pause");
            self.paused[a] = true;
            self.check("pause", st, Expect::OneOf(&[STATUS_SUCCESS]), String::new);
        }
    }

    fn unbind_rebind(&mut self) {
        let live: Vec<usize> = (0..self.adapters.len()).filter(|&a| self.adapters[a].1).collect();
        if live.len() > 1 && (self.rng.chance(50) || live.len() >= MAX_LIVE || self.adapters.len() >= MAX_ADAPTERS) {
            let a = *self.rng.pick(&live);
            self.h.remove_adapter(a).expect("unbind");
            self.adapters[a].1 = false;
        } else if self.adapters.len() < MAX_ADAPTERS {
            // CAST: at most MAX_ADAPTERS.
            let cfg = AdapterConfig::ethernet(self.adapters.len() as u8 + 1);
            self.h.add_adapter(cfg.clone()).expect("bind");
            self.adapters.push((cfg, true));
            self.paused.push(false);
        }
    }

    fn finish(mut self, ops: u64, started: Instant) -> Report {
        for s in std::mem::take(&mut self.slots) {
            let st = self.h.close(s.handle).expect("close");
            self.check("close", st, Expect::OneOf(&[STATUS_SUCCESS]), String::new);
            self.ring_closed(&s);
        }
        self.h.unload().expect("unload");
        let v = self.h.violations();
        assert!(v.is_empty(), "seed {:#x}, {ops} operations: verifier: {v:#?}", self.seed);
        assert!(self.h.pool().is_empty(), "seed {:#x}, {ops} operations: pool left: {:?}", self.seed, self.h.pool());
        Report { seed: self.seed, ops, elapsed: started.elapsed(), seen: self.seen, cost: self.cost }
    }
}

/// Runs `ops` random operations from `seed` on a fresh host.
pub fn run(seed: u64, ops: u64) -> Report {
    let started = Instant::now();
    let mut e = Engine::new(seed);
    for n in 0..ops {
        e.op = n;
        e.step();
    }
    e.finish(ops, started)
}

fn print(r: &Report) {
    let secs = r.elapsed.as_secs_f64();
    println!(
        "fuzz: seed {:#x}, {} operations in {secs:.1} s ({:.0} ops/s)",
        r.seed,
        r.ops,
        r.ops as f64 / secs.max(1e-9)
    );
    for ((what, st), n) in &r.seen {
        println!("  {what:<28} {st:#010x} × {n}");
    }
    for (kind, (n, t)) in &r.cost {
        println!("  {kind:<16} {n:>9} ops {:>8.1} µs/op", t.as_secs_f64() * 1e6 / (*n).max(1) as f64);
    }
    println!("fuzz: verdict: every status defined, verifier clean, pool empty");
}

#[test]
fn bounded_random_run() {
    let r = run(0x5EED_0014, 12_000);
    print(&r);
    // The run reached the interesting statuses, not only refusals.
    for (what, st) in [
        ("write", STATUS_SUCCESS),
        ("read", STATUS_SUCCESS),
        ("attach", STATUS_SUCCESS),
        ("create (standard user)", STATUS_ACCESS_DENIED),
        ("write (malformed)", STATUS_INVALID_PARAMETER),
    ] {
        assert!(r.seen.contains_key(&(what, st)), "never saw {what} → {st:#x}");
    }
}

/// `cargo xtask fuzz --ops N --seed S`.
#[test]
#[ignore = "long; run by `cargo xtask fuzz`"]
fn long_random_run() {
    let parse = |name: &str, default: u64| -> u64 {
        match std::env::var(name) {
            Ok(v) => {
                let v = v.trim();
                let r = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
                    Some(hex) => u64::from_str_radix(hex, 16),
                    None => v.parse(),
                };
                r.unwrap_or_else(|e| panic!("{name}={v}: {e}"))
            }
            Err(_) => default,
        }
    };
    let ops = parse("RAWLINK_FUZZ_OPS", 1_000_000);
    let seed = parse("RAWLINK_FUZZ_SEED", 0x5EED_0014);
    print(&run(seed, ops));
}

//! The contract between rawlink.sys and user mode: device names, IOCTL codes and wire structs.
//!
//! Wire structs are little-endian byte layouts read and written through checked views (the smoltcp way):
//! [`QueryBinding::new_checked`] / [`BindingRecord::parse`] verify lengths once, after which no accessor can
//! panic. The same code runs in the driver (to write replies) and in user mode (to read them).
#![no_std]
#![forbid(unsafe_code)]

/// NT name of the control device the driver creates.
pub const DEVICE_NAME: &str = "\\Device\\RawLink";
/// Name of the symbolic link user mode opens (`\\.\RawLink`).
pub const SYMBOLIC_LINK_NAME: &str = "\\DosDevices\\Global\\RawLink";
/// Protocol name registered with NDIS; also the service name in the INF.
pub const PROTOCOL_NAME: &str = "RAWLINK";
/// The control device's class GUID, as IoCreateDeviceSecure takes one: an administrator replaces the
/// device's security descriptor (by default SYSTEM and Administrators only, `D:P(A;;GA;;;SY)(A;;GA;;;BA)`)
/// with a self-relative descriptor in the REG_BINARY value `Security` of
/// `HKLM\SYSTEM\CurrentControlSet\Control\Class\{this GUID}\Properties`, read when the driver loads.
pub const DEVICE_CLASS_GUID: &str = "{66c3878c-5b42-45ac-983c-cfc4e8688096}";
/// The registry key [`DEVICE_CLASS_GUID`] names, in the kernel's namespace.
pub const DEVICE_CLASS_PROPERTIES_KEY: &str =
    "\\Registry\\Machine\\SYSTEM\\CurrentControlSet\\Control\\Class\\{66c3878c-5b42-45ac-983c-cfc4e8688096}\\Properties";

/// `FILE_DEVICE_NETWORK`.
pub const FILE_DEVICE_NETWORK: u32 = 0x12;
/// `METHOD_BUFFERED`.
pub const METHOD_BUFFERED: u32 = 0;
/// `FILE_READ_ACCESS | FILE_WRITE_ACCESS`.
pub const FILE_READ_WRITE_ACCESS: u32 = 0x3;

/// `CTL_CODE(DeviceType, Function, Method, Access)`.
pub const fn ctl_code(device_type: u32, function: u32, method: u32, access: u32) -> u32 {
    (device_type << 16) | (access << 14) | (function << 2) | method
}

const fn net_ioctl(function: u32) -> u32 {
    ctl_code(FILE_DEVICE_NETWORK, function, METHOD_BUFFERED, FILE_READ_WRITE_ACCESS)
}

pub mod ring;

/// NDISPROT's codes, so existing NDISPROT programs work unchanged.
pub mod ndisprot {
    use super::net_ioctl;
    /// Binds the handle to an adapter (input: the adapter name, UTF-16 `\DEVICE\{GUID}`).
    pub const IOCTL_NDISPROT_OPEN_DEVICE: u32 = net_ioctl(0x200);
    /// `{ULONG Oid; ULONG PortNumber; UCHAR Data[]}`.
    pub const IOCTL_NDISPROT_QUERY_OID_VALUE: u32 = net_ioctl(0x201);
    /// Enumerates bindings: [`crate::QueryBinding`] in, the same plus two strings out.
    pub const IOCTL_NDISPROT_QUERY_BINDING: u32 = net_ioctl(0x203);
    /// Waits (at most 5 s) until NDIS has offered every adapter present.
    pub const IOCTL_NDISPROT_BIND_WAIT: u32 = net_ioctl(0x204);
    /// `{ULONG Oid; ULONG PortNumber; UCHAR Data[]}`, allow-listed OIDs only.
    pub const IOCTL_NDISPROT_SET_OID_VALUE: u32 = net_ioctl(0x205);
}

/// rawlink's own codes (functions 0x900 and up).
pub mod rawlink {
    use super::net_ioctl;
    /// Input: a little-endian `u32` binding index. Output: a [`crate::BindingRecord`].
    pub const IOCTL_RAWLINK_QUERY_BINDING: u32 = net_ioctl(0x900);
    /// Input: a little-endian `u32` binding index. Attaches this handle to that binding: from then on
    /// ReadFile returns the frames it receives, as [`crate::FrameHeader`] records.
    pub const IOCTL_RAWLINK_OPEN: u32 = net_ioctl(0x901);
    /// No input. Output: [`crate::HandleStatistics`] of this handle.
    pub const IOCTL_RAWLINK_GET_STATISTICS: u32 = net_ioctl(0x902);
    /// Input: a [`crate::ReadMode`] (12 bytes), or its first `u32` alone: [`crate::READ_NON_BLOCKING`] (the
    /// default: a read returns at once, maybe with nothing) or [`crate::READ_BLOCKING`] (a read waits until
    /// its minimum of bytes is queued — one frame with the short form — or its timeout passes, or it is
    /// cancelled: CancelIo, closing the handle, or the adapter going away).
    pub const IOCTL_RAWLINK_SET_READ_MODE: u32 = net_ioctl(0x903);
    /// Input: a little-endian `u32`, 1 to let this handle send frames whose source MAC is not the adapter's,
    /// 0 (the default) to refuse them.
    pub const IOCTL_RAWLINK_ALLOW_ANY_SOURCE: u32 = net_ioctl(0x904);
    /// Input: a [`crate::FilterRequest`]: which destination classes and EtherTypes this handle receives.
    /// The adapter's packet filter becomes the union over the binding's handles.
    pub const IOCTL_RAWLINK_SET_FILTER: u32 = net_ioctl(0x905);
    /// The OIDs [`IOCTL_RAWLINK_QUERY_OID`] (and NDISPROT's query) passes down: the read-only facts a user
    /// of raw Ethernet needs about an adapter — identity, addresses, frame sizes, link, packet filter and
    /// counters. Any other query (vendor-private OIDs, offload, RSS, power, port and protocol configuration)
    /// is refused with STATUS_ACCESS_DENIED before it reaches NDIS. Values from the WDK's ntddndis.h.
    pub const QUERYABLE_OIDS: [u32; 38] = [
        // What the adapter is.
        0x0001_0101, // OID_GEN_SUPPORTED_LIST
        0x0001_0102, // OID_GEN_HARDWARE_STATUS
        0x0001_0103, // OID_GEN_MEDIA_SUPPORTED
        0x0001_0104, // OID_GEN_MEDIA_IN_USE
        0x0001_0202, // OID_GEN_PHYSICAL_MEDIUM
        0x0001_010C, // OID_GEN_VENDOR_ID
        0x0001_010D, // OID_GEN_VENDOR_DESCRIPTION
        0x0001_0116, // OID_GEN_VENDOR_DRIVER_VERSION
        0x0001_0110, // OID_GEN_DRIVER_VERSION
        0x0001_0113, // OID_GEN_MAC_OPTIONS
        // Addresses.
        0x0101_0101, // OID_802_3_PERMANENT_ADDRESS
        0x0101_0102, // OID_802_3_CURRENT_ADDRESS
        0x0101_0103, // OID_802_3_MULTICAST_LIST
        0x0101_0104, // OID_802_3_MAXIMUM_LIST_SIZE
        // Sizes.
        0x0001_0106, // OID_GEN_MAXIMUM_FRAME_SIZE
        0x0001_0111, // OID_GEN_MAXIMUM_TOTAL_SIZE
        0x0001_0105, // OID_GEN_MAXIMUM_LOOKAHEAD
        0x0001_010F, // OID_GEN_CURRENT_LOOKAHEAD
        0x0001_0115, // OID_GEN_MAXIMUM_SEND_PACKETS
        0x0001_010A, // OID_GEN_TRANSMIT_BLOCK_SIZE
        0x0001_010B, // OID_GEN_RECEIVE_BLOCK_SIZE
        0x0001_0108, // OID_GEN_TRANSMIT_BUFFER_SPACE
        0x0001_0109, // OID_GEN_RECEIVE_BUFFER_SPACE
        // Link.
        0x0001_0107, // OID_GEN_LINK_SPEED
        0x0001_0207, // OID_GEN_LINK_STATE
        0x0001_0114, // OID_GEN_MEDIA_CONNECT_STATUS
        0x0001_028C, // OID_GEN_MEDIA_DUPLEX_STATE
        0x0001_0206, // OID_GEN_MAX_LINK_SPEED
        // Filters.
        0x0001_010E, // OID_GEN_CURRENT_PACKET_FILTER
        // Counters.
        0x0002_0106, // OID_GEN_STATISTICS
        0x0002_0101, // OID_GEN_XMIT_OK
        0x0002_0102, // OID_GEN_RCV_OK
        0x0002_0103, // OID_GEN_XMIT_ERROR
        0x0002_0104, // OID_GEN_RCV_ERROR
        0x0002_0105, // OID_GEN_RCV_NO_BUFFER
        0x0002_020D, // OID_GEN_RCV_CRC_ERROR
        0x0002_021C, // OID_GEN_XMIT_DISCARDS
        0x0002_021B, // OID_GEN_RCV_DISCARDS
    ];
    /// Input: an [`crate::OidHeader`]; output: the header followed by the value NDIS returned.
    pub const IOCTL_RAWLINK_QUERY_OID: u32 = net_ioctl(0x906);
    /// Input: an [`crate::OidHeader`] followed by the value; only allow-listed OIDs are set.
    pub const IOCTL_RAWLINK_SET_OID: u32 = net_ioctl(0x907);
    /// Input: a little-endian `u32` binding index. Output: [`crate::BindingStatistics`].
    pub const IOCTL_RAWLINK_GET_BINDING_STATISTICS: u32 = net_ioctl(0x908);
    /// Input: a little-endian `u32`, the receive queue size in bytes of this handle
    /// ([`crate::QUEUE_MIN`]..=[`crate::QUEUE_MAX`]; default [`crate::QUEUE_DEFAULT`]). Frames already queued
    /// are kept; a size too small for them is refused with STATUS_BUFFER_TOO_SMALL.
    pub const IOCTL_RAWLINK_SET_QUEUE_SIZE: u32 = net_ioctl(0x909);
    /// No input. Output: one [`crate::Event`] (16 bytes). Pends until the attached adapter reports one (link
    /// up/down, power change, removal); events that arrive with no request waiting are kept (up to 64).
    pub const IOCTL_RAWLINK_WAIT_EVENT: u32 = net_ioctl(0x90A);
    /// Input: frame records, as for WriteFile. Output: a [`crate::SendReply`] (16 bytes). The frames before
    /// the first invalid one are sent as one NBL chain; the request completes when NDIS has completed them,
    /// and the reply says how many were sent and which frame failed first, and why. (WriteFile instead
    /// refuses a batch with any invalid frame as a whole.)
    pub const IOCTL_RAWLINK_SEND: u32 = net_ioctl(0x90B);
    /// Input: a little-endian `u32`, the most bytes of each frame this handle keeps (0, the default: whole
    /// frames; otherwise at least 14). Longer frames are cut, with their original length in the header and
    /// the TRUNCATED flag.
    pub const IOCTL_RAWLINK_SET_CAPTURE_LENGTH: u32 = net_ioctl(0x90C);
    /// The mapped receive ring's requests: see [`crate::ring`].
    pub use crate::ring::{IOCTL_RAWLINK_RING_ATTACH, IOCTL_RAWLINK_RING_WAIT};
}

/// IOCTL_RAWLINK_SEND's reply: `u32 frames_sent`, `u32 first_failure` (index of the first frame not sent,
/// [`SendReply::NONE`] when all were), `i32 status` (the NTSTATUS of that failure, 0 when none),
/// `u32 reserved`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendReply {
    pub frames_sent: u32,
    pub first_failure: u32,
    pub status: i32,
}

impl SendReply {
    pub const LEN: usize = 16;
    pub const NONE: u32 = u32::MAX;

    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        put_u32(&mut b, 0, self.frames_sent);
        put_u32(&mut b, 4, self.first_failure);
        put_u32(&mut b, 8, self.status as u32);
        b
    }

    pub fn parse(b: &[u8]) -> Result<Self, TooShort> {
        if b.len() < Self::LEN {
            return Err(TooShort { needed: Self::LEN });
        }
        // CAST: the NTSTATUS bits as written.
        Ok(Self { frames_sent: get_u32(b, 0), first_failure: get_u32(b, 4), status: get_u32(b, 8) as i32 })
    }
}

/// Receive queue sizes per handle (IOCTL_RAWLINK_SET_QUEUE_SIZE).
pub const QUEUE_DEFAULT: u32 = 1 << 20;
pub const QUEUE_MIN: u32 = 64 << 10;
pub const QUEUE_MAX: u32 = 64 << 20;

/// Destination classes of [`FilterRequest::classes`]: the `NDIS_PACKET_TYPE_*` values.
pub mod class {
    /// Frames addressed to the adapter's MAC.
    pub const DIRECTED: u32 = 0x0000_0001;
    /// Multicast frames of the adapter's multicast list.
    pub const MULTICAST: u32 = 0x0000_0002;
    /// Every multicast frame.
    pub const ALL_MULTICAST: u32 = 0x0000_0004;
    /// Broadcast frames.
    pub const BROADCAST: u32 = 0x0000_0008;
    /// Everything on the wire.
    pub const PROMISCUOUS: u32 = 0x0000_0020;
    /// Every class a handle may ask for.
    pub const ALL: u32 = DIRECTED | MULTICAST | ALL_MULTICAST | BROADCAST | PROMISCUOUS;
    /// What a handle receives until it sets a filter (NDISPROT's filter).
    pub const DEFAULT: u32 = DIRECTED | MULTICAST | BROADCAST;
}

/// A handle's filter (IOCTL_RAWLINK_SET_FILTER): `u32 classes`, `u32 count`, then `count` little-endian u16
/// EtherTypes (at most [`FilterRequest::MAX_TYPES`]; 0 = every EtherType). An 802.1Q/802.1ad-tagged frame is
/// matched by the EtherType inside the tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterRequest {
    pub classes: u32,
    pub count: usize,
    pub types: [u16; FilterRequest::MAX_TYPES],
}

/// Why a filter request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterError {
    /// Shorter than its count says.
    TooShort(TooShort),
    /// Unknown class bits, or more EtherTypes than allowed.
    Invalid,
}

impl FilterRequest {
    pub const MAX_TYPES: usize = 16;

    /// A request for `classes` and `types`.
    pub fn new(classes: u32, types: &[u16]) -> Result<Self, FilterError> {
        if classes & !class::ALL != 0 || types.len() > Self::MAX_TYPES {
            return Err(FilterError::Invalid);
        }
        let mut t = [0u16; Self::MAX_TYPES];
        t.get_mut(..types.len()).ok_or(FilterError::Invalid)?.copy_from_slice(types);
        Ok(Self { classes, count: types.len(), types: t })
    }

    /// The EtherTypes (empty: all).
    pub fn types(&self) -> &[u16] {
        self.types.get(..self.count).unwrap_or(&[])
    }

    pub fn to_bytes(&self) -> ([u8; 8 + 2 * Self::MAX_TYPES], usize) {
        let mut b = [0u8; 8 + 2 * Self::MAX_TYPES];
        put_u32(&mut b, 0, self.classes);
        // CAST: at most MAX_TYPES.
        put_u32(&mut b, 4, self.count as u32);
        for (i, t) in self.types().iter().enumerate() {
            if let Some(d) = b.get_mut(8 + 2 * i..10 + 2 * i) {
                d.copy_from_slice(&t.to_le_bytes());
            }
        }
        (b, 8 + 2 * self.count)
    }

    pub fn parse(b: &[u8]) -> Result<Self, FilterError> {
        if b.len() < 8 {
            return Err(FilterError::TooShort(TooShort { needed: 8 }));
        }
        let (classes, count) = (get_u32(b, 0), get_u32(b, 4) as usize);
        if count > Self::MAX_TYPES {
            return Err(FilterError::Invalid);
        }
        let needed = 8 + 2 * count;
        let body = b.get(8..needed).ok_or(FilterError::TooShort(TooShort { needed }))?;
        let mut types = [0u16; Self::MAX_TYPES];
        for (t, c) in types.iter_mut().zip(body.chunks_exact(2)) {
            *t = u16::from_le_bytes([c[0], c[1]]);
        }
        Self::new(classes, types.get(..count).unwrap_or(&[]))
    }
}

/// The fixed part of IOCTL_RAWLINK_QUERY_OID / SET_OID: `u32 oid`, `u32 port` (must be 0), `u32 timeout_ms`
/// (0: [`OidHeader::DEFAULT_TIMEOUT_MS`]; at most [`OidHeader::MAX_TIMEOUT_MS`]), `u32 reserved` (0); the
/// value follows. A request that runs out of time is cancelled and fails with STATUS_IO_TIMEOUT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OidHeader {
    pub oid: u32,
    pub port: u32,
    pub timeout_ms: u32,
}

impl OidHeader {
    pub const LEN: usize = 16;
    pub const DEFAULT_TIMEOUT_MS: u32 = 5_000;
    pub const MAX_TIMEOUT_MS: u32 = 60_000;

    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        put_u32(&mut b, 0, self.oid);
        put_u32(&mut b, 4, self.port);
        put_u32(&mut b, 8, self.timeout_ms);
        b
    }

    pub fn parse(b: &[u8]) -> Result<Self, TooShort> {
        if b.len() < Self::LEN {
            return Err(TooShort { needed: Self::LEN });
        }
        Ok(Self { oid: get_u32(b, 0), port: get_u32(b, 4), timeout_ms: get_u32(b, 8) })
    }
}

/// An event of the attached adapter (IOCTL_RAWLINK_WAIT_EVENT): `u32 kind`, `u32 reserved`, `u64 value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub kind: u32,
    /// LINK_UP: the link speed in bit/s; POWER: the device power state (1 = D0 ... 4 = D3).
    pub value: u64,
}

/// [`Event::kind`] values.
pub mod event {
    pub const LINK_UP: u32 = 1;
    pub const LINK_DOWN: u32 = 2;
    /// The adapter left D0: I/O stops until POWER_ON.
    pub const POWER_LOW: u32 = 3;
    pub const POWER_ON: u32 = 4;
    /// The adapter was unbound; the handle no longer reaches it.
    pub const ADAPTER_GONE: u32 = 5;
    /// Events were lost because the handle's event list was full.
    pub const OVERFLOW: u32 = 6;
}

impl Event {
    pub const LEN: usize = 16;

    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        put_u32(&mut b, 0, self.kind);
        if let Some(d) = b.get_mut(8..16) {
            d.copy_from_slice(&self.value.to_le_bytes());
        }
        b
    }

    pub fn parse(b: &[u8]) -> Result<Self, TooShort> {
        if b.len() < Self::LEN {
            return Err(TooShort { needed: Self::LEN });
        }
        Ok(Self { kind: get_u32(b, 0), value: get_u64(b, 8) })
    }
}

/// IOCTL_RAWLINK_SET_READ_MODE's input: `u32 mode`, then optionally `u32 min_bytes` and `u32 timeout_ms`.
/// A blocking read completes once at least `min_bytes` of records are queued (at least one frame), or when
/// `timeout_ms` (0: none) has passed since it was issued — with whatever is queued, possibly nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadMode {
    pub blocking: bool,
    pub min_bytes: u32,
    pub timeout_ms: u32,
}

impl ReadMode {
    pub const LEN: usize = 12;

    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        put_u32(&mut b, 0, if self.blocking { READ_BLOCKING } else { READ_NON_BLOCKING });
        put_u32(&mut b, 4, self.min_bytes);
        put_u32(&mut b, 8, self.timeout_ms);
        b
    }
}

/// Read mode values of IOCTL_RAWLINK_SET_READ_MODE.
pub const READ_NON_BLOCKING: u32 = 0;
pub const READ_BLOCKING: u32 = 1;

/// Declares a struct of little-endian u64 counters, in field order, with `to_bytes` and `parse`.
macro_rules! counters {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name {
            $($(#[$fdoc])* pub $field: u64,)*
        }

        impl $name {
            pub const LEN: usize = 8 * [$(stringify!($field)),*].len();

            pub fn to_bytes(&self) -> [u8; Self::LEN] {
                let mut b = [0u8; Self::LEN];
                for (i, v) in [$(self.$field),*].iter().enumerate() {
                    if let Some(d) = b.get_mut(i * 8..i * 8 + 8) {
                        d.copy_from_slice(&v.to_le_bytes());
                    }
                }
                b
            }

            pub fn parse(b: &[u8]) -> Result<Self, TooShort> {
                if b.len() < Self::LEN {
                    return Err(TooShort { needed: Self::LEN });
                }
                let mut i = 0;
                let mut next = || {
                    i += 1;
                    get_u64(b, (i - 1) * 8)
                };
                Ok(Self { $($field: next(),)* })
            }
        }
    };
}

counters! {
    /// A handle's receive counters (IOCTL_RAWLINK_GET_STATISTICS), little-endian u64 in this order.
    HandleStatistics {
        /// Frames the binding offered this handle.
        received,
        /// Frames this handle's filter did not want.
        filtered,
        /// Frames queued for it.
        queued,
        /// Frames handed to its reads.
        delivered,
        /// Frames dropped because its queue was full.
        dropped_queue_full,
        /// Frames dropped because they could never fit its queue.
        dropped_too_large,
        /// Frames dropped because their data could not be reached (mapping failure).
        dropped_resources,
        /// Frames still queued.
        pending,
    }
}

counters! {
    /// A binding's counters (IOCTL_RAWLINK_GET_BINDING_STATISTICS), little-endian u64 in this order.
    BindingStatistics {
        /// Frames NDIS indicated.
        received,
        /// Frames queued for at least one handle.
        delivered,
        /// Frames no attached handle wanted (or with no handle attached).
        filtered,
        /// Copies dropped because a handle's queue was full.
        dropped_queue_full,
        /// Copies dropped because a frame could never fit a handle's queue.
        dropped_too_large,
        /// Frames dropped because their data could not be reached.
        dropped_resources,
        /// Frames sent and completed successfully.
        sent,
        /// Frames whose send failed.
        send_failed,
    }
}

/// The header in front of every frame a read returns. Records are packed back to back, each starting on an
/// 8-byte boundary: header, `captured_length` bytes of frame, padding to the next multiple of 8.
///
/// ```text
///  0 u32 captured length   4 u32 original length   8 u64 timestamp (100 ns units, monotonic)
/// 16 u32 flags             20 u16 segment count    22 u16 segment size
/// ```
/// The segment fields describe a coalesced receive (flags COALESCED_TCP / COALESCED_UDP): the number of
/// wire segments the NIC merged into this frame and, for UDP (URO), the payload size of each; otherwise 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameHeader {
    pub captured_length: u32,
    pub original_length: u32,
    pub timestamp: u64,
    pub flags: u32,
    pub segment_count: u16,
    pub segment_size: u16,
}

/// [`FrameHeader::flags`] bits.
pub mod frame_flags {
    /// The frame was longer than what was captured.
    pub const TRUNCATED: u32 = 1 << 0;
    /// The frame carries an 802.1Q tag (EtherType 0x8100 after the addresses).
    pub const VLAN_TAGGED: u32 = 1 << 1;
    /// The frame was sent by this host (NDIS looped back another protocol's send).
    pub const SENT_BY_HOST: u32 = 1 << 2;
    /// A TCP receive-segment-coalesced unit (RSC): one large segment standing for `segment_count` segments.
    pub const COALESCED_TCP: u32 = 1 << 3;
    /// A UDP receive-coalesced unit (URO): one IP + UDP header followed by `segment_count` payloads of
    /// `segment_size` bytes (the last may be shorter).
    pub const COALESCED_UDP: u32 = 1 << 4;
    /// The NIC verified the IP header checksum.
    pub const IP_CHECKSUM_OK: u32 = 1 << 5;
    /// The NIC found the IP header checksum wrong.
    pub const IP_CHECKSUM_BAD: u32 = 1 << 6;
    /// The NIC verified the TCP or UDP checksum.
    pub const L4_CHECKSUM_OK: u32 = 1 << 7;
    /// The NIC found the TCP or UDP checksum wrong.
    pub const L4_CHECKSUM_BAD: u32 = 1 << 8;
}

impl FrameHeader {
    pub const LEN: usize = 24;
    /// Records start on multiples of this.
    pub const ALIGN: usize = 8;

    /// The size of a whole record carrying `captured` bytes.
    pub const fn record_len(captured: usize) -> usize {
        (Self::LEN + captured + Self::ALIGN - 1) / Self::ALIGN * Self::ALIGN
    }

    /// The header's bytes.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        put_u32(&mut b, 0, self.captured_length);
        put_u32(&mut b, 4, self.original_length);
        if let Some(d) = b.get_mut(8..16) {
            d.copy_from_slice(&self.timestamp.to_le_bytes());
        }
        put_u32(&mut b, 16, self.flags);
        if let Some(d) = b.get_mut(20..24) {
            d[..2].copy_from_slice(&self.segment_count.to_le_bytes());
            d[2..].copy_from_slice(&self.segment_size.to_le_bytes());
        }
        b
    }

    /// Reads a header from the start of `b`.
    pub fn parse(b: &[u8]) -> Result<Self, TooShort> {
        if b.len() < Self::LEN {
            return Err(TooShort { needed: Self::LEN });
        }
        let mut t = [0u8; 8];
        t.copy_from_slice(b.get(8..16).unwrap_or(&[0; 8]));
        Ok(Self {
            captured_length: get_u32(b, 0),
            original_length: get_u32(b, 4),
            timestamp: u64::from_le_bytes(t),
            flags: get_u32(b, 16),
            // CAST: the low and high halves of the u32 at 20.
            segment_count: (get_u32(b, 20) & 0xFFFF) as u16,
            segment_size: (get_u32(b, 20) >> 16) as u16,
        })
    }
}

/// Writes `frame` as one whole record at the start of `out` — a [`FrameHeader`] whose two lengths are the
/// frame's, the frame, zeros up to the next 8-byte boundary — as writes take them. Returns the record's length.
pub fn write_record(out: &mut [u8], frame: &[u8]) -> Result<usize, TooShort> {
    let record = FrameHeader::record_len(frame.len());
    let too_short = TooShort { needed: record };
    let len = u32::try_from(frame.len()).map_err(|_| too_short)?;
    let dst = out.get_mut(..record).ok_or(too_short)?;
    let header = FrameHeader { captured_length: len, original_length: len, ..FrameHeader::default() };
    let (h, rest) = dst.split_at_mut(FrameHeader::LEN);
    h.copy_from_slice(&header.to_bytes());
    let (data, pad) = rest.split_at_mut(frame.len());
    data.copy_from_slice(frame);
    pad.fill(0);
    Ok(record)
}

/// Iterates over the records of a read: (header, frame bytes). Stops at the first malformed record.
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    rest: &'a [u8],
}

impl<'a> Frames<'a> {
    pub fn new(read: &'a [u8]) -> Self {
        Self { rest: read }
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = (FrameHeader, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let h = FrameHeader::parse(self.rest).ok()?;
        let len = usize::try_from(h.captured_length).ok()?;
        let data = self.rest.get(FrameHeader::LEN..FrameHeader::LEN.checked_add(len)?)?;
        let record = FrameHeader::record_len(len).min(self.rest.len());
        self.rest = self.rest.get(record..).unwrap_or(&[]);
        Some((h, data))
    }
}

/// Reads a little-endian u32 at `at` (callers checked the length).
fn get_u32(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        v.copy_from_slice(s);
    }
    u32::from_le_bytes(v)
}

/// Reads a little-endian u64 at `at` (0 if out of range).
fn get_u64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        v.copy_from_slice(s);
    }
    u64::from_le_bytes(v)
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    if let Some(s) = b.get_mut(at..at + 4) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// The buffer is too short for what must go in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooShort {
    pub needed: usize,
}

/// NDISPROT_QUERY_BINDING: `{ULONG BindingIndex, DeviceNameOffset, DeviceNameLength, DeviceDescrOffset,
/// DeviceDescrLength}`, followed in the reply by the two NUL-terminated UTF-16 strings. Offsets are from the
/// start of the struct; lengths are in bytes without the NUL.
#[derive(Debug, Clone, Copy)]
pub struct QueryBinding<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> QueryBinding<T> {
    /// Size of the fixed part.
    pub const LEN: usize = 20;

    /// Wraps a buffer at least [`Self::LEN`] bytes long.
    pub fn new_checked(buffer: T) -> Result<Self, TooShort> {
        if buffer.as_ref().len() < Self::LEN {
            return Err(TooShort { needed: Self::LEN });
        }
        Ok(Self { buffer })
    }

    pub fn binding_index(&self) -> u32 {
        get_u32(self.buffer.as_ref(), 0)
    }
    pub fn device_name_offset(&self) -> u32 {
        get_u32(self.buffer.as_ref(), 4)
    }
    pub fn device_name_length(&self) -> u32 {
        get_u32(self.buffer.as_ref(), 8)
    }
    pub fn device_descr_offset(&self) -> u32 {
        get_u32(self.buffer.as_ref(), 12)
    }
    pub fn device_descr_length(&self) -> u32 {
        get_u32(self.buffer.as_ref(), 16)
    }

    /// The string at (`offset`, `length` bytes), if it lies inside the buffer.
    fn string(&self, offset: u32, length: u32) -> Option<impl Iterator<Item = u16> + '_> {
        let (o, l) = (usize::try_from(offset).ok()?, usize::try_from(length).ok()?);
        let bytes = self.buffer.as_ref().get(o..o.checked_add(l)?)?;
        Some(bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])))
    }

    /// The adapter name of a reply (`\DEVICE\{GUID}`), as UTF-16 units.
    pub fn device_name(&self) -> Option<impl Iterator<Item = u16> + '_> {
        self.string(self.device_name_offset(), self.device_name_length())
    }

    /// The adapter description (friendly name) of a reply.
    pub fn device_descr(&self) -> Option<impl Iterator<Item = u16> + '_> {
        self.string(self.device_descr_offset(), self.device_descr_length())
    }
}

/// Writes a QUERY_BINDING reply into `out` (which starts with the request): the fixed part, then both
/// strings NUL-terminated. Returns the bytes used.
pub fn emit_query_binding(out: &mut [u8], index: u32, name: &[u16], descr: &[u16]) -> Result<usize, TooShort> {
    let name_off = QueryBinding::<&[u8]>::LEN;
    let descr_off = name_off + name.len() * 2 + 2;
    let total = descr_off + descr.len() * 2 + 2;
    if out.len() < total {
        return Err(TooShort { needed: total });
    }
    let (n_len, d_len) = (name.len() * 2, descr.len() * 2);
    // CAST: `total` fits `out`, whose length the I/O manager bounds to u32.
    put_u32(out, 0, index);
    put_u32(out, 4, name_off as u32);
    put_u32(out, 8, n_len as u32);
    put_u32(out, 12, descr_off as u32);
    put_u32(out, 16, d_len as u32);
    write_utf16z(out, name_off, name);
    write_utf16z(out, descr_off, descr);
    Ok(total)
}

fn write_utf16z(out: &mut [u8], at: usize, s: &[u16]) {
    for (i, u) in s.iter().chain(core::iter::once(&0u16)).enumerate() {
        if let Some(d) = out.get_mut(at + i * 2..at + i * 2 + 2) {
            d.copy_from_slice(&u.to_le_bytes());
        }
    }
}

/// States of a binding as rawlink reports them.
pub mod binding_state {
    pub const OPENING: u32 = 1;
    pub const PAUSED: u32 = 2;
    pub const RESTARTING: u32 = 3;
    pub const RUNNING: u32 = 4;
    pub const PAUSING: u32 = 5;
    pub const CLOSING: u32 = 6;
}

/// The fixed part of a rawlink binding record (IOCTL_RAWLINK_QUERY_BINDING's reply):
///
/// ```text
///  0 u32 index            4 u32 state (binding_state)   8 u32 mtu        12 u32 flags (bit 0: link up)
/// 16 u64 link speed (bit/s)                             24 [u8; 6] MAC    30 u16 reserved
/// 32 u32 name offset     36 u32 name length (bytes)    40 u32 friendly-name offset   44 u32 its length
/// 48 …  the names, UTF-16LE, each NUL-terminated
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindingRecord {
    pub index: u32,
    pub state: u32,
    pub mtu: u32,
    pub link_up: bool,
    pub link_speed: u64,
    pub mac: [u8; 6],
}

impl BindingRecord {
    /// Size of the fixed part.
    pub const LEN: usize = 48;

    /// Writes the record and both names into `out`; returns the bytes used.
    pub fn emit(&self, out: &mut [u8], name: &[u16], friendly: &[u16]) -> Result<usize, TooShort> {
        let name_off = Self::LEN;
        let friendly_off = name_off + name.len() * 2 + 2;
        let total = friendly_off + friendly.len() * 2 + 2;
        if out.len() < total {
            return Err(TooShort { needed: total });
        }
        put_u32(out, 0, self.index);
        put_u32(out, 4, self.state);
        put_u32(out, 8, self.mtu);
        put_u32(out, 12, u32::from(self.link_up));
        if let Some(d) = out.get_mut(16..24) {
            d.copy_from_slice(&self.link_speed.to_le_bytes());
        }
        if let Some(d) = out.get_mut(24..30) {
            d.copy_from_slice(&self.mac);
        }
        if let Some(d) = out.get_mut(30..32) {
            d.fill(0);
        }
        // CAST: bounded by `out.len()`, a u32 buffer length.
        put_u32(out, 32, name_off as u32);
        put_u32(out, 36, (name.len() * 2) as u32);
        put_u32(out, 40, friendly_off as u32);
        put_u32(out, 44, (friendly.len() * 2) as u32);
        write_utf16z(out, name_off, name);
        write_utf16z(out, friendly_off, friendly);
        Ok(total)
    }

    /// Reads a record; the names are returned as byte ranges of `b` (UTF-16LE), checked to lie inside it.
    pub fn parse(b: &[u8]) -> Result<(Self, core::ops::Range<usize>, core::ops::Range<usize>), TooShort> {
        if b.len() < Self::LEN {
            return Err(TooShort { needed: Self::LEN });
        }
        let range = |off: usize, len: usize| -> Result<core::ops::Range<usize>, TooShort> {
            let (o, l) = (get_u32(b, off) as usize, get_u32(b, len) as usize);
            let end = o.checked_add(l).ok_or(TooShort { needed: usize::MAX })?;
            if end > b.len() || l % 2 != 0 {
                return Err(TooShort { needed: end });
            }
            Ok(o..end)
        };
        let mut speed = [0u8; 8];
        speed.copy_from_slice(b.get(16..24).unwrap_or(&[0; 8]));
        let mut mac = [0u8; 6];
        mac.copy_from_slice(b.get(24..30).unwrap_or(&[0; 6]));
        let rec = Self {
            index: get_u32(b, 0),
            state: get_u32(b, 4),
            mtu: get_u32(b, 8),
            link_up: get_u32(b, 12) & 1 != 0,
            link_speed: u64::from_le_bytes(speed),
            mac,
        };
        Ok((rec, range(32, 36)?, range(40, 44)?))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn ndisprot_codes_are_ndisprots() {
        assert_eq!(ndisprot::IOCTL_NDISPROT_OPEN_DEVICE, 0x0012_C800);
        assert_eq!(ndisprot::IOCTL_NDISPROT_QUERY_OID_VALUE, 0x0012_C804);
        assert_eq!(ndisprot::IOCTL_NDISPROT_QUERY_BINDING, 0x0012_C80C);
        assert_eq!(ndisprot::IOCTL_NDISPROT_BIND_WAIT, 0x0012_C810);
        assert_eq!(ndisprot::IOCTL_NDISPROT_SET_OID_VALUE, 0x0012_C814);
        assert_eq!(rawlink::IOCTL_RAWLINK_QUERY_BINDING & 0x3, METHOD_BUFFERED);
    }

    fn utf16(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn query_binding_round_trip() {
        let (name, descr) = (utf16("\\DEVICE\\{X}"), utf16("Adapter #1"));
        let mut out = vec![0u8; 128];
        let n = emit_query_binding(&mut out, 3, &name, &descr).unwrap();
        assert_eq!(n, 20 + (11 + 1) * 2 + (10 + 1) * 2);
        let q = QueryBinding::new_checked(&out[..n]).unwrap();
        assert_eq!(q.binding_index(), 3);
        assert_eq!(q.device_name_length(), 22);
        assert_eq!(q.device_name().unwrap().collect::<Vec<_>>(), name);
        assert_eq!(q.device_descr().unwrap().collect::<Vec<_>>(), descr);
        // NUL terminators are in place.
        assert_eq!(&out[20 + 22..20 + 24], &[0, 0]);
    }

    #[test]
    fn short_buffers_are_refused_with_the_size_needed() {
        assert_eq!(QueryBinding::new_checked(&[0u8; 19][..]).unwrap_err(), TooShort { needed: 20 });
        let mut out = [0u8; 30];
        assert_eq!(emit_query_binding(&mut out, 0, &utf16("abc"), &utf16("d")).unwrap_err(), TooShort { needed: 32 });
    }

    #[test]
    fn out_of_range_strings_are_not_read() {
        let mut out = vec![0u8; 20];
        put_u32(&mut out, 4, 18);
        put_u32(&mut out, 8, 100);
        let q = QueryBinding::new_checked(&out[..]).unwrap();
        assert!(q.device_name().is_none());
    }

    #[test]
    fn frame_records_round_trip() {
        assert_eq!(FrameHeader::record_len(0), 24);
        assert_eq!(FrameHeader::record_len(1), 32);
        assert_eq!(FrameHeader::record_len(60), 88);
        let h = FrameHeader {
            captured_length: 3,
            original_length: 9,
            timestamp: 77,
            flags: frame_flags::TRUNCATED,
            ..Default::default()
        };
        let mut buf = Vec::new();
        buf.extend_from_slice(&h.to_bytes());
        buf.extend_from_slice(&[1, 2, 3, 0, 0, 0, 0, 0]);
        let h2 = FrameHeader { captured_length: 1, original_length: 1, timestamp: 78, flags: 0, ..Default::default() };
        buf.extend_from_slice(&h2.to_bytes());
        buf.push(9);
        let got: Vec<_> = Frames::new(&buf).collect();
        assert_eq!(got, [(h, &[1u8, 2, 3][..]), (h2, &[9u8][..])]);
        // A record claiming more bytes than there are ends the iteration.
        let mut bad = h.to_bytes().to_vec();
        bad[0] = 200;
        assert_eq!(Frames::new(&bad).count(), 0);
    }

    #[test]
    fn filter_requests_round_trip_and_are_checked() {
        let f = FilterRequest::new(class::DIRECTED | class::BROADCAST, &[0x0800, 0x86DD]).unwrap();
        let (b, n) = f.to_bytes();
        assert_eq!(n, 12);
        assert_eq!(FilterRequest::parse(&b[..n]), Ok(f));
        assert_eq!(FilterRequest::parse(&b[..11]), Err(FilterError::TooShort(TooShort { needed: 12 })));
        assert_eq!(FilterRequest::parse(&[0; 7]), Err(FilterError::TooShort(TooShort { needed: 8 })));
        assert_eq!(FilterRequest::new(0x40, &[]), Err(FilterError::Invalid));
        assert_eq!(FilterRequest::new(0, &[0; 17]), Err(FilterError::Invalid));
        let mut big = [0u8; 8];
        big[4] = 17;
        assert_eq!(FilterRequest::parse(&big), Err(FilterError::Invalid));
    }

    #[test]
    fn counters_events_and_oid_headers_round_trip() {
        let s =
            HandleStatistics { received: 1, filtered: 2, queued: 3, delivered: 4, pending: 8, ..Default::default() };
        assert_eq!(HandleStatistics::LEN, 64);
        assert_eq!(HandleStatistics::parse(&s.to_bytes()), Ok(s));
        assert_eq!(&s.to_bytes()[8..16], &2u64.to_le_bytes());
        assert!(BindingStatistics::parse(&[0; 63]).is_err());
        let e = Event { kind: event::LINK_UP, value: 1_000_000_000 };
        assert_eq!(Event::parse(&e.to_bytes()), Ok(e));
        let r = SendReply { frames_sent: 3, first_failure: 3, status: 0xC000_0206u32 as i32 };
        assert_eq!(SendReply::parse(&r.to_bytes()), Ok(r));
        let h = OidHeader { oid: 0x0001_010E, port: 0, timeout_ms: 250 };
        assert_eq!(OidHeader::parse(&h.to_bytes()), Ok(h));
        assert!(OidHeader::parse(&[0; 15]).is_err());
        let h = FrameHeader { captured_length: 1, segment_count: 3, segment_size: 1400, ..Default::default() };
        assert_eq!(FrameHeader::parse(&h.to_bytes()), Ok(h));
    }

    #[test]
    fn written_records_read_back() {
        let mut out = vec![0xEE; 64];
        assert_eq!(write_record(&mut out, &[1, 2, 3]), Ok(32));
        assert_eq!(&out[24..32], &[1, 2, 3, 0, 0, 0, 0, 0], "padded with zeros");
        let n = write_record(&mut out[32..], &[9; 8]).unwrap();
        let got: Vec<_> = Frames::new(&out[..32 + n]).map(|(h, d)| (h.original_length, d.to_vec())).collect();
        assert_eq!(got, [(3, vec![1, 2, 3]), (8, vec![9; 8])]);
        assert_eq!(write_record(&mut out[..31], &[1, 2, 3]), Err(TooShort { needed: 32 }));
    }

    #[test]
    fn binding_record_round_trip_and_bounds() {
        let r = BindingRecord {
            index: 1,
            state: binding_state::RUNNING,
            mtu: 1500,
            link_up: true,
            link_speed: 10_000_000_000,
            mac: [2, 0, 0, 0, 0, 7],
        };
        let mut out = vec![0u8; 200];
        let n = r.emit(&mut out, &utf16("\\DEVICE\\{A}"), &utf16("Eth")).unwrap();
        let (back, name, friendly) = BindingRecord::parse(&out[..n]).unwrap();
        assert_eq!(back, r);
        assert_eq!(name, 48..48 + 22);
        assert_eq!(friendly, 48 + 24..48 + 24 + 6);
        assert!(BindingRecord::parse(&out[..47]).is_err());
        // A length pointing past the end is refused.
        put_u32(&mut out, 44, 1000);
        assert!(BindingRecord::parse(&out[..n]).is_err());
        assert_eq!(r.emit(&mut out[..50], &[], &[]).unwrap_err(), TooShort { needed: 52 });
    }
}

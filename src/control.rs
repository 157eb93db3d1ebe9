//! The control device's IOCTL logic, free of FFI: decoding requests and writing replies into the system
//! buffer. The dispatch routine supplies the buffer and a view of the binding asked for.

use crate::error::{Error, Result};
use crate::state::BindingState;
use ndis_sys::{
    NDIS_STATUS_BUFFER_TOO_SHORT, NDIS_STATUS_INVALID_LENGTH, NDIS_STATUS_REQUEST_ABORTED, NDIS_STATUS_SUCCESS,
    OID_802_3_MULTICAST_LIST, OID_GEN_CURRENT_LOOKAHEAD, OID_GEN_CURRENT_PACKET_FILTER,
};
use rawlink_abi::{
    binding_state, ndisprot, rawlink, BindingRecord, FilterError, FilterRequest, OidHeader, QueryBinding, ReadMode,
};

/// What a reply needs to know about one binding.
#[derive(Debug, Clone, Copy)]
pub struct BindingView<'a> {
    pub adapter_name: &'a [u16],
    pub friendly_name: &'a [u16],
    pub mac: [u8; 6],
    pub mtu: u32,
    pub link_speed: u64,
    pub connected: bool,
    pub state: BindingState,
}

/// Whether enumeration lists a binding in this state: open and not going away.
pub fn enumerated(state: BindingState) -> bool {
    match state {
        BindingState::Paused | BindingState::Restarting | BindingState::Running | BindingState::Pausing => true,
        BindingState::Opening | BindingState::Closing | BindingState::Closed => false,
    }
}

fn abi_state(s: BindingState) -> u32 {
    match s {
        BindingState::Opening => binding_state::OPENING,
        BindingState::Paused => binding_state::PAUSED,
        BindingState::Restarting => binding_state::RESTARTING,
        BindingState::Running => binding_state::RUNNING,
        BindingState::Pausing => binding_state::PAUSING,
        BindingState::Closing | BindingState::Closed => binding_state::CLOSING,
    }
}

/// A decoded request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// NDISPROT's QUERY_BINDING: the `index`th binding, names as two strings.
    NdisprotQueryBinding { index: u32 },
    /// rawlink's QUERY_BINDING: the `index`th binding as a [`BindingRecord`].
    QueryBinding { index: u32 },
    /// Wait until NDIS has offered every adapter (at most 5 s).
    BindWait,
    /// Attach this handle to the `index`th binding.
    Open { index: u32 },
    /// NDISPROT's OPEN_DEVICE: attach to the adapter named in the input (UTF-16 `\DEVICE\{GUID}`), in
    /// NDISPROT's one-frame-per-call mode.
    NdisprotOpenDevice,
    /// This handle's receive counters.
    GetStatistics,
    /// Whether writes may carry another source MAC than the adapter's.
    AllowAnySource { allow: bool },
    /// Read mode with its minimum and timeout.
    ReadMode(ReadMode),
    /// This handle's destination classes and EtherTypes.
    SetFilter(FilterRequest),
    /// An OID query or set; the value starts at `data_at` in the system buffer.
    Oid(OidRequest),
    /// The `index`th binding's counters.
    GetBindingStatistics { index: u32 },
    /// Resize this handle's receive queue.
    SetQueueSize { bytes: u32 },
    /// Keep at most this many bytes of each frame (0: all).
    SetCaptureLength { bytes: u32 },
}

/// A decoded OID request (NDISPROT's or rawlink's form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OidRequest {
    pub set: bool,
    pub oid: u32,
    /// Bounded: 1 ..= OidHeader::MAX_TIMEOUT_MS.
    pub timeout_ms: u32,
    /// Offset of the value in the buffer (8 for NDISPROT's struct, 16 for rawlink's).
    pub data_at: usize,
}

/// OIDs a handle may set. Everything else could reconfigure the adapter for every other protocol on it.
/// OID_GEN_CURRENT_PACKET_FILTER is not passed down: it sets the handle's destination classes, and the
/// binding's filter becomes the union over its handles.
pub const SETTABLE_OIDS: [u32; 3] =
    [OID_GEN_CURRENT_PACKET_FILTER, OID_802_3_MULTICAST_LIST, OID_GEN_CURRENT_LOOKAHEAD];

/// The status of a completed OID request as the driver reports it: a request NDIS aborted because its
/// time ran out is STATUS_IO_TIMEOUT; one aborted because its handle closed is STATUS_CANCELLED.
pub fn oid_result(status: i32, timed_out: bool) -> Result {
    match status {
        NDIS_STATUS_SUCCESS => Ok(()),
        NDIS_STATUS_REQUEST_ABORTED if timed_out => Err(Error::IO_TIMEOUT),
        NDIS_STATUS_REQUEST_ABORTED => Err(Error::CANCELLED),
        NDIS_STATUS_BUFFER_TOO_SHORT | NDIS_STATUS_INVALID_LENGTH => Err(Error::BUFFER_TOO_SMALL),
        s => Err(Error::from_status(s).unwrap_or(Error::UNSUCCESSFUL)),
    }
}

/// OIDs a handle may query (documented in the ABI). Everything else is refused: a query can reach any code
/// path of the miniport and the filters above it, and some reveal the machine's configuration.
pub const QUERYABLE_OIDS: [u32; 38] = rawlink::QUERYABLE_OIDS;

/// Checks a query against [`QUERYABLE_OIDS`] (STATUS_ACCESS_DENIED otherwise).
pub fn check_queryable(oid: u32) -> Result {
    if QUERYABLE_OIDS.contains(&oid) {
        Ok(())
    } else {
        Err(Error::ACCESS_DENIED)
    }
}

/// Checks a set against [`SETTABLE_OIDS`] (STATUS_ACCESS_DENIED otherwise).
pub fn check_settable(oid: u32) -> Result {
    if SETTABLE_OIDS.contains(&oid) {
        Ok(())
    } else {
        Err(Error::ACCESS_DENIED)
    }
}

/// The little-endian u32 value of a packet-filter set, as destination classes for a handle; bits a handle
/// may not ask for are refused.
pub fn packet_filter_value(data: &[u8]) -> Result<u32> {
    let b: [u8; 4] = data.get(..4).and_then(|s| s.try_into().ok()).ok_or(Error::BUFFER_TOO_SMALL)?;
    let classes = u32::from_le_bytes(b);
    if classes & !rawlink_abi::class::ALL != 0 {
        return Err(Error::NOT_SUPPORTED);
    }
    Ok(classes)
}

/// A handle's multicast list value as a set of groups (duplicates count once).
pub fn multicast_groups(data: &[u8]) -> Result<crate::filter::Groups> {
    let list = multicast_list(data, crate::filter::Groups::CAPACITY)?;
    crate::filter::Groups::collect(list).ok_or(Error::INSUFFICIENT_RESOURCES)
}

/// The little-endian u32 value of a lookahead set.
pub fn lookahead_value(data: &[u8]) -> Result<u32> {
    let b: [u8; 4] = data.get(..4).and_then(|s| s.try_into().ok()).ok_or(Error::BUFFER_TOO_SMALL)?;
    Ok(u32::from_le_bytes(b))
}

/// A multicast list value: whole 6-byte group addresses, at most `max` of them.
pub fn multicast_list(data: &[u8], max: usize) -> Result<impl Iterator<Item = [u8; 6]> + '_> {
    if data.len() % 6 != 0 {
        return Err(Error::INVALID_PARAMETER);
    }
    if data.len() / 6 > max {
        return Err(Error::INSUFFICIENT_RESOURCES);
    }
    if data.chunks_exact(6).any(|a| a.first().is_none_or(|b| b & 1 == 0)) {
        return Err(Error::INVALID_PARAMETER);
    }
    Ok(data.chunks_exact(6).map(|c| {
        let mut a = [0u8; 6];
        a.copy_from_slice(c);
        a
    }))
}

/// Decodes an IOCTL's code and input (WAIT_EVENT and SEND pend, so the dispatch routine hands those to the
/// handle before decoding). Unknown codes get STATUS_INVALID_DEVICE_REQUEST; inputs too short for
/// their request get STATUS_BUFFER_TOO_SMALL.
pub fn decode(code: u32, input: &[u8]) -> Result<Request> {
    let index = || -> Result<u32> {
        let b: [u8; 4] = input.get(..4).and_then(|s| s.try_into().ok()).ok_or(Error::BUFFER_TOO_SMALL)?;
        Ok(u32::from_le_bytes(b))
    };
    match code {
        ndisprot::IOCTL_NDISPROT_QUERY_BINDING => {
            let q = QueryBinding::new_checked(input).map_err(|_| Error::BUFFER_TOO_SMALL)?;
            Ok(Request::NdisprotQueryBinding { index: q.binding_index() })
        }
        rawlink::IOCTL_RAWLINK_QUERY_BINDING => Ok(Request::QueryBinding { index: index()? }),
        rawlink::IOCTL_RAWLINK_OPEN => Ok(Request::Open { index: index()? }),
        ndisprot::IOCTL_NDISPROT_BIND_WAIT => Ok(Request::BindWait),
        rawlink::IOCTL_RAWLINK_GET_STATISTICS => Ok(Request::GetStatistics),
        rawlink::IOCTL_RAWLINK_ALLOW_ANY_SOURCE => match index()? {
            0 => Ok(Request::AllowAnySource { allow: false }),
            1 => Ok(Request::AllowAnySource { allow: true }),
            _ => Err(Error::INVALID_PARAMETER),
        },
        rawlink::IOCTL_RAWLINK_SET_READ_MODE => {
            let word = |i: usize| input.get(i..i + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            let blocking = match index()? {
                rawlink_abi::READ_NON_BLOCKING => false,
                rawlink_abi::READ_BLOCKING => true,
                _ => return Err(Error::INVALID_PARAMETER),
            };
            // The short form (mode only) means: at least one frame, no timeout.
            let (min_bytes, timeout_ms) = match input.len() {
                4 => (1, 0),
                ReadMode::LEN.. => (word(4).unwrap_or(1), word(8).unwrap_or(0)),
                _ => return Err(Error::BUFFER_TOO_SMALL),
            };
            if min_bytes > rawlink_abi::QUEUE_MAX || timeout_ms > OidHeader::MAX_TIMEOUT_MS {
                return Err(Error::INVALID_PARAMETER);
            }
            Ok(Request::ReadMode(ReadMode { blocking, min_bytes: min_bytes.max(1), timeout_ms }))
        }
        rawlink::IOCTL_RAWLINK_SET_FILTER => FilterRequest::parse(input).map(Request::SetFilter).map_err(|e| match e {
            FilterError::TooShort(_) => Error::BUFFER_TOO_SMALL,
            FilterError::Invalid => Error::INVALID_PARAMETER,
        }),
        rawlink::IOCTL_RAWLINK_GET_BINDING_STATISTICS => Ok(Request::GetBindingStatistics { index: index()? }),
        rawlink::IOCTL_RAWLINK_SET_QUEUE_SIZE => {
            let bytes = index()?;
            if !(rawlink_abi::QUEUE_MIN..=rawlink_abi::QUEUE_MAX).contains(&bytes) {
                return Err(Error::INVALID_PARAMETER);
            }
            Ok(Request::SetQueueSize { bytes })
        }
        rawlink::IOCTL_RAWLINK_SET_CAPTURE_LENGTH => match index()? {
            bytes @ (0 | 14..) => Ok(Request::SetCaptureLength { bytes }),
            _ => Err(Error::INVALID_PARAMETER),
        },
        rawlink::IOCTL_RAWLINK_QUERY_OID | rawlink::IOCTL_RAWLINK_SET_OID => {
            let h = OidHeader::parse(input).map_err(|_| Error::BUFFER_TOO_SMALL)?;
            if h.port != 0 || input.get(12..16).is_some_and(|r| r != [0; 4]) || h.timeout_ms > OidHeader::MAX_TIMEOUT_MS
            {
                return Err(Error::INVALID_PARAMETER);
            }
            let timeout_ms = if h.timeout_ms == 0 { OidHeader::DEFAULT_TIMEOUT_MS } else { h.timeout_ms };
            let set = code == rawlink::IOCTL_RAWLINK_SET_OID;
            Ok(Request::Oid(OidRequest { set, oid: h.oid, timeout_ms, data_at: OidHeader::LEN }))
        }
        ndisprot::IOCTL_NDISPROT_QUERY_OID_VALUE | ndisprot::IOCTL_NDISPROT_SET_OID_VALUE => {
            // NDISPROT_QUERY_OID / NDISPROT_SET_OID: {NDIS_OID Oid; NDIS_PORT_NUMBER PortNumber; UCHAR Data[]}.
            let oid = index()?;
            let port = input.get(4..8).ok_or(Error::BUFFER_TOO_SMALL)?;
            if port != [0; 4] {
                return Err(Error::INVALID_PARAMETER);
            }
            let set = code == ndisprot::IOCTL_NDISPROT_SET_OID_VALUE;
            Ok(Request::Oid(OidRequest { set, oid, timeout_ms: OidHeader::DEFAULT_TIMEOUT_MS, data_at: 8 }))
        }
        ndisprot::IOCTL_NDISPROT_OPEN_DEVICE => {
            let _ = adapter_name(input)?;
            Ok(Request::NdisprotOpenDevice)
        }
        _ => Err(Error::INVALID_DEVICE_REQUEST),
    }
}

/// Writes the reply to a binding query into `out`; `view` is the binding at the requested index among the
/// enumerated ones, or `None` past the end (STATUS_NO_MORE_ENTRIES). Returns the bytes written.
pub fn query_reply(request: Request, view: Option<&BindingView<'_>>, out: &mut [u8]) -> Result<usize> {
    let v = view.ok_or(Error::NO_MORE_ENTRIES)?;
    match request {
        Request::NdisprotQueryBinding { index } => {
            rawlink_abi::emit_query_binding(out, index, v.adapter_name, v.friendly_name)
                .map_err(|_| Error::BUFFER_TOO_SMALL)
        }
        Request::QueryBinding { index } => BindingRecord {
            index,
            state: abi_state(v.state),
            mtu: v.mtu,
            link_up: v.connected,
            link_speed: v.link_speed,
            mac: v.mac,
        }
        .emit(out, v.adapter_name, v.friendly_name)
        .map_err(|_| Error::BUFFER_TOO_SMALL),
        Request::BindWait
        | Request::Open { .. }
        | Request::NdisprotOpenDevice
        | Request::GetStatistics
        | Request::AllowAnySource { .. }
        | Request::ReadMode(_)
        | Request::SetFilter(_)
        | Request::Oid(_)
        | Request::GetBindingStatistics { .. }
        | Request::SetQueueSize { .. }
        | Request::SetCaptureLength { .. } => Err(Error::INVALID_DEVICE_REQUEST),
    }
}

/// Writes a fixed-size reply (statistics, an event) into `out`.
pub fn fixed_reply(bytes: &[u8], out: &mut [u8]) -> Result<usize> {
    let dst = out.get_mut(..bytes.len()).ok_or(Error::BUFFER_TOO_SMALL)?;
    dst.copy_from_slice(bytes);
    Ok(bytes.len())
}

/// The adapter name of an OPEN_DEVICE request: UTF-16LE, an even number of bytes, trailing NULs ignored,
/// not empty (STATUS_INVALID_PARAMETER otherwise).
pub fn adapter_name(input: &[u8]) -> Result<impl Iterator<Item = u16> + Clone + '_> {
    if input.len() % 2 != 0 {
        return Err(Error::INVALID_PARAMETER);
    }
    let units = input
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c.first().copied().unwrap_or(0), c.get(1).copied().unwrap_or(0)]));
    let len = units.clone().rposition(|u| u != 0).map_or(0, |i| i + 1);
    if len == 0 {
        return Err(Error::INVALID_PARAMETER);
    }
    Ok(units.take(len))
}

/// Whether two adapter names are the same (the object manager compares names case-insensitively).
pub fn same_name(a: &[u16], b: impl Iterator<Item = u16>) -> bool {
    let fold = |u: u16| if (u16::from(b'a')..=u16::from(b'z')).contains(&u) { u - 32 } else { u };
    let mut b = b;
    a.iter().all(|&x| b.next().is_some_and(|y| fold(x) == fold(y))) && b.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn u(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn decode_refuses_unknown_codes_and_short_inputs() {
        assert_eq!(decode(0x0012_C8FC, &[]), Err(Error::INVALID_DEVICE_REQUEST));
        assert_eq!(decode(ndisprot::IOCTL_NDISPROT_QUERY_BINDING, &[0; 19]), Err(Error::BUFFER_TOO_SMALL));
        assert_eq!(decode(rawlink::IOCTL_RAWLINK_QUERY_BINDING, &[1, 0, 0]), Err(Error::BUFFER_TOO_SMALL));
        assert_eq!(decode(rawlink::IOCTL_RAWLINK_QUERY_BINDING, &[2, 0, 0, 0]), Ok(Request::QueryBinding { index: 2 }));
        let mut q = [0u8; 20];
        q[0] = 5;
        assert_eq!(decode(ndisprot::IOCTL_NDISPROT_QUERY_BINDING, &q), Ok(Request::NdisprotQueryBinding { index: 5 }));
        assert_eq!(decode(ndisprot::IOCTL_NDISPROT_BIND_WAIT, &[]), Ok(Request::BindWait));
    }

    #[test]
    fn new_requests_decode_and_refuse_bad_values() {
        use rawlink::*;
        let le = |v: &[u32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        assert_eq!(
            decode(IOCTL_RAWLINK_SET_READ_MODE, &le(&[1])),
            Ok(Request::ReadMode(ReadMode { blocking: true, min_bytes: 1, timeout_ms: 0 }))
        );
        assert_eq!(
            decode(IOCTL_RAWLINK_SET_READ_MODE, &le(&[1, 4096, 50])),
            Ok(Request::ReadMode(ReadMode { blocking: true, min_bytes: 4096, timeout_ms: 50 }))
        );
        assert_eq!(decode(IOCTL_RAWLINK_SET_READ_MODE, &le(&[1, 4096])), Err(Error::BUFFER_TOO_SMALL));
        assert_eq!(decode(IOCTL_RAWLINK_SET_READ_MODE, &le(&[2, 1, 1])), Err(Error::INVALID_PARAMETER));
        assert_eq!(decode(IOCTL_RAWLINK_SET_READ_MODE, &le(&[1, 1, 60_001])), Err(Error::INVALID_PARAMETER));
        assert_eq!(decode(IOCTL_RAWLINK_SET_QUEUE_SIZE, &le(&[1 << 16])), Ok(Request::SetQueueSize { bytes: 1 << 16 }));
        assert_eq!(decode(IOCTL_RAWLINK_SET_QUEUE_SIZE, &le(&[1000])), Err(Error::INVALID_PARAMETER));
        assert_eq!(decode(IOCTL_RAWLINK_SET_QUEUE_SIZE, &le(&[(64 << 20) + 1])), Err(Error::INVALID_PARAMETER));
        assert_eq!(decode(IOCTL_RAWLINK_SET_CAPTURE_LENGTH, &le(&[0])), Ok(Request::SetCaptureLength { bytes: 0 }));
        assert_eq!(decode(IOCTL_RAWLINK_SET_CAPTURE_LENGTH, &le(&[14])), Ok(Request::SetCaptureLength { bytes: 14 }));
        assert_eq!(decode(IOCTL_RAWLINK_SET_CAPTURE_LENGTH, &le(&[13])), Err(Error::INVALID_PARAMETER));
        assert_eq!(decode(IOCTL_RAWLINK_SET_CAPTURE_LENGTH, &[0; 3]), Err(Error::BUFFER_TOO_SMALL));
        assert_eq!(decode(IOCTL_RAWLINK_SET_FILTER, &le(&[1, 2])), Err(Error::BUFFER_TOO_SMALL));
        assert_eq!(decode(IOCTL_RAWLINK_SET_FILTER, &le(&[0x100, 0])), Err(Error::INVALID_PARAMETER));
        assert_eq!(decode(IOCTL_RAWLINK_SET_FILTER, &le(&[1, 17])), Err(Error::INVALID_PARAMETER));
        let q = decode(IOCTL_RAWLINK_QUERY_OID, &le(&[0x0001_010E, 0, 0, 0])).unwrap();
        assert_eq!(q, Request::Oid(OidRequest { set: false, oid: 0x0001_010E, timeout_ms: 5000, data_at: 16 }));
        assert_eq!(decode(IOCTL_RAWLINK_QUERY_OID, &le(&[1, 1, 0, 0])), Err(Error::INVALID_PARAMETER));
        assert_eq!(decode(IOCTL_RAWLINK_QUERY_OID, &le(&[1, 0, 0, 7])), Err(Error::INVALID_PARAMETER));
        assert_eq!(decode(IOCTL_RAWLINK_SET_OID, &le(&[1, 0, 0])), Err(Error::BUFFER_TOO_SMALL));
        let n = decode(ndisprot::IOCTL_NDISPROT_SET_OID_VALUE, &le(&[0x0001_010E, 0, 0xF])).unwrap();
        assert_eq!(n, Request::Oid(OidRequest { set: true, oid: 0x0001_010E, timeout_ms: 5000, data_at: 8 }));
        assert_eq!(decode(ndisprot::IOCTL_NDISPROT_QUERY_OID_VALUE, &le(&[1])), Err(Error::BUFFER_TOO_SMALL));
        assert_eq!(decode(ndisprot::IOCTL_NDISPROT_QUERY_OID_VALUE, &le(&[1, 3])), Err(Error::INVALID_PARAMETER));
    }

    #[test]
    fn oid_values_and_statuses() {
        assert_eq!(check_settable(OID_802_3_MULTICAST_LIST), Ok(()));
        // The ABI's values are the WDK's, OID by OID.
        let named: [u32; 38] = [
            // What the adapter is.
            ndis_sys::OID_GEN_SUPPORTED_LIST,
            ndis_sys::OID_GEN_HARDWARE_STATUS,
            ndis_sys::OID_GEN_MEDIA_SUPPORTED,
            ndis_sys::OID_GEN_MEDIA_IN_USE,
            ndis_sys::OID_GEN_PHYSICAL_MEDIUM,
            ndis_sys::OID_GEN_VENDOR_ID,
            ndis_sys::OID_GEN_VENDOR_DESCRIPTION,
            ndis_sys::OID_GEN_VENDOR_DRIVER_VERSION,
            ndis_sys::OID_GEN_DRIVER_VERSION,
            ndis_sys::OID_GEN_MAC_OPTIONS,
            // Addresses.
            ndis_sys::OID_802_3_PERMANENT_ADDRESS,
            ndis_sys::OID_802_3_CURRENT_ADDRESS,
            ndis_sys::OID_802_3_MULTICAST_LIST,
            ndis_sys::OID_802_3_MAXIMUM_LIST_SIZE,
            // Sizes.
            ndis_sys::OID_GEN_MAXIMUM_FRAME_SIZE,
            ndis_sys::OID_GEN_MAXIMUM_TOTAL_SIZE,
            ndis_sys::OID_GEN_MAXIMUM_LOOKAHEAD,
            ndis_sys::OID_GEN_CURRENT_LOOKAHEAD,
            ndis_sys::OID_GEN_MAXIMUM_SEND_PACKETS,
            ndis_sys::OID_GEN_TRANSMIT_BLOCK_SIZE,
            ndis_sys::OID_GEN_RECEIVE_BLOCK_SIZE,
            ndis_sys::OID_GEN_TRANSMIT_BUFFER_SPACE,
            ndis_sys::OID_GEN_RECEIVE_BUFFER_SPACE,
            // Link.
            ndis_sys::OID_GEN_LINK_SPEED,
            ndis_sys::OID_GEN_LINK_STATE,
            ndis_sys::OID_GEN_MEDIA_CONNECT_STATUS,
            ndis_sys::OID_GEN_MEDIA_DUPLEX_STATE,
            ndis_sys::OID_GEN_MAX_LINK_SPEED,
            // Filters.
            ndis_sys::OID_GEN_CURRENT_PACKET_FILTER,
            // Counters.
            ndis_sys::OID_GEN_STATISTICS,
            ndis_sys::OID_GEN_XMIT_OK,
            ndis_sys::OID_GEN_RCV_OK,
            ndis_sys::OID_GEN_XMIT_ERROR,
            ndis_sys::OID_GEN_RCV_ERROR,
            ndis_sys::OID_GEN_RCV_NO_BUFFER,
            ndis_sys::OID_GEN_RCV_CRC_ERROR,
            ndis_sys::OID_GEN_XMIT_DISCARDS,
            ndis_sys::OID_GEN_RCV_DISCARDS,
        ];
        assert_eq!(QUERYABLE_OIDS, named);
        assert_eq!(check_queryable(ndis_sys::OID_802_3_CURRENT_ADDRESS), Ok(()));
        assert_eq!(check_queryable(ndis_sys::OID_GEN_STATISTICS), Ok(()));
        // Vendor-private (0xFFxxxxxx), offload and power OIDs are refused.
        assert_eq!(check_queryable(0xFF00_0001), Err(Error::ACCESS_DENIED));
        assert_eq!(check_queryable(ndis_sys::OID_GEN_RECEIVE_SCALE_PARAMETERS), Err(Error::ACCESS_DENIED));
        assert_eq!(check_queryable(ndis_sys::OID_GEN_NETWORK_LAYER_ADDRESSES), Err(Error::ACCESS_DENIED));
        assert_eq!(check_settable(0x0001_0114), Err(Error::ACCESS_DENIED));
        assert_eq!(packet_filter_value(&[0x0B, 0, 0, 0]), Ok(0x0B));
        assert_eq!(packet_filter_value(&[0x0B, 0, 0]), Err(Error::BUFFER_TOO_SMALL));
        assert_eq!(packet_filter_value(&[0x40, 0, 0, 0]), Err(Error::NOT_SUPPORTED));
        let list = [1, 0, 0x5E, 0, 0, 1, 0x33, 0x33, 0, 0, 0, 1];
        assert_eq!(multicast_list(&list, 32).unwrap().count(), 2);
        assert_eq!(multicast_list(&list[..7], 32).err(), Some(Error::INVALID_PARAMETER));
        assert_eq!(multicast_list(&list, 1).err(), Some(Error::INSUFFICIENT_RESOURCES));
        assert_eq!(multicast_list(&[2, 0, 0, 0, 0, 1], 32).err(), Some(Error::INVALID_PARAMETER));
        assert_eq!(oid_result(NDIS_STATUS_SUCCESS, false), Ok(()));
        assert_eq!(oid_result(NDIS_STATUS_REQUEST_ABORTED, true), Err(Error::IO_TIMEOUT));
        assert_eq!(oid_result(NDIS_STATUS_REQUEST_ABORTED, false), Err(Error::CANCELLED));
        assert_eq!(oid_result(NDIS_STATUS_INVALID_LENGTH, false), Err(Error::BUFFER_TOO_SMALL));
        assert_eq!(oid_result(ndis_sys::NDIS_STATUS_NOT_SUPPORTED, false), Err(Error::NOT_SUPPORTED));
        assert_eq!(oid_result(0x1234, false), Err(Error::UNSUCCESSFUL));
    }

    #[test]
    fn replies() {
        let (name, friendly) = (u("\\DEVICE\\{1}"), u("Eth 1"));
        let v = BindingView {
            adapter_name: &name,
            friendly_name: &friendly,
            mac: [2, 0, 0, 0, 0, 1],
            mtu: 1500,
            link_speed: 1_000_000_000,
            connected: true,
            state: BindingState::Running,
        };
        let mut out = vec![0u8; 256];
        let n = query_reply(Request::QueryBinding { index: 0 }, Some(&v), &mut out).unwrap();
        let (rec, nr, _) = BindingRecord::parse(&out[..n]).unwrap();
        assert_eq!((rec.state, rec.mtu, rec.link_up, rec.mac), (binding_state::RUNNING, 1500, true, v.mac));
        assert_eq!(nr.len(), name.len() * 2);
        let n = query_reply(Request::NdisprotQueryBinding { index: 0 }, Some(&v), &mut out).unwrap();
        assert_eq!(n, 20 + 24 + 12);
        assert_eq!(query_reply(Request::QueryBinding { index: 9 }, None, &mut out), Err(Error::NO_MORE_ENTRIES));
        assert_eq!(
            query_reply(Request::QueryBinding { index: 0 }, Some(&v), &mut out[..60]),
            Err(Error::BUFFER_TOO_SMALL)
        );
    }

    #[test]
    fn adapter_names_are_checked_and_compared_case_insensitively() {
        let bytes = |s: &str| s.encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>();
        assert_eq!(adapter_name(&[]).err(), Some(Error::INVALID_PARAMETER));
        assert_eq!(adapter_name(&[0, 0]).err(), Some(Error::INVALID_PARAMETER));
        assert_eq!(adapter_name(&[b'a', 0, b'b']).err(), Some(Error::INVALID_PARAMETER));
        let mut with_nul = bytes("\\DEVICE\\{AB}");
        with_nul.extend_from_slice(&[0, 0]);
        let name = adapter_name(&with_nul).unwrap();
        assert!(same_name(&u("\\device\\{ab}"), name.clone()));
        assert!(!same_name(&u("\\device\\{ab"), name.clone()));
        assert!(!same_name(&u("\\device\\{abc}"), name));
        assert_eq!(decode(ndisprot::IOCTL_NDISPROT_OPEN_DEVICE, &with_nul), Ok(Request::NdisprotOpenDevice));
        assert_eq!(decode(ndisprot::IOCTL_NDISPROT_OPEN_DEVICE, &[0, 0]), Err(Error::INVALID_PARAMETER));
    }

    #[test]
    fn only_open_bindings_are_enumerated() {
        use BindingState as S;
        for s in [S::Opening, S::Paused, S::Restarting, S::Running, S::Pausing, S::Closing, S::Closed] {
            assert_eq!(enumerated(s), matches!(s, S::Paused | S::Restarting | S::Running | S::Pausing));
        }
    }
}

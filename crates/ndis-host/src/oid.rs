//! The OID model of a virtual Ethernet adapter: what an NDIS 6 miniport answers to the OIDs a protocol
//! driver issues (packet filter, multicast list, addresses, sizes, link state, statistics).
//!
//! Safe and free of FFI: [`OidModel::query`] returns the bytes to copy into the request's buffer,
//! [`OidModel::set`] consumes the request's bytes; both fail with the NDIS_STATUS a miniport returns and the
//! BytesNeeded it reports. The export layer (`native/exports/ndis.rs`) moves bytes in and out of driver memory.

use ndis_sys::{
    NDIS_LINK_STATE_REVISION_1, NDIS_OBJECT_TYPE_DEFAULT, NDIS_PACKET_TYPE_ALL_MULTICAST, NDIS_PACKET_TYPE_BROADCAST,
    NDIS_PACKET_TYPE_DIRECTED, NDIS_PACKET_TYPE_MULTICAST, NDIS_PACKET_TYPE_PROMISCUOUS,
    NDIS_SIZEOF_LINK_STATE_REVISION_1, NDIS_SIZEOF_STATISTICS_INFO_REVISION_1, NDIS_STATISTICS_INFO_REVISION_1,
    NDIS_STATUS, NDIS_STATUS_BUFFER_TOO_SHORT, NDIS_STATUS_INVALID_DATA, NDIS_STATUS_INVALID_LENGTH,
    NDIS_STATUS_MULTICAST_FULL, NDIS_STATUS_NOT_SUPPORTED, OID_802_3_CURRENT_ADDRESS, OID_802_3_MAXIMUM_LIST_SIZE,
    OID_802_3_MULTICAST_LIST, OID_802_3_PERMANENT_ADDRESS, OID_GEN_CURRENT_LOOKAHEAD, OID_GEN_CURRENT_PACKET_FILTER,
    OID_GEN_LINK_SPEED, OID_GEN_LINK_STATE, OID_GEN_MAC_OPTIONS, OID_GEN_MAXIMUM_FRAME_SIZE, OID_GEN_MAXIMUM_LOOKAHEAD,
    OID_GEN_MAXIMUM_TOTAL_SIZE, OID_GEN_MEDIA_CONNECT_STATUS, OID_GEN_RCV_OK, OID_GEN_STATISTICS,
    OID_GEN_VENDOR_DESCRIPTION, OID_GEN_XMIT_OK,
};

/// Packet filter bits the virtual adapter supports: directed, multicast, all-multicast, broadcast,
/// promiscuous (as the bind parameters' SupportedPacketFilters say) and NO_LOCAL (0x0001_0000).
pub const SUPPORTED_PACKET_FILTERS: u32 = 0x2F | 0x0001_0000;
/// The multicast list size the adapter reports (OID_802_3_MAXIMUM_LIST_SIZE, bind parameters).
pub const MAX_MULTICAST: usize = 32;
/// `NDIS_MAC_OPTION_COPY_LOOKAHEAD_DATA | TRANSFERS_NOT_PEND | NO_LOOPBACK`.
const MAC_OPTIONS: u32 = 0x1 | 0x2 | 0x8 | 0x80;
const ETHERNET_HEADER: u32 = 14;
/// `NDIS_STATISTICS_FLAGS_VALUE_*` for the counters this model keeps.
const SUPPORTED_STATISTICS: u32 =
    0x0000_0002 | 0x0000_0004 | 0x0000_0008 | 0x0000_0010 | 0x0000_0020 | 0x0000_0040 | 0x0000_0200 | 0x0000_0800;

/// A failed OID request: the status and the BytesNeeded NDIS reports with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OidError {
    pub status: NDIS_STATUS,
    pub bytes_needed: u32,
}

impl OidError {
    fn not_supported() -> Self {
        Self { status: NDIS_STATUS_NOT_SUPPORTED, bytes_needed: 0 }
    }
}

/// The adapter state the OIDs read and write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidModel {
    pub current_mac: [u8; 6],
    pub permanent_mac: [u8; 6],
    pub mtu: u32,
    pub link_speed: u64,
    pub connected: bool,
    /// OID_GEN_CURRENT_PACKET_FILTER as last set (0 when the adapter starts).
    pub packet_filter: u32,
    /// OID_802_3_MULTICAST_LIST as last set.
    pub multicast: Vec<[u8; 6]>,
    /// OID_GEN_CURRENT_LOOKAHEAD as last set (the MTU when the adapter starts; at most the MTU).
    pub lookahead: u32,
    pub xmit_ok: u64,
    pub rcv_ok: u64,
    pub xmit_octets: u64,
    pub rcv_octets: u64,
    pub vendor: String,
}

impl OidModel {
    pub fn new(mac: [u8; 6], mtu: u32, link_speed: u64, connected: bool) -> Self {
        Self {
            current_mac: mac,
            permanent_mac: mac,
            mtu,
            link_speed,
            connected,
            packet_filter: 0,
            multicast: Vec::new(),
            lookahead: mtu,
            xmit_ok: 0,
            rcv_ok: 0,
            xmit_octets: 0,
            rcv_octets: 0,
            vendor: "rawlink ndis-host virtual Ethernet".to_owned(),
        }
    }

    /// Whether the packet filter (OID_GEN_CURRENT_PACKET_FILTER) lets a received `frame` reach the binding, by
    /// its destination address as NDIS filters receives per binding: `NDIS_PACKET_TYPE_DIRECTED` takes frames to
    /// the current MAC address, `MULTICAST` group addresses in the multicast list, `ALL_MULTICAST` every group
    /// address but broadcast, `BROADCAST` ff:ff:ff:ff:ff:ff, `PROMISCUOUS` everything. A frame too short to
    /// hold a destination address passes only in promiscuous mode; a filter of 0 passes nothing.
    pub fn accepts(&self, frame: &[u8]) -> bool {
        let f = self.packet_filter;
        if f & NDIS_PACKET_TYPE_PROMISCUOUS != 0 {
            return true;
        }
        let Some(dst) = frame.first_chunk::<6>() else { return false };
        if *dst == [0xFF; 6] {
            return f & NDIS_PACKET_TYPE_BROADCAST != 0;
        }
        if dst[0] & 1 != 0 {
            return f & NDIS_PACKET_TYPE_ALL_MULTICAST != 0
                || (f & NDIS_PACKET_TYPE_MULTICAST != 0 && self.multicast.contains(dst));
        }
        f & NDIS_PACKET_TYPE_DIRECTED != 0 && *dst == self.current_mac
    }

    /// Answers a query whose buffer holds `len` bytes: the bytes to write, or the failure.
    pub fn query(&self, oid: u32, len: u32) -> Result<Vec<u8>, OidError> {
        let out = self.value(oid)?;
        let need = u32::try_from(out.len()).unwrap_or(u32::MAX);
        if len < need {
            return Err(OidError { status: NDIS_STATUS_BUFFER_TOO_SHORT, bytes_needed: need });
        }
        Ok(out)
    }

    fn value(&self, oid: u32) -> Result<Vec<u8>, OidError> {
        let u32v = |v: u32| v.to_le_bytes().to_vec();
        let u64v = |v: u64| v.to_le_bytes().to_vec();
        Ok(match oid {
            OID_GEN_CURRENT_PACKET_FILTER => u32v(self.packet_filter),
            OID_802_3_MULTICAST_LIST => self.multicast.concat(),
            OID_802_3_CURRENT_ADDRESS => self.current_mac.to_vec(),
            OID_802_3_PERMANENT_ADDRESS => self.permanent_mac.to_vec(),
            // CAST: a small constant.
            OID_802_3_MAXIMUM_LIST_SIZE => u32v(MAX_MULTICAST as u32),
            OID_GEN_MAXIMUM_FRAME_SIZE | OID_GEN_MAXIMUM_LOOKAHEAD => u32v(self.mtu),
            OID_GEN_CURRENT_LOOKAHEAD => u32v(self.lookahead),
            OID_GEN_MAXIMUM_TOTAL_SIZE => u32v(self.mtu + ETHERNET_HEADER),
            // In units of 100 bit/s.
            OID_GEN_LINK_SPEED => u32v(u32::try_from(self.link_speed / 100).unwrap_or(u32::MAX)),
            // NdisMediaStateConnected (0) / Disconnected (1).
            OID_GEN_MEDIA_CONNECT_STATUS => u32v(if self.connected { 0 } else { 1 }),
            OID_GEN_LINK_STATE => self.link_state(),
            OID_GEN_STATISTICS => self.statistics(),
            OID_GEN_XMIT_OK => u64v(self.xmit_ok),
            OID_GEN_RCV_OK => u64v(self.rcv_ok),
            OID_GEN_VENDOR_DESCRIPTION => {
                let mut v = self.vendor.as_bytes().to_vec();
                v.push(0);
                v
            }
            OID_GEN_MAC_OPTIONS => u32v(MAC_OPTIONS),
            _ => return Err(OidError::not_supported()),
        })
    }

    /// NDIS_LINK_STATE (revision 1, 40 bytes) as the adapter reports it.
    pub fn link_state(&self) -> Vec<u8> {
        let mut v = vec![0u8; usize::from(NDIS_SIZEOF_LINK_STATE_REVISION_1)];
        v[0] = NDIS_OBJECT_TYPE_DEFAULT;
        v[1] = NDIS_LINK_STATE_REVISION_1;
        v[2..4].copy_from_slice(&NDIS_SIZEOF_LINK_STATE_REVISION_1.to_le_bytes());
        // MediaConnectStateConnected (1) / Disconnected (2); MediaDuplexStateFull (2).
        v[4..8].copy_from_slice(&(if self.connected { 1u32 } else { 2 }).to_le_bytes());
        v[8..12].copy_from_slice(&2u32.to_le_bytes());
        let speed = if self.connected { self.link_speed } else { 0 };
        v[16..24].copy_from_slice(&speed.to_le_bytes());
        v[24..32].copy_from_slice(&speed.to_le_bytes());
        v
    }

    /// NDIS_STATISTICS_INFO (revision 1, 152 bytes).
    fn statistics(&self) -> Vec<u8> {
        let mut v = vec![0u8; usize::from(NDIS_SIZEOF_STATISTICS_INFO_REVISION_1)];
        v[0] = NDIS_OBJECT_TYPE_DEFAULT;
        v[1] = NDIS_STATISTICS_INFO_REVISION_1;
        v[2..4].copy_from_slice(&NDIS_SIZEOF_STATISTICS_INFO_REVISION_1.to_le_bytes());
        v[4..8].copy_from_slice(&SUPPORTED_STATISTICS.to_le_bytes());
        // The ULONG64 counters start at offset 8, in declaration order.
        let mut put = |index: usize, value: u64| v[8 + index * 8..16 + index * 8].copy_from_slice(&value.to_le_bytes());
        put(2, self.rcv_octets); // ifHCInOctets
        put(3, self.rcv_ok); // ifHCInUcastPkts
        put(6, self.xmit_octets); // ifHCOutOctets
        put(7, self.xmit_ok); // ifHCOutUcastPkts
        v
    }

    /// Applies a set with `data` (the request's whole buffer); returns BytesRead.
    pub fn set(&mut self, oid: u32, data: &[u8]) -> Result<u32, OidError> {
        let exact = |n: usize| -> Result<(), OidError> {
            if data.len() < n {
                // CAST: small sizes.
                return Err(OidError { status: NDIS_STATUS_INVALID_LENGTH, bytes_needed: n as u32 });
            }
            Ok(())
        };
        match oid {
            OID_GEN_CURRENT_PACKET_FILTER => {
                exact(4)?;
                let f = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
                if f & !SUPPORTED_PACKET_FILTERS != 0 {
                    return Err(OidError::not_supported());
                }
                self.packet_filter = f;
                Ok(4)
            }
            OID_802_3_MULTICAST_LIST => {
                if data.len() % 6 != 0 {
                    // CAST: bounded by the request's 32-bit length.
                    return Err(OidError {
                        status: NDIS_STATUS_INVALID_LENGTH,
                        bytes_needed: (data.len() / 6 * 6 + 6) as u32,
                    });
                }
                if data.len() / 6 > MAX_MULTICAST {
                    return Err(OidError { status: NDIS_STATUS_MULTICAST_FULL, bytes_needed: 0 });
                }
                let list: Vec<[u8; 6]> = data.chunks_exact(6).map(|c| [c[0], c[1], c[2], c[3], c[4], c[5]]).collect();
                if list.iter().any(|a| a[0] & 1 == 0) {
                    return Err(OidError { status: NDIS_STATUS_INVALID_DATA, bytes_needed: 0 });
                }
                self.multicast = list;
                // CAST: at most 32 * 6.
                Ok(data.len() as u32)
            }
            OID_GEN_CURRENT_LOOKAHEAD => {
                exact(4)?;
                let v = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
                // Lookahead is at most OID_GEN_MAXIMUM_LOOKAHEAD (the MTU here).
                if v > self.mtu {
                    return Err(OidError { status: NDIS_STATUS_INVALID_DATA, bytes_needed: 0 });
                }
                self.lookahead = v;
                Ok(4)
            }
            _ => Err(OidError::not_supported()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> OidModel {
        OidModel::new([2, 0, 0, 0, 0, 1], 1500, 1_000_000_000, true)
    }

    #[test]
    fn queries_answer_with_sizes_and_short_buffers_report_bytes_needed() {
        let m = model();
        assert_eq!(m.query(OID_802_3_CURRENT_ADDRESS, 6), Ok(vec![2, 0, 0, 0, 0, 1]));
        assert_eq!(m.query(OID_GEN_MAXIMUM_TOTAL_SIZE, 4), Ok(1514u32.to_le_bytes().to_vec()));
        assert_eq!(m.query(OID_GEN_LINK_SPEED, 4), Ok(10_000_000u32.to_le_bytes().to_vec()));
        assert_eq!(
            m.query(OID_802_3_CURRENT_ADDRESS, 5),
            Err(OidError { status: NDIS_STATUS_BUFFER_TOO_SHORT, bytes_needed: 6 })
        );
        assert_eq!(m.query(OID_GEN_LINK_STATE, 8).map_err(|e| e.bytes_needed), Err(40));
        assert_eq!(m.query(OID_GEN_STATISTICS, 152).map(|v| v.len()), Ok(152));
        assert_eq!(m.query(0x0DEA_D000, 64), Err(OidError { status: NDIS_STATUS_NOT_SUPPORTED, bytes_needed: 0 }));
        assert!(m.query(OID_GEN_VENDOR_DESCRIPTION, 128).is_ok_and(|v| v.ends_with(&[0])));
    }

    #[test]
    fn sets_record_filter_and_multicast_list_within_limits() {
        let mut m = model();
        assert_eq!(m.set(OID_GEN_CURRENT_PACKET_FILTER, &0x20u32.to_le_bytes()), Ok(4));
        assert_eq!(m.packet_filter, 0x20);
        assert_eq!(
            m.set(OID_GEN_CURRENT_PACKET_FILTER, &[1, 0]).map_err(|e| e.status),
            Err(NDIS_STATUS_INVALID_LENGTH)
        );
        assert_eq!(
            m.set(OID_GEN_CURRENT_PACKET_FILTER, &0x100u32.to_le_bytes()).map_err(|e| e.status),
            Err(NDIS_STATUS_NOT_SUPPORTED)
        );
        let list = [[1u8, 0, 0x5E, 0, 0, 1], [0x33, 0x33, 0, 0, 0, 1]].concat();
        assert_eq!(m.set(OID_802_3_MULTICAST_LIST, &list), Ok(12));
        assert_eq!(m.query(OID_802_3_MULTICAST_LIST, 12), Ok(list));
        let full = [1u8, 0, 0x5E, 0, 0, 1].repeat(MAX_MULTICAST + 1);
        assert_eq!(m.set(OID_802_3_MULTICAST_LIST, &full).map_err(|e| e.status), Err(NDIS_STATUS_MULTICAST_FULL));
        assert_eq!(m.set(OID_802_3_MULTICAST_LIST, &[1, 2, 3]).map_err(|e| e.status), Err(NDIS_STATUS_INVALID_LENGTH));
        assert_eq!(
            m.set(OID_802_3_MULTICAST_LIST, &[2, 0, 0, 0, 0, 1]).map_err(|e| e.status),
            Err(NDIS_STATUS_INVALID_DATA)
        );
        assert_eq!(
            m.set(OID_802_3_CURRENT_ADDRESS, &[2, 0, 0, 0, 0, 9]).map_err(|e| e.status),
            Err(NDIS_STATUS_NOT_SUPPORTED)
        );
        assert_eq!(m.multicast.len(), 2);
    }

    fn to(dst: [u8; 6]) -> Vec<u8> {
        [&dst[..], &[2, 0, 0, 0, 0, 9], &[0x08, 0x00], &[0u8; 46][..]].concat()
    }

    #[test]
    fn the_packet_filter_decides_by_destination_address() {
        let mut m = model();
        let mine = to([2, 0, 0, 0, 0, 1]);
        let other = to([2, 0, 0, 0, 0, 2]);
        let broadcast = to([0xFF; 6]);
        let listed = to([1, 0, 0x5E, 0, 0, 1]);
        let unlisted = to([0x33, 0x33, 0, 0, 0, 1]);
        let all = [&mine, &other, &broadcast, &listed, &unlisted];
        let accepted = |m: &OidModel| all.iter().map(|f| m.accepts(f)).collect::<Vec<_>>();
        // Nothing passes a filter of 0 (the adapter's state until a protocol sets one).
        assert_eq!(accepted(&m), [false; 5]);
        m.multicast = vec![[1, 0, 0x5E, 0, 0, 1]];
        m.packet_filter = NDIS_PACKET_TYPE_DIRECTED;
        assert_eq!(accepted(&m), [true, false, false, false, false]);
        m.packet_filter = NDIS_PACKET_TYPE_MULTICAST;
        assert_eq!(accepted(&m), [false, false, false, true, false]);
        m.packet_filter = NDIS_PACKET_TYPE_ALL_MULTICAST;
        assert_eq!(accepted(&m), [false, false, false, true, true], "broadcast is not multicast here");
        m.packet_filter = NDIS_PACKET_TYPE_BROADCAST;
        assert_eq!(accepted(&m), [false, false, true, false, false]);
        m.packet_filter = NDIS_PACKET_TYPE_DIRECTED | NDIS_PACKET_TYPE_BROADCAST | NDIS_PACKET_TYPE_MULTICAST;
        assert_eq!(accepted(&m), [true, false, true, true, false]);
        m.packet_filter = NDIS_PACKET_TYPE_PROMISCUOUS;
        assert_eq!(accepted(&m), [true; 5]);
        // The current MAC, not the permanent one, is the directed address.
        m.packet_filter = NDIS_PACKET_TYPE_DIRECTED;
        m.current_mac = [2, 0, 0, 0, 0, 2];
        assert_eq!(accepted(&m), [false, true, false, false, false]);
        // Runts: only promiscuous mode passes a frame without a whole destination address.
        let runt = [2u8, 0, 0, 0, 0];
        m.packet_filter = 0x2F & !NDIS_PACKET_TYPE_PROMISCUOUS;
        assert!(!m.accepts(&runt) && !m.accepts(&[]));
        m.packet_filter = NDIS_PACKET_TYPE_PROMISCUOUS;
        assert!(m.accepts(&runt) && m.accepts(&[]));
        // Exactly six bytes is a destination address.
        m.packet_filter = NDIS_PACKET_TYPE_BROADCAST;
        assert!(m.accepts(&[0xFF; 6]));
    }
}

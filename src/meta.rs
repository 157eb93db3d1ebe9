//! What NDIS says about a received NBL, turned into the flags and segment fields of a frame header.
//! Pure logic: the receive path reads the raw values out of the NBL and hands them here.

use rawlink_abi::frame_flags;

/// `NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET`: NDIS looped back a send of this host.
pub const NBL_FLAGS_IS_LOOPBACK_PACKET: u32 = 0x0000_8000;

/// The raw per-NBL values the receive path reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NblMeta {
    /// `NET_BUFFER_LIST.NblFlags`.
    pub nbl_flags: u32,
    /// `NetBufferListInfo[TcpIpChecksumNetBufferListInfo]` (NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO).
    pub checksum: usize,
    /// `NetBufferListInfo[TcpRecvSegCoalesceInfo]` (NDIS_RSC_NBL_INFO).
    pub rsc: usize,
    /// `NetBufferListInfo[UdpRecvSegCoalesceOffloadInfo]` (NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO); only
    /// read when the driver registered NDIS 6.89, the version that defines it.
    pub uro: usize,
}

/// Frame-header fields from NBL metadata.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeaderMeta {
    pub flags: u32,
    pub segment_count: u16,
    pub segment_size: u16,
}

// NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO.Receive bits (ndis/nblchecksum.h): TcpChecksumFailed 0,
// UdpChecksumFailed 1, IpChecksumFailed 2, TcpChecksumSucceeded 3, UdpChecksumSucceeded 4,
// IpChecksumSucceeded 5, Loopback 6.
const TCP_FAILED: usize = 1 << 0;
const UDP_FAILED: usize = 1 << 1;
const IP_FAILED: usize = 1 << 2;
const TCP_OK: usize = 1 << 3;
const UDP_OK: usize = 1 << 4;
const IP_OK: usize = 1 << 5;
const CHECKSUM_LOOPBACK: usize = 1 << 6;

/// Decodes the metadata of one received NBL.
pub fn decode(m: &NblMeta) -> HeaderMeta {
    let mut flags = 0;
    let c = m.checksum;
    if c & IP_OK != 0 {
        flags |= frame_flags::IP_CHECKSUM_OK;
    }
    if c & IP_FAILED != 0 {
        flags |= frame_flags::IP_CHECKSUM_BAD;
    }
    if c & (TCP_OK | UDP_OK) != 0 {
        flags |= frame_flags::L4_CHECKSUM_OK;
    }
    if c & (TCP_FAILED | UDP_FAILED) != 0 {
        flags |= frame_flags::L4_CHECKSUM_BAD;
    }
    if m.nbl_flags & NBL_FLAGS_IS_LOOPBACK_PACKET != 0 || c & CHECKSUM_LOOPBACK != 0 {
        flags |= frame_flags::SENT_BY_HOST;
    }
    let mut out = HeaderMeta { flags, segment_count: 0, segment_size: 0 };
    // CAST: both infos keep two USHORTs in the low 32 bits of the pointer-sized slot.
    let (rsc_count, uro_count, uro_size) =
        ((m.rsc & 0xFFFF) as u16, (m.uro & 0xFFFF) as u16, ((m.uro >> 16) & 0xFFFF) as u16);
    if rsc_count != 0 {
        out.flags |= frame_flags::COALESCED_TCP;
        out.segment_count = rsc_count;
    } else if uro_count != 0 {
        out.flags |= frame_flags::COALESCED_UDP;
        out.segment_count = uro_count;
        out.segment_size = uro_size;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_frames_have_no_flags() {
        assert_eq!(decode(&NblMeta::default()), HeaderMeta::default());
    }

    #[test]
    fn checksum_results_and_loopback() {
        let m = NblMeta { checksum: IP_OK | TCP_OK, ..Default::default() };
        assert_eq!(decode(&m).flags, frame_flags::IP_CHECKSUM_OK | frame_flags::L4_CHECKSUM_OK);
        let m = NblMeta { checksum: IP_FAILED | UDP_FAILED, ..Default::default() };
        assert_eq!(decode(&m).flags, frame_flags::IP_CHECKSUM_BAD | frame_flags::L4_CHECKSUM_BAD);
        let m = NblMeta { nbl_flags: NBL_FLAGS_IS_LOOPBACK_PACKET, ..Default::default() };
        assert_eq!(decode(&m).flags, frame_flags::SENT_BY_HOST);
        let m = NblMeta { checksum: CHECKSUM_LOOPBACK, ..Default::default() };
        assert_eq!(decode(&m).flags, frame_flags::SENT_BY_HOST);
    }

    #[test]
    fn coalesced_units_carry_their_segments() {
        // NDIS_RSC_NBL_INFO {CoalescedSegCount 5, DupAckCount 1}.
        let m = NblMeta { rsc: 5 | (1 << 16), checksum: TCP_OK | IP_OK, ..Default::default() };
        let d = decode(&m);
        assert_eq!(
            (d.flags & frame_flags::COALESCED_TCP, d.segment_count, d.segment_size),
            (frame_flags::COALESCED_TCP, 5, 0)
        );
        // NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO {SegCount 12, SegSize 1200}.
        let m = NblMeta { uro: 12 | (1200 << 16), ..Default::default() };
        assert_eq!(decode(&m), HeaderMeta { flags: frame_flags::COALESCED_UDP, segment_count: 12, segment_size: 1200 });
    }
}

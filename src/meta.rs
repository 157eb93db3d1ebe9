//! What NDIS says about a received NBL, turned into the flags and segment fields of a frame header.
//! Pure logic: the receive path reads the raw values out of the NBL and hands them here.

use ndis_sys::{NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO_Receive, NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET};
use rawlink_abi::frame_flags;

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

/// Decodes the metadata of one received NBL.
#[inline]
pub fn decode(m: &NblMeta) -> HeaderMeta {
    // The usual NBL (no checksum result, no coalescing, not a loopback): nothing to decode. A miniport
    // indicating one frame per NBL pays this once per frame.
    if m.checksum == 0 && m.rsc == 0 && m.uro == 0 && m.nbl_flags & NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET == 0 {
        return HeaderMeta::default();
    }
    decode_set(*m)
}

/// [`decode`] of an NBL with something set.
#[inline(never)]
fn decode_set(m: NblMeta) -> HeaderMeta {
    // CAST: the receive checksum info is a ULONG of bit-fields in the low bits of its pointer-sized slot.
    let c = NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO_Receive { Bits: m.checksum as u32 };
    let mut flags = 0;
    for (set, flag) in [
        (c.IpChecksumSucceeded(), frame_flags::IP_CHECKSUM_OK),
        (c.IpChecksumFailed(), frame_flags::IP_CHECKSUM_BAD),
        (c.TcpChecksumSucceeded() | c.UdpChecksumSucceeded(), frame_flags::L4_CHECKSUM_OK),
        (c.TcpChecksumFailed() | c.UdpChecksumFailed(), frame_flags::L4_CHECKSUM_BAD),
        (c.Loopback() | u32::from(m.nbl_flags & NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET != 0), frame_flags::SENT_BY_HOST),
    ] {
        if set != 0 {
            flags |= flag;
        }
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

    // NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO.Receive bits, as raw values a miniport stores.
    const TCP_FAILED: usize = 1 << 0;
    const UDP_FAILED: usize = 1 << 1;
    const IP_FAILED: usize = 1 << 2;
    const TCP_OK: usize = 1 << 3;
    const IP_OK: usize = 1 << 5;
    const CHECKSUM_LOOPBACK: usize = 1 << 6;

    #[test]
    fn plain_frames_have_no_flags() {
        assert_eq!(decode(&NblMeta::default()), HeaderMeta::default());
        // NBL flags other than the loopback one say nothing about the frame's header.
        let m = NblMeta { nbl_flags: !NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET, ..Default::default() };
        assert_eq!(decode(&m), HeaderMeta::default());
    }

    #[test]
    fn the_shortcut_agrees_with_the_full_decode() {
        let values = [0usize, 1, 1 << 3, 1 << 5, 1 << 6, 5 | (1 << 16), 12 | (1200 << 16), usize::MAX];
        for &checksum in &values {
            for &rsc in &values {
                for &uro in &values {
                    for nbl_flags in [0, NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET, u32::MAX] {
                        let m = NblMeta { nbl_flags, checksum, rsc, uro };
                        assert_eq!(decode(&m), decode_set(m), "{m:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn checksum_results_and_loopback() {
        let m = NblMeta { checksum: IP_OK | TCP_OK, ..Default::default() };
        assert_eq!(decode(&m).flags, frame_flags::IP_CHECKSUM_OK | frame_flags::L4_CHECKSUM_OK);
        let m = NblMeta { checksum: IP_OK | TCP_FAILED, ..Default::default() };
        assert_eq!(decode(&m).flags, frame_flags::IP_CHECKSUM_OK | frame_flags::L4_CHECKSUM_BAD);
        let m = NblMeta { checksum: IP_FAILED | UDP_FAILED, ..Default::default() };
        assert_eq!(decode(&m).flags, frame_flags::IP_CHECKSUM_BAD | frame_flags::L4_CHECKSUM_BAD);
        let m = NblMeta { nbl_flags: NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET, ..Default::default() };
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

//! Building the NDIS structures the host lends the driver: strings, bind parameters, PnP notifications,
//! restart parameters and received NET_BUFFER_LIST chains.

use super::memory::{read_obj, write_obj, HostBlock};
use ndis_sys::*;
use std::mem::size_of;

/// Host memory NDIS lends the driver for the duration of one call or one indication.
#[derive(Debug, Default)]
pub struct Lent {
    blocks: Vec<HostBlock>,
}

impl Lent {
    fn keep(&mut self, b: HostBlock) -> usize {
        let a = b.addr();
        self.blocks.push(b);
        a
    }
}

/// An NDIS_STRING (and its buffer) in host memory; returns its address.
pub fn ndis_string(lent: &mut Lent, s: &str) -> usize {
    let units: Vec<u16> = s.encode_utf16().collect();
    let bytes = units.len() * 2;
    let Some(block) = HostBlock::new(size_of::<NDIS_STRING>() + bytes + 2, 16) else { return 0 };
    let buf = block.addr() + size_of::<NDIS_STRING>();
    for (i, u) in units.iter().enumerate() {
        // SAFETY: inside the block just allocated.
        unsafe { write_obj(buf + i * 2, *u) };
    }
    // CAST: adapter names are far below 32 KiB.
    let len = bytes as u16;
    // SAFETY: the block starts with room for an NDIS_STRING.
    unsafe { write_obj(block.addr(), NDIS_STRING { Length: len, MaximumLength: len + 2, Buffer: buf as *mut u16 }) };
    lent.keep(block)
}

/// What the host knows about an adapter when it builds bind parameters.
#[derive(Debug, Clone, Copy)]
pub struct BindFacts<'a> {
    pub adapter_name: &'a str,
    pub medium: NDIS_MEDIUM,
    pub mac: [u8; 6],
    pub mtu: u32,
    pub link_speed: u64,
    pub connected: bool,
    pub if_index: u32,
}

/// NDIS_BIND_PARAMETERS, revision 4 (NDIS 6.30 and later).
pub fn bind_parameters(lent: &mut Lent, f: &BindFacts<'_>) -> usize {
    let name = ndis_string(lent, f.adapter_name);
    let section = ndis_string(lent, "RAWLINK");
    let Some(block) = HostBlock::new(size_of::<NDIS_BIND_PARAMETERS>(), 16) else { return 0 };
    let p = block.as_ptr::<NDIS_BIND_PARAMETERS>();
    // SAFETY: a fresh zeroed block of the structure's size; the driver sees it only after this.
    unsafe {
        (*p).Header = NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_BIND_PARAMETERS,
            Revision: NDIS_BIND_PARAMETERS_REVISION_4,
            Size: NDIS_SIZEOF_BIND_PARAMETERS_REVISION_4,
        };
        (*p).ProtocolSection = section as PNDIS_STRING;
        (*p).AdapterName = name as PNDIS_STRING;
        (*p).BoundAdapterName = name as PNDIS_STRING;
        (*p).MediaType = f.medium;
        (*p).MtuSize = f.mtu;
        (*p).MaxXmitLinkSpeed = f.link_speed;
        (*p).XmitLinkSpeed = f.link_speed;
        (*p).MaxRcvLinkSpeed = f.link_speed;
        (*p).RcvLinkSpeed = f.link_speed;
        (*p).MediaConnectState = if f.connected { MediaConnectStateConnected } else { 2 };
        (*p).MediaDuplexState = MediaDuplexStateFull;
        (*p).LookaheadSize = f.mtu;
        (*p).SupportedPacketFilters = 0x2F; // directed, multicast, all-multicast, broadcast, promiscuous
        (*p).MaxMulticastListSize = 32;
        (*p).MacAddressLength = 6;
        let mut mac = [0u8; 32];
        mac[..6].copy_from_slice(&f.mac);
        (*p).CurrentMacAddress = mac;
        (*p).PhysicalMediumType = NdisPhysicalMedium802_3;
        (*p).BoundIfIndex = f.if_index;
        (*p).LowestIfIndex = f.if_index;
        (*p).IfType = 6; // IF_TYPE_ETHERNET_CSMACD
        (*p).IfConnectorPresent = 1;
    }
    lent.keep(block)
}

/// A NET_PNP_EVENT_NOTIFICATION for `code`, with an optional buffer.
pub fn pnp_notification(lent: &mut Lent, code: NET_PNP_EVENT_CODE, buffer: usize, buffer_len: u32) -> usize {
    let Some(block) = HostBlock::new(size_of::<NET_PNP_EVENT_NOTIFICATION>(), 16) else { return 0 };
    let n = block.as_ptr::<NET_PNP_EVENT_NOTIFICATION>();
    // SAFETY: a fresh zeroed block of the structure's size.
    unsafe {
        (*n).Header = NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_DEFAULT,
            Revision: NET_PNP_EVENT_NOTIFICATION_REVISION_1,
            Size: NDIS_SIZEOF_NET_PNP_EVENT_NOTIFICATION_REVISION_1,
        };
        (*n).PortNumber = 0;
        (*n).NetPnPEvent.NetEvent = code;
        (*n).NetPnPEvent.Buffer = buffer as PVOID;
        (*n).NetPnPEvent.BufferLength = buffer_len;
    }
    lent.keep(block)
}

/// NDIS_PROTOCOL_RESTART_PARAMETERS with no changed attributes.
pub fn restart_parameters(lent: &mut Lent, if_index: u32) -> (usize, u32) {
    let Some(block) = HostBlock::new(size_of::<NDIS_PROTOCOL_RESTART_PARAMETERS>(), 16) else { return (0, 0) };
    let r = block.as_ptr::<NDIS_PROTOCOL_RESTART_PARAMETERS>();
    // SAFETY: a fresh zeroed block of the structure's size.
    unsafe {
        (*r).Header = NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_PROTOCOL_RESTART_PARAMETERS,
            Revision: NDIS_PROTOCOL_RESTART_PARAMETERS_REVISION_1,
            Size: NDIS_SIZEOF_PROTOCOL_RESTART_PARAMETERS_REVISION_1,
        };
        (*r).BoundIfIndex = if_index;
    }
    // CAST: a small structure.
    let len = size_of::<NDIS_PROTOCOL_RESTART_PARAMETERS>() as u32;
    (lent.keep(block), len)
}

/// Size the host allocates per NET_BUFFER_LIST: the largest revision Windows uses (0x180), so a driver that
/// reads past the NDIS 6.30 layout reads host memory, not a neighbour.
const NBL_ALLOCATION: usize = 0x180;

/// A received chain: one NBL per frame, each with one NET_BUFFER and one MDL; `data_offset` bytes of
/// headroom precede each frame in its MDL, as miniports leave room for headers.
pub fn receive_chain(lent: &mut Lent, frames: &[Vec<u8>], data_offset: usize) -> Vec<usize> {
    let mut nbls = Vec::new();
    for frame in frames {
        let Some(data) = HostBlock::new(data_offset + frame.len(), 16) else { break };
        for (i, b) in frame.iter().enumerate() {
            // SAFETY: inside the data block.
            unsafe { write_obj(data.addr() + data_offset + i, *b) };
        }
        let (Some(mdl), Some(nb), Some(nbl)) = (
            HostBlock::new(size_of::<MDL>(), 16),
            HostBlock::new(size_of::<NET_BUFFER>(), 16),
            HostBlock::new(NBL_ALLOCATION, 16),
        ) else {
            break;
        };
        // SAFETY: fresh zeroed blocks of (at least) each structure's size.
        unsafe {
            let m = mdl.as_ptr::<MDL>();
            // CAST: MDL sizes and counts of one small frame.
            (*m).Size = (size_of::<MDL>() + 8) as i16;
            (*m).MdlFlags = MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL;
            (*m).MappedSystemVa = data.void();
            (*m).StartVa = (data.addr() & !0xFFF) as PVOID;
            (*m).ByteOffset = (data.addr() & 0xFFF) as u32;
            (*m).ByteCount = (data_offset + frame.len()) as u32;
            let b = nb.as_ptr::<NET_BUFFER>();
            (*b).u1.s.CurrentMdl = m;
            (*b).u1.s.MdlChain = m;
            (*b).u1.s.CurrentMdlOffset = data_offset as u32;
            (*b).u1.s.DataOffset = data_offset as u32;
            (*b).u1.s.u.DataLength = frame.len() as u32;
            let l = nbl.as_ptr::<NET_BUFFER_LIST>();
            (*l).u1.s.FirstNetBuffer = b;
        }
        nbls.push(nbl.addr());
        lent.keep(data);
        lent.keep(mdl);
        lent.keep(nb);
        lent.keep(nbl);
    }
    for pair in nbls.windows(2) {
        if let [a, b] = *pair {
            // SAFETY: both are NBLs built above.
            unsafe { (*(a as *mut NET_BUFFER_LIST)).u1.s.Next = b as PNET_BUFFER_LIST };
        }
    }
    nbls
}

/// The NBLs of a chain the driver handed back, following `Next` (at most `limit`, against loops).
///
/// # Safety
///
/// `head` is null or the first of a chain of NBLs the host built.
pub unsafe fn chain(head: usize, limit: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut p = head;
    while p != 0 && out.len() < limit {
        out.push(p);
        // SAFETY: guaranteed by the caller for every NBL of the chain.
        let nbl: NET_BUFFER_LIST = unsafe { read_obj(p) };
        // SAFETY: the anonymous data member is the active one for NBLs the host built.
        p = unsafe { nbl.u1.s.Next } as usize;
    }
    out
}

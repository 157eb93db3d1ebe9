//! Building the NDIS structures the host lends the driver: strings, bind parameters, PnP notifications,
//! restart parameters and received NET_BUFFER_LIST chains.

use super::memory::{read_obj, write_obj, HostBlock};
use ndis_sys::*;
use std::mem::size_of;

/// Host memory NDIS lends the driver for the duration of one call or one indication.
#[derive(Debug, Default)]
pub struct Lent {
    blocks: Vec<HostBlock>,
    /// Set when the blocks are exactly one receive chain of one MDL per frame: where its pieces sit.
    layout: Option<ChainLayout>,
}

/// Where the blocks of a received chain with one MDL per frame sit, kept with them (in [`Lent`], then in
/// [`Recycled::prepared`]): the next chain of the same layout (the same shape, number of frames and data
/// block sizes: the usual stream of indications) is written into the same blocks in place, with the same
/// stores a chain built block by block gets, and no block is looked up, kept or sorted.
#[derive(Debug)]
struct ChainLayout {
    shape: ReceiveShape,
    /// The NBLs in chain order.
    nbls: Vec<usize>,
    /// Per frame, in order.
    frames: Vec<FrameBlocks>,
}

/// The blocks of one received frame: its NET_BUFFER, its MDL, and its data block with that block's size.
#[derive(Debug, Clone, Copy)]
struct FrameBlocks {
    nb: usize,
    mdl: usize,
    data: usize,
    data_size: usize,
}

impl Lent {
    /// Room for `n` more blocks (an indication's chain reserves them at once instead of growing by doubling).
    fn reserve(&mut self, n: usize) {
        self.blocks.reserve(n);
    }

    fn keep(&mut self, b: HostBlock) -> usize {
        let a = b.addr();
        self.blocks.push(b);
        a
    }

    /// Gives the blocks of a finished receive indication (every NBL of it returned, or a
    /// NDIS_RECEIVE_FLAGS_RESOURCES call over) back for the next indication's chain, as a miniport reuses
    /// its receive NBLs, instead of freeing them.
    pub fn recycle(self) {
        let mut pool = RECYCLED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.recycle_into(&mut pool);
    }

    fn recycle_into(mut self, pool: &mut Recycled) {
        if let Some(layout) = self.layout.take() {
            // A chain written in place next time; one kept before that nobody took goes to the classes.
            if let Some((older, _)) = pool.prepared.replace((self.blocks, layout)) {
                pool.sort(older);
            }
            return;
        }
        pool.keep_last(self.blocks);
    }
}

/// Receive blocks of finished indications, for the next ones ([`Lent::recycle`], `Recycler::block`).
#[derive(Debug)]
struct Recycled {
    /// The last finished indication with a [`ChainLayout`]: the next chain of that layout is written into its
    /// blocks in place; a chain of another layout moves them to `last` first.
    prepared: Option<(Vec<HostBlock>, ChainLayout)>,
    /// The last finished indication's blocks, in reverse order of allocation: a chain of the same layout
    /// (the usual case: the same frame sizes and shape) takes them back one by one from the end, no sorting.
    last: Vec<HostBlock>,
    /// The rest by size class: class `c` holds blocks of `(c + 1) * 64` bytes.
    classes: [Vec<HostBlock>; RECYCLE_CLASSES],
}

impl Recycled {
    const fn new() -> Self {
        Recycled { prepared: None, last: Vec::new(), classes: [const { Vec::new() }; RECYCLE_CLASSES] }
    }

    /// The prepared chain, when `frames` in `shape` have its layout; otherwise its blocks become `last`, for
    /// the chain to take back block by block.
    fn prepared_for<F: AsRef<[u8]>>(
        &mut self,
        shape: ReceiveShape,
        frames: &[F],
    ) -> Option<(Vec<HostBlock>, ChainLayout)> {
        let fits = self.prepared.as_ref().is_some_and(|(_, l)| {
            l.shape == shape
                && l.frames.len() == frames.len()
                && l.frames
                    .iter()
                    .zip(frames)
                    .all(|(b, f)| block_size(shape.data_offset + f.as_ref().len()) == b.data_size)
        });
        if fits {
            return self.prepared.take();
        }
        if let Some((blocks, _)) = self.prepared.take() {
            self.keep_last(blocks);
        }
        None
    }

    /// Makes `blocks` (a finished chain's, in allocation order) the last chain, for the next chain to take back
    /// block by block; the chain before it that no chain took back (two indications were outstanding at once)
    /// goes to the classes.
    fn keep_last(&mut self, mut blocks: Vec<HostBlock>) {
        let older = std::mem::take(&mut self.last);
        self.sort(older);
        // Kept whole, in reverse, so the next chain of the same layout pops each block in the order it asks.
        blocks.reverse();
        self.last = blocks;
    }

    /// Puts `blocks` into their classes; blocks of a size that is not a class (bind parameters, strings),
    /// past the largest, or of a full class are freed.
    fn sort(&mut self, blocks: Vec<HostBlock>) {
        for b in blocks {
            self.file(b);
        }
    }

    /// `b`, the last chain's next block, is not what this chain asks for: it and the rest go to their classes.
    #[cold]
    #[inline(never)]
    fn give_up_last(&mut self, b: HostBlock) {
        let rest = std::mem::take(&mut self.last);
        self.file(b);
        self.sort(rest);
    }

    fn file(&mut self, b: HostBlock) {
        if let Some(v) = class_of(b.size()).and_then(|c| self.classes.get_mut(c)).filter(|v| v.len() < RECYCLE_KEPT) {
            v.push(b);
        }
    }
}

static RECYCLED: std::sync::Mutex<Recycled> = std::sync::Mutex::new(Recycled::new());
/// At most this many blocks are kept per class; blocks up to this many classes (16 KiB: a jumbo frame and
/// its headroom) are recycled, larger ones freed.
const RECYCLE_KEPT: usize = 4096;
const RECYCLE_CLASSES: usize = 256;
/// The size classes' step: data blocks of frames of nearby lengths share a class.
const CLASS_BYTES: usize = 64;

/// The size of the block a receive chain takes for `size` bytes (see `Recycler::block`).
fn block_size(size: usize) -> usize {
    size.max(1).next_multiple_of(CLASS_BYTES)
}

/// The class of a block of exactly `size` bytes (a multiple of [`CLASS_BYTES`], at most the largest class).
fn class_of(size: usize) -> Option<usize> {
    (size % CLASS_BYTES == 0).then(|| (size / CLASS_BYTES).checked_sub(1)).flatten().filter(|&c| c < RECYCLE_CLASSES)
}

/// The recycled receive blocks, locked once for a whole chain ([`Lent::recycle`] fills them).
struct Recycler<'a>(&'a mut Recycled);

impl Recycler<'_> {
    /// A block of at least `size` bytes for a receive chain: a recycled one when there is one (blocks come in
    /// 64-byte classes so frames of nearby lengths share them), else a fresh allocation. With `zeroed` it is
    /// all zero, as a fresh one; without, a recycled block keeps what its last indication left in it (a data
    /// buffer the caller overwrites, as a NIC's receive buffer keeps old frames' bytes).
    #[inline]
    fn block(&mut self, size: usize, zeroed: bool) -> Option<HostBlock> {
        let size = block_size(size);
        let pool = &mut *self.0;
        // The last chain's next block, when it is of this size (the same layout again); one of another size
        // goes to its class, and the last chain is sorted no further for this chain.
        let reused = match pool.last.pop() {
            Some(b) if b.size() == size => Some(b),
            Some(b) => {
                pool.give_up_last(b);
                None
            }
            None => None,
        };
        match reused.or_else(|| class_of(size).and_then(|c| pool.classes.get_mut(c)).and_then(Vec::pop)) {
            Some(b) => {
                if zeroed {
                    // SAFETY: a block of `size` bytes nobody uses any more (its indication is over).
                    unsafe { super::memory::fill(b.addr(), b.size(), 0) };
                }
                Some(b)
            }
            None => HostBlock::new(size, 16),
        }
    }
}

/// Reads a `T` the host allocated, lets `f` change the copy, and writes it back.
///
/// # Safety
///
/// `addr` is valid for reads and writes of a `T` that nobody else writes meanwhile.
unsafe fn update<T: Copy>(addr: usize, f: impl FnOnce(&mut T)) {
    // SAFETY: guaranteed by the caller.
    let mut v: T = unsafe { read_obj(addr) };
    f(&mut v);
    // SAFETY: guaranteed by the caller.
    unsafe { write_obj(addr, v) };
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
    let set = |p: &mut NDIS_BIND_PARAMETERS| {
        p.Header = NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_BIND_PARAMETERS,
            Revision: NDIS_BIND_PARAMETERS_REVISION_4,
            Size: NDIS_SIZEOF_BIND_PARAMETERS_REVISION_4,
        };
        p.ProtocolSection = section as PNDIS_STRING;
        p.AdapterName = name as PNDIS_STRING;
        p.BoundAdapterName = name as PNDIS_STRING;
        p.MediaType = f.medium;
        p.MtuSize = f.mtu;
        p.MaxXmitLinkSpeed = f.link_speed;
        p.XmitLinkSpeed = f.link_speed;
        p.MaxRcvLinkSpeed = f.link_speed;
        p.RcvLinkSpeed = f.link_speed;
        p.MediaConnectState = if f.connected { MediaConnectStateConnected } else { 2 };
        p.MediaDuplexState = MediaDuplexStateFull;
        p.LookaheadSize = f.mtu;
        p.SupportedPacketFilters = 0x2F; // directed, multicast, all-multicast, broadcast, promiscuous
        p.MaxMulticastListSize = 32;
        p.MacAddressLength = 6;
        let mut mac = [0u8; 32];
        mac[..6].copy_from_slice(&f.mac);
        p.CurrentMacAddress = mac;
        p.PhysicalMediumType = NdisPhysicalMedium802_3;
        p.BoundIfIndex = f.if_index;
        p.LowestIfIndex = f.if_index;
        p.IfType = 6; // IF_TYPE_ETHERNET_CSMACD
        p.IfConnectorPresent = 1;
    };
    // SAFETY: a fresh zeroed block of the structure's size; the driver sees it only after this.
    unsafe { update::<NDIS_BIND_PARAMETERS>(block.addr(), set) };
    lent.keep(block)
}

/// `NDIS_RUNTIME_VERSION_650`: NET_PNP_EVENT_NOTIFICATION revision 2 (SwitchId, VPortId) from here on.
const NDIS_650: u32 = 0x0006_0032;

/// A NET_PNP_EVENT_NOTIFICATION for `code`, with an optional buffer, at the revision NDIS `version` uses
/// (2 from NDIS 6.50, else 1). The block always has the size of the largest revision.
pub fn pnp_notification(
    lent: &mut Lent,
    version: u32,
    code: NET_PNP_EVENT_CODE,
    buffer: usize,
    buffer_len: u32,
) -> usize {
    let Some(block) = HostBlock::new(ndis689::SIZEOF_NET_PNP_EVENT_NOTIFICATION, 16) else { return 0 };
    let (revision, size) = if version >= NDIS_650 {
        (NET_PNP_EVENT_NOTIFICATION_REVISION_2, NDIS_SIZEOF_NET_PNP_EVENT_NOTIFICATION_REVISION_2)
    } else {
        (NET_PNP_EVENT_NOTIFICATION_REVISION_1, NDIS_SIZEOF_NET_PNP_EVENT_NOTIFICATION_REVISION_1)
    };
    let set = |n: &mut NET_PNP_EVENT_NOTIFICATION| {
        n.Header = NDIS_OBJECT_HEADER { Type: NDIS_OBJECT_TYPE_DEFAULT, Revision: revision, Size: size };
        n.PortNumber = 0;
        n.NetPnPEvent.NetEvent = code;
        n.NetPnPEvent.Buffer = buffer as PVOID;
        n.NetPnPEvent.BufferLength = buffer_len;
    };
    // SAFETY: a fresh zeroed block of the largest revision's size (the revision-1 view is a prefix).
    unsafe { update::<NET_PNP_EVENT_NOTIFICATION>(block.addr(), set) };
    lent.keep(block)
}

/// What changed while a binding was paused, as the restart attributes tell a protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartChange {
    pub mtu: u32,
    /// Bits per second.
    pub link_speed: u64,
}

/// NDIS_PROTOCOL_RESTART_PARAMETERS; with `change`, its RestartAttributes list holds one
/// OID_GEN_MINIPORT_RESTART_ATTRIBUTES entry whose Data is an NDIS_RESTART_GENERAL_ATTRIBUTES (revision 2).
pub fn restart_parameters(lent: &mut Lent, if_index: u32, change: Option<RestartChange>) -> (usize, u32) {
    let Some(block) = HostBlock::new(size_of::<NDIS_PROTOCOL_RESTART_PARAMETERS>(), 16) else { return (0, 0) };
    let data_at = std::mem::offset_of!(NDIS_RESTART_ATTRIBUTES, Data);
    let attributes = change.and_then(|c| {
        let general = size_of::<NDIS_RESTART_GENERAL_ATTRIBUTES>();
        let a = HostBlock::new(data_at + general, 16)?;
        let set_entry = |e: &mut NDIS_RESTART_ATTRIBUTES| {
            e.Next = std::ptr::null_mut();
            e.Oid = OID_GEN_MINIPORT_RESTART_ATTRIBUTES;
            // CAST: a small structure.
            e.DataLength = general as u32;
        };
        // SAFETY: a fresh zeroed block holding the entry header and the general attributes after it.
        unsafe { update::<NDIS_RESTART_ATTRIBUTES>(a.addr(), set_entry) };
        let set_general = |g: &mut NDIS_RESTART_GENERAL_ATTRIBUTES| {
            g.Header = NDIS_OBJECT_HEADER {
                Type: NDIS_OBJECT_TYPE_RESTART_GENERAL_ATTRIBUTES,
                Revision: NDIS_RESTART_GENERAL_ATTRIBUTES_REVISION_2,
                Size: NDIS_SIZEOF_RESTART_GENERAL_ATTRIBUTES_REVISION_2,
            };
            g.MtuSize = c.mtu;
            g.MaxXmitLinkSpeed = c.link_speed;
            g.MaxRcvLinkSpeed = c.link_speed;
        };
        // SAFETY: the Data member of the entry, inside the block, aligned as the WDK declares it (16).
        unsafe { update::<NDIS_RESTART_GENERAL_ATTRIBUTES>(a.addr() + data_at, set_general) };
        Some(lent.keep(a))
    });
    let set = |r: &mut NDIS_PROTOCOL_RESTART_PARAMETERS| {
        r.Header = NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_PROTOCOL_RESTART_PARAMETERS,
            Revision: NDIS_PROTOCOL_RESTART_PARAMETERS_REVISION_1,
            Size: NDIS_SIZEOF_PROTOCOL_RESTART_PARAMETERS_REVISION_1,
        };
        r.BoundIfIndex = if_index;
        r.RestartAttributes = attributes.unwrap_or(0) as PNDIS_RESTART_ATTRIBUTES;
    };
    // SAFETY: a fresh zeroed block of the structure's size.
    unsafe { update::<NDIS_PROTOCOL_RESTART_PARAMETERS>(block.addr(), set) };
    // CAST: a small structure.
    let len = size_of::<NDIS_PROTOCOL_RESTART_PARAMETERS>() as u32;
    (lent.keep(block), len)
}

/// Size the host allocates per NET_BUFFER_LIST: the largest revision Windows uses (0x180), so a driver that
/// reads past the NDIS 6.30 layout reads host memory, not a neighbour.
const NBL_ALLOCATION: usize = 0x180;

/// How a miniport lays received frames out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiveShape {
    /// NET_BUFFERs per NBL (frames are grouped in order; the last NBL may hold fewer).
    pub nbs_per_nbl: usize,
    /// MDLs each frame's data is split across.
    pub mdls_per_nb: usize,
    /// Headroom before the frame in its first MDL (DataOffset).
    pub data_offset: usize,
}

impl Default for ReceiveShape {
    fn default() -> Self {
        Self { nbs_per_nbl: 1, mdls_per_nb: 1, data_offset: 14 }
    }
}

/// A received chain laid out as `shape` says; returns the NBLs in chain order.
pub fn receive_chain_shaped<F: AsRef<[u8]>>(lent: &mut Lent, frames: &[F], shape: ReceiveShape) -> Vec<usize> {
    let mut recycled = RECYCLED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    build_chain(&mut recycled, lent, frames, shape)
}

/// [`receive_chain_shaped`] from the blocks in `recycled`.
fn build_chain<F: AsRef<[u8]>>(
    recycled: &mut Recycled,
    lent: &mut Lent,
    frames: &[F],
    shape: ReceiveShape,
) -> Vec<usize> {
    // Only a chain that is all of `lent` has a layout to keep.
    let one_mdl = shape.mdls_per_nb <= 1 && lent.blocks.is_empty() && lent.layout.is_none();
    if one_mdl {
        if let Some((blocks, layout)) = recycled.prepared_for(shape, frames) {
            // SAFETY: the blocks of a finished indication of exactly this layout (`prepared_for`), which
            // nobody uses any more.
            unsafe { write_in_place(&layout, frames) };
            let nbls = layout.nbls.clone();
            (lent.blocks, lent.layout) = (blocks, Some(layout));
            return nbls;
        }
    }
    let per_nbl = shape.nbs_per_nbl.max(1);
    let mut nbls = Vec::with_capacity(frames.len().div_ceil(per_nbl));
    let mut placed = Vec::with_capacity(if one_mdl { frames.len() } else { 0 });
    // Each frame takes a data block, an MDL and a NET_BUFFER per MDL; each NBL one block more.
    lent.reserve(frames.len() * (1 + 2 * shape.mdls_per_nb.max(1)) + nbls.capacity());
    let mut pool = Recycler(recycled);
    let mut prev: *mut NET_BUFFER_LIST = std::ptr::null_mut();
    for group in frames.chunks(per_nbl) {
        let Some(nbl) = pool.block(NBL_ALLOCATION, true) else { break };
        let nbl_ptr = nbl.as_ptr::<NET_BUFFER_LIST>();
        // Kept in the order taken, so that the next chain of this layout takes the blocks back in order.
        lent.keep(nbl);
        let mut last: *mut NET_BUFFER = std::ptr::null_mut();
        for frame in group {
            let Some((nb, blocks)) = receive_nb(&mut pool, lent, frame.as_ref(), shape) else { break };
            if one_mdl {
                placed.push(blocks);
            }
            // SAFETY: the fresh NBL and NET_BUFFERs just built, which nobody else uses yet.
            unsafe { link_nb(nbl_ptr, last, nb) };
            last = nb;
        }
        if !prev.is_null() {
            // SAFETY: both are NBLs built above.
            unsafe { (*prev).u1.s.Next = nbl_ptr };
        }
        prev = nbl_ptr;
        nbls.push(nbl_ptr as usize);
    }
    if one_mdl && placed.len() == frames.len() {
        lent.layout = Some(ChainLayout { shape, nbls: nbls.clone(), frames: placed });
    }
    nbls
}

/// Links `nb` into the NBL `nbl` after `last` (null: as its first NET_BUFFER), with plain field stores.
///
/// # Safety
///
/// All three are blocks of a chain being built, which nobody else uses yet.
unsafe fn link_nb(nbl: *mut NET_BUFFER_LIST, last: *mut NET_BUFFER, nb: *mut NET_BUFFER) {
    if last.is_null() {
        // SAFETY: guaranteed by the caller.
        unsafe { (*nbl).u1.s.FirstNetBuffer = nb };
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { (*last).u1.s.Next = nb };
    }
}

/// The block size of an NBL, a NET_BUFFER and an MDL of a received chain (what `Recycler::block` hands out
/// for them).
const NBL_BLOCK: usize = NBL_ALLOCATION.next_multiple_of(CLASS_BYTES);
const NB_BLOCK: usize = size_of::<NET_BUFFER>().next_multiple_of(CLASS_BYTES);
const MDL_BLOCK: usize = (size_of::<MDL>() + 8).next_multiple_of(CLASS_BYTES);

/// Writes `frames` into the blocks of a kept chain: each NBL, NET_BUFFER and MDL block zeroed whole and
/// set, and each data block's headroom zeroed and the frame written after it, as [`build_chain`] does with
/// the blocks it takes one by one.
///
/// # Safety
///
/// `layout` describes the blocks of a finished indication that nobody uses any more, and `frames` have
/// its layout (see `Recycled::prepared_for`).
unsafe fn write_in_place<F: AsRef<[u8]>>(layout: &ChainLayout, frames: &[F]) {
    let head = layout.shape.data_offset;
    let mut slots = layout.frames.iter();
    let mut prev: *mut NET_BUFFER_LIST = std::ptr::null_mut();
    for (&nbl, group) in layout.nbls.iter().zip(frames.chunks(layout.shape.nbs_per_nbl.max(1))) {
        let nbl_ptr = nbl as *mut NET_BUFFER_LIST;
        // SAFETY: an NBL block of the chain (NBL_BLOCK bytes), guaranteed by the caller.
        unsafe { std::ptr::write_bytes(nbl_ptr.cast::<u8>(), 0, NBL_BLOCK) };
        let mut last: *mut NET_BUFFER = std::ptr::null_mut();
        for (frame, b) in group.iter().zip(&mut slots) {
            let (nb, mdl) = (b.nb as *mut NET_BUFFER, b.mdl as *mut MDL);
            let frame = frame.as_ref();
            // SAFETY: the frame's blocks (guaranteed by the caller): its data block holds head + frame.len()
            // bytes (its size is that length's class), the MDL and NET_BUFFER blocks their full sizes.
            unsafe {
                write_data(b.data, head, frame);
                std::ptr::write_bytes(mdl.cast::<u8>(), 0, MDL_BLOCK);
                fill_mdl(mdl, b.data, head + frame.len());
                std::ptr::write_bytes(nb.cast::<u8>(), 0, NB_BLOCK);
                set_nb(nb, mdl, head, frame.len());
                link_nb(nbl_ptr, last, nb);
            }
            last = nb;
        }
        if !prev.is_null() {
            // SAFETY: both are NBLs of the chain.
            unsafe { (*prev).u1.s.Next = nbl_ptr };
        }
        prev = nbl_ptr;
    }
}

/// Per-NBL metadata a miniport attaches to a received NET_BUFFER_LIST ([`crate::host::Host::indicate_receive_meta`]).
///
/// Layouts (the ndis-sys definitions): the slot indices are WDK 10.0.26100's nblinfo.h
/// (`reference/wdk-10.0.26100/constants-ndis689.tsv`), the checksum bit-field nblchecksum.h
/// (`layout-ndis689.json`); `NDIS_RSC_NBL_INFO` (nblrsc.h) and `NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO`
/// (nbluro.h) are not in the reference tables and follow their learn.microsoft.com pages. Each lives in one
/// pointer-sized `NetBufferListInfo` slot: the checksum info as a ULONG bit-field, the coalescing infos as two
/// USHORTs (the first member in the low 16 bits), the rest of the slot zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceiveMeta {
    /// `NblFlags |= NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET` (0x8000): NDIS looped back another protocol's send.
    pub loopback: bool,
    /// `NetBufferListInfo[TcpIpChecksumNetBufferListInfo]`: the raw ULONG of
    /// `NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO.Receive` (bit 0 TcpChecksumFailed, 1 UdpChecksumFailed,
    /// 2 IpChecksumFailed, 3 TcpChecksumSucceeded, 4 UdpChecksumSucceeded, 5 IpChecksumSucceeded, 6 Loopback,
    /// 7 TcpChecksumValueInvalid, 8 IpChecksumValueInvalid).
    pub checksum: u32,
    /// TCP RSC: `NetBufferListInfo[TcpRecvSegCoalesceInfo]` as `NDIS_RSC_NBL_INFO` (CoalescedSegCount,
    /// DupAckCount).
    pub rsc: Option<(u16, u16)>,
    /// UDP URO (NDIS 6.89): `NetBufferListInfo[UdpRecvSegCoalesceOffloadInfo]` as
    /// `NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO.Receive` (SegCount, SegSize).
    pub uro: Option<(u16, u16)>,
}

/// Writes `meta` into a received NBL: its NblFlags and `NetBufferListInfo` slots (the NDIS 6.89 layout,
/// whose slots 0 … 23 are where NDIS 6.30 has them).
///
/// # Safety
///
/// `nbl` is an NBL the host built for an indication ([`NBL_ALLOCATION`] bytes) that the driver does not
/// see yet.
unsafe fn set_receive_meta(nbl: usize, meta: &ReceiveMeta) {
    let mut rsc = NDIS_RSC_NBL_INFO { Value: std::ptr::null_mut() };
    if let Some((count, dup_acks)) = meta.rsc {
        rsc.Info = NDIS_RSC_NBL_INFO_Info { CoalescedSegCount: count, DupAckCount: dup_acks };
    }
    let mut uro = NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO {
        u: NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO_u { Value: std::ptr::null_mut() },
    };
    if let Some((count, size)) = meta.uro {
        uro.u.Receive = NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO_u_Receive { SegCount: count, SegSize: size };
    }
    // SAFETY: the union is 8 bytes, started from a null Value and then (maybe) given its 4-byte member, so
    // every byte is initialised; reading Value reinterprets them.
    let rsc = unsafe { rsc.Value };
    // SAFETY: as for `rsc`.
    let uro = unsafe { uro.u.Value };
    // The ULONG bit-field in the low half of the slot (NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO.Value).
    let checksum = meta.checksum as usize as PVOID;
    let set = |l: &mut ndis689::NET_BUFFER_LIST| {
        if meta.loopback {
            l.NblFlags |= NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET;
        }
        let mut put = |index: NDIS_NET_BUFFER_LIST_INFO, value: PVOID| {
            if let Some(slot) = l.NetBufferListInfo.get_mut(index as usize) {
                *slot = value;
            }
        };
        put(TcpIpChecksumNetBufferListInfo, checksum);
        if meta.rsc.is_some() {
            put(TcpRecvSegCoalesceInfo, rsc);
        }
        if meta.uro.is_some() {
            put(UdpRecvSegCoalesceOffloadInfo, uro);
        }
    };
    // SAFETY: guaranteed by the caller; the block is at least the 6.89 NBL's 368 bytes.
    unsafe { update::<ndis689::NET_BUFFER_LIST>(nbl, set) };
}

const _: () = assert!(NBL_ALLOCATION >= ndis689::SIZEOF_NET_BUFFER_LIST);

/// A received frame and the metadata its NBL carries.
pub type Arrival<'f> = (&'f [u8], Option<ReceiveMeta>);

/// [`receive_chain_shaped`] with metadata: an NBL carries the metadata of its first frame.
pub fn receive_chain_with_meta(lent: &mut Lent, frames: &[Arrival<'_>], shape: ReceiveShape) -> Vec<usize> {
    let bytes: Vec<&[u8]> = frames.iter().map(|f| f.0).collect();
    let nbls = receive_chain_shaped(lent, &bytes, shape);
    for (&nbl, group) in nbls.iter().zip(frames.chunks(shape.nbs_per_nbl.max(1))) {
        if let Some(meta) = group.first().and_then(|f| f.1) {
            // SAFETY: an NBL just built (NBL_ALLOCATION bytes) that no driver has seen yet.
            unsafe { set_receive_meta(nbl, &meta) };
        }
    }
    nbls
}

/// One received NET_BUFFER: `frame` split across `shape.mdls_per_nb` MDLs (each its own buffer), the first
/// preceded by `shape.data_offset` bytes of headroom. Returns it and the blocks of its first MDL.
fn receive_nb(
    pool: &mut Recycler<'_>,
    lent: &mut Lent,
    frame: &[u8],
    shape: ReceiveShape,
) -> Option<(*mut NET_BUFFER, FrameBlocks)> {
    let pieces = shape.mdls_per_nb.max(1);
    let (first, data, data_size) = if pieces == 1 {
        // The usual layout, one MDL: no division to split the frame.
        receive_mdl(pool, lent, shape.data_offset, frame)?
    } else {
        let chunk = frame.len().div_ceil(pieces).max(1);
        let (mut first, mut last): (Option<(*mut MDL, usize, usize)>, *mut MDL) = (None, std::ptr::null_mut());
        for (i, part) in frame
            .chunks(chunk)
            .chain(std::iter::repeat_n(&[][..], pieces.saturating_sub(frame.len().div_ceil(chunk))))
            .enumerate()
        {
            let head = if i == 0 { shape.data_offset } else { 0 };
            let piece = receive_mdl(pool, lent, head, part)?;
            if !last.is_null() {
                // SAFETY: the MDL built just before this one, not seen by the driver yet.
                unsafe { (*last).Next = piece.0 };
            }
            first.get_or_insert(piece);
            last = piece.0;
        }
        first?
    };
    let nb = pool.block(size_of::<NET_BUFFER>(), true)?;
    let p = nb.as_ptr::<NET_BUFFER>();
    // SAFETY: the fresh, zeroed NET_BUFFER block, which nobody else uses.
    unsafe { set_nb(p, first, shape.data_offset, frame.len()) };
    lent.keep(nb);
    Some((p, FrameBlocks { nb: p as usize, mdl: first as usize, data, data_size }))
}

/// Sets a received NET_BUFFER's fields (its block is zeroed): `len` bytes after `head` bytes of headroom in
/// the MDL chain at `mdl`. Plain field stores: no copy of the structure in and out.
///
/// # Safety
///
/// `p` is a NET_BUFFER block of a chain being built, which nobody else uses yet.
unsafe fn set_nb(p: *mut NET_BUFFER, mdl: *mut MDL, head: usize, len: usize) {
    // SAFETY: guaranteed by the caller.
    let b = unsafe { &mut *p };
    b.u1.s.CurrentMdl = mdl;
    b.u1.s.MdlChain = mdl;
    // CAST: headroom and frame sizes are far below 4 GiB.
    b.u1.s.CurrentMdlOffset = head as u32;
    b.u1.s.DataOffset = head as u32;
    b.u1.s.u.DataLength = len as u32;
}

/// One MDL of a received frame: its own data block holding `head` zero bytes of headroom, then `part`.
/// Returns the MDL, the data block's address and its size.
fn receive_mdl(pool: &mut Recycler<'_>, lent: &mut Lent, head: usize, part: &[u8]) -> Option<(*mut MDL, usize, usize)> {
    // Not zeroed: the headroom is zeroed and the frame written below; the bytes after it are outside the
    // MDL's ByteCount.
    let data = pool.block(head + part.len(), false)?;
    // SAFETY: head + part.len() bytes: inside the data block, which nobody else uses.
    unsafe { write_data(data.addr(), head, part) };
    let mdl = pool.block(size_of::<MDL>() + 8, true)?;
    // SAFETY: a zeroed MDL-sized block nobody else uses.
    unsafe { fill_mdl(mdl.as_ptr::<MDL>(), data.addr(), head + part.len()) };
    let (at, size) = (data.addr(), data.size());
    lent.keep(data);
    let p = mdl.as_ptr::<MDL>();
    lent.keep(mdl);
    Some((p, at, size))
}

/// Writes `head` zero bytes of headroom at `data`, then `part`.
///
/// # Safety
///
/// `data..data + head + part.len()` is a data block of a chain being built, which nobody else uses yet.
unsafe fn write_data(data: usize, head: usize, part: &[u8]) {
    // SAFETY: guaranteed by the caller.
    unsafe {
        super::memory::fill(data, head, 0);
        super::memory::write_bytes(data + head, part);
    }
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

// ---------------------------------------------------------------- the driver's NBLs, MDLs and sends

/// The size of every NET_BUFFER_LIST the host allocates (the driver's and received ones).
pub const NBL_SIZE: usize = NBL_ALLOCATION;

/// Fills a fresh MDL describing `len` bytes at `va`, mapped to system space.
///
/// # Safety
///
/// `m` points to a zeroed MDL-sized block nobody else uses yet.
unsafe fn fill_mdl(m: *mut MDL, va: usize, len: usize) {
    // SAFETY: guaranteed by the caller; plain field stores (no copy of the MDL in and out).
    let m = unsafe { &mut *m };
    // CAST: MDL header sizes and byte counts of frames (well below 4 GiB).
    m.Size = (size_of::<MDL>() + 8) as i16;
    m.MdlFlags = MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL;
    m.MappedSystemVa = va as PVOID;
    m.StartVa = (va & !0xFFF) as PVOID;
    m.ByteOffset = (va & 0xFFF) as u32;
    m.ByteCount = len as u32;
}

/// An MDL for `len` bytes at `va` (NdisAllocateMdl).
pub fn build_mdl(va: usize, len: u32) -> Option<HostBlock> {
    let b = HostBlock::new(size_of::<MDL>() + 8, 16)?;
    // SAFETY: a fresh zeroed block of an MDL's size.
    unsafe { fill_mdl(b.as_ptr::<MDL>(), va, len as usize) };
    Some(b)
}

/// What NdisAllocateNetBufferList / NdisAllocateNetBufferAndNetBufferList build.
#[derive(Debug)]
pub struct NblParts {
    pub blocks: Vec<HostBlock>,
    pub nbl: usize,
    pub nb: usize,
    pub data: Option<(usize, usize, usize)>,
}

/// What to put in the NET_BUFFER of a new NBL.
#[derive(Debug, Clone, Copy)]
pub struct NbSpec {
    /// The driver's MDL chain (0: none, or NDIS data when `ndis_data` > 0).
    pub mdl_chain: usize,
    pub data_offset: u32,
    pub data_length: usize,
    /// Bytes of data NDIS allocates with the NBL when `mdl_chain` is 0 (the pool's DataSize).
    pub ndis_data: u32,
}

/// Allocates an NBL of [`NBL_SIZE`] bytes for `pool`, with `context_size + backfill` bytes of context and,
/// if `nb` is given, a NET_BUFFER. `current` positions the NET_BUFFER's CurrentMdl/CurrentMdlOffset for a
/// driver MDL chain (the caller has checked the chain); `None` leaves them at the chain's start + offset.
pub fn allocate_nbl(
    pool: usize,
    context_size: u16,
    backfill: u16,
    nb: Option<NbSpec>,
    current: Option<(usize, u32)>,
) -> Option<NblParts> {
    let nbl = HostBlock::new(NBL_SIZE, 16)?;
    let mut parts = NblParts { nbl: nbl.addr(), nb: 0, data: None, blocks: vec![] };
    let l = nbl.addr();
    parts.blocks.push(nbl);
    let total = usize::from(context_size) + usize::from(backfill);
    let mut context = std::ptr::null_mut();
    if total > 0 {
        let c = HostBlock::new(size_of::<NET_BUFFER_LIST_CONTEXT>() + total, 16)?;
        let set = |ctx: &mut NET_BUFFER_LIST_CONTEXT| {
            // CAST: below 128 KiB (two u16 inputs); NDIS limits the sum below 64 KiB.
            ctx.Size = total as u16;
            ctx.Offset = backfill;
        };
        // SAFETY: the fresh zeroed context block.
        unsafe { update::<NET_BUFFER_LIST_CONTEXT>(c.addr(), set) };
        context = c.as_ptr::<NET_BUFFER_LIST_CONTEXT>();
        parts.blocks.push(c);
    }
    let first = match nb {
        Some(spec) => allocate_nb(&mut parts, pool, spec, current)?,
        None => 0,
    };
    let set = |n: &mut NET_BUFFER_LIST| {
        n.NdisPoolHandle = pool as NDIS_HANDLE;
        n.Context = context;
        n.u1.s.FirstNetBuffer = first as PNET_BUFFER;
    };
    // SAFETY: the fresh zeroed NBL block (NBL_SIZE bytes, more than the structure); the driver sees none of
    // these blocks until this returns.
    unsafe { update::<NET_BUFFER_LIST>(l, set) };
    Some(parts)
}

/// Allocates a NET_BUFFER for `pool` into `parts` (with NDIS data if `spec` asks); returns its address.
pub fn allocate_nb(parts: &mut NblParts, pool: usize, spec: NbSpec, current: Option<(usize, u32)>) -> Option<usize> {
    let b = HostBlock::new(size_of::<NET_BUFFER>(), 16)?;
    let mut chain = spec.mdl_chain;
    if chain == 0 && spec.ndis_data > 0 {
        let len = spec.ndis_data as usize;
        let data = HostBlock::new(len, 16)?;
        let mdl = build_mdl(data.addr(), spec.ndis_data)?;
        chain = mdl.addr();
        parts.data = Some((mdl.addr(), data.addr(), len));
        parts.blocks.push(data);
        parts.blocks.push(mdl);
    }
    let (cur, cur_off) = current.unwrap_or((chain, spec.data_offset));
    let set = |n: &mut NET_BUFFER| {
        n.u1.s.MdlChain = chain as PMDL;
        n.u1.s.CurrentMdl = cur as PMDL;
        n.u1.s.CurrentMdlOffset = cur_off;
        n.u1.s.DataOffset = spec.data_offset;
        n.u1.s.u.stDataLength = spec.data_length;
        n.NdisPoolHandle = pool as NDIS_HANDLE;
    };
    // SAFETY: the fresh zeroed NET_BUFFER block.
    unsafe { update::<NET_BUFFER>(b.addr(), set) };
    parts.nb = b.addr();
    parts.blocks.push(b);
    Some(parts.nb)
}

/// Moves a NET_BUFFER's data start: DataOffset becomes `offset`, DataLength `length`, and CurrentMdl /
/// CurrentMdlOffset the position `locate` found.
///
/// # Safety
///
/// `nb` is a NET_BUFFER the host allocated and still holds.
pub unsafe fn set_data_start(nb: usize, offset: u32, length: u32, current: (usize, u32)) {
    let set = |n: &mut NET_BUFFER| {
        n.u1.s.DataOffset = offset;
        n.u1.s.u.stDataLength = length as usize;
        n.u1.s.CurrentMdl = current.0 as PMDL;
        n.u1.s.CurrentMdlOffset = current.1;
    };
    // SAFETY: guaranteed by the caller.
    unsafe { update::<NET_BUFFER>(nb, set) };
}

/// `NetBufferListInfo[NetBufferListCancelId]` of an NBL.
///
/// # Safety
///
/// `nbl` is an NBL the host allocated and still holds.
pub unsafe fn cancel_id(nbl: usize) -> usize {
    // SAFETY: guaranteed by the caller; the slot is inside the NBL_SIZE block.
    unsafe {
        read_obj::<usize>(
            nbl + std::mem::offset_of!(NET_BUFFER_LIST, NetBufferListInfo) + NetBufferListCancelId as usize * 8,
        )
    }
}

/// The MDL a NET_BUFFER's `DataOffset` falls in, and the offset in it, walking the chain from `chain`.
/// Every MDL visited must satisfy `known`; `None` when one does not or the chain is too short.
pub fn locate(chain: usize, mut offset: u64, known: &impl Fn(usize) -> bool) -> Option<(usize, u32)> {
    let mut m = chain;
    for _ in 0..4096 {
        if m == 0 || !known(m) {
            return None;
        }
        // SAFETY: `known` vouches that `m` is an MDL the host or the driver's pool holds.
        let mdl: MDL = unsafe { read_obj(m) };
        let count = u64::from(mdl.ByteCount);
        if offset < count || (offset == count && mdl.Next.is_null()) {
            // CAST: below ByteCount, a u32.
            return Some((m, offset as u32));
        }
        offset -= count;
        m = mdl.Next as usize;
    }
    None
}

/// The NET_BUFFER fields a send reads.
#[derive(Debug, Clone, Copy)]
pub struct NbView {
    pub next: usize,
    pub mdl_chain: usize,
    pub current_mdl: usize,
    pub current_offset: u32,
    pub data_offset: u32,
    pub data_length: u32,
}

/// Reads a NET_BUFFER.
///
/// # Safety
///
/// `nb` is a NET_BUFFER the host allocated (for the driver or for an indication) and still holds.
pub unsafe fn nb_view(nb: usize) -> NbView {
    // SAFETY: guaranteed by the caller.
    let b: NET_BUFFER = unsafe { read_obj(nb) };
    // SAFETY: the data member is the active one for NET_BUFFERs in use.
    let s = unsafe { b.u1.s };
    NbView {
        next: s.Next as usize,
        mdl_chain: s.MdlChain as usize,
        current_mdl: s.CurrentMdl as usize,
        current_offset: s.CurrentMdlOffset,
        data_offset: s.DataOffset,
        // SAFETY: DataLength is the low half of the union either way.
        data_length: unsafe { s.u.DataLength },
    }
}

/// The NBL after `nbl` in its chain (0 at the end).
///
/// # Safety
///
/// `nbl` is an NBL the host allocated and still holds.
pub unsafe fn next_nbl(nbl: usize) -> usize {
    // SAFETY: guaranteed by the caller.
    let l: NET_BUFFER_LIST = unsafe { read_obj(nbl) };
    // SAFETY: the data member is the active one for NBLs in use.
    unsafe { l.u1.s.Next as usize }
}

/// The first NET_BUFFER of an NBL.
///
/// # Safety
///
/// `nbl` is an NBL the host allocated and still holds.
pub unsafe fn first_nb(nbl: usize) -> usize {
    // SAFETY: guaranteed by the caller.
    let l: NET_BUFFER_LIST = unsafe { read_obj(nbl) };
    // SAFETY: the data member is the active one for NBLs in use.
    unsafe { l.u1.s.FirstNetBuffer as usize }
}

/// Copies `len` bytes starting `offset` bytes into the MDL chain at `chain`. Every MDL must satisfy `known`
/// and describe memory that satisfies `readable` (start, length) through its MappedSystemVa.
pub fn gather(
    chain: usize,
    offset: u32,
    len: u32,
    known: &impl Fn(usize) -> bool,
    readable: &impl Fn(usize, usize) -> bool,
) -> Result<Vec<u8>, String> {
    gather_into(chain, offset, len, known, readable, Vec::new())
}

/// [`gather`] into `out` (emptied first; its capacity is reused).
pub fn gather_into(
    chain: usize,
    offset: u32,
    len: u32,
    known: &impl Fn(usize) -> bool,
    readable: &impl Fn(usize, usize) -> bool,
    mut out: Vec<u8>,
) -> Result<Vec<u8>, String> {
    out.clear();
    out.reserve(len as usize);
    let mut skip = u64::from(offset);
    let mut m = chain;
    let mut n = 0;
    while out.len() < len as usize {
        n += 1;
        if m == 0 {
            return Err(format!(
                "the MDL chain ends {} byte(s) short of DataOffset + DataLength",
                len as usize - out.len()
            ));
        }
        let (mdl, va, count) = checked_mdl(m, n, known, readable)?;
        // CAST: `skip` is below 2^32.
        let start = (skip as usize).min(count);
        skip -= start as u64;
        let take = (count - start).min(len as usize - out.len());
        if take > 0 {
            // SAFETY: `readable` vouches for va..va+count; start + take <= count.
            unsafe { super::memory::append_bytes(va + start, take, &mut out) };
        }
        m = mdl.Next as usize;
    }
    Ok(out)
}

/// The `n`th MDL `m` of a driver's chain, checked before its memory is touched: the chain is at most 4096 long,
/// `known` vouches for the MDL, it is mapped to system space, and `accessible` (start, length) vouches for
/// the memory it describes. Returns the MDL, its system address and its byte count.
fn checked_mdl(
    m: usize,
    n: usize,
    known: &impl Fn(usize) -> bool,
    accessible: &impl Fn(usize, usize) -> bool,
) -> Result<(MDL, usize, usize), String> {
    if n > 4096 || !known(m) {
        return Err(format!("MDL {m:#x} is not an MDL of the driver (NdisAllocateMdl, IoAllocateMdl or its pool)"));
    }
    // SAFETY: `known` vouches for the MDL structure.
    let mdl: MDL = unsafe { read_obj(m) };
    if mdl.MdlFlags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL) == 0 || mdl.MappedSystemVa.is_null() {
        return Err(format!("MDL {m:#x} is not mapped to system space (flags {:#x})", mdl.MdlFlags));
    }
    let va = mdl.MappedSystemVa as usize;
    let count = mdl.ByteCount as usize;
    if count > 0 && !accessible(va, count) {
        return Err(format!("MDL {m:#x} describes {va:#x}+{count}, which is not memory the driver owns"));
    }
    Ok((mdl, va, count))
}

/// Writes `bytes` starting `offset` bytes into the MDL chain at `chain`, as far as the chain reaches; returns
/// how many were written. Every MDL must satisfy `known` and describe memory that satisfies `writable`
/// (start, length) through its MappedSystemVa.
pub fn scatter(
    chain: usize,
    offset: u64,
    bytes: &[u8],
    known: &impl Fn(usize) -> bool,
    writable: &impl Fn(usize, usize) -> bool,
) -> Result<usize, String> {
    let mut done = 0;
    let mut skip = offset;
    let mut m = chain;
    let mut n = 0;
    while done < bytes.len() && m != 0 {
        n += 1;
        let (mdl, va, count) = checked_mdl(m, n, known, writable)?;
        // CAST: min with a usize.
        let start = skip.min(count as u64) as usize;
        skip -= start as u64;
        let take = (count - start).min(bytes.len() - done);
        let part = bytes.get(done..done + take).unwrap_or_default();
        // SAFETY: `writable` vouches for va..va+count; start + take <= count.
        unsafe { super::memory::write_bytes(va + start, part) };
        done += take;
        m = mdl.Next as usize;
    }
    Ok(done)
}

/// Links `nbls` into one chain in this order (the last one's Next is null) and sets each one's Status.
///
/// # Safety
///
/// Every address is an NBL the host allocated and still holds.
pub unsafe fn link_with_status(nbls: &[(usize, i32)]) {
    for (i, &(n, status)) in nbls.iter().enumerate() {
        let next = nbls.get(i + 1).map_or(0, |x| x.0);
        let set = |l: &mut NET_BUFFER_LIST| {
            l.u1.s.Next = next as PNET_BUFFER_LIST;
            l.u2.Status = status;
        };
        // SAFETY: guaranteed by the caller.
        unsafe { update::<NET_BUFFER_LIST>(n, set) };
    }
}

/// An NDIS_STATUS_INDICATION for `code` with `payload` as its status buffer.
pub fn status_indication(lent: &mut Lent, source: usize, code: NDIS_STATUS, payload: &[u8]) -> usize {
    let (Some(buf), Some(block)) =
        (HostBlock::new(payload.len().max(1), 16), HostBlock::new(size_of::<NDIS_STATUS_INDICATION>(), 16))
    else {
        return 0;
    };
    // SAFETY: inside the fresh buffer block of payload.len() bytes.
    unsafe { super::memory::write_bytes(buf.addr(), payload) };
    let set = |s: &mut NDIS_STATUS_INDICATION| {
        s.Header = NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_STATUS_INDICATION,
            Revision: NDIS_STATUS_INDICATION_REVISION_1,
            Size: NDIS_SIZEOF_STATUS_INDICATION_REVISION_1,
        };
        s.SourceHandle = source as NDIS_HANDLE;
        s.StatusCode = code;
        s.StatusBuffer = buf.void();
        // CAST: small payloads.
        s.StatusBufferSize = payload.len() as u32;
    };
    // SAFETY: a fresh zeroed block of the structure's size.
    unsafe { update::<NDIS_STATUS_INDICATION>(block.addr(), set) };
    lent.keep(buf);
    lent.keep(block)
}

/// Takes the sends of `batch` that are still in flight out of `in_flight` (they are the driver's again) and
/// links them, in `batch` order, into one chain with their completion statuses; returns them, head first
/// (empty: none was in flight, nothing linked).
pub fn take_completed<S: std::hash::BuildHasher>(
    in_flight: &mut std::collections::HashMap<usize, (usize, i32), S>,
    batch: &[usize],
) -> Vec<usize> {
    let mut done = Vec::with_capacity(batch.len());
    done.extend(batch.iter().filter_map(|n| in_flight.remove(n).map(|(_, status)| (*n, status))));
    // SAFETY: NBLs in flight are NBLs the host allocated for the driver (`driver_nbls`), held until freed,
    // and the driver may not touch them until they complete.
    unsafe { link_with_status(&done) };
    done.into_iter().map(|(n, _)| n).collect()
}

/// A 4-byte buffer holding `value` (a NET_DEVICE_POWER_STATE for NetEventSetPower).
pub fn u32_buffer(lent: &mut Lent, value: u32) -> usize {
    let Some(b) = HostBlock::new(4, 16) else { return 0 };
    // SAFETY: inside the fresh block.
    unsafe { write_obj(b.addr(), value) };
    lent.keep(b)
}

/// Whether `nb` is among the first `limit` NET_BUFFERs of `nbl`'s chain.
///
/// # Safety
///
/// `nbl` is an NBL whose NET_BUFFER chain is host-allocated memory (built or handed out by the host).
pub unsafe fn nbl_has_nb(nbl: usize, nb: usize, limit: usize) -> bool {
    // SAFETY: guaranteed by the caller.
    let mut b = unsafe { first_nb(nbl) };
    for _ in 0..limit {
        if b == 0 {
            return false;
        }
        if b == nb {
            return true;
        }
        // SAFETY: a NET_BUFFER of the same chain.
        b = unsafe { nb_view(b) }.next;
    }
    false
}

/// Copies a query's answer into the driver's InformationBuffer (the model checked it is long enough).
pub(crate) fn write_query_answer(buffer: usize, bytes: &[u8]) {
    // SAFETY: the driver's buffer of InformationBufferLength bytes, at least `bytes.len()` long.
    unsafe { super::memory::write_bytes(buffer, bytes) };
}

/// Completes a pended query's data as the adapter does when it completes the request successfully: the answer
/// into InformationBuffer and its length into BytesWritten.
pub(crate) fn finish_query(request: usize, buffer: usize, bytes: &[u8]) {
    write_query_answer(buffer, bytes);
    let at = request
        + std::mem::offset_of!(NDIS_OID_REQUEST, DATA)
        + std::mem::offset_of!(NDIS_OID_REQUEST_DATA_QUERY_INFORMATION, BytesWritten);
    // Bounded by InformationBufferLength, a ULONG.
    let written = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    // SAFETY: the driver's pended request, which it may not free or reuse before it completes.
    unsafe { write_obj(at, written) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    /// The bytes of `len` at `addr` with the fields at `fields` (offset, size) zeroed: all zero when the block
    /// holds nothing but those fields.
    fn rest(addr: usize, len: usize, fields: &[(usize, usize)]) -> Vec<u8> {
        // SAFETY: a block of the chain under test, `len` bytes long.
        let mut b = unsafe { super::super::memory::read_bytes(addr, len) };
        for &(at, n) in fields {
            b[at..at + n].fill(0);
        }
        b
    }

    /// Checks that `nbls` is the chain a miniport indicates for `frames` in `shape`, every block as fresh:
    /// nothing set but the fields NDIS sets, the headroom zero, the frame's bytes after it.
    fn assert_fresh(nbls: &[usize], frames: &[Vec<u8>], shape: ReceiveShape) {
        let per_nbl = shape.nbs_per_nbl.max(1);
        assert_eq!(nbls.len(), frames.len().div_ceil(per_nbl));
        let p = size_of::<usize>();
        for (i, (&nbl, group)) in nbls.iter().zip(frames.chunks(per_nbl)).enumerate() {
            // SAFETY: NBLs of the chain under test.
            let (next, first) = unsafe { (next_nbl(nbl), first_nb(nbl)) };
            assert_eq!(next, nbls.get(i + 1).copied().unwrap_or(0), "NBL {i}'s Next");
            let fields =
                [(offset_of!(NET_BUFFER_LIST, u1.s.Next), p), (offset_of!(NET_BUFFER_LIST, u1.s.FirstNetBuffer), p)];
            assert!(rest(nbl, NBL_BLOCK, &fields).iter().all(|&b| b == 0), "NBL {i} holds something else");
            let mut nb = first;
            for (j, frame) in group.iter().enumerate() {
                // SAFETY: a NET_BUFFER of the chain.
                let v = unsafe { nb_view(nb) };
                assert_eq!((v.mdl_chain, v.current_mdl), (v.mdl_chain, v.mdl_chain), "frame {i}.{j}");
                assert_eq!((v.data_offset, v.current_offset), (shape.data_offset as u32, shape.data_offset as u32));
                assert_eq!(v.data_length as usize, frame.len());
                let fields = [
                    (offset_of!(NET_BUFFER, u1.s.Next), p),
                    (offset_of!(NET_BUFFER, u1.s.CurrentMdl), p),
                    (offset_of!(NET_BUFFER, u1.s.CurrentMdlOffset), 4),
                    (offset_of!(NET_BUFFER, u1.s.u), 4),
                    (offset_of!(NET_BUFFER, u1.s.MdlChain), p),
                    (offset_of!(NET_BUFFER, u1.s.DataOffset), 4),
                ];
                assert!(rest(nb, NB_BLOCK, &fields).iter().all(|&b| b == 0), "NET_BUFFER {i}.{j} holds something else");
                // SAFETY: the NET_BUFFER's MDL.
                let m: MDL = unsafe { read_obj(v.mdl_chain) };
                assert!(m.Next.is_null());
                assert_eq!(m.ByteCount as usize, shape.data_offset + frame.len());
                let fields = [
                    (offset_of!(MDL, Size), 2),
                    (offset_of!(MDL, MdlFlags), 2),
                    (offset_of!(MDL, MappedSystemVa), p),
                    (offset_of!(MDL, StartVa), p),
                    (offset_of!(MDL, ByteCount), 4),
                    (offset_of!(MDL, ByteOffset), 4),
                ];
                assert!(
                    rest(v.mdl_chain, MDL_BLOCK, &fields).iter().all(|&b| b == 0),
                    "MDL {i}.{j} holds something else"
                );
                // SAFETY: the MDL's data, ByteCount bytes.
                let data = unsafe { super::super::memory::read_bytes(m.MappedSystemVa as usize, m.ByteCount as usize) };
                assert!(data[..shape.data_offset].iter().all(|&b| b == 0), "headroom {i}.{j}");
                assert_eq!(&data[shape.data_offset..], &frame[..]);
                nb = v.next;
            }
            assert_eq!(nb, 0, "NBL {i} has more NET_BUFFERs than frames");
        }
    }

    /// Writes over every byte of the chain's NBL, NET_BUFFER and MDL blocks except its links, and over the
    /// headroom, as a driver that scribbles on what it was lent.
    fn scribble(nbls: &[usize]) {
        for &nbl in nbls {
            // SAFETY: blocks of the chain under test, of the sizes written.
            unsafe {
                let first = first_nb(nbl);
                let next = next_nbl(nbl);
                super::super::memory::fill(nbl, NBL_BLOCK, 0xA5);
                write_obj(nbl + offset_of!(NET_BUFFER_LIST, u1.s.Next), next);
                write_obj(nbl + offset_of!(NET_BUFFER_LIST, u1.s.FirstNetBuffer), first);
                let mut nb = first;
                while nb != 0 {
                    let v = nb_view(nb);
                    let m: MDL = read_obj(v.mdl_chain);
                    super::super::memory::fill(m.MappedSystemVa as usize, v.data_offset as usize, 0x5A);
                    super::super::memory::fill(v.mdl_chain, MDL_BLOCK, 0xA5);
                    super::super::memory::fill(nb, NB_BLOCK, 0xA5);
                    nb = v.next;
                }
            }
        }
    }

    fn frames(n: usize, len: usize, seed: u8) -> Vec<Vec<u8>> {
        (0..n).map(|i| (0..len).map(|k| seed.wrapping_add((i * 7 + k) as u8)).collect()).collect()
    }

    #[test]
    fn the_next_chain_of_the_same_layout_is_written_into_the_same_blocks_as_fresh_ones() {
        let mut r = Recycled::new();
        let shape = ReceiveShape { nbs_per_nbl: 2, mdls_per_nb: 1, data_offset: 14 };
        let a = frames(5, 60, 1);
        let mut lent = Lent::default();
        let first = build_chain(&mut r, &mut lent, &a, shape);
        assert_fresh(&first, &a, shape);
        assert!(lent.layout.is_some(), "a one-MDL chain keeps its layout");
        scribble(&first);
        lent.recycle_into(&mut r);
        // Other bytes, a length of the same block size: written in place.
        let b = frames(5, 61, 9);
        let mut lent = Lent::default();
        let again = build_chain(&mut r, &mut lent, &b, shape);
        assert_eq!(again, first, "the same NBLs");
        assert_fresh(&again, &b, shape);
        lent.recycle_into(&mut r);
    }

    #[test]
    fn a_chain_of_another_layout_takes_the_kept_blocks_one_by_one_and_is_as_fresh() {
        let shape = ReceiveShape { nbs_per_nbl: 2, mdls_per_nb: 1, data_offset: 14 };
        for (count, len, other) in [(3, 60, shape), (5, 300, shape), (5, 60, ReceiveShape { nbs_per_nbl: 1, ..shape })]
        {
            let mut r = Recycled::new();
            let a = frames(5, 60, 3);
            let mut lent = Lent::default();
            let first = build_chain(&mut r, &mut lent, &a, shape);
            scribble(&first);
            lent.recycle_into(&mut r);
            let b = frames(count, len, 4);
            let mut lent = Lent::default();
            let next = build_chain(&mut r, &mut lent, &b, other);
            assert_fresh(&next, &b, other);
            // The first NBL block is the kept chain's first, taken back in order.
            assert_eq!(next.first(), first.first(), "{count} frames of {len} bytes");
            assert!(r.prepared.is_none(), "the kept chain was given up");
            lent.recycle_into(&mut r);
        }
    }

    #[test]
    fn a_chain_of_several_mdls_per_frame_keeps_no_layout_and_its_blocks_come_back_one_by_one() {
        let mut r = Recycled::new();
        let shape = ReceiveShape { nbs_per_nbl: 1, mdls_per_nb: 3, data_offset: 0 };
        let a = frames(2, 90, 5);
        let mut lent = Lent::default();
        let first = build_chain(&mut r, &mut lent, &a, shape);
        assert!(lent.layout.is_none());
        lent.recycle_into(&mut r);
        assert!(r.prepared.is_none() && !r.last.is_empty());
        let mut lent = Lent::default();
        let next = build_chain(&mut r, &mut lent, &a, shape);
        assert_eq!(next.first(), first.first());
    }
}

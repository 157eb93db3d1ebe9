//! Reading NET_BUFFER_LIST chains: every NET_BUFFER of every NBL, its bytes as the fragments of its MDL
//! chain from the current offset. Nothing here keeps a reference past the closure it hands the bytes to,
//! so no borrow outlives the NBLs (which go back to NDIS right after).

use core::marker::PhantomData;
use ndis_sys::*;

/// One frame: the bytes of one NET_BUFFER.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    nb: PNET_BUFFER,
    /// Bytes of packet data (`NET_BUFFER.DataLength`).
    pub len: usize,
    /// What the frame's NBL says about it.
    pub meta: crate::meta::NblMeta,
    _nbl: PhantomData<&'a NET_BUFFER_LIST>,
}

impl<'a> Frame<'a> {
    /// The frame's bytes, fragment by fragment. Stops early (yielding fewer than `len` bytes) if an MDL
    /// cannot be mapped or the chain is shorter than `DataLength` says.
    pub fn fragments(&self) -> Fragments<'a> {
        // SAFETY: `nb` is a NET_BUFFER of a chain NDIS lent for this callback (type invariant of Frame's
        // constructor, `for_each_frame`).
        let (mdl, offset) = unsafe { ((*self.nb).u1.s.CurrentMdl, (*self.nb).u1.s.CurrentMdlOffset) };
        Fragments { mdl, offset: offset as usize, remaining: self.len, _nbl: PhantomData }
    }
}

/// The fragments of one frame.
#[derive(Debug, Clone)]
pub struct Fragments<'a> {
    mdl: PMDL,
    offset: usize,
    remaining: usize,
    _nbl: PhantomData<&'a NET_BUFFER_LIST>,
}

/// The system address of an MDL's buffer (`MmGetSystemAddressForMdlSafe`, a header macro): the mapping the
/// MDL already has, or a new non-executable one; null if it cannot be mapped.
///
/// # Safety
///
/// `mdl` is a valid MDL describing locked or non-paged memory.
pub unsafe fn system_address(mdl: PMDL) -> *const u8 {
    // SAFETY: guaranteed by the caller.
    let (flags, mapped) = unsafe { ((*mdl).MdlFlags, (*mdl).MappedSystemVa) };
    if flags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL) != 0 {
        return mapped.cast();
    }
    // SAFETY: as above; the mapping routine may be called at IRQL <= DISPATCH_LEVEL and returns null on
    // failure instead of bug-checking (BugCheckOnFailure = FALSE).
    unsafe {
        MmMapLockedPagesSpecifyCache(
            mdl,
            KernelMode,
            MmCached,
            core::ptr::null_mut(),
            0,
            // CAST: a small positive priority value ORed with a flag bit.
            (NormalPagePriority as u32) | MdlMappingNoExecute,
        )
    }
    .cast()
}

impl<'a> Iterator for Fragments<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        while self.remaining > 0 && !self.mdl.is_null() {
            let mdl = self.mdl;
            // SAFETY: MDLs of a chain NDIS lent for this callback.
            let (byte_count, next) = unsafe { ((*mdl).ByteCount as usize, (*mdl).Next) };
            self.mdl = next;
            let offset = core::mem::take(&mut self.offset);
            if offset >= byte_count {
                // The current offset lies past this MDL: it starts in a later one.
                self.offset = offset - byte_count;
                continue;
            }
            // SAFETY: as above.
            let base = unsafe { system_address(mdl) };
            if base.is_null() {
                self.remaining = 0;
                return None;
            }
            let take = (byte_count - offset).min(self.remaining);
            self.remaining -= take;
            // SAFETY: the MDL describes `byte_count` mapped bytes at `base`; `offset + take <= byte_count`;
            // the NBL (and so the MDL) stays with this driver for `'a`, the callback's duration.
            return Some(unsafe { core::slice::from_raw_parts(base.add(offset), take) });
        }
        None
    }
}

/// Calls `f` for every NET_BUFFER of every NBL of the chain. `uro` says whether the NBLs carry the NDIS 6.89
/// UDP coalescing slot (the driver registered 6.89).
///
/// # Safety
///
/// `nbls` is null or a chain NDIS indicated to this driver, which stays with the driver while this runs.
pub unsafe fn for_each_frame(nbls: PNET_BUFFER_LIST, uro: bool, mut f: impl FnMut(Frame<'_>)) {
    let mut nbl = nbls;
    while !nbl.is_null() {
        // SAFETY: guaranteed by the caller for every NBL of the chain. The info slots read lie below the
        // NDIS 6.30 MaxNetBufferListInfo (24), present in every NBL NDIS indicates.
        let (mut nb, meta) = unsafe {
            let info = &(*nbl).NetBufferListInfo;
            let slot = |i: NDIS_NET_BUFFER_LIST_INFO| info.get(i as usize).map_or(0, |p| *p as usize);
            (
                (*nbl).u1.s.FirstNetBuffer,
                crate::meta::NblMeta {
                    nbl_flags: (*nbl).NblFlags,
                    checksum: slot(TcpIpChecksumNetBufferListInfo),
                    rsc: slot(TcpRecvSegCoalesceInfo),
                    uro: if uro { slot(UdpRecvSegCoalesceOffloadInfo) } else { 0 },
                },
            )
        };
        while !nb.is_null() {
            // SAFETY: NET_BUFFERs of an NBL of the chain.
            let len = unsafe { (*nb).u1.s.u.DataLength } as usize;
            f(Frame { nb, len, meta, _nbl: PhantomData });
            // SAFETY: as above.
            nb = unsafe { (*nb).u1.s.Next };
        }
        // SAFETY: as above.
        nbl = unsafe { (*nbl).u1.s.Next };
    }
}

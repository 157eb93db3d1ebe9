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
    /// What the frame's NBL says about it, decoded (once per NBL).
    pub meta: crate::meta::HeaderMeta,
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

impl<'a> Frame<'a> {
    /// All of the frame's bytes when its current MDL holds them from the current offset on (the usual
    /// frame); `None` when they span MDLs, or the MDL cannot be mapped ([`Frame::fragments`] then walks
    /// them, and reports what it could not reach).
    #[inline]
    pub fn contiguous(&self) -> Option<&'a [u8]> {
        // SAFETY: as in `fragments`.
        let (mdl, offset) = unsafe { ((*self.nb).u1.s.CurrentMdl, (*self.nb).u1.s.CurrentMdlOffset as usize) };
        if mdl.is_null() {
            return None;
        }
        // SAFETY: an MDL of a chain NDIS lent for this callback.
        let byte_count = unsafe { (*mdl).ByteCount as usize };
        if offset > byte_count || byte_count - offset < self.len {
            return None;
        }
        // SAFETY: as above.
        let base = unsafe { system_address(mdl) };
        if base.is_null() {
            return None;
        }
        // SAFETY: the MDL describes `byte_count` mapped bytes at `base` and `offset + len <= byte_count`; the
        // NBL (and so the MDL) stays with this driver for `'a`, the callback's duration.
        Some(unsafe { core::slice::from_raw_parts(base.add(offset), self.len) })
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

/// The frames of an indicated chain, NBL by NBL, NET_BUFFER by NET_BUFFER. Cloning it gives a cursor that
/// walks the same frames again from the same place (the receive path offers a run of frames to each handle
/// in turn).
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    /// The NBL whose NET_BUFFERs are being walked (null: done).
    nbl: PNET_BUFFER_LIST,
    /// The next NET_BUFFER of `nbl` (null: move on to the next NBL).
    nb: PNET_BUFFER,
    meta: crate::meta::HeaderMeta,
    uro: bool,
    _nbl: PhantomData<&'a NET_BUFFER_LIST>,
}

impl Frames<'_> {
    /// Every NET_BUFFER of every NBL of the chain. `uro` says whether the NBLs carry the NDIS 6.89 UDP
    /// coalescing slot (the driver registered 6.89).
    ///
    /// # Safety
    ///
    /// `nbls` is null or a chain NDIS indicated to this driver, which stays with the driver while the
    /// iterator (or a clone, or a frame it yielded) lives.
    pub unsafe fn new(nbls: PNET_BUFFER_LIST, uro: bool) -> Self {
        let mut f = Frames { nbl: nbls, nb: core::ptr::null_mut(), meta: Default::default(), uro, _nbl: PhantomData };
        f.enter_nbl();
        f
    }

    /// Reads the current NBL's first NET_BUFFER and what the NBL says about its frames.
    fn enter_nbl(&mut self) {
        if self.nbl.is_null() {
            return;
        }
        let nbl = self.nbl;
        // SAFETY: an NBL of the chain (constructor's contract). The info slots read lie below the NDIS 6.30
        // MaxNetBufferListInfo (24), present in every NBL NDIS indicates.
        unsafe {
            let info = &(*nbl).NetBufferListInfo;
            let slot = |i: NDIS_NET_BUFFER_LIST_INFO| info.get(i as usize).map_or(0, |p| *p as usize);
            self.nb = (*nbl).u1.s.FirstNetBuffer;
            self.meta = crate::meta::decode(&crate::meta::NblMeta {
                nbl_flags: (*nbl).NblFlags,
                checksum: slot(TcpIpChecksumNetBufferListInfo),
                rsc: slot(TcpRecvSegCoalesceInfo),
                uro: if self.uro { slot(UdpRecvSegCoalesceOffloadInfo) } else { 0 },
            });
        }
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Frame<'a>;
    fn next(&mut self) -> Option<Frame<'a>> {
        while !self.nbl.is_null() {
            if !self.nb.is_null() {
                let nb = self.nb;
                // SAFETY: a NET_BUFFER of an NBL of the chain (constructor's contract).
                let (len, next) = unsafe { ((*nb).u1.s.u.DataLength as usize, (*nb).u1.s.Next) };
                self.nb = next;
                return Some(Frame { nb, len, meta: self.meta, _nbl: PhantomData });
            }
            // SAFETY: as above.
            self.nbl = unsafe { (*self.nbl).u1.s.Next };
            self.enter_nbl();
        }
        None
    }
}

/// A frame's bytes for a queue or a ring: its one fragment (the usual frame), or its MDL chain walked again.
#[derive(Debug)]
pub enum Parts<'a> {
    One(Option<&'a [u8]>),
    Chain(Fragments<'a>),
}

impl<'a> Parts<'a> {
    /// The bytes, when they are one slice.
    #[inline]
    pub fn single(&self) -> Option<&'a [u8]> {
        match self {
            Parts::One(p) => *p,
            Parts::Chain(_) => None,
        }
    }
}

impl<'a> Iterator for Parts<'a> {
    type Item = &'a [u8];
    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        match self {
            Parts::One(p) => p.take(),
            Parts::Chain(f) => f.next(),
        }
    }
}

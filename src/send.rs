//! The send path: one write = one batch of frames = one NBL chain handed to NdisSendNetBufferLists; the
//! write completes when NDIS has completed every NBL of it.
//!
//! The frames are copied once into a pool buffer owned by the batch (the caller's pages are not held across
//! the send); each frame gets an MDL (NdisAllocateMdl) and an NBL with one NET_BUFFER from the binding's pool.
//! `NET_BUFFER_LIST.ProtocolReserved[0]` points back to the batch.
#![allow(unsafe_code)]

use crate::binding::Binding;
use crate::error::Error;
use crate::kernel::alloc::try_box;
use crate::kernel::irp::PendingIrp;
use crate::tx;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicU32, Ordering};
use ndis_sys::*;

/// One write in flight.
#[derive(Debug)]
struct Batch {
    irp: Option<PendingIrp>,
    /// NBLs not yet completed.
    remaining: AtomicU32,
    /// NBLs NDIS completed with a failure status.
    failed: AtomicU32,
    /// Bytes the write carried (reported as the write's Information).
    bytes: usize,
    /// The frames, back to back.
    data: Vec<u8>,
}

/// Frees what one NBL of a batch holds (its MDL, the NBL itself).
///
/// # Safety
///
/// `nbl` was allocated by `send` and is no longer with NDIS.
unsafe fn free_nbl(nbl: PNET_BUFFER_LIST) {
    // SAFETY: guaranteed by the caller; `send` gave every NBL exactly one NET_BUFFER with one MDL.
    unsafe {
        let nb = (*nbl).u1.s.FirstNetBuffer;
        let mdl = if nb.is_null() { ptr::null_mut() } else { (*nb).u1.s.MdlChain };
        NdisFreeNetBufferList(nbl);
        if !mdl.is_null() {
            NdisFreeMdl(mdl);
        }
    }
}

/// Sends a validated batch on `b` and pends `irp` until NDIS completes it.
///
/// On an error nothing is in flight, nothing leaks, and the caller completes the IRP itself.
pub fn send(
    b: &Binding,
    buf: &[u8],
    limits: &tx::Limits,
    irp: crate::kernel::irp::Irp,
) -> core::result::Result<(), (crate::kernel::irp::Irp, Error)> {
    let (count, bytes) = match tx::validate(buf, limits) {
        Ok(v) => v,
        Err(r) => return Err((irp, r.error)),
    };
    // CAST: MAX_BATCH bounds the count.
    let count32 = count as u32;
    let mut data = Vec::new();
    if data.try_reserve_exact(bytes).is_err() {
        return Err((irp, Error::INSUFFICIENT_RESOURCES));
    }
    let mut spans = Vec::new();
    if spans.try_reserve_exact(count).is_err() {
        return Err((irp, Error::INSUFFICIENT_RESOURCES));
    }
    for (off, len) in tx::frames(buf) {
        spans.push((data.len(), len));
        data.extend_from_slice(buf.get(off..off + len).unwrap_or_default());
    }
    let batch = match try_box(Batch {
        irp: None,
        remaining: AtomicU32::new(count32),
        failed: AtomicU32::new(0),
        bytes,
        data,
    }) {
        Ok(b) => b,
        Err(e) => return Err((irp, e)),
    };
    // From here the batch is reached through raw pointers only (the NBLs carry one), until the completion of
    // its last NBL turns it back into a Box.
    let batch = Box::into_raw(batch);
    // Build the chain. On failure, free what was built and the batch.
    let mut head: PNET_BUFFER_LIST = ptr::null_mut();
    let mut tail: PNET_BUFFER_LIST = ptr::null_mut();
    let fail = |head: PNET_BUFFER_LIST, irp, e| {
        let mut n = head;
        while !n.is_null() {
            // SAFETY: an NBL of the chain being built, never handed to NDIS.
            let next = unsafe { (*n).u1.s.Next };
            // SAFETY: as above.
            unsafe { free_nbl(n) };
            n = next;
        }
        // SAFETY: `batch` came from Box::into_raw above; no NBL referring to it reached NDIS.
        drop(unsafe { Box::from_raw(batch) });
        Err((irp, e))
    };
    // SAFETY: the batch is live (owned through `batch`); its buffer does not move while the batch exists.
    let base = unsafe { (*batch).data.as_ptr() };
    for &(off, len) in &spans {
        // SAFETY: `off..off + len` lies inside the batch's buffer, which lives until the last completion.
        // CAST: frames are at most MTU + 18 bytes.
        let mdl = unsafe { NdisAllocateMdl(b.handle(), base.add(off).cast_mut().cast(), len as u32) };
        if mdl.is_null() {
            return fail(head, irp, Error::INSUFFICIENT_RESOURCES);
        }
        // SAFETY: the binding's pool; one NET_BUFFER describing the whole MDL.
        let nbl = unsafe { NdisAllocateNetBufferAndNetBufferList(b.pool(), 0, 0, mdl, 0, len) };
        if nbl.is_null() {
            // SAFETY: the MDL was just allocated and is not attached to anything.
            unsafe { NdisFreeMdl(mdl) };
            return fail(head, irp, Error::INSUFFICIENT_RESOURCES);
        }
        // SAFETY: a fresh NBL this driver owns until it sends it; `tail` is the previous one of the chain.
        unsafe {
            (*nbl).ProtocolReserved[0] = batch.cast::<c_void>();
            (*nbl).u1.s.Next = ptr::null_mut();
            if tail.is_null() {
                head = nbl;
            } else {
                (*tail).u1.s.Next = nbl;
            }
        }
        tail = nbl;
    }
    // Reserve the sends against pause; refuse if the data path is off.
    if let Err(e) = b.sends_begin(count32) {
        return fail(head, irp, e);
    }
    // SAFETY: nothing else reaches the batch before the send below.
    unsafe { (*batch).irp = Some(irp.mark_pending()) };
    // SAFETY: a complete chain of NBLs from the binding's pool; the binding is Running (checked under its
    // lock by sends_begin); completion arrives in ProtocolSendNetBufferListsComplete, which may free the
    // batch during this very call, so it is not touched afterwards.
    unsafe { NdisSendNetBufferLists(b.handle(), head, NDIS_DEFAULT_PORT_NUMBER, 0) };
    Ok(())
}

/// ProtocolSendNetBufferListsComplete: frees each NBL and completes each write whose last NBL came back.
///
/// # Safety
///
/// `nbls` is a chain of NBLs this driver sent on `b`.
pub unsafe fn complete(b: &Binding, nbls: PNET_BUFFER_LIST) {
    let mut n = nbls;
    let mut done = 0u32;
    while !n.is_null() {
        // SAFETY: NBLs this driver sent, back from NDIS.
        let (next, batch, status) =
            unsafe { ((*n).u1.s.Next, (*n).ProtocolReserved[0].cast::<Batch>(), (*n).u2.Status) };
        // SAFETY: as above; freed once.
        unsafe { free_nbl(n) };
        done += 1;
        let c = &b.counters;
        crate::binding::Counters::add(if status == NDIS_STATUS_SUCCESS { &c.sent } else { &c.send_failed }, 1);
        if !batch.is_null() {
            // SAFETY: the batch outlives its NBLs; only the completion of its last NBL frees it.
            let bref = unsafe { &*batch };
            if status != NDIS_STATUS_SUCCESS {
                bref.failed.fetch_add(1, Ordering::AcqRel);
            }
            if bref.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                // SAFETY: the last NBL of the batch: nothing else refers to it.
                let mut owned = unsafe { Box::from_raw(batch) };
                let status = if owned.failed.load(Ordering::Acquire) == 0 {
                    STATUS_SUCCESS
                } else {
                    Error::UNSUCCESSFUL.to_status()
                };
                let bytes = if status == STATUS_SUCCESS { owned.bytes } else { 0 };
                if let Some(irp) = owned.irp.take() {
                    irp.complete(status, bytes);
                }
            }
        }
        n = next;
    }
    b.sends_end(done);
}

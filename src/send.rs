//! The send path: one write = one batch of frames = one NBL chain handed to NdisSendNetBufferLists; the
//! write completes when NDIS has completed every NBL of it.
//!
//! The caller's buffer is read exactly once: copied whole into a pool buffer owned by the batch, which is then
//! validated and sent from (another thread of the caller can change its pages at any time, so nothing is
//! read from them twice, and they are not held across the send); each frame gets an MDL (NdisAllocateMdl)
//! over its bytes in that copy and an NBL with one NET_BUFFER from the binding's pool.
//! `NET_BUFFER_LIST.ProtocolReserved[0]` points back to the batch.
#![allow(unsafe_code)]

use crate::binding::Binding;
use crate::error::Error;
use crate::kernel::alloc::try_box;
use crate::kernel::irp::{Irp, PendingIrp};
use crate::kernel::sync::{AtDispatch, SpinLock};
use crate::tx;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicU32, Ordering};
use ndis_sys::*;
use rawlink_abi::SendReply;

/// One write in flight.
#[derive(Debug)]
struct Batch {
    irp: Option<PendingIrp>,
    /// Complete with a [`SendReply`] (IOCTL_RAWLINK_SEND) rather than a byte count (WriteFile).
    report: bool,
    /// Frames sent.
    count: u32,
    /// The frame validation refused (IOCTL_RAWLINK_SEND sends the frames before it).
    refusal: Option<tx::Refusal>,
    /// The lowest frame index NDIS failed, with its status.
    first_failed: SpinLock<(u32, NDIS_STATUS)>,
    /// NBLs not yet completed.
    remaining: AtomicU32,
    /// NBLs NDIS completed with a failure status.
    failed: AtomicU32,
    /// Bytes the write carried (reported as the write's Information).
    bytes: usize,
    /// The driver's copy of the caller's buffer (frame records); the MDLs describe frames inside it.
    data: Vec<u8>,
    /// The copy's share of the pool budget, given back when the batch is freed.
    _charge: crate::budget::Charge,
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

/// How a send request reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// WriteFile: all frames valid or none sent; the byte count on success.
    Write,
    /// IOCTL_RAWLINK_SEND: the valid prefix is sent; a [`SendReply`] says what happened.
    Report,
}

/// Sends a validated batch on `b` and pends `irp` until NDIS completes it (or, for a report with nothing
/// valid to send, completes it at once with its reply).
///
/// On an error nothing is in flight, nothing leaks, and the caller completes the IRP itself.
pub fn send(
    b: &Binding,
    buf: &[u8],
    limits: &tx::Limits,
    irp: Irp,
    mode: Mode,
) -> core::result::Result<(), (Irp, Error)> {
    // No batch of MAX_BATCH frames of the largest size is longer; refusing longer buffers first keeps a
    // write from making the driver copy (and allocate) more than any valid batch holds.
    if buf.len() > tx::max_batch_len(limits.mtu) {
        return Err((irp, Error::INVALID_PARAMETER));
    }
    // The copy and the per-frame spans count against the pool budget until the batch completes.
    // (A record holds a header and at least a 14-byte frame.)
    let records = buf.len() / (rawlink_abi::FrameHeader::LEN + crate::filter::ETHERNET_HEADER);
    let cost = buf.len() + records * core::mem::size_of::<(usize, usize)>();
    let charge = match crate::budget::POOL.charge(cost) {
        Ok(c) => c,
        Err(e) => return Err((irp, e)),
    };
    let mut data = Vec::new();
    if data.try_reserve_exact(buf.len()).is_err() {
        return Err((irp, Error::INSUFFICIENT_RESOURCES));
    }
    // The one read of the caller's bytes; from here on only the copy is used.
    data.extend_from_slice(buf);
    let (count, bytes, refusal) = match mode {
        Mode::Write => match tx::validate(&data, limits) {
            Ok((count, bytes)) => (count, bytes, None),
            Err(r) => return Err((irp, r.error)),
        },
        Mode::Report => {
            let p = tx::validate_prefix(&data, limits);
            match (p.count, p.refusal) {
                (0, None) => return Err((irp, Error::INVALID_PARAMETER)),
                (0, Some(r)) => {
                    // CAST: a frame index below MAX_BATCH.
                    let reply =
                        SendReply { frames_sent: 0, first_failure: r.frame as u32, status: r.error.to_status() };
                    // Marked pending first, so the dispatch routine's STATUS_PENDING is right.
                    let _ = irp.mark_pending().into_irp().complete_with_reply(&reply.to_bytes());
                    return Ok(());
                }
                (count, refusal) => (count, p.bytes, refusal),
            }
        }
    };
    // CAST: MAX_BATCH bounds the count.
    let count32 = count as u32;
    let mut spans = Vec::new();
    if spans.try_reserve_exact(count).is_err() {
        return Err((irp, Error::INSUFFICIENT_RESOURCES));
    }
    // The validated frames of the copy (validation walked the same bytes, so every span lies inside it).
    spans.extend(tx::frames(&data).take(count));
    let batch = match try_box(Batch {
        irp: None,
        report: mode == Mode::Report,
        count: count32,
        refusal,
        first_failed: SpinLock::new((SendReply::NONE, NDIS_STATUS_SUCCESS)),
        remaining: AtomicU32::new(count32),
        failed: AtomicU32::new(0),
        bytes,
        data,
        _charge: charge,
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
    for (index, &(off, len)) in spans.iter().enumerate() {
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
            // The frame's index in the batch, for the report of the first failure.
            (*nbl).ProtocolReserved[1] = index as *mut c_void;
            (*nbl).u1.s.Next = ptr::null_mut();
            if tail.is_null() {
                head = nbl;
            } else {
                (*tail).u1.s.Next = nbl;
            }
        }
        tail = nbl;
    }
    // The send gate makes "still Running" and the hand-over to NDIS one step: a pause cannot begin between
    // them (its handler takes the gate too), so no send is ever issued after NDIS asked the binding to
    // pause. NDIS's callbacks from inside the send (completion, loopback receive) do not take the gate.
    let gate = b.send_gate.lock();
    // Reserve the sends against pause; refuse if the data path is off.
    if let Err(e) = b.sends_begin(count32) {
        drop(gate);
        return fail(head, irp, e);
    }
    // SAFETY: nothing else reaches the batch before the send below.
    unsafe { (*batch).irp = Some(irp.mark_pending()) };
    // The gate raised the IRQL to DISPATCH_LEVEL, which the flag says. ProtocolSendNetBufferListsComplete
    // may free the batch during this very call, so it is not touched afterwards.
    // SAFETY: a complete chain of NBLs from the binding's pool, on a binding that is Running (sends_begin).
    unsafe { NdisSendNetBufferLists(b.handle(), head, NDIS_DEFAULT_PORT_NUMBER, NDIS_SEND_FLAGS_DISPATCH_LEVEL) };
    drop(gate);
    Ok(())
}

/// ProtocolSendNetBufferListsComplete: frees each NBL and completes each write whose last NBL came back.
///
/// # Safety
///
/// `nbls` is a chain of NBLs this driver sent on `b`.
/// `at` is NDIS's word that the call runs at DISPATCH_LEVEL (no IRQL read then).
pub unsafe fn complete(b: &Binding, nbls: PNET_BUFFER_LIST, at: Option<AtDispatch<'_>>) {
    let mut n = nbls;
    let mut done = 0u32;
    while !n.is_null() {
        // SAFETY: NBLs this driver sent, back from NDIS.
        let (next, batch, index, status) = unsafe {
            (
                (*n).u1.s.Next,
                (*n).ProtocolReserved[0].cast::<Batch>(),
                (*n).ProtocolReserved[1] as usize,
                (*n).u2.Status,
            )
        };
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
                let mut first = match at {
                    Some(at) => bref.first_failed.lock_dpc(at),
                    None => bref.first_failed.lock(),
                };
                // CAST: a frame index below MAX_BATCH.
                if (index as u32) < first.0 {
                    *first = (index as u32, status);
                }
            }
            if bref.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                // SAFETY: the last NBL of the batch: nothing else refers to it.
                let mut owned = unsafe { Box::from_raw(batch) };
                let reply = owned.report.then(|| owned.reply());
                let status = if owned.failed.load(Ordering::Acquire) == 0 {
                    STATUS_SUCCESS
                } else {
                    Error::UNSUCCESSFUL.to_status()
                };
                let bytes = if status == STATUS_SUCCESS { owned.bytes } else { 0 };
                match (owned.irp.take(), reply) {
                    (Some(irp), Some(reply)) => {
                        let _ = irp.into_irp().complete_with_reply(&reply.to_bytes());
                    }
                    (Some(irp), None) => irp.complete(status, bytes),
                    (None, _) => {}
                }
            }
        }
        n = next;
    }
    b.sends_end(done, at);
}

impl Batch {
    /// The reply of a report: frames NDIS sent, and the earliest failure, NDIS's or validation's.
    fn reply(&self) -> SendReply {
        let failed = self.failed.load(Ordering::Acquire);
        let (nbl_index, nbl_status) = *self.first_failed.lock();
        // CAST: a frame index below MAX_BATCH.
        let refused = self.refusal.map(|r| (r.frame as u32, r.error.to_status()));
        let (first_failure, status) = match refused {
            Some((i, st)) if i < nbl_index => (i, st),
            _ if nbl_index != SendReply::NONE => (nbl_index, nbl_status),
            _ => (SendReply::NONE, 0),
        };
        SendReply { frames_sent: self.count.saturating_sub(failed), first_failure, status }
    }
}

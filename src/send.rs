//! The send path: one write = one batch of frames = one NBL chain handed to NdisSendNetBufferLists; the
//! write completes when NDIS has completed every NBL of it.
//!
//! Frames go out in the binding's send slots (`kernel::sendpool`): NBLs with one NET_BUFFER and an MDL over
//! a driver-owned buffer, built once and reused, so a write in steady state allocates nothing — no NBL, no
//! MDL, no pool. The caller's buffer is read exactly once: each record's length, then its frame, copied
//! straight into a slot's buffer ([`crate::copy::copy_once`]), which is then validated and sent from
//! (another thread of the caller can change its pages at any time, so nothing is read from them twice, and
//! they are not held across the send). The first slot of a write carries the write's state ([`Batch`]);
//! `NET_BUFFER_LIST.ProtocolReserved` holds the slot (0), the write's first slot (1) and the frame's index (2).
//!
//! When the pool has no free slot, a write builds one more chunk of slots (up to the bound of
//! [`crate::txpool`] and the driver's pool budget). Past that, WriteFile fails whole with
//! STATUS_INSUFFICIENT_RESOURCES (STATUS_QUOTA_EXCEEDED when the budget is what ran out) and sends nothing;
//! IOCTL_RAWLINK_SEND sends the frames that got a slot and reports the first that did not with that status.
#![allow(unsafe_code)]

use crate::binding::Binding;
use crate::copy::copy_once;
use crate::error::Error;
use crate::kernel::irp::{Irp, PendingIrp};
use crate::kernel::sendpool::{Slot, Taker};
use crate::kernel::sync::AtDispatch;
use crate::tx;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use ndis_sys::*;
use rawlink_abi::{FrameHeader, SendReply};

/// The state of one write in flight, kept in its first slot.
#[derive(Debug, Default)]
pub struct Batch {
    irp: Option<PendingIrp>,
    /// Complete with a [`SendReply`] (IOCTL_RAWLINK_SEND) rather than a byte count (WriteFile).
    report: bool,
    /// Frames sent.
    count: u32,
    /// The frame that was refused, or got no slot (IOCTL_RAWLINK_SEND sends the frames before it).
    refusal: Option<tx::Refusal>,
    /// The lowest frame index NDIS failed (high half) with its status (low half); `u64::MAX`: none.
    first_failed: AtomicU64,
    /// NBLs not yet completed.
    remaining: AtomicU32,
    /// NBLs NDIS completed with a failure status.
    failed: AtomicU32,
    /// Bytes the write carried (reported as the write's Information).
    bytes: usize,
}

/// A send slot of a binding.
pub type TxSlot = Slot<Batch>;

/// What a write carries.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// A batch of frame records (WriteFile on a rawlink handle, IOCTL_RAWLINK_SEND).
    Records(&'a [u8]),
    /// One raw frame (WriteFile on an NDISPROT handle).
    Frame(&'a [u8]),
}

/// How a send request reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// WriteFile: all frames valid or none sent; the byte count on success.
    Write,
    /// IOCTL_RAWLINK_SEND: the valid prefix is sent; a [`SendReply`] says what happened.
    Report,
}

/// Sends the frames of `input` on `b` and pends `irp` until NDIS completes them (or, for a report with
/// nothing to send, completes it at once with its reply).
///
/// On an error nothing is in flight, every slot is back in the pool, and the caller completes the IRP itself.
pub fn send(
    b: &Binding,
    input: Input<'_>,
    limits: &tx::Limits,
    irp: Irp,
    mode: Mode,
) -> core::result::Result<(), (Irp, Error)> {
    let (buf, one_frame) = match input {
        Input::Records(buf) => (buf, false),
        Input::Frame(frame) => (frame, true),
    };
    // No batch of MAX_BATCH frames of the largest size is longer; refusing longer buffers first keeps a
    // write from making the driver walk more than any valid batch holds.
    if !one_frame && buf.len() > tx::max_batch_len(limits.mtu) {
        return Err((irp, Error::INVALID_PARAMETER));
    }
    let max_frame = tx::max_frame(limits.mtu);
    let pool = b.send_slots();
    let mut taker = Taker::new(pool, b.handle(), b.pool(), max_frame);
    // The write's slots, linked through Slot::next (first = the batch's), and their NBLs through Next.
    let (mut first, mut last): (*mut TxSlot, *mut TxSlot) = (ptr::null_mut(), ptr::null_mut());
    let (mut count, mut bytes) = (0usize, 0usize);
    let mut refusal = None;
    let mut at = 0;
    loop {
        let refuse = |error| Some(tx::Refusal { frame: count, error });
        let (src, next) = if one_frame {
            if count == 1 {
                break;
            }
            if let Err(e) = tx::check_frame_length(buf.len(), limits.mtu) {
                refusal = refuse(e);
                break;
            }
            (buf, buf.len())
        } else {
            match tx::next_record(buf, at, count, max_frame) {
                tx::Record::End => break,
                tx::Record::Refused(e) => {
                    refusal = refuse(e);
                    break;
                }
                tx::Record::Frame { frame, next } => (frame, next),
            }
        };
        let len = src.len();
        // Frames still to come if the rest of the batch is like this one: how many slots to take at once
        // (worked out only when the taker needs more: a division).
        let hint = || buf.len().saturating_sub(at) / FrameHeader::record_len(len).max(1);
        let slot = match taker.take(hint) {
            Ok(s) => s,
            Err(e) => {
                refusal = refuse(e);
                break;
            }
        };
        // SAFETY: the taker handed the slot to this write, which owns it until it is sent or given back.
        let s = unsafe { &mut *slot };
        s.set_next(ptr::null_mut());
        let checked = match s.buffer().get_mut(..len) {
            Some(dst) => {
                // The one read of the frame's bytes; from here on only the copy is used.
                copy_once(dst, src);
                tx::check_frame(dst, limits)
            }
            // A slot shorter than the largest frame the limits allow (cannot be: the taker sizes the pool
            // for it).
            None => Err(Error::INVALID_BUFFER_SIZE),
        };
        if let Err(e) = checked {
            // SAFETY: a slot of the binding's pool, owned by this write and never sent.
            unsafe { pool.put_list(slot, None) };
            refusal = refuse(e);
            break;
        }
        s.set_frame(len);
        let nbl = s.nbl();
        // SAFETY: the slot's NBL, with the driver until it is sent; `last` is the previous slot of the write.
        unsafe {
            if last.is_null() {
                first = slot;
            }
            // The write's first slot (its state), and the frame's index for the report of the first failure.
            (*nbl).ProtocolReserved[1] = first.cast::<c_void>();
            (*nbl).ProtocolReserved[2] = count as *mut c_void;
            if slot != first {
                (*(*last).nbl()).u1.s.Next = nbl;
                (*last).set_next(slot);
            }
        }
        last = slot;
        count += 1;
        bytes += len;
        at = next;
    }
    // What the write did not use goes back now, before the send.
    drop(taker);
    let give_back = |first: *mut TxSlot| {
        // SAFETY: the write's slots, never handed to NDIS.
        unsafe { pool.put_list(first, None) }
    };
    match (mode, count, refusal) {
        (Mode::Write, _, Some(r)) => {
            give_back(first);
            return Err((irp, r.error));
        }
        (_, 0, None) => return Err((irp, Error::INVALID_PARAMETER)),
        (Mode::Report, 0, Some(r)) => {
            // CAST: a frame index below MAX_BATCH.
            let reply = SendReply { frames_sent: 0, first_failure: r.frame as u32, status: r.error.to_status() };
            // Marked pending first, so the dispatch routine's STATUS_PENDING is right.
            let _ = irp.mark_pending().into_irp().complete_with_reply(&reply.to_bytes());
            return Ok(());
        }
        _ => {}
    }
    // CAST: MAX_BATCH bounds the count.
    let count32 = count as u32;
    // SAFETY: the write's first slot (count > 0), owned by this write; its state is set before any NBL goes.
    unsafe {
        (*first).ctx = Batch {
            irp: None,
            report: mode == Mode::Report,
            count: count32,
            refusal,
            first_failed: AtomicU64::new(u64::MAX),
            remaining: AtomicU32::new(count32),
            failed: AtomicU32::new(0),
            bytes,
        };
    }
    // The send gate makes "still Running" and the hand-over to NDIS one step: a pause cannot begin between
    // them (its handler takes the gate too), so no send is ever issued after NDIS asked the binding to
    // pause. NDIS's callbacks from inside the send (completion, loopback receive) do not take the gate.
    let gate = b.send_gate.lock();
    // Reserve the sends against pause; refuse if the data path is off.
    if let Err(e) = b.sends_begin(count32) {
        drop(gate);
        give_back(first);
        return Err((irp, e));
    }
    // SAFETY: nothing else reaches the batch before the send below.
    unsafe { (*first).ctx.irp = Some(irp.mark_pending()) };
    // SAFETY: as above.
    let head = unsafe { (*first).nbl() };
    // The gate raised the IRQL to DISPATCH_LEVEL, which the flag says. ProtocolSendNetBufferListsComplete
    // may finish the batch during this very call, so its slots are not touched afterwards.
    // SAFETY: a complete chain of NBLs from the binding's pool, on a binding that is Running (sends_begin).
    unsafe { NdisSendNetBufferLists(b.handle(), head, NDIS_DEFAULT_PORT_NUMBER, NDIS_SEND_FLAGS_DISPATCH_LEVEL) };
    drop(gate);
    Ok(())
}

/// ProtocolSendNetBufferListsComplete: gives each NBL's slot back to the pool (a write's first slot once its
/// last NBL is back) and completes each write whose last NBL came back. One acquisition of the pool's lock
/// per call, however long the chain.
///
/// # Safety
///
/// `nbls` is a chain of NBLs this driver sent on `b`.
/// `at` is NDIS's word that the call runs at DISPATCH_LEVEL (no IRQL read then).
pub unsafe fn complete(b: &Binding, nbls: PNET_BUFFER_LIST, at: Option<AtDispatch<'_>>) {
    let mut n = nbls;
    let mut done = 0u32;
    // NBLs NDIS failed (the others were sent: `done - failed`).
    let mut failed = 0u32;
    // Slots to give back, linked through Slot::next.
    let mut back: *mut TxSlot = ptr::null_mut();
    // First slots of the writes whose last NBL came back, linked through Slot::next.
    let mut finished: *mut TxSlot = ptr::null_mut();
    // The write of the NBLs since the last change of write, and how many: NDIS usually gives a write's NBLs
    // back together, so its count of NBLs out is decremented once per run, not once per NBL.
    let (mut run_first, mut run): (*mut TxSlot, u32) = (ptr::null_mut(), 0);
    while !n.is_null() {
        // SAFETY: NBLs of send slots this driver sent, back from NDIS.
        let (next, slot, first, index, status) = unsafe {
            (
                (*n).u1.s.Next,
                (*n).ProtocolReserved[0].cast::<TxSlot>(),
                (*n).ProtocolReserved[1].cast::<TxSlot>(),
                (*n).ProtocolReserved[2] as usize,
                (*n).u2.Status,
            )
        };
        done += 1;
        if first != run_first {
            // SAFETY: the NBLs of the run were sent for `run_first`'s write and are back.
            unsafe { end_run(run_first, run, &mut finished) };
            (run_first, run) = (first, 0);
        }
        run += 1;
        if status != NDIS_STATUS_SUCCESS {
            // SAFETY: the batch's first slot outlives its NBLs: it goes back only when the last one is
            // counted, and this one is not yet.
            let batch = unsafe { &(*first).ctx };
            failed += 1;
            batch.failed.fetch_add(1, Ordering::AcqRel);
            // CAST: a frame index below MAX_BATCH; the status's bits.
            batch.first_failed.fetch_min(((index as u64) << 32) | u64::from(status as u32), Ordering::AcqRel);
        }
        if slot != first {
            // SAFETY: this NBL's slot, back from NDIS; nothing else refers to it.
            unsafe { (*slot).set_next(back) };
            back = slot;
        }
        n = next;
    }
    // SAFETY: as above, for the last run.
    unsafe { end_run(run_first, run, &mut finished) };
    let c = &b.counters;
    crate::binding::Counters::add(&c.sent, u64::from(done.saturating_sub(failed)));
    crate::binding::Counters::add(&c.send_failed, u64::from(failed));
    let pool = b.send_slots();
    // The slots go back before the writes complete, so a caller that sees its write done and writes again
    // finds them free (only each finished write's first slot, which holds its state, is still out).
    // SAFETY: slots of the binding's pool, no longer with NDIS, owned here.
    unsafe { pool.put_list(back, at) };
    let mut firsts: *mut TxSlot = ptr::null_mut();
    while !finished.is_null() {
        // SAFETY: the first slot of a write whose every NBL is back: only this call refers to it.
        let next = unsafe { (*finished).next() };
        // SAFETY: as above.
        unsafe { finish(&mut (*finished).ctx) };
        // SAFETY: as above; the write is complete, so its state is no longer needed.
        unsafe { (*finished).set_next(firsts) };
        firsts = finished;
        finished = next;
    }
    // Back in the pool before the pause this may complete (sends_end) can let the binding go.
    // SAFETY: as above.
    unsafe { pool.put_list(firsts, at) };
    b.sends_end(done, at);
}

/// Counts `run` NBLs of the write whose first slot is `first` as back from NDIS; when they were its last, links
/// `first` into `finished` (the writes to finish). The write is not touched after the decrement unless it was
/// the last.
///
/// # Safety
///
/// With `run` > 0, `first` is the first slot of a write with at least `run` NBLs not yet counted, and those
/// `run` are back from NDIS.
unsafe fn end_run(first: *mut TxSlot, run: u32, finished: &mut *mut TxSlot) {
    if run == 0 {
        return;
    }
    // SAFETY: the caller's contract: the write's first slot is still out (its last NBLs are not counted).
    let batch = unsafe { &(*first).ctx };
    if batch.remaining.fetch_sub(run, Ordering::AcqRel) == run {
        // SAFETY: every NBL of the write is back: nothing else refers to its first slot.
        unsafe { (*first).set_next(*finished) };
        *finished = first;
    }
}

/// Completes a write whose every NBL came back.
fn finish(batch: &mut Batch) {
    let reply = batch.report.then(|| batch.reply());
    let status =
        if batch.failed.load(Ordering::Acquire) == 0 { STATUS_SUCCESS } else { Error::UNSUCCESSFUL.to_status() };
    let bytes = if status == STATUS_SUCCESS { batch.bytes } else { 0 };
    match (batch.irp.take(), reply) {
        (Some(irp), Some(reply)) => {
            let _ = irp.into_irp().complete_with_reply(&reply.to_bytes());
        }
        (Some(irp), None) => irp.complete(status, bytes),
        (None, _) => {}
    }
}

impl Batch {
    /// The reply of a report: frames NDIS sent, and the earliest failure, NDIS's or validation's.
    fn reply(&self) -> SendReply {
        let failed = self.failed.load(Ordering::Acquire);
        let first = self.first_failed.load(Ordering::Acquire);
        // CAST: the two halves packed by `complete`.
        let (nbl_index, nbl_status) = if first == u64::MAX {
            (SendReply::NONE, NDIS_STATUS_SUCCESS)
        } else {
            ((first >> 32) as u32, first as u32 as i32)
        };
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

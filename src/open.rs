//! Handles: what a file object of the control device is attached to, and its receive queue.
//!
//! Each CREATE makes an [`Open`] (kept in the file object's FsContext, freed at CLOSE). IOCTL_RAWLINK_OPEN
//! attaches it to one binding; from then on the binding's receive path copies every frame into the open's
//! queue, and reads take whole records out. CLEANUP detaches it; an unbind detaches every open of the
//! binding (later reads report the adapter gone with STATUS_INVALID_DEVICE_STATE, the handle stays valid).
//!
//! Lock order: driver binding list → binding's open list → open's queue.
#![allow(unsafe_code)]

use crate::binding::Binding;
use crate::driver::Driver;
use crate::error::{Error, Result};
use crate::kernel::alloc::try_box;
use crate::kernel::irp::{Irp, PendingIrp};
use crate::kernel::sync::SpinLock;
use crate::rxqueue::{RxQueue, DEFAULT_CAPACITY};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use ndis_sys::{IoReleaseCancelSpinLock, DEVICE_OBJECT, IRP, STATUS_CANCELLED, STATUS_SUCCESS};

/// One handle's state.
#[derive(Debug)]
pub struct Open {
    /// The binding this handle is attached to (null: none, or the adapter went away).
    binding: AtomicPtr<Binding>,
    /// Allocated at attach.
    pub queue: SpinLock<Option<RxQueue>>,
    /// Opened with NDISPROT's OPEN_DEVICE: one raw frame per read and per write.
    one_frame: AtomicBool,
    /// Reads wait for a frame instead of returning empty.
    blocking: AtomicBool,
    /// Writes may carry any source MAC.
    any_source: AtomicBool,
    /// Reads waiting for a frame, each with `cancel_read` as its cancel routine.
    pending: SpinLock<Vec<PendingIrp>>,
}

/// A pointer on a binding's open list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenPtr(pub *const Open);

// SAFETY: an Open is shared between threads only through its locks and atomics; an entry leaves the list
// (under the list lock) before its Open is freed.
unsafe impl Send for OpenPtr {}

impl OpenPtr {
    /// The open behind an entry; callers hold the list's lock (see the type's invariant above).
    pub fn get<'a>(self) -> Option<&'a Open> {
        // SAFETY: entries are live while the list lock is held; never null (from Box::into_raw).
        unsafe { self.0.as_ref() }
    }
}

impl Open {
    /// A new, unattached handle state, in pool.
    pub fn create() -> Result<*mut Open> {
        let b = try_box(Open {
            binding: AtomicPtr::new(ptr::null_mut()),
            queue: SpinLock::new(None),
            one_frame: AtomicBool::new(false),
            blocking: AtomicBool::new(false),
            any_source: AtomicBool::new(false),
            pending: SpinLock::new(Vec::new()),
        })?;
        Ok(Box::into_raw(b))
    }

    /// Frees an open made by [`Open::create`].
    ///
    /// # Safety
    ///
    /// `p` came from `create`, is detached (CLEANUP ran) and is not used afterwards.
    pub unsafe fn destroy(p: *mut Open) {
        if !p.is_null() {
            // SAFETY: guaranteed by the caller.
            drop(unsafe { Box::from_raw(p) });
        }
    }

    /// Whether this handle is attached to a binding that still exists.
    pub fn attached(&self) -> bool {
        !self.binding.load(Ordering::Acquire).is_null()
    }

    /// Attaches to the `index`th enumerated binding.
    pub fn attach(&self, driver: &Driver, index: u32) -> Result {
        self.prepare()?;
        driver.with_binding_ref(index, |b| self.attach_to(b))
    }

    /// NDISPROT's OPEN_DEVICE: attaches to the adapter called `name`, one frame per read and write.
    pub fn attach_ndisprot(&self, driver: &Driver, name: impl Iterator<Item = u16> + Clone) -> Result {
        self.prepare()?;
        driver.with_binding_named(name, |b| self.attach_to(b))?;
        self.one_frame.store(true, Ordering::Release);
        Ok(())
    }

    /// Allocates the queue (before any lock is taken); a handle attaches once.
    fn prepare(&self) -> Result {
        if self.attached() {
            return Err(Error::INVALID_DEVICE_STATE);
        }
        let queue = RxQueue::new(DEFAULT_CAPACITY)?;
        *self.queue.lock() = Some(queue);
        Ok(())
    }

    /// Joins binding `b` (under the binding-list lock).
    fn attach_to(&self, b: Option<&Binding>) -> Result {
        let b = b.ok_or(Error::NOT_FOUND)?;
        b.opens_insert(OpenPtr(ptr::from_ref(self)))?;
        self.binding.store(ptr::from_ref(b).cast_mut(), Ordering::Release);
        Ok(())
    }

    /// Detaches from the binding, if still attached (CLEANUP).
    pub fn detach(&self, driver: &Driver) {
        driver.with_live_binding(self.binding.load(Ordering::Acquire), |b| {
            if let Some(b) = b {
                b.opens_remove(OpenPtr(ptr::from_ref(self)));
            }
        });
        self.binding.store(ptr::null_mut(), Ordering::Release);
    }

    /// WriteFile: validates and sends the batch on the attached binding (the IRP pends until NDIS completes
    /// every frame). On an error the IRP comes back to the caller to complete.
    pub fn write(
        &self,
        driver: &Driver,
        mut irp: crate::kernel::irp::Irp,
    ) -> core::result::Result<(), (crate::kernel::irp::Irp, Error)> {
        let Some(buf) = irp.write_buffer() else { return Err((irp, Error::INVALID_PARAMETER)) };
        // The buffer borrows the IRP's MDL mapping, which stays valid until the IRP completes; copy the
        // pointer out so the IRP itself can move into the send.
        let (p, len) = (buf.as_ptr(), buf.len());
        // SAFETY: the mapping of the caller's locked buffer lives until the IRP is completed, which happens
        // only after `send` copied the frames out.
        let buf = unsafe { core::slice::from_raw_parts(p, len) };
        driver.with_live_binding(self.binding.load(Ordering::Acquire), |b| match b {
            None => Err((irp, Error::INVALID_DEVICE_STATE)),
            Some(b) => {
                let limits =
                    crate::tx::Limits { mtu: b.mtu, mac: b.mac, any_source: self.any_source.load(Ordering::Acquire) };
                if !self.one_frame.load(Ordering::Acquire) {
                    return crate::send::send(b, buf, &limits, irp);
                }
                // NDISPROT: the whole buffer is one frame; give it the record form the send path takes.
                let mut record = alloc::vec::Vec::new();
                if record.try_reserve_exact(rawlink_abi::FrameHeader::record_len(buf.len())).is_err() {
                    return Err((irp, Error::INSUFFICIENT_RESOURCES));
                }
                let Ok(len) = u32::try_from(buf.len()) else { return Err((irp, Error::INVALID_BUFFER_SIZE)) };
                let h = rawlink_abi::FrameHeader { captured_length: len, original_length: len, timestamp: 0, flags: 0 };
                record.extend_from_slice(&h.to_bytes());
                record.extend_from_slice(buf);
                crate::send::send(b, &record, &limits, irp)
            }
        })
    }

    /// The binding went away: forget it (called by the binding under its open-list lock). Waiting reads
    /// complete: with what is still queued, or STATUS_INVALID_DEVICE_STATE.
    pub fn binding_gone(&self) {
        self.binding.store(ptr::null_mut(), Ordering::Release);
        self.complete_reads();
        self.fail_reads(Error::INVALID_DEVICE_STATE);
    }

    fn fail_reads(&self, e: Error) {
        loop {
            let next = {
                let mut list = self.pending.lock();
                let i = list.iter().position(|p| p.set_cancel_routine(None).is_some());
                i.map(|i| list.swap_remove(i))
            };
            let Some(p) = next else { return };
            p.into_irp().complete(e.to_status(), 0);
        }
    }

    /// Lets this handle send frames with other source MACs (IOCTL_RAWLINK_ALLOW_ANY_SOURCE).
    pub fn set_any_source(&self, on: bool) {
        self.any_source.store(on, Ordering::Release);
    }

    /// Blocking or non-blocking reads (IOCTL_RAWLINK_SET_READ_MODE).
    pub fn set_blocking(&self, on: bool) {
        self.blocking.store(on, Ordering::Release);
    }

    /// Whether an empty read should wait.
    pub fn wants_to_wait(&self) -> bool {
        self.blocking.load(Ordering::Acquire)
            && self.attached()
            && self.queue.lock().as_ref().is_some_and(|q| q.records() == 0)
    }

    /// Queues a read that found nothing; it completes when a frame arrives (`complete_reads`), or is cancelled.
    /// The dispatch routine returns STATUS_PENDING afterwards in every case.
    pub fn pend_read(&self, irp: Irp) {
        let p = irp.mark_pending();
        {
            let mut list = self.pending.lock();
            if list.try_reserve(1).is_err() {
                drop(list);
                p.into_irp().complete(Error::INSUFFICIENT_RESOURCES.to_status(), 0);
                return;
            }
            let _ = p.set_cancel_routine(Some(cancel_read));
            // Cancelled before the routine was in place: if we can take the routine back, the IRP is ours.
            if p.cancel_requested() && p.set_cancel_routine(None).is_some() {
                drop(list);
                p.into_irp().complete(STATUS_CANCELLED, 0);
                return;
            }
            list.push(p);
        }
        // A frame may have arrived between the empty read and the queuing.
        self.complete_reads();
    }

    /// Completes waiting reads while frames are queued. A read whose cancel routine is already running is
    /// left for that routine.
    pub fn complete_reads(&self) {
        loop {
            if self.queue.lock().as_ref().is_none_or(|q| q.records() == 0) {
                return;
            }
            let next = {
                let mut list = self.pending.lock();
                let i = list.iter().position(|p| p.set_cancel_routine(None).is_some());
                i.map(|i| list.swap_remove(i))
            };
            let Some(p) = next else { return };
            let mut irp = p.into_irp();
            let result = match irp.read_buffer() {
                Some(buf) => self.read(buf),
                None => Err(Error::BUFFER_TOO_SMALL),
            };
            match result {
                Ok(n) => {
                    let _ = irp.complete(STATUS_SUCCESS, n);
                }
                Err(e) => {
                    let _ = irp.complete(e.to_status(), 0);
                }
            }
        }
    }

    /// Completes every waiting read with STATUS_CANCELLED (CLEANUP, or the adapter went away); reads whose
    /// cancel routine is already running are left to it.
    pub fn cancel_reads(&self) {
        self.fail_reads(Error::CANCELLED);
    }

    /// The handle's receive counters (all zero before it attaches).
    pub fn statistics(&self) -> rawlink_abi::HandleStatistics {
        let q = self.queue.lock();
        q.as_ref().map_or_else(Default::default, |q| rawlink_abi::HandleStatistics {
            received: q.stats.queued,
            delivered: q.stats.delivered,
            dropped_queue_full: q.stats.dropped_full,
            // CAST: a record count of a bounded queue.
            queued: q.records() as u64,
        })
    }

    /// Moves whole frame records into `out`. A handle that was never attached, or whose adapter is gone,
    /// gets STATUS_INVALID_DEVICE_STATE once its queue is empty; a buffer too small for the next record gets
    /// STATUS_BUFFER_TOO_SMALL and loses nothing.
    pub fn read(&self, out: &mut [u8]) -> Result<usize> {
        let mut q = self.queue.lock();
        let Some(q) = q.as_mut() else { return Err(Error::INVALID_DEVICE_STATE) };
        if self.one_frame.load(Ordering::Acquire) {
            return match q.pop_frame(out) {
                None if !self.attached() => Err(Error::INVALID_DEVICE_STATE),
                None => Ok(0),
                Some(Ok(n)) => Ok(n),
                Some(Err(_)) => Err(Error::BUFFER_TOO_SMALL),
            };
        }
        match q.next_record_len() {
            None if !self.attached() => Err(Error::INVALID_DEVICE_STATE),
            None => Ok(0),
            Some(n) if n > out.len() => Err(Error::BUFFER_TOO_SMALL),
            Some(_) => Ok(q.pop_into(out)),
        }
    }
}

/// The cancel routine of a waiting read: called by the I/O manager with the cancel spin lock held.
unsafe extern "system" fn cancel_read(_device: *mut DEVICE_OBJECT, irp: *mut IRP) {
    // SAFETY: the I/O manager calls this with the cancel spin lock held and CancelIrql set; release it first.
    unsafe { IoReleaseCancelSpinLock((*irp).CancelIrql) };
    // SAFETY: a read IRP of this driver's device; its file object's FsContext is the Open (alive until CLOSE,
    // which cannot come while this read is outstanding).
    let Some(irp) = (unsafe { Irp::from_raw(irp) }) else { return };
    let open = irp.fs_context().cast::<Open>();
    // SAFETY: as above.
    let Some(open) = (unsafe { open.as_ref() }) else {
        let _ = irp.complete(STATUS_CANCELLED, 0);
        return;
    };
    let raw = irp.as_raw();
    let found = {
        let mut list = open.pending.lock();
        let i = list.iter().position(|p| p.as_ptr() == raw);
        i.map(|i| list.swap_remove(i))
    };
    // Not on the list: someone took it and will complete it; this routine must not touch it again.
    if let Some(p) = found {
        core::mem::forget(irp);
        p.into_irp().complete(STATUS_CANCELLED, 0);
    } else {
        core::mem::forget(irp);
    }
}

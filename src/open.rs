//! Handles: what a file object of the control device is attached to, its filter, receive queue, waiting
//! reads and adapter events.
//!
//! Each CREATE makes an [`Open`] (kept in the file object's FsContext, freed at CLOSE). IOCTL_RAWLINK_OPEN
//! attaches it to one binding; from then on the binding's receive path offers every frame to the open, which
//! keeps what its filter accepts, and reads take whole records out. CLEANUP marks it cleaned up (nothing
//! attaches, waits or is armed after that), cancels what waits and detaches it; an unbind detaches every
//! open of the binding (later reads report the adapter gone with STATUS_INVALID_DEVICE_STATE, the handle
//! stays valid).
//!
//! Lock order: driver binding list → binding's open list → open's `waiting` → open's `mode`, then `rx` →
//! open's `link` → binding's state lock. The data path (reads, writes, receive) never takes the driver's
//! binding list.
#![allow(unsafe_code)]

use crate::binding::{Binding, BindingRef};
use crate::budget::{self, Charge};
use crate::driver::Driver;
use crate::error::{Error, Result};
use crate::events::EventQueue;
use crate::filter::{Destination, Filter, Groups};
use crate::kernel::alloc::try_box;
use crate::kernel::irp::{Irp, PendingIrp};
use crate::kernel::shared::SharedRegion;
use crate::kernel::sync::{AtDispatch, SpinLock, SpinLockGuard};
use crate::kernel::time;
use crate::kernel::timer::Timer;
use crate::request::Owner;
use crate::ring::Producer;
use crate::rxqueue::{Push, RxQueue};
use crate::security::Opener;
use crate::send::{Input, Mode};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};
use ndis_sys::{IoReleaseCancelSpinLock, DEVICE_OBJECT, IRP, KDPC, STATUS_CANCELLED, STATUS_SUCCESS};
use rawlink_abi::ring as abi_ring;
use rawlink_abi::{FrameHeader, HandleStatistics, ReadMode};

/// What the receive path did with a frame offered to a handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// The handle's filter does not want it.
    Filtered,
    Queued,
    Full,
    TooLarge,
}

/// A mapped receive ring attached to a handle (IOCTL_RAWLINK_RING_ATTACH): the pending request whose MDL
/// locks the process's pages, their system mapping, and the producer state.
///
/// # Invariants
///
/// `mem` is the mapping of `irp`'s locked output buffer; it is used only while the ring is in its handle's
/// `Rx` (under the receive lock), and [`Ring::finish`] drops it before completing `irp`.
#[derive(Debug)]
struct Ring {
    irp: PendingIrp,
    mem: SharedRegion,
    producer: Producer,
    _charge: Charge,
}

impl Ring {
    /// Detaches: the mapping is given up, then the request completes (the I/O manager unmaps, unlocks and
    /// frees the MDL). The broken mark is written first, while the mapping is still valid.
    fn finish(self, status: ndis_sys::NTSTATUS) {
        if self.producer.broken {
            self.mem.store_u32(abi_ring::STATUS_OFFSET, abi_ring::status::BROKEN);
        }
        let Ring { irp, mem, .. } = self;
        drop(mem);
        irp.complete(status, 0);
    }
}

/// The receive side of a handle, behind one lock.
#[derive(Debug)]
struct Rx {
    /// The mapped ring, when one is attached: frames go there instead of `queue`.
    ring: Option<Ring>,
    /// An IOCTL_RAWLINK_RING_WAIT request waits for the ring to fill.
    ring_waiter: bool,
    /// Counters of rings detached from this handle: frames written, consumed (as last seen), dropped full.
    ring_totals: (u64, u64, u64),
    /// Allocated at attach.
    queue: Option<RxQueue>,
    /// The queue's share of the pool budget.
    queue_charge: Option<Charge>,
    filter: Filter,
    /// The multicast groups this handle asked for (its share of the adapter's list).
    groups: Groups,
    /// The lookahead this handle asked for (0: none).
    lookahead: u32,
    /// Bytes kept of each frame (0: all).
    capture_length: u32,
    offered: u64,
    filtered: u64,
    dropped_resources: u64,
}

impl Rx {
    /// Takes the ring off the handle, keeping its counters in the handle's statistics.
    fn take_ring(&mut self) -> Option<Ring> {
        let r = self.ring.take()?;
        let p = &r.producer;
        let t = &mut self.ring_totals;
        *t = (t.0 + p.written, t.1 + p.written - u64::from(p.pending()), t.2 + p.dropped);
        Some(r)
    }

    /// (written, consumed as last seen, dropped full, pending) over this handle's rings.
    fn ring_counts(&self) -> (u64, u64, u64, u64) {
        let (w, c, d) = self.ring_totals;
        match self.ring.as_ref() {
            None => (w, c, d, 0),
            Some(r) => {
                let p = &r.producer;
                let pending = u64::from(p.pending());
                (w + p.written, c + p.written - pending, d + p.dropped, pending)
            }
        }
    }

    /// Whether a read of `len` bytes can complete now under `mode`.
    fn ready(&self, len: usize, mode: &ReadMode) -> bool {
        self.queue.as_ref().is_some_and(|q| q.records() > 0 && q.len() >= (mode.min_bytes as usize).min(len))
    }
}

/// A handle's receive side, locked by the binding's receive path for a run of frames. With a ring, the run
/// is one batch: the consumer index is read once, at the first frame, and the producer index published once,
/// when the lock is given back.
#[derive(Debug)]
pub struct RxLocked<'a> {
    rx: SpinLockGuard<'a, Rx>,
    /// Set when the ring needs the handle's attention after the run (a waiter to wake, or it broke).
    attention: &'a AtomicBool,
    /// Decided once per run from the handle's filter (which cannot change while the lock is held): whether
    /// its classes take each [`Destination`] (indexed by it), whether it lists EtherTypes, and its capture
    /// length (`u32::MAX`: all of each frame).
    takes: [bool; Destination::COUNT],
    typed: bool,
    capture: u32,
}

impl Drop for RxLocked<'_> {
    fn drop(&mut self) {
        let rx = &mut *self.rx;
        let waiter = rx.ring_waiter;
        let Some(ring) = rx.ring.as_mut() else { return };
        if !ring.producer.in_batch() {
            if ring.producer.broken {
                self.attention.store(true, Ordering::Release);
            }
            return;
        }
        ring.mem.write(abi_ring::DROPPED_OFFSET, &ring.producer.dropped.to_le_bytes());
        if let Some(p) = ring.producer.end() {
            // Release: the slots written in this batch are visible before the index that covers them.
            ring.mem.store_u32(abi_ring::PRODUCER_OFFSET, p);
            if waiter {
                self.attention.store(true, Ordering::Release);
            }
        }
    }
}

impl RxLocked<'_> {
    /// Counts `n` frames offered to this handle (by [`RxLocked::offer`] or [`RxLocked::lost_to_resources`]),
    /// once per run instead of once per frame.
    pub fn count_offered(&mut self, n: usize) {
        // CAST: a run is at most RUN frames.
        self.rx.offered += n as u64;
    }

    /// Offers a received frame: queued if this handle's filter wants it and there is room (counted as
    /// offered by the caller, [`RxLocked::count_offered`]).
    #[inline(always)]
    pub fn offer<'a>(
        &mut self,
        dst: Destination,
        head: &[u8],
        mut header: FrameHeader,
        parts: crate::kernel::nbl::Parts<'a>,
    ) -> Offer {
        let rx = &mut *self.rx;
        let dst = match dst {
            Destination::ListedMulticast => crate::filter::destination_for(dst, head.first_chunk::<6>(), &rx.groups),
            d => d,
        };
        let takes = self.takes.get(dst as usize).copied().unwrap_or(false);
        if !takes || (self.typed && !rx.filter.types_accept(head)) {
            rx.filtered += 1;
            return Offer::Filtered;
        }
        if header.captured_length > self.capture {
            header.captured_length = self.capture;
            header.flags |= rawlink_abi::frame_flags::TRUNCATED;
        }
        if let Some(ring) = rx.ring.as_mut() {
            return ring_offer(ring, header, parts);
        }
        let Some(q) = rx.queue.as_mut() else { return Offer::Full };
        let pushed = match parts.single() {
            Some(bytes) => q.push_slice(header, bytes),
            None => q.push(header, parts),
        };
        match pushed {
            Push::Queued => Offer::Queued,
            Push::Full => Offer::Full,
            Push::TooLarge => Offer::TooLarge,
        }
    }

    /// Counts a frame this handle wanted but whose data could not be reached; returns whether it wanted it.
    pub fn lost_to_resources(&mut self, dst: Destination, head: &[u8]) -> bool {
        let rx = &mut *self.rx;
        let dst = crate::filter::destination_for(dst, head.first_chunk::<6>(), &rx.groups);
        if rx.filter.accepts(dst, head) {
            rx.dropped_resources += 1;
            true
        } else {
            rx.filtered += 1;
            false
        }
    }
}

/// Writes one frame into the ring's next slot (the first frame of a run opens the batch: the consumer
/// index is read, once, and validated). Full and broken rings drop it.
#[inline(always)]
fn ring_offer(ring: &mut Ring, mut header: FrameHeader, parts: crate::kernel::nbl::Parts<'_>) -> Offer {
    if !ring.producer.in_batch() {
        // The process's word: read once for the whole batch; only a value the producer accepts is used.
        let consumer = ring.mem.load_u32(abi_ring::CONSUMER_OFFSET).unwrap_or(u32::MAX);
        if !ring.producer.begin(consumer) {
            ring.producer.dropped += 1;
            return Offer::Full;
        }
    }
    let Some(at) = ring.producer.claim() else { return Offer::Full };
    let cap = ring.producer.layout.capacity();
    if header.captured_length as usize > cap {
        // CAST: cap < 64 KiB.
        header.captured_length = cap as u32;
        header.flags |= rawlink_abi::frame_flags::TRUNCATED;
    }
    ring.mem.write(at, &header.to_bytes());
    let mut left = header.captured_length as usize;
    let mut to = at + FrameHeader::LEN;
    if let Some(bytes) = parts.single() {
        ring.mem.write(to, bytes.get(..left).unwrap_or(bytes));
        return Offer::Queued;
    }
    for part in parts {
        if left == 0 {
            break;
        }
        let part = part.get(..left.min(part.len())).unwrap_or_default();
        ring.mem.write(to, part);
        to += part.len();
        left -= part.len();
    }
    Offer::Queued
}

/// What waits on a handle.
#[derive(Debug)]
struct Waiting {
    /// IOCTL_RAWLINK_RING_WAIT requests.
    ring_waits: Vec<PendingIrp>,
    /// Blocking reads in arrival order, each with its deadline (100 ns units; 0: none).
    reads: Vec<(PendingIrp, u64)>,
    /// IOCTL_RAWLINK_WAIT_EVENT requests.
    event_waits: Vec<PendingIrp>,
    events: EventQueue,
    /// The deadline the timer is armed for (0: not armed).
    timer_due: u64,
    /// CLOSE began: the timer is not armed again.
    closing: bool,
    /// CLEANUP ran: nothing attaches, waits or is armed on this handle any more (see [`Open::cleanup`]).
    cleaned_up: bool,
}

/// One handle's state.
#[derive(Debug)]
pub struct Open {
    /// The binding this handle is attached to (null: none, or the adapter went away).
    binding: AtomicPtr<Binding>,
    /// A counted reference to that binding while it is open: the data path takes its references from
    /// here, under this handle's own lock, never under the driver's binding-list lock. An unbind takes it
    /// back (see [`Open::unlink`]) before it waits for the binding's users.
    link: SpinLock<Option<BindingRef>>,
    rx: SpinLock<Rx>,
    /// The queue size the next attach allocates, and what IOCTL_RAWLINK_SET_QUEUE_SIZE last asked for.
    queue_size: AtomicU32,
    /// Opened with NDISPROT's OPEN_DEVICE: one raw frame per read and per write.
    one_frame: AtomicBool,
    mode: SpinLock<ReadMode>,
    /// Writes may carry any source MAC.
    any_source: AtomicBool,
    /// Who opened the handle (decided at IRP_MJ_CREATE).
    opener: Opener,
    /// The handle's fixed share of the pool budget ([`crate::budget::HANDLE_COST`]).
    _charge: Charge,
    waiting: SpinLock<Waiting>,
    /// The ring needs attention after a receive run (see [`RxLocked`]).
    ring_attention: AtomicBool,
    /// Expires at the earliest read deadline.
    timer: Timer,
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
    pub fn create(opener: Opener) -> Result<*mut Open> {
        let charge = budget::POOL.charge(budget::HANDLE_COST)?;
        let b = try_box(Open {
            binding: AtomicPtr::new(ptr::null_mut()),
            link: SpinLock::new(None),
            rx: SpinLock::new(Rx {
                ring: None,
                ring_waiter: false,
                ring_totals: (0, 0, 0),
                queue: None,
                queue_charge: None,
                filter: Filter::default(),
                groups: Groups::EMPTY,
                lookahead: 0,
                capture_length: 0,
                offered: 0,
                filtered: 0,
                dropped_resources: 0,
            }),
            queue_size: AtomicU32::new(rawlink_abi::QUEUE_DEFAULT),
            one_frame: AtomicBool::new(false),
            mode: SpinLock::new(ReadMode { blocking: false, min_bytes: 1, timeout_ms: 0 }),
            any_source: AtomicBool::new(false),
            opener,
            _charge: charge,
            waiting: SpinLock::new(Waiting {
                ring_waits: Vec::new(),
                reads: Vec::new(),
                event_waits: Vec::new(),
                events: EventQueue::default(),
                timer_due: 0,
                closing: false,
                cleaned_up: false,
            }),
            ring_attention: AtomicBool::new(false),
            timer: Timer::new(),
        })?;
        let raw = Box::into_raw(b);
        // SAFETY: just allocated; the timer is initialised at its final address, with the open as context.
        unsafe { (*raw).timer.init(read_timer, raw.cast::<c_void>()) };
        Ok(raw)
    }

    /// Frees an open made by [`Open::create`] (CLOSE, PASSIVE_LEVEL): the read timer is stopped and any
    /// of its DPCs already queued is waited for first.
    ///
    /// # Safety
    ///
    /// `p` came from `create`, is detached (CLEANUP ran) and is not used afterwards.
    pub unsafe fn destroy(p: *mut Open) {
        if p.is_null() {
            return;
        }
        // SAFETY: guaranteed by the caller.
        let o = unsafe { &*p };
        o.waiting.lock().closing = true;
        o.timer.cancel();
        Timer::flush();
        // SAFETY: guaranteed by the caller; no DPC refers to it any more.
        drop(unsafe { Box::from_raw(p) });
    }

    /// Whether this handle is attached to a binding that still exists.
    pub fn attached(&self) -> bool {
        !self.binding.load(Ordering::Acquire).is_null()
    }

    /// A counted reference to the attached binding, if it is open and not closing.
    pub fn binding_ref(&self) -> Option<BindingRef> {
        self.link.lock().as_ref().and_then(|r| r.acquire())
    }

    /// Gives back this handle's reference to its binding (the binding is unbinding).
    pub fn unlink(&self) {
        let r = self.link.lock().take();
        drop(r);
    }

    fn owner(&self) -> Owner {
        Owner(ptr::from_ref(self) as usize)
    }

    /// Attaches to the `index`th enumerated binding and brings the adapter's packet filter up to date.
    pub fn attach(&self, driver: &Driver, index: u32) -> Result {
        self.prepare()?;
        let b = driver.with_binding_ref(index, |b| self.attach_to(b))?;
        self.after_attach(driver, b)
    }

    /// NDISPROT's OPEN_DEVICE: attaches to the adapter called `name`, one frame per read and write.
    pub fn attach_ndisprot(&self, driver: &Driver, name: impl Iterator<Item = u16> + Clone) -> Result {
        self.prepare()?;
        let b = driver.with_binding_named(name, |b| self.attach_to(b))?;
        self.one_frame.store(true, Ordering::Release);
        self.after_attach(driver, b)
    }

    /// Allocates the queue (before any lock is taken); a handle attaches once, and never after CLEANUP.
    fn prepare(&self) -> Result {
        if self.cleaned_up() {
            return Err(Error::DELETE_PENDING);
        }
        if self.attached() {
            return Err(Error::INVALID_DEVICE_STATE);
        }
        let bytes = self.queue_size.load(Ordering::Acquire) as usize;
        let charge = budget::POOL.charge(bytes)?;
        let queue = RxQueue::new(bytes)?;
        let mut rx = self.rx.lock();
        rx.queue = Some(queue);
        rx.queue_charge = Some(charge);
        Ok(())
    }

    /// Joins binding `b` (under the binding-list lock) and takes a reference for the filter update.
    fn attach_to(&self, b: Option<&Binding>) -> Result<BindingRef> {
        let b = b.ok_or(Error::NOT_FOUND)?;
        let (keep, r) = (b.acquire().ok_or(Error::NOT_FOUND)?, b.acquire().ok_or(Error::NOT_FOUND)?);
        // Claim the handle: of two attaches racing on one handle, only one gets here (a handle on two
        // bindings' lists would outlive its CLOSE on one of them).
        let me = ptr::from_ref(b).cast_mut();
        if self.binding.compare_exchange(ptr::null_mut(), me, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return Err(Error::INVALID_DEVICE_STATE);
        }
        // The reference is in place before the handle is on the open list, where an unbind looks for it.
        *self.link.lock() = Some(keep);
        let undo = |e| {
            self.unlink();
            self.binding.store(ptr::null_mut(), Ordering::Release);
            Err(e)
        };
        if let Err(e) = b.opens_insert(OpenPtr(ptr::from_ref(self))) {
            return undo(e);
        }
        // An unbind that began after the references were taken may have collected the list's references
        // before this handle was on it: then it must not keep one.
        if !crate::control::enumerated(b.state()) {
            b.opens_remove(OpenPtr(ptr::from_ref(self)));
            return undo(Error::NOT_FOUND);
        }
        // A CLEANUP that ran since `prepare` looked may have detached before this handle was on the list:
        // then it leaves again (CLOSE would free it while listed). CLEANUP sets its mark before it detaches,
        // so if the mark is not set here, the handle was listed before CLEANUP looks and CLEANUP removes it.
        if self.cleaned_up() {
            b.opens_remove(OpenPtr(ptr::from_ref(self)));
            return undo(Error::DELETE_PENDING);
        }
        Ok(r)
    }

    /// The packet filter now covers this handle too; if NDIS refuses it, the handle detaches again.
    fn after_attach(&self, driver: &Driver, b: BindingRef) -> Result {
        if let Err(e) = b.update_packet_filter() {
            drop(b);
            self.detach(driver);
            return Err(e);
        }
        Ok(())
    }

    /// IRP_MJ_CLEANUP: marks the handle cleaned up (under the `waiting` lock, which attaches and waiting
    /// requests check), completes what waits with STATUS_CANCELLED and detaches. Every request after it is
    /// refused with STATUS_DELETE_PENDING, so CLOSE finds the handle detached with nothing queued or armed.
    pub fn cleanup(&self, driver: &Driver) {
        self.waiting.lock().cleaned_up = true;
        self.cancel_waiting();
        self.detach(driver);
    }

    /// Whether IRP_MJ_CLEANUP ran on this handle.
    pub fn cleaned_up(&self) -> bool {
        self.waiting.lock().cleaned_up
    }

    /// Detaches from the binding, if still attached (CLEANUP): cancels this handle's OID requests, leaves
    /// the open list and shrinks the packet filter to what the other handles need.
    fn detach(&self, driver: &Driver) {
        let r = self.link.lock().take();
        if let Some(b) = &r {
            b.cancel_oids(Some(self.owner()));
        }
        driver.with_live_binding(self.binding.load(Ordering::Acquire), |b| {
            if let Some(b) = b {
                b.opens_remove(OpenPtr(ptr::from_ref(self)));
            }
        });
        self.binding.store(ptr::null_mut(), Ordering::Release);
        if let Some(b) = r {
            // Best effort: the handle is gone either way; a refused filter change only means the adapter
            // keeps indicating more than is wanted, which the per-handle filters drop.
            let _ = b.update_packet_filter();
            let _ = b.update_multicast();
            let _ = b.update_lookahead();
        }
    }

    /// The destination classes this handle wants (its share of the adapter packet filter).
    pub fn classes(&self) -> u32 {
        self.rx.lock().filter.classes()
    }

    /// Sets this handle's filter (IOCTL_RAWLINK_SET_FILTER, or a packet-filter OID set for the classes only)
    /// and updates the adapter packet filter. The handle must be attached.
    pub fn set_filter(&self, f: impl FnOnce(Filter) -> Filter) -> Result {
        let b = self.binding_ref().ok_or(Error::INVALID_DEVICE_STATE)?;
        let old = {
            let mut rx = self.rx.lock();
            let old = rx.filter;
            rx.filter = f(old);
            old
        };
        if let Err(e) = b.update_packet_filter() {
            self.rx.lock().filter = old;
            return Err(e);
        }
        Ok(())
    }

    /// The multicast groups this handle asked for.
    pub fn groups(&self) -> Groups {
        self.rx.lock().groups
    }

    /// The lookahead this handle asked for (0: none).
    pub fn lookahead(&self) -> u32 {
        self.rx.lock().lookahead
    }

    /// Sets this handle's multicast list (OID_802_3_MULTICAST_LIST) and the adapter's to the union over the
    /// binding's handles; on failure the handle keeps its old list. The handle must be attached.
    pub fn set_groups(&self, groups: Groups) -> Result {
        let b = self.binding_ref().ok_or(Error::INVALID_DEVICE_STATE)?;
        let old = core::mem::replace(&mut self.rx.lock().groups, groups);
        if let Err(e) = b.update_multicast() {
            self.rx.lock().groups = old;
            return Err(e);
        }
        Ok(())
    }

    /// Sets this handle's lookahead (OID_GEN_CURRENT_LOOKAHEAD) and the adapter's to the largest over the
    /// binding's handles; on failure the handle keeps its old value. The handle must be attached.
    pub fn set_lookahead(&self, bytes: u32) -> Result {
        let b = self.binding_ref().ok_or(Error::INVALID_DEVICE_STATE)?;
        let old = core::mem::replace(&mut self.rx.lock().lookahead, bytes);
        if let Err(e) = b.update_lookahead() {
            self.rx.lock().lookahead = old;
            return Err(e);
        }
        Ok(())
    }

    /// Sets how many bytes of each frame this handle keeps (0: all; IOCTL_RAWLINK_SET_CAPTURE_LENGTH).
    pub fn set_capture_length(&self, bytes: u32) {
        self.rx.lock().capture_length = bytes;
    }

    /// Resizes the receive queue, keeping what is queued (STATUS_BUFFER_TOO_SMALL if it would not fit).
    pub fn set_queue_size(&self, bytes: u32) -> Result {
        // Before attach only the size is remembered (the queue is charged when it is allocated).
        if !self.attached() {
            self.queue_size.store(bytes, Ordering::Release);
            return Ok(());
        }
        // The new queue is charged while the old one still is: a resize needs both for a moment.
        let charge = budget::POOL.charge(bytes as usize)?;
        let mut new = RxQueue::new(bytes as usize)?;
        let old = {
            let mut rx = self.rx.lock();
            match rx.queue.as_mut() {
                None => None,
                Some(q) => {
                    if !new.adopt(q) {
                        return Err(Error::BUFFER_TOO_SMALL);
                    }
                    let old_queue = core::mem::replace(q, new);
                    Some((old_queue, rx.queue_charge.replace(charge)))
                }
            }
        };
        self.queue_size.store(bytes, Ordering::Release);
        // The old ring is freed here, outside the lock.
        drop(old);
        Ok(())
    }

    /// Locks the handle's receive side for a run of frames (the binding's receive path, under its open-list
    /// lock, so at DISPATCH_LEVEL): one lock per handle per run, not per frame.
    pub fn rx_at_dispatch<'a>(&'a self, at: AtDispatch<'_>) -> RxLocked<'a> {
        let rx = self.rx.lock_dpc(at);
        let takes = Destination::ALL.map(|d| crate::filter::class_accepts(rx.filter.classes(), d));
        let typed = rx.filter.typed();
        let capture = if rx.capture_length == 0 { u32::MAX } else { rx.capture_length };
        RxLocked { rx, attention: &self.ring_attention, takes, typed, capture }
    }

    /// WriteFile: validates and sends the batch on the attached binding (the IRP pends until NDIS completes
    /// every frame). On an error the IRP comes back to the caller to complete.
    pub fn write(&self, mut irp: Irp) -> core::result::Result<(), (Irp, Error)> {
        let buf = match irp.write_buffer() {
            Ok(Some(buf)) => buf,
            Ok(None) => return Err((irp, Error::INVALID_PARAMETER)),
            Err(e) => return Err((irp, e)),
        };
        // The buffer borrows the IRP's MDL mapping, which stays valid until the IRP completes; copy the
        // pointer out so the IRP itself can move into the send.
        let (p, len) = (buf.as_ptr(), buf.len());
        // SAFETY: the mapping of the caller's locked buffer lives until the IRP is completed, which happens
        // only after `send` copied the frames out.
        let buf = unsafe { core::slice::from_raw_parts(p, len) };
        if !self.one_frame.load(Ordering::Acquire) {
            return self.send(Input::Records(buf), irp, Mode::Write);
        }
        // NDISPROT: the whole buffer is one frame, copied straight into a send slot (its length is checked
        // before anything else: a write may claim up to 4 GiB).
        self.send(Input::Frame(buf), irp, Mode::Write)
    }

    /// IOCTL_RAWLINK_SEND: sends the valid frames at the start of the input and replies with a SendReply
    /// (the IRP pends until NDIS completes them). On an error the IRP comes back to the caller to complete.
    pub fn send_ioctl(&self, mut irp: Irp) -> core::result::Result<(), (Irp, Error)> {
        let (_, in_len, out_len) = irp.ioctl();
        if (out_len as usize) < rawlink_abi::SendReply::LEN {
            return Err((irp, Error::BUFFER_TOO_SMALL));
        }
        // SAFETY: IRP_MJ_DEVICE_CONTROL with the METHOD_BUFFERED IOCTL_RAWLINK_SEND; the length is the
        // system buffer's.
        let buf = unsafe { irp.system_buffer(in_len.max(out_len) as usize) };
        let (p, len) = (buf.as_ptr(), buf.len().min(in_len as usize));
        // SAFETY: the system buffer belongs to the IRP until it completes, which happens only after `send`
        // copied the frames out (the reply is written into it at completion).
        let buf = unsafe { core::slice::from_raw_parts(p, len) };
        self.send(Input::Records(buf), irp, Mode::Report)
    }

    /// Sends `buf` on the attached binding. A counted reference, not the binding-list lock, keeps the binding
    /// open during the send: no spin lock is held while NDIS runs (it may complete the sends or loop frames
    /// back inside the call).
    fn send(&self, input: Input<'_>, irp: Irp, mode: Mode) -> core::result::Result<(), (Irp, Error)> {
        let Some(b) = self.binding_ref() else { return Err((irp, Error::INVALID_DEVICE_STATE)) };
        let limits =
            crate::tx::Limits { mtu: b.mtu(), mac: b.mac, any_source: self.any_source.load(Ordering::Acquire) };
        crate::send::send(&b, input, &limits, irp, mode)
    }

    /// The binding went away: forget it (called by the binding under its open-list lock). Waiting reads
    /// complete: with what is still queued, or STATUS_INVALID_DEVICE_STATE; an ADAPTER_GONE event is posted.
    pub fn binding_gone(&self) {
        self.unlink();
        self.binding.store(ptr::null_mut(), Ordering::Release);
        self.complete_reads();
        self.fail_reads(Error::INVALID_DEVICE_STATE);
        self.fail_ring_waits(Error::INVALID_DEVICE_STATE);
        self.ring_detach(Error::INVALID_DEVICE_STATE.to_status());
        self.post_event(rawlink_abi::Event { kind: rawlink_abi::event::ADAPTER_GONE, value: 0 });
    }

    /// Completes every waiting read with `e`; reads whose cancel routine is already running are left to it.
    fn fail_reads(&self, e: Error) {
        loop {
            // The lock goes with the statement: the request is completed outside it.
            let next = take_owned(&mut self.waiting.lock().reads, |r| &r.0);
            let Some((p, _)) = next else { return };
            p.complete(e.to_status(), 0);
        }
    }

    /// Completes every waiting event request with `e` (cancel routines already running are left to them).
    fn fail_event_waits(&self, e: Error) {
        loop {
            let next = take_owned(&mut self.waiting.lock().event_waits, |p| p);
            let Some(p) = next else { return };
            p.complete(e.to_status(), 0);
        }
    }

    /// Lets this handle send frames with other source MACs (IOCTL_RAWLINK_ALLOW_ANY_SOURCE).
    /// Sets whether writes may carry any source MAC (IOCTL_RAWLINK_ALLOW_ANY_SOURCE): turning it on needs
    /// an opener who is an administrator or holds SeTcbPrivilege ([`Opener::check_any_source`]).
    pub fn set_any_source(&self, on: bool) -> Result {
        if on {
            self.opener.check_any_source()?;
        }
        self.any_source.store(on, Ordering::Release);
        Ok(())
    }

    /// Sets the read mode (IOCTL_RAWLINK_SET_READ_MODE); waiting reads are re-examined.
    pub fn set_mode(&self, mode: ReadMode) {
        *self.mode.lock() = mode;
        self.complete_reads();
    }

    /// Whether a read of `len` bytes should wait (blocking mode, attached, not enough queued).
    pub fn wants_to_wait(&self, len: usize) -> bool {
        let mode = *self.mode.lock();
        mode.blocking && self.attached() && !self.rx.lock().ready(len, &mode)
    }

    /// Queues a read that cannot complete yet; it completes when enough frames arrived or its timeout
    /// passed, or is cancelled. Returns the status for the dispatch routine.
    pub fn pend_read(&self, irp: Irp) -> ndis_sys::NTSTATUS {
        let timeout_ms = self.mode.lock().timeout_ms;
        let deadline =
            if timeout_ms == 0 { 0 } else { time::now_100ns().saturating_add(u64::from(timeout_ms) * 10_000) };
        {
            let w = self.waiting.lock();
            if w.cleaned_up {
                drop(w);
                return irp.complete(Error::DELETE_PENDING.to_status(), 0);
            }
            let (mut w, p) = match pend(w, |w| &mut w.reads, irp) {
                Ok(queued) => queued,
                Err(status) => return status,
            };
            w.reads.push((p, deadline));
            if deadline != 0 && (w.timer_due == 0 || deadline < w.timer_due) && !w.closing {
                w.timer_due = deadline;
                self.timer.set_ms(timeout_ms);
            }
        }
        // Frames may have arrived between the check and the queuing.
        self.complete_reads();
        ndis_sys::STATUS_PENDING
    }

    /// Takes the oldest waiting read if it can complete now (enough queued, its deadline passed, or the
    /// adapter gone); reads being cancelled are skipped (their cancel routine completes them).
    fn take_ready_read(&self) -> Option<PendingIrp> {
        let mut w = self.waiting.lock();
        // The common case on the receive path: nobody waits, and nothing more is looked at.
        if w.reads.is_empty() {
            return None;
        }
        let now = time::now_100ns();
        let mode = *self.mode.lock();
        let attached = self.attached();
        let rx = self.rx.lock();
        let mut i = 0;
        while let Some((p, deadline)) = w.reads.get(i) {
            let expired = *deadline != 0 && now >= *deadline;
            if !(rx.ready(p.read_length(), &mode) || expired || !attached) {
                return None;
            }
            if p.set_cancel_routine(None).is_some() {
                return Some(w.reads.remove(i).0);
            }
            i += 1;
        }
        None
    }

    /// Completes the waiting reads that can complete, oldest first.
    pub fn complete_reads(&self) {
        while let Some(p) = self.take_ready_read() {
            let mut irp = p.into_irp();
            let result = match irp.read_buffer() {
                Ok(Some(buf)) => self.read(buf),
                Ok(None) => Err(Error::BUFFER_TOO_SMALL),
                Err(e) => Err(e),
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

    /// The read timer expired: complete what is due and arm it for the next deadline.
    fn timer_expired(&self) {
        self.waiting.lock_at_dispatch().timer_due = 0;
        self.complete_reads();
        let now = time::now_100ns();
        let mut w = self.waiting.lock_at_dispatch();
        if w.closing || w.timer_due != 0 {
            return;
        }
        if let Some(next) = w.reads.iter().map(|(_, d)| *d).filter(|d| *d != 0).min() {
            w.timer_due = next;
            // CAST: a deadline at most MAX_TIMEOUT_MS away.
            let ms = (next.saturating_sub(now) / 10_000) as u32 + 1;
            self.timer.set_ms(ms);
        }
    }

    /// Completes every waiting read and event request with STATUS_CANCELLED (CLEANUP).
    fn cancel_waiting(&self) {
        self.fail_reads(Error::CANCELLED);
        self.fail_event_waits(Error::CANCELLED);
        self.fail_ring_waits(Error::CANCELLED);
        self.ring_detach(STATUS_CANCELLED);
    }

    /// Delivers an adapter event to a waiting request, or keeps it for the next one.
    pub fn post_event(&self, e: rawlink_abi::Event) {
        let waiter = {
            let mut w = self.waiting.lock();
            let waiter = take_owned(&mut w.event_waits, |p| p);
            if waiter.is_none() {
                w.events.push(e);
            }
            waiter
        };
        if let Some(p) = waiter {
            let _ = p.into_irp().complete_with_reply(&e.to_bytes());
        }
    }

    /// IOCTL_RAWLINK_WAIT_EVENT: completes at once with a kept event, or pends until one comes. Returns the
    /// status for the dispatch routine. Looking for a kept event and queuing the request happen under one
    /// lock, the one `post_event` takes, so no event slips between them.
    pub fn wait_event(&self, irp: Irp) -> ndis_sys::NTSTATUS {
        let (_, _, out_len) = irp.ioctl();
        if (out_len as usize) < rawlink_abi::Event::LEN {
            return irp.complete(Error::BUFFER_TOO_SMALL.to_status(), 0);
        }
        let mut w = self.waiting.lock();
        if w.cleaned_up {
            drop(w);
            return irp.complete(Error::DELETE_PENDING.to_status(), 0);
        }
        if let Some(e) = w.events.pop() {
            drop(w);
            return irp.complete_with_reply(&e.to_bytes());
        }
        if !self.attached() {
            drop(w);
            return irp.complete(Error::INVALID_DEVICE_STATE.to_status(), 0);
        }
        let (mut w, p) = match pend(w, |w| &mut w.event_waits, irp) {
            Ok(queued) => queued,
            Err(status) => return status,
        };
        w.event_waits.push(p);
        ndis_sys::STATUS_PENDING
    }

    /// IOCTL_RAWLINK_RING_ATTACH: validates the setup and the caller's buffer, maps it once and leaves the
    /// request pending for as long as the ring is attached (see `rawlink_abi::ring`). Returns the status for
    /// the dispatch routine.
    pub fn ring_attach(&self, mut irp: Irp) -> ndis_sys::NTSTATUS {
        let (_, in_len, out_len) = irp.ioctl();
        // SAFETY: IRP_MJ_DEVICE_CONTROL with the METHOD_OUT_DIRECT IOCTL_RAWLINK_RING_ATTACH, whose input
        // the I/O manager copied into a system buffer of InputBufferLength bytes.
        let input = unsafe { irp.system_buffer(in_len as usize) };
        let layout = match abi_ring::RingSetup::parse(input) {
            Err(_) => return irp.complete(Error::BUFFER_TOO_SMALL.to_status(), 0),
            Ok(s) if s.flags != 0 => return irp.complete(Error::INVALID_PARAMETER.to_status(), 0),
            Ok(s) => match abi_ring::RingLayout::new(out_len as usize, s.slot_size) {
                Ok(l) => l,
                Err(_) => return irp.complete(Error::INVALID_PARAMETER.to_status(), 0),
            },
        };
        if !self.attached() || self.rx.lock().ring.is_some() {
            return irp.complete(Error::INVALID_DEVICE_STATE.to_status(), 0);
        }
        let charge = match budget::POOL.charge(layout.len()) {
            Ok(c) => c,
            Err(e) => return irp.complete(e.to_status(), 0),
        };
        let mem = match irp.locked_output() {
            Ok(Some(m)) => m,
            Ok(None) => return irp.complete(Error::INVALID_PARAMETER.to_status(), 0),
            Err(e) => return irp.complete(e.to_status(), 0),
        };
        // The ring is laid out before it is live; the process reads it after the request is pending.
        mem.write(0, &layout.header());
        mem.write(abi_ring::STATUS_OFFSET, &[0; abi_ring::CACHE_LINE]);
        mem.store_u32(abi_ring::CONSUMER_OFFSET, 0);
        mem.store_u32(abi_ring::PRODUCER_OFFSET, 0);
        let w = self.waiting.lock();
        if w.cleaned_up {
            drop(w);
            drop(mem);
            return irp.complete(Error::DELETE_PENDING.to_status(), 0);
        }
        let mut rx = self.rx.lock();
        if rx.ring.is_some() {
            drop((rx, w, mem));
            return irp.complete(Error::INVALID_DEVICE_STATE.to_status(), 0);
        }
        let p = irp.mark_pending();
        let _ = p.set_cancel_routine(Some(cancel_ring));
        if p.cancel_requested() && p.set_cancel_routine(None).is_some() {
            drop((rx, w, mem));
            p.complete(STATUS_CANCELLED, 0);
            return ndis_sys::STATUS_PENDING;
        }
        // INVARIANT: `mem` maps `p`'s locked buffer; from here on it is used only under the receive lock.
        rx.ring = Some(Ring { irp: p, mem, producer: Producer::new(layout), _charge: charge });
        ndis_sys::STATUS_PENDING
    }

    /// Takes the ring off the handle (if its request is still the driver's to complete) and completes the
    /// attach request with `status`. A ring whose cancel routine already runs is left to that routine.
    fn ring_detach(&self, status: ndis_sys::NTSTATUS) {
        let ring = {
            let mut rx = self.rx.lock();
            match rx.ring.as_ref() {
                Some(r) if r.irp.set_cancel_routine(None).is_some() => rx.take_ring(),
                _ => None,
            }
        };
        if let Some(r) = ring {
            r.finish(status);
        }
    }

    /// IOCTL_RAWLINK_RING_WAIT: completes at once when the ring holds frames, pends until it does otherwise.
    pub fn ring_wait(&self, irp: Irp) -> ndis_sys::NTSTATUS {
        let w = self.waiting.lock();
        if w.cleaned_up {
            drop(w);
            return irp.complete(Error::DELETE_PENDING.to_status(), 0);
        }
        let holds = {
            let mut rx = self.rx.lock();
            let state = rx.ring.as_mut().map(|r| {
                let consumer = r.mem.load_u32(abi_ring::CONSUMER_OFFSET).unwrap_or(u32::MAX);
                r.producer.holds_frames(consumer)
            });
            if state == Some(Some(false)) {
                rx.ring_waiter = true;
            }
            state
        };
        let status = match holds {
            None => Some(Error::INVALID_DEVICE_STATE.to_status()),
            Some(None) => Some(Error::INVALID_PARAMETER.to_status()),
            Some(Some(true)) => Some(STATUS_SUCCESS),
            Some(Some(false)) => None,
        };
        if let Some(st) = status {
            drop(w);
            if holds == Some(None) {
                self.ring_detach(Error::INVALID_PARAMETER.to_status());
            }
            return irp.complete(st, 0);
        }
        let (mut w, p) = match pend(w, |w| &mut w.ring_waits, irp) {
            Ok(queued) => queued,
            Err(status) => return status,
        };
        w.ring_waits.push(p);
        ndis_sys::STATUS_PENDING
    }

    /// After a receive run: wakes the ring's waiters, and detaches a ring the process broke.
    pub fn ring_service(&self) {
        if !self.ring_attention.swap(false, Ordering::AcqRel) {
            return;
        }
        let broken = {
            let mut rx = self.rx.lock();
            rx.ring_waiter = false;
            rx.ring.as_ref().is_some_and(|r| r.producer.broken)
        };
        if broken {
            self.fail_ring_waits(Error::INVALID_PARAMETER);
            self.ring_detach(Error::INVALID_PARAMETER.to_status());
        } else {
            self.fail_ring_waits_with(STATUS_SUCCESS);
        }
    }

    /// Completes every waiting ring request with `e`.
    fn fail_ring_waits(&self, e: Error) {
        self.fail_ring_waits_with(e.to_status());
    }

    fn fail_ring_waits_with(&self, status: ndis_sys::NTSTATUS) {
        loop {
            let next = take_owned(&mut self.waiting.lock().ring_waits, |p| p);
            let Some(p) = next else { return };
            p.complete(status, 0);
        }
    }

    /// The handle's receive counters (all zero before it attaches).
    pub fn statistics(&self) -> HandleStatistics {
        let rx = self.rx.lock();
        let q = rx.queue.as_ref();
        let (ring_written, ring_consumed, ring_dropped, ring_pending) = rx.ring_counts();
        HandleStatistics {
            received: rx.offered,
            filtered: rx.filtered,
            queued: q.map_or(0, |q| q.stats.queued) + ring_written,
            delivered: q.map_or(0, |q| q.stats.delivered) + ring_consumed,
            dropped_queue_full: q.map_or(0, |q| q.stats.dropped_full) + ring_dropped,
            dropped_too_large: q.map_or(0, |q| q.stats.dropped_too_large),
            dropped_resources: rx.dropped_resources,
            // CAST: a record count of a bounded queue.
            pending: q.map_or(0, |q| q.records() as u64) + ring_pending,
        }
    }

    /// Moves whole frame records into `out`. A handle that was never attached, or whose adapter is gone,
    /// gets STATUS_INVALID_DEVICE_STATE once its queue is empty; a buffer too small for the next record gets
    /// STATUS_BUFFER_TOO_SMALL and loses nothing.
    pub fn read(&self, out: &mut [u8]) -> Result<usize> {
        let mut rx = self.rx.lock();
        let Some(q) = rx.queue.as_mut() else { return Err(Error::INVALID_DEVICE_STATE) };
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

/// Takes the first request of `list` whose cancel routine this driver can still take back (it is then the
/// driver's to complete); requests whose cancel routine already runs are left to that routine.
fn take_owned<T>(list: &mut Vec<T>, irp: impl Fn(&T) -> &PendingIrp) -> Option<T> {
    let i = list.iter().position(|x| irp(x).set_cancel_routine(None).is_some())?;
    Some(list.remove(i))
}

/// Marks `irp` pending for the waiting list `list` of `w` picks, which the caller then pushes it onto while it
/// still holds `w`. At most `budget::MAX_PENDED` requests wait per handle (STATUS_QUOTA_EXCEEDED), the list
/// must have room for one more (STATUS_INSUFFICIENT_RESOURCES), and a request cancelled before its cancel
/// routine is armed completes with STATUS_CANCELLED; in those cases the request is completed outside the lock
/// and `Err` holds the status for the dispatch routine.
fn pend<'a, T>(
    mut w: SpinLockGuard<'a, Waiting>,
    list: fn(&mut Waiting) -> &mut Vec<T>,
    irp: Irp,
) -> core::result::Result<(SpinLockGuard<'a, Waiting>, PendingIrp), ndis_sys::NTSTATUS> {
    if w.reads.len() + w.event_waits.len() + w.ring_waits.len() >= budget::MAX_PENDED {
        drop(w);
        return Err(irp.complete(Error::QUOTA_EXCEEDED.to_status(), 0));
    }
    if list(&mut *w).try_reserve(1).is_err() {
        drop(w);
        return Err(irp.complete(Error::INSUFFICIENT_RESOURCES.to_status(), 0));
    }
    let p = irp.mark_pending();
    if !arm(&p) {
        drop(w);
        p.complete(STATUS_CANCELLED, 0);
        return Err(ndis_sys::STATUS_PENDING);
    }
    Ok((w, p))
}

/// Puts `cancel_waiting` on a request about to wait; false if it was cancelled before that and the routine
/// was taken back, so the caller completes it with STATUS_CANCELLED.
fn arm(p: &PendingIrp) -> bool {
    let _ = p.set_cancel_routine(Some(cancel_waiting));
    !(p.cancel_requested() && p.set_cancel_routine(None).is_some())
}

/// The read timer's DPC: the context is the Open (alive until CLOSE, which cancels the timer and flushes
/// DPCs before freeing it).
unsafe extern "system" fn read_timer(_dpc: *mut KDPC, context: *mut c_void, _a: *mut c_void, _b: *mut c_void) {
    // SAFETY: see above.
    if let Some(o) = unsafe { context.cast::<Open>().as_ref() } {
        o.timer_expired();
    }
}

/// The cancel routine of a ring's attach request (CancelIo, thread exit): detaches the ring.
unsafe extern "system" fn cancel_ring(_device: *mut DEVICE_OBJECT, irp: *mut IRP) {
    // SAFETY: the I/O manager calls this with the cancel spin lock held and CancelIrql set; release it first.
    unsafe { IoReleaseCancelSpinLock((*irp).CancelIrql) };
    // SAFETY: a request of this driver's device; its file object's FsContext is the Open (alive until CLOSE,
    // which cannot come while this request is outstanding).
    let Some(irp) = (unsafe { Irp::from_raw(irp) }) else { return };
    let open = irp.fs_context().cast::<Open>();
    // SAFETY: as above.
    let Some(open) = (unsafe { open.as_ref() }) else {
        let _ = irp.complete(STATUS_CANCELLED, 0);
        return;
    };
    let raw = irp.as_raw();
    let ring = {
        let mut rx = open.rx.lock();
        match rx.ring.as_ref() {
            Some(r) if r.irp.as_ptr() == raw => rx.take_ring(),
            _ => None,
        }
    };
    // Not attached any more: whoever took it completes it. (Irp has no Drop: forgetting the view is fine.)
    if let Some(r) = ring {
        open.fail_ring_waits(Error::CANCELLED);
        r.finish(STATUS_CANCELLED);
    }
}

/// The cancel routine of a waiting read or event request: called by the I/O manager with the cancel spin
/// lock held.
unsafe extern "system" fn cancel_waiting(_device: *mut DEVICE_OBJECT, irp: *mut IRP) {
    // SAFETY: the I/O manager calls this with the cancel spin lock held and CancelIrql set; release it first.
    unsafe { IoReleaseCancelSpinLock((*irp).CancelIrql) };
    // SAFETY: a request of this driver's device; its file object's FsContext is the Open (alive until CLOSE,
    // which cannot come while this request is outstanding).
    let Some(irp) = (unsafe { Irp::from_raw(irp) }) else { return };
    let open = irp.fs_context().cast::<Open>();
    // SAFETY: as above.
    let Some(open) = (unsafe { open.as_ref() }) else {
        let _ = irp.complete(STATUS_CANCELLED, 0);
        return;
    };
    let raw = irp.as_raw();
    let found = {
        let mut w = open.waiting.lock();
        if let Some(i) = w.reads.iter().position(|(p, _)| p.as_ptr() == raw) {
            Some(w.reads.remove(i).0)
        } else if let Some(i) = w.ring_waits.iter().position(|p| p.as_ptr() == raw) {
            Some(w.ring_waits.remove(i))
        } else {
            let i = w.event_waits.iter().position(|p| p.as_ptr() == raw);
            i.map(|i| w.event_waits.remove(i))
        }
    };
    // Not on a list: someone took it and will complete it; this routine must not touch it again.
    if let Some(p) = found {
        p.complete(STATUS_CANCELLED, 0);
    }
}

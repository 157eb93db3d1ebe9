//! A spin lock that owns the data it protects and releases in `Drop`.
//!
//! Backed by a `KSPIN_LOCK` (what `NDIS_SPIN_LOCK` wraps; `NdisAcquireSpinLock` is a macro over the same Ke
//! routines on x64). `lock()` raises to DISPATCH_LEVEL and restores the previous IRQL on release;
//! `lock_at_dispatch()` is the `NdisDprAcquireSpinLock` form for code already at DISPATCH_LEVEL (receive and
//! send-complete paths), which skips the IRQL change.

use super::irql::{self, DISPATCH_LEVEL};
use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use ndis_sys::{
    KeAcquireSpinLockAtDpcLevel, KeAcquireSpinLockRaiseToDpc, KeReleaseSpinLock, KeReleaseSpinLockFromDpcLevel, KIRQL,
    KSPIN_LOCK,
};

/// Data of type `T` behind a kernel spin lock.
///
/// # Invariants
///
/// `data` is only reached through a [`SpinLockGuard`], which exists only while `lock` is held.
pub struct SpinLock<T> {
    lock: UnsafeCell<KSPIN_LOCK>,
    data: UnsafeCell<T>,
}

// SAFETY: the lock serialises all access to `data`, so sharing the lock across threads is sound when the
// data itself may move between threads.
unsafe impl<T: Send> Sync for SpinLock<T> {}
// SAFETY: the lock holds no thread affinity; moving it moves the data.
unsafe impl<T: Send> Send for SpinLock<T> {}

impl<T> SpinLock<T> {
    /// A new, released lock. (`KeInitializeSpinLock` only stores zero, which this does in Rust.)
    pub const fn new(data: T) -> Self {
        Self { lock: UnsafeCell::new(0), data: UnsafeCell::new(data) }
    }

    /// Acquires the lock from IRQL <= DISPATCH_LEVEL, raising to DISPATCH_LEVEL until the guard drops.
    pub fn lock(&self) -> SpinLockGuard<'_, T> {
        // SAFETY: `self.lock` is a valid, initialised KSPIN_LOCK for the life of `self`; callers run at
        // IRQL <= DISPATCH_LEVEL (every context of this driver).
        let old = unsafe { KeAcquireSpinLockRaiseToDpc(self.lock.get()) };
        SpinLockGuard { owner: self, old_irql: Some(old) }
    }

    /// Acquires the lock when the caller is known to run at DISPATCH_LEVEL (a receive or completion
    /// callback). Falls back to [`lock`](Self::lock) if that is not so, rather than corrupting the IRQL.
    pub fn lock_at_dispatch(&self) -> SpinLockGuard<'_, T> {
        if irql::current() != DISPATCH_LEVEL {
            return self.lock();
        }
        // SAFETY: the caller runs at DISPATCH_LEVEL (checked above); the lock is valid as in `lock`.
        unsafe { KeAcquireSpinLockAtDpcLevel(self.lock.get()) };
        SpinLockGuard { owner: self, old_irql: None }
    }

    /// Acquires the lock at DISPATCH_LEVEL without reading the IRQL: `at` proves the caller runs there (NDIS
    /// said so in its callback flags, or the caller holds another spin lock). No CR8 read, no IRQL change.
    pub fn lock_dpc(&self, at: AtDispatch<'_>) -> SpinLockGuard<'_, T> {
        let _ = at;
        // SAFETY: the caller runs at DISPATCH_LEVEL (what an `AtDispatch` proves); the lock is valid as in
        // `lock`.
        unsafe { KeAcquireSpinLockAtDpcLevel(self.lock.get()) };
        SpinLockGuard { owner: self, old_irql: None }
    }

    /// Mutable access without locking, when the caller owns the lock exclusively.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<T> core::fmt::Debug for SpinLock<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Printing must not take the lock (it may be held by the caller).
        f.write_str("SpinLock { .. }")
    }
}

/// Proof that the code holding it runs at DISPATCH_LEVEL, for as long as `'a` lasts: a held spin lock
/// ([`SpinLockGuard::at_dispatch`]), or NDIS's word in a callback's flags ([`AtDispatch::assume`]).
#[derive(Debug, Clone, Copy)]
pub struct AtDispatch<'a>(core::marker::PhantomData<&'a ()>);

impl AtDispatch<'_> {
    /// # Safety
    ///
    /// The caller runs at DISPATCH_LEVEL and stays there while the value (and its copies) live, e.g. NDIS
    /// passed NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL to the callback that creates it and does not keep it.
    pub unsafe fn assume() -> Self {
        AtDispatch(core::marker::PhantomData)
    }
}

/// Proof that a [`SpinLock`] is held; releases it when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct SpinLockGuard<'a, T> {
    owner: &'a SpinLock<T>,
    /// The IRQL to return to, or `None` when acquired at DISPATCH_LEVEL.
    old_irql: Option<KIRQL>,
}

impl<T> core::fmt::Debug for SpinLockGuard<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SpinLockGuard { .. }")
    }
}

impl<T> SpinLockGuard<'_, T> {
    /// Holding a spin lock means running at DISPATCH_LEVEL until it is released.
    pub fn at_dispatch(&self) -> AtDispatch<'_> {
        AtDispatch(core::marker::PhantomData)
    }
}

impl<T> Deref for SpinLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while the lock is held (type invariant of SpinLock).
        unsafe { &*self.owner.data.get() }
    }
}

impl<T> DerefMut for SpinLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only access through the guard.
        unsafe { &mut *self.owner.data.get() }
    }
}

impl<T> Drop for SpinLockGuard<'_, T> {
    fn drop(&mut self) {
        match self.old_irql {
            // SAFETY: acquired by KeAcquireSpinLockRaiseToDpc, which returned `old`.
            Some(old) => unsafe { KeReleaseSpinLock(self.owner.lock.get(), old) },
            // SAFETY: acquired by KeAcquireSpinLockAtDpcLevel; we are still at DISPATCH_LEVEL.
            None => unsafe { KeReleaseSpinLockFromDpcLevel(self.owner.lock.get()) },
        }
    }
}

/// A kernel event (`KEVENT`): a notification event (set once, waited on with or without a timeout), or a
/// synchronization event (the basis of [`Gate`]).
///
/// # Invariants
///
/// After [`Event::init`] the KEVENT is initialised at its final address and never moves (the event lives in
/// a pool block: the driver globals).
pub struct Event {
    ev: UnsafeCell<ndis_sys::KEVENT>,
}

// SAFETY: a KEVENT is designed for concurrent use by any number of threads through the Ke routines.
unsafe impl Sync for Event {}
// SAFETY: as above; it has no thread affinity.
unsafe impl Send for Event {}

impl core::fmt::Debug for Event {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Event { .. }")
    }
}

impl Event {
    /// An event to be initialised with [`Event::init`] once it is at its final address.
    pub const fn new() -> Self {
        // SAFETY: KEVENT is plain data (a dispatcher header); all-zero is a valid, if uninitialised, value.
        Self { ev: UnsafeCell::new(unsafe { core::mem::zeroed() }) }
    }

    /// Initialises the event, not signalled. Call once, at the event's final address, before other use.
    pub fn init(&self) {
        // SAFETY: `ev` is this event's storage at its final address (type invariant); any IRQL <= DISPATCH.
        unsafe { ndis_sys::KeInitializeEvent(self.ev.get(), ndis_sys::NotificationEvent, 0) }
    }

    /// Signals the event (IRQL <= DISPATCH_LEVEL).
    pub fn set(&self) {
        // SAFETY: an initialised event; Wait = FALSE, so any IRQL <= DISPATCH_LEVEL is allowed.
        let _ = unsafe { ndis_sys::KeSetEvent(self.ev.get(), 0, 0) };
    }

    /// Initialises the event as a synchronization (auto-reset) event: a wait that succeeds resets it, and a
    /// set releases one waiter. Same placement rule as [`Event::init`].
    pub fn init_synchronization(&self, signalled: bool) {
        // SAFETY: as in `init`.
        unsafe { ndis_sys::KeInitializeEvent(self.ev.get(), ndis_sys::SynchronizationEvent, u8::from(signalled)) }
    }

    /// Waits at most `ms` milliseconds at PASSIVE_LEVEL; true if the event was signalled.
    pub fn wait_ms(&self, ms: u32) -> bool {
        // A negative time is relative, in 100 ns units.
        self.wait_for(Some(-(i64::from(ms) * 10_000)))
    }

    /// Waits until the event is signalled (PASSIVE_LEVEL only; false without waiting elsewhere). For waits
    /// whose end NDIS or the kernel guarantees, such as the completion of a cancelled request.
    pub fn wait(&self) -> bool {
        self.wait_for(None)
    }

    fn wait_for(&self, timeout: Option<i64>) -> bool {
        if irql::current() != irql::PASSIVE_LEVEL {
            return false;
        }
        let mut t = ndis_sys::LARGE_INTEGER { QuadPart: timeout.unwrap_or(0) };
        let t = if timeout.is_some() { &mut t as *mut _ } else { core::ptr::null_mut() };
        // SAFETY: an initialised event; PASSIVE_LEVEL (checked) allows any timeout, including none (null).
        let status = unsafe {
            ndis_sys::KeWaitForSingleObject(self.ev.get().cast(), ndis_sys::Executive, ndis_sys::KernelMode, 0, t)
        };
        status == ndis_sys::STATUS_SUCCESS
    }
}

/// A lock for PASSIVE_LEVEL code paths that call into NDIS and wait (a synchronization event used as a
/// mutex, the way NDIS samples serialise OID sequences). Not usable at DISPATCH_LEVEL.
///
/// # Invariants
///
/// As for [`Event`]: initialised in place with [`Gate::init`] before use, never moved afterwards.
pub struct Gate {
    ev: Event,
}

impl core::fmt::Debug for Gate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Gate { .. }")
    }
}

impl Gate {
    pub const fn new() -> Self {
        Self { ev: Event::new() }
    }

    /// Initialises the gate, open. Call once at its final address.
    pub fn init(&self) {
        self.ev.init_synchronization(true);
    }

    /// Enters the gate (waiting for the holder to leave); `None` if not at PASSIVE_LEVEL.
    pub fn enter(&self) -> Option<GateGuard<'_>> {
        self.ev.wait().then_some(GateGuard { gate: self })
    }
}

/// Proof of being inside a [`Gate`]; leaves it when dropped.
#[must_use = "the gate opens again as soon as the guard is dropped"]
#[derive(Debug)]
pub struct GateGuard<'a> {
    gate: &'a Gate,
}

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        self.gate.ev.set();
    }
}

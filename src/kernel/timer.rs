//! A one-shot kernel timer with its DPC (`KTIMER` + `KDPC`), for deadlines of waiting requests.
//!
//! Teardown rule: the owner cancels the timer and then calls [`Timer::flush`] (KeFlushQueuedDpcs) before
//! freeing the memory the DPC's context points to, since a DPC already queued still runs after a cancel.

use core::cell::UnsafeCell;
use core::ffi::c_void;
use ndis_sys::{KDPC, KTIMER, LARGE_INTEGER};

/// The routine a [`Timer`] runs at DISPATCH_LEVEL when it expires: `(dpc, context, arg1, arg2)`.
pub type DpcRoutine = unsafe extern "system" fn(*mut KDPC, *mut c_void, *mut c_void, *mut c_void);

/// # Invariants
///
/// After [`Timer::init`] both objects are initialised at their final address and never move (the timer lives
/// inside a pool block).
pub struct Timer {
    timer: UnsafeCell<KTIMER>,
    dpc: UnsafeCell<KDPC>,
}

// SAFETY: KTIMER and KDPC are designed for concurrent use through the Ke routines.
unsafe impl Sync for Timer {}
// SAFETY: as above; no thread affinity.
unsafe impl Send for Timer {}

impl core::fmt::Debug for Timer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Timer { .. }")
    }
}

impl Timer {
    pub const fn new() -> Self {
        // SAFETY: KTIMER and KDPC are plain data; all-zero is a valid, if uninitialised, value.
        unsafe { Self { timer: UnsafeCell::new(core::mem::zeroed()), dpc: UnsafeCell::new(core::mem::zeroed()) } }
    }

    /// Initialises the timer to run `routine(context)` when it expires. Once, at the final address.
    pub fn init(&self, routine: DpcRoutine, context: *const c_void) {
        // SAFETY: the objects are this timer's storage at its final address (type invariant).
        unsafe {
            ndis_sys::KeInitializeTimer(self.timer.get());
            ndis_sys::KeInitializeDpc(self.dpc.get(), Some(routine), context.cast_mut());
        }
    }

    /// (Re)arms the timer to expire `ms` milliseconds from now (IRQL <= DISPATCH_LEVEL); true if it was
    /// armed already (the earlier due time is replaced).
    pub fn set_ms(&self, ms: u32) -> bool {
        // A negative due time is relative, in 100 ns units.
        let due = LARGE_INTEGER { QuadPart: -(i64::from(ms.max(1)) * 10_000) };
        // SAFETY: initialised objects (type invariant); IRQL <= DISPATCH_LEVEL.
        unsafe { ndis_sys::KeSetTimer(self.timer.get(), due, self.dpc.get()) != 0 }
    }

    /// Disarms the timer; true if it was armed (its DPC will then not run for that expiry).
    pub fn cancel(&self) -> bool {
        // SAFETY: an initialised timer; IRQL <= DISPATCH_LEVEL.
        unsafe { ndis_sys::KeCancelTimer(self.timer.get()) != 0 }
    }

    /// Waits until every queued DPC has run (PASSIVE_LEVEL).
    pub fn flush() {
        if super::irql::current() == super::irql::PASSIVE_LEVEL {
            // SAFETY: PASSIVE_LEVEL (checked).
            unsafe { ndis_sys::KeFlushQueuedDpcs() };
        }
    }
}

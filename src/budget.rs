//! The driver-wide budget of non-paged pool that callers can make the driver hold. Pure logic, no FFI.
//!
//! Receive queues (each handle's, up to 64 MiB), the bindings' send slots (`kernel::sendpool`), and a fixed
//! charge per open handle draw on one budget — by default [`DEFAULT_BYTES`] (256 MiB), settable in the
//! service's registry key: `Parameters\PoolBudgetMiB` (REG_DWORD, [`MIN_MIB`]..=[`MAX_MIB`]), read at
//! DriverEntry. A request that would go past it fails with STATUS_QUOTA_EXCEEDED and changes nothing; the
//! budget is given back when what it paid for is freed ([`Charge`]'s `Drop`), so a closed handle's share is
//! free again at once.
//! Many handles cannot exhaust pool either: each one is charged [`HANDLE_COST`] for as long as it exists,
//! and holds at most [`MAX_PENDED`] waiting requests.

use crate::error::{Error, Result};
use core::sync::atomic::{AtomicUsize, Ordering};

/// The budget when the registry does not set one.
pub const DEFAULT_BYTES: usize = 256 << 20;
/// Bounds of `Parameters\PoolBudgetMiB`; a value outside them is ignored (the default applies).
pub const MIN_MIB: u32 = 1;
pub const MAX_MIB: u32 = 4096;
/// What one open handle is charged besides its queue: its state, its waiting-request lists and timer.
pub const HANDLE_COST: usize = 4096;
/// Requests (blocking reads, event waits) one handle may have waiting at once; more is STATUS_QUOTA_EXCEEDED.
pub const MAX_PENDED: usize = 256;

/// The budget in bytes for a `PoolBudgetMiB` registry value (`None`: absent, or not a REG_DWORD).
pub fn limit_from_registry(mib: Option<u32>) -> usize {
    match mib {
        Some(m) if (MIN_MIB..=MAX_MIB).contains(&m) => (m as usize) << 20,
        _ => DEFAULT_BYTES,
    }
}

/// A budget: a limit and what is charged against it.
#[derive(Debug)]
pub struct Budget {
    limit: AtomicUsize,
    used: AtomicUsize,
}

impl Budget {
    pub const fn new(limit: usize) -> Self {
        Self { limit: AtomicUsize::new(limit), used: AtomicUsize::new(0) }
    }

    /// Sets the limit (DriverEntry, before anything is charged).
    pub fn set_limit(&self, bytes: usize) {
        self.limit.store(bytes, Ordering::Release);
    }

    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Acquire)
    }

    /// Bytes charged now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Charges `bytes`, or fails with STATUS_QUOTA_EXCEEDED if that would pass the limit.
    pub fn charge(&'static self, bytes: usize) -> Result<Charge> {
        let limit = self.limit();
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= limit)
            })
            .map_err(|_| Error::QUOTA_EXCEEDED)?;
        Ok(Charge { budget: self, bytes })
    }
}

/// Bytes charged to a budget, given back when dropped.
#[derive(Debug)]
#[must_use = "dropping a charge gives the bytes back at once"]
pub struct Charge {
    budget: &'static Budget,
    bytes: usize,
}

impl Charge {
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// The driver's budget.
pub static POOL: Budget = Budget::new(DEFAULT_BYTES);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_stop_at_the_limit_and_come_back_when_dropped() {
        static B: Budget = Budget::new(100);
        let a = B.charge(60).unwrap();
        assert_eq!(B.charge(41).err(), Some(Error::QUOTA_EXCEEDED));
        let b = B.charge(40).unwrap();
        assert_eq!(B.used(), 100);
        assert_eq!(B.charge(1).err(), Some(Error::QUOTA_EXCEEDED));
        drop(a);
        assert_eq!(B.used(), 40);
        assert_eq!(B.charge(usize::MAX).err(), Some(Error::QUOTA_EXCEEDED), "no overflow");
        drop(b);
        assert_eq!(B.used(), 0);
    }

    #[test]
    fn the_registry_value_is_bounded() {
        assert_eq!(limit_from_registry(None), 256 << 20);
        assert_eq!(limit_from_registry(Some(0)), 256 << 20);
        assert_eq!(limit_from_registry(Some(4097)), 256 << 20);
        assert_eq!(limit_from_registry(Some(8)), 8 << 20);
        assert_eq!(limit_from_registry(Some(4096)), 4096 << 20);
    }
}

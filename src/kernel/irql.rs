//! IRQL: the current level, read the way the WDK's inline `KeGetCurrentIrql` does on x64 (CR8).
//!
//! `KeGetCurrentIrql` is a header inline in WDK 10.0.16299 (a HAL export only from 10.0.26100 on), so
//! importing it would stop the driver loading on older Windows 10.

use ndis_sys::KIRQL;
pub use ndis_sys::{DISPATCH_LEVEL, PASSIVE_LEVEL};

/// Returns the processor's current IRQL.
#[inline]
pub fn current() -> KIRQL {
    let cr8: u64;
    // SAFETY: reading CR8 is what KeGetCurrentIrql compiles to on x64; it is allowed at ring 0 at any IRQL,
    // touches no memory and no flags.
    unsafe { core::arch::asm!("mov {}, cr8", out(reg) cr8, options(nomem, nostack, preserves_flags)) };
    // CAST: CR8 holds the task priority in its low 4 bits; IRQLs on x64 are 0..=15.
    (cr8 & 0xF) as KIRQL
}

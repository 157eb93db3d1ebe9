//! Timestamps for received frames.

/// A monotonic time in 100 ns units (KeQueryPerformanceCounter scaled by its frequency).
pub fn now_100ns() -> u64 {
    let mut freq = ndis_sys::LARGE_INTEGER { QuadPart: 0 };
    // SAFETY: callable at any IRQL; `freq` is a valid out pointer.
    let counter = unsafe { ndis_sys::KeQueryPerformanceCounter(&mut freq) };
    // SAFETY: both values were written as QuadPart by the kernel.
    let (c, f) = unsafe { (counter.QuadPart, freq.QuadPart) };
    if f <= 0 || c < 0 {
        return 0;
    }
    // CAST: both are positive (checked); the 128-bit product cannot overflow, and the quotient of a
    // counter that started at boot fits u64.
    ((c as u128 * 10_000_000) / f as u128) as u64
}

//! Measuring how much stack driver code uses, and a guard page that turns a runaway driver into a reported
//! fault instead of a dead test process.
//!
//! Windows gives a kernel thread 24 KiB (`KERNEL_STACK_SIZE`, 0x6000) on x64. Processor threads here get far
//! more, because host export code runs on the same stack below the driver's frames and is not written to a
//! kernel budget. So the host measures instead: before each host→driver call it paints [`PAINT_BYTES`] of the
//! unused stack below the stack pointer with a pattern, and after the call it finds the deepest byte that no
//! longer holds the pattern. Nested calls (an export calling back into the driver) first fold what the outer
//! call has used so far into the outer record, then repaint below themselves.
//!
//! The outermost call of each processor also makes the page just below the painted area `PROT_NONE` for the
//! duration of the call: a driver that recurses without bound faults there, inside its own image, and the
//! fault handler parks the processor and reports the fault like any other; a host export that overflows
//! under the driver's frames hits the same page and is reported the same way ([`in_guard_page`]). (The processor threads are std
//! threads with 1 MiB stacks; the page lies well inside that mapping and gets its protection back when the
//! call returns, so the thread's own stack is never left damaged.) The measurement has a granularity of
//! [`MARGIN`]: the bytes just below the painter's own frame are left alone.

//!
//! Cost: painting and scanning are bounded by what this thread has needed so far. The painted depth is
//! twice the deepest use seen on the thread (at least [`MIN_PAINT`], twice the driver's budget, so an
//! overrun of the budget is always seen; at most [`PAINT_BYTES`]); a call that uses all of the painted area
//! is reported as at least that deep and doubles the depth for the next one. The scan compares 64 bytes
//! at a time. The guard page is armed once per thread at a fixed distance ([`PAINT_BYTES`] below the
//! outermost call's stack pointer) and left armed between calls (re-armed only when that page moves): host
//! code of the thread that reaches it outside a driver call just disarms it ([`guard_fault`]), and the
//! thread disarms it when it ends, so no stack is ever left with a protected page.
//!
//! Sampling ([`Probe::begin_sampled`], `HostConfig::stack_sample`): after a thread's first [`SAMPLE_WARMUP`]
//! outermost calls, only one in N is painted and scanned (with the calls nested in it); the others, and
//! what they nest, are not measured, while the guard page stays armed below them all.

use std::cell::{Cell, RefCell};

/// The x64 kernel stack (`KERNEL_STACK_SIZE`).
pub const KERNEL_STACK_SIZE: usize = 0x6000;
/// Stack the host's own export code may use below a driver frame. Measured with `Host::stack_report` in
/// the exports' unit test `stack_depth_is_measured_per_call_and_host_export_frames_are_small` (debug build,
/// a stand-in routine of a few hundred bytes included): KeWaitForSingleObject with a timeout, through its
/// trace and condition variable, 5040 bytes; the time and processor queries 2312 bytes. Windows' own
/// export frames share the 24 KiB too, and the frames Windows runs above a driver routine (thread start,
/// I/O manager or NDIS dispatch) are not counted by the measurement at all, so a driver call, measured
/// with the host frames under it, must stay within `KERNEL_STACK_SIZE - HOST_FRAME_ALLOWANCE`.
pub const HOST_FRAME_ALLOWANCE: usize = 8 * 1024;
/// The deepest a measured driver call may go before the verifier reports it.
pub const STACK_BUDGET: usize = KERNEL_STACK_SIZE - HOST_FRAME_ALLOWANCE;

/// The most bytes painted below the stack pointer before a call, and the guard page's distance.
pub const PAINT_BYTES: usize = 64 * 1024;
/// The fewest bytes painted: twice the driver's stack budget.
pub const MIN_PAINT: usize = 2 * STACK_BUDGET;
/// Bytes left unpainted just below the painter's frame (its own callees' frames live there).
pub const MARGIN: usize = 512;
const PATTERN: u8 = 0xC5;
/// Outermost calls of a thread that are always measured before sampling starts.
pub const SAMPLE_WARMUP: u64 = 256;
const PAGE: usize = 4096;

thread_local! {
    /// Per active call on this thread (outermost first): the lowest stack address seen in use so far.
    static LEVELS: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    /// The lowest painted address of the outermost call (0 when none): nested calls paint down to it only,
    /// so every byte they scan was painted.
    static FLOOR: Cell<usize> = const { Cell::new(0) };
    /// This thread's armed guard page (0 when none). Const-initialised: the fault handler reads it.
    static GUARD_PAGE: Cell<usize> = const { Cell::new(0) };
    /// Outermost calls this thread has begun (for sampling).
    static OUTER_CALLS: Cell<u64> = const { Cell::new(0) };
    /// Unmeasured calls active on this thread (an unmeasured outermost call and those nested in it).
    static SKIPPING: Cell<u32> = const { Cell::new(0) };
    /// How deep the next call paints (0: not set yet, [`MIN_PAINT`]).
    static PAINT: Cell<usize> = const { Cell::new(0) };
    /// Disarms the guard page when the thread ends.
    static DISARM: Disarm = const { Disarm };
}

/// Removes the thread's guard page in its TLS destructor (the thread's stack mapping may be reused).
struct Disarm;

impl Drop for Disarm {
    fn drop(&mut self) {
        disarm();
    }
}

fn disarm() {
    let g = GUARD_PAGE.with(|g| g.replace(0));
    if g != 0 {
        // SAFETY: the page this thread protected inside its own stack mapping.
        unsafe { libc::mprotect(g as *mut libc::c_void, PAGE, libc::PROT_READ | libc::PROT_WRITE) };
    }
}

/// Gives the thread's guard page back if it lies in `lo..hi` (a stack about to be unmapped). Reads only
/// const thread-locals: safe from another thread-local's destructor.
pub fn disarm_within(lo: usize, hi: usize) {
    let g = GUARD_PAGE.with(Cell::get);
    if g >= lo && g < hi {
        disarm();
    }
}

/// Forgets the calls active on this thread after their stack was abandoned (a fatal fault in an inline
/// request, `native::inline`): none of them ends, so the next call is this thread's outermost again. The
/// guard page goes back to read-write on the abandoned stack, which stays mapped.
pub fn abandon_calls() {
    LEVELS.with(|l| l.borrow_mut().clear());
    FLOOR.with(|f| f.set(0));
    SKIPPING.with(|c| c.set(0));
    disarm();
}

/// Called by the fault handler for a fault at `addr`: `Some(true)` when it hit the current thread's guard
/// page inside a driver call (a stack overflow: fatal); `Some(false)` when it hit it between calls, in host
/// code (the page is disarmed and the access can simply be retried); `None` when it is not the guard page.
/// Async-signal-safe (thread-locals with const initialisers and one mprotect).
pub fn guard_fault(addr: usize) -> Option<bool> {
    let g = GUARD_PAGE.with(Cell::get);
    if g == 0 || addr < g || addr >= g + PAGE {
        return None;
    }
    if FLOOR.with(Cell::get) != 0 {
        return Some(true);
    }
    disarm();
    Some(false)
}

/// The current stack pointer.
#[inline(always)]
fn stack_pointer() -> usize {
    let sp: usize;
    // SAFETY: reads RSP into a register; no memory is touched.
    unsafe { std::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}

/// One measured call: created right before the driver is entered, finished right after it returns.
#[derive(Debug)]
pub struct Probe {
    /// Stack pointer of the painter (the depth reference).
    top: usize,
    /// Lowest painted address.
    bottom: usize,
    /// Whether this is the outermost call of its thread.
    outermost: bool,
    /// Whether the call is measured (painted and scanned); see [`Probe::begin_sampled`].
    measured: bool,
}

/// The lowest address in `bottom..top` that no longer holds the pattern (`top` if none). Compares 64 bytes
/// at a time from the bottom, then finds the byte within the first changed block.
#[inline(never)]
fn lowest_used(bottom: usize, top: usize) -> usize {
    let byte = |a: usize| {
        // SAFETY: `bottom..top` is part of this thread's stack below its painter's frame, mapped read-write
        // (the guard page lies below `bottom`); a read of one byte of dead stack nobody else touches.
        unsafe { std::ptr::read_volatile(a as *const u8) }
    };
    let word = u64::from_ne_bytes([PATTERN; 8]);
    let mut a = bottom;
    while a < top && a % 64 != 0 {
        if byte(a) != PATTERN {
            return a;
        }
        a += 1;
    }
    while a + 64 <= top {
        let mut diff = 0;
        for k in 0..8 {
            // SAFETY: as above, an aligned 8-byte read inside the range.
            diff |= word ^ unsafe { std::ptr::read((a + 8 * k) as *const u64) };
        }
        if diff != 0 {
            break;
        }
        a += 64;
    }
    while a < top {
        if byte(a) != PATTERN {
            return a;
        }
        a += 1;
    }
    top
}

impl Probe {
    /// Folds the enclosing call's use so far into its record, paints below the stack pointer, and (for the
    /// outermost call) arms the guard page if it is not armed there yet.
    #[inline(never)]
    pub fn begin() -> Self {
        Self::begin_sampled(1)
    }

    /// As [`Probe::begin`], but after this thread's first [`SAMPLE_WARMUP`] outermost calls only one
    /// outermost call in `every` is measured, with what it nests; the others cost two thread-local updates.
    #[inline(never)]
    pub fn begin_sampled(every: u32) -> Self {
        let unmeasured = Self { top: 0, bottom: 0, outermost: false, measured: false };
        if SKIPPING.with(Cell::get) > 0 {
            SKIPPING.with(|c| c.set(c.get() + 1));
            return unmeasured;
        }
        if FLOOR.with(Cell::get) == 0 && every > 1 {
            let n = OUTER_CALLS.with(|c| {
                c.set(c.get().wrapping_add(1));
                c.get()
            });
            if n > SAMPLE_WARMUP && n % u64::from(every) != 0 {
                SKIPPING.with(|c| c.set(1));
                return unmeasured;
            }
        }
        let sp = stack_pointer();
        let top = sp - MARGIN;
        let floor = FLOOR.with(Cell::get);
        let outermost = floor == 0;
        let depth = PAINT.with(Cell::get).clamp(MIN_PAINT, PAINT_BYTES);
        let bottom = (top - depth).max(floor);
        LEVELS.with(|l| {
            let mut l = l.borrow_mut();
            if let Some(outer) = l.last_mut() {
                *outer = (*outer).min(lowest_used(bottom, top));
            }
            l.push(usize::MAX);
        });
        // SAFETY: `bottom..top` lies below this frame's stack pointer (minus a margin for the callees of this
        // function), inside this thread's 1 MiB stack: dead memory no frame uses, above any guard page.
        unsafe { std::ptr::write_bytes(bottom as *mut u8, PATTERN, top - bottom) };
        if outermost {
            FLOOR.with(|f| f.set(bottom));
            let page = (top - PAINT_BYTES - PAGE) & !(PAGE - 1);
            if GUARD_PAGE.with(Cell::get) != page {
                disarm();
                // SAFETY: the page lies below the largest painted area inside this thread's stack mapping;
                // nothing lives there; host code reaching it between calls disarms it (`guard_fault`), and
                // the thread's end does too (`Disarm`).
                let r = unsafe { libc::mprotect(page as *mut libc::c_void, PAGE, libc::PROT_NONE) };
                if r == 0 {
                    GUARD_PAGE.with(|g| g.set(page));
                    DISARM.with(|_| ());
                }
            }
        }
        Self { top, bottom, outermost, measured: true }
    }

    /// The deepest stack use of the call, in bytes below the caller's stack pointer (at least the painted
    /// depth when the call used all of it; the next call then paints twice as deep); `None` when the call
    /// was not measured.
    #[inline(never)]
    pub fn end_sampled(self) -> Option<usize> {
        if !self.measured {
            SKIPPING.with(|c| c.set(c.get().saturating_sub(1)));
            return None;
        }
        let mine = LEVELS.with(|l| {
            let mut l = l.borrow_mut();
            let mine = l.pop().unwrap_or(usize::MAX).min(lowest_used(self.bottom, self.top));
            if let Some(outer) = l.last_mut() {
                *outer = (*outer).min(mine);
            }
            mine
        });
        if self.outermost {
            FLOOR.with(|f| f.set(0));
        }
        let used = (self.top + MARGIN).saturating_sub(mine.min(self.top));
        let painted = self.top - self.bottom;
        let want = if mine <= self.bottom { 2 * painted } else { 2 * used };
        PAINT.with(|p| p.set(p.get().max(want).clamp(MIN_PAINT, PAINT_BYTES)));
        Some(used)
    }

    /// [`Probe::end_sampled`] of a call begun with [`Probe::begin`] (always measured).
    pub fn end(self) -> usize {
        self.end_sampled().unwrap_or(0)
    }
}

/// Touches the byte `bytes + 1` below the stack pointer, as a callee that deep would (for tests). Strictly
/// below: in an optimised build this function has no frame, and the word at the stack pointer is its return
/// address.
#[cfg(test)]
#[inline(never)]
pub fn use_stack(bytes: usize) {
    let off = -(bytes as isize) - 1;
    // SAFETY: writes one byte below the stack pointer, inside this thread's stack (the tests use at most
    // 32 KiB of a 1 MiB stack); nothing lives below the stack pointer.
    unsafe { std::arch::asm!("mov byte ptr [rsp + {off}], 1", off = in(reg) off, options(nostack)) };
}

/// Touches the stack every 256 bytes down to `bytes` below the stack pointer, as runaway recursion would
/// (for tests).
#[cfg(test)]
#[inline(never)]
pub fn touch_stack(bytes: usize) {
    let mut k = 0;
    while k < bytes {
        use_stack(k);
        k += 256;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_measures_every_call_at_first_then_one_in_n_with_what_it_nests() {
        std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(|| {
                let call = |nested: bool| {
                    let outer = Probe::begin_sampled(16);
                    let inner = nested.then(|| Probe::begin_sampled(16));
                    use_stack(10_000);
                    let inner = inner.map(Probe::end_sampled);
                    (outer.end_sampled(), inner)
                };
                for _ in 0..SAMPLE_WARMUP {
                    let (d, _) = call(false);
                    assert!(d.is_some_and(|d| d >= 10_000 - MARGIN), "{d:?}");
                }
                let (mut measured, mut skipped) = (0, 0);
                for _ in 0..64 {
                    match call(true) {
                        (Some(d), Some(Some(i))) => {
                            assert!(d >= i && i >= 10_000 - MARGIN, "{d} {i}");
                            measured += 1;
                        }
                        (None, Some(None)) => skipped += 1,
                        other => panic!("an outer call and the call nested in it disagree: {other:?}"),
                    }
                }
                assert_eq!((measured, skipped), (4, 60));
                assert_eq!(SKIPPING.with(Cell::get), 0, "every unmeasured call ended");
                // An unsampled probe is always measured.
                let p = Probe::begin();
                use_stack(5_000);
                assert!(p.end() >= 5_000 - MARGIN);
            })
            .expect("thread")
            .join()
            .expect("the sampling checks passed");
    }

    #[test]
    fn the_probe_sees_the_depth_a_call_used() {
        std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(|| {
                let p = Probe::begin();
                use_stack(10_000);
                let d = p.end();
                assert!((10_000 - MARGIN..10_000 + MARGIN).contains(&d), "{d}");
                // Nested: the outer sees the inner's depth too.
                let outer = Probe::begin();
                let inner = Probe::begin();
                use_stack(20_000);
                let di = inner.end();
                let d = outer.end();
                assert!(di >= 20_000 - MARGIN && d >= di && d < 20_000 + 4 * MARGIN, "{di} {d}");
            })
            .expect("thread")
            .join()
            .expect("joined");
    }
}

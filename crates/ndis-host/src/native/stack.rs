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

use std::cell::{Cell, RefCell};

/// Bytes painted below the stack pointer before each call.
pub const PAINT_BYTES: usize = 64 * 1024;
/// Bytes left unpainted just below the painter's frame (its own callees' frames live there).
pub const MARGIN: usize = 512;
const PATTERN: u8 = 0xC5;
const PAGE: usize = 4096;

thread_local! {
    /// Per active call on this thread (outermost first): the lowest stack address seen in use so far.
    static LEVELS: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    /// The lowest painted address of the outermost call (0 when none): nested calls paint down to it only,
    /// so every byte they scan was painted.
    static FLOOR: Cell<usize> = const { Cell::new(0) };
    /// This thread's armed guard page (0 when none). Const-initialised: the fault handler reads it.
    static GUARD_PAGE: Cell<usize> = const { Cell::new(0) };
}

/// Whether `addr` lies in the current thread's armed guard page (called by the fault handler, so a host
/// export that overflows under the driver's frames is reported as well, not only driver code).
pub fn in_guard_page(addr: usize) -> bool {
    let g = GUARD_PAGE.with(Cell::get);
    g != 0 && addr >= g && addr < g + PAGE
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
    /// The guard page this probe set, to remove at the end.
    guard: usize,
    /// Whether this is the outermost call of its thread.
    outermost: bool,
}

/// The lowest address in `bottom..top` that no longer holds the pattern (`top` if none). Scans 8 bytes at
/// a time from the bottom, then the byte within the first changed word.
#[inline(never)]
fn lowest_used(bottom: usize, top: usize) -> usize {
    let byte = |a: usize| {
        // SAFETY: `bottom..top` is part of this thread's stack below its painter's frame, mapped read-write
        // (the guard page lies below `bottom`); a volatile read of one byte.
        unsafe { std::ptr::read_volatile(a as *const u8) }
    };
    let word = u64::from_ne_bytes([PATTERN; 8]);
    let mut a = bottom;
    while a < top && a % 8 != 0 {
        if byte(a) != PATTERN {
            return a;
        }
        a += 1;
    }
    while a + 8 <= top {
        // SAFETY: as above, an aligned 8-byte read inside the range.
        let w = unsafe { std::ptr::read_volatile(a as *const u64) };
        if w != word {
            break;
        }
        a += 8;
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
    /// outermost call) arms the guard page.
    #[inline(never)]
    pub fn begin() -> Self {
        let sp = stack_pointer();
        let top = sp - MARGIN;
        let floor = FLOOR.with(Cell::get);
        let outermost = floor == 0;
        let bottom = (top - PAINT_BYTES).max(floor);
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
        let mut guard = 0;
        if outermost {
            FLOOR.with(|f| f.set(bottom));
            let page = (bottom - PAGE) & !(PAGE - 1);
            // SAFETY: the page lies below the painted area inside this thread's stack mapping; nothing lives
            // there, and `end` restores read-write access before any frame can grow into it legitimately.
            let r = unsafe { libc::mprotect(page as *mut libc::c_void, PAGE, libc::PROT_NONE) };
            if r == 0 {
                guard = page;
                GUARD_PAGE.with(|g| g.set(page));
            }
        }
        Self { top, bottom, guard, outermost }
    }

    /// The deepest stack use of the call, in bytes below the caller's stack pointer.
    #[inline(never)]
    pub fn end(self) -> usize {
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
        if self.guard != 0 {
            GUARD_PAGE.with(|g| g.set(0));
            // SAFETY: the page this probe protected, part of this thread's stack mapping.
            unsafe { libc::mprotect(self.guard as *mut libc::c_void, PAGE, libc::PROT_READ | libc::PROT_WRITE) };
        }
        (self.top + MARGIN).saturating_sub(mine.min(self.top))
    }
}

/// Touches the byte `bytes` below the stack pointer, as a callee that deep would (for tests).
#[cfg(test)]
#[inline(never)]
pub fn use_stack(bytes: usize) {
    let off = -(bytes as isize);
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

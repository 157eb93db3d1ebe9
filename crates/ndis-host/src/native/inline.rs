//! Host work run on the thread that asks for it, with no hand-over to another thread
//! (`HostConfig::inline_requests`: what the I/O manager does on Windows, where a dispatch routine runs in
//! the caller's thread; `HostConfig::inline_processors`: processor work on the thread that plays the NIC).
//!
//! The driver still gets a kernel stack of its own: each thread keeps one stack (a corosensei coroutine
//! stack, with a guard page at its end and the stack probe's guard page inside it) and switches to it for
//! the job, so the driver's frames never share the caller's stack. That is what makes a fatal fault
//! survivable: the fault handler ([`trap`]) sends the coroutine back to the caller with "faulted" instead
//! of parking the thread for good, and the stack the fault happened on is abandoned — never reused nor
//! unmapped, because a frame on it (a KEVENT, an IO_STATUS_BLOCK) may still be referred to by a timer, a
//! DPC or another processor. The caller's wait in `Host::run_job` then finds the fault record as it does
//! for a processor thread, and the machine is down from then on. This module knows no machine:
//! `machine::run_inline` sets the thread's machine, IRQL and processor around [`run`].
//!
//! What this gives up: a routine that never returns blocks the caller instead of being reported as a hang
//! after `call_timeout`, and a routine that waits blocks it, as it would on Windows. Tests that run blocking
//! routines from one thread keep the default (a thread per request, the processors' own threads).

use corosensei::stack::{DefaultStack, Stack};
use corosensei::trap::CoroutineTrapHandler;
use corosensei::{Coroutine, CoroutineResult};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// What an inline job's coroutine returns: whether the job finished (false after a fatal fault). Its
/// result comes back through a slot (a trap handler's return type must be `Copy`).
type Outcome = bool;

/// A thread's kernel stack for inline jobs. Unmapped when the thread ends, after the stack probe's guard page
/// inside it is given back (whichever of the two thread-locals goes first), so no `mprotect` ever lands on a
/// mapping that took its place.
struct KernelStack(Option<DefaultStack>);

impl Drop for KernelStack {
    fn drop(&mut self) {
        if let Some(stack) = &self.0 {
            super::stack::disarm_within(stack.limit().get(), stack.base().get());
        }
    }
}

thread_local! {
    /// This thread's kernel stack for inline jobs, between jobs (taken while one runs).
    static STACK: RefCell<KernelStack> = const { RefCell::new(KernelStack(None)) };
    /// While an inline job runs on this thread: the way back from a fatal fault. Const-initialised and
    /// `Copy`: the fault handler reads it.
    static TRAP: Cell<Option<CoroutineTrapHandler<Outcome>>> = const { Cell::new(None) };
}

/// Runs `f` now, on this thread, on this thread's kernel stack (`stack_size` bytes when it has to be made).
/// `None` when it faulted fatally: the fault is recorded (`cpu::fatal_count`) and its stack abandoned.
/// The caller sets and restores the thread's machine, IRQL and processor around it.
pub fn run<R: 'static>(stack_size: usize, f: impl FnOnce() -> R + 'static) -> std::io::Result<Option<R>> {
    let stack = match STACK.with(|s| s.borrow_mut().0.take()) {
        Some(s) => s,
        None => DefaultStack::new(stack_size)?,
    };
    let slot: Rc<Cell<Option<R>>> = Rc::new(Cell::new(None));
    let out = Rc::clone(&slot);
    let mut co: Coroutine<(), (), Outcome, DefaultStack> = Coroutine::with_stack(stack, move |_, ()| {
        out.set(Some(f()));
        true
    });
    TRAP.with(|t| t.set(Some(co.trap_handler())));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| co.resume(())));
    TRAP.with(|t| t.set(None));
    let result = match result {
        Ok(r) => r,
        Err(panic) => {
            // A panic in the job's host code unwound its stack: its calls end as after a fault, the stack
            // is not reused, and the caller gets the panic.
            super::stack::abandon_calls();
            std::mem::forget(co);
            std::panic::resume_unwind(panic);
        }
    };
    match (result, slot.take()) {
        (CoroutineResult::Return(true), Some(r)) => {
            STACK.with(|s| s.borrow_mut().0 = Some(co.into_stack()));
            Ok(Some(r))
        }
        // Faulted (the coroutine never yields): the stack keeps the driver's frames for good.
        _ => {
            std::mem::forget(co);
            super::stack::abandon_calls();
            Ok(None)
        }
    }
}

/// Called by the fault handler for a fatal fault (already recorded): when it happened on this thread's
/// inline-request stack, points the interrupted context at a return from the coroutine with "faulted" and
/// says true; the handler then returns into it. Async-signal-safe: thread-locals with const initialisers
/// and a few words written at the top of the abandoned stack (above every frame of the driver).
pub(crate) fn trap(gregs: &mut [libc::greg_t; 23]) -> bool {
    let Some(handler) = TRAP.with(Cell::get) else { return false };
    // CAST: register numbers are small.
    let reg = |r: libc::c_int| r as usize;
    let Some(&sp) = gregs.get(reg(libc::REG_RSP)) else { return false };
    // CAST: the stack pointer's contents, an address.
    if !handler.stack_ptr_in_bounds(sp as usize) {
        return false;
    }
    TRAP.with(|t| t.set(None));
    // SAFETY: the fault happened on this coroutine's stack (checked above) while it runs, on this thread;
    // the trampoline writes a few words at the stack's top, over corosensei's own entry frame, and nothing on
    // the stack is used or dropped again; the registers below are exactly those it asks to be set.
    let regs = unsafe { handler.setup_trap_handler(|| false) };
    for (r, v) in [
        (libc::REG_RIP, regs.rip),
        (libc::REG_RSP, regs.rsp),
        (libc::REG_RBP, regs.rbp),
        (libc::REG_RDI, regs.rdi),
        (libc::REG_RSI, regs.rsi),
    ] {
        if let Some(g) = gregs.get_mut(reg(r)) {
            // CAST: register contents.
            *g = v as libc::greg_t;
        }
    }
    true
}

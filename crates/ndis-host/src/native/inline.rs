//! Requests served on the thread that issues them (`HostConfig::inline_requests`), with no hand-over to
//! another thread: what the I/O manager does on Windows, where a dispatch routine runs in the caller's thread.
//!
//! The driver still gets a kernel stack of its own: each caller thread keeps one 1 MiB stack (a corosensei
//! coroutine stack, with a guard page at its end and the stack probe's guard page inside it) and switches to
//! it for the request, so the driver's frames never share the caller's stack. That is what makes a fatal
//! fault survivable: the fault handler ([`trap`]) sends the coroutine back to the caller with "faulted"
//! instead of parking the thread for good, and the stack the fault happened on is abandoned — never reused
//! nor unmapped, because a frame on it (a KEVENT, an IO_STATUS_BLOCK) may still be referred to by a timer,
//! a DPC or another processor. The caller's wait in `Host::run_job` then finds the fault record as it does
//! for a processor thread, and the machine is down from then on.
//!
//! What this mode gives up: a dispatch routine that never returns blocks the caller instead of being
//! reported as a hang after `call_timeout`, and a routine that waits blocks it as it would on Windows.
//! Tests that run blocking routines from one thread keep the default (a thread per request).

use crate::machine::{Deliver, Inner, Job, CPU_STACK, CURRENT};
use corosensei::stack::DefaultStack;
use corosensei::trap::CoroutineTrapHandler;
use corosensei::{Coroutine, CoroutineResult};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

/// What an inline request's coroutine returns: whether the job finished (false after a fatal fault). Its
/// delivery comes back through a slot (a trap handler's return type must be `Copy`).
type Outcome = bool;

thread_local! {
    /// This thread's kernel stack for inline requests, between requests (taken while one runs).
    static STACK: RefCell<Option<DefaultStack>> = const { RefCell::new(None) };
    /// While an inline request runs on this thread: the way back from a fatal fault. Const-initialised and
    /// `Copy`: the fault handler reads it.
    static TRAP: Cell<Option<CoroutineTrapHandler<Outcome>>> = const { Cell::new(None) };
}

/// Runs `job` now, on this thread, as processor `processor` of machine `inner`, on this thread's kernel
/// stack; hands its result over unless it faulted (then the fault record tells the caller).
pub(crate) fn run(inner: &Arc<Inner>, processor: u32, job: Job) -> std::io::Result<()> {
    let stack = match STACK.with(|s| s.borrow_mut().take()) {
        Some(s) => s,
        None => DefaultStack::new(CPU_STACK)?,
    };
    let saved = ThreadState::enter(inner, processor);
    let slot: Rc<Cell<Option<Deliver>>> = Rc::default();
    let out = Rc::clone(&slot);
    let mut co: Coroutine<(), (), Outcome, DefaultStack> = Coroutine::with_stack(stack, move |_, ()| {
        out.set(Some(job()));
        true
    });
    TRAP.with(|t| t.set(Some(co.trap_handler())));
    let result = co.resume(());
    TRAP.with(|t| t.set(None));
    saved.leave();
    match (result, slot.take()) {
        (CoroutineResult::Return(true), Some(deliver)) => {
            STACK.with(|s| *s.borrow_mut() = Some(co.into_stack()));
            deliver();
        }
        // Faulted (the coroutine never yields): the stack keeps the driver's frames for good.
        _ => {
            std::mem::forget(co);
            super::stack::abandon_calls();
        }
    }
    Ok(())
}

/// The thread-locals a processor thread sets once and an inline request sets for its duration.
struct ThreadState {
    machine: usize,
    irql: u8,
    processor: u32,
    current: Option<Arc<Inner>>,
}

impl ThreadState {
    fn enter(inner: &Arc<Inner>, processor: u32) -> Self {
        let saved = Self {
            machine: super::cpu::machine(),
            irql: super::cpu::irql(),
            processor: super::cpu::processor(),
            current: CURRENT.with(|c| c.replace(Some(Arc::clone(inner)))),
        };
        super::cpu::set_machine(Arc::as_ptr(inner) as usize);
        super::cpu::set_irql(0);
        super::cpu::set_processor(processor);
        saved
    }

    fn leave(self) {
        super::cpu::set_machine(self.machine);
        super::cpu::set_irql(self.irql);
        super::cpu::set_processor(self.processor);
        CURRENT.with(|c| *c.borrow_mut() = self.current);
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

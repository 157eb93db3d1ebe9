//! Calls from the host into the driver: a routine on this processor at a given IRQL (a ProtocolXxx
//! handler, a DPC, a work item, a callback an export makes), a dispatch routine with an IRP, a cancel
//! routine; each traced, its stack measured against the kernel budget, its IRQL and critical regions checked
//! when it returns. The kernel, I/O-manager and NDIS models call the driver only through here.

use super::call;
use super::cpu;
use super::irp::IrpBlock;
use crate::machine::Inner;
use crate::trace::{Arg, Direction};
use crate::verifier::Rule;
use std::cell::Cell;

const PASSIVE: u8 = 0;
const DISPATCH: u8 = 2;

/// A traced value shown in hex.
fn hex(v: u64) -> Arg<'static> {
    Arg::Hex(v)
}

thread_local! {
    /// This thread's KernelApcDisable count: how many KeEnterCriticalRegion calls are not yet left.
    pub(crate) static CRITICAL: Cell<u32> = const { Cell::new(0) };
}

/// How deep the calling thread is in critical regions.
pub(crate) fn critical_depth() -> u32 {
    CRITICAL.with(Cell::get)
}

/// Sets the calling thread's critical-region depth (after a finding, so one bug is reported once).
pub(crate) fn set_critical_depth(depth: u32) {
    CRITICAL.with(|c| c.set(depth));
}

/// After a call into the driver that began at critical-region depth `before`: a region entered and not left
/// is APC_INDEX_MISMATCH on Windows (checked when the thread leaves the kernel); reported, then the depth is
/// put back so one bug is reported once.
pub(crate) fn check_critical_regions(inner: &Inner, name: &str, before: u32) {
    let after = critical_depth();
    if after != before {
        inner.violation(
            Rule::Apc,
            format!(
                "{name} returned with {} critical region(s) entered and not left (KeEnterCriticalRegion without \
                 KeLeaveCriticalRegion: bug check 0x1 APC_INDEX_MISMATCH)",
                i64::from(after) - i64::from(before)
            ),
        );
        set_critical_depth(before);
    }
}

/// Runs driver function `f` on this processor at `irql`, traced, checking the IRQL it returns at.
pub(crate) fn call_into_driver(inner: &Inner, irql: u8, name: &str, f: usize, args: &[(&'static str, u64)]) -> u64 {
    // The driver's own contexts must still be alive when the host calls back with them.
    for (arg, v) in args.iter().filter(|(n, _)| DRIVER_CONTEXTS.contains(n)) {
        // CAST: addresses.
        if *v != 0 && inner.state().in_freed_pool(*v as usize) {
            inner.violation(
                Rule::UseAfterFree,
                format!("{name} called with {arg} {v:#x}, in pool the driver already freed"),
            );
        }
    }
    let prev = cpu::irql();
    cpu::set_irql(irql);
    let critical = critical_depth();
    let idx = inner.trace_with(Direction::HostToDriver, Arg::Text(name), args.iter().map(|(n, v)| (*n, Arg::Hex(*v))));
    // No allocation per call: call::call passes at most eight arguments.
    let mut values = [0u64; 8];
    for (slot, (_, v)) in values.iter_mut().zip(args) {
        *slot = *v;
    }
    let values = values.get(..args.len()).unwrap_or(&values);
    let probe = super::stack::Probe::begin_sampled(inner.config.stack_sample);
    // SAFETY: `f` is a driver routine the driver registered for exactly this call, with these argument
    // values, all integers or pointers to memory the host lent it.
    let r = unsafe { call::call(f, values) };
    if let Some(depth) = probe.end_sampled() {
        check_stack(inner, name, depth);
    }
    let after = cpu::irql();
    if after != irql {
        inner
            .violation(Rule::IrqlNotRestored, format!("{name} returned at IRQL {after}; it was called at IRQL {irql}"));
    }
    check_critical_regions(inner, name, critical);
    // CAST: statuses are the low 32 bits of RAX.
    inner.trace_result(idx, Arg::Status(r as u32 as i32));
    cpu::set_irql(prev);
    r
}

/// Argument names of driver-owned contexts the host hands back in callbacks.
const DRIVER_CONTEXTS: &[&str] = &[
    "ProtocolBindingContext",
    "ProtocolDriverContext",
    "DriverContext",
    "DeferredContext",
    "Context",
    "FunctionContext",
];

// ---------------------------------------------------------------- calls into the driver for the I/O manager

/// Calls a dispatch routine `f(DeviceObject, Irp)` at PASSIVE_LEVEL on this processor, traced under the
/// major function's name with the request's details; returns the NTSTATUS it returned.
pub(crate) fn call_dispatch<'a>(
    inner: &Inner,
    name: &str,
    f: usize,
    device: usize,
    irp: &IrpBlock,
    details: impl Iterator<Item = (&'static str, Arg<'a>)>,
) -> i32 {
    let prev = cpu::irql();
    cpu::set_irql(PASSIVE);
    let first = [("DeviceObject", hex(device as u64)), ("Irp", hex(irp.addr() as u64))];
    let idx = inner.trace_with(Direction::HostToDriver, Arg::Text(name), first.into_iter().chain(details));
    let critical = critical_depth();
    let probe = super::stack::Probe::begin_sampled(inner.config.stack_sample);
    // SAFETY: `f` is the driver's MajorFunction entry, a DRIVER_DISPATCH taking (DEVICE_OBJECT*, IRP*);
    // `device` is its live device object and `irp` a complete IRP the host keeps alive until it is finished.
    let r = unsafe { call::call(f, &[device as u64, irp.addr() as u64]) };
    if let Some(depth) = probe.end_sampled() {
        check_stack(inner, name, depth);
    }
    check_critical_regions(inner, name, critical);
    let after = cpu::irql();
    if after != PASSIVE {
        inner.violation(
            Rule::IrqlNotRestored,
            format!("{name} dispatch returned at IRQL {after}; it was called at IRQL 0"),
        );
    }
    // CAST: NTSTATUS is the low 32 bits of RAX.
    let st = r as u32 as i32;
    inner.trace_result(idx, Arg::Status(st));
    cpu::set_irql(prev);
    st
}

/// Records a call's stack depth and checks it against the kernel stack budget, as `call_into_driver` does.
fn check_stack(inner: &Inner, name: &str, depth: usize) {
    inner.ke.record_stack(name, depth);
    if depth > crate::ke::STACK_BUDGET {
        inner.violation(
            Rule::Stack,
            format!(
                "{name} used {depth} bytes of stack; the budget is {} (24 KiB kernel stack minus {} for host frames)",
                crate::ke::STACK_BUDGET,
                crate::ke::HOST_FRAME_ALLOWANCE
            ),
        );
    }
}

/// A stand-in KSPIN_LOCK for the system-wide cancel spin lock; its address is the key in the held-lock table.
static CANCEL_SPIN_LOCK: usize = 0;

fn cancel_lock_key() -> usize {
    std::ptr::addr_of!(CANCEL_SPIN_LOCK) as usize
}

/// Takes the cancel spin lock at DISPATCH_LEVEL for this processor; false if it already holds it.
pub(crate) fn acquire_cancel_lock(inner: &Inner, api: &str) -> bool {
    let me = std::thread::current().id();
    loop {
        let mut st = inner.state();
        match st.spin_locks.get(&cancel_lock_key()) {
            None => {
                st.spin_locks.insert(cancel_lock_key(), me);
                return true;
            }
            Some(&holder) if holder == me => {
                drop(st);
                inner.violation(
                    Rule::SpinLock,
                    format!("{api}: this processor already holds the cancel spin lock (deadlock on Windows)"),
                );
                return false;
            }
            Some(_) => {
                drop(st);
                std::thread::yield_now();
            }
        }
    }
}

pub(crate) fn release_cancel_lock(inner: &Inner, api: &str) -> bool {
    let me = std::thread::current().id();
    let mut st = inner.state();
    if st.spin_locks.get(&cancel_lock_key()) == Some(&me) {
        st.spin_locks.remove(&cancel_lock_key());
        return true;
    }
    drop(st);
    inner
        .violation(Rule::SpinLock, format!("{api}: releases the cancel spin lock, which this processor does not hold"));
    false
}

/// Whether some processor holds the cancel spin lock.
pub(crate) fn cancel_lock_held(inner: &Inner) -> bool {
    inner.state().spin_locks.contains_key(&cancel_lock_key())
}

/// IoCancelIrp: sets `Cancel`, takes the cancel spin lock, exchanges `CancelRoutine` with NULL and, when one
/// was set, calls it at DISPATCH_LEVEL with `CancelIrql` set and the lock held (the routine releases it with
/// IoReleaseCancelSpinLock(Irp->CancelIrql)). Returns whether a cancel routine ran.
pub(crate) fn cancel_irp(inner: &Inner, irp: &IrpBlock, device: usize) -> bool {
    let old = cpu::irql();
    irp.set_cancel();
    cpu::set_irql(DISPATCH);
    acquire_cancel_lock(inner, "IoCancelIrp");
    let routine = irp.take_cancel_routine();
    if routine == 0 {
        release_cancel_lock(inner, "IoCancelIrp");
        cpu::set_irql(old);
        return false;
    }
    irp.set_cancel_irql(old);
    let idx = inner.trace_call(
        Direction::HostToDriver,
        "DriverCancel",
        &[("DeviceObject", hex(device as u64)), ("Irp", hex(irp.addr() as u64)), ("CancelIrql", old.into())],
    );
    let probe = super::stack::Probe::begin();
    // SAFETY: `routine` is the DRIVER_CANCEL the driver stored in this IRP with IoSetCancelRoutine; the IRP
    // and the device are alive, and the cancel spin lock is held at DISPATCH_LEVEL as the routine expects.
    unsafe { call::call(routine, &[device as u64, irp.addr() as u64]) };
    check_stack(inner, "DriverCancel", probe.end());
    inner.trace_result(idx, Arg::Word("returned"));
    let after = cpu::irql();
    if cancel_lock_held(inner) {
        inner.violation(Rule::SpinLock, "the cancel routine returned holding the cancel spin lock; it must call IoReleaseCancelSpinLock(Irp->CancelIrql)");
        release_cancel_lock(inner, "IoCancelIrp");
    } else if after != old {
        inner.violation(Rule::IrqlNotRestored, format!("the cancel routine returned at IRQL {after}; IoReleaseCancelSpinLock(Irp->CancelIrql) restores IRQL {old}"));
    }
    cpu::set_irql(old);
    true
}

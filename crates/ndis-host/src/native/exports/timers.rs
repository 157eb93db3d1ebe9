//! Deferred work: DPCs, kernel timers, NDIS timer objects, I/O and NDIS work items, and IRQL lowering.
//!
//! Two system threads per machine run the deferred driver code, each a processor of the machine like the
//! `cpu` threads: the worker runs work items in queue order at PASSIVE_LEVEL (one worker, so order is
//! deterministic; a work item that waits for a later work item deadlocks here, and would stall a Windows
//! worker too), and the timer thread expires timers in due order and runs their DPC or NetTimerCallback at
//! DISPATCH_LEVEL. They report processor numbers 0 and 1. Both stop when the [`crate::host::Host`] goes.

use super::sync::{init_header, DriverObjects, TIMER_NOTIFICATION, TIMER_SYNCHRONIZATION};
use super::*;
use crate::ke::{relative_timeout, Armed, NdisTimer, SignalStates, TimerKind, WorkItem, WorkItemKind, WorkRequest};
use crate::machine::spawn_system_thread;
use std::sync::Arc;
use std::time::Duration;

export_table! {
    "ntoskrnl.exe": KeInitializeDpc,
    "ntoskrnl.exe": KeInitializeTimer,
    "ntoskrnl.exe": KeInitializeTimerEx,
    "ntoskrnl.exe": KeSetTimer,
    "ntoskrnl.exe": KeSetTimerEx,
    "ntoskrnl.exe": KeCancelTimer,
    "ntoskrnl.exe": KeFlushQueuedDpcs,
    "ntoskrnl.exe": KeLowerIrql,
    "ntoskrnl.exe": KfRaiseIrql,
    "ntoskrnl.exe": IoAllocateWorkItem,
    "ntoskrnl.exe": IoQueueWorkItem,
    "ntoskrnl.exe": IoFreeWorkItem,
    "ndis.sys": NdisAllocateIoWorkItem,
    "ndis.sys": NdisQueueIoWorkItem,
    "ndis.sys": NdisFreeIoWorkItem,
    "ndis.sys": NdisAllocateTimerObject,
    "ndis.sys": NdisSetTimerObject,
    "ndis.sys": NdisCancelTimerObject,
    "ndis.sys": NdisFreeTimerObject,
}

/// `KOBJECTS.DpcObject`.
const DPC_OBJECT: u8 = 19;
/// `TimerMiscFlags.Inserted` in the timer's DISPATCHER_HEADER (byte 3).
const TIMER_INSERTED: u8 = 0x40;
const HIGH_LEVEL: u8 = 15;

// ---------------------------------------------------------------- system threads

/// Starts the machine's worker and timer threads.
pub(crate) fn start_system_threads(inner: &Arc<Inner>) -> std::io::Result<()> {
    spawn_system_thread(inner, "worker", 0, worker)?;
    spawn_system_thread(inner, "timer", 1, timer_thread)
}

fn worker(inner: &Inner) {
    let ke = &inner.ke;
    let mut d = ke.deferred();
    loop {
        if d.shutdown {
            return;
        }
        let Some(req) = d.work.pop_front() else {
            d = ke.deferred_wake.wait(d).unwrap_or_else(std::sync::PoisonError::into_inner);
            continue;
        };
        // The routine may queue its own item again.
        let kind = d.work_items.get_mut(&req.item).map(|w| {
            w.queued = false;
            w.kind
        });
        drop(d);
        if !inner.down.load(std::sync::atomic::Ordering::Acquire) {
            let (r, c, i) = (req.routine as u64, req.context as u64, req.item as u64);
            match kind {
                Some(WorkItemKind::Io { device }) => {
                    call_into_driver(
                        inner,
                        PASSIVE,
                        "IoWorkItemRoutine",
                        req.routine,
                        &[("DeviceObject", device as u64), ("Context", c)],
                    );
                }
                Some(WorkItemKind::Ndis) => {
                    call_into_driver(
                        inner,
                        PASSIVE,
                        "NdisIoWorkItemRoutine",
                        req.routine,
                        &[("WorkItemContext", c), ("NdisIoWorkItemHandle", i)],
                    );
                }
                None => inner
                    .violation(Rule::BadParameter, format!("work item {i:#x} (routine {r:#x}) was freed while queued")),
            }
        }
        d = ke.deferred();
    }
}

fn timer_thread(inner: &Inner) {
    let ke = &inner.ke;
    let mut d = ke.deferred();
    loop {
        if d.shutdown {
            return;
        }
        let now = cpu::interrupt_time();
        if let Some((timer, armed)) = d.timers.take_due(now) {
            let function = match armed.kind {
                TimerKind::Ndis { .. } => d.ndis_timers.get(&timer).map(|t| t.function),
                TimerKind::Ke { .. } => None,
            };
            d.expiring = true;
            drop(d);
            if !inner.down.load(std::sync::atomic::Ordering::Acquire) {
                expire(inner, timer, armed, function);
            }
            d = ke.deferred();
            d.expiring = false;
            ke.deferred_wake.notify_all();
            continue;
        }
        d = match d.timers.next_due() {
            Some(due) => {
                let wait = Duration::from_nanos(due.saturating_sub(now).saturating_mul(100));
                ke.deferred_wake.wait_timeout(d, wait).map_or_else(|e| e.into_inner().0, |(g, _)| g)
            }
            None => ke.deferred_wake.wait(d).unwrap_or_else(std::sync::PoisonError::into_inner),
        };
    }
}

/// A timer expired: signal a KTIMER and run its DPC, or call an NDIS timer's callback, at DISPATCH_LEVEL.
fn expire(inner: &Inner, timer: usize, armed: Armed, function: Option<usize>) {
    match armed.kind {
        TimerKind::Ke { dpc } => {
            {
                let mut d = inner.ke.dispatcher();
                if armed.period == 0 {
                    set_inserted(timer, false);
                }
                DriverObjects.set_state(timer, 1);
                d.signaled(&mut DriverObjects, timer);
            }
            inner.ke.signal.notify_all();
            if dpc != 0 {
                // SAFETY: the KDPC the driver passed to KeSetTimer(Ex), which must stay valid while armed.
                let k: KDPC = unsafe { read_obj(dpc) };
                if let Some(routine) = k.DeferredRoutine {
                    call_into_driver(
                        inner,
                        DISPATCH,
                        "DeferredRoutine",
                        routine as usize,
                        &[
                            ("Dpc", dpc as u64),
                            ("DeferredContext", k.DeferredContext as u64),
                            ("SystemArgument1", armed.due & 0xFFFF_FFFF),
                            ("SystemArgument2", armed.due >> 32),
                        ],
                    );
                }
            }
        }
        TimerKind::Ndis { context } => {
            if let Some(f) = function {
                call_into_driver(
                    inner,
                    DISPATCH,
                    "NetTimerCallback",
                    f,
                    &[
                        ("SystemSpecific1", 0),
                        ("FunctionContext", context as u64),
                        ("SystemSpecific2", 0),
                        ("SystemSpecific3", 0),
                    ],
                );
            }
        }
    }
}

/// Verifier checks at unload: nothing queued or armed (bugcheck 0xCE on Windows), every work item and NDIS
/// timer object freed. Then forgets them all, so no deferred call reaches the unloaded image.
pub(crate) fn check_deferred_released(inner: &Inner, when: &str) {
    let mut d = inner.ke.deferred();
    let queued: Vec<String> = d.work.drain(..).map(|w| format!("{:#x}", w.item)).collect();
    let armed: Vec<String> = d.timers.armed().iter().map(|(t, _)| format!("{t:#x}")).collect();
    d.timers.clear();
    let items: Vec<String> = std::mem::take(&mut d.work_items).keys().map(|k| format!("{k:#x}")).collect();
    let timers: Vec<String> = std::mem::take(&mut d.ndis_timers).keys().map(|k| format!("{k:#x}")).collect();
    drop(d);
    if !queued.is_empty() {
        inner.violation(Rule::PendingOperation, format!("{when}: work item(s) still queued: {}", queued.join(", ")));
    }
    if !armed.is_empty() {
        inner.violation(Rule::PendingOperation, format!("{when}: timer(s) still armed: {}", armed.join(", ")));
    }
    if !items.is_empty() {
        inner.violation(Rule::ObjectLeak, format!("{when}: work item(s) not freed: {}", items.join(", ")));
    }
    if !timers.is_empty() {
        inner.violation(Rule::ObjectLeak, format!("{when}: NDIS timer object(s) not freed: {}", timers.join(", ")));
    }
}

// ---------------------------------------------------------------- DPCs and kernel timers

extern "win64" fn KeInitializeDpc(dpc: *mut KDPC, routine: usize, context: *mut c_void) {
    let inner = current();
    inner.trace_call(
        Direction::DriverToHost,
        "KeInitializeDpc",
        &[("Dpc", ptr(dpc.cast())), ("DeferredRoutine", hex(routine as u64)), ("DeferredContext", ptr(context))],
    );
    if dpc.is_null() || routine == 0 {
        inner.violation(Rule::BadParameter, "KeInitializeDpc with a null DPC or routine");
        return;
    }
    // SAFETY: `routine` is the driver's KDEFERRED_ROUTINE (non-null, checked); reading it back as the
    // Option<fn> field type is sound for any non-null address.
    let r: PKDEFERRED_ROUTINE = unsafe { std::mem::transmute::<usize, PKDEFERRED_ROUTINE>(routine) };
    let k = KDPC {
        u: KDPC_u { s: KDPC_u_s { Type: DPC_OBJECT, Importance: 1, Number: 0 } },
        DpcListEntry: SINGLE_LIST_ENTRY { Next: std::ptr::null_mut() },
        ProcessorHistory: 0,
        DeferredRoutine: r,
        DeferredContext: context,
        SystemArgument1: std::ptr::null_mut(),
        SystemArgument2: std::ptr::null_mut(),
        DpcData: std::ptr::null_mut(),
    };
    // SAFETY: the driver's KDPC (the routine's contract).
    unsafe { write_obj(dpc as usize, k) };
}

fn set_inserted(timer: usize, on: bool) {
    // SAFETY: the driver's initialised KTIMER; byte 3 of its header is TimerMiscFlags.
    let flags: u8 = unsafe { read_obj(timer + 3) };
    let v = if on { flags | TIMER_INSERTED } else { flags & !TIMER_INSERTED };
    // SAFETY: as above.
    unsafe { write_obj(timer + 3, v) };
}

fn init_timer(inner: &Inner, api: &str, timer: *mut KTIMER, ty: i32) {
    inner.require_irql_at_most(api, DISPATCH);
    let t = if ty == NotificationTimer {
        TIMER_NOTIFICATION
    } else if ty == SynchronizationTimer {
        TIMER_SYNCHRONIZATION
    } else {
        inner.violation(Rule::BadParameter, format!("{api} with timer type {ty}"));
        return;
    };
    if timer.is_null() {
        inner.violation(Rule::BadParameter, format!("{api} with a null timer"));
        return;
    }
    if inner.ke.deferred().timers.is_armed(timer as usize) {
        inner.violation(Rule::BadParameter, format!("{api}({}) re-initialises an armed timer", ptr(timer.cast())));
        inner.ke.deferred().timers.cancel(timer as usize);
    }
    let _d = inner.ke.dispatcher();
    // SAFETY: the driver's KTIMER (the routine's contract): zero it, then write the header.
    unsafe { write_obj(timer as usize, [0u8; size_of::<KTIMER>()]) };
    init_header(timer as usize, t, size_of::<KTIMER>(), 0);
}

extern "win64" fn KeInitializeTimer(timer: *mut KTIMER) {
    let inner = current();
    inner.trace_call(Direction::DriverToHost, "KeInitializeTimer", &[("Timer", ptr(timer.cast()))]);
    init_timer(&inner, "KeInitializeTimer", timer, NotificationTimer);
}

extern "win64" fn KeInitializeTimerEx(timer: *mut KTIMER, ty: i32) {
    let inner = current();
    inner.trace_call(
        Direction::DriverToHost,
        "KeInitializeTimerEx",
        &[("Timer", ptr(timer.cast())), ("Type", ty.into())],
    );
    init_timer(&inner, "KeInitializeTimerEx", timer, ty);
}

fn set_timer(inner: &Inner, api: &str, timer: *mut KTIMER, due: i64, period_ms: i32, dpc: *mut KDPC) -> u8 {
    inner.require_irql_at_most(api, DISPATCH);
    let t = timer as usize;
    if timer.is_null() || !matches!(super::sync::object_type(t), TIMER_NOTIFICATION | TIMER_SYNCHRONIZATION) {
        inner.violation(
            Rule::BadParameter,
            format!("{api}({}) on an object that is not an initialised timer", ptr(timer.cast())),
        );
        return 0;
    }
    if period_ms < 0 {
        inner.violation(Rule::BadParameter, format!("{api} with a negative period {period_ms}"));
        return 0;
    }
    let at = cpu::interrupt_time() + relative_timeout(due, cpu::system_time());
    // CAST: non-negative, checked.
    let period = period_ms as u64 * 10_000;
    {
        let _d = inner.ke.dispatcher();
        DriverObjects.set_state(t, 0);
        set_inserted(t, true);
        // SAFETY: the driver's initialised KTIMER (checked above): DueTime, Dpc, Period as Windows keeps them.
        unsafe { write_obj(t + std::mem::offset_of!(KTIMER, DueTime), at) };
        // SAFETY: as above.
        unsafe { write_obj(t + std::mem::offset_of!(KTIMER, Dpc), dpc) };
        // SAFETY: as above; CAST: the period in milliseconds as given.
        unsafe { write_obj(t + std::mem::offset_of!(KTIMER, Period), period_ms as u32) };
    }
    let was = inner.ke.deferred().timers.arm(t, Armed { due: at, period, kind: TimerKind::Ke { dpc: dpc as usize } });
    inner.ke.deferred_wake.notify_all();
    u8::from(was)
}

extern "win64" fn KeSetTimer(timer: *mut KTIMER, due: i64, dpc: *mut KDPC) -> u8 {
    let inner = current();
    let idx = inner.trace_call(
        Direction::DriverToHost,
        "KeSetTimer",
        &[("Timer", ptr(timer.cast())), ("DueTime", due.into()), ("Dpc", ptr(dpc.cast()))],
    );
    let r = set_timer(&inner, "KeSetTimer", timer, due, 0, dpc);
    inner.trace_result(idx, if r != 0 { Arg::Word("TRUE") } else { Arg::Word("FALSE") });
    r
}

extern "win64" fn KeSetTimerEx(timer: *mut KTIMER, due: i64, period: i32, dpc: *mut KDPC) -> u8 {
    let inner = current();
    let idx = inner.trace_call(
        Direction::DriverToHost,
        "KeSetTimerEx",
        &[("Timer", ptr(timer.cast())), ("DueTime", due.into()), ("Period", period.into()), ("Dpc", ptr(dpc.cast()))],
    );
    let r = set_timer(&inner, "KeSetTimerEx", timer, due, period, dpc);
    inner.trace_result(idx, if r != 0 { Arg::Word("TRUE") } else { Arg::Word("FALSE") });
    r
}

extern "win64" fn KeCancelTimer(timer: *mut KTIMER) -> u8 {
    let inner = current();
    let idx = inner.trace_call(Direction::DriverToHost, "KeCancelTimer", &[("Timer", ptr(timer.cast()))]);
    inner.require_irql_at_most("KeCancelTimer", DISPATCH);
    let was = inner.ke.deferred().timers.cancel(timer as usize);
    if was {
        let _d = inner.ke.dispatcher();
        set_inserted(timer as usize, false);
    }
    inner.trace_result(idx, if was { Arg::Word("TRUE") } else { Arg::Word("FALSE") });
    u8::from(was)
}

/// KeFlushQueuedDpcs: returns once every DPC queued before the call has run. Here DPCs run only on the
/// timer thread (timer expirations), so this waits until that thread is not inside one. PASSIVE_LEVEL only.
extern "win64" fn KeFlushQueuedDpcs() {
    let inner = current();
    inner.trace_call(Direction::DriverToHost, "KeFlushQueuedDpcs", &[]);
    if !inner.require_irql_at_most("KeFlushQueuedDpcs", PASSIVE) {
        return;
    }
    let ke = &inner.ke;
    let mut d = ke.deferred();
    while d.expiring && !d.shutdown {
        d = ke.deferred_wake.wait(d).unwrap_or_else(std::sync::PoisonError::into_inner);
    }
}

// ---------------------------------------------------------------- IRQL

extern "win64" fn KeLowerIrql(new: u8) {
    let inner = current();
    let old = cpu::irql();
    inner.trace_call(Direction::DriverToHost, "KeLowerIrql", &[("NewIrql", new.into())]);
    if new > old {
        inner.violation(Rule::Irql, format!("KeLowerIrql to {new} from the lower IRQL {old} (bugcheck 0x9)"));
        return;
    }
    cpu::set_irql(new);
}

extern "win64" fn KfRaiseIrql(new: u8) -> u8 {
    let inner = current();
    let old = cpu::irql();
    let idx = inner.trace_call(Direction::DriverToHost, "KfRaiseIrql", &[("NewIrql", new.into())]);
    if new < old || new > HIGH_LEVEL {
        inner.violation(Rule::Irql, format!("KfRaiseIrql to {new} from the higher IRQL {old} (bugcheck 0x9)"));
    } else {
        cpu::set_irql(new);
    }
    inner.trace_result(idx, old.into());
    old
}

// ---------------------------------------------------------------- work items

fn allocate_work_item(inner: &Inner, api: &str, kind: WorkItemKind) -> usize {
    if !inner.require_irql_at_most(api, DISPATCH) || inner.inject(api) {
        return 0;
    }
    let Some(block) = HostBlock::new(64, 16) else { return 0 };
    let a = block.addr();
    inner.ke.deferred().work_items.insert(a, WorkItem { block, kind, queued: false });
    a
}

fn queue_work_item(inner: &Inner, api: &str, item: usize, routine: usize, context: usize) {
    inner.require_irql_at_most(api, DISPATCH);
    if routine == 0 {
        inner.violation(Rule::BadParameter, format!("{api}({item:#x}) with a null routine"));
        return;
    }
    let mut d = inner.ke.deferred();
    match d.work_items.get_mut(&item) {
        None => {
            drop(d);
            inner.violation(
                Rule::BadParameter,
                format!("{api}({item:#x}) on something that is not an allocated work item"),
            );
        }
        Some(w) if w.queued => {
            drop(d);
            inner.violation(Rule::BadParameter, format!("{api}({item:#x}) queues a work item that is already queued"));
        }
        Some(w) => {
            w.queued = true;
            d.work.push_back(WorkRequest { item, routine, context });
            drop(d);
            inner.ke.deferred_wake.notify_all();
        }
    }
}

fn free_work_item(inner: &Inner, api: &str, item: usize) {
    inner.require_irql_at_most(api, DISPATCH);
    let mut d = inner.ke.deferred();
    match d.work_items.remove(&item) {
        None => {
            drop(d);
            inner.violation(
                Rule::BadFree,
                format!("{api}({item:#x}) frees something that is not an allocated work item"),
            );
        }
        Some(w) if w.queued => {
            d.work.retain(|r| r.item != item);
            drop(d);
            inner.violation(Rule::PendingOperation, format!("{api}({item:#x}) frees a work item that is still queued"));
        }
        Some(_) => {}
    }
}

extern "win64" fn IoAllocateWorkItem(device: *mut DEVICE_OBJECT) -> *mut c_void {
    let inner = current();
    let idx = inner.trace_call(Direction::DriverToHost, "IoAllocateWorkItem", &[("DeviceObject", ptr(device.cast()))]);
    let known = inner.state().devices.iter().any(|d| d.block.addr() == device as usize);
    let a = if known {
        allocate_work_item(&inner, "IoAllocateWorkItem", WorkItemKind::Io { device: device as usize })
    } else {
        inner.violation(
            Rule::BadParameter,
            format!("IoAllocateWorkItem({}) for an object that is not the driver's device", ptr(device.cast())),
        );
        0
    };
    inner.trace_result(idx, hex(a as u64));
    a as *mut c_void
}

extern "win64" fn IoQueueWorkItem(item: *mut c_void, routine: usize, queue: i32, context: *mut c_void) {
    let inner = current();
    inner.trace_call(
        Direction::DriverToHost,
        "IoQueueWorkItem",
        &[
            ("IoWorkItem", ptr(item)),
            ("WorkerRoutine", hex(routine as u64)),
            ("QueueType", queue.into()),
            ("Context", ptr(context)),
        ],
    );
    queue_work_item(&inner, "IoQueueWorkItem", item as usize, routine, context as usize);
}

extern "win64" fn IoFreeWorkItem(item: *mut c_void) {
    let inner = current();
    inner.trace_call(Direction::DriverToHost, "IoFreeWorkItem", &[("IoWorkItem", ptr(item))]);
    free_work_item(&inner, "IoFreeWorkItem", item as usize);
}

extern "win64" fn NdisAllocateIoWorkItem(handle: *mut c_void) -> *mut c_void {
    let inner = current();
    let idx = inner.trace_call(Direction::DriverToHost, "NdisAllocateIoWorkItem", &[("NdisObjectHandle", ptr(handle))]);
    let a = if handle.is_null() {
        inner.violation(Rule::BadParameter, "NdisAllocateIoWorkItem with a null NdisObjectHandle");
        0
    } else {
        allocate_work_item(&inner, "NdisAllocateIoWorkItem", WorkItemKind::Ndis)
    };
    inner.trace_result(idx, hex(a as u64));
    a as *mut c_void
}

extern "win64" fn NdisQueueIoWorkItem(item: *mut c_void, routine: usize, context: *mut c_void) {
    let inner = current();
    inner.trace_call(
        Direction::DriverToHost,
        "NdisQueueIoWorkItem",
        &[("NdisIoWorkItemHandle", ptr(item)), ("Routine", hex(routine as u64)), ("WorkItemContext", ptr(context))],
    );
    queue_work_item(&inner, "NdisQueueIoWorkItem", item as usize, routine, context as usize);
}

extern "win64" fn NdisFreeIoWorkItem(item: *mut c_void) {
    let inner = current();
    inner.trace_call(Direction::DriverToHost, "NdisFreeIoWorkItem", &[("NdisIoWorkItemHandle", ptr(item))]);
    free_work_item(&inner, "NdisFreeIoWorkItem", item as usize);
}

// ---------------------------------------------------------------- NDIS timer objects

extern "win64" fn NdisAllocateTimerObject(
    handle: *mut c_void,
    chars: *mut NDIS_TIMER_CHARACTERISTICS,
    out: *mut *mut c_void,
) -> i32 {
    let inner = current();
    let idx = inner.trace_call(
        Direction::DriverToHost,
        "NdisAllocateTimerObject",
        &[("NdisHandle", ptr(handle)), ("TimerCharacteristics", ptr(chars.cast()))],
    );
    let r = (|| {
        if !inner.require_irql_at_most("NdisAllocateTimerObject", DISPATCH) {
            return ST_UNSUCCESSFUL;
        }
        if chars.is_null() || out.is_null() || handle.is_null() {
            inner.violation(
                Rule::BadParameter,
                "NdisAllocateTimerObject with a null handle, characteristics or out pointer",
            );
            return ST_INVALID_PARAMETER;
        }
        // SAFETY: the driver's characteristics (the routine's contract).
        let c: NDIS_TIMER_CHARACTERISTICS = unsafe { read_obj(chars as usize) };
        let Some(function) = c.TimerFunction else {
            inner.violation(Rule::BadParameter, "NdisAllocateTimerObject without a TimerFunction");
            return NDIS_ST_BAD_CHARACTERISTICS;
        };
        if c.Header.Type != NDIS_OBJECT_TYPE_TIMER_CHARACTERISTICS
            || c.Header.Revision != NDIS_TIMER_CHARACTERISTICS_REVISION_1
            || usize::from(c.Header.Size) < size_of::<NDIS_TIMER_CHARACTERISTICS>()
        {
            inner.violation(
                Rule::BadParameter,
                format!(
                    "NdisAllocateTimerObject: header type {:#x} revision {} size {}",
                    c.Header.Type, c.Header.Revision, c.Header.Size
                ),
            );
            return NDIS_ST_BAD_CHARACTERISTICS;
        }
        if inner.inject("NdisAllocateTimerObject") {
            return ST_INSUFFICIENT_RESOURCES;
        }
        let Some(block) = HostBlock::new(64, 16) else { return ST_INSUFFICIENT_RESOURCES };
        let a = block.addr();
        let rec =
            NdisTimer { block, function: function as usize, context: c.FunctionContext as usize, tag: c.AllocationTag };
        inner.ke.deferred().ndis_timers.insert(a, rec);
        // SAFETY: the driver's out pointer (non-null, checked).
        unsafe { write_obj(out as usize, a as *mut c_void) };
        ST_SUCCESS
    })();
    inner.trace_result(idx, Arg::Status(r));
    r
}

extern "win64" fn NdisSetTimerObject(timer: *mut c_void, due: i64, period_ms: i32, context: *mut c_void) -> u8 {
    let inner = current();
    let idx = inner.trace_call(
        Direction::DriverToHost,
        "NdisSetTimerObject",
        &[
            ("TimerObject", ptr(timer)),
            ("DueTime", due.into()),
            ("MillisecondsPeriod", period_ms.into()),
            ("FunctionContext", ptr(context)),
        ],
    );
    inner.require_irql_at_most("NdisSetTimerObject", DISPATCH);
    let mut d = inner.ke.deferred();
    let r = match d.ndis_timers.get(&(timer as usize)) {
        None => {
            drop(d);
            inner.violation(
                Rule::BadParameter,
                format!("NdisSetTimerObject({}) on something that is not a timer object", ptr(timer)),
            );
            false
        }
        Some(_) if period_ms < 0 => {
            drop(d);
            inner.violation(Rule::BadParameter, format!("NdisSetTimerObject with a negative period {period_ms}"));
            false
        }
        Some(t) => {
            // A null FunctionContext means the one in the characteristics.
            let ctx = if context.is_null() { t.context } else { context as usize };
            let at = cpu::interrupt_time() + relative_timeout(due, cpu::system_time());
            // CAST: non-negative, checked.
            let period = period_ms as u64 * 10_000;
            let was = d.timers.arm(timer as usize, Armed { due: at, period, kind: TimerKind::Ndis { context: ctx } });
            drop(d);
            inner.ke.deferred_wake.notify_all();
            was
        }
    };
    inner.trace_result(idx, if r { Arg::Word("TRUE") } else { Arg::Word("FALSE") });
    u8::from(r)
}

extern "win64" fn NdisCancelTimerObject(timer: *mut c_void) -> u8 {
    let inner = current();
    let idx = inner.trace_call(Direction::DriverToHost, "NdisCancelTimerObject", &[("TimerObject", ptr(timer))]);
    inner.require_irql_at_most("NdisCancelTimerObject", DISPATCH);
    let mut d = inner.ke.deferred();
    let known = d.ndis_timers.contains_key(&(timer as usize));
    let was = d.timers.cancel(timer as usize);
    drop(d);
    if !known {
        inner.violation(
            Rule::BadParameter,
            format!("NdisCancelTimerObject({}) on something that is not a timer object", ptr(timer)),
        );
    }
    inner.trace_result(idx, if was { Arg::Word("TRUE") } else { Arg::Word("FALSE") });
    u8::from(was)
}

extern "win64" fn NdisFreeTimerObject(timer: *mut c_void) {
    let inner = current();
    inner.trace_call(Direction::DriverToHost, "NdisFreeTimerObject", &[("TimerObject", ptr(timer))]);
    inner.require_irql_at_most("NdisFreeTimerObject", DISPATCH);
    let mut d = inner.ke.deferred();
    let rec = d.ndis_timers.remove(&(timer as usize));
    let armed = d.timers.cancel(timer as usize);
    drop(d);
    match rec {
        None => inner.violation(
            Rule::BadFree,
            format!("NdisFreeTimerObject({}) frees something that is not a timer object", ptr(timer)),
        ),
        Some(t) if armed => inner.violation(
            Rule::PendingOperation,
            format!(
                "NdisFreeTimerObject({}) frees a timer (tag '{}') that is still armed; cancel it first",
                ptr(timer),
                crate::machine::tag_text(t.tag)
            ),
        ),
        Some(_) => {}
    }
}

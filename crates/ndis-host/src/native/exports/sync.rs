//! Kernel and NDIS events, waits, delays, time and processor queries.
//!
//! An event's state lives where Windows keeps it, in the driver's `KEVENT` (`Header.SignalState`); the host
//! reads and writes it only under the dispatcher lock (`Kernel::dispatcher`), keeps the wait queues by
//! object address ([`crate::ke::Dispatcher`]) and sleeps waiters on the machine's condition variable. The
//! state lock is never held while waiting.

use super::*;
use crate::ke::{relative_timeout, Begin, SignalStates};
use std::time::{Duration, Instant};

export_table! {
    "ntoskrnl.exe": KeInitializeEvent,
    "ntoskrnl.exe": KeSetEvent,
    "ntoskrnl.exe": KeResetEvent,
    "ntoskrnl.exe": KeClearEvent,
    "ntoskrnl.exe": KeReadStateEvent,
    "ntoskrnl.exe": KeWaitForSingleObject,
    "ntoskrnl.exe": KeWaitForMultipleObjects,
    "ntoskrnl.exe": KeDelayExecutionThread,
    "ntoskrnl.exe": KeQuerySystemTimePrecise,
    "ntoskrnl.exe": KeQueryInterruptTimePrecise,
    "ntoskrnl.exe": KeQueryTimeIncrement,
    "ntoskrnl.exe": KeGetCurrentProcessorNumberEx,
    "ntoskrnl.exe": KeQueryActiveProcessorCountEx,
    "ndis.sys": NdisInitializeEvent,
    "ndis.sys": NdisSetEvent,
    "ndis.sys": NdisResetEvent,
    "ndis.sys": NdisWaitEvent,
}

pub(super) const APC: u8 = 1;
/// The processors of the machine.
pub(super) const PROCESSORS: u32 = 2;
// CAST: NTSTATUS values.
const ST_TIMEOUT: i32 = 0x102;

/// `DISPATCHER_HEADER.Type` values.
pub(super) const EVENT_NOTIFICATION: u8 = 0;
pub(super) const EVENT_SYNCHRONIZATION: u8 = 1;
pub(super) const TIMER_NOTIFICATION: u8 = 8;
pub(super) const TIMER_SYNCHRONIZATION: u8 = 9;
const SIGNAL_STATE: usize = std::mem::offset_of!(DISPATCHER_HEADER, SignalState);

/// Dispatcher objects in driver memory. Used only under the dispatcher lock, on objects the driver passed
/// to a dispatcher routine (so they are live KEVENT/KTIMER memory by that routine's contract).
pub(super) struct DriverObjects;

impl SignalStates for DriverObjects {
    fn state(&self, object: usize) -> i32 {
        // SAFETY: `object` is a live dispatcher object of the driver (see the type's contract).
        unsafe { read_obj(object + SIGNAL_STATE) }
    }
    fn set_state(&mut self, object: usize, value: i32) {
        // SAFETY: as above; the dispatcher lock serialises the host's writes.
        unsafe { write_obj(object + SIGNAL_STATE, value) }
    }
    fn auto_reset(&self, object: usize) -> bool {
        matches!(object_type(object), EVENT_SYNCHRONIZATION | TIMER_SYNCHRONIZATION)
    }
}

/// `Header.Type` of a dispatcher object.
pub(super) fn object_type(object: usize) -> u8 {
    // SAFETY: `object` is a live dispatcher object of the driver; Type is its first byte.
    unsafe { read_obj(object) }
}

/// Writes a fresh DISPATCHER_HEADER: type, size in 4-byte units, state, an empty wait list.
pub(super) fn init_header(object: usize, ty: u8, size: usize, state: i32) {
    // CAST: dispatcher objects are a few dozen bytes.
    let size4 = (size / 4) as u8;
    // SAFETY: `object` is driver memory for a dispatcher object of `size` bytes (the routine's contract).
    unsafe { write_obj(object, [ty, 0, size4, 0]) };
    // SAFETY: as above.
    unsafe { write_obj(object + SIGNAL_STATE, state) };
    let head = object + std::mem::offset_of!(DISPATCHER_HEADER, WaitListHead);
    let empty = LIST_ENTRY { Flink: head as *mut LIST_ENTRY, Blink: head as *mut LIST_ENTRY };
    // SAFETY: as above.
    unsafe { write_obj(head, empty) };
}

/// Signals `object` and satisfies waits on it; returns the previous state.
pub(super) fn signal(inner: &Inner, object: usize) -> i32 {
    let mut d = inner.ke.dispatcher();
    let mut mem = DriverObjects;
    let prev = mem.state(object);
    mem.set_state(object, 1);
    d.signaled(&mut mem, object);
    drop(d);
    inner.ke.signal.notify_all();
    prev
}

/// Sets `object` not signalled; returns the previous state.
pub(super) fn reset(inner: &Inner, object: usize) -> i32 {
    let _d = inner.ke.dispatcher();
    let mut mem = DriverObjects;
    let prev = mem.state(object);
    mem.set_state(object, 0);
    prev
}

/// Waits for `objects` (all or any) for at most `timeout` (100 ns units; `None` = forever). Returns the
/// index of the satisfying object, or `None` on timeout. Holds only the dispatcher lock, and releases it
/// while sleeping.
pub(super) fn wait(inner: &Inner, objects: &[usize], all: bool, timeout: Option<u64>) -> Option<usize> {
    let deadline = timeout.map(|t| Instant::now().checked_add(Duration::from_nanos(t.saturating_mul(100))));
    let mut d = inner.ke.dispatcher();
    let id = match d.begin(&mut DriverObjects, objects, all) {
        Begin::Satisfied(i) => return Some(i),
        Begin::Pending(id) => id,
    };
    loop {
        if d.outcome(id).is_some() {
            return d.end(id);
        }
        match deadline {
            Some(Some(t)) => {
                let now = Instant::now();
                if now >= t {
                    return d.end(id);
                }
                d = inner.ke.signal.wait_timeout(d, t - now).map_or_else(|e| e.into_inner().0, |(g, _)| g);
            }
            // Forever (or a deadline past the end of time).
            _ => d = inner.ke.signal.wait(d).unwrap_or_else(std::sync::PoisonError::into_inner),
        }
    }
}

/// Reads a kernel timeout pointer: `None` = wait forever, else the relative time in 100 ns units.
fn timeout_arg(p: *mut LARGE_INTEGER) -> (Arg<'static>, Option<u64>) {
    if p.is_null() {
        return (Arg::Word("NULL (infinite)"), None);
    }
    // SAFETY: a non-null timeout points to the caller's LARGE_INTEGER (the routine's contract).
    let v: i64 = unsafe { read_obj(p as usize) };
    (Arg::Int(v), Some(relative_timeout(v, cpu::system_time())))
}

/// Checks a dispatcher object's type for a wait.
fn check_waitable(inner: &Inner, api: &str, object: usize) -> bool {
    if object == 0 {
        inner.violation(Rule::BadParameter, format!("{api} on a null object"));
        return false;
    }
    if crate::machine::State::freed_object(inner, api, "dispatcher object", object) {
        return false;
    }
    let t = object_type(object);
    if !matches!(t, EVENT_NOTIFICATION | EVENT_SYNCHRONIZATION | TIMER_NOTIFICATION | TIMER_SYNCHRONIZATION) {
        inner.violation(
            Rule::BadParameter,
            format!("{api}({object:#x}): object type {t} is not an initialised event or timer"),
        );
        return false;
    }
    true
}

/// Checks that an event routine got an initialised event (not a timer or anything else).
fn check_event(inner: &Inner, api: &str, object: usize) -> bool {
    if !check_waitable(inner, api, object) {
        return false;
    }
    if !matches!(object_type(object), EVENT_NOTIFICATION | EVENT_SYNCHRONIZATION) {
        inner.violation(Rule::BadParameter, format!("{api}({object:#x}) on a timer, not an event"));
        return false;
    }
    true
}

/// The IRQL rule of every wait: at most DISPATCH_LEVEL, and at most APC_LEVEL unless the timeout is zero.
fn check_wait_irql(inner: &Inner, api: &str, timeout: Option<u64>) {
    if inner.require_irql_at_most(api, DISPATCH) && timeout != Some(0) {
        inner.require_irql_at_most(&format!("{api} with a non-zero timeout"), APC);
    }
}

// ---------------------------------------------------------------- kernel events

extern "win64" fn KeInitializeEvent(event: *mut KEVENT, ty: i32, state: u8) {
    let inner = current();
    inner.trace_call(
        Direction::DriverToHost,
        "KeInitializeEvent",
        &[("Event", ptr(event.cast())), ("Type", ty.into()), ("State", state.into())],
    );
    inner.require_irql_at_most("KeInitializeEvent", DISPATCH);
    let t = if ty == NotificationEvent {
        EVENT_NOTIFICATION
    } else if ty == SynchronizationEvent {
        EVENT_SYNCHRONIZATION
    } else {
        inner.violation(Rule::BadParameter, format!("KeInitializeEvent with event type {ty}"));
        return;
    };
    init_event(&inner, "KeInitializeEvent", event as usize, t, state != 0);
}

fn init_event(inner: &Inner, api: &str, event: usize, ty: u8, state: bool) {
    let d = inner.ke.dispatcher();
    if d.waiters(event) > 0 {
        drop(d);
        inner
            .violation(Rule::BadParameter, format!("{api}({event:#x}) re-initialises an event threads are waiting on"));
        return;
    }
    init_header(event, ty, size_of::<KEVENT>(), i32::from(state));
}

extern "win64" fn KeSetEvent(event: *mut KEVENT, increment: i32, wait: u8) -> i32 {
    let inner = current();
    let idx = inner.trace_call(
        Direction::DriverToHost,
        "KeSetEvent",
        &[("Event", ptr(event.cast())), ("Increment", increment.into()), ("Wait", wait.into())],
    );
    // With Wait = TRUE the caller promises to wait next, so it must be able to wait.
    inner.require_irql_at_most(
        if wait != 0 { "KeSetEvent with Wait = TRUE" } else { "KeSetEvent" },
        if wait != 0 { APC } else { DISPATCH },
    );
    if !check_event(&inner, "KeSetEvent", event as usize) {
        return 0;
    }
    let prev = signal(&inner, event as usize);
    inner.trace_result(idx, prev.into());
    prev
}

extern "win64" fn KeResetEvent(event: *mut KEVENT) -> i32 {
    let inner = current();
    let idx = inner.trace_call(Direction::DriverToHost, "KeResetEvent", &[("Event", ptr(event.cast()))]);
    inner.require_irql_at_most("KeResetEvent", DISPATCH);
    if !check_event(&inner, "KeResetEvent", event as usize) {
        return 0;
    }
    let prev = reset(&inner, event as usize);
    inner.trace_result(idx, prev.into());
    prev
}

extern "win64" fn KeClearEvent(event: *mut KEVENT) {
    let inner = current();
    inner.trace_call(Direction::DriverToHost, "KeClearEvent", &[("Event", ptr(event.cast()))]);
    inner.require_irql_at_most("KeClearEvent", DISPATCH);
    if check_event(&inner, "KeClearEvent", event as usize) {
        reset(&inner, event as usize);
    }
}

extern "win64" fn KeReadStateEvent(event: *mut KEVENT) -> i32 {
    let inner = current();
    let idx = inner.trace_call(Direction::DriverToHost, "KeReadStateEvent", &[("Event", ptr(event.cast()))]);
    inner.require_irql_at_most("KeReadStateEvent", DISPATCH);
    if !check_event(&inner, "KeReadStateEvent", event as usize) {
        return 0;
    }
    let s = {
        let _d = inner.ke.dispatcher();
        DriverObjects.state(event as usize)
    };
    inner.trace_result(idx, s.into());
    s
}

// ---------------------------------------------------------------- waits

extern "win64" fn KeWaitForSingleObject(
    object: *mut c_void,
    reason: i32,
    mode: i8,
    alertable: u8,
    timeout: *mut LARGE_INTEGER,
) -> i32 {
    let inner = current();
    let (shown, t) = timeout_arg(timeout);
    let idx = inner.trace_call(
        Direction::DriverToHost,
        "KeWaitForSingleObject",
        &[
            ("Object", ptr(object)),
            ("WaitReason", reason.into()),
            ("WaitMode", mode.into()),
            ("Alertable", alertable.into()),
            ("Timeout", shown),
        ],
    );
    check_wait_irql(&inner, "KeWaitForSingleObject", t);
    let r = if !check_waitable(&inner, "KeWaitForSingleObject", object as usize) {
        ST_INVALID_PARAMETER
    } else {
        // An injected fault on a wait with a timeout: it runs out (a wait without one cannot fail).
        let timed_out = !timeout.is_null() && inner.inject("KeWaitForSingleObject");
        match if timed_out { None } else { wait(&inner, &[object as usize], false, t) } {
            Some(_) => ST_SUCCESS,
            None => ST_TIMEOUT,
        }
    };
    inner.trace_result(idx, Arg::Status(r));
    r
}

#[allow(clippy::too_many_arguments)]
extern "win64" fn KeWaitForMultipleObjects(
    count: u32,
    objects: *mut *mut c_void,
    wait_type: i32,
    reason: i32,
    mode: i8,
    alertable: u8,
    timeout: *mut LARGE_INTEGER,
    wait_blocks: *mut c_void,
) -> i32 {
    let inner = current();
    let (shown, t) = timeout_arg(timeout);
    let list: Vec<usize> = if objects.is_null() {
        Vec::new()
    } else {
        (0..count.min(MAXIMUM_WAIT_OBJECTS) as usize)
            .map(|i| {
                // SAFETY: the caller's array of `Count` object pointers (the routine's contract).
                unsafe { read_obj::<usize>(objects as usize + i * 8) }
            })
            .collect()
    };
    let mut shown_list = crate::trace::TextBuf::default();
    for (i, o) in list.iter().enumerate() {
        let _ = std::fmt::Write::write_fmt(&mut shown_list, format_args!("{}{o:#x}", if i > 0 { " " } else { "" }));
    }
    let idx = inner.trace_call(
        Direction::DriverToHost,
        "KeWaitForMultipleObjects",
        &[
            ("Count", count.into()),
            ("Object", Arg::Text(shown_list.as_str())),
            (
                "WaitType",
                if wait_type == WaitAll {
                    Arg::Word("WaitAll")
                } else if wait_type == WaitAny {
                    Arg::Word("WaitAny")
                } else {
                    wait_type.into()
                },
            ),
            ("WaitReason", reason.into()),
            ("WaitMode", mode.into()),
            ("Alertable", alertable.into()),
            ("Timeout", shown),
            ("WaitBlockArray", ptr(wait_blocks)),
        ],
    );
    check_wait_irql(&inner, "KeWaitForMultipleObjects", t);
    const THREAD_WAIT_OBJECTS: u32 = 3;
    let r = if count == 0 || count > MAXIMUM_WAIT_OBJECTS || objects.is_null() {
        inner.violation(
            Rule::BadParameter,
            format!("KeWaitForMultipleObjects with Count {count} (1..=64) or a null array"),
        );
        ST_INVALID_PARAMETER
    } else if count > THREAD_WAIT_OBJECTS && wait_blocks.is_null() {
        inner.violation(
            Rule::BadParameter,
            format!("KeWaitForMultipleObjects on {count} objects without a WaitBlockArray (bugcheck 0xC)"),
        );
        ST_INVALID_PARAMETER
    } else if wait_type != WaitAll && wait_type != WaitAny {
        inner.violation(Rule::BadParameter, format!("KeWaitForMultipleObjects with WaitType {wait_type}"));
        ST_INVALID_PARAMETER
    } else if !list.iter().all(|&o| check_waitable(&inner, "KeWaitForMultipleObjects", o)) {
        ST_INVALID_PARAMETER
    } else {
        match wait(&inner, &list, wait_type == WaitAll, t) {
            // CAST: at most 64 objects; STATUS_WAIT_0 + index.
            Some(i) => i as i32,
            None => ST_TIMEOUT,
        }
    };
    inner.trace_result(idx, Arg::Status(r));
    r
}

extern "win64" fn KeDelayExecutionThread(mode: i8, alertable: u8, interval: *mut LARGE_INTEGER) -> i32 {
    let inner = current();
    let (shown, t) = timeout_arg(interval);
    inner.trace_call(
        Direction::DriverToHost,
        "KeDelayExecutionThread",
        &[("WaitMode", mode.into()), ("Alertable", alertable.into()), ("Interval", shown)],
    );
    inner.require_irql_at_most("KeDelayExecutionThread", APC);
    match t {
        Some(t) => std::thread::sleep(Duration::from_nanos(t.saturating_mul(100))),
        None => {
            inner.violation(Rule::BadParameter, "KeDelayExecutionThread with a null Interval");
            return ST_INVALID_PARAMETER;
        }
    }
    ST_SUCCESS
}

// ---------------------------------------------------------------- NDIS events (notification events)

extern "win64" fn NdisInitializeEvent(event: *mut NDIS_EVENT) {
    let inner = current();
    inner.trace_call(Direction::DriverToHost, "NdisInitializeEvent", &[("Event", ptr(event.cast()))]);
    inner.require_irql("NdisInitializeEvent", PASSIVE);
    init_event(&inner, "NdisInitializeEvent", event as usize, EVENT_NOTIFICATION, false);
}

extern "win64" fn NdisSetEvent(event: *mut NDIS_EVENT) {
    let inner = current();
    inner.trace_call(Direction::DriverToHost, "NdisSetEvent", &[("Event", ptr(event.cast()))]);
    inner.require_irql_at_most("NdisSetEvent", DISPATCH);
    if check_event(&inner, "NdisSetEvent", event as usize) {
        signal(&inner, event as usize);
    }
}

extern "win64" fn NdisResetEvent(event: *mut NDIS_EVENT) {
    let inner = current();
    inner.trace_call(Direction::DriverToHost, "NdisResetEvent", &[("Event", ptr(event.cast()))]);
    inner.require_irql_at_most("NdisResetEvent", DISPATCH);
    if check_event(&inner, "NdisResetEvent", event as usize) {
        reset(&inner, event as usize);
    }
}

extern "win64" fn NdisWaitEvent(event: *mut NDIS_EVENT, ms: u32) -> u8 {
    let inner = current();
    let idx = inner.trace_call(
        Direction::DriverToHost,
        "NdisWaitEvent",
        &[("Event", ptr(event.cast())), ("MsToWait", if ms == 0 { "0 (infinite)".into() } else { ms.into() })],
    );
    inner.require_irql("NdisWaitEvent", PASSIVE);
    let r = check_event(&inner, "NdisWaitEvent", event as usize)
        && wait(&inner, &[event as usize], false, (ms != 0).then(|| u64::from(ms) * 10_000)).is_some();
    inner.trace_result(idx, if r { Arg::Word("TRUE") } else { Arg::Word("FALSE") });
    u8::from(r)
}

// ---------------------------------------------------------------- time and processors

extern "win64" fn KeQuerySystemTimePrecise(out: *mut LARGE_INTEGER) {
    let inner = current();
    cpu::refresh_shared_clock();
    let t = cpu::system_time();
    inner.trace_call(Direction::DriverToHost, "KeQuerySystemTimePrecise", &[("CurrentTime", ptr(out.cast()))]);
    if out.is_null() {
        inner.violation(Rule::BadParameter, "KeQuerySystemTimePrecise with a null pointer");
        return;
    }
    // SAFETY: the caller's LARGE_INTEGER; CAST: system time fits an i64 until the year 30828.
    unsafe { write_obj(out as usize, t as i64) };
}

/// Returns the interrupt time; `QpcTimeStamp` gets the same instant in performance-counter units, which are
/// 100 ns here (10 MHz, as KeQueryPerformanceCounter reports).
extern "win64" fn KeQueryInterruptTimePrecise(qpc: *mut u64) -> u64 {
    let inner = current();
    cpu::refresh_shared_clock();
    let t = cpu::interrupt_time();
    let idx =
        inner.trace_call(Direction::DriverToHost, "KeQueryInterruptTimePrecise", &[("QpcTimeStamp", ptr(qpc.cast()))]);
    if !qpc.is_null() {
        // SAFETY: the caller's ULONG64.
        unsafe { write_obj(qpc as usize, t) };
    }
    inner.trace_result(idx, t.into());
    t
}

extern "win64" fn KeQueryTimeIncrement() -> u32 {
    let inner = current();
    let idx = inner.trace_call(Direction::DriverToHost, "KeQueryTimeIncrement", &[]);
    inner.trace_result(idx, cpu::TIME_INCREMENT.into());
    // CAST: 156 250.
    cpu::TIME_INCREMENT as u32
}

extern "win64" fn KeGetCurrentProcessorNumberEx(out: *mut PROCESSOR_NUMBER) -> u32 {
    let inner = current();
    let n = cpu::processor();
    let idx =
        inner.trace_call(Direction::DriverToHost, "KeGetCurrentProcessorNumberEx", &[("ProcNumber", ptr(out.cast()))]);
    if !out.is_null() {
        // CAST: two processors.
        let v = PROCESSOR_NUMBER { Group: 0, Number: n as u8, Reserved: 0 };
        // SAFETY: the caller's PROCESSOR_NUMBER.
        unsafe { write_obj(out as usize, v) };
    }
    inner.trace_result(idx, n.into());
    n
}

extern "win64" fn KeQueryActiveProcessorCountEx(group: u16) -> u32 {
    let inner = current();
    let idx =
        inner.trace_call(Direction::DriverToHost, "KeQueryActiveProcessorCountEx", &[("GroupNumber", hex(group))]);
    // Group 0, or ALL_PROCESSOR_GROUPS.
    let n = if group == 0 || group == 0xFFFF { PROCESSORS } else { 0 };
    inner.trace_result(idx, n.into());
    n
}

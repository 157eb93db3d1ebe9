//! Events, waits, time, work items, timers, DPCs and stack measurement, exercised on the machine's
//! processors by small host-side `extern "win64"` routines standing in for driver code. They reach the
//! exports through the export table, as the driver's import table does.

use super::*;
use crate::host::Host;
use crate::machine::{HostConfig, HostError};
use crate::verifier::Violation;
use std::sync::Mutex;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- a tiny driver image

/// Code of the tiny image (at RVA 0x1000).
const ENTRY: usize = 0x00; // lea rax,[rip+unload]; mov [rcx+0x68],rax; xor eax,eax; ret
const RUNAWAY: usize = 0x10; // push rax; jmp RUNAWAY
const READ_INTERRUPT_TIME: usize = 0x30; // mov rax,[0xFFFFF78000000008]; ret
const READ_TWICE: usize = 0x40; // mov al,[rcx]; mov al,[rcx+1]; mov al,[rcx]; ret
const READ_ONCE: usize = 0x50; // mov eax,[rcx]; mov al,[rcx+4]; ret
const COPY: usize = 0x60; // push rsi; push rdi; mov rsi,rcx; mov rdi,rdx; mov rcx,r8; rep movsb; pop rdi; pop rsi; ret

fn tiny_image() -> Vec<u8> {
    let mut f = vec![0u8; 0x400];
    let put = |f: &mut Vec<u8>, at: usize, b: &[u8]| f[at..at + b.len()].copy_from_slice(b);
    put(&mut f, 0, b"MZ");
    put(&mut f, 0x3C, &0x40u32.to_le_bytes());
    put(&mut f, 0x40, b"PE\0\0");
    // COFF header: AMD64, one section, PE32+ optional header, executable.
    put(&mut f, 0x44, &0x8664u16.to_le_bytes());
    put(&mut f, 0x46, &1u16.to_le_bytes());
    put(&mut f, 0x54, &240u16.to_le_bytes());
    put(&mut f, 0x56, &0x0022u16.to_le_bytes());
    // Optional header.
    let o = 0x58;
    put(&mut f, o, &0x20Bu16.to_le_bytes());
    put(&mut f, o + 4, &0x200u32.to_le_bytes()); // SizeOfCode
    put(&mut f, o + 16, &0x1000u32.to_le_bytes()); // AddressOfEntryPoint
    put(&mut f, o + 20, &0x1000u32.to_le_bytes()); // BaseOfCode
    put(&mut f, o + 24, &0x1_4000_0000u64.to_le_bytes()); // ImageBase
    put(&mut f, o + 32, &0x1000u32.to_le_bytes()); // SectionAlignment
    put(&mut f, o + 36, &0x200u32.to_le_bytes()); // FileAlignment
    put(&mut f, o + 40, &10u16.to_le_bytes()); // OS version
    put(&mut f, o + 48, &10u16.to_le_bytes()); // subsystem version
    put(&mut f, o + 56, &0x2000u32.to_le_bytes()); // SizeOfImage
    put(&mut f, o + 60, &0x200u32.to_le_bytes()); // SizeOfHeaders
    put(&mut f, o + 68, &1u16.to_le_bytes()); // Subsystem: native
    put(&mut f, o + 108, &16u32.to_le_bytes()); // NumberOfRvaAndSizes
                                                // Section header.
    let s = o + 240;
    put(&mut f, s, b".text\0\0\0");
    put(&mut f, s + 8, &0x100u32.to_le_bytes());
    put(&mut f, s + 12, &0x1000u32.to_le_bytes());
    put(&mut f, s + 16, &0x200u32.to_le_bytes());
    put(&mut f, s + 20, &0x200u32.to_le_bytes());
    put(&mut f, s + 36, &0x6000_0020u32.to_le_bytes());
    // Code.
    let c = 0x200;
    put(&mut f, c + ENTRY, &[0x48, 0x8D, 0x05, 0x19, 0, 0, 0, 0x48, 0x89, 0x41, 0x68, 0x31, 0xC0, 0xC3]);
    put(&mut f, c + RUNAWAY, &[0x50, 0xEB, 0xFD]);
    put(&mut f, c + 0x20, &[0xC3]);
    let mut mov = vec![0x48, 0xA1];
    mov.extend_from_slice(&0xFFFF_F780_0000_0008u64.to_le_bytes());
    mov.push(0xC3);
    put(&mut f, c + READ_INTERRUPT_TIME, &mov);
    put(&mut f, c + READ_TWICE, &[0x8A, 0x01, 0x8A, 0x41, 0x01, 0x8A, 0x01, 0xC3]);
    put(&mut f, c + READ_ONCE, &[0x8B, 0x01, 0x8A, 0x41, 0x04, 0xC3]);
    put(
        &mut f,
        c + COPY,
        &[0x56, 0x57, 0x48, 0x89, 0xCE, 0x48, 0x89, 0xD7, 0x4C, 0x89, 0xC1, 0xF3, 0xA4, 0x5F, 0x5E, 0xC3],
    );
    f
}

fn machine() -> Host {
    let mut h = Host::load(&tiny_image(), HostConfig::default()).expect("the tiny image loads");
    assert_eq!(h.driver_entry().expect("entry"), 0);
    h
}

fn violations(h: &Host) -> Vec<Violation> {
    h.violations()
}

fn assert_clean(h: &Host) {
    let v = violations(h);
    assert!(v.is_empty(), "verifier: {v:#?}");
}

fn has(h: &Host, rule: Rule, text: &str) -> bool {
    violations(h).iter().any(|v| v.rule == rule && v.message.contains(text))
}

/// Runs host routine `f` as driver code on processor `cpu` at `irql`.
fn run(h: &Host, cpu: usize, irql: u8, name: &str, f: usize, args: &[u64]) -> u64 {
    const NAMES: [&str; 4] = ["a0", "a1", "a2", "a3"];
    let args = args.iter().enumerate().map(|(i, &v)| (NAMES[i], v)).collect();
    h.call_driver(cpu, irql, name, f, args).expect("the routine returned")
}

/// An export's address, as the driver's import table would hold it.
fn export(name: &str) -> usize {
    super::table()
        .into_iter()
        .find(|(_, n, _)| *n == name)
        .map(|(_, _, a)| a)
        .unwrap_or_else(|| panic!("{name} not exported"))
}

macro_rules! import {
    ($name:literal: fn($($t:ty),*) $(-> $r:ty)?) => {{
        let a = export($name);
        // SAFETY: the export of that name has exactly this win64 signature (see sync.rs / timers.rs).
        unsafe { std::mem::transmute::<usize, extern "win64" fn($($t),*) $(-> $r)?>(a) }
    }};
}

/// Driver memory for a dispatcher object.
fn object() -> HostBlock {
    HostBlock::new(128, 16).expect("memory")
}

// ---------------------------------------------------------------- routines standing in for driver code

extern "win64" fn init_event(ev: u64, ty: u64, state: u64) -> u64 {
    import!("KeInitializeEvent": fn(u64, i32, u8))(ev, ty as i32, state as u8);
    0
}

extern "win64" fn set_event(ev: u64) -> u64 {
    import!("KeSetEvent": fn(u64, i32, u8) -> i32)(ev, 0, 0) as u64
}

/// Waits with `timeout` 100 ns units (relative; u64::MAX = infinite); returns the NTSTATUS.
extern "win64" fn wait_event(ev: u64, timeout: u64) -> u64 {
    let mut t = -(timeout as i64);
    let p = if timeout == u64::MAX { std::ptr::null_mut() } else { &mut t as *mut i64 };
    import!("KeWaitForSingleObject": fn(u64, i32, i8, u8, *mut i64) -> i32)(ev, 0, 0, 0, p) as u32 as u64
}

extern "win64" fn read_state(ev: u64) -> u64 {
    import!("KeReadStateEvent": fn(u64) -> i32)(ev) as u64
}

extern "win64" fn reset_event(ev: u64) -> u64 {
    import!("KeResetEvent": fn(u64) -> i32)(ev) as u64
}

extern "win64" fn clear_event(ev: u64) -> u64 {
    import!("KeClearEvent": fn(u64))(ev);
    0
}

/// KeWaitForMultipleObjects on `count` objects at `array`, WaitAll if `all`, timeout 20 ms.
extern "win64" fn wait_multiple(array: u64, count: u64, all: u64) -> u64 {
    let mut t: i64 = -200_000;
    import!("KeWaitForMultipleObjects": fn(u32, u64, i32, i32, i8, u8, *mut i64, u64) -> i32)(
        count as u32,
        array,
        if all != 0 { WaitAll } else { WaitAny },
        0,
        0,
        0,
        &mut t,
        0,
    ) as u32 as u64
}

extern "win64" fn ndis_event(ev: u64, op: u64, ms: u64) -> u64 {
    match op {
        0 => import!("NdisInitializeEvent": fn(u64))(ev),
        1 => import!("NdisSetEvent": fn(u64))(ev),
        2 => import!("NdisResetEvent": fn(u64))(ev),
        _ => return u64::from(import!("NdisWaitEvent": fn(u64, u32) -> u8)(ev, ms as u32)),
    }
    0
}

extern "win64" fn delay(ms: u64) -> u64 {
    let mut t = -(ms as i64) * 10_000;
    import!("KeDelayExecutionThread": fn(i8, u8, *mut i64) -> i32)(0, 0, &mut t) as u64
}

/// What deferred routines saw: (tag, what, irql, processor).
static SEEN: Mutex<Vec<(u64, &'static str, u8, u32)>> = Mutex::new(Vec::new());

fn seen(tag: u64) -> Vec<(&'static str, u8, u32)> {
    SEEN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .filter(|e| e.0 == tag)
        .map(|e| (e.1, e.2, e.3))
        .collect()
}

fn note(tag: u64, what: &'static str) {
    SEEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((tag, what, cpu::irql(), cpu::processor()));
}

fn wait_for(mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

extern "win64" fn ndis_work_routine(context: u64, _handle: u64) {
    note(context, "ndis work");
}

extern "win64" fn io_work_routine(_device: u64, context: u64) {
    note(context, "io work");
}

extern "win64" fn dpc_routine(_dpc: u64, context: u64, _a1: u64, _a2: u64) {
    note(context, "dpc");
}

extern "win64" fn ndis_timer_routine(_s1: u64, context: u64, _s2: u64, _s3: u64) {
    note(context, "ndis timer");
}

/// Allocates an NDIS work item for `handle` and queues it `n` times in a row with contexts tag, tag+1, ...
/// (one item per queueing); returns the first item.
extern "win64" fn queue_ndis_work(handle: u64, tag: u64, n: u64) -> u64 {
    let alloc = import!("NdisAllocateIoWorkItem": fn(u64) -> u64);
    let queue = import!("NdisQueueIoWorkItem": fn(u64, usize, u64));
    let mut first = 0;
    for i in 0..n {
        let item = alloc(handle);
        if first == 0 {
            first = item;
        }
        queue(item, ndis_work_routine as *const () as usize, tag + i);
    }
    first
}

extern "win64" fn free_ndis_work(item: u64) -> u64 {
    import!("NdisFreeIoWorkItem": fn(u64))(item);
    0
}

// ---------------------------------------------------------------- events and waits

#[test]
fn an_event_set_on_one_processor_wakes_a_waiter_on_the_other() {
    let h = std::sync::Arc::new(machine());
    let ev = object();
    let e = ev.addr() as u64;
    run(&h, 0, PASSIVE, "Init", init_event as *const () as usize, &[e, NotificationEvent as u64, 0]);
    let h2 = std::sync::Arc::clone(&h);
    let start = Instant::now();
    let waiter =
        std::thread::spawn(move || run(&h2, 1, PASSIVE, "Waiter", wait_event as *const () as usize, &[e, u64::MAX]));
    std::thread::sleep(Duration::from_millis(50));
    assert!(!waiter.is_finished(), "the waiter blocks until the event is set");
    assert_eq!(run(&h, 0, DISPATCH, "Setter", set_event as *const () as usize, &[e]), 0, "previous state");
    assert_eq!(waiter.join().expect("waiter"), 0, "STATUS_SUCCESS");
    assert!(start.elapsed() >= Duration::from_millis(50));
    // A notification event stays signalled, in the driver's own KEVENT.
    assert_eq!(run(&h, 0, PASSIVE, "Read", read_state as *const () as usize, &[e]), 1);
    // SAFETY: test memory standing in for the driver's KEVENT.
    let state: i32 = unsafe { read_obj(ev.addr() + 4) };
    assert_eq!(state, 1);
    assert_eq!(run(&h, 0, PASSIVE, "Wait", wait_event as *const () as usize, &[e, 0]), 0);
    assert_eq!(run(&h, 0, PASSIVE, "Reset", reset_event as *const () as usize, &[e]), 1);
    assert_eq!(run(&h, 0, PASSIVE, "Read", read_state as *const () as usize, &[e]), 0);
    let trace = h.trace();
    assert!(trace.iter().any(
        |t| t.name == "KeWaitForSingleObject" && t.result.as_deref().is_some_and(|r| r.contains("STATUS_SUCCESS"))
    ));
    assert_clean(&h);
}

#[test]
fn a_synchronization_event_releases_one_wait_and_resets_itself() {
    let h = machine();
    let ev = object();
    let e = ev.addr() as u64;
    run(&h, 0, PASSIVE, "Init", init_event as *const () as usize, &[e, SynchronizationEvent as u64, 1]);
    assert_eq!(run(&h, 0, PASSIVE, "Wait", wait_event as *const () as usize, &[e, 0]), 0, "signalled at init");
    assert_eq!(
        run(&h, 0, PASSIVE, "Wait", wait_event as *const () as usize, &[e, 0]),
        0x102,
        "auto-reset: now it times out"
    );
    run(&h, 1, PASSIVE, "Set", set_event as *const () as usize, &[e]);
    run(&h, 1, PASSIVE, "Clear", clear_event as *const () as usize, &[e]);
    assert_eq!(run(&h, 0, PASSIVE, "Wait", wait_event as *const () as usize, &[e, 0]), 0x102, "cleared");
    assert_clean(&h);
}

#[test]
fn waits_time_out_relative_to_now() {
    let h = machine();
    let ev = object();
    let e = ev.addr() as u64;
    run(&h, 0, PASSIVE, "Init", init_event as *const () as usize, &[e, NotificationEvent as u64, 0]);
    let t = Instant::now();
    assert_eq!(run(&h, 0, PASSIVE, "Wait", wait_event as *const () as usize, &[e, 300_000]), 0x102, "STATUS_TIMEOUT");
    assert!(t.elapsed() >= Duration::from_millis(30), "{:?}", t.elapsed());
    let t = Instant::now();
    assert_eq!(run(&h, 1, PASSIVE, "Delay", delay as *const () as usize, &[25]), 0);
    assert!(t.elapsed() >= Duration::from_millis(25));
    // NDIS events: milliseconds, BOOLEAN.
    let nev = object();
    let n = nev.addr() as u64;
    run(&h, 0, PASSIVE, "NdisInit", ndis_event as *const () as usize, &[n, 0, 0]);
    assert_eq!(run(&h, 0, PASSIVE, "NdisWait", ndis_event as *const () as usize, &[n, 3, 20]), 0, "FALSE after 20 ms");
    run(&h, 1, DISPATCH, "NdisSet", ndis_event as *const () as usize, &[n, 1, 0]);
    assert_eq!(run(&h, 0, PASSIVE, "NdisWait", ndis_event as *const () as usize, &[n, 3, 0]), 1, "TRUE");
    run(&h, 1, PASSIVE, "NdisReset", ndis_event as *const () as usize, &[n, 2, 0]);
    assert_eq!(run(&h, 0, PASSIVE, "NdisWait", ndis_event as *const () as usize, &[n, 3, 1]), 0);
    assert_clean(&h);
}

#[test]
fn wait_any_and_wait_all() {
    let h = machine();
    let (a, b) = (object(), object());
    let arr = HostBlock::new(16, 16).expect("memory");
    // SAFETY: test memory standing in for the driver's object array.
    unsafe { write_obj(arr.addr(), [a.addr() as u64, b.addr() as u64]) };
    run(&h, 0, PASSIVE, "Init", init_event as *const () as usize, &[a.addr() as u64, NotificationEvent as u64, 0]);
    run(&h, 0, PASSIVE, "Init", init_event as *const () as usize, &[b.addr() as u64, SynchronizationEvent as u64, 0]);
    let x = arr.addr() as u64;
    assert_eq!(run(&h, 0, PASSIVE, "Any", wait_multiple as *const () as usize, &[x, 2, 0]), 0x102);
    run(&h, 1, PASSIVE, "Set", set_event as *const () as usize, &[b.addr() as u64]);
    assert_eq!(run(&h, 0, PASSIVE, "Any", wait_multiple as *const () as usize, &[x, 2, 0]), 1, "STATUS_WAIT_1");
    run(&h, 1, PASSIVE, "Set", set_event as *const () as usize, &[a.addr() as u64]);
    assert_eq!(run(&h, 0, PASSIVE, "All", wait_multiple as *const () as usize, &[x, 2, 1]), 0x102, "b was consumed");
    run(&h, 1, PASSIVE, "Set", set_event as *const () as usize, &[b.addr() as u64]);
    assert_eq!(run(&h, 0, PASSIVE, "All", wait_multiple as *const () as usize, &[x, 2, 1]), 0);
    assert_eq!(
        run(&h, 0, PASSIVE, "Read", read_state as *const () as usize, &[b.addr() as u64]),
        0,
        "consumed by WaitAll"
    );
    assert_eq!(run(&h, 0, PASSIVE, "Read", read_state as *const () as usize, &[a.addr() as u64]), 1);
    assert_clean(&h);
}

#[test]
fn waiting_above_apc_level_is_an_irql_violation_unless_polling() {
    let h = machine();
    let ev = object();
    let e = ev.addr() as u64;
    run(&h, 0, PASSIVE, "Init", init_event as *const () as usize, &[e, NotificationEvent as u64, 0]);
    assert_eq!(run(&h, 0, DISPATCH, "Poll", wait_event as *const () as usize, &[e, 0]), 0x102);
    assert_clean(&h);
    run(&h, 0, DISPATCH, "Wait", wait_event as *const () as usize, &[e, 10_000]);
    assert!(
        has(&h, Rule::Irql, "KeWaitForSingleObject with a non-zero timeout called at IRQL 2"),
        "{:#?}",
        violations(&h)
    );
    run(&h, 0, DISPATCH, "NdisWait", ndis_event as *const () as usize, &[e, 3, 1]);
    assert!(has(&h, Rule::Irql, "NdisWaitEvent called at IRQL 2"));
    run(&h, 0, DISPATCH, "Delay", delay as *const () as usize, &[1]);
    assert!(has(&h, Rule::Irql, "KeDelayExecutionThread called at IRQL 2"));
}

/// Takes a lock (a SynchronizationEvent) `n` times with a 5 s relative timeout per wait, each time bumping
/// the counter at `counter` by a read, a yield and a write, then releases it; returns how many waits failed.
extern "win64" fn locked_increments(ev: u64, counter: u64, n: u64) -> u64 {
    let mut failed = 0;
    for _ in 0..n {
        if wait_event(ev, 50_000_000) != 0 {
            failed += 1;
            continue;
        }
        // SAFETY: the test's counter; only the lock holder touches it.
        let v: u64 = unsafe { read_obj(counter as usize) };
        std::thread::yield_now();
        // SAFETY: as above.
        unsafe { write_obj(counter as usize, v + 1) };
        set_event(ev);
    }
    failed
}

#[test]
fn a_synchronization_event_is_a_lock_each_set_admits_one_waiter() {
    let h = std::sync::Arc::new(machine());
    let ev = object();
    let e = ev.addr() as u64;
    // Free at first (signalled).
    run(&h, 0, PASSIVE, "Init", init_event as *const () as usize, &[e, SynchronizationEvent as u64, 1]);
    assert_eq!(run(&h, 0, PASSIVE, "Acquire", wait_event as *const () as usize, &[e, 0]), 0);
    assert_eq!(run(&h, 0, PASSIVE, "Read", read_state as *const () as usize, &[e]), 0, "held");
    let t = Instant::now();
    assert_eq!(run(&h, 1, PASSIVE, "Try", wait_event as *const () as usize, &[e, 200_000]), 0x102, "20 ms, held");
    assert!(t.elapsed() >= Duration::from_millis(20), "{:?}", t.elapsed());
    // Two waiters with a relative timeout: one on processor 1, one on a caller thread.
    let (h1, h2) = (std::sync::Arc::clone(&h), std::sync::Arc::clone(&h));
    let a = std::thread::spawn(move || run(&h1, 1, PASSIVE, "A", wait_event as *const () as usize, &[e, 50_000_000]));
    let b = std::thread::spawn(move || {
        h2.run_in_caller_thread(0, "B", move |_| wait_event(e, 50_000_000)).expect("B returned")
    });
    std::thread::sleep(Duration::from_millis(50));
    assert!(!a.is_finished() && !b.is_finished(), "both wait while the lock is held");
    // One release admits exactly one waiter, and the lock stays held (by it).
    run(&h, 0, PASSIVE, "Release", set_event as *const () as usize, &[e]);
    assert!(wait_for(|| a.is_finished() || b.is_finished()));
    std::thread::sleep(Duration::from_millis(50));
    assert!(!(a.is_finished() && b.is_finished()), "a second waiter got in without a second release");
    assert_eq!(run(&h, 0, PASSIVE, "Read", read_state as *const () as usize, &[e]), 0);
    run(&h, 0, PASSIVE, "Release", set_event as *const () as usize, &[e]);
    assert_eq!(a.join().expect("A"), 0);
    assert_eq!(b.join().expect("B"), 0);
    assert_eq!(run(&h, 0, PASSIVE, "Read", read_state as *const () as usize, &[e]), 0);
    run(&h, 0, PASSIVE, "Release", set_event as *const () as usize, &[e]);
    assert_eq!(run(&h, 0, PASSIVE, "Read", read_state as *const () as usize, &[e]), 1, "free");
    // Mutual exclusion under contention from both processors and a caller thread.
    let counter = HostBlock::new(8, 8).expect("memory");
    let c = counter.addr() as u64;
    let f = locked_increments as *const () as usize;
    let workers: Vec<_> = (0..2usize)
        .map(|cpu| {
            let h = std::sync::Arc::clone(&h);
            std::thread::spawn(move || run(&h, cpu, PASSIVE, "Locked", f, &[e, c, 300]))
        })
        .collect();
    let h3 = std::sync::Arc::clone(&h);
    let third = h3.run_in_caller_thread(1, "Locked", move |_| locked_increments(e, c, 300)).expect("caller thread");
    let failed: u64 = workers.into_iter().map(|w| w.join().expect("worker")).sum::<u64>() + third;
    assert_eq!(failed, 0);
    // SAFETY: the test's counter, no longer used by anyone.
    assert_eq!(unsafe { read_obj::<u64>(counter.addr()) }, 900);
    assert_clean(&h);
}

// ---------------------------------------------------------------- time and processors

extern "win64" fn times(out: u64) -> u64 {
    import!("KeQuerySystemTimePrecise": fn(u64))(out);
    let mut qpc = 0u64;
    let it = import!("KeQueryInterruptTimePrecise": fn(*mut u64) -> u64)(&mut qpc);
    // SAFETY: `out` is 32 bytes of test memory.
    unsafe { write_obj(out as usize + 8, it) };
    let mut pn = PROCESSOR_NUMBER { Group: 9, Number: 9, Reserved: 9 };
    let n = import!("KeGetCurrentProcessorNumberEx": fn(*mut PROCESSOR_NUMBER) -> u32)(&mut pn);
    assert_eq!(u32::from(pn.Number), n);
    assert_eq!(pn.Group, 0);
    let count = import!("KeQueryActiveProcessorCountEx": fn(u16) -> u32)(0xFFFF);
    let inc = import!("KeQueryTimeIncrement": fn() -> u32)();
    // SAFETY: as above.
    unsafe { write_obj(out as usize + 16, [n, count, inc, 0]) };
    0
}

#[test]
fn time_and_processor_queries() {
    let h = machine();
    let out = HostBlock::new(32, 16).expect("memory");
    run(&h, 1, DISPATCH, "Times", times as *const () as usize, &[out.addr() as u64]);
    // SAFETY: the test block, written by the routine.
    let st: i64 = unsafe { read_obj(out.addr()) };
    // SAFETY: as above.
    let it: u64 = unsafe { read_obj(out.addr() + 8) };
    // SAFETY: as above.
    let q: [u32; 4] = unsafe { read_obj(out.addr() + 16) };
    // CAST: system time is positive.
    let now = cpu::system_time() as i64;
    assert!(st <= now && now - st < 10_000_000, "system time within a second: {st} {now}");
    assert!(it <= cpu::interrupt_time());
    assert_eq!(q[..3], [1, 2, 156_250], "processor 1 of 2, 15.625 ms ticks");
    // The KeQueryInterruptTime inline reads KUSER_SHARED_DATA; the host keeps it current.
    let base = h.image().base();
    let t1 = run(&h, 0, PASSIVE, "ReadInterruptTime", base + 0x1000 + READ_INTERRUPT_TIME, &[]);
    std::thread::sleep(Duration::from_millis(20));
    let t2 = run(&h, 0, PASSIVE, "ReadInterruptTime", base + 0x1000 + READ_INTERRUPT_TIME, &[]);
    assert!(t2 >= t1 + 150_000 && t2 <= cpu::interrupt_time(), "{t1} {t2}");
    assert_clean(&h);
}

// ---------------------------------------------------------------- IRQL

extern "win64" fn raise_lower(to: u64, back: u64) -> u64 {
    let old = import!("KfRaiseIrql": fn(u8) -> u8)(to as u8);
    import!("KeLowerIrql": fn(u8))(back as u8);
    u64::from(old)
}

#[test]
fn raising_and_lowering_the_irql() {
    let h = machine();
    assert_eq!(run(&h, 0, PASSIVE, "RaiseLower", raise_lower as *const () as usize, &[2, 0]), 0);
    assert_clean(&h);
    // Lowering to a higher level than the current one.
    extern "win64" fn lower_up() -> u64 {
        import!("KeLowerIrql": fn(u8))(2);
        0
    }
    run(&h, 0, PASSIVE, "LowerUp", lower_up as *const () as usize, &[]);
    assert!(has(&h, Rule::Irql, "KeLowerIrql to 2"), "{:#?}", violations(&h));
}

// ---------------------------------------------------------------- work items

#[test]
fn work_items_run_in_order_at_passive_level_on_a_system_thread() {
    let h = machine();
    let tag = 0x1000;
    let item =
        run(&h, 0, DISPATCH, "Queue", queue_ndis_work as *const () as usize, &[h.driver_object() as u64, tag, 3]);
    assert!(wait_for(|| (0..3).all(|i| !seen(tag + i).is_empty())));
    let order: Vec<u64> = SEEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .filter(|e| (tag..tag + 3).contains(&e.0))
        .map(|e| e.0)
        .collect();
    assert_eq!(order, [tag, tag + 1, tag + 2], "queue order");
    assert_eq!(seen(tag), [("ndis work", PASSIVE, 0)]);
    let trace = h.trace();
    assert!(trace.iter().any(|t| t.name == "NdisIoWorkItemRoutine" && t.irql == PASSIVE));
    // Three items were allocated; the test frees the first only, so unload finds two.
    run(&h, 0, PASSIVE, "Free", free_ndis_work as *const () as usize, &[item]);
    assert_clean(&h);
    let mut h = h;
    h.unload().expect("unload");
    assert!(has(&h, Rule::ObjectLeak, "work item(s) not freed"), "{:#?}", violations(&h));
}

extern "win64" fn io_work(device: u64, tag: u64) -> u64 {
    let item = import!("IoAllocateWorkItem": fn(u64) -> u64)(device);
    if item != 0 {
        import!("IoQueueWorkItem": fn(u64, usize, i32, u64))(
            item,
            io_work_routine as *const () as usize,
            DelayedWorkQueue,
            tag,
        );
    }
    item
}

extern "win64" fn io_free(item: u64) -> u64 {
    import!("IoFreeWorkItem": fn(u64))(item);
    0
}

#[test]
fn io_work_items_need_a_device_and_fail_under_injection() {
    let h = machine();
    assert_eq!(run(&h, 0, PASSIVE, "IoWork", io_work as *const () as usize, &[0x1234, 0x2000]), 0);
    assert!(has(&h, Rule::BadParameter, "IoAllocateWorkItem(0x1234)"), "{:#?}", violations(&h));
    let config = HostConfig {
        faults: vec![crate::faults::FaultRule::FailNth { api: "NdisAllocateIoWorkItem".into(), n: 1 }],
        ..HostConfig::default()
    };
    let mut h = Host::load(&tiny_image(), config).expect("load");
    h.driver_entry().expect("entry");
    assert_eq!(run(&h, 0, PASSIVE, "Queue", queue_ndis_work as *const () as usize, &[1, 0x2100, 1]), 0);
    assert!(has(&h, Rule::BadParameter, "not an allocated work item"), "queueing the NULL the failed allocation gave");
    let _ = io_free;
}

// ---------------------------------------------------------------- timers and DPCs

extern "win64" fn ke_timer(timer: u64, dpc: u64, tag: u64, period_ms: u64) -> u64 {
    import!("KeInitializeDpc": fn(u64, usize, u64))(dpc, dpc_routine as *const () as usize, tag);
    import!("KeInitializeTimerEx": fn(u64, i32))(timer, NotificationTimer);
    u64::from(import!("KeSetTimerEx": fn(u64, i64, i32, u64) -> u8)(timer, -100_000, period_ms as i32, dpc))
}

extern "win64" fn cancel_timer(timer: u64) -> u64 {
    u64::from(import!("KeCancelTimer": fn(u64) -> u8)(timer))
}

#[test]
fn a_periodic_timer_runs_its_dpc_at_dispatch_level_until_cancelled() {
    let h = machine();
    let (timer, dpc) = (object(), object());
    let tag = 0x3000;
    assert_eq!(
        run(&h, 0, PASSIVE, "Arm", ke_timer as *const () as usize, &[timer.addr() as u64, dpc.addr() as u64, tag, 10]),
        0,
        "was not armed"
    );
    assert!(wait_for(|| seen(tag).len() >= 3), "three periods");
    assert_eq!(
        run(&h, 0, DISPATCH, "Cancel", cancel_timer as *const () as usize, &[timer.addr() as u64]),
        1,
        "was armed"
    );
    // A DPC already taken off the queue may still be running, as on Windows.
    std::thread::sleep(Duration::from_millis(20));
    let n = seen(tag).len();
    std::thread::sleep(Duration::from_millis(40));
    assert_eq!(seen(tag).len(), n, "no DPC after the cancel");
    assert!(seen(tag).iter().all(|&(w, irql, cpu)| w == "dpc" && irql == DISPATCH && cpu == 1));
    assert_eq!(run(&h, 0, DISPATCH, "Cancel", cancel_timer as *const () as usize, &[timer.addr() as u64]), 0);
    // The timer is a notification object: it was signalled and stays so.
    assert_eq!(run(&h, 0, PASSIVE, "Wait", wait_event as *const () as usize, &[timer.addr() as u64, 0]), 0);
    assert_clean(&h);
}

#[test]
fn a_one_shot_timer_signals_waiters_and_an_armed_timer_at_unload_is_reported() {
    let mut h = machine();
    let (timer, dpc) = (object(), object());
    let tag = 0x3100;
    run(&h, 0, PASSIVE, "Arm", ke_timer as *const () as usize, &[timer.addr() as u64, dpc.addr() as u64, tag, 0]);
    assert_eq!(run(&h, 1, PASSIVE, "Wait", wait_event as *const () as usize, &[timer.addr() as u64, 10_000_000]), 0);
    assert!(wait_for(|| seen(tag).len() == 1));
    assert_clean(&h);
    // Armed again, a minute out, then unloaded.
    extern "win64" fn arm_late(timer: u64) -> u64 {
        u64::from(import!("KeSetTimer": fn(u64, i64, u64) -> u8)(timer, -600_000_000, 0))
    }
    run(&h, 0, PASSIVE, "ArmLate", arm_late as *const () as usize, &[timer.addr() as u64]);
    h.unload().expect("unload");
    assert!(has(&h, Rule::PendingOperation, "timer(s) still armed"), "{:#?}", violations(&h));
}

extern "win64" fn ndis_timer(handle: u64, tag: u64, period_ms: u64, out: u64) -> u64 {
    let chars = NDIS_TIMER_CHARACTERISTICS {
        Header: NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_TIMER_CHARACTERISTICS,
            Revision: NDIS_TIMER_CHARACTERISTICS_REVISION_1,
            // CAST: a small structure.
            Size: size_of::<NDIS_TIMER_CHARACTERISTICS>() as u16,
        },
        AllocationTag: u32::from_le_bytes(*b"RwTm"),
        // SAFETY: the routine has the NDIS_TIMER_FUNCTION signature with u64 in place of pointers.
        TimerFunction: unsafe {
            std::mem::transmute::<usize, PNDIS_TIMER_FUNCTION>(ndis_timer_routine as *const () as usize)
        },
        FunctionContext: tag as *mut c_void,
    };
    let mut t = 0u64;
    let st = import!("NdisAllocateTimerObject": fn(u64, *const NDIS_TIMER_CHARACTERISTICS, *mut u64) -> i32)(
        handle, &chars, &mut t,
    );
    assert_eq!(st, 0);
    // SAFETY: 8 bytes of test memory.
    unsafe { write_obj(out as usize, t) };
    // A null FunctionContext: the characteristics' context is used.
    // Periodic timers start after 5 ms, one-shot ones after a minute.
    let due = if period_ms == 0 { -600_000_000 } else { -50_000 };
    u64::from(import!("NdisSetTimerObject": fn(u64, i64, i32, u64) -> u8)(t, due, period_ms as i32, 0))
}

extern "win64" fn ndis_timer_op(t: u64, op: u64) -> u64 {
    match op {
        0 => u64::from(import!("NdisCancelTimerObject": fn(u64) -> u8)(t)),
        _ => {
            import!("NdisFreeTimerObject": fn(u64))(t);
            0
        }
    }
}

#[test]
fn ndis_timer_objects_fire_cancel_and_free() {
    let mut h = machine();
    let out = HostBlock::new(8, 16).expect("memory");
    let tag = 0x4000;
    assert_eq!(run(&h, 0, PASSIVE, "Arm", ndis_timer as *const () as usize, &[1, tag, 5, out.addr() as u64]), 0);
    // SAFETY: written by the routine.
    let t: u64 = unsafe { read_obj(out.addr()) };
    assert!(wait_for(|| seen(tag).len() >= 2), "periodic");
    assert!(seen(tag).iter().all(|&(w, irql, _)| w == "ndis timer" && irql == DISPATCH));
    assert_eq!(run(&h, 0, DISPATCH, "Cancel", ndis_timer_op as *const () as usize, &[t, 0]), 1);
    run(&h, 0, DISPATCH, "Free", ndis_timer_op as *const () as usize, &[t, 1]);
    assert_clean(&h);
    // Freed while armed, and one never freed.
    run(&h, 0, PASSIVE, "Arm", ndis_timer as *const () as usize, &[1, tag + 1, 0, out.addr() as u64]);
    // SAFETY: as above.
    let t2: u64 = unsafe { read_obj(out.addr()) };
    run(&h, 0, PASSIVE, "Arm", ndis_timer as *const () as usize, &[1, tag + 2, 0, out.addr() as u64]);
    run(&h, 0, PASSIVE, "Free", ndis_timer_op as *const () as usize, &[t2, 1]);
    assert!(has(&h, Rule::PendingOperation, "still armed; cancel it first"), "{:#?}", violations(&h));
    h.unload().expect("unload");
    assert!(has(&h, Rule::ObjectLeak, "NDIS timer object(s) not freed"), "{:#?}", violations(&h));
}

// ---------------------------------------------------------------- the stack

#[test]
fn stack_depth_is_measured_per_call_and_host_export_frames_are_small() {
    let h = machine();
    let ev = object();
    let e = ev.addr() as u64;
    run(&h, 0, PASSIVE, "Init", init_event as *const () as usize, &[e, NotificationEvent as u64, 0]);
    run(&h, 0, PASSIVE, "Wait", wait_event as *const () as usize, &[e, 10_000]);
    run(&h, 0, PASSIVE, "Times", times as *const () as usize, &[HostBlock::new(32, 16).expect("m").addr() as u64]);
    let r = h.stack_report();
    let wait = r.get("Wait").expect("measured").max_depth;
    let times = r.get("Times").expect("measured").max_depth;
    eprintln!("host export frames: KeWaitForSingleObject {wait} bytes, time queries {times} bytes");
    assert!(wait > 256 && wait < crate::ke::HOST_FRAME_ALLOWANCE, "{wait}");
    assert!(times < crate::ke::HOST_FRAME_ALLOWANCE, "{times}");
    assert_clean(&h);
}

extern "win64" fn deep(bytes: u64) -> u64 {
    crate::native::stack::use_stack(bytes as usize);
    0
}

#[test]
fn a_call_deeper_than_the_budget_is_a_stack_violation() {
    let h = machine();
    run(&h, 0, PASSIVE, "Shallow", deep as *const () as usize, &[4096]);
    assert_clean(&h);
    run(&h, 1, PASSIVE, "Deep", deep as *const () as usize, &[30 * 1024]);
    assert!(has(&h, Rule::Stack, "Deep used"), "{:#?}", violations(&h));
    assert!(h.stack_report()["Deep"].max_depth >= 30 * 1024 - crate::native::stack::MARGIN);
}

#[test]
fn a_runaway_driver_hits_the_guard_page_and_is_reported_as_a_fault() {
    let h = machine();
    let f = h.image().base() + 0x1000 + RUNAWAY;
    match h.call_driver(1, PASSIVE, "Runaway", f, vec![]) {
        Err(HostError::Fault { rip, .. }) => assert_eq!(rip, f, "the push in the image faulted"),
        other => panic!("expected a fault, got {other:?}"),
    }
}

// ---------------------------------------------------------------- work items with a device, and at unload

/// Creates an unnamed device, allocates and queues an I/O work item for it; writes [device, item] to `out`.
extern "win64" fn io_work_with_device(driver: u64, tag: u64, out: u64) -> u64 {
    let mut dev = 0u64;
    let st =
        import!("IoCreateDevice": fn(u64, u32, u64, u32, u32, u8, *mut u64) -> i32)(driver, 0, 0, 0x12, 0, 0, &mut dev);
    let item = if st == 0 { io_work(dev, tag) } else { 0 };
    // SAFETY: 16 bytes of test memory.
    unsafe { write_obj(out as usize, [dev, item]) };
    0
}

extern "win64" fn io_cleanup(dev: u64, item: u64) -> u64 {
    import!("IoFreeWorkItem": fn(u64))(item);
    import!("IoDeleteDevice": fn(u64))(dev);
    0
}

#[test]
fn io_work_items_run_at_passive_level_with_their_device() {
    let mut h = machine();
    let out = HostBlock::new(16, 16).expect("memory");
    let tag = 0x5000;
    run(
        &h,
        1,
        PASSIVE,
        "IoWork",
        io_work_with_device as *const () as usize,
        &[h.driver_object() as u64, tag, out.addr() as u64],
    );
    // SAFETY: written by the routine.
    let [dev, item]: [u64; 2] = unsafe { read_obj(out.addr()) };
    assert!(dev != 0 && item != 0, "{dev:#x} {item:#x}");
    assert!(wait_for(|| !seen(tag).is_empty()));
    assert_eq!(seen(tag), [("io work", PASSIVE, 0)]);
    let trace = h.trace();
    let call = trace.iter().find(|t| t.name == "IoWorkItemRoutine").expect("traced");
    assert_eq!(call.arg("DeviceObject"), Some(format!("{dev:#x}").as_str()));
    assert_eq!(call.arg("Context"), Some(format!("{tag:#x}").as_str()));
    run(&h, 0, PASSIVE, "Cleanup", io_cleanup as *const () as usize, &[dev, item]);
    assert_clean(&h);
    h.unload().expect("unload");
    assert_clean(&h);
}

/// A work routine that blocks the worker until the event at `context` is set.
extern "win64" fn blocking_work(context: u64, _handle: u64) {
    note(context, "blocking work");
    wait_event(context, u64::MAX);
}

extern "win64" fn queue_blocking_then_more(handle: u64, event: u64, tag: u64) -> u64 {
    let alloc = import!("NdisAllocateIoWorkItem": fn(u64) -> u64);
    let queue = import!("NdisQueueIoWorkItem": fn(u64, usize, u64));
    let a = alloc(handle);
    queue(a, blocking_work as *const () as usize, event);
    let b = alloc(handle);
    queue(b, ndis_work_routine as *const () as usize, tag);
    // Queueing an item that is already queued.
    queue(b, ndis_work_routine as *const () as usize, tag);
    0
}

#[test]
fn work_still_queued_at_unload_is_reported_and_never_runs() {
    let mut h = machine();
    let ev = object();
    let e = ev.addr() as u64;
    let tag = 0x6000;
    run(&h, 0, PASSIVE, "Init", init_event as *const () as usize, &[e, NotificationEvent as u64, 0]);
    run(&h, 0, PASSIVE, "Queue", queue_blocking_then_more as *const () as usize, &[1, e, tag]);
    assert!(has(&h, Rule::BadParameter, "already queued"), "{:#?}", violations(&h));
    assert!(wait_for(|| !seen(e).is_empty()), "the worker runs the blocking item");
    h.unload().expect("unload");
    assert!(has(&h, Rule::PendingOperation, "work item(s) still queued"), "{:#?}", violations(&h));
    assert!(has(&h, Rule::ObjectLeak, "work item(s) not freed"));
    // Release the worker: the second item was dropped at unload.
    run(&h, 0, PASSIVE, "Set", set_event as *const () as usize, &[e]);
    std::thread::sleep(Duration::from_millis(30));
    assert!(seen(tag).is_empty(), "no work item runs after unload");
}

extern "win64" fn overflow_in_host() -> u64 {
    crate::native::stack::touch_stack(256 * 1024);
    0
}

#[test]
fn an_overflow_in_host_code_under_the_driver_is_reported_too() {
    let h = machine();
    match h.call_driver(0, PASSIVE, "Overflow", overflow_in_host as *const () as usize, vec![]) {
        Err(HostError::Fault { symbol: Some(s), .. }) => assert!(s.contains("kernel stack overflow"), "{s}"),
        other => panic!("expected a stack-overflow fault, got {other:?}"),
    }
}

// ---------------------------------------------------------------- requests on the issuing thread

fn inline_machine() -> Host {
    let config = HostConfig { inline_requests: true, ..HostConfig::default() };
    let mut h = Host::load(&tiny_image(), config).expect("the tiny image loads");
    assert_eq!(h.driver_entry().expect("entry"), 0);
    h
}

/// Runs routine `f` as driver code in an inline request of `h` on processor `processor`.
fn inline_call(
    h: &Host,
    processor: u32,
    name: &'static str,
    f: usize,
    args: Vec<(&'static str, u64)>,
) -> Result<u64, HostError> {
    h.run_in_caller_thread(processor, name, move |inner| {
        crate::exports::call_into_driver(inner, PASSIVE, name, f, &args)
    })
}

fn local_address() -> usize {
    let here = 0u8;
    std::hint::black_box(&here) as *const u8 as usize
}

#[test]
fn inline_requests_run_on_the_issuing_thread_on_a_stack_of_their_own() {
    let h = inline_machine();
    let (me, here) = (std::thread::current().id(), local_address());
    let (thread, processor, irql, there) = h
        .run_in_caller_thread(1, "Where", |_| {
            (std::thread::current().id(), cpu::processor(), cpu::irql(), local_address())
        })
        .expect("ran");
    assert_eq!((thread, processor, irql), (me, 1, PASSIVE));
    assert!(here.abs_diff(there) > 512 * 1024, "the request's frames are on another stack: {here:#x} {there:#x}");
    // The thread's own state is back, and driver code runs, waits and is measured there like anywhere.
    assert_eq!((cpu::processor(), cpu::machine()), (0, 0));
    let e = object();
    inline_call(
        &h,
        0,
        "Init",
        init_event as *const () as usize,
        vec![("e", e.addr() as u64), ("t", NotificationEvent as u64), ("s", 0)],
    )
    .expect("init");
    assert_eq!(
        inline_call(&h, 0, "Wait", wait_event as *const () as usize, vec![("e", e.addr() as u64), ("t", 10_000)])
            .expect("wait"),
        0x102
    );
    inline_call(&h, 1, "Deep", deep as *const () as usize, vec![("bytes", 30 * 1024)]).expect("deep");
    assert!(has(&h, Rule::Stack, "Deep used"), "{:#?}", violations(&h));
    assert!(h.stack_report()["Deep"].max_depth >= 30 * 1024 - crate::native::stack::MARGIN);
}

#[test]
fn a_fault_in_an_inline_request_is_reported_and_the_issuing_thread_goes_on() {
    let h = inline_machine();
    let f = h.image().base() + 0x1000 + RUNAWAY;
    match inline_call(&h, 0, "Runaway", f, vec![]) {
        Err(HostError::Fault { rip, .. }) => assert_eq!(rip, f, "the push in the image faulted"),
        other => panic!("expected a fault, got {other:?}"),
    }
    assert!(matches!(h.run_in_caller_thread(0, "Again", |_| 0), Err(HostError::Down)));
    assert_eq!((cpu::processor(), cpu::machine(), cpu::irql()), (0, 0, PASSIVE));
    // Another machine on the same thread serves requests on a new stack, its probe and guard page fresh.
    let h2 = inline_machine();
    assert_eq!(h2.run_in_caller_thread(0, "Fine", |_| 7).expect("ran"), 7);
    inline_call(&h2, 0, "Shallow", deep as *const () as usize, vec![("bytes", 4096)]).expect("shallow");
    match inline_call(&h2, 1, "Overflow", overflow_in_host as *const () as usize, vec![]) {
        Err(HostError::Fault { symbol: Some(s), .. }) => assert!(s.contains("kernel stack overflow"), "{s}"),
        other => panic!("expected a stack-overflow fault, got {other:?}"),
    }
}

#[test]
fn a_panic_in_an_inline_request_reaches_the_caller_and_the_next_request_runs() {
    let h = inline_machine();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = h.run_in_caller_thread(0, "Panics", |_| -> u64 { panic!("a host bug in a request") });
    }));
    assert!(caught.is_err(), "the panic reached the caller");
    assert_eq!((cpu::processor(), cpu::machine(), cpu::irql()), (0, 0, PASSIVE));
    assert_eq!(h.run_in_caller_thread(1, "Next", |_| cpu::processor()).expect("ran"), 1);
    inline_call(&h, 0, "Deep", deep as *const () as usize, vec![("bytes", 8192)]).expect("deep");
    assert_clean(&h);
}

#[test]
fn processor_work_runs_on_the_asking_thread_as_that_processor_and_a_fault_there_is_reported() {
    let config = HostConfig { inline_processors: true, ..HostConfig::default() };
    let mut h = Host::load(&tiny_image(), config).expect("the tiny image loads");
    assert_eq!(h.driver_entry().expect("entry"), 0);
    let me = std::thread::current().id();
    let (thread, processor) = h.run(1, "Where", |_| (std::thread::current().id(), cpu::processor())).expect("ran");
    assert_eq!((thread, processor), (me, 1));
    // Driver routines at DISPATCH_LEVEL and their stack measurement, as on the processor's own thread.
    run(&h, 1, DISPATCH, "Shallow", deep as *const () as usize, &[4096]);
    assert_clean(&h);
    assert_eq!((cpu::processor(), cpu::irql()), (0, PASSIVE));
    let f = h.image().base() + 0x1000 + RUNAWAY;
    match h.call_driver(0, PASSIVE, "Runaway", f, vec![]) {
        Err(HostError::Fault { rip, .. }) => assert_eq!(rip, f, "the push in the image faulted"),
        other => panic!("expected a fault, got {other:?}"),
    }
    assert!(matches!(h.call_driver(1, PASSIVE, "After", deep as *const () as usize, vec![]), Err(HostError::Down)));
}

#[test]
fn every_export_added_here_is_an_import_of_wdk_16299() {
    let functions = crate::wdk::FunctionTable::wdk_16299();
    let mine: Vec<&str> = super::sync::table().into_iter().chain(super::timers::table()).map(|(_, n, _)| n).collect();
    assert!(mine.len() >= 35, "{mine:?}");
    for name in mine {
        assert_eq!(functions.linkage(name), Some(crate::wdk::Linkage::Import), "{name}");
    }
}

#[test]
fn event_routines_refuse_uninitialised_objects_and_timers() {
    let h = machine();
    let (junk, timer, dpc) = (object(), object(), object());
    // SAFETY: test memory standing in for a driver structure that is not an event.
    unsafe { write_obj(junk.addr(), 0x77u8) };
    run(&h, 0, PASSIVE, "Set", set_event as *const () as usize, &[junk.addr() as u64]);
    assert!(has(&h, Rule::BadParameter, "is not an initialised event or timer"), "{:#?}", violations(&h));
    run(&h, 0, PASSIVE, "Arm", ke_timer as *const () as usize, &[timer.addr() as u64, dpc.addr() as u64, 0x7000, 0]);
    run(&h, 0, PASSIVE, "Cancel", cancel_timer as *const () as usize, &[timer.addr() as u64]);
    run(&h, 0, PASSIVE, "Set", set_event as *const () as usize, &[timer.addr() as u64]);
    assert!(has(&h, Rule::BadParameter, "on a timer, not an event"), "{:#?}", violations(&h));
}

#[test]
fn a_fault_in_a_dpc_takes_the_machine_down_and_the_next_call_reports_it() {
    let h = machine();
    let (timer, dpc) = (object(), object());
    let runaway = h.image().base() + 0x1000 + RUNAWAY;
    extern "win64" fn arm_with(timer: u64, dpc: u64, routine: u64) -> u64 {
        import!("KeInitializeDpc": fn(u64, usize, u64))(dpc, routine as usize, 0);
        import!("KeInitializeTimer": fn(u64))(timer);
        u64::from(import!("KeSetTimer": fn(u64, i64, u64) -> u8)(timer, -10_000, dpc))
    }
    run(
        &h,
        0,
        PASSIVE,
        "Arm",
        arm_with as *const () as usize,
        &[timer.addr() as u64, dpc.addr() as u64, runaway as u64],
    );
    assert!(wait_for(|| h.trace().iter().any(|t| t.name == "DeferredRoutine")), "the DPC ran");
    std::thread::sleep(Duration::from_millis(50));
    match h.call_driver(0, PASSIVE, "After", delay as *const () as usize, vec![("ms", 0)]) {
        Err(HostError::Fault { rip, .. }) => assert_eq!(rip, runaway),
        other => panic!("expected the DPC's fault, got {other:?}"),
    }
    assert!(matches!(
        h.call_driver(0, PASSIVE, "Again", delay as *const () as usize, vec![("ms", 0)]),
        Err(HostError::Down)
    ));
}

#[test]
fn a_callback_with_a_context_in_freed_pool_is_reported() {
    type Alloc = extern "win64" fn(i32, usize, u32) -> *mut c_void;
    type Free = extern "win64" fn(*mut c_void, u32);
    // SAFETY: the export's real signature.
    let alloc = unsafe { std::mem::transmute::<usize, Alloc>(export("ExAllocatePoolWithTag")) };
    // SAFETY: as above.
    let free = unsafe { std::mem::transmute::<usize, Free>(export("ExFreePoolWithTag")) };
    let h = machine();
    let tag = u32::from_le_bytes(*b"Test");
    let (live, freed) = h
        .run(0, "pool", move |_| {
            let live = alloc(512, 64, tag) as usize;
            let freed = alloc(512, 64, tag) as usize;
            free(freed as *mut c_void, tag);
            (live, freed)
        })
        .expect("ran");
    let ret = h.image().base() + 0x1020;
    h.call_driver(0, 2, "ProtocolReceiveNetBufferLists", ret, vec![("ProtocolBindingContext", live as u64)])
        .expect("called");
    assert_clean(&h);
    h.call_driver(0, 2, "ProtocolReceiveNetBufferLists", ret, vec![("ProtocolBindingContext", freed as u64)])
        .expect("called");
    assert!(has(&h, Rule::UseAfterFree, "ProtocolBindingContext"), "{:#?}", h.violations());
    h.run(0, "free", move |_| free(live as *mut c_void, tag)).expect("ran");
}

#[test]
fn a_spin_lock_or_event_in_freed_pool_is_a_finding_and_the_memory_stays_quarantined() {
    type Alloc = extern "win64" fn(i32, usize, u32) -> *mut c_void;
    type Free = extern "win64" fn(*mut c_void, u32);
    type Lock = extern "win64" fn(*mut usize) -> u8;
    type Unlock = extern "win64" fn(*mut usize, u8);
    type InitEvent = extern "win64" fn(*mut KEVENT, i32, u8);
    type SetEvent = extern "win64" fn(*mut KEVENT, i32, u8) -> i32;
    // SAFETY: the export's real signature (so for the five below).
    let alloc = unsafe { std::mem::transmute::<usize, Alloc>(export("ExAllocatePoolWithTag")) };
    // SAFETY: as above.
    let free = unsafe { std::mem::transmute::<usize, Free>(export("ExFreePoolWithTag")) };
    // SAFETY: as above.
    let lock = unsafe { std::mem::transmute::<usize, Lock>(export("KeAcquireSpinLockRaiseToDpc")) };
    // SAFETY: as above.
    let unlock = unsafe { std::mem::transmute::<usize, Unlock>(export("KeReleaseSpinLock")) };
    // SAFETY: as above.
    let init = unsafe { std::mem::transmute::<usize, InitEvent>(export("KeInitializeEvent")) };
    // SAFETY: as above.
    let set = unsafe { std::mem::transmute::<usize, SetEvent>(export("KeSetEvent")) };
    let h = machine();
    let tag = u32::from_le_bytes(*b"Test");
    let freed = h
        .run(0, "use after free", move |_| {
            // NonPagedPoolNx (512), 512 bytes.
            let block = alloc(512, 512, tag) as usize;
            init((block + 64) as *mut KEVENT, 0, 0);
            free(block as *mut c_void, tag);
            // A spin lock and an event in the freed block: reported, not touched.
            let old = lock(block as *mut usize);
            unlock(block as *mut usize, old);
            set((block + 64) as *mut KEVENT, 0, 0);
            block
        })
        .expect("the machine survives");
    assert!(has(&h, Rule::UseAfterFree, "spin lock"), "{:#?}", h.violations());
    assert!(has(&h, Rule::UseAfterFree, "dispatcher object"), "{:#?}", h.violations());
    // The freed block is still the machine's (poisoned), not handed back to the host's heap.
    assert!(h.inner().state().quarantine.iter().any(|b| b.addr() == freed));
    // SAFETY: the quarantined block is alive (checked above) and 512 bytes long.
    let poison = unsafe { super::super::memory::read_bytes(freed + 128, 16) };
    assert!(poison.iter().all(|&b| b == crate::machine::FREED_POOL_POISON));
}

#[test]
fn the_double_fetch_watch_names_both_reads_of_a_byte_and_passes_single_reads() {
    let h = machine();
    let base = h.image().base() + 0x1000;
    let buffer = super::super::memory::HostBlock::new(8192, 4096).expect("buffer");
    let copy = super::super::memory::HostBlock::new(8192, 16).expect("copy");
    let addr = buffer.addr() as u64;
    let args = vec![("Source", addr), ("Destination", copy.addr() as u64), ("Length", 6000)];
    h.call_driver(0, PASSIVE, "Copy", base + COPY, args).expect("ran unwatched");
    // Two reads of byte 0 by driver code.
    let armed = super::super::watch::arm(buffer.addr(), 6000).expect("armed");
    h.call_driver(0, PASSIVE, "ReadTwice", base + READ_TWICE, vec![("Buffer", addr)]).expect("ran");
    let found = armed.finish().expect("a double fetch");
    assert_eq!((found.offset, found.first_rip, found.second_rip), (0, base + READ_TWICE, base + READ_TWICE + 5));
    // Distinct bytes, each read once; a copy of the whole buffer across its page boundary, once.
    let armed = super::super::watch::arm(buffer.addr(), 6000).expect("armed");
    h.call_driver(0, PASSIVE, "ReadOnce", base + READ_ONCE, vec![("Buffer", addr)]).expect("ran");
    assert_eq!(armed.finish(), None);
    let armed = super::super::watch::arm(buffer.addr(), 6000).expect("armed");
    let args = vec![("Source", addr), ("Destination", copy.addr() as u64), ("Length", 6000)];
    h.call_driver(0, PASSIVE, "Copy", base + COPY, args).expect("ran");
    assert_eq!(armed.finish(), None, "one copy reads each byte once");
    // Copying twice is a double fetch.
    let armed = super::super::watch::arm(buffer.addr(), 6000).expect("armed");
    for _ in 0..2 {
        let args = vec![("Source", addr), ("Destination", copy.addr() as u64), ("Length", 100)];
        h.call_driver(0, PASSIVE, "Copy", base + COPY, args).expect("ran");
    }
    let found = armed.finish().expect("the second copy");
    assert_eq!((found.offset, found.first_rip, found.second_rip), (0, base + COPY + 11, base + COPY + 11));
    // The pages are the host's again.
    // SAFETY: a live 8 KiB block.
    unsafe { super::super::memory::write_bytes(buffer.addr(), &[1, 2, 3]) };
}

#[test]
fn the_service_name_names_the_driver_object_the_registry_path_and_reported_addresses() {
    let config = HostConfig { service_name: "RLPROT".to_owned(), ..HostConfig::default() };
    let h = Host::load(&tiny_image(), config).expect("loads");
    assert_eq!(h.registry_path(), "\\REGISTRY\\MACHINE\\SYSTEM\\CurrentControlSet\\Services\\RLPROT");
    let base = h.image().base();
    assert_eq!(h.inner().symbolize(base + 0x1010).as_deref(), Some("rlprot.sys+0x1010"));
    // SAFETY: the driver object block holds a DRIVER_OBJECT whose DriverName was written at load.
    let d: DRIVER_OBJECT = unsafe { read_obj(h.inner().driver_object.addr()) };
    // SAFETY: DriverName points into the same block.
    assert_eq!(unsafe { unicode(&d.DriverName) }.as_deref(), Some("\\Driver\\RLPROT"));
}

//! Fault-injection reach: every routine rawlink.sys imports can be failed by ndis-host's fault plan, or is
//! listed here with the reason it cannot fail for the driver; then FailNth sweeps over every injectable call of
//! the paths issue 14 names — pended adapter open/close, NDISPROT one-frame writes, blocking reads with their
//! timer, the SEND partial reply, and faults while another processor sends and receives. Every request must end
//! with a defined status, the verifier must stay quiet and the pool must be empty at unload.
#![cfg(target_os = "linux")]

mod common;

use common::status::*;
use ndis_host::faults::FaultRule;
use ndis_host::host::{Host, HostConfig};
use ndis_host::image::ImageInfo;
use ndis_host::io::Handle;
use ndis_host::ndis::AdapterConfig;
use rawlink_abi::{ndisprot, rawlink, ReadMode, SendReply};
use std::collections::BTreeSet;
use std::time::Duration;

const STATUS_QUOTA_EXCEEDED: i32 = 0xC000_0044u32 as i32;
const STATUS_UNSUCCESSFUL: i32 = 0xC000_0001u32 as i32;

/// Imports that have no failure to inject, and why.
const NEVER_FAILS: &[(&str, &str)] = &[
    ("DbgPrintEx", "debug output; the driver ignores its status"),
    ("ExFreePoolWithTag", "void"),
    ("IoDeleteDevice", "void"),
    ("IoDeleteSymbolicLink", "deletes the link the driver created; cannot fail for it (status ignored at unload)"),
    ("IoReleaseCancelSpinLock", "void"),
    ("IofCompleteRequest", "void"),
    ("KeAcquireSpinLockAtDpcLevel", "void"),
    ("KeAcquireSpinLockRaiseToDpc", "returns the old IRQL"),
    ("KeBugCheckEx", "does not return"),
    ("KeCancelTimer", "returns whether the timer was queued, not a failure"),
    ("KeFlushQueuedDpcs", "void"),
    ("KeInitializeDpc", "void"),
    ("KeInitializeEvent", "void"),
    ("KeInitializeTimer", "void"),
    ("KeQueryPerformanceCounter", "a counter"),
    ("KeReleaseSpinLock", "void"),
    ("KeReleaseSpinLockFromDpcLevel", "void"),
    ("KeSetEvent", "returns the previous state"),
    ("KeSetTimer", "returns whether the timer was already queued, not a failure"),
    ("RtlValidRelativeSecurityDescriptor", "a pure check of the bytes it is given"),
    ("SeCaptureSubjectContext", "void"),
    ("SeReleaseSubjectContext", "void"),
    ("SeSinglePrivilegeCheck", "a question about the caller's token, answered from the token"),
    ("SeTokenIsAdmin", "a question about the caller's token, answered from the token"),
    ("ZwClose", "closes a handle the driver opened; cannot fail for a valid kernel handle"),
    ("NdisCancelOidRequest", "void"),
    ("NdisCloseAdapterEx", "returns NDIS_STATUS_SUCCESS or NDIS_STATUS_PENDING only"),
    ("NdisCompleteBindAdapterEx", "void"),
    ("NdisCompleteNetPnPEvent", "void"),
    ("NdisCompleteUnbindAdapterEx", "void"),
    ("NdisDeregisterProtocolDriver", "void"),
    ("NdisFreeMdl", "void"),
    ("NdisFreeMemory", "void"),
    ("NdisFreeNetBufferList", "void"),
    ("NdisFreeNetBufferListPool", "void"),
    ("NdisGetVersion", "a constant"),
    ("NdisReturnNetBufferLists", "void"),
    ("NdisSendNetBufferLists", "void; a send fails through the NBL's completion status"),
];

/// What a request may end with under an injected fault.
const DEFINED: &[i32] = &[
    STATUS_SUCCESS,
    STATUS_INSUFFICIENT_RESOURCES,
    STATUS_QUOTA_EXCEEDED,
    STATUS_INVALID_DEVICE_STATE,
    STATUS_DEVICE_NOT_READY,
    STATUS_NOT_FOUND,
    STATUS_IO_TIMEOUT,
    STATUS_CANCELLED,
    STATUS_UNSUCCESSFUL,
    STATUS_INVALID_BUFFER_SIZE,
];

/// What a step answers without faults: success, except where the step is refused by design.
fn clean_status(step: &str) -> i32 {
    if step.ends_with("too long") {
        STATUS_INVALID_BUFFER_SIZE
    } else if step.ends_with("after unbind") {
        STATUS_INVALID_DEVICE_STATE
    } else if step.ends_with("(cancelled)") {
        STATUS_CANCELLED
    } else {
        STATUS_SUCCESS
    }
}

fn load(adapters: Vec<AdapterConfig>, faults: Vec<FaultRule>) -> Host {
    let bytes = common::package_file("rawlink.sys");
    let mut h = Host::load(&bytes, HostConfig { faults, ..HostConfig::default() }).expect("loaded");
    for a in adapters {
        h.add_adapter(a).expect("adapter");
    }
    // DriverEntry itself may fail under a fault (its own sweep is tests/driver_entry.rs); then nothing else runs.
    let _ = h.driver_entry().expect("DriverEntry ran");
    h
}

fn frame(mac: [u8; 6], ty: u16, len: usize) -> Vec<u8> {
    let mut f = vec![0xFF; 6];
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ty.to_be_bytes());
    f.resize(len, 0x5A);
    f
}

fn utf16z(s: &str) -> Vec<u8> {
    s.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect()
}

/// One scenario's statuses, each named.
type Steps = Vec<(String, i32)>;

/// A scenario run on a loaded host.
type Scenario = fn(&mut Host) -> Steps;

fn open(h: &Host, out: &mut Steps) -> Option<Handle> {
    match h.open("\\\\.\\RawLink") {
        Ok(f) => Some(f),
        Err(e) => {
            out.push(("create".into(), e.status().expect("an NTSTATUS")));
            None
        }
    }
}

fn ioctl(h: &Host, f: Handle, code: u32, input: &[u8], out_len: usize, out: &mut Steps, what: &str) -> Vec<u8> {
    let r = h.device_io_control(f, code, input, out_len).expect("ioctl");
    out.push((what.into(), r.status));
    r.output
}

/// An adapter whose NdisOpenAdapterEx and NdisCloseAdapterEx pend is bound; a handle attaches, sends, closes;
/// the binding is unbound (the pended close) while a second handle is still attached.
fn pended_open_close(h: &mut Host) -> Steps {
    let a = AdapterConfig { open_pends: true, close_pends: true, ..AdapterConfig::ethernet(1) };
    let mut out = Steps::new();
    // Bound after DriverEntry, so the bind (the pended NdisOpenAdapterEx and what surrounds it) is swept too.
    h.add_adapter(a.clone()).expect("adapter");
    let Some(f) = open(h, &mut out) else { return out };
    let Some(g) = open(h, &mut out) else {
        out.push(("close".into(), h.close(f).expect("close")));
        return out;
    };
    ioctl(h, f, rawlink::IOCTL_RAWLINK_OPEN, &0u32.to_le_bytes(), 0, &mut out, "attach");
    ioctl(h, g, rawlink::IOCTL_RAWLINK_OPEN, &0u32.to_le_bytes(), 0, &mut out, "attach 2");
    let w = h.write(f, &common::batch(&[frame(a.mac, 0x88B5, 60)])).expect("write");
    out.push(("write".into(), w.status));
    out.push(("close".into(), h.close(f).expect("close")));
    h.remove_adapter(0).expect("unbind");
    let r = h.read(g, 2048).expect("read");
    out.push(("read after unbind".into(), r.status));
    out.push(("close 2".into(), h.close(g).expect("close")));
    out
}

/// NDISPROT mode: open by name, one-frame writes (valid, too long), a read of an indicated frame, an OID query.
fn ndisprot_writes(h: &mut Host) -> Steps {
    let a = AdapterConfig::ethernet(1);
    let mut out = Steps::new();
    let Some(f) = open(h, &mut out) else { return out };
    ioctl(h, f, ndisprot::IOCTL_NDISPROT_OPEN_DEVICE, &utf16z(&a.name), 0, &mut out, "NDISPROT open");
    for (what, len) in [("write", 60), ("write 1514", 1514), ("write too long", 1515)] {
        let r = h.write(f, &frame(a.mac, 0x888E, len)).expect("write");
        out.push((what.into(), r.status));
    }
    h.indicate_receive(0, vec![frame([2, 0, 0, 0, 0, 9], 0x888E, 64)], false).expect("receive");
    let r = h.read(f, 2048).expect("read");
    out.push(("read".into(), r.status));
    let q = 0x0001_0106u32.to_le_bytes(); // OID_GEN_MAXIMUM_FRAME_SIZE
    let mut input = q.to_vec();
    input.extend_from_slice(&[0; 4]);
    ioctl(h, f, ndisprot::IOCTL_NDISPROT_QUERY_OID_VALUE, &input, 64, &mut out, "NDISPROT query");
    out.push(("close".into(), h.close(f).expect("close")));
    out
}

/// Blocking reads: one that times out empty (its timer), one that completes on an indication, one cancelled.
fn blocking_reads(h: &mut Host) -> Steps {
    let mut out = Steps::new();
    let Some(f) = open(h, &mut out) else { return out };
    ioctl(h, f, rawlink::IOCTL_RAWLINK_OPEN, &0u32.to_le_bytes(), 0, &mut out, "attach");
    let mode = ReadMode { blocking: true, min_bytes: 1, timeout_ms: 2 };
    ioctl(h, f, rawlink::IOCTL_RAWLINK_SET_READ_MODE, &mode.to_bytes(), 0, &mut out, "read mode");
    let r = h.read(f, 4096).expect("read");
    out.push(("read (times out)".into(), r.status));
    let mode = ReadMode { blocking: true, min_bytes: 1, timeout_ms: 0 };
    ioctl(h, f, rawlink::IOCTL_RAWLINK_SET_READ_MODE, &mode.to_bytes(), 0, &mut out, "read mode (no timeout)");
    let mut p = h.submit_read(f, 4096).expect("read");
    let mac = AdapterConfig::ethernet(1).mac;
    let mut dst = frame(mac, 0x88B5, 60);
    dst[..6].copy_from_slice(&mac);
    h.indicate_receive(0, vec![dst], false).expect("receive");
    let r = match p.wait(Duration::from_millis(200)).expect("wait") {
        Some(r) => r,
        // The indication did not reach the handle (a fault dropped it): cancel the read.
        None => {
            p.cancel().expect("cancel");
            p.wait(Duration::from_secs(20)).expect("wait").expect("cancelled read completes")
        }
    };
    out.push(("read (indicated)".into(), r.status));
    let mut p = h.submit_read(f, 4096).expect("read");
    p.cancel().expect("cancel");
    let r = p.wait(Duration::from_secs(20)).expect("wait").expect("cancelled read completes");
    out.push(("read (cancelled)".into(), r.status));
    out.push(("close".into(), h.close(f).expect("close")));
    out
}

/// SEND with a batch whose second frame is invalid: the first is sent, the reply names the second.
fn send_partial(h: &mut Host) -> Steps {
    let mac = AdapterConfig::ethernet(1).mac;
    let mut out = Steps::new();
    let Some(f) = open(h, &mut out) else { return out };
    ioctl(h, f, rawlink::IOCTL_RAWLINK_OPEN, &0u32.to_le_bytes(), 0, &mut out, "attach");
    let batch = common::batch(&[frame(mac, 0x88B5, 60), frame(mac, 0x88B5, 3000), frame(mac, 0x88B5, 60)]);
    let reply = ioctl(h, f, rawlink::IOCTL_RAWLINK_SEND, &batch, SendReply::LEN, &mut out, "SEND");
    if let (Some((_, STATUS_SUCCESS)), Ok(r)) = (out.last(), SendReply::parse(&reply)) {
        // The first frame was sent or its send failed cleanly; the second is the first failure.
        assert!(r.frames_sent <= 1 && r.first_failure <= 1, "partial reply {r:?}");
        assert_ne!(r.status, STATUS_SUCCESS, "the reply names a failure: {r:?}");
        out.push(("SEND reply status".into(), if r.first_failure == 1 { STATUS_SUCCESS } else { r.status }));
    }
    out.push(("close".into(), h.close(f).expect("close")));
    out
}

/// Faults while another processor works: writes from one thread while receives are indicated on both
/// processors and the main thread queries an OID and reads.
fn concurrent_traffic(h: &mut Host) -> Steps {
    let mac = AdapterConfig::ethernet(1).mac;
    let mut out = Steps::new();
    let Some(f) = open(h, &mut out) else { return out };
    ioctl(h, f, rawlink::IOCTL_RAWLINK_OPEN, &0u32.to_le_bytes(), 0, &mut out, "attach");
    let mut rx = frame(mac, 0x88B5, 60);
    rx[..6].copy_from_slice(&mac);
    let written = std::thread::scope(|s| {
        let host = &*h;
        let writer = s.spawn(move || {
            (0..4)
                .map(|_| host.write(f, &common::batch(&[frame(mac, 0x88B5, 60)])).expect("write").status)
                .collect::<Vec<_>>()
        });
        for _ in 0..4 {
            host.indicate_receive(0, vec![rx.clone(); 2], false).expect("receive");
        }
        writer.join().expect("writer")
    });
    out.extend(written.into_iter().map(|st| ("write (concurrent)".to_owned(), st)));
    h.indicate_receive_concurrently(
        0,
        vec![rx.clone(); 2],
        vec![rx.clone(); 2],
        AdapterConfig::ethernet(1).receive_shape,
    )
    .expect("receive");
    let q = rawlink_abi::OidHeader { oid: 0x0001_0106, port: 0, timeout_ms: 0 }.to_bytes();
    ioctl(h, f, rawlink::IOCTL_RAWLINK_QUERY_OID, &q, q.len() + 4, &mut out, "OID query");
    let r = h.read(f, 65536).expect("read");
    out.push(("read".into(), r.status));
    out.push(("close".into(), h.close(f).expect("close")));
    out
}

/// Runs `scenario` once clean, then once per injectable call it made after DriverEntry with that call failed.
/// Returns how many faults were injected.
fn sweep(name: &str, adapters: &[AdapterConfig], scenario: Scenario, deterministic: bool) -> usize {
    let mut h = load(adapters.to_vec(), Vec::new());
    let setup = h.fault_history().0.len();
    let clean = scenario(&mut h);
    let calls: Vec<(String, u64)> = h.fault_history().0[setup..].to_vec();
    assert!(clean.iter().all(|(what, st)| *st == clean_status(what)), "{name}, no faults: {clean:?}");
    common::finish(h, &[]);
    let calls: BTreeSet<(String, u64)> = calls.into_iter().collect();
    assert!(!calls.is_empty(), "{name}: no injectable call after DriverEntry");
    let mut injected = 0;
    for (api, n) in &calls {
        let mut h = load(adapters.to_vec(), vec![FaultRule::FailNth { api: api.clone(), n: *n }]);
        let steps = scenario(&mut h);
        for (what, st) in &steps {
            assert!(DEFINED.contains(st), "{name}, {api} #{n} failed: {what} → {st:#x} ({steps:?})");
        }
        let hit = h.fault_history().1.iter().any(|(a, k)| a == api && k == n);
        if deterministic {
            assert!(hit, "{name}: {api} #{n} was not reached again");
        }
        injected += usize::from(hit);
        h.unload().expect("unload");
        let v = h.violations();
        assert!(v.is_empty(), "{name}, {api} #{n} failed: verifier: {v:#?}");
        assert!(h.pool().is_empty(), "{name}, {api} #{n} failed: pool left: {:?}", h.pool());
    }
    let apis: BTreeSet<&str> = calls.iter().map(|(a, _)| a.as_str()).collect();
    println!("{name}: {injected} of {} calls failed one at a time, clean; APIs: {apis:?}", calls.len());
    injected
}

#[test]
fn every_import_can_be_failed_or_cannot_fail() {
    let bytes = common::package_file("rawlink.sys");
    let info = ImageInfo::parse(&bytes).expect("rawlink.sys parses");
    let imports: BTreeSet<String> = info.imports.iter().map(|i| i.name.clone()).collect();
    // The injectable calls a broad session makes: DriverEntry (also on a Windows without ExAllocatePool2, and
    // with the budget value set), each scenario of the sweeps below, an OID with a timeout, unload.
    let mut reached = BTreeSet::new();
    let mut collect = |h: &Host| reached.extend(h.fault_history().0.into_iter().map(|(api, _)| api));
    let scenarios: &[(Scenario, Option<AdapterConfig>)] = &[
        (pended_open_close, None),
        (ndisprot_writes, Some(AdapterConfig::ethernet(1))),
        (blocking_reads, Some(AdapterConfig::ethernet(1))),
        (send_partial, Some(AdapterConfig::ethernet(1))),
        (concurrent_traffic, Some(AdapterConfig::ethernet(1))),
    ];
    for (scenario, a) in scenarios {
        let bytes = common::package_file("rawlink.sys");
        let mut h = Host::load(&bytes, HostConfig::default()).expect("loaded");
        h.set_registry_value(&format!("{}\\Parameters", h.registry_path()), "PoolBudgetMiB", 4, &64u32.to_le_bytes());
        if let Some(a) = a {
            h.add_adapter(a.clone()).expect("adapter");
        }
        assert_eq!(h.driver_entry().expect("DriverEntry ran"), 0);
        scenario(&mut h);
        h.unload().expect("unload");
        collect(&h);
    }
    // A Windows without ExAllocatePool2: the driver allocates with ExAllocatePoolWithTag.
    let bytes = common::package_file("rawlink.sys");
    let mut h = Host::load(&bytes, HostConfig { ex_allocate_pool2: false, ..HostConfig::default() }).expect("loaded");
    h.add_adapter(AdapterConfig::ethernet(1)).expect("adapter");
    assert_eq!(h.driver_entry().expect("DriverEntry ran"), 0);
    let f = common::attach(&h, 0);
    h.set_oid_pends(0, true).expect("OIDs pend");
    let q = rawlink_abi::OidHeader { oid: 0x0001_0106, port: 0, timeout_ms: 1 }.to_bytes();
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_QUERY_OID, &q, q.len() + 4).expect("ioctl");
    assert_eq!(r.status, STATUS_IO_TIMEOUT, "a pended OID past its timeout");
    h.set_oid_pends(0, false).expect("OIDs complete");
    h.complete_oid_requests(None).expect("completed");
    collect(&h);
    common::finish(h, &[f]);

    for (name, _) in NEVER_FAILS {
        assert!(imports.contains(*name), "{name} is listed as never failing but is not imported");
    }
    let never: BTreeSet<&str> = NEVER_FAILS.iter().map(|(n, _)| *n).collect();
    let missing: Vec<&String> =
        imports.iter().filter(|i| !reached.contains(*i) && !never.contains(i.as_str())).collect();
    assert!(
        missing.is_empty(),
        "imports that can fail but no fault can be injected into (or not reached): {missing:?}"
    );
    for name in ["MmMapLockedPagesSpecifyCache", "NdisOidRequest"] {
        assert!(reached.contains(name), "{name} is not injectable");
    }
}

#[test]
fn faults_in_pended_adapter_open_and_close() {
    assert!(sweep("pended open/close", &[], pended_open_close, true) > 0);
}

#[test]
fn faults_in_ndisprot_one_frame_writes() {
    assert!(sweep("NDISPROT writes", &[AdapterConfig::ethernet(1)], ndisprot_writes, true) > 0);
}

#[test]
fn faults_in_blocking_reads_and_their_timer() {
    assert!(sweep("blocking reads", &[AdapterConfig::ethernet(1)], blocking_reads, false) > 0);
}

#[test]
fn faults_in_the_send_partial_reply() {
    assert!(sweep("SEND partial reply", &[AdapterConfig::ethernet(1)], send_partial, true) > 0);
}

#[test]
fn faults_under_concurrent_traffic() {
    assert!(sweep("concurrent traffic", &[AdapterConfig::ethernet(1)], concurrent_traffic, false) > 0);
}

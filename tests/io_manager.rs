//! The real rawlink.sys behind ndis-host's emulated I/O manager: opens by name, cleanup and close, read,
//! write and device control with every transfer type, access checks, process exit and unload with files open.
//!
//! Assertions on the driver's own answers stay loose where its dispatch is still growing ("completed exactly
//! once with a defined failure status"); what the I/O manager guarantees is checked exactly.
#![cfg(target_os = "linux")]

mod common;

use ndis_host::host::{Host, HostConfig};
use ndis_host::io::{
    ctl_code, nt_error, Access, FakeDispatch, Handle, ProcessId, STATUS_ACCESS_DENIED, STATUS_CANCELLED,
    STATUS_INVALID_HANDLE, STATUS_OBJECT_NAME_NOT_FOUND, STATUS_PENDING, STATUS_SUCCESS,
};
use ndis_host::trace::{Direction, TraceEvent};
use ndis_host::verifier::Rule;
use std::time::Duration;

const PATH: &str = "\\\\.\\RawLink";
/// FILE_DEVICE_NETWORK, as the driver's device.
const DEVICE_TYPE: u32 = 0x12;
const IRP_MJ_READ: u8 = 3;
const IRP_MJ_DEVICE_CONTROL: u8 = 14;

fn started() -> Host {
    let bytes = common::package_file("rawlink.sys");
    let mut h = Host::load(&bytes, HostConfig::default()).unwrap_or_else(|e| panic!("loading rawlink.sys: {e}"));
    assert_eq!(h.driver_entry().expect("DriverEntry ran"), 0);
    h
}

fn findings(h: &Host) -> Vec<ndis_host::verifier::Violation> {
    h.violations()
}

fn assert_clean(h: &Host) {
    let v = findings(h);
    assert!(v.is_empty(), "verifier: {v:#?}");
}

fn dispatches(h: &Host) -> Vec<TraceEvent> {
    h.trace().into_iter().filter(|e| e.direction == Direction::HostToDriver && e.name.starts_with("IRP_MJ_")).collect()
}

fn dispatch_names(h: &Host) -> Vec<String> {
    dispatches(h).into_iter().map(|e| e.name).collect()
}

/// How many times the driver completed the IRP of the last dispatch named `major`.
fn completions_of_last(h: &Host, major: &str) -> usize {
    let trace = h.trace();
    let Some(pos) = trace.iter().rposition(|e| e.direction == Direction::HostToDriver && e.name == major) else {
        panic!("no {major} in the trace")
    };
    let irp = trace[pos].arg("Irp").expect("Irp traced").to_owned();
    trace[pos..]
        .iter()
        .skip(1)
        .take_while(|e| {
            !(e.direction == Direction::HostToDriver
                && e.name.starts_with("IRP_MJ_")
                && e.arg("Irp") == Some(irp.as_str()))
        })
        .filter(|e| e.name == "IofCompleteRequest" && e.arg("Irp") == Some(irp.as_str()))
        .count()
}

#[test]
fn open_and_close_send_create_cleanup_close() {
    let mut h = started();
    let handle = h.open(PATH).expect("open \\\\.\\RawLink");
    assert_eq!(h.open_handles(), [handle]);
    assert_eq!(dispatch_names(&h), ["IRP_MJ_CREATE"]);
    let create = &dispatches(&h)[0];
    assert!(create.result.as_deref().is_some_and(|r| r.starts_with("STATUS_SUCCESS")), "{create}");
    assert_eq!(create.irql, 0, "dispatch runs at PASSIVE_LEVEL");
    assert_eq!(completions_of_last(&h, "IRP_MJ_CREATE"), 1);
    assert_eq!(h.close(handle).expect("close"), 0);
    assert_eq!(dispatch_names(&h), ["IRP_MJ_CREATE", "IRP_MJ_CLEANUP", "IRP_MJ_CLOSE"]);
    assert_eq!(completions_of_last(&h, "IRP_MJ_CLEANUP"), 1);
    assert_eq!(completions_of_last(&h, "IRP_MJ_CLOSE"), 1);
    assert!(h.open_handles().is_empty());
    assert_eq!(h.close(handle).expect("second close"), STATUS_INVALID_HANDLE);
    assert_eq!(h.read(handle, 10).expect("read").status, STATUS_INVALID_HANDLE);
    assert_clean(&h);
    h.unload().expect("unload");
    assert_clean(&h);
}

#[test]
fn every_spelling_of_the_name_opens_the_device() {
    let mut h = started();
    let names = [
        "\\\\.\\RawLink",
        "\\??\\RawLink",
        "\\DosDevices\\rawlink",
        "\\GLOBAL??\\RawLink",
        "\\DosDevices\\Global\\RawLink",
        "\\Device\\RawLink",
    ];
    let handles: Vec<Handle> = names.iter().map(|n| h.open(n).unwrap_or_else(|e| panic!("{n}: {e}"))).collect();
    assert_eq!(h.open_handles().len(), names.len());
    for (handle, n) in handles.iter().zip(names) {
        assert_eq!(h.file_name(*handle).as_deref(), Some(""), "{n}: nothing remains after the device name");
    }
    for handle in handles {
        h.close(handle).expect("close");
    }
    let d = dispatch_names(&h);
    assert_eq!(d.iter().filter(|n| *n == "IRP_MJ_CREATE").count(), names.len());
    assert_eq!(d.iter().filter(|n| *n == "IRP_MJ_CLEANUP").count(), names.len());
    assert_eq!(d.iter().filter(|n| *n == "IRP_MJ_CLOSE").count(), names.len());
    h.unload().expect("unload");
    assert_clean(&h);
}

#[test]
fn cleanup_waits_for_the_last_handle_of_a_file_object() {
    let mut h = started();
    let pid = h.new_process();
    let first = h.open(PATH).expect("open");
    let dup = h.duplicate_handle(first, pid).expect("duplicate");
    assert_eq!(dup.pid, pid);
    h.close(first).expect("close");
    assert_eq!(dispatch_names(&h), ["IRP_MJ_CREATE"], "another handle still refers to the file object");
    assert!(h.read(dup, 4).expect("read").status != STATUS_INVALID_HANDLE, "the duplicate still works");
    h.exit_process(pid).expect("exit");
    assert_eq!(dispatch_names(&h), ["IRP_MJ_CREATE", "IRP_MJ_READ", "IRP_MJ_CLEANUP", "IRP_MJ_CLOSE"]);
    let completion = h.trace().into_iter().rfind(|e| e.name == "IofCompleteRequest").expect("completed");
    assert_eq!(
        completion.result.as_deref(),
        Some("IoStatus STATUS_SUCCESS (0x0) / 0"),
        "the trace shows how it completed"
    );
    h.unload().expect("unload");
    assert_clean(&h);
}

#[test]
fn unknown_names_fail_without_calling_the_driver() {
    let mut h = started();
    for n in ["\\\\.\\NoSuchDevice", "\\??\\RawLinkX", "\\Device\\Nothing", "\\Device\\RawLinkX"] {
        let e = h.open(n).expect_err(n);
        assert_eq!(e.status(), Some(STATUS_OBJECT_NAME_NOT_FOUND), "{n}: {e}");
    }
    assert!(dispatch_names(&h).is_empty());
    h.unload().expect("unload");
    assert_clean(&h);
}

#[test]
fn requests_reach_the_driver_and_complete_exactly_once() {
    let mut h = started();
    let handle = h.open(PATH).expect("open");
    let r = h.read(handle, 1514).expect("read");
    assert!(nt_error(r.status), "the driver has no binding to read from yet: {r:?}");
    assert!(r.output.is_empty());
    assert_eq!(completions_of_last(&h, "IRP_MJ_READ"), 1);
    let w = h.write(handle, &[0xAB; 60]).expect("write");
    assert!(nt_error(w.status), "{w:?}");
    assert_eq!(completions_of_last(&h, "IRP_MJ_WRITE"), 1);
    for method in 0..4 {
        let code = ctl_code(DEVICE_TYPE, 0x900 + method, method, 0);
        let r = h.device_io_control(handle, code, &[1, 2, 3, 4], 64).expect("ioctl");
        assert!(nt_error(r.status) && r.status != STATUS_PENDING, "method {method}: {r:?}");
        assert_eq!(completions_of_last(&h, "IRP_MJ_DEVICE_CONTROL"), 1, "method {method}");
        let ev = dispatches(&h).pop().expect("dispatched");
        assert_eq!(ev.arg("IoControlCode"), Some(format!("{code:#x}").as_str()));
        assert_eq!(ev.arg("InputBufferLength"), Some("4"));
        assert_eq!(ev.arg("OutputBufferLength"), Some("64"));
    }
    // Zero-length transfers carry no buffers at all.
    let r = h.device_io_control(handle, ctl_code(DEVICE_TYPE, 0x901, 0, 0), &[], 0).expect("ioctl");
    assert!(nt_error(r.status));
    let r = h.read(handle, 0).expect("read");
    assert!(r.status != STATUS_PENDING);
    h.close(handle).expect("close");
    h.unload().expect("unload");
    assert_clean(&h);
}

#[test]
fn overlapped_requests_finish_through_wait() {
    let mut h = started();
    let handle = h.open(PATH).expect("open");
    {
        let mut p = h.submit_ioctl(handle, ctl_code(DEVICE_TYPE, 0x900, 0, 0), &[7; 8], 8).expect("submit");
        let r = p.wait(Duration::from_secs(5)).expect("wait").expect("completed");
        assert!(nt_error(r.status));
        assert!(p.is_completed());
        assert!(!p.cancel().expect("cancel"), "a completed request has nothing to cancel");
        let mut q = h.submit_read(handle, 100).expect("submit");
        assert!(q.wait(Duration::from_secs(5)).expect("wait").is_some());
        let mut w = h.submit_write(handle, b"frame").expect("submit");
        assert!(w.wait(Duration::from_secs(5)).expect("wait").is_some());
    }
    h.close(handle).expect("close");
    h.unload().expect("unload");
    assert_clean(&h);
}

#[test]
fn the_handle_must_grant_the_access_the_request_needs() {
    let mut h = started();
    let pid = h.new_process();
    let ro = h.open_in(pid, PATH, Access::READ).expect("open for reading");
    let before = dispatches(&h).len();
    let w = h.write(ro, b"x").expect("write");
    assert_eq!(w.status, STATUS_ACCESS_DENIED);
    let code = ctl_code(DEVICE_TYPE, 0x900, 0, 2); // FILE_WRITE_ACCESS
    assert_eq!(h.device_io_control(ro, code, &[], 0).expect("ioctl").status, STATUS_ACCESS_DENIED);
    let code = ctl_code(DEVICE_TYPE, 0x900, 0, 3); // FILE_READ_ACCESS | FILE_WRITE_ACCESS
    assert_eq!(h.device_io_control(ro, code, &[], 0).expect("ioctl").status, STATUS_ACCESS_DENIED);
    assert_eq!(dispatches(&h).len(), before, "refused requests never reach the driver");
    // What the handle grants goes through.
    let code = ctl_code(DEVICE_TYPE, 0x900, 0, 1); // FILE_READ_ACCESS
    assert_ne!(h.device_io_control(ro, code, &[], 0).expect("ioctl").status, STATUS_ACCESS_DENIED);
    assert_ne!(h.read(ro, 10).expect("read").status, STATUS_ACCESS_DENIED);
    assert_eq!(dispatches(&h).len(), before + 2);
    let rw = h.open_in(pid, PATH, Access::READ_WRITE).expect("open");
    let code = ctl_code(DEVICE_TYPE, 0x900, 0, 3);
    assert_ne!(h.device_io_control(rw, code, &[], 0).expect("ioctl").status, STATUS_ACCESS_DENIED);
    h.exit_process(pid).expect("exit");
    h.unload().expect("unload");
    assert_clean(&h);
}

#[test]
fn process_exit_closes_its_handles() {
    let mut h = started();
    let pid = h.new_process();
    let mine = h.open(PATH).expect("open");
    let a = h.open_in(pid, PATH, Access::READ_WRITE).expect("open");
    let b = h.open_in(pid, "\\??\\RawLink", Access::READ_WRITE).expect("open");
    assert_eq!(a.pid, pid);
    assert_eq!(h.open_handles().len(), 3);
    h.exit_process(pid).expect("exit");
    assert_eq!(h.open_handles(), [mine]);
    assert_eq!(mine.pid, ProcessId::INITIAL);
    let d = dispatch_names(&h);
    assert_eq!(d.iter().filter(|n| *n == "IRP_MJ_CLEANUP").count(), 2);
    assert_eq!(d.iter().filter(|n| *n == "IRP_MJ_CLOSE").count(), 2);
    assert_eq!(h.read(b, 1).expect("read").status, STATUS_INVALID_HANDLE);
    h.close(mine).expect("close");
    h.unload().expect("unload");
    assert_clean(&h);
}

#[test]
fn unloading_with_files_open_is_reported_and_the_files_are_closed_first() {
    let mut h = started();
    let _still_open = h.open(PATH).expect("open");
    h.unload().expect("unload");
    let v = findings(&h);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].rule, Rule::Irp);
    assert!(v[0].message.contains("file object(s) are open"), "{}", v[0]);
    let d = dispatch_names(&h);
    assert_eq!(d, ["IRP_MJ_CREATE", "IRP_MJ_CLEANUP", "IRP_MJ_CLOSE"]);
    let trace = h.trace();
    let close = trace.iter().position(|e| e.name == "IRP_MJ_CLOSE").expect("close");
    let unload = trace.iter().position(|e| e.name == "DriverUnload").expect("unload");
    assert!(close < unload, "files are closed before DriverUnload");
}

// ---------------------------------------------------------------- the I/O manager's own paths, with stand-in dispatch
// routines (the real driver completes everything synchronously today)

fn irp_findings(h: &Host) -> Vec<String> {
    findings(h).into_iter().map(|v| format!("{v}")).collect()
}

#[test]
fn a_pending_request_is_cancelled_through_its_cancel_routine() {
    let mut h = started();
    let handle = h.open(PATH).expect("open");
    h.install_fake_dispatch(IRP_MJ_READ, FakeDispatch::PendCancelable);
    {
        let mut p = h.submit_read(handle, 64).expect("submit");
        assert!(!p.is_completed());
        assert_eq!(p.wait(Duration::from_millis(20)).expect("wait"), None, "still pending");
        assert!(p.cancel().expect("cancel"), "the cancel routine ran");
        let r = p.wait(Duration::from_secs(5)).expect("wait").expect("completed");
        assert_eq!(r.status, STATUS_CANCELLED);
        assert!(r.output.is_empty());
    }
    let trace = h.trace();
    let cancel = trace.iter().find(|e| e.name == "DriverCancel").expect("cancel routine called");
    assert_eq!(cancel.irql, 2, "cancel routines run at DISPATCH_LEVEL");
    assert_eq!(cancel.arg("CancelIrql"), Some("0"));
    assert!(trace.iter().any(|e| e.name == "IoReleaseCancelSpinLock" && e.arg("Irql") == Some("0")));
    assert_eq!(completions_of_last(&h, "IRP_MJ_READ"), 1);
    h.close(handle).expect("close");
    h.unload().expect("unload");
    assert_clean(&h);
}

#[test]
fn a_pending_request_completes_later_and_close_waits_for_it() {
    let mut h = started();
    let handle = h.open(PATH).expect("open");
    h.install_fake_dispatch(IRP_MJ_READ, FakeDispatch::PendCancelable);
    {
        let mut p = h.submit_read(handle, 16).expect("submit");
        // Closing the last handle sends CLEANUP at once; CLOSE waits for the outstanding request.
        h.close(handle).expect("close");
        assert_eq!(dispatch_names(&h), ["IRP_MJ_CREATE", "IRP_MJ_READ", "IRP_MJ_CLEANUP"]);
        assert_eq!(h.complete_fake_queue(STATUS_SUCCESS).expect("drain"), 1);
        let r = p.wait(Duration::from_secs(5)).expect("wait").expect("completed");
        assert_eq!(r.status, STATUS_SUCCESS);
    }
    assert_eq!(dispatch_names(&h), ["IRP_MJ_CREATE", "IRP_MJ_READ", "IRP_MJ_CLEANUP", "IRP_MJ_CLOSE"]);
    h.unload().expect("unload");
    assert_clean(&h);
}

#[test]
fn process_exit_cancels_outstanding_requests_before_closing() {
    let mut h = started();
    let pid = h.new_process();
    let handle = h.open_in(pid, PATH, Access::READ_WRITE).expect("open");
    h.install_fake_dispatch(IRP_MJ_DEVICE_CONTROL, FakeDispatch::PendCancelable);
    let p = h.submit_ioctl(handle, ctl_code(DEVICE_TYPE, 0x900, 0, 0), &[1], 8).expect("submit");
    drop(p);
    h.exit_process(pid).expect("exit");
    let names: Vec<String> = h.trace().into_iter().map(|e| e.name).collect();
    let at = |n: &str| names.iter().position(|x| x == n).unwrap_or_else(|| panic!("{n} missing: {names:?}"));
    assert!(at("DriverCancel") < at("IRP_MJ_CLEANUP") && at("IRP_MJ_CLEANUP") < at("IRP_MJ_CLOSE"));
    assert!(h.open_handles().is_empty());
    h.unload().expect("unload");
    assert_clean(&h);
}

#[test]
fn output_is_copied_back_for_every_transfer_type() {
    let mut h = started();
    let handle = h.open(PATH).expect("open");
    h.install_fake_dispatch(IRP_MJ_DEVICE_CONTROL, FakeDispatch::FillOutput { overrun: false });
    for method in 0..4 {
        let r = h.device_io_control(handle, ctl_code(DEVICE_TYPE, 0x900, method, 0), &[1, 2, 3], 24).expect("ioctl");
        assert_eq!((r.status, r.information), (STATUS_SUCCESS, 24), "method {method}");
        assert_eq!(r.output, vec![0x5A; 24], "method {method}");
    }
    // DO_DIRECT_IO read: the driver maps the MDL (MmGetSystemAddressForMdlSafe) and writes through it.
    h.install_fake_dispatch(IRP_MJ_READ, FakeDispatch::FillOutput { overrun: false });
    let r = h.read(handle, 5000).expect("read");
    assert_eq!((r.status, r.output.len()), (STATUS_SUCCESS, 5000));
    assert!(r.output.iter().all(|&b| b == 0x5A));
    assert!(h.trace().iter().any(|e| e.name == "MmMapLockedPagesSpecifyCache"));
    h.close(handle).expect("close");
    h.unload().expect("unload");
    assert_clean(&h);
}

#[test]
fn the_verifier_catches_dispatch_contract_breaches() {
    let cases: [(FakeDispatch, &str); 5] = [
        (FakeDispatch::PendUnmarked, "without IoMarkIrpPending"),
        (FakeDispatch::ReturnWithoutCompleting, "without completing"),
        (FakeDispatch::StatusMismatch, "but completed IRP"),
        (FakeDispatch::CompleteTwice, "completed twice"),
        (FakeDispatch::FillOutput { overrun: true }, "beyond the caller's"),
    ];
    for (b, expected) in cases {
        let mut h = started();
        let handle = h.open(PATH).expect("open");
        h.install_fake_dispatch(IRP_MJ_DEVICE_CONTROL, b);
        {
            let mut p = h.submit_ioctl(handle, ctl_code(DEVICE_TYPE, 0x900, 0, 0), &[], 8).expect("submit");
            if b == FakeDispatch::PendUnmarked {
                // The request stays queued; complete it so the rest of the run is clean.
                assert_eq!(h.complete_fake_queue(STATUS_SUCCESS).expect("drain"), 1);
            }
            assert!(p.wait(Duration::from_secs(5)).expect("wait").is_some(), "{b:?}");
        }
        let f = irp_findings(&h);
        assert!(f.iter().any(|m| m.contains(expected)), "{b:?}: expected '{expected}' in {f:#?}");
        h.close(handle).expect("close");
        h.unload().expect("unload");
    }
}

#[test]
fn mdls_a_driver_builds_for_its_pool_are_checked_and_must_be_freed() {
    let mut h = started();
    let handle = h.open(PATH).expect("open");
    h.install_fake_dispatch(IRP_MJ_DEVICE_CONTROL, FakeDispatch::MdlRoundTrip { leak: false });
    let r = h.device_io_control(handle, ctl_code(DEVICE_TYPE, 0x900, 0, 0), &[], 0).expect("ioctl");
    assert_eq!(r.status, STATUS_SUCCESS, "the MDL described the pool block and was mapped to it");
    let names: Vec<String> = h.trace().into_iter().map(|e| e.name).collect();
    for n in ["IoAllocateMdl", "MmBuildMdlForNonPagedPool", "IoFreeMdl"] {
        assert!(names.iter().any(|x| x == n), "{n} traced");
    }
    assert_clean(&h);
    h.install_fake_dispatch(IRP_MJ_DEVICE_CONTROL, FakeDispatch::MdlRoundTrip { leak: true });
    let r = h.device_io_control(handle, ctl_code(DEVICE_TYPE, 0x900, 0, 0), &[], 0).expect("ioctl");
    assert_eq!(r.status, STATUS_SUCCESS);
    h.close(handle).expect("close");
    h.unload().expect("unload");
    let f = irp_findings(&h);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert!(f[0].contains("MDL(s) from IoAllocateMdl not freed"), "{f:#?}");
}

#[test]
fn cancel_safe_queues_pend_cancel_and_drain() {
    let mut h = started();
    let pid = h.new_process();
    let handle = h.open_in(pid, PATH, Access::READ_WRITE).expect("open");
    h.install_fake_dispatch(IRP_MJ_READ, FakeDispatch::CsqPend);
    {
        let mut a = h.submit_read(handle, 10).expect("submit");
        let mut b = h.submit_read(handle, 10).expect("submit");
        let mut c = h.submit_read(handle, 10).expect("submit");
        assert_eq!(a.wait(Duration::from_millis(10)).expect("wait"), None);
        // IoCancelIrp runs the library's cancel routine, which takes the IRP off the driver's queue.
        assert!(b.cancel().expect("cancel"));
        assert_eq!(b.wait(Duration::from_secs(5)).expect("wait").map(|r| r.status), Some(STATUS_CANCELLED));
        // The driver drains the rest with IoCsqRemoveNextIrp.
        assert_eq!(h.complete_fake_queue(STATUS_SUCCESS).expect("drain"), 2);
        assert_eq!(a.wait(Duration::from_secs(5)).expect("wait").map(|r| r.status), Some(STATUS_SUCCESS));
        assert_eq!(c.wait(Duration::from_secs(5)).expect("wait").map(|r| r.status), Some(STATUS_SUCCESS));
        // A request queued at process exit is cancelled through the queue.
        let d = h.submit_read(handle, 10).expect("submit");
        drop(d);
    }
    h.exit_process(pid).expect("exit");
    let names: Vec<String> = h.trace().into_iter().map(|e| e.name).collect();
    for n in [
        "IoCsqInitialize",
        "IoCsqInsertIrp",
        "CsqInsertIrp",
        "CsqRemoveIrp",
        "CsqCompleteCanceledIrp",
        "IoCsqRemoveNextIrp",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} traced");
    }
    assert_eq!(names.iter().filter(|n| *n == "DriverCancel").count(), 2);
    h.unload().expect("unload");
    assert_clean(&h);
}

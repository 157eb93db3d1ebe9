//! The handle paths of the real rawlink.sys under allocation failures: from every allocation of a session
//! (create, attach, filter, OID query and set, queue resize, reads, sends, events, close) on, allocations
//! fail. Each request must end with a defined status, nothing may leak and the verifier must stay quiet.
#![cfg(target_os = "linux")]

mod common;

use common::status::*;

use ndis_host::faults::{FaultRule, ALLOCATING_APIS};
use ndis_host::host::{Host, HostConfig};
use rawlink_abi::{class, rawlink, FilterRequest, OidHeader, SendReply};

fn host(faults: Vec<FaultRule>) -> Host {
    let bytes = common::package_file("rawlink.sys");
    let mut h = Host::load(&bytes, HostConfig { faults, ..HostConfig::default() }).expect("loaded");
    h.add_adapter(ndis_host::ndis::AdapterConfig::ethernet(1)).expect("adapter");
    assert_eq!(h.driver_entry().expect("DriverEntry ran"), 0);
    h
}

fn allocations(h: &Host) -> u64 {
    h.fault_history().0.iter().filter(|(api, _)| ALLOCATING_APIS.contains(&api.as_str())).count() as u64
}

/// One handle's session; returns each step's status. A step that needs an earlier one's success is skipped
/// (its status is the earlier failure) only where the driver would otherwise report a state error.
fn session(h: &mut Host) -> Vec<(&'static str, i32)> {
    let mut out = Vec::new();
    let f = match h.open("\\\\.\\RawLink") {
        Ok(f) => f,
        Err(e) => {
            out.push(("create", e.status().unwrap_or(-1)));
            return out;
        }
    };
    let mut step = |name, r: ndis_host::io::IoResult| out.push((name, r.status));
    step("attach", h.device_io_control(f, rawlink::IOCTL_RAWLINK_OPEN, &0u32.to_le_bytes(), 0).expect("ioctl"));
    let (fb, n) = FilterRequest::new(class::DEFAULT | class::PROMISCUOUS, &[0x88B5]).expect("filter").to_bytes();
    step("filter", h.device_io_control(f, rawlink::IOCTL_RAWLINK_SET_FILTER, &fb[..n], 0).expect("ioctl"));
    let q = OidHeader { oid: ndis_sys::OID_GEN_MAXIMUM_FRAME_SIZE, port: 0, timeout_ms: 0 }.to_bytes();
    step("query", h.device_io_control(f, rawlink::IOCTL_RAWLINK_QUERY_OID, &q, OidHeader::LEN + 4).expect("ioctl"));
    step(
        "queue",
        h.device_io_control(f, rawlink::IOCTL_RAWLINK_SET_QUEUE_SIZE, &(2u32 << 20).to_le_bytes(), 0).expect("ioctl"),
    );
    let mut frame = vec![0xFF; 6];
    frame.extend_from_slice(&ndis_host::ndis::AdapterConfig::ethernet(1).mac);
    frame.extend_from_slice(&[0x88, 0xB5]);
    frame.resize(60, 7);
    h.indicate_receive(0, vec![frame.clone(); 3], false).expect("indicated");
    step("read", h.read(f, 4096).expect("read"));
    let batch = common::batch(&[frame]);
    step("write", h.write(f, &batch).expect("write"));
    step("send", h.device_io_control(f, rawlink::IOCTL_RAWLINK_SEND, &batch, SendReply::LEN).expect("ioctl"));
    let waiting = h.submit_ioctl(f, rawlink::IOCTL_RAWLINK_WAIT_EVENT, &[], 16).expect("submitted");
    let irp = waiting.irp();
    drop(waiting);
    h.indicate_link_state(0, false).expect("status");
    let r = h.wait_request(irp, std::time::Duration::from_secs(5)).expect("wait").expect("completed");
    out.push(("event", r.status));
    out.push(("close", h.close(f).expect("closed")));
    out
}

#[test]
fn every_handle_request_fails_cleanly_when_allocations_run_out() {
    let mut h = host(Vec::new());
    let before = allocations(&h);
    let clean = session(&mut h);
    assert!(clean.iter().all(|(_, st)| *st == STATUS_SUCCESS), "{clean:?}");
    let after = allocations(&h);
    common::finish(h, &[]);
    assert!(after > before + 4, "the session allocates: {before} → {after}");
    for n in before + 1..=after {
        let mut h = host(vec![FaultRule::FailAllocationsFrom { n }]);
        let steps = session(&mut h);
        for (name, st) in &steps {
            // Out of memory is reported as such; a request on a handle whose attach failed reports the handle
            // unattached.
            let defined = [STATUS_SUCCESS, STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_DEVICE_STATE];
            assert!(defined.contains(st), "allocations from #{n}: {name} → {st:#x} ({steps:?})");
        }
        if let Some((_, st)) = steps.iter().find(|(name, _)| *name == "close") {
            assert_eq!(*st, STATUS_SUCCESS, "allocations from #{n}: close always succeeds");
        } else {
            assert_eq!(steps, [("create", STATUS_INSUFFICIENT_RESOURCES)], "allocations from #{n}");
        }
        assert!(h.fault_history().1.len() as u64 >= 1, "allocations from #{n}: a fault was injected");
        common::finish(h, &[]);
    }
}

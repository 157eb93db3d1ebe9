//! Requests that reach the driver after IRP_MJ_CLEANUP of their file object (they were in flight when the
//! last handle closed): each is refused with STATUS_DELETE_PENDING, none attaches, queues or arms anything,
//! and IRP_MJ_CLOSE finds the handle detached. `Host::cleanup_only` sends the CLEANUP while the handle stays
//! usable, so the late requests are sent in a fixed order.
#![cfg(target_os = "linux")]

mod common;

use common::status::*;

use ndis_host::host::Host;
use ndis_host::io::Handle;
use rawlink_abi::{class, ndisprot, rawlink, Event, FilterRequest, OidHeader, ReadMode, SendReply};

// CAST: the docs' unsigned hex, as the i32 the I/O manager reports.
const STATUS_DELETE_PENDING: i32 = 0xC000_0056u32 as i32;

fn frame() -> Vec<u8> {
    let mut f = vec![0xFF; 6];
    f.extend_from_slice(&ndis_host::ndis::AdapterConfig::ethernet(1).mac);
    f.extend_from_slice(&[0x88, 0xB5]);
    f.resize(60, 7);
    f
}

fn utf16z(s: &str) -> Vec<u8> {
    s.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect()
}

/// Every request a handle can send, each after CLEANUP; every one must be refused with STATUS_DELETE_PENDING.
fn late_requests(h: &Host, f: Handle) {
    let (fb, n) = FilterRequest::new(class::DEFAULT | class::PROMISCUOUS, &[]).expect("filter").to_bytes();
    let blocking = ReadMode { blocking: true, min_bytes: 1, timeout_ms: 0 }.to_bytes();
    let oid = OidHeader { oid: ndis_sys::OID_GEN_MAXIMUM_FRAME_SIZE, port: 0, timeout_ms: 0 }.to_bytes();
    let mut set_oid =
        OidHeader { oid: ndis_sys::OID_GEN_CURRENT_PACKET_FILTER, port: 0, timeout_ms: 0 }.to_bytes().to_vec();
    set_oid.extend_from_slice(&class::DEFAULT.to_le_bytes());
    let name = utf16z(&ndis_host::ndis::AdapterConfig::ethernet(1).name);
    let batch = common::batch(&[frame()]);
    let ioctls: Vec<(&str, u32, Vec<u8>, usize)> = vec![
        ("OPEN", rawlink::IOCTL_RAWLINK_OPEN, 0u32.to_le_bytes().to_vec(), 0),
        ("NDISPROT_OPEN_DEVICE", ndisprot::IOCTL_NDISPROT_OPEN_DEVICE, name, 0),
        ("SET_FILTER", rawlink::IOCTL_RAWLINK_SET_FILTER, fb[..n].to_vec(), 0),
        ("SET_READ_MODE", rawlink::IOCTL_RAWLINK_SET_READ_MODE, blocking.to_vec(), 0),
        ("SET_QUEUE_SIZE", rawlink::IOCTL_RAWLINK_SET_QUEUE_SIZE, (1u32 << 20).to_le_bytes().to_vec(), 0),
        ("SET_CAPTURE_LENGTH", rawlink::IOCTL_RAWLINK_SET_CAPTURE_LENGTH, 64u32.to_le_bytes().to_vec(), 0),
        ("ALLOW_ANY_SOURCE", rawlink::IOCTL_RAWLINK_ALLOW_ANY_SOURCE, 1u32.to_le_bytes().to_vec(), 0),
        ("GET_STATISTICS", rawlink::IOCTL_RAWLINK_GET_STATISTICS, vec![], 64),
        ("QUERY_OID", rawlink::IOCTL_RAWLINK_QUERY_OID, oid.to_vec(), OidHeader::LEN + 4),
        ("SET_OID", rawlink::IOCTL_RAWLINK_SET_OID, set_oid, 0),
        ("SEND", rawlink::IOCTL_RAWLINK_SEND, batch.clone(), SendReply::LEN),
        ("WAIT_EVENT", rawlink::IOCTL_RAWLINK_WAIT_EVENT, vec![], Event::LEN),
        ("QUERY_BINDING", rawlink::IOCTL_RAWLINK_QUERY_BINDING, 0u32.to_le_bytes().to_vec(), 1024),
    ];
    for (what, code, input, out) in ioctls {
        // Submitted, not waited for: a request that pends after CLEANUP would never complete.
        let p = h.submit_ioctl(f, code, &input, out).expect("submitted");
        let irp = p.irp();
        drop(p);
        let r = h.wait_request(irp, std::time::Duration::from_secs(2)).expect("wait");
        assert_eq!(r.map(|r| r.status), Some(STATUS_DELETE_PENDING), "{what} after CLEANUP");
    }
    let p = h.submit_read(f, 4096).expect("submitted");
    let irp = p.irp();
    drop(p);
    let r = h.wait_request(irp, std::time::Duration::from_secs(2)).expect("wait");
    assert_eq!(r.map(|r| r.status), Some(STATUS_DELETE_PENDING), "READ after CLEANUP");
    let r = h.write(f, &batch).expect("write");
    assert_eq!(r.status, STATUS_DELETE_PENDING, "WRITE after CLEANUP");
}

/// A frame reaches the binding after the late requests and CLOSE: nobody may still be on its open list.
fn indicate_and_finish(h: Host, f: Handle) {
    assert_eq!(h.close(f).expect("closed"), STATUS_SUCCESS);
    assert_eq!(h.indicate_receive(0, vec![frame(); 2], false).expect("indicated"), 0);
    let other = common::attach(&h, 0);
    assert_eq!(h.read(other, 4096).expect("read").status, STATUS_SUCCESS, "the binding still works");
    common::finish(h, &[other]);
}

#[test]
fn an_attach_that_arrives_after_cleanup_is_refused_and_close_finds_the_handle_detached() {
    let h = common::running(common::ethernet(1));
    let f = h.open("\\\\.\\RawLink").expect("opened");
    assert_eq!(h.cleanup_only(f).expect("cleanup"), STATUS_SUCCESS);
    late_requests(&h, f);
    indicate_and_finish(h, f);
}

#[test]
fn an_attached_handle_refuses_everything_after_cleanup_detached_it() {
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    let blocking = ReadMode { blocking: true, min_bytes: 1, timeout_ms: 0 }.to_bytes();
    assert_eq!(h.device_io_control(f, rawlink::IOCTL_RAWLINK_SET_READ_MODE, &blocking, 0).expect("ioctl").status, 0);
    assert_eq!(h.cleanup_only(f).expect("cleanup"), STATUS_SUCCESS);
    late_requests(&h, f);
    indicate_and_finish(h, f);
}

/// The race itself, on two threads: an attach and the CLEANUP of the same file object run at once. Whichever
/// wins, the attach either succeeded before CLEANUP (which then detaches it) or is refused; CLOSE never frees
/// a handle a binding still lists (the receive after it and the unload would touch freed pool).
#[test]
fn an_attach_racing_cleanup_never_leaves_the_handle_on_the_binding() {
    const ROUNDS: usize = 200;
    let h = common::running(common::ethernet(1));
    let mut outcomes = std::collections::BTreeMap::<i32, usize>::new();
    for _ in 0..ROUNDS {
        let f = h.open("\\\\.\\RawLink").expect("opened");
        let status = std::thread::scope(|s| {
            let attach = s.spawn(|| {
                h.device_io_control(f, rawlink::IOCTL_RAWLINK_OPEN, &0u32.to_le_bytes(), 0).expect("ioctl").status
            });
            assert_eq!(h.cleanup_only(f).expect("cleanup"), STATUS_SUCCESS);
            attach.join().expect("attach thread")
        });
        assert!(status == STATUS_SUCCESS || status == STATUS_DELETE_PENDING, "attach racing CLEANUP: {status:#x}");
        *outcomes.entry(status).or_default() += 1;
        assert_eq!(h.close(f).expect("closed"), STATUS_SUCCESS);
        assert_eq!(h.indicate_receive(0, vec![frame()], false).expect("indicated"), 0);
    }
    eprintln!("attach outcomes over {ROUNDS} rounds: {outcomes:?}");
    let v = h.violations();
    assert!(v.is_empty(), "verifier: {v:#?}");
    common::finish(h, &[]);
}

//! OID requests through the real rawlink.sys: rawlink's QUERY/SET_OID with a timeout, the allow-list for
//! queries and sets, the zeroed query buffer, pended completions, a timeout that cancels the request, and cancellation when the handle closes.
#![cfg(target_os = "linux")]

mod common;

use common::status::*;

use ndis_host::host::Host;
use ndis_host::io::Handle;
use rawlink_abi::{rawlink, OidHeader};
use std::time::Duration;

fn header(oid: u32, timeout_ms: u32) -> Vec<u8> {
    OidHeader { oid, port: 0, timeout_ms }.to_bytes().to_vec()
}

fn query(h: &Host, f: Handle, oid: u32, timeout_ms: u32, value_len: usize) -> (i32, Vec<u8>) {
    let r = h
        .device_io_control(f, rawlink::IOCTL_RAWLINK_QUERY_OID, &header(oid, timeout_ms), OidHeader::LEN + value_len)
        .expect("ioctl");
    (r.status, r.output.get(OidHeader::LEN..).map(<[u8]>::to_vec).unwrap_or_default())
}

fn set(h: &Host, f: Handle, oid: u32, value: &[u8]) -> i32 {
    let mut input = header(oid, 0);
    input.extend_from_slice(value);
    h.device_io_control(f, rawlink::IOCTL_RAWLINK_SET_OID, &input, 0).expect("ioctl").status
}

#[test]
fn queries_return_the_value_and_sets_are_allow_listed() {
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    let (st, v) = query(&h, f, ndis_sys::OID_GEN_MAXIMUM_FRAME_SIZE, 0, 4);
    assert_eq!((st, v), (STATUS_SUCCESS, 1500u32.to_le_bytes().to_vec()));
    let (st, _) = query(&h, f, ndis_sys::OID_802_3_CURRENT_ADDRESS, 0, 2);
    assert_eq!(st, STATUS_BUFFER_TOO_SMALL, "a 6-byte value does not fit 2 bytes");
    let (st, _) = query(&h, f, ndis_sys::OID_GEN_MEDIA_DUPLEX_STATE, 0, 4);
    assert_eq!(st, STATUS_NOT_SUPPORTED, "the miniport's status comes back");
    assert_eq!(set(&h, f, ndis_sys::OID_GEN_CURRENT_LOOKAHEAD, &256u32.to_le_bytes()), STATUS_SUCCESS);
    assert_eq!(set(&h, f, ndis_sys::OID_GEN_CURRENT_LOOKAHEAD, &[1, 0]), STATUS_BUFFER_TOO_SMALL);
    assert_eq!(set(&h, f, ndis_sys::OID_GEN_MAXIMUM_FRAME_SIZE, &9000u32.to_le_bytes()), STATUS_ACCESS_DENIED);
    assert_eq!(set(&h, f, ndis_sys::OID_GEN_CURRENT_PACKET_FILTER, &0x100u32.to_le_bytes()), STATUS_NOT_SUPPORTED);
    assert_eq!(set(&h, f, ndis_sys::OID_GEN_CURRENT_PACKET_FILTER, &[1, 0]), STATUS_BUFFER_TOO_SMALL);
    assert_eq!(set(&h, f, ndis_sys::OID_802_3_MULTICAST_LIST, &[1, 0, 0x5E, 0, 0]), STATUS_INVALID_PARAMETER);
    assert_eq!(set(&h, f, ndis_sys::OID_802_3_MULTICAST_LIST, &[2, 0, 0, 0, 0, 1]), STATUS_INVALID_PARAMETER);
    // Malformed headers.
    let bad_port = OidHeader { oid: 1, port: 1, timeout_ms: 0 }.to_bytes();
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_QUERY_OID, &bad_port, 32).expect("ioctl");
    assert_eq!(r.status, STATUS_INVALID_PARAMETER);
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_QUERY_OID, &header(1, 60_001), 32).expect("ioctl");
    assert_eq!(r.status, STATUS_INVALID_PARAMETER);
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_QUERY_OID, &[0; 15], 32).expect("ioctl");
    assert_eq!(r.status, STATUS_BUFFER_TOO_SMALL);
    let r = h
        .device_io_control(f, rawlink::IOCTL_RAWLINK_QUERY_OID, &header(ndis_sys::OID_GEN_MAXIMUM_FRAME_SIZE, 0), 8)
        .expect("ioctl");
    assert_eq!(r.status, STATUS_BUFFER_TOO_SMALL, "no room for the header in the reply");
    let unattached = h.open("\\\\.\\RawLink").expect("opened");
    assert_eq!(query(&h, unattached, ndis_sys::OID_GEN_MAXIMUM_FRAME_SIZE, 0, 4).0, STATUS_INVALID_DEVICE_STATE);
    assert_eq!(h.pending_oid_requests(), 0);
    common::finish(h, &[f, unattached]);
}

#[test]
fn only_allow_listed_oids_can_be_queried_and_they_reach_the_miniport_with_a_zeroed_buffer() {
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    // Vendor-private, unknown and configuration OIDs never reach the miniport.
    for oid in [
        0xFF00_0001,
        0x0F0F_0F0F,
        ndis_sys::OID_GEN_NETWORK_LAYER_ADDRESSES,
        ndis_sys::OID_GEN_RECEIVE_SCALE_PARAMETERS,
    ] {
        assert_eq!(query(&h, f, oid, 0, 4).0, STATUS_ACCESS_DENIED, "query of {oid:#x}");
    }
    assert!(h.oid_requests().iter().all(|e| e.set), "a refused query reached the miniport: {:?}", h.oid_requests());
    // Every allow-listed OID is passed down: it may fail in the miniport, never with ACCESS_DENIED.
    for &oid in rawlink::QUERYABLE_OIDS.iter() {
        assert_ne!(query(&h, f, oid, 0, 64).0, STATUS_ACCESS_DENIED, "query of {oid:#x}");
    }
    // The caller's bytes after the header (the system buffer holds them) are not handed to the miniport.
    let mut input = header(ndis_sys::OID_GEN_MAXIMUM_FRAME_SIZE, 0);
    input.extend_from_slice(&[0xAA; 4]);
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_QUERY_OID, &input, OidHeader::LEN + 4).expect("ioctl");
    assert_eq!((r.status, &r.output[OidHeader::LEN..]), (STATUS_SUCCESS, &1500u32.to_le_bytes()[..]));
    let last = h.oid_requests().pop().expect("the query reached the miniport");
    assert_eq!((last.oid, last.set, last.length), (ndis_sys::OID_GEN_MAXIMUM_FRAME_SIZE, false, 4));
    assert!(last.buffer_zeroed, "the miniport was handed the caller's bytes: {last:?}");
    common::finish(h, &[f]);
}

#[test]
fn pended_requests_complete_through_oid_request_complete() {
    let mut a = common::ethernet(1);
    a[0].oid_pends = true;
    a[0].oid_delay = Some(Duration::from_millis(20));
    let h = common::running(a);
    // The attach itself sets the packet filter with a pended OID.
    let f = common::attach(&h, 0);
    assert_eq!(h.oid_state(0).expect("adapter").packet_filter, rawlink_abi::class::DEFAULT);
    let (st, v) = query(&h, f, ndis_sys::OID_GEN_MAXIMUM_FRAME_SIZE, 0, 4);
    assert_eq!((st, v), (STATUS_SUCCESS, 1500u32.to_le_bytes().to_vec()));
    let group = [1, 0, 0x5E, 0, 0, 9];
    assert_eq!(set(&h, f, ndis_sys::OID_802_3_MULTICAST_LIST, &group), STATUS_SUCCESS);
    assert_eq!(h.oid_state(0).expect("adapter").multicast, vec![group]);
    common::finish(h, &[f]);
}

#[test]
fn a_request_that_runs_out_of_time_is_cancelled_and_reported_as_a_timeout() {
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    // From now on the adapter pends OIDs and never completes them by itself.
    h.set_oid_pends(0, true).expect("adapter");
    let started = std::time::Instant::now();
    let (st, _) = query(&h, f, ndis_sys::OID_GEN_MAXIMUM_FRAME_SIZE, 100, 4);
    assert_eq!(st, STATUS_IO_TIMEOUT);
    assert!(started.elapsed() < Duration::from_secs(5), "the 100 ms timeout was used");
    assert_eq!(h.pending_oid_requests(), 0, "cancelled, not left with NDIS");
    h.set_oid_pends(0, false).expect("adapter");
    common::finish(h, &[f]);
}

#[test]
fn closing_the_handle_cancels_its_request() {
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    h.set_oid_pends(0, true).expect("adapter");
    let (status, waited) = std::thread::scope(|s| {
        let t = s.spawn(|| {
            let started = std::time::Instant::now();
            (query(&h, f, ndis_sys::OID_GEN_MAXIMUM_FRAME_SIZE, 60_000, 4).0, started.elapsed())
        });
        while h.pending_oid_requests() == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        // The last handle closes while the request waits: CLEANUP cancels it.
        h.set_oid_pends(0, false).expect("adapter");
        assert_eq!(h.close(f).expect("closed"), 0);
        t.join().expect("query thread")
    });
    assert_eq!(status, STATUS_CANCELLED);
    assert!(waited < Duration::from_secs(30), "cancelled, not timed out");
    assert_eq!(h.pending_oid_requests(), 0);
    common::finish(h, &[]);
}

#[test]
fn an_unbind_cancels_requests_in_flight_and_waits_for_them() {
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    h.set_oid_pends(0, true).expect("adapter");
    let status = std::thread::scope(|s| {
        let t = s.spawn(|| query(&h, f, ndis_sys::OID_GEN_MAXIMUM_FRAME_SIZE, 60_000, 4).0);
        while h.pending_oid_requests() == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        // NDIS unbinds while the request waits: the driver cancels it and closes only after it returned.
        h.remove_adapter(0).expect("unbound");
        t.join().expect("query thread")
    });
    assert_eq!(status, STATUS_CANCELLED);
    assert_eq!(h.pending_oid_requests(), 0);
    assert!(h.bindings().is_empty(), "{:?}", h.bindings());
    common::finish(h, &[f]);
}

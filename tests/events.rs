//! Adapter events on the real rawlink.sys: link up/down (StatusEx), power (NetEventSetPower), removal —
//! delivered to a pending IOCTL_RAWLINK_WAIT_EVENT or kept for the next one; writes stop in Dx.
#![cfg(target_os = "linux")]

mod common;

use common::status::*;

use ndis_host::host::Host;
use ndis_host::io::Handle;
use rawlink_abi::{event, rawlink, BindingRecord, Event};
use std::time::Duration;

/// `NdisDeviceStateD0` / `NdisDeviceStateD3`.
const D0: u32 = 1;
const D3: u32 = 4;

fn wait_event(h: &Host, f: Handle) -> (i32, Option<Event>) {
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_WAIT_EVENT, &[], Event::LEN).expect("ioctl");
    (r.status, Event::parse(&r.output).ok())
}

fn link_up(h: &Host, index: u32) -> bool {
    let f = h.open("\\\\.\\RawLink").expect("opened");
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_QUERY_BINDING, &index.to_le_bytes(), 512).expect("ioctl");
    assert_eq!(h.close(f).expect("closed"), 0);
    BindingRecord::parse(&r.output).expect("record").0.link_up
}

fn one_frame_batch() -> Vec<u8> {
    let mut frame = vec![0xFF; 6];
    frame.extend_from_slice(&[0x02, 0x52, 0x4C, 0x00, 0x00, 1]);
    frame.extend_from_slice(&[0x88, 0xB5]);
    frame.resize(60, 0);
    common::batch(&[frame])
}

#[test]
fn link_changes_reach_a_waiting_request_or_the_next_one() {
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    let waiting = h.submit_ioctl(f, rawlink::IOCTL_RAWLINK_WAIT_EVENT, &[], Event::LEN).expect("submitted");
    assert!(!waiting.is_completed(), "no event yet: the request pends");
    let irp = waiting.irp();
    drop(waiting);
    h.indicate_link_state(0, false).expect("status");
    let r = h.wait_request(irp, Duration::from_secs(5)).expect("wait").expect("completed");
    assert_eq!(r.status, STATUS_SUCCESS);
    assert_eq!(Event::parse(&r.output), Ok(Event { kind: event::LINK_DOWN, value: 0 }));
    assert!(!link_up(&h, 0), "enumeration reports the link as it is now");
    // With no request waiting the event is kept.
    h.indicate_link_state(0, true).expect("status");
    assert_eq!(wait_event(&h, f), (STATUS_SUCCESS, Some(Event { kind: event::LINK_UP, value: 1_000_000_000 })));
    assert!(link_up(&h, 0));
    // A reply buffer too small for an event.
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_WAIT_EVENT, &[], 15).expect("ioctl");
    assert_eq!(r.status, STATUS_BUFFER_TOO_SMALL);
    common::finish(h, &[f]);
}

#[test]
fn a_waiting_request_is_cancelled_by_cancel_io_and_by_closing() {
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    let waiting = h.submit_ioctl(f, rawlink::IOCTL_RAWLINK_WAIT_EVENT, &[], Event::LEN).expect("submitted");
    assert!(waiting.cancel().expect("cancel"));
    let irp = waiting.irp();
    drop(waiting);
    let r = h.wait_request(irp, Duration::from_secs(5)).expect("wait").expect("completed");
    assert_eq!(r.status, STATUS_CANCELLED);
    let waiting = h.submit_ioctl(f, rawlink::IOCTL_RAWLINK_WAIT_EVENT, &[], Event::LEN).expect("submitted");
    let irp = waiting.irp();
    drop(waiting);
    assert_eq!(h.close(f).expect("closed"), 0);
    let r = h.wait_request(irp, Duration::from_secs(5)).expect("wait").expect("completed");
    assert_eq!(r.status, STATUS_CANCELLED);
    common::finish(h, &[]);
}

#[test]
fn power_down_stops_writes_until_d0_and_both_are_reported() {
    let mut h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    assert_eq!(h.write(f, &one_frame_batch()).expect("write").status, STATUS_SUCCESS);
    assert_eq!(h.set_power(0, D3).expect("set power"), 0);
    assert_eq!(wait_event(&h, f), (STATUS_SUCCESS, Some(Event { kind: event::POWER_LOW, value: u64::from(D3) })));
    assert_eq!(h.write(f, &one_frame_batch()).expect("write").status, STATUS_DEVICE_POWERED_OFF);
    assert_eq!(h.set_power(0, D0).expect("set power"), 0);
    assert_eq!(wait_event(&h, f), (STATUS_SUCCESS, Some(Event { kind: event::POWER_ON, value: u64::from(D0) })));
    assert_eq!(h.write(f, &one_frame_batch()).expect("write").status, STATUS_SUCCESS, "D0 resumes I/O");
    // Query and cancel remove are accepted; nothing changes.
    assert_eq!(h.query_remove(0, true).expect("query remove"), 0);
    assert_eq!(h.query_remove(0, false).expect("cancel remove"), 0);
    assert_eq!(h.write(f, &one_frame_batch()).expect("write").status, STATUS_SUCCESS);
    common::finish(h, &[f]);
}

#[test]
fn removal_is_an_event_and_then_the_handle_reports_the_adapter_gone() {
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    let waiting = h.submit_ioctl(f, rawlink::IOCTL_RAWLINK_WAIT_EVENT, &[], Event::LEN).expect("submitted");
    let irp = waiting.irp();
    drop(waiting);
    h.remove_adapter(0).expect("removed");
    let r = h.wait_request(irp, Duration::from_secs(5)).expect("wait").expect("completed");
    assert_eq!(Event::parse(&r.output), Ok(Event { kind: event::ADAPTER_GONE, value: 0 }));
    assert_eq!(wait_event(&h, f).0, STATUS_INVALID_DEVICE_STATE, "no adapter, nothing kept");
    common::finish(h, &[f]);
}

//! The control device's binding enumeration on the real rawlink.sys, through ndis-host's I/O manager:
//! NDISPROT's QUERY_BINDING and BIND_WAIT, rawlink's QUERY_BINDING, and every bad input.
#![cfg(target_os = "linux")]

mod common;

use common::status::*;

use ndis_host::ndis::AdapterConfig;
use rawlink_abi::{binding_state, ndisprot, rawlink, BindingRecord, QueryBinding};

fn utf16(b: impl Iterator<Item = u16>) -> String {
    String::from_utf16_lossy(&b.collect::<Vec<_>>())
}

#[test]
fn ndisprot_query_binding_enumerates_every_adapter_then_says_no_more() {
    let h = common::running(common::ethernet(2));
    let f = h.open("\\\\.\\RawLink").expect("opened");
    let mut names = Vec::new();
    for index in 0..2u32 {
        let mut q = vec![0u8; 20];
        q[..4].copy_from_slice(&index.to_le_bytes());
        let r = h.device_io_control(f, ndisprot::IOCTL_NDISPROT_QUERY_BINDING, &q, 512).expect("ioctl");
        assert_eq!(r.status, STATUS_SUCCESS, "index {index}");
        assert_eq!(r.output.len(), r.information);
        let reply = QueryBinding::new_checked(&r.output[..]).expect("reply");
        assert_eq!(reply.binding_index(), index);
        let name = utf16(reply.device_name().expect("name in range"));
        let descr = utf16(reply.device_descr().expect("description in range"));
        assert_eq!(name, AdapterConfig::ethernet(index as u8 + 1).name);
        assert_eq!(descr, AdapterConfig::ethernet(index as u8 + 1).friendly_name);
        names.push(name);
    }
    assert_ne!(names[0], names[1]);
    let mut q = vec![0u8; 20];
    q[0] = 2;
    let r = h.device_io_control(f, ndisprot::IOCTL_NDISPROT_QUERY_BINDING, &q, 512).expect("ioctl");
    assert_eq!(r.status, STATUS_NO_MORE_ENTRIES);
    common::finish(h, &[f]);
}

#[test]
fn rawlink_query_binding_reports_mac_mtu_speed_link_and_state() {
    let h = common::running(common::ethernet(1));
    let f = h.open("\\\\.\\RawLink").expect("opened");
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_QUERY_BINDING, &0u32.to_le_bytes(), 512).expect("ioctl");
    assert_eq!(r.status, STATUS_SUCCESS);
    let (rec, name, friendly) = BindingRecord::parse(&r.output).expect("record");
    let a = AdapterConfig::ethernet(1);
    assert_eq!(rec.mac, a.mac);
    assert_eq!(rec.mtu, a.mtu);
    assert_eq!(rec.link_speed, a.link_speed);
    assert!(rec.link_up);
    assert_eq!(rec.state, binding_state::RUNNING);
    let text = |range: std::ops::Range<usize>| {
        String::from_utf16_lossy(
            &r.output[range].chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect::<Vec<_>>(),
        )
    };
    assert_eq!(text(name), a.name);
    assert_eq!(text(friendly), a.friendly_name);
    common::finish(h, &[f]);
}

#[test]
fn paused_bindings_are_still_listed_and_state_is_reported() {
    let h = common::running(common::ethernet(1));
    assert_eq!(h.pause(0).expect("paused"), 0);
    let f = h.open("\\\\.\\RawLink").expect("opened");
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_QUERY_BINDING, &0u32.to_le_bytes(), 512).expect("ioctl");
    let (rec, _, _) = BindingRecord::parse(&r.output).expect("record");
    assert_eq!(rec.state, binding_state::PAUSED);
    common::finish(h, &[f]);
}

#[test]
fn bind_wait_succeeds_once_binds_are_complete() {
    let h = common::running(common::ethernet(1));
    let f = h.open("\\\\.\\RawLink").expect("opened");
    let r = h.device_io_control(f, ndisprot::IOCTL_NDISPROT_BIND_WAIT, &[], 0).expect("ioctl");
    assert_eq!(r.status, STATUS_SUCCESS);
    common::finish(h, &[f]);
}

#[test]
fn every_bad_input_gets_its_defined_status_and_changes_nothing() {
    let h = common::running(common::ethernet(1));
    let f = h.open("\\\\.\\RawLink").expect("opened");
    let cases: Vec<(&str, u32, Vec<u8>, usize, i32)> = vec![
        (
            "QUERY_BINDING input shorter than the struct",
            ndisprot::IOCTL_NDISPROT_QUERY_BINDING,
            vec![0; 19],
            512,
            STATUS_BUFFER_TOO_SMALL,
        ),
        (
            "QUERY_BINDING with no room for the names",
            ndisprot::IOCTL_NDISPROT_QUERY_BINDING,
            vec![0; 20],
            24,
            STATUS_BUFFER_TOO_SMALL,
        ),
        (
            "QUERY_BINDING with no output at all",
            ndisprot::IOCTL_NDISPROT_QUERY_BINDING,
            vec![0; 20],
            0,
            STATUS_BUFFER_TOO_SMALL,
        ),
        (
            "rawlink QUERY_BINDING without an index",
            rawlink::IOCTL_RAWLINK_QUERY_BINDING,
            vec![0; 3],
            512,
            STATUS_BUFFER_TOO_SMALL,
        ),
        (
            "rawlink QUERY_BINDING past the end",
            rawlink::IOCTL_RAWLINK_QUERY_BINDING,
            u32::MAX.to_le_bytes().to_vec(),
            512,
            STATUS_NO_MORE_ENTRIES,
        ),
        (
            "rawlink QUERY_BINDING, short output",
            rawlink::IOCTL_RAWLINK_QUERY_BINDING,
            vec![0; 4],
            48,
            STATUS_BUFFER_TOO_SMALL,
        ),
        (
            "binding statistics without an index",
            rawlink::IOCTL_RAWLINK_GET_BINDING_STATISTICS,
            vec![0; 3],
            64,
            STATUS_BUFFER_TOO_SMALL,
        ),
        (
            "binding statistics past the end",
            rawlink::IOCTL_RAWLINK_GET_BINDING_STATISTICS,
            7u32.to_le_bytes().to_vec(),
            64,
            STATUS_NO_MORE_ENTRIES,
        ),
        (
            "binding statistics, short output",
            rawlink::IOCTL_RAWLINK_GET_BINDING_STATISTICS,
            vec![0; 4],
            63,
            STATUS_BUFFER_TOO_SMALL,
        ),
        ("queue size without a size", rawlink::IOCTL_RAWLINK_SET_QUEUE_SIZE, vec![0; 2], 0, STATUS_BUFFER_TOO_SMALL),
        ("queue size of 0", rawlink::IOCTL_RAWLINK_SET_QUEUE_SIZE, vec![0; 4], 0, STATUS_INVALID_PARAMETER),
        (
            "ALLOW_ANY_SOURCE with 2",
            rawlink::IOCTL_RAWLINK_ALLOW_ANY_SOURCE,
            vec![2, 0, 0, 0],
            0,
            STATUS_INVALID_PARAMETER,
        ),
        (
            "a filter on an unattached handle",
            rawlink::IOCTL_RAWLINK_SET_FILTER,
            vec![1, 0, 0, 0, 0, 0, 0, 0],
            0,
            STATUS_INVALID_DEVICE_STATE,
        ),
        (
            "an event wait on an unattached handle",
            rawlink::IOCTL_RAWLINK_WAIT_EVENT,
            vec![],
            16,
            STATUS_INVALID_DEVICE_STATE,
        ),
        ("a send on an unattached handle", rawlink::IOCTL_RAWLINK_SEND, vec![0; 32], 16, STATUS_INVALID_DEVICE_STATE),
        (
            "an OID query on an unattached handle",
            rawlink::IOCTL_RAWLINK_QUERY_OID,
            vec![0; 16],
            20,
            STATUS_INVALID_DEVICE_STATE,
        ),
        (
            "an NDISPROT OID set on an unattached handle",
            ndisprot::IOCTL_NDISPROT_SET_OID_VALUE,
            vec![0; 12],
            0,
            STATUS_INVALID_DEVICE_STATE,
        ),
        (
            "an unknown METHOD_BUFFERED code",
            rawlink_abi::ctl_code(0x12, 0x9FF, 0, 3),
            vec![],
            0,
            STATUS_INVALID_DEVICE_REQUEST,
        ),
        (
            "a METHOD_NEITHER code",
            rawlink_abi::ctl_code(0x12, 0x900, 3, 3),
            vec![0; 4],
            64,
            STATUS_INVALID_DEVICE_REQUEST,
        ),
    ];
    for (what, code, input, out_len, expected) in cases {
        let r = h.device_io_control(f, code, &input, out_len).expect("ioctl");
        assert_eq!(r.status, expected, "{what}");
        assert_eq!(r.information, 0, "{what}: nothing returned on failure");
    }
    // The driver is unchanged: the binding is still there and answers.
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_QUERY_BINDING, &0u32.to_le_bytes(), 512).expect("ioctl");
    assert_eq!(r.status, STATUS_SUCCESS);
    common::finish(h, &[f]);
}

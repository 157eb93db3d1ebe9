//! Per-handle filters and the adapter packet filter on the real rawlink.sys: each handle gets what its
//! destination classes and EtherTypes ask for; the binding's packet filter (an OID the driver issues) is the
//! union over its handles and goes back to 0 when the last one closes.
#![cfg(target_os = "linux")]

mod common;

use common::status::*;

use ndis_host::host::Host;
use ndis_host::io::Handle;
use rawlink_abi::{class, frame_flags, ndisprot, rawlink, FilterRequest, Frames, HandleStatistics};

const MAC: [u8; 6] = [0x02, 0x52, 0x4C, 0x00, 0x00, 1];
const GROUP: [u8; 6] = [0x01, 0x00, 0x5E, 0x00, 0x00, 0x01];

fn frame(dst: [u8; 6], ethertype: u16, vlan_inner: Option<u16>, tag: u8) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x99]);
    f.extend_from_slice(&ethertype.to_be_bytes());
    if let Some(inner) = vlan_inner {
        f.extend_from_slice(&[0x00, 0x07]);
        f.extend_from_slice(&inner.to_be_bytes());
    }
    f.push(tag);
    f.resize(60, 0);
    f
}

fn set_filter(h: &Host, f: Handle, classes: u32, types: &[u16]) -> i32 {
    let (b, n) = FilterRequest::new(classes, types).expect("filter").to_bytes();
    h.device_io_control(f, rawlink::IOCTL_RAWLINK_SET_FILTER, &b[..n], 0).expect("ioctl").status
}

/// The tags (byte 14 or 18) of the frames a read returns, with their flags.
fn read_tags(h: &Host, f: Handle) -> Vec<(u8, u32)> {
    let r = h.read(f, 1 << 16).expect("read");
    assert_eq!(r.status, STATUS_SUCCESS);
    Frames::new(&r.output)
        .map(|(hd, d)| {
            let at = if hd.flags & frame_flags::VLAN_TAGGED != 0 { 18 } else { 14 };
            (d[at], hd.flags & frame_flags::VLAN_TAGGED)
        })
        .collect()
}

fn stats(h: &Host, f: Handle) -> HandleStatistics {
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_GET_STATISTICS, &[], 64).expect("ioctl");
    HandleStatistics::parse(&r.output).expect("statistics")
}

fn packet_filter(h: &Host) -> u32 {
    h.oid_state(0).expect("adapter").packet_filter
}

/// One adapter that, like NDIS, indicates only what the binding's packet filter accepts (the default).
fn enforcing() -> Host {
    let a = common::ethernet(1);
    assert!(a[0].enforce_packet_filter);
    common::running(a)
}

#[test]
fn each_handle_gets_its_ethertypes_and_classes_and_the_adapter_filter_is_their_union() {
    let h = enforcing();
    assert_eq!(packet_filter(&h), 0, "no handle: the binding asks for nothing");
    let arp = common::attach(&h, 0);
    assert_eq!(packet_filter(&h), class::DEFAULT, "a handle starts with NDISPROT's filter");
    assert_eq!(set_filter(&h, arp, class::BROADCAST | class::DIRECTED, &[0x0806]), STATUS_SUCCESS);
    let all = common::attach(&h, 0);
    let promisc = common::attach(&h, 0);
    assert_eq!(set_filter(&h, promisc, class::PROMISCUOUS, &[]), STATUS_SUCCESS);
    assert_eq!(packet_filter(&h), class::DEFAULT | class::PROMISCUOUS);
    h.indicate_receive(
        0,
        vec![
            frame([0xFF; 6], 0x0806, None, 1),          // broadcast ARP
            frame([0xFF; 6], 0x0800, None, 2),          // broadcast IPv4
            frame(MAC, 0x8100, Some(0x0806), 3),        // directed, VLAN-tagged ARP
            frame([2, 0, 0, 0, 0, 7], 0x0806, None, 4), // another station's ARP
            frame(GROUP, 0x0800, None, 5),              // multicast not in any list
        ],
        false,
    )
    .expect("indicated");
    assert_eq!(read_tags(&h, arp), [(1, 0), (3, frame_flags::VLAN_TAGGED)]);
    assert_eq!(read_tags(&h, all), [(1, 0), (2, 0), (3, frame_flags::VLAN_TAGGED)]);
    assert_eq!(read_tags(&h, promisc).iter().map(|t| t.0).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    let s = stats(&h, arp);
    assert_eq!((s.received, s.filtered, s.queued), (5, 3, 2));
    // Handles leaving shrink the filter; the last one restores 0.
    assert_eq!(h.close(promisc).expect("closed"), 0);
    assert_eq!(packet_filter(&h), class::DEFAULT);
    assert_eq!(set_filter(&h, all, class::DIRECTED, &[]), STATUS_SUCCESS);
    assert_eq!(packet_filter(&h), class::DIRECTED | class::BROADCAST);
    assert_eq!(h.close(arp).expect("closed"), 0);
    assert_eq!(h.close(all).expect("closed"), 0);
    assert_eq!(packet_filter(&h), 0);
    common::finish(h, &[]);
}

#[test]
fn the_adapter_delivers_only_what_the_union_asks_for() {
    let h = enforcing();
    let f = common::attach(&h, 0);
    assert_eq!(set_filter(&h, f, class::DIRECTED, &[]), STATUS_SUCCESS);
    let before = h.frames_filtered(0);
    h.indicate_receive(0, vec![frame([0xFF; 6], 0x0800, None, 1), frame(MAC, 0x0800, None, 2)], false)
        .expect("indicated");
    assert_eq!(h.frames_filtered(0), before + 1, "NDIS itself kept the broadcast from the binding");
    assert_eq!(read_tags(&h, f), [(2, 0)]);
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_GET_BINDING_STATISTICS, &0u32.to_le_bytes(), 64);
    let b = rawlink_abi::BindingStatistics::parse(&r.expect("ioctl").output).expect("stats");
    assert_eq!((b.received, b.delivered), (1, 1));
    common::finish(h, &[f]);
}

#[test]
fn bad_filter_requests_get_their_status_and_change_nothing() {
    let h = enforcing();
    let unattached = h.open("\\\\.\\RawLink").expect("opened");
    assert_eq!(set_filter(&h, unattached, class::DIRECTED, &[]), STATUS_INVALID_DEVICE_STATE);
    let f = common::attach(&h, 0);
    let ioctl =
        |input: &[u8]| h.device_io_control(f, rawlink::IOCTL_RAWLINK_SET_FILTER, input, 0).expect("ioctl").status;
    assert_eq!(ioctl(&[1, 0, 0]), STATUS_BUFFER_TOO_SMALL);
    assert_eq!(ioctl(&[1, 0, 0, 0, 2, 0, 0, 0, 0x08, 0x00]), STATUS_BUFFER_TOO_SMALL, "two types promised, one given");
    assert_eq!(ioctl(&[0x40, 0, 0, 0, 0, 0, 0, 0]), STATUS_INVALID_PARAMETER, "unknown class bit");
    assert_eq!(ioctl(&[1, 0, 0, 0, 17, 0, 0, 0]), STATUS_INVALID_PARAMETER, "too many EtherTypes");
    assert_eq!(packet_filter(&h), class::DEFAULT);
    common::finish(h, &[unattached, f]);
}

#[test]
fn ndisprot_oid_requests_query_and_set_the_packet_filter_and_multicast_list() {
    let h = enforcing();
    let f = common::attach(&h, 0);
    // QUERY_OID_VALUE: {Oid, PortNumber, Data}; the reply carries the header and the value.
    let mut q = ndis_sys::OID_802_3_CURRENT_ADDRESS.to_le_bytes().to_vec();
    q.extend_from_slice(&[0; 4 + 6]);
    let r = h.device_io_control(f, ndisprot::IOCTL_NDISPROT_QUERY_OID_VALUE, &q, q.len()).expect("ioctl");
    assert_eq!(r.status, STATUS_SUCCESS);
    assert_eq!(&r.output[8..14], &MAC);
    // A packet-filter set through the OID path becomes this handle's classes.
    let mut s = ndis_sys::OID_GEN_CURRENT_PACKET_FILTER.to_le_bytes().to_vec();
    s.extend_from_slice(&[0; 4]);
    s.extend_from_slice(&(class::DIRECTED | class::MULTICAST).to_le_bytes());
    let r = h.device_io_control(f, ndisprot::IOCTL_NDISPROT_SET_OID_VALUE, &s, 0).expect("ioctl");
    assert_eq!(r.status, STATUS_SUCCESS);
    assert_eq!(packet_filter(&h), class::DIRECTED | class::MULTICAST);
    // The multicast list goes to NDIS, and the handle's MULTICAST class then takes those groups only.
    let mut m = ndis_sys::OID_802_3_MULTICAST_LIST.to_le_bytes().to_vec();
    m.extend_from_slice(&[0; 4]);
    m.extend_from_slice(&GROUP);
    let r = h.device_io_control(f, ndisprot::IOCTL_NDISPROT_SET_OID_VALUE, &m, 0).expect("ioctl");
    assert_eq!(r.status, STATUS_SUCCESS);
    assert_eq!(h.oid_state(0).expect("adapter").multicast, vec![GROUP]);
    h.indicate_receive(
        0,
        vec![
            frame(GROUP, 0x0800, None, 1),
            frame([0x01, 0, 0x5E, 0, 0, 2], 0x0800, None, 2),
            frame([0xFF; 6], 0x0800, None, 3),
        ],
        false,
    )
    .expect("indicated");
    assert_eq!(read_tags(&h, f), [(1, 0)]);
    common::finish(h, &[f]);
}

fn oid_set(h: &Host, f: Handle, oid: u32, value: &[u8]) -> i32 {
    let mut input = rawlink_abi::OidHeader { oid, port: 0, timeout_ms: 0 }.to_bytes().to_vec();
    input.extend_from_slice(value);
    h.device_io_control(f, rawlink::IOCTL_RAWLINK_SET_OID, &input, 0).expect("ioctl").status
}

#[test]
fn each_handle_keeps_its_multicast_list_and_lookahead_and_the_adapter_gets_their_union() {
    let h = enforcing();
    let (g1, g2, g3) = (GROUP, [0x01, 0, 0x5E, 0, 0, 2], [0x33, 0x33, 0, 0, 0, 1]);
    let list = ndis_sys::OID_802_3_MULTICAST_LIST;
    let lookahead = ndis_sys::OID_GEN_CURRENT_LOOKAHEAD;
    let multicast = |h: &Host| h.oid_state(0).expect("adapter").multicast;
    let a = common::attach(&h, 0);
    let b = common::attach(&h, 0);
    assert_eq!(oid_set(&h, a, list, &[g1, g3].concat()), STATUS_SUCCESS);
    assert_eq!(oid_set(&h, b, list, &[g2, g3].concat()), STATUS_SUCCESS);
    assert_eq!(multicast(&h), [g1, g3, g2], "the adapter's list is the union, each group once");
    assert_eq!(oid_set(&h, a, lookahead, &128u32.to_le_bytes()), STATUS_SUCCESS);
    assert_eq!(oid_set(&h, b, lookahead, &256u32.to_le_bytes()), STATUS_SUCCESS);
    assert_eq!(oid_set(&h, a, lookahead, &64u32.to_le_bytes()), STATUS_SUCCESS);
    assert_eq!(h.oid_state(0).expect("adapter").lookahead, 256, "the largest any handle asked for");
    // Each handle's MULTICAST class takes its own groups only.
    h.indicate_receive(
        0,
        vec![frame(g1, 0x0800, None, 1), frame(g2, 0x0800, None, 2), frame(g3, 0x0800, None, 3)],
        false,
    )
    .expect("indicated");
    assert_eq!(read_tags(&h, a), [(1, 0), (3, 0)]);
    assert_eq!(read_tags(&h, b), [(2, 0), (3, 0)]);
    // A list that would overflow the adapter's is refused and changes nothing.
    let many: Vec<u8> = (0..31u8).flat_map(|i| [0x01, 0, 0x5E, 0, 1, i]).collect();
    assert_eq!(oid_set(&h, b, list, &many), STATUS_INSUFFICIENT_RESOURCES);
    assert_eq!(multicast(&h), [g1, g3, g2]);
    // Closing a handle gives the adapter what the others still need.
    assert_eq!(h.close(b).expect("closed"), 0);
    assert_eq!(multicast(&h), [g1, g3]);
    assert_eq!(h.oid_state(0).expect("adapter").lookahead, 64);
    assert_eq!(h.close(a).expect("closed"), 0);
    assert!(multicast(&h).is_empty(), "no handle left: the list is empty again, as when the binding opened");
    common::finish(h, &[]);
}

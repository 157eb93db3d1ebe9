//! ndis-host's double-fetch watch on the real rawlink.sys: while each request is dispatched, the caller's
//! input pages are protected, and a byte the driver reads twice is a verifier finding (Rule::DoubleFetch).
//! The write path copies the caller's buffer once and uses only the copy, so it passes. (Run against the
//! driver before that fix — commit bb9b10e's package through RAWLINK_PACKAGE_DIR — this test fails: its
//! validation walked the caller's records and the send path walked them again.)
#![cfg(target_os = "linux")]

mod common;

use common::status::*;
use ndis_host::verifier::Rule;
use rawlink_abi::rawlink;

fn frame(n: u8, len: usize) -> Vec<u8> {
    let mut f = vec![0xFF; 6];
    f.extend_from_slice(&ndis_host::ndis::AdapterConfig::ethernet(1).mac);
    f.extend_from_slice(&[0x08, 0x00]);
    f.resize(len, n);
    f
}

#[test]
fn writes_and_sends_read_each_caller_byte_once() {
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    h.set_double_fetch_watch(true);
    // A batch across several pages, a one-frame batch, and the SEND ioctl's partial reply.
    let big = common::batch(&(0..40).map(|i| frame(i, 1514)).collect::<Vec<_>>());
    let r = h.write(f, &big).expect("write");
    assert_eq!(r.status, STATUS_SUCCESS);
    let r = h.write(f, &common::batch(&[frame(1, 60)])).expect("write");
    assert_eq!(r.status, STATUS_SUCCESS);
    let mut mixed = common::batch(&[frame(2, 60), frame(3, 60)]);
    mixed.extend_from_slice(&common::batch(&[frame(4, 5000)]));
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_SEND, &mixed, rawlink_abi::SendReply::LEN).expect("send");
    assert_eq!(r.status, STATUS_SUCCESS);
    h.set_double_fetch_watch(false);
    let double: Vec<_> = h.violations().into_iter().filter(|v| v.rule == Rule::DoubleFetch).collect();
    assert!(double.is_empty(), "{double:#?}");
    assert_eq!(h.sent_frames(0).len(), 43);
    common::finish(h, &[f]);
}

//! NDISPROT compatibility on the real rawlink.sys: OPEN_DEVICE by adapter name, then one raw frame per
//! ReadFile and per WriteFile, as NDISPROT's user programs expect.
#![cfg(target_os = "linux")]

mod common;

use common::status::*;

use ndis_host::host::{Host, HostConfig};
use ndis_host::ndis::AdapterConfig;
use rawlink_abi::ndisprot;

fn utf16z(s: &str) -> Vec<u8> {
    s.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect()
}

#[test]
fn open_device_by_name_then_one_frame_per_read_and_write() {
    let a = AdapterConfig::ethernet(1);
    let bytes = common::package_file("rawlink.sys");
    let mut h = Host::load(&bytes, HostConfig::default()).expect("loaded");
    h.add_adapter(a.clone()).expect("adapter");
    assert_eq!(h.driver_entry().expect("DriverEntry ran"), 0);
    let f = h.open("\\\\.\\RawLink").expect("opened");
    // NDISPROT programs pass the name QUERY_BINDING gave them; case does not matter.
    let name = utf16z(&a.name.to_lowercase());
    let r = h.device_io_control(f, ndisprot::IOCTL_NDISPROT_OPEN_DEVICE, &name, 0).expect("ioctl");
    assert_eq!(r.status, STATUS_SUCCESS);

    let frames: Vec<Vec<u8>> = (0..3u8)
        .map(|i| {
            let mut v = vec![0xFF; 6];
            v.extend_from_slice(&[2, 0, 0, 0, 0, i]);
            v.extend_from_slice(&[0x88, 0x8E]); // EAPOL, NDISPROT's classic
            v.resize(60 + usize::from(i), i);
            v
        })
        .collect();
    h.indicate_receive(0, frames.clone(), false).expect("indicated");
    for want in &frames {
        let r = h.read(f, 1514).expect("read");
        assert_eq!(r.status, STATUS_SUCCESS);
        assert_eq!(&r.output, want, "one raw frame per read, no header");
    }
    assert_eq!(h.read(f, 1514).expect("read").information, 0);
    // A buffer too small for the next frame loses nothing.
    h.indicate_receive(0, vec![frames[2].clone()], false).expect("indicated");
    assert_eq!(h.read(f, 10).expect("read").status, STATUS_BUFFER_TOO_SMALL);
    assert_eq!(h.read(f, 1514).expect("read").output, frames[2]);

    // One raw frame per write.
    let mut out = vec![0xFF; 6];
    out.extend_from_slice(&a.mac);
    out.extend_from_slice(&[0x88, 0x8E]);
    out.resize(64, 0x42);
    let r = h.write(f, &out).expect("write");
    assert_eq!((r.status, r.information), (STATUS_SUCCESS, 64));
    assert_eq!(h.sent_frames(0), [out]);

    assert_eq!(h.close(f).expect("closed"), STATUS_SUCCESS);
    h.unload().expect("unload");
    let v = h.violations();
    assert!(v.is_empty(), "verifier: {v:#?}");
}

#[test]
fn open_device_with_a_bad_or_unknown_name_fails() {
    let bytes = common::package_file("rawlink.sys");
    let mut h = Host::load(&bytes, HostConfig::default()).expect("loaded");
    h.add_adapter(AdapterConfig::ethernet(1)).expect("adapter");
    assert_eq!(h.driver_entry().expect("DriverEntry ran"), 0);
    let f = h.open("\\\\.\\RawLink").expect("opened");
    for (what, input, status) in [
        ("an empty name", vec![], STATUS_INVALID_PARAMETER),
        ("an odd byte count", vec![b'a', 0, b'b'], STATUS_INVALID_PARAMETER),
        ("an unknown adapter", utf16z("\\DEVICE\\{00000000-0000-0000-0000-000000000000}"), STATUS_NOT_FOUND),
    ] {
        let r = h.device_io_control(f, ndisprot::IOCTL_NDISPROT_OPEN_DEVICE, &input, 0).expect("ioctl");
        assert_eq!(r.status, status, "{what}");
    }
    assert_eq!(h.close(f).expect("closed"), STATUS_SUCCESS);
    h.unload().expect("unload");
    assert!(h.violations().is_empty(), "{:#?}", h.violations());
}

/// Opens an NDISPROT handle on the first adapter of a host running with `faults`.
fn ndisprot_handle(faults: Vec<ndis_host::faults::FaultRule>) -> (Host, ndis_host::io::Handle, AdapterConfig) {
    let a = AdapterConfig::ethernet(1);
    let bytes = common::package_file("rawlink.sys");
    let mut h = Host::load(&bytes, HostConfig { faults, ..HostConfig::default() }).expect("loaded");
    h.add_adapter(a.clone()).expect("adapter");
    assert_eq!(h.driver_entry().expect("DriverEntry ran"), 0);
    let f = h.open("\\\\.\\RawLink").expect("opened");
    let r = h.device_io_control(f, ndisprot::IOCTL_NDISPROT_OPEN_DEVICE, &utf16z(&a.name), 0).expect("ioctl");
    assert_eq!(r.status, STATUS_SUCCESS);
    (h, f, a)
}

/// A one-frame write longer than any frame is refused before the driver allocates anything for it: the record
/// copy used to be allocated (and zero-filled) first, so a write could make the driver take as much pool as
/// its length claimed.
#[test]
fn an_oversized_one_frame_write_is_refused_before_any_allocation() {
    let (h, f, a) = ndisprot_handle(Vec::new());
    let mut frame = vec![0xFF; 6];
    frame.extend_from_slice(&a.mac);
    frame.extend_from_slice(&[0x88, 0x8E]);
    frame.resize(1 << 20, 0x42);
    let before = h.trace().len();
    let r = h.write(f, &frame).expect("write");
    assert_eq!(r.status, STATUS_INVALID_BUFFER_SIZE);
    let big: Vec<String> = h.trace()[before..]
        .iter()
        .filter(|e| e.name.starts_with("ExAllocatePool"))
        .filter(|e| e.arg("NumberOfBytes").and_then(|n| n.parse::<usize>().ok()).is_some_and(|n| n >= 1514))
        .map(|e| e.to_string())
        .collect();
    assert!(big.is_empty(), "allocated for a frame it then refused: {big:#?}");
    assert!(h.sent_frames(0).is_empty());
    // The largest VLAN-tagged frame still passes the early check and goes out.
    frame.truncate(1500 + 14);
    assert_eq!(h.write(f, &frame).expect("write").status, STATUS_SUCCESS);
    assert_eq!(h.sent_frames(0).len(), 1);
    common::finish(h, &[f]);
}

/// A write buffer the system cannot map (MmGetSystemAddressForMdlSafe fails: no system PTEs) is a shortage of
/// resources, not a buffer that is too small.
#[test]
fn an_unmappable_write_buffer_is_insufficient_resources() {
    let rule = ndis_host::faults::FaultRule::FailNth { api: "MmMapLockedPagesSpecifyCache".into(), n: 1 };
    let (h, f, a) = ndisprot_handle(vec![rule]);
    let mut frame = vec![0xFF; 6];
    frame.extend_from_slice(&a.mac);
    frame.extend_from_slice(&[0x88, 0x8E]);
    frame.resize(64, 0x42);
    assert_eq!(h.write(f, &frame).expect("write").status, STATUS_INSUFFICIENT_RESOURCES);
    assert!(h.sent_frames(0).is_empty());
    assert_eq!(h.write(f, &frame).expect("write").status, STATUS_SUCCESS, "the next write maps and goes out");
    common::finish(h, &[f]);
}

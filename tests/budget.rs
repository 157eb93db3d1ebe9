//! The driver-wide pool budget on the real rawlink.sys (see the driver's `budget` module): handles, receive
//! queues and writes in flight draw on it, `Parameters\PoolBudgetMiB` in the service key sets it, a request
//! past it gets STATUS_QUOTA_EXCEEDED and changes nothing, and closing gives it back. With the machine's own
//! pool exhausted (ndis-host's `pool_limit`) the driver reports STATUS_INSUFFICIENT_RESOURCES, never crashes.
#![cfg(target_os = "linux")]

mod common;

use common::status::*;

use ndis_host::host::{Host, HostConfig};
use ndis_host::io::{Handle, OpenError};
use rawlink_abi::{rawlink, ReadMode};
use std::time::Duration;

const STATUS_QUOTA_EXCEEDED: i32 = 0xC000_0044u32 as i32;
const REG_DWORD: u32 = 4;
const MIB: u32 = 1 << 20;

/// The driver with one adapter and a budget of `mib` MiB set in the registry (`None`: the default).
fn running(mib: Option<u32>, config: HostConfig) -> Host {
    let bytes = common::package_file("rawlink.sys");
    let mut h = Host::load(&bytes, config).expect("loaded");
    if let Some(m) = mib {
        let key = format!("{}\\Parameters", h.registry_path());
        h.set_registry_value(&key, "PoolBudgetMiB", REG_DWORD, &m.to_le_bytes());
    }
    h.add_adapter(ndis_host::ndis::AdapterConfig::ethernet(1)).expect("adapter");
    assert_eq!(h.driver_entry().expect("DriverEntry ran"), 0);
    h
}

fn attach(h: &Host, f: Handle) -> i32 {
    h.device_io_control(f, rawlink::IOCTL_RAWLINK_OPEN, &0u32.to_le_bytes(), 0).expect("ioctl").status
}

fn set_queue(h: &Host, f: Handle, bytes: u32) -> i32 {
    h.device_io_control(f, rawlink::IOCTL_RAWLINK_SET_QUEUE_SIZE, &bytes.to_le_bytes(), 0).expect("ioctl").status
}

fn frame(len: usize) -> Vec<u8> {
    let mut f = vec![0xFF; 6];
    f.extend_from_slice(&ndis_host::ndis::AdapterConfig::ethernet(1).mac);
    f.extend_from_slice(&[0x08, 0x00]);
    f.resize(len, 0x5A);
    f
}

#[test]
fn queues_draw_on_the_budget_the_registry_sets_and_closing_gives_it_back() {
    let h = running(Some(4), HostConfig::default());
    let handles: Vec<Handle> = (0..4).map(|_| h.open("\\\\.\\RawLink").expect("opened")).collect();
    // Each attach takes a 1 MiB queue (the default); with the handles' own share, the fourth does not fit.
    for &f in &handles[..3] {
        assert_eq!(attach(&h, f), STATUS_SUCCESS);
    }
    assert_eq!(attach(&h, handles[3]), STATUS_QUOTA_EXCEEDED);
    // A larger queue does not fit either, and the handle keeps the one it has.
    assert_eq!(set_queue(&h, handles[0], 2 * MIB), STATUS_QUOTA_EXCEEDED);
    h.indicate_receive(0, vec![frame(60)], false).expect("indicated");
    let r = h.read(handles[0], 4096).expect("read");
    assert_eq!((r.status, r.information > 0), (STATUS_SUCCESS, true), "the old queue still works");
    // Shrinking fits, and frees budget.
    assert_eq!(set_queue(&h, handles[0], 64 << 10), STATUS_SUCCESS);
    assert_eq!(attach(&h, handles[3]), STATUS_SUCCESS, "the shrunk queue's share went back to the budget");
    assert_eq!(h.close(handles[1]).expect("closed"), 0);
    let again = h.open("\\\\.\\RawLink").expect("opened");
    assert_eq!(attach(&h, again), STATUS_SUCCESS, "a closed handle's share went back");
    common::finish(h, &[handles[0], handles[2], handles[3], again]);
}

#[test]
fn open_handles_and_waiting_requests_are_bounded() {
    let h = running(Some(1), HostConfig::default());
    // 1 MiB / 4 KiB per handle.
    let mut handles = Vec::new();
    let refused = loop {
        match h.open("\\\\.\\RawLink") {
            Ok(f) => handles.push(f),
            Err(OpenError::Status(s)) => break s,
            Err(e) => panic!("{e}"),
        }
        assert!(handles.len() <= 256, "more than 1 MiB of handles");
    };
    assert_eq!((refused, handles.len()), (STATUS_QUOTA_EXCEEDED, 256));
    for f in handles.drain(1..) {
        assert_eq!(h.close(f).expect("closed"), 0);
    }
    let f = handles[0];
    assert_eq!(set_queue(&h, f, 64 << 10), STATUS_SUCCESS);
    assert_eq!(attach(&h, f), STATUS_SUCCESS);
    let m = ReadMode { blocking: true, min_bytes: 0, timeout_ms: 0 }.to_bytes();
    assert_eq!(h.device_io_control(f, rawlink::IOCTL_RAWLINK_SET_READ_MODE, &m, 0).expect("ioctl").status, 0);
    let mut reads = Vec::new();
    for _ in 0..256 {
        let mut p = h.submit_read(f, 2048).expect("submitted");
        assert!(p.wait(Duration::from_millis(0)).expect("wait").is_none(), "a blocking read waits");
        reads.push(p);
    }
    let mut extra = h.submit_read(f, 2048).expect("submitted");
    let r = extra.wait(Duration::from_secs(5)).expect("wait").expect("refused at once");
    assert_eq!(r.status, STATUS_QUOTA_EXCEEDED);
    // Closing cancels the waiting reads.
    assert_eq!(h.close(f).expect("closed"), 0);
    for mut p in reads {
        assert_eq!(p.wait(Duration::from_secs(5)).expect("wait").expect("completed").status, STATUS_CANCELLED);
    }
    common::finish(h, &[]);
}

#[test]
fn a_write_in_flight_draws_on_the_budget() {
    let h = running(Some(1), HostConfig::default());
    let f = h.open("\\\\.\\RawLink").expect("opened");
    assert_eq!(set_queue(&h, f, 64 << 10), STATUS_SUCCESS);
    assert_eq!(attach(&h, f), STATUS_SUCCESS);
    let big = common::batch(&vec![frame(1514); 700]);
    assert!(big.len() > 1 << 20);
    assert_eq!(h.write(f, &big).expect("write").status, STATUS_QUOTA_EXCEEDED);
    let small = common::batch(&vec![frame(1514); 100]);
    let r = h.write(f, &small).expect("write");
    assert_eq!((r.status, r.information), (STATUS_SUCCESS, 100 * 1514));
    assert_eq!(h.sent_frames(0).len(), 100, "only the write that fit went out");
    common::finish(h, &[f]);
}

#[test]
fn exhausted_machine_pool_is_insufficient_resources_not_a_crash() {
    let config = HostConfig { pool_limit: Some(8 << 20), ..HostConfig::default() };
    let h = running(None, config);
    let f = h.open("\\\\.\\RawLink").expect("opened");
    // The budget (256 MiB) allows a 64 MiB queue; the machine does not have it.
    assert_eq!(set_queue(&h, f, 64 * MIB), STATUS_SUCCESS, "unattached: only the size is kept");
    assert_eq!(attach(&h, f), STATUS_INSUFFICIENT_RESOURCES);
    assert_eq!(set_queue(&h, f, MIB), STATUS_SUCCESS);
    assert_eq!(attach(&h, f), STATUS_SUCCESS);
    assert_eq!(set_queue(&h, f, 64 * MIB), STATUS_INSUFFICIENT_RESOURCES);
    assert!(h.pool_in_use() < 8 << 20);
    common::finish(h, &[f]);
}

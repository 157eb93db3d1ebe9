//! The real rawlink.sys with its requests served on the issuing thread (`HostConfig::inline_requests`), and
//! also its processor work (`inline_processors`: the benchmark's mode): writes, reads that complete at once
//! or pend until a receive on another thread completes them, the mapped ring, cancel and close, with a clean
//! verifier and no pool left at unload.
#![cfg(target_os = "linux")]

mod common;

use common::status::*;

use ndis_host::host::{Host, HostConfig};
use ndis_host::io::UserMemory;
use ndis_host::ndis::AdapterConfig;
use rawlink_abi::ring::{self, RingLayout, RingSetup};
use rawlink_abi::{rawlink, Frames, ReadMode};
use std::sync::Arc;
use std::time::Duration;

use common::frame_from as frame;

fn inline_host(adapter: &AdapterConfig, inline_processors: bool) -> Host {
    let bytes = common::package_file("rawlink.sys");
    let config = HostConfig { inline_requests: true, inline_processors, ..HostConfig::default() };
    let mut h = Host::load(&bytes, config).expect("rawlink.sys loads");
    h.add_adapter(adapter.clone()).expect("adapter");
    assert_eq!(h.driver_entry().expect("DriverEntry ran"), 0);
    h
}

#[test]
fn writes_reads_the_ring_and_close_work_when_served_on_the_issuing_thread() {
    requests_on_the_issuing_thread(false);
}

/// With the receive indications (and binding, pause, unload) run on the test's thread as processor 1 too:
/// the bench's configuration. The pended read is then completed by an indication on another test thread.
#[test]
fn and_with_processor_work_on_the_asking_thread_too() {
    requests_on_the_issuing_thread(true);
}

fn requests_on_the_issuing_thread(inline_processors: bool) {
    let a = AdapterConfig::ethernet(1);
    let h = inline_host(&a, inline_processors);
    let f = common::attach(&h, 0);
    // A batch written goes out whole, in order.
    let sent: Vec<Vec<u8>> = (0..16u8).map(|i| frame(a.mac, i, 60 + usize::from(i) * 90)).collect();
    let w = h.write(f, &common::batch(&sent)).expect("write");
    assert_eq!((w.status, w.information), (STATUS_SUCCESS, sent.iter().map(Vec::len).sum::<usize>()));
    assert_eq!(h.sent_frames(0), sent);
    // Frames received are read in one batched read.
    let received: Vec<Vec<u8>> = (0..8u8).map(|i| frame([2, 0, 0, 0, 0, 9], i, 100 + usize::from(i))).collect();
    assert_eq!(h.indicate_receive(0, received.clone(), false).expect("indicated"), 0);
    let r = h.read(f, 64 * 1024).expect("read");
    assert_eq!(r.status, STATUS_SUCCESS);
    let got: Vec<Vec<u8>> = Frames::new(&r.output).map(|(_, data)| data.to_vec()).collect();
    assert_eq!(got, received);
    // A blocking read pends (its dispatch routine returns STATUS_PENDING) and is completed by a receive that
    // another thread indicates while this thread waits for it.
    let mode = ReadMode { blocking: true, min_bytes: 1, timeout_ms: 0 }.to_bytes();
    assert_eq!(h.device_io_control(f, rawlink::IOCTL_RAWLINK_SET_READ_MODE, &mode, 0).expect("ioctl").status, 0);
    let irp = h.submit_read(f, 64 * 1024).expect("submitted").irp();
    assert!(h.wait_request(irp, Duration::from_millis(20)).expect("wait").is_none(), "nothing queued: it pends");
    let r = std::thread::scope(|s| {
        let nic = s.spawn(|| h.indicate_receive(0, vec![received[0].clone()], false).expect("indicated"));
        let r = h.wait_request(irp, Duration::from_secs(5)).expect("wait").expect("completed");
        assert_eq!(nic.join().expect("the indicating thread"), 0);
        r
    });
    assert_eq!(Frames::new(&r.output).map(|(_, d)| d.to_vec()).collect::<Vec<_>>(), vec![received[0].clone()]);
    // The mapped ring on a second handle: attached by a request that stays pended, filled by receives.
    let g = common::attach(&h, 0);
    let layout = RingLayout::with_slots(64, 2048).expect("layout");
    let mem = Arc::new(UserMemory::new(layout.len()).expect("memory"));
    let setup = RingSetup { slot_size: 2048, flags: 0 }.to_bytes();
    let attach = h.submit_ioctl_shared(g, ring::IOCTL_RAWLINK_RING_ATTACH, &setup, &mem).expect("submitted");
    assert!(!attach.is_completed(), "the attach request pends while the ring is attached");
    let attach = attach.irp();
    assert_eq!(h.indicate_receive(0, received.clone(), false).expect("indicated"), 0);
    assert_eq!(mem.load_u32(ring::PRODUCER_OFFSET), 8);
    // Closing the ring's handle completes its attach request (CLEANUP cancels it).
    assert_eq!(h.close(g).expect("closed"), 0);
    assert_eq!(
        h.wait_request(attach, Duration::from_secs(5)).expect("wait").expect("completed").status,
        STATUS_CANCELLED
    );
    // The first handle got the ring's frames too (both are attached to the binding).
    let r = h.read(f, 64 * 1024).expect("read");
    assert_eq!(Frames::new(&r.output).count(), received.len());
    // CancelIoEx of a pended read runs the driver's cancel routine on this thread too.
    let irp = h.submit_read(f, 4096).expect("submitted").irp();
    assert!(h.cancel_request(irp).expect("cancel"), "the read's cancel routine ran");
    assert_eq!(h.wait_request(irp, Duration::from_secs(5)).expect("wait").expect("completed").status, STATUS_CANCELLED);
    common::finish(h, &[f]);
}

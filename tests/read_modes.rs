//! Read modes, queue sizes and receive metadata on the real rawlink.sys: a blocking read that waits for a
//! minimum of bytes or a timeout; a queue resized per handle without losing frames; coalesced receives,
//! checksum results and looped-back sends reported in the frame headers.
#![cfg(target_os = "linux")]

mod common;

use common::status::*;

use ndis_host::host::Host;
use ndis_host::io::Handle;
use ndis_host::ndis::ReceiveMeta;
use rawlink_abi::{frame_flags, rawlink, FrameHeader, Frames, HandleStatistics, ReadMode};
use std::time::{Duration, Instant};

fn frame(n: u8, len: usize) -> Vec<u8> {
    let mut f = vec![0xFF; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, n]);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend((0..len.saturating_sub(14)).map(|i| (i as u8) ^ n));
    f
}

fn set_mode(h: &Host, f: Handle, min_bytes: u32, timeout_ms: u32) -> i32 {
    let m = ReadMode { blocking: true, min_bytes, timeout_ms }.to_bytes();
    h.device_io_control(f, rawlink::IOCTL_RAWLINK_SET_READ_MODE, &m, 0).expect("ioctl").status
}

fn set_queue(h: &Host, f: Handle, bytes: u32) -> i32 {
    h.device_io_control(f, rawlink::IOCTL_RAWLINK_SET_QUEUE_SIZE, &bytes.to_le_bytes(), 0).expect("ioctl").status
}

fn stats(h: &Host, f: Handle) -> HandleStatistics {
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_GET_STATISTICS, &[], 64).expect("ioctl");
    HandleStatistics::parse(&r.output).expect("statistics")
}

#[test]
fn a_blocking_read_waits_for_its_minimum_of_bytes() {
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    // Ten 1000-byte frames are 10 records of 1024 bytes.
    assert_eq!(set_mode(&h, f, 5000, 0), STATUS_SUCCESS);
    let irp = h.submit_read(f, 64 * 1024).expect("submitted").irp();
    h.indicate_receive(0, (0..4).map(|i| frame(i, 1000)).collect(), false).expect("indicated");
    assert!(h.wait_request(irp, Duration::from_millis(50)).expect("wait").is_none(), "4096 bytes < 5000: waits");
    h.indicate_receive(0, (4..10).map(|i| frame(i, 1000)).collect(), false).expect("indicated");
    let r = h.wait_request(irp, Duration::from_secs(5)).expect("wait").expect("completed");
    assert_eq!(r.status, STATUS_SUCCESS);
    assert_eq!(Frames::new(&r.output).count(), 10);
    // A read buffer smaller than the minimum completes once it can be filled.
    let irp = h.submit_read(f, 2048).expect("submitted").irp();
    h.indicate_receive(0, (0..2).map(|i| frame(i, 1000)).collect(), false).expect("indicated");
    let r = h.wait_request(irp, Duration::from_secs(5)).expect("wait").expect("completed");
    assert_eq!(Frames::new(&r.output).count(), 2);
    common::finish(h, &[f]);
}

#[test]
fn a_blocking_read_with_a_timeout_returns_what_arrived_when_it_runs_out() {
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    assert_eq!(set_mode(&h, f, 1 << 20, 100), STATUS_SUCCESS);
    let started = Instant::now();
    let irp = h.submit_read(f, 1 << 20).expect("submitted").irp();
    h.indicate_receive(0, vec![frame(1, 200)], false).expect("indicated");
    let r = h.wait_request(irp, Duration::from_secs(10)).expect("wait").expect("completed by the timer");
    assert_eq!((r.status, Frames::new(&r.output).count()), (STATUS_SUCCESS, 1));
    assert!(started.elapsed() >= Duration::from_millis(90), "not before the timeout");
    // Nothing at all: an empty, successful read after the timeout.
    let mut w = h.submit_read(f, 4096).expect("submitted");
    let r = w.wait(Duration::from_secs(10)).expect("wait").expect("completed by the timer");
    assert_eq!((r.status, r.output.len()), (STATUS_SUCCESS, 0));
    drop(w);
    // Several reads with the same timeout all finish.
    let irps: Vec<usize> = (0..3).map(|_| h.submit_read(f, 4096).expect("submitted").irp()).collect();
    for irp in irps {
        assert!(h.wait_request(irp, Duration::from_secs(10)).expect("wait").is_some());
    }
    // Out-of-range modes are refused.
    let bad = ReadMode { blocking: true, min_bytes: 1, timeout_ms: 60_001 }.to_bytes();
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_SET_READ_MODE, &bad, 0).expect("ioctl");
    assert_eq!(r.status, STATUS_INVALID_PARAMETER);
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_SET_READ_MODE, &bad[..8], 0).expect("ioctl");
    assert_eq!(r.status, STATUS_BUFFER_TOO_SMALL);
    common::finish(h, &[f]);
}

#[test]
fn the_queue_size_is_per_handle_and_resizing_keeps_what_is_queued() {
    let h = common::running(common::ethernet(1));
    let small = h.open("\\\\.\\RawLink").expect("opened");
    // Set before attaching: the attach allocates this size.
    assert_eq!(set_queue(&h, small, 64 << 10), STATUS_SUCCESS);
    let r = h.device_io_control(small, rawlink::IOCTL_RAWLINK_OPEN, &0u32.to_le_bytes(), 0).expect("ioctl");
    assert_eq!(r.status, STATUS_SUCCESS);
    let big = common::attach(&h, 0);
    let frames: Vec<Vec<u8>> = (0..100u8).map(|i| frame(i, 1514)).collect();
    h.indicate_receive(0, frames.clone(), false).expect("indicated");
    let per = FrameHeader::record_len(1514) as u64;
    let s = stats(&h, small);
    assert_eq!((s.queued, s.dropped_queue_full), ((64 << 10) / per, 100 - (64 << 10) / per));
    assert_eq!(stats(&h, big).queued, 100, "the other handle's default 1 MiB holds them all");
    // Too small for what is queued: refused, nothing lost. Out of range: refused.
    assert_eq!(set_queue(&h, big, 64 << 10), STATUS_BUFFER_TOO_SMALL);
    assert_eq!(set_queue(&h, big, 1000), STATUS_INVALID_PARAMETER);
    assert_eq!(set_queue(&h, big, (64 << 20) + 1), STATUS_INVALID_PARAMETER);
    // Growing keeps the frames, in order.
    assert_eq!(set_queue(&h, small, 4 << 20), STATUS_SUCCESS);
    h.indicate_receive(0, frames.clone(), false).expect("indicated");
    let r = h.read(small, 8 << 20).expect("read");
    let got: Vec<Vec<u8>> = Frames::new(&r.output).map(|(_, d)| d.to_vec()).collect();
    let kept = ((64 << 10) / per) as usize;
    assert_eq!(got.len(), kept + 100);
    assert_eq!(&got[..kept], &frames[..kept]);
    assert_eq!(&got[kept..], &frames[..]);
    common::finish(h, &[small, big]);
}

#[test]
fn coalesced_receives_checksums_and_loopback_are_in_the_frame_headers() {
    let mut h = common::running(common::ethernet(1));
    assert!(h.uro_enabled(), "rawlink registers NDIS 6.89 without UDP_RSC_NOT_SUPPORTED: URO stays on");
    let f = common::attach(&h, 0);
    // NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO.Receive bits.
    let (tcp_ok, ip_ok, udp_failed) = (1 << 3, 1 << 5, 1 << 1);
    let rsc = frame(1, 9000);
    let uro = frame(2, 12 * 1200 + 42);
    let frames = vec![
        (rsc.clone(), ReceiveMeta { checksum: tcp_ok | ip_ok, rsc: Some((6, 0)), ..Default::default() }),
        (uro.clone(), ReceiveMeta { uro: Some((12, 1200)), ..Default::default() }),
        (frame(3, 60), ReceiveMeta { loopback: true, checksum: udp_failed, ..Default::default() }),
        (frame(4, 60), ReceiveMeta::default()),
    ];
    h.indicate_receive_meta(0, &frames).expect("indicated");
    let r = h.read(f, 1 << 16).expect("read");
    let got: Vec<(FrameHeader, Vec<u8>)> = Frames::new(&r.output).map(|(hd, d)| (hd, d.to_vec())).collect();
    assert_eq!(got.len(), 4);
    let (h0, d0) = &got[0];
    assert_eq!(d0, &rsc, "the coalesced unit is delivered unchanged");
    assert_eq!(
        (h0.flags, h0.segment_count, h0.segment_size),
        (frame_flags::COALESCED_TCP | frame_flags::IP_CHECKSUM_OK | frame_flags::L4_CHECKSUM_OK, 6, 0)
    );
    let (h1, d1) = &got[1];
    assert_eq!(d1, &uro);
    assert_eq!((h1.flags, h1.segment_count, h1.segment_size), (frame_flags::COALESCED_UDP, 12, 1200));
    assert_eq!(got[2].0.flags, frame_flags::SENT_BY_HOST | frame_flags::L4_CHECKSUM_BAD);
    assert_eq!((got[3].0.flags, got[3].0.segment_count), (0, 0));
    common::finish(h, &[f]);
}

#[test]
fn a_capture_length_keeps_the_start_of_each_frame_and_flags_the_cut() {
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    let whole = common::attach(&h, 0);
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_SET_CAPTURE_LENGTH, &64u32.to_le_bytes(), 0).expect("ioctl");
    assert_eq!(r.status, STATUS_SUCCESS);
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_SET_CAPTURE_LENGTH, &13u32.to_le_bytes(), 0).expect("ioctl");
    assert_eq!(r.status, STATUS_INVALID_PARAMETER, "shorter than an Ethernet header");
    let (long, short) = (frame(1, 1514), frame(2, 60));
    h.indicate_receive(0, vec![long.clone(), short.clone()], false).expect("indicated");
    let r = h.read(f, 1 << 16).expect("read");
    let got: Vec<(FrameHeader, Vec<u8>)> = Frames::new(&r.output).map(|(hd, d)| (hd, d.to_vec())).collect();
    assert_eq!(r.output.len(), FrameHeader::record_len(64) + FrameHeader::record_len(60), "only the kept bytes");
    assert_eq!((got[0].0.captured_length, got[0].0.original_length), (64, 1514));
    assert_eq!(got[0].0.flags & frame_flags::TRUNCATED, frame_flags::TRUNCATED);
    assert_eq!(got[0].1, long[..64]);
    assert_eq!((got[1].0.flags & frame_flags::TRUNCATED, &got[1].1), (0, &short));
    let r = h.read(whole, 1 << 16).expect("read");
    assert_eq!(Frames::new(&r.output).next().map(|(hd, d)| (hd.captured_length, d.len())), Some((1514, 1514)));
    common::finish(h, &[f, whole]);
}

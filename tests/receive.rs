//! Receive on the real rawlink.sys: frames indicated by NDIS are copied into every attached handle's queue
//! and read back in batches, byte for byte, with headers.
#![cfg(target_os = "linux")]

mod common;

use common::status::*;

use ndis_host::host::Host;
use ndis_host::io::Handle;
use rawlink_abi::{frame_flags, rawlink, FrameHeader, Frames};

fn frame(n: u8, len: usize) -> Vec<u8> {
    let mut f = vec![0xFF; 6]; // broadcast
    f.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, 0x00, n]);
    f.extend_from_slice(&[0x88, 0xB5]); // local experimental EtherType
    f.extend((0..len.saturating_sub(14)).map(|i| (i as u8).wrapping_add(n)));
    f
}

#[test]
fn a_batch_of_frames_is_read_in_one_call_byte_for_byte() {
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    let sent: Vec<Vec<u8>> = (0..16u8).map(|i| frame(i, 60 + usize::from(i) * 37)).collect();
    assert_eq!(h.indicate_receive(0, sent.clone(), false).expect("indicated"), 0, "NBLs returned at once");
    let r = h.read(f, 64 * 1024).expect("read");
    assert_eq!(r.status, STATUS_SUCCESS);
    let got: Vec<(FrameHeader, Vec<u8>)> = Frames::new(&r.output).map(|(hd, d)| (hd, d.to_vec())).collect();
    assert_eq!(got.len(), sent.len());
    let mut last = 0;
    for ((hd, data), want) in got.iter().zip(&sent) {
        assert_eq!(data, want);
        assert_eq!(hd.captured_length as usize, want.len());
        assert_eq!(hd.original_length as usize, want.len());
        assert_eq!(hd.flags, 0);
        assert!(hd.timestamp >= last, "timestamps never go back");
        last = hd.timestamp;
    }
    // Nothing more: an empty read completes at once with no data.
    let r = h.read(f, 4096).expect("read");
    assert_eq!((r.status, r.information), (STATUS_SUCCESS, 0));
    common::finish(h, &[f]);
}

#[test]
fn every_attached_handle_gets_its_own_copy_and_resources_indications_are_copied_too() {
    let h = common::running(common::ethernet(2));
    let (a, b, other) = (common::attach(&h, 0), common::attach(&h, 0), common::attach(&h, 1));
    assert_eq!(h.indicate_receive(0, vec![frame(1, 100)], true).expect("indicated"), 0);
    for f in [a, b] {
        let r = h.read(f, 4096).expect("read");
        let frames: Vec<_> = Frames::new(&r.output).collect();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].1, &frame(1, 100)[..]);
    }
    assert_eq!(h.read(other, 4096).expect("read").information, 0, "the other adapter's handle gets nothing");
    common::finish(h, &[a, b, other]);
}

#[test]
fn vlan_tagged_frames_are_flagged() {
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    let mut tagged = frame(1, 64);
    tagged[12..14].copy_from_slice(&[0x81, 0x00]);
    h.indicate_receive(0, vec![tagged.clone()], false).expect("indicated");
    let r = h.read(f, 4096).expect("read");
    let (hd, d) = Frames::new(&r.output).next().expect("a frame");
    assert_eq!(hd.flags & frame_flags::VLAN_TAGGED, frame_flags::VLAN_TAGGED);
    assert_eq!(d, &tagged[..]);
    common::finish(h, &[f]);
}

#[test]
fn a_buffer_too_small_for_the_next_frame_loses_nothing() {
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    h.indicate_receive(0, vec![frame(1, 1000), frame(2, 60)], false).expect("indicated");
    let r = h.read(f, 100).expect("read");
    assert_eq!((r.status, r.information), (STATUS_BUFFER_TOO_SMALL, 0));
    // Room for exactly the first record: one frame per read.
    let r = h.read(f, FrameHeader::record_len(1000)).expect("read");
    assert_eq!(Frames::new(&r.output).count(), 1);
    let r = h.read(f, 4096).expect("read");
    assert_eq!(Frames::new(&r.output).map(|(_, d)| d.to_vec()).collect::<Vec<_>>(), [frame(2, 60)]);
    common::finish(h, &[f]);
}

#[test]
fn handles_not_attached_or_attached_twice_or_to_nothing_get_defined_errors() {
    let h = common::running(common::ethernet(1));
    let f = h.open("\\\\.\\RawLink").expect("opened");
    assert_eq!(h.read(f, 4096).expect("read").status, STATUS_INVALID_DEVICE_STATE);
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_OPEN, &7u32.to_le_bytes(), 0).expect("ioctl");
    assert_eq!(r.status, STATUS_NOT_FOUND);
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_OPEN, &0u32.to_le_bytes(), 0).expect("ioctl");
    assert_eq!(r.status, STATUS_SUCCESS);
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_OPEN, &0u32.to_le_bytes(), 0).expect("ioctl");
    assert_eq!(r.status, STATUS_INVALID_DEVICE_STATE, "already attached");
    common::finish(h, &[f]);
}

#[test]
fn when_the_adapter_goes_away_queued_frames_can_still_be_read_then_reads_report_it() {
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    h.indicate_receive(0, vec![frame(1, 80)], false).expect("indicated");
    h.remove_adapter(0).expect("unbound");
    let r = h.read(f, 4096).expect("read");
    assert_eq!(Frames::new(&r.output).count(), 1, "what was queued is not lost");
    assert_eq!(h.read(f, 4096).expect("read").status, STATUS_INVALID_DEVICE_STATE);
    common::finish(h, &[f]);
}

#[test]
fn statistics_count_received_delivered_and_dropped() {
    use rawlink_abi::HandleStatistics;
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    let stats = |h: &Host| {
        let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_GET_STATISTICS, &[], 64).expect("ioctl");
        assert_eq!(r.status, STATUS_SUCCESS);
        HandleStatistics::parse(&r.output).expect("statistics")
    };
    assert_eq!(stats(&h), HandleStatistics::default());
    // 1 MiB of queue: 1000 frames of 1514 bytes (1544-byte records) overflow it.
    let frames: Vec<Vec<u8>> = (0..1000u32).map(|i| frame((i % 251) as u8, 1514)).collect();
    for chunk in frames.chunks(100) {
        h.indicate_receive(0, chunk.to_vec(), false).expect("indicated");
    }
    let s = stats(&h);
    assert_eq!(s.received, 1000);
    assert_eq!(s.queued + s.dropped_queue_full, 1000);
    assert_eq!(s.queued, (1 << 20) / FrameHeader::record_len(1514) as u64);
    assert_eq!((s.delivered, s.pending, s.filtered, s.dropped_too_large), (0, s.queued, 0, 0));
    let r = h.read(f, 1 << 20).expect("read");
    assert_eq!(Frames::new(&r.output).count() as u64, s.queued);
    let after = stats(&h);
    assert_eq!((after.delivered, after.pending), (s.queued, 0));
    // The binding counts the same frames.
    let r =
        h.device_io_control(f, rawlink::IOCTL_RAWLINK_GET_BINDING_STATISTICS, &0u32.to_le_bytes(), 64).expect("ioctl");
    assert_eq!(r.status, STATUS_SUCCESS);
    let b = rawlink_abi::BindingStatistics::parse(&r.output).expect("binding statistics");
    assert_eq!((b.received, b.delivered, b.dropped_queue_full, b.filtered), (1000, s.queued, s.dropped_queue_full, 0));
    let r =
        h.device_io_control(f, rawlink::IOCTL_RAWLINK_GET_BINDING_STATISTICS, &1u32.to_le_bytes(), 64).expect("ioctl");
    assert_eq!(r.status, STATUS_NO_MORE_ENTRIES, "no second binding");
    // A reply buffer too small for the counters.
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_GET_STATISTICS, &[], 63).expect("ioctl");
    assert_eq!(r.status, STATUS_BUFFER_TOO_SMALL);
    common::finish(h, &[f]);
}

fn set_blocking(h: &Host, f: Handle) {
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_SET_READ_MODE, &rawlink_abi::READ_BLOCKING.to_le_bytes(), 0);
    assert_eq!(r.expect("ioctl").status, STATUS_SUCCESS);
}

#[test]
fn a_blocking_read_waits_for_frames_and_completes_when_they_arrive() {
    use std::time::Duration;
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    set_blocking(&h, f);
    let irp = {
        let mut w = h.submit_read(f, 64 * 1024).expect("submitted");
        assert!(w.wait(Duration::from_millis(50)).expect("waited").is_none(), "nothing queued: the read waits");
        w.irp()
    };
    h.indicate_receive(0, vec![frame(1, 60), frame(2, 70)], false).expect("indicated");
    let r = h.wait_request(irp, Duration::from_secs(5)).expect("waited").expect("completed by the receive");
    assert_eq!(r.status, STATUS_SUCCESS);
    assert_eq!(Frames::new(&r.output).map(|(_, d)| d.to_vec()).collect::<Vec<_>>(), [frame(1, 60), frame(2, 70)]);
    // With frames already queued, a blocking read returns at once.
    h.indicate_receive(0, vec![frame(3, 60)], false).expect("indicated");
    assert_eq!(Frames::new(&h.read(f, 4096).expect("read").output).count(), 1);
    common::finish(h, &[f]);
}

#[test]
fn a_blocking_read_is_cancellable_and_closing_the_handle_cancels_it() {
    use std::time::Duration;
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    set_blocking(&h, f);
    let mut w = h.submit_read(f, 4096).expect("submitted");
    assert!(w.cancel().expect("cancelled"), "the driver's cancel routine ran");
    let r = w.wait(Duration::from_secs(5)).expect("waited").expect("completed");
    assert_eq!(r.status, STATUS_CANCELLED);
    drop(w);
    // A read still waiting when the handle closes is cancelled by CLEANUP.
    let irp = h.submit_read(f, 4096).expect("submitted").irp();
    assert_eq!(h.close(f).expect("closed"), STATUS_SUCCESS);
    let r = h.wait_request(irp, Duration::from_secs(5)).expect("waited").expect("completed");
    assert_eq!(r.status, STATUS_CANCELLED);
    common::finish(h, &[]);
}

#[test]
fn a_blocking_read_ends_when_the_adapter_goes_away_and_bad_modes_are_refused() {
    use std::time::Duration;
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_SET_READ_MODE, &7u32.to_le_bytes(), 0).expect("ioctl");
    assert_eq!(r.status, STATUS_INVALID_PARAMETER);
    set_blocking(&h, f);
    let irp = h.submit_read(f, 4096).expect("submitted").irp();
    h.remove_adapter(0).expect("unbound");
    let r = h.wait_request(irp, Duration::from_secs(5)).expect("waited").expect("completed");
    assert_eq!(r.status, STATUS_INVALID_DEVICE_STATE);
    common::finish(h, &[f]);
}

#[test]
fn an_indication_longer_than_one_run_reaches_every_handle_whole_and_in_order() {
    // The receive path locks each handle once per run of 256 frames: 600 frames span three runs, the last
    // one short, and both handles must see every frame once, in order, and the counters count each once.
    let h = common::running(common::ethernet(1));
    let (a, b) = (common::attach(&h, 0), common::attach(&h, 0));
    let sent: Vec<Vec<u8>> = (0..600usize).map(|i| frame(i as u8, 14 + i % 100)).collect();
    h.indicate_receive(0, sent.clone(), false).expect("indicated");
    for f in [a, b] {
        let mut got = Vec::new();
        loop {
            let r = h.read(f, 64 * 1024).expect("read");
            assert_eq!(r.status, STATUS_SUCCESS);
            if r.information == 0 {
                break;
            }
            got.extend(Frames::new(&r.output).map(|(_, d)| d.to_vec()));
        }
        assert_eq!(got, sent);
    }
    let r = h.device_io_control(a, rawlink::IOCTL_RAWLINK_GET_BINDING_STATISTICS, &0u32.to_le_bytes(), 64);
    let s = rawlink_abi::BindingStatistics::parse(&r.expect("ioctl").output).expect("stats");
    assert_eq!((s.received, s.delivered, s.filtered), (600, 600, 0));
    common::finish(h, &[a, b]);
}

/// NDIS calls ProtocolReceiveNetBufferLists at IRQL <= DISPATCH_LEVEL and sets NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL
/// only at DISPATCH_LEVEL. An adapter that indicates at PASSIVE_LEVEL without the flag takes the driver's other
/// branch (the raising lock instead of the DISPATCH_LEVEL-only one): frames arrive the same, for batched reads
/// and for a waiting read the indication completes, and the verifier (which reports a DISPATCH_LEVEL-only lock
/// taken at PASSIVE_LEVEL) stays clean.
#[test]
fn indications_at_passive_level_without_the_dispatch_flag_are_received_the_same() {
    let adapter =
        ndis_host::ndis::AdapterConfig { receive_at_passive: true, ..ndis_host::ndis::AdapterConfig::ethernet(1) };
    let h = common::running(vec![adapter]);
    let f = common::attach(&h, 0);
    let sent: Vec<Vec<u8>> = (0..12u8).map(|i| frame(i, 60 + usize::from(i) * 101)).collect();
    assert_eq!(h.indicate_receive(0, sent.clone(), false).expect("indicated"), 0, "NBLs returned at once");
    let r = h.read(f, 64 * 1024).expect("read");
    assert_eq!(r.status, STATUS_SUCCESS);
    let got: Vec<Vec<u8>> = Frames::new(&r.output).map(|(_, d)| d.to_vec()).collect();
    assert_eq!(got, sent);
    // A read that waits (blocking mode) is completed from inside the PASSIVE_LEVEL indication.
    let mode = rawlink_abi::ReadMode { blocking: true, min_bytes: 1, timeout_ms: 0 }.to_bytes();
    assert_eq!(h.device_io_control(f, rawlink::IOCTL_RAWLINK_SET_READ_MODE, &mode, 0).expect("ioctl").status, 0);
    let irp = h.submit_read(f, 4096).expect("submitted").irp();
    assert!(h.wait_request(irp, std::time::Duration::from_millis(20)).expect("wait").is_none(), "nothing yet");
    assert_eq!(h.indicate_receive(0, vec![frame(99, 200)], true).expect("indicated"), 0);
    let r = h.wait_request(irp, std::time::Duration::from_secs(5)).expect("wait").expect("completed");
    assert_eq!(r.status, STATUS_SUCCESS);
    assert_eq!(Frames::new(&r.output).map(|(_, d)| d.to_vec()).collect::<Vec<_>>(), vec![frame(99, 200)]);
    // The host really indicated at PASSIVE_LEVEL without the flag.
    let indications: Vec<_> = h.trace().into_iter().filter(|e| e.name == "ProtocolReceiveNetBufferLists").collect();
    assert_eq!(indications.len(), 2);
    for e in &indications {
        assert_eq!(e.irql, 0, "{e}");
        let flags = e.arg("ReceiveFlags").expect("flags");
        let flags = u64::from_str_radix(flags.trim_start_matches("0x"), 16).expect("hex flags");
        assert_eq!(flags & 1, 0, "no NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL: {e}");
    }
    common::finish(h, &[f]);
}

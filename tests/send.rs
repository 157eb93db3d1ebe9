//! Send on the real rawlink.sys: a write carries a batch of frame records, sent as one NBL chain.
#![cfg(target_os = "linux")]

mod common;

use common::status::*;

use ndis_host::host::{Host, HostConfig};
use ndis_host::ndis::AdapterConfig;
use rawlink_abi::rawlink;

use common::frame_from as frame;

#[test]
fn a_batch_is_sent_as_one_chain_in_order_byte_for_byte() {
    let a = AdapterConfig::ethernet(1);
    let h = common::running(vec![a.clone()]);
    let f = common::attach(&h, 0);
    let frames: Vec<Vec<u8>> = (0..32u8).map(|i| frame(a.mac, i, 60 + usize::from(i) * 45)).collect();
    let r = h.write(f, &common::batch(&frames)).expect("write");
    assert_eq!(r.status, STATUS_SUCCESS);
    assert_eq!(r.information, frames.iter().map(Vec::len).sum::<usize>());
    assert_eq!(h.sent_frames(0), frames);
    let sends = h.trace().iter().filter(|e| e.name == "NdisSendNetBufferLists").count();
    assert_eq!(sends, 1, "one write, one NdisSendNetBufferLists");
    common::finish(h, &[f]);
}

#[test]
fn a_bad_frame_refuses_the_whole_write_and_sends_nothing() {
    let a = AdapterConfig::ethernet(1);
    let h = common::running(vec![a.clone()]);
    let f = common::attach(&h, 0);
    let good = frame(a.mac, 0, 100);
    let cases: Vec<(&str, Vec<u8>, i32)> = vec![
        (
            "a frame shorter than 14 bytes",
            common::batch(&[good.clone(), frame(a.mac, 1, 14)[..13].to_vec()]),
            STATUS_INVALID_BUFFER_SIZE,
        ),
        ("a frame longer than MTU + 14", common::batch(&[frame(a.mac, 1, 1515)]), STATUS_INVALID_BUFFER_SIZE),
        (
            "another source MAC",
            common::batch(&[good.clone(), frame([2, 9, 9, 9, 9, 9], 1, 60)]),
            STATUS_INVALID_PARAMETER,
        ),
        ("a record longer than the buffer", common::batch(&[good.clone()])[..40].to_vec(), STATUS_INVALID_PARAMETER),
        ("trailing bytes", [common::batch(&[good.clone()]), vec![1, 2, 3]].concat(), STATUS_INVALID_PARAMETER),
    ];
    for (what, buf, status) in cases {
        let r = h.write(f, &buf).expect("write");
        assert_eq!(r.status, status, "{what}");
        assert_eq!(r.information, 0, "{what}");
    }
    assert!(h.sent_frames(0).is_empty(), "nothing of a refused write goes out");
    // A VLAN-tagged frame may be 4 bytes longer.
    let mut tagged = frame(a.mac, 2, 1518);
    tagged[12..14].copy_from_slice(&[0x81, 0x00]);
    assert_eq!(h.write(f, &common::batch(&[tagged.clone()])).expect("write").status, STATUS_SUCCESS);
    assert_eq!(h.sent_frames(0), [tagged]);
    common::finish(h, &[f]);
}

#[test]
fn writes_need_an_attached_handle_and_a_running_binding() {
    let a = AdapterConfig::ethernet(1);
    let h = common::running(vec![a.clone()]);
    let loose = h.open("\\\\.\\RawLink").expect("opened");
    let buf = common::batch(&[frame(a.mac, 0, 60)]);
    assert_eq!(h.write(loose, &buf).expect("write").status, STATUS_INVALID_DEVICE_STATE);
    let f = common::attach(&h, 0);
    h.pause(0).expect("paused");
    assert_eq!(h.write(f, &buf).expect("write").status, STATUS_DEVICE_NOT_READY);
    h.restart(0).expect("restarted");
    assert_eq!(h.write(f, &buf).expect("write").status, STATUS_SUCCESS);
    common::finish(h, &[loose, f]);
}

#[test]
fn a_write_completes_after_asynchronous_reordered_completions() {
    use ndis_host::ndis::SendCompletion;
    let a = AdapterConfig {
        send_completion: SendCompletion::Async {
            delay: std::time::Duration::from_millis(20),
            per_call: 1,
            reverse: true,
        },
        ..AdapterConfig::ethernet(1)
    };
    let h = common::running(vec![a.clone()]);
    let f = common::attach(&h, 0);
    let frames: Vec<Vec<u8>> = (0..8u8).map(|i| frame(a.mac, i, 100)).collect();
    let mut w = h.submit_write(f, &common::batch(&frames)).expect("submitted");
    let r = w.wait(std::time::Duration::from_secs(5)).expect("waited").expect("completed");
    assert_eq!((r.status, r.information), (STATUS_SUCCESS, 800));
    drop(w);
    assert_eq!(h.sent_frames(0), frames, "sent in order even if completed in reverse");
    let completions = h.trace().iter().filter(|e| e.name == "ProtocolSendNetBufferListsComplete").count();
    assert_eq!(completions, 8, "one completion call per NBL");
    common::finish(h, &[f]);
}

#[test]
fn a_pause_with_sends_in_flight_pends_until_the_last_completion() {
    use ndis_host::ndis::{NdisBindingState, SendCompletion};
    let a = AdapterConfig {
        send_completion: SendCompletion::Async {
            delay: std::time::Duration::from_millis(200),
            per_call: 0,
            reverse: false,
        },
        ..AdapterConfig::ethernet(1)
    };
    let h = common::running(vec![a.clone()]);
    let f = common::attach(&h, 0);
    let irp =
        h.submit_write(f, &common::batch(&[frame(a.mac, 1, 200), frame(a.mac, 2, 300)])).expect("submitted").irp();
    assert_eq!(h.pause(0).expect("paused"), 0);
    let w = h.wait_request(irp, std::time::Duration::from_secs(5)).expect("waited").expect("the write completed");
    assert_eq!((w.status, w.information), (STATUS_SUCCESS, 500));
    assert_eq!(h.bindings()[0].state, NdisBindingState::Paused);
    let t = h.trace();
    let pause = t.iter().find(|e| e.name == "ProtocolNetPnPEvent(NetEventPause)").expect("paused");
    assert!(pause.result.as_deref().is_some_and(|r| r.starts_with("STATUS_PENDING")), "{pause}");
    let done = t.iter().position(|e| e.name == "NdisCompleteNetPnPEvent").expect("the driver completed the pause");
    let last_send = t.iter().rposition(|e| e.name == "ProtocolSendNetBufferListsComplete").expect("sends completed");
    assert!(last_send < done, "the pause completes from the last send completion");
    h.restart(0).expect("restarted");
    common::finish(h, &[f]);
}

#[test]
fn frames_sent_on_one_adapter_arrive_on_the_other_end_of_the_wire() {
    let (a, b) = (AdapterConfig::ethernet(1), AdapterConfig::ethernet(2));
    let mut h = common::running(vec![a.clone(), b]);
    h.connect(0, 1);
    let (tx, rx) = (common::attach(&h, 0), common::attach(&h, 1));
    let frames: Vec<Vec<u8>> = (0..4u8).map(|i| frame(a.mac, i, 64 + usize::from(i))).collect();
    assert_eq!(h.write(tx, &common::batch(&frames)).expect("write").status, STATUS_SUCCESS);
    h.pump().expect("pumped");
    let r = h.read(rx, 64 * 1024).expect("read");
    let got: Vec<Vec<u8>> = rawlink_abi::Frames::new(&r.output).map(|(_, d)| d.to_vec()).collect();
    assert_eq!(got, frames);
    common::finish(h, &[tx, rx]);
}

#[test]
fn a_write_that_cannot_get_its_mdls_or_nbls_fails_cleanly() {
    use ndis_host::faults::FaultRule;
    let a = AdapterConfig::ethernet(1);
    for api in ["NdisAllocateMdl", "NdisAllocateNetBufferAndNetBufferList"] {
        let bytes = common::package_file("rawlink.sys");
        let config = HostConfig { faults: vec![FaultRule::FailNth { api: api.into(), n: 2 }], ..HostConfig::default() };
        let mut h = Host::load(&bytes, config).expect("loaded");
        h.add_adapter(a.clone()).expect("adapter");
        assert_eq!(h.driver_entry().expect("DriverEntry ran"), 0);
        let f = common::attach(&h, 0);
        let frames: Vec<Vec<u8>> = (0..3u8).map(|i| frame(a.mac, i, 100)).collect();
        let r = h.write(f, &common::batch(&frames)).expect("write");
        // CAST: STATUS_INSUFFICIENT_RESOURCES.
        assert_eq!((r.status, r.information), (0xC000_009Au32 as i32, 0), "failing {api} #2");
        assert!(h.sent_frames(0).is_empty(), "failing {api} #2: nothing sent");
        // The next write works: nothing was left half-built.
        assert_eq!(h.write(f, &common::batch(&frames)).expect("write").status, STATUS_SUCCESS, "after failing {api}");
        common::finish(h, &[f]);
    }
}

#[test]
fn a_handle_may_be_allowed_other_source_macs() {
    let a = AdapterConfig::ethernet(1);
    let h = common::running(vec![a.clone()]);
    let f = common::attach(&h, 0);
    let spoofed = common::batch(&[frame([2, 9, 9, 9, 9, 9], 1, 60)]);
    assert_eq!(h.write(f, &spoofed).expect("write").status, STATUS_INVALID_PARAMETER, "refused by default");
    let allow = |v: u32| {
        h.device_io_control(f, rawlink::IOCTL_RAWLINK_ALLOW_ANY_SOURCE, &v.to_le_bytes(), 0).expect("ioctl").status
    };
    assert_eq!(allow(2), STATUS_INVALID_PARAMETER);
    assert_eq!(allow(1), STATUS_SUCCESS);
    assert_eq!(h.write(f, &spoofed).expect("write").status, STATUS_SUCCESS);
    assert_eq!(h.sent_frames(0).len(), 1);
    assert_eq!(allow(0), STATUS_SUCCESS);
    assert_eq!(h.write(f, &spoofed).expect("write").status, STATUS_INVALID_PARAMETER, "refused again");
    common::finish(h, &[f]);
}

/// 802.3x PAUSE and other MAC-control frames never go out, even from a handle allowed any source: a NIC acts
/// on them (a PAUSE from user mode could stop the link's traffic or a switch port).
#[test]
fn mac_control_frames_are_refused_on_every_handle() {
    let a = AdapterConfig::ethernet(1);
    let h = common::running(vec![a.clone()]);
    let f = common::attach(&h, 0);
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_ALLOW_ANY_SOURCE, &1u32.to_le_bytes(), 0).expect("ioctl");
    assert_eq!(r.status, STATUS_SUCCESS);
    let mut pause = frame(a.mac, 0, 60);
    pause[..6].copy_from_slice(&[0x01, 0x80, 0xC2, 0x00, 0x00, 0x01]);
    pause[12..16].copy_from_slice(&[0x88, 0x08, 0x00, 0x01]);
    assert_eq!(h.write(f, &common::batch(&[pause.clone()])).expect("write").status, STATUS_ACCESS_DENIED);
    let (status, reply) = send_ioctl(&h, f, &common::batch(&[frame(a.mac, 1, 60), pause]), 64);
    assert_eq!(status, STATUS_SUCCESS);
    let reply = reply.expect("a SEND reply");
    assert_eq!((reply.frames_sent, reply.first_failure, reply.status), (1, 1, STATUS_ACCESS_DENIED));
    assert_eq!(h.sent_frames(0), [frame(a.mac, 1, 60)], "only the ordinary frame went out");
    common::finish(h, &[f]);
}

fn send_ioctl(h: &Host, f: ndis_host::io::Handle, input: &[u8], out: usize) -> (i32, Option<rawlink_abi::SendReply>) {
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_SEND, input, out).expect("ioctl");
    (r.status, rawlink_abi::SendReply::parse(&r.output).ok())
}

#[test]
fn the_send_ioctl_sends_the_valid_prefix_and_names_the_first_failure() {
    use rawlink_abi::SendReply;
    let mut a = AdapterConfig::ethernet(1);
    a.send_completion = ndis_host::ndis::SendCompletion::Async {
        delay: std::time::Duration::from_millis(5),
        per_call: 1,
        reverse: true,
    };
    let h = common::running(vec![a.clone()]);
    let f = common::attach(&h, 0);
    let good: Vec<Vec<u8>> = (0..5u8).map(|i| frame(a.mac, i, 60 + usize::from(i))).collect();
    // All valid: all sent, no failure.
    let (st, r) = send_ioctl(&h, f, &common::batch(&good), SendReply::LEN);
    assert_eq!(
        (st, r),
        (STATUS_SUCCESS, Some(SendReply { frames_sent: 5, first_failure: SendReply::NONE, status: 0 }))
    );
    assert_eq!(h.sent_frames(0), good);
    // Frame 3 longer than MTU + 14: frames 0..3 go out, the reply names frame 3 and why.
    let mut mixed = good.clone();
    mixed[3] = frame(a.mac, 3, 1515);
    let (st, r) = send_ioctl(&h, f, &common::batch(&mixed), SendReply::LEN);
    assert_eq!(st, STATUS_SUCCESS);
    assert_eq!(r, Some(SendReply { frames_sent: 3, first_failure: 3, status: STATUS_INVALID_BUFFER_SIZE }));
    assert_eq!(h.sent_frames(0)[5..], good[..3]);
    // The first frame from a foreign source: nothing sent, the reply still comes.
    let foreign = common::batch(&[frame([2, 0, 0, 0, 0, 9], 0, 60)]);
    let (st, r) = send_ioctl(&h, f, &foreign, SendReply::LEN);
    assert_eq!(
        (st, r),
        (STATUS_SUCCESS, Some(SendReply { frames_sent: 0, first_failure: 0, status: STATUS_INVALID_PARAMETER }))
    );
    assert_eq!(h.sent_frames(0).len(), 8);
    // No room for the reply, or nothing at all to send: refused before anything is sent.
    assert_eq!(send_ioctl(&h, f, &common::batch(&good), 15).0, 0xC000_0023u32 as i32);
    assert_eq!(send_ioctl(&h, f, &[], SendReply::LEN).0, STATUS_INVALID_PARAMETER);
    assert_eq!(h.sent_frames(0).len(), 8);
    let unattached = h.open("\\\\.\\RawLink").expect("opened");
    assert_eq!(send_ioctl(&h, unattached, &common::batch(&good), SendReply::LEN).0, STATUS_INVALID_DEVICE_STATE);
    common::finish(h, &[f, unattached]);
}

#[test]
fn frames_ndis_fails_are_reported_by_the_send_ioctl_and_fail_a_write() {
    use rawlink_abi::SendReply;
    const NDIS_STATUS_MEDIA_DISCONNECTED: i32 = 0xC023_001Fu32 as i32;
    let a = AdapterConfig::ethernet(1);
    let h = common::running(vec![a.clone()]);
    let f = common::attach(&h, 0);
    let frames: Vec<Vec<u8>> = (0..3u8).map(|i| frame(a.mac, i, 60)).collect();
    // The adapter fails every send while its link is down.
    h.indicate_link_state(0, false).expect("link down");
    let (st, r) = send_ioctl(&h, f, &common::batch(&frames), SendReply::LEN);
    assert_eq!(st, STATUS_SUCCESS);
    assert_eq!(r, Some(SendReply { frames_sent: 0, first_failure: 0, status: NDIS_STATUS_MEDIA_DISCONNECTED }));
    let w = h.write(f, &common::batch(&frames)).expect("write");
    assert_eq!((w.status, w.information), (0xC000_0001u32 as i32, 0), "a write fails as a whole");
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_GET_BINDING_STATISTICS, &0u32.to_le_bytes(), 64);
    let stats = rawlink_abi::BindingStatistics::parse(&r.expect("ioctl").output).expect("statistics");
    assert_eq!((stats.sent, stats.send_failed), (0, 6));
    h.indicate_link_state(0, true).expect("link up");
    let (_, r) = send_ioctl(&h, f, &common::batch(&frames), SendReply::LEN);
    assert_eq!(r.map(|r| r.frames_sent), Some(3));
    assert_eq!(h.sent_frames(0), frames);
    common::finish(h, &[f]);
}

#[test]
fn an_mtu_change_reported_at_restart_moves_the_size_limit() {
    let a = AdapterConfig::ethernet(1);
    let mut h = common::running(vec![a.clone()]);
    let f = common::attach(&h, 0);
    let jumbo = frame(a.mac, 1, 9014);
    assert_eq!(h.write(f, &common::batch(&[jumbo.clone()])).expect("write").status, STATUS_INVALID_BUFFER_SIZE);
    assert_eq!(h.change_mtu(0, 9000).expect("restart"), 0);
    assert_eq!(h.write(f, &common::batch(&[jumbo.clone()])).expect("write").status, STATUS_SUCCESS);
    assert_eq!(h.sent_frames(0), [jumbo]);
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_QUERY_BINDING, &0u32.to_le_bytes(), 512).expect("ioctl");
    assert_eq!(rawlink_abi::BindingRecord::parse(&r.output).expect("record").0.mtu, 9000);
    common::finish(h, &[f]);
}

/// A hostile caller changes its write buffer while the driver handles the write (another thread of the
/// process may write the locked pages at any time): the source MAC to a foreign one, or the record's length to
/// past the buffer. Whichever driver call the change lands at, what goes out is the frame as validated or
/// nothing — never a frame validation did not see, and never bytes from outside the caller's buffer.
#[test]
fn a_write_buffer_changed_during_the_write_sends_only_what_was_validated() {
    use ndis_host::io::UserFlip;
    use rawlink_abi::FrameHeader;
    let a = AdapterConfig::ethernet(1);
    let original = frame(a.mac, 7, 60);
    let flips = [
        ("the source MAC", FrameHeader::LEN + 6, vec![0x02, 0xBA, 0xD0, 0, 0, 1]),
        ("the record length", 0, 1514u32.to_le_bytes().to_vec()),
    ];
    for (what, offset, bytes) in flips {
        for after_calls in 1..=6 {
            let h = common::running(vec![a.clone()]);
            let f = common::attach(&h, 0);
            h.arm_user_flip(UserFlip { after_calls, offset, bytes: bytes.clone() });
            let r = h.write(f, &common::batch(std::slice::from_ref(&original))).expect("write");
            let sent = h.sent_frames(0);
            let ctx = format!("{what} changed at the driver's call {after_calls} (fired: {})", h.user_flip_fired());
            assert!(sent.iter().all(|s| *s == original), "{ctx}: sent {sent:x?}");
            match r.status {
                STATUS_SUCCESS => assert_eq!(sent.len(), 1, "{ctx}"),
                STATUS_INVALID_PARAMETER => assert!(sent.is_empty(), "{ctx}"),
                other => panic!("{ctx}: status {other:#x}"),
            }
            common::finish(h, &[f]);
        }
    }
}

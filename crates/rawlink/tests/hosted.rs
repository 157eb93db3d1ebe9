//! The library against the real rawlink.sys in ndis-host (the hosted backend): enumerate, attach, filter,
//! receive batches with headers, send with the per-frame reply, OIDs, counters, events, and each error a user
//! can act on. The adapter's far side is the in-process wire this test holds.
#![cfg(target_os = "linux")]

use ndis_host::backend::Backend as _;
use ndis_host::io::Access;
use rawlink::hosted::{Cable, Hosted, HostedOptions};
use rawlink::packet::{Arp, Echo};
use rawlink::{abi, Error, Filter, Rawlink, ReadMode, RecvBuffer, SendBatch};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn driver() -> PathBuf {
    let p = rawlink::hosted::default_driver_path();
    assert!(p.is_file(), "{} is missing; run `cargo xtask build` first", p.display());
    p
}

fn start(adapters: u8) -> Arc<Hosted> {
    let mut o = HostedOptions::new(driver(), Cable::Wire);
    o.adapters = adapters;
    Arc::new(Hosted::start(o).expect("hosted driver started"))
}

fn finish(h: &Hosted) {
    let r = h.shutdown().expect("unloaded");
    assert!(r.clean(), "verifier: {:?}, pool blocks left: {}", r.violations, r.pool_left);
}

fn frame(dst: [u8; 6], src: [u8; 6], ethertype: u16, len: usize, fill: u8) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.resize(len, fill);
    f
}

/// Frames that reach the wire's far end within 5 s (at least `n`).
fn wire_frames(h: &Hosted, n: usize) -> Vec<Vec<u8>> {
    let wire = h.wire().expect("wire");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < deadline {
        got.extend(wire.poll());
        std::thread::sleep(Duration::from_millis(1));
    }
    got
}

#[test]
fn adapters_are_listed_with_their_properties() {
    let h = start(2);
    {
        let rl = Rawlink::new(h.clone()).expect("opened");
        let all = rl.adapters().expect("listed");
        assert_eq!(all.len(), 2);
        let want = ndis_host::ndis::AdapterConfig::ethernet(1);
        assert_eq!(all[0].name, want.name);
        assert_eq!(all[0].friendly_name, want.friendly_name);
        assert_eq!(all[0].mac, want.mac);
        assert_eq!((all[0].mtu, all[0].link_speed, all[0].link_up), (1500, 1_000_000_000, true));
        assert_eq!(all[0].state, rawlink::BindingState::Running);
        assert_eq!(rl.find("Virtual Ethernet Adapter #2").expect("by friendly name").index, 1);
        assert_eq!(rl.find("02:52:4c:00:00:02").expect("by MAC").index, 1);
    }
    finish(&h);
}

#[test]
fn an_unknown_adapter_is_refused_with_the_list_of_valid_ones() {
    let h = start(2);
    {
        let rl = Rawlink::new(h.clone()).expect("opened");
        let e = rl.open_adapter("eth7").expect_err("no such adapter");
        let text = e.to_string();
        assert!(matches!(e, Error::AdapterNotFound { .. }), "{e:?}");
        assert!(text.contains("`eth7` not found"), "{text}");
        assert!(
            text.contains("0: Virtual Ethernet Adapter #1") && text.contains("1: Virtual Ethernet Adapter #2"),
            "{text}"
        );
        assert!(matches!(rl.open_adapter("5"), Err(Error::AdapterNotFound { .. })));
    }
    finish(&h);
}

#[test]
fn received_frames_come_back_as_a_batch_of_borrowed_frames_with_headers() {
    let h = start(1);
    {
        let rl = Rawlink::new(h.clone()).expect("opened");
        let link = rl.open_adapter("0").expect("attached");
        let mac = link.info().mac;
        link.set_filter(&Filter::default().with_ethertypes(&[0x88B5])).expect("filter");
        link.set_read_mode(ReadMode::Blocking { min_bytes: 1, timeout_ms: 0 }).expect("read mode");
        link.set_queue_size(256 * 1024).expect("queue size");
        let wire = h.wire().expect("wire");
        let sent: Vec<Vec<u8>> =
            (0..8u8).map(|i| frame(mac, [2, 0, 0, 0, 0, 9], 0x88B5, 60 + usize::from(i) * 100, i)).collect();
        wire.transmit(&frame(mac, [2, 0, 0, 0, 0, 9], 0x0800, 60, 0xAA)); // filtered out: IPv4
        for f in &sent {
            wire.transmit(f);
        }
        let mut buf = RecvBuffer::new(64 * 1024);
        let mut got: Vec<(abi::FrameHeader, Vec<u8>)> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < sent.len() && Instant::now() < deadline {
            let batch = link.recv_timeout(&mut buf, Duration::from_millis(500)).expect("read");
            got.extend(batch.iter().map(|f| (f.header, f.data.to_vec())));
        }
        assert_eq!(got.iter().map(|g| g.1.clone()).collect::<Vec<_>>(), sent);
        for (hd, d) in &got {
            assert_eq!((hd.captured_length as usize, hd.original_length as usize), (d.len(), d.len()));
        }
        assert!(got.windows(2).all(|w| w[0].0.timestamp <= w[1].0.timestamp));
        let s = link.statistics().expect("statistics");
        assert_eq!((s.queued, s.delivered, s.filtered), (8, 8, 1));
        let b = link.binding_statistics().expect("binding statistics");
        assert_eq!(b.received, 9);

        // A capture length cuts frames and flags them.
        link.set_capture_length(20).expect("capture length");
        wire.transmit(&sent[7]);
        let batch = link.recv_timeout(&mut buf, Duration::from_secs(5)).expect("read");
        let f = batch.iter().next().expect("a frame");
        assert!(f.truncated());
        assert_eq!((f.data.len(), f.header.original_length as usize), (20, sent[7].len()));
        // Nothing queued: a read with a timeout is cancelled and returns an empty batch.
        assert!(link.recv_timeout(&mut buf, Duration::from_millis(100)).expect("read").is_empty());
        assert!(matches!(link.set_capture_length(5), Err(Error::InvalidArgument(_))));
        assert!(matches!(link.set_queue_size(1), Err(Error::InvalidArgument(_))));
    }
    finish(&h);
}

#[test]
fn a_batch_is_sent_and_a_bad_frame_is_named_with_its_reason() {
    let h = start(1);
    {
        let rl = Rawlink::new(h.clone()).expect("opened");
        let link = rl.open_adapter("0").expect("attached");
        let mac = link.info().mac;
        let good: Vec<Vec<u8>> = (0..3u8).map(|i| frame([0xFF; 6], mac, 0x88B5, 64, i)).collect();
        assert_eq!(link.send_frames(&good).expect("sent"), 3);
        assert_eq!(wire_frames(&h, 3), good);

        // Frame 1 is too long for the MTU: frame 0 goes out, the report names frame 1.
        let mut batch = SendBatch::new();
        batch.push(&good[0]).push(&frame([0xFF; 6], mac, 0x88B5, 1515, 0)).push(&good[1]);
        let r = link.send(&batch).expect("sent");
        assert_eq!(r.sent, 1);
        let refused = r.refused.clone().expect("a refusal");
        assert_eq!((refused.index, refused.len), (1, 1515));
        let e = r.check().expect_err("bad frame");
        assert_eq!(
            e.to_string(),
            "frame 1 (1515 bytes) was not sent: 1515 bytes is longer than the adapter's MTU allows (1500 + 14 = 1514 bytes)"
        );
        assert_eq!(wire_frames(&h, 1).len(), 1);

        let foreign = frame([0xFF; 6], [2, 0, 0, 0, 0, 0x77], 0x88B5, 60, 0);
        let e = link.send_frames(&[foreign.clone()]).expect_err("foreign source");
        assert!(e.to_string().contains("source MAC 02:00:00:00:00:77 is not the adapter's"), "{e}");
        link.allow_any_source(true).expect("allowed");
        assert_eq!(link.send_frames(&[foreign]).expect("sent"), 1);

        let pause = frame([0x01, 0x80, 0xC2, 0, 0, 1], mac, 0x8808, 60, 0);
        let e = link.send_frames(&[pause]).expect_err("MAC control");
        assert!(e.to_string().contains("frame 0 (60 bytes) was not sent: IEEE 802.3 MAC-control"), "{e}");
        let e = link.send_frames(&[vec![0u8; 10]]).expect_err("short");
        assert!(e.to_string().contains("shorter than an Ethernet header"), "{e}");
        let b = link.binding_statistics().expect("counters");
        assert_eq!(b.sent, 5);
    }
    finish(&h);
}

#[test]
fn oids_are_queried_and_set_and_refusals_say_why() {
    let h = start(1);
    {
        let rl = Rawlink::new(h.clone()).expect("opened");
        let link = rl.open_adapter("0").expect("attached");
        let v = link.query_oid(rawlink::oid::parse("OID_802_3_CURRENT_ADDRESS").unwrap(), 6).expect("queried");
        assert_eq!(v, link.info().mac);
        let v = link.query_oid(0x0001_0106, 4).expect("max frame size");
        assert_eq!(v, 1500u32.to_le_bytes());
        link.set_oid(0x0001_010E, &0x2Fu32.to_le_bytes()).expect("packet filter set");
        let e = link.set_oid(0x0001_0106, &9000u32.to_le_bytes()).expect_err("not settable");
        assert!(e.to_string().contains("OID_GEN_MAXIMUM_FRAME_SIZE may not be set"), "{e}");
        let e = link.query_oid(0x0001_0106, 2).expect_err("too small");
        assert!(e.to_string().contains("STATUS_BUFFER_TOO_SMALL"), "{e}");
    }
    finish(&h);
}

#[test]
fn link_events_reach_a_waiting_handle() {
    let h = start(1);
    {
        let rl = Rawlink::new(h.clone()).expect("opened");
        let link = rl.open_adapter("0").expect("attached");
        assert_eq!(link.wait_event(Some(Duration::from_millis(50))).expect("waited"), None, "no event yet");
        h.with_host(|host| host.indicate_link_state(0, false)).expect("host").expect("indicated");
        assert_eq!(link.wait_event(Some(Duration::from_secs(5))).expect("event"), Some(rawlink::Event::LinkDown));
        h.with_host(|host| host.indicate_link_state(0, true)).expect("host").expect("indicated");
        assert!(matches!(link.wait_event(Some(Duration::from_secs(5))), Ok(Some(rawlink::Event::LinkUp { .. }))));
        assert!(rl.adapters().expect("listed")[0].link_up, "enumeration shows the link as it is now");
    }
    finish(&h);
}

#[test]
fn the_simulated_peer_answers_arp_and_ping_through_the_driver() {
    let mut o = HostedOptions::new(driver(), Cable::Wire);
    o.adapters = 1;
    let mut hosted = Hosted::start(o).expect("started");
    let peer = Ipv4Addr::new(192, 0, 2, 1);
    hosted.start_responder(peer).expect("responder");
    let h = Arc::new(hosted);
    {
        let rl = Rawlink::new(h.clone()).expect("opened");
        let link = rl.open_adapter("0").expect("attached");
        let me = Ipv4Addr::new(192, 0, 2, 2);
        link.set_read_mode(ReadMode::Blocking { min_bytes: 1, timeout_ms: 0 }).expect("mode");
        link.send_frames(&[Arp::request(link.info().mac, me, peer).to_frame()]).expect("sent");
        let mut buf = RecvBuffer::new(64 * 1024);
        let reply = link.recv_timeout(&mut buf, Duration::from_secs(5)).expect("read");
        let arp = reply.iter().find_map(|f| Arp::parse(f.data)).expect("ARP reply");
        assert_eq!((arp.op, arp.sender_ip), (Arp::REPLY, peer));
        let echo = Echo {
            icmp_type: Echo::REQUEST,
            src_mac: link.info().mac,
            dst_mac: arp.sender_mac,
            src_ip: me,
            dst_ip: peer,
            ttl: 64,
            id: 1,
            seq: 1,
            payload: vec![7; 32],
        };
        link.send_frames(&[echo.to_frame()]).expect("sent");
        let reply = link.recv_timeout(&mut buf, Duration::from_secs(5)).expect("read");
        let r = reply.iter().find_map(|f| Echo::parse(f.data)).expect("echo reply");
        assert_eq!((r.icmp_type, r.seq, r.payload.len()), (Echo::REPLY, 1, 32));
    }
    finish(&h);
}

#[test]
fn a_missing_driver_says_how_to_build_it() {
    let e = Hosted::start(HostedOptions::new("/nonexistent/rawlink.sys", Cable::Wire)).expect_err("no driver");
    assert!(matches!(e, Error::DriverNotInstalled { .. }), "{e:?}");
    assert!(e.to_string().contains("cargo xtask build"), "{e}");
}

#[test]
fn a_driver_that_never_started_is_reported_as_not_started() {
    let mut o = HostedOptions::new(driver(), Cable::Wire);
    o.start = false;
    let h = Arc::new(Hosted::start(o).expect("loaded"));
    let e = Rawlink::new(h.clone()).expect_err("no device");
    assert!(matches!(e, Error::DriverNotStarted { .. }), "{e:?}");
    assert!(e.to_string().contains("not running") && e.to_string().contains("DriverEntry never ran"), "{e}");
    finish(&h);
}

#[test]
fn a_handle_without_write_access_is_told_to_run_as_administrator() {
    let mut o = HostedOptions::new(driver(), Cable::Wire);
    o.access = Access::READ;
    let h = Arc::new(Hosted::start(o).expect("started"));
    {
        let rl = Rawlink::new(h.clone()).expect("opened");
        let e = rl.open_adapter("0").expect_err("OPEN needs read and write access");
        assert!(matches!(e, Error::AccessDenied { .. }), "{e:?}");
        assert!(e.to_string().contains("Administrator"), "{e}");
    }
    finish(&h);
}

#[test]
fn frames_come_through_the_mapped_ring_in_order_and_reads_take_over_after_a_detach() {
    let h = start(1);
    {
        let rl = Rawlink::new(h.clone()).expect("opened");
        let link = rl.open_adapter("0").expect("attached");
        let mac = link.info().mac;
        link.set_filter(&Filter::default().with_ethertypes(&[0x88B5])).expect("filter");
        let layout = link.attach_ring(256, 2048).expect("ring attached");
        assert_eq!((layout.slot_count, layout.slot_size), (256, 2048));
        assert!(link.has_ring());
        assert!(matches!(link.attach_ring(256, 2048), Err(Error::InvalidArgument(_))), "one ring per link");
        // Nothing yet: the wait runs out.
        assert_eq!(link.recv_ring(64, Some(Duration::from_millis(50)), |_| panic!("no frame")).expect("waited"), 0);
        let wire = h.wire().expect("wire");
        let sent: Vec<Vec<u8>> =
            (0..40u8).map(|i| frame(mac, [2, 0, 0, 0, 0, 9], 0x88B5, 60 + usize::from(i) * 30, i)).collect();
        for f in &sent {
            wire.transmit(f);
        }
        let mut got: Vec<(abi::FrameHeader, Vec<u8>)> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < sent.len() && Instant::now() < deadline {
            link.recv_ring(16, Some(Duration::from_millis(100)), |f| got.push((f.header, f.data.to_vec())))
                .expect("ring receive");
        }
        assert_eq!(got.len(), sent.len());
        for ((hd, data), want) in got.iter().zip(&sent) {
            assert_eq!(data, want);
            assert_eq!(hd.original_length as usize, want.len());
        }
        let st = link.statistics().expect("statistics");
        assert_eq!(st.queued, 40, "{st:?}");
        link.detach_ring();
        assert!(!link.has_ring());
        wire.transmit(&sent[0]);
        link.set_read_mode(ReadMode::Blocking { min_bytes: 1, timeout_ms: 0 }).expect("read mode");
        let mut buf = RecvBuffer::new(64 * 1024);
        let b = link.recv_timeout(&mut buf, Duration::from_secs(5)).expect("read");
        assert_eq!(b.iter().map(|f| f.data.to_vec()).collect::<Vec<_>>(), vec![sent[0].clone()]);
        // A ring attached again and left attached is detached when the link drops.
        link.attach_ring(64, 256).expect("ring attached again");
    }
    finish(&h);
}

#[test]
fn a_standard_user_is_denied_by_the_drivers_device_dacl() {
    let mut o = HostedOptions::new(driver(), Cable::Wire);
    o.user = Some(rawlink::hosted::Token::standard_user());
    let h = Arc::new(Hosted::start(o).expect("started"));
    let e = Rawlink::new(h.clone()).expect_err("the DACL admits SYSTEM and Administrators only");
    assert!(matches!(e, Error::AccessDenied { .. }), "{e:?}");
    assert!(e.to_string().contains("run as Administrator (this process runs as a standard user)"), "{e}");
    finish(&h);
}

//! The real rawlink.sys under concurrent use: frames indicated from two threads while one handle reads with
//! a timeout, another changes its filter back and forth, and link events come and go. Every frame a handle
//! was offered is accounted for (read, filtered, dropped, still queued), and nothing leaks.
#![cfg(target_os = "linux")]

mod common;

use rawlink_abi::{class, rawlink, FilterRequest, Frames, HandleStatistics, ReadMode};
use std::sync::atomic::{AtomicBool, Ordering};

fn frame(ethertype: u16, n: u8) -> Vec<u8> {
    let mut f = vec![0xFF; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, n]);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.resize(60 + usize::from(n), n);
    f
}

#[test]
fn receives_reads_filter_changes_and_events_at_once_lose_nothing() {
    let mut a = common::ethernet(1);
    a[0].receive_shape.nbs_per_nbl = 4;
    let h = common::running(a);
    let reader = common::attach(&h, 0);
    let changer = common::attach(&h, 0);
    let mode = ReadMode { blocking: true, min_bytes: 4096, timeout_ms: 5 }.to_bytes();
    assert_eq!(h.device_io_control(reader, rawlink::IOCTL_RAWLINK_SET_READ_MODE, &mode, 0).expect("ioctl").status, 0);
    const ROUNDS: u8 = 250;
    let done = AtomicBool::new(false);
    let read = std::thread::scope(|s| {
        let senders: Vec<_> = [0x0800u16, 0x86DD]
            .into_iter()
            .map(|t| {
                let h = &h;
                s.spawn(move || {
                    for i in 0..ROUNDS {
                        h.indicate_receive(0, (0..8).map(|k| frame(t, i.wrapping_add(k))).collect(), false)
                            .expect("receive");
                    }
                })
            })
            .collect();
        let reading = s.spawn(|| {
            let mut n = 0;
            while !done.load(Ordering::Acquire) {
                let mut w = h.submit_read(reader, 64 << 10).expect("read");
                // Each read ends by its 5 ms timeout at the latest.
                let r = w.wait(std::time::Duration::from_secs(5)).expect("wait").expect("the read completed");
                assert_eq!(r.status, 0);
                n += Frames::new(&r.output).count() as u64;
            }
            n
        });
        let changing = s.spawn(|| {
            for i in 0..50u32 {
                let types: &[u16] = if i % 2 == 0 { &[0x0800] } else { &[] };
                let (b, n) =
                    FilterRequest::new(class::DEFAULT | if i % 3 == 0 { class::PROMISCUOUS } else { 0 }, types)
                        .expect("f")
                        .to_bytes();
                let st =
                    h.device_io_control(changer, rawlink::IOCTL_RAWLINK_SET_FILTER, &b[..n], 0).expect("ioctl").status;
                assert_eq!(st, 0);
                h.indicate_link_state(0, i % 2 == 0).expect("status");
            }
        });
        // The reader stops once the others are done, even if one of them failed.
        let others: Vec<_> = senders.into_iter().map(|t| t.join()).chain([changing.join()]).collect();
        done.store(true, Ordering::Release);
        let read = reading.join().expect("reader");
        assert!(others.iter().all(Result::is_ok), "a sender or the filter changer failed");
        read
    });
    let stats = |f| {
        let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_GET_STATISTICS, &[], 64).expect("ioctl");
        HandleStatistics::parse(&r.output).expect("statistics")
    };
    let total = 2 * u64::from(ROUNDS) * 8;
    let s = stats(reader);
    assert_eq!(s.received, total);
    assert_eq!(s.filtered + s.queued + s.dropped_queue_full + s.dropped_too_large + s.dropped_resources, total);
    assert_eq!(s.delivered, read);
    assert_eq!(s.queued, s.delivered + s.pending);
    let c = stats(changer);
    assert_eq!(c.received, total);
    assert_eq!(c.filtered + c.queued + c.dropped_queue_full, total);
    common::finish(h, &[reader, changer]);
}

#[test]
fn pause_and_restart_under_send_and_receive_traffic() {
    let mut a = common::ethernet(1);
    a[0].send_completion = ndis_host::ndis::SendCompletion::Async {
        delay: std::time::Duration::from_micros(200),
        per_call: 3,
        reverse: true,
    };
    let mac = a[0].mac;
    let h = common::running(a);
    let f = common::attach(&h, 0);
    // Four frames per write, from the adapter's own MAC.
    let frames: Vec<Vec<u8>> = (0..4u8)
        .map(|n| {
            let mut fr = vec![0xFF; 6];
            fr.extend_from_slice(&mac);
            fr.extend_from_slice(&[0x88, 0xB5]);
            fr.resize(100, n);
            fr
        })
        .collect();
    let batch = common::batch(&frames);
    let done = AtomicBool::new(false);
    let (sent_ok, refused) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let (mut ok, mut refused) = (0u64, 0u64);
            while !done.load(Ordering::Acquire) {
                match h.write(f, &batch).expect("write").status {
                    0 => ok += 1,
                    // STATUS_DEVICE_NOT_READY: the binding is paused (or pausing).
                    st if st == 0xC000_00A3u32 as i32 => refused += 1,
                    st => panic!("write failed with {st:#x}: {:?}", h.violations()),
                }
            }
            (ok, refused)
        });
        let receiver = s.spawn(|| {
            for i in 0..200u8 {
                h.indicate_receive(0, vec![frame(0x0800, i); 4], false).expect("receive");
            }
        });
        for _ in 0..20 {
            std::thread::sleep(std::time::Duration::from_millis(2));
            assert_eq!(h.pause(0).expect("pause"), 0, "the pause completes once the sends in flight did");
            std::thread::sleep(std::time::Duration::from_millis(1));
            assert_eq!(h.restart(0).expect("restart"), 0);
        }
        receiver.join().expect("receiver");
        done.store(true, Ordering::Release);
        writer.join().expect("writer")
    });
    assert!(sent_ok > 0, "some writes went out between pauses ({refused} refused)");
    assert_eq!(h.sent_count(0), sent_ok * 4, "every accepted frame reached the adapter, none twice");
    assert_eq!(h.sends_in_flight(), 0);
    common::finish(h, &[f]);
}

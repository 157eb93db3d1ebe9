//! The mapped receive ring on the real rawlink.sys (see `rawlink_abi::ring`): frames written straight into
//! memory shared with the process, pages locked once, a hostile process's consumer index, detach on close,
//! and every setup failure.
#![cfg(target_os = "linux")]

mod common;

use common::status::*;

use ndis_host::faults::FaultRule;
use ndis_host::host::{Host, HostConfig};
use ndis_host::io::{Handle, UserMemory};
use rawlink_abi::ring::{self, RingLayout, RingSetup};
use rawlink_abi::{frame_flags, rawlink, FrameHeader, HandleStatistics};
use std::sync::Arc;
use std::time::Duration;

const STATUS_QUOTA_EXCEEDED: i32 = 0xC000_0044u32 as i32;
const STATUS_PENDING: i32 = 0x103;

fn frame(n: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0xFF; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, (n >> 8) as u8, n as u8]);
    f.extend_from_slice(&[0x88, 0xB5]);
    f.extend((0..len.saturating_sub(14)).map(|i| (i as u32).wrapping_mul(7).wrapping_add(n) as u8));
    f
}

/// The process's side: its ring memory and the attach request's IRP.
struct Ring {
    mem: Arc<UserMemory>,
    layout: RingLayout,
    irp: usize,
}

fn setup(slot_size: u32) -> Vec<u8> {
    RingSetup { slot_size, flags: 0 }.to_bytes().to_vec()
}

/// Attaches a ring of `slots` slots of `slot_size` bytes; the request must pend (the ring is live).
fn attach_ring(h: &Host, f: Handle, slots: u32, slot_size: u32) -> Ring {
    let layout = RingLayout::with_slots(slots, slot_size).expect("layout");
    let mem = Arc::new(UserMemory::new(layout.len()).expect("memory"));
    let p = h.submit_ioctl_shared(f, ring::IOCTL_RAWLINK_RING_ATTACH, &setup(slot_size), &mem).expect("submitted");
    assert!(!p.is_completed(), "the attach request pends while the ring is attached");
    let mut head = [0u8; 64];
    assert!(mem.read_into(0, &mut head));
    assert_eq!(RingLayout::parse_header(&head), Ok(layout), "the driver wrote the header");
    Ring { mem, layout, irp: p.irp() }
}

impl Ring {
    fn producer(&self) -> u32 {
        self.mem.load_u32(ring::PRODUCER_OFFSET)
    }

    fn consumer(&self) -> u32 {
        self.mem.load_u32(ring::CONSUMER_OFFSET)
    }

    /// Takes every frame the ring holds, as a well-behaved process does.
    fn consume(&self) -> Vec<(FrameHeader, Vec<u8>)> {
        let (mut c, p) = (self.consumer(), self.producer());
        let mut out = Vec::new();
        while c != p {
            let at = self.layout.slot_offset(c);
            let mut hb = [0u8; FrameHeader::LEN];
            assert!(self.mem.read_into(at, &mut hb));
            let hd = FrameHeader::parse(&hb).expect("header");
            assert!(hd.captured_length as usize <= self.layout.capacity());
            let mut data = vec![0; hd.captured_length as usize];
            assert!(self.mem.read_into(at + FrameHeader::LEN, &mut data));
            out.push((hd, data));
            c = c.wrapping_add(1);
        }
        self.mem.store_u32(ring::CONSUMER_OFFSET, c);
        out
    }

    fn dropped(&self) -> u64 {
        let mut b = [0u8; 8];
        assert!(self.mem.read_into(ring::DROPPED_OFFSET, &mut b));
        u64::from_le_bytes(b)
    }

    fn status(&self) -> u32 {
        self.mem.load_u32(ring::STATUS_OFFSET)
    }
}

fn stats(h: &Host, f: Handle) -> HandleStatistics {
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_GET_STATISTICS, &[], HandleStatistics::LEN).expect("ioctl");
    assert_eq!(r.status, STATUS_SUCCESS);
    HandleStatistics::parse(&r.output).expect("statistics")
}

fn ring_wait(h: &Host, f: Handle) -> ndis_host::io::PendingIo<'_> {
    h.submit_ioctl(f, ring::IOCTL_RAWLINK_RING_WAIT, &[], 0).expect("submitted")
}

fn wait_done(h: &Host, irp: usize) -> i32 {
    h.wait_request(irp, Duration::from_secs(10)).expect("waited").expect("completed").status
}

/// Every length from the shortest frame to the longest, past the short-copy and long-copy boundaries (64, 256
/// bytes) and the 64-byte blocks of long frames: each frame is written into its slot whole, with no byte of
/// it wrong.
#[test]
fn frames_of_every_length_from_14_to_1514_bytes_arrive_intact() {
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    let r = attach_ring(&h, f, 64, 2048);
    let lengths: Vec<usize> = (14..=1514).collect();
    for (burst, group) in lengths.chunks(32).enumerate() {
        let frames: Vec<Vec<u8>> = group.iter().map(|&len| frame(burst as u32 * 64 + len as u32, len)).collect();
        assert_eq!(h.indicate_receive(0, frames.clone(), false).expect("indicated"), 0);
        let got = r.consume();
        assert_eq!(got.len(), frames.len());
        for ((hd, data), want) in got.iter().zip(&frames) {
            assert_eq!(hd.captured_length as usize, want.len());
            assert_eq!(data, want, "a {}-byte frame", want.len());
        }
    }
}

#[test]
fn frames_arrive_in_the_ring_intact_in_order_with_headers() {
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    let r = attach_ring(&h, f, 64, 2048);
    let mut sent = Vec::new();
    for burst in 0..3u32 {
        let frames: Vec<Vec<u8>> = (0..20).map(|i| frame(burst * 100 + i, 60 + (i as usize * 97) % 1455)).collect();
        assert_eq!(h.indicate_receive(0, frames.clone(), false).expect("indicated"), 0);
        sent.extend(frames);
    }
    assert_eq!(r.producer(), 60, "one producer index covers the frames");
    let got = r.consume();
    assert_eq!(got.len(), sent.len());
    let mut last = 0;
    for ((hd, data), want) in got.iter().zip(&sent) {
        assert_eq!(data, want, "intact and in order");
        assert_eq!((hd.captured_length as usize, hd.original_length as usize), (want.len(), want.len()));
        assert_eq!(hd.flags, 0);
        assert!(hd.timestamp >= last);
        last = hd.timestamp;
    }
    // Ring mode: the read queue stays empty.
    assert_eq!(h.read(f, 65536).expect("read").information, 0);
    let s = stats(&h, f);
    assert_eq!((s.received, s.queued, s.dropped_queue_full, s.pending), (60, 60, 0, 60), "{s:?}");
    // The driver sees what was consumed at its next look at the ring (the next batch).
    h.indicate_receive(0, vec![frame(999, 64)], false).expect("indicated");
    let s = stats(&h, f);
    assert_eq!((s.delivered, s.pending), (60, 1), "{s:?}");
    // Closing the handle detaches the ring: the attach request completes, cancelled.
    assert_eq!(h.close(f).expect("closed"), 0);
    assert_eq!(wait_done(&h, r.irp), STATUS_CANCELLED);
    common::finish(h, &[]);
}

#[test]
fn long_frames_are_cut_to_the_slot_and_a_full_ring_drops_and_counts() {
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    // 4096 bytes of data in 256-byte slots: 16 slots of 232 frame bytes.
    let r = attach_ring(&h, f, 16, 256);
    assert_eq!(r.layout.slot_count, 16);
    let frames: Vec<Vec<u8>> = (0..20).map(|i| frame(i, 1000)).collect();
    h.indicate_receive(0, frames.clone(), false).expect("indicated");
    assert_eq!(r.producer(), 16);
    assert_eq!(r.dropped(), 4);
    // A batch that finds the ring full writes nothing but the drop count.
    h.indicate_receive(0, vec![frame(400, 100)], false).expect("indicated");
    assert_eq!((r.producer(), r.dropped()), (16, 5));
    let got = r.consume();
    assert_eq!(got.len(), 16);
    for ((hd, data), want) in got.iter().zip(&frames) {
        assert_eq!((hd.captured_length, hd.original_length), (232, 1000));
        assert_eq!(hd.flags & frame_flags::TRUNCATED, frame_flags::TRUNCATED);
        assert_eq!(data[..], want[..232]);
    }
    // Room again: the next frames arrive, wrapping to slot 0.
    h.indicate_receive(0, vec![frame(500, 100)], false).expect("indicated");
    let got = r.consume();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, frame(500, 100));
    let s = stats(&h, f);
    assert_eq!((s.queued, s.dropped_queue_full), (17, 5), "{s:?}");
    assert_eq!(r.status(), 0);
    close_with_ring(h, f, &r);
}

#[test]
fn ring_waits_complete_when_frames_arrive_and_are_cancellable() {
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    // No ring yet.
    assert_eq!(
        h.device_io_control(f, ring::IOCTL_RAWLINK_RING_WAIT, &[], 0).expect("ioctl").status,
        STATUS_INVALID_DEVICE_STATE
    );
    let r = attach_ring(&h, f, 64, 2048);
    let w = ring_wait(&h, f);
    assert!(!w.is_completed(), "an empty ring: the wait pends");
    let irp = w.irp();
    drop(w);
    h.indicate_receive(0, vec![frame(1, 64)], false).expect("indicated");
    assert_eq!(wait_done(&h, irp), STATUS_SUCCESS, "frames arrived: the waiter wakes");
    // Frames waiting: at once.
    assert_eq!(h.device_io_control(f, ring::IOCTL_RAWLINK_RING_WAIT, &[], 0).expect("ioctl").status, STATUS_SUCCESS);
    assert_eq!(r.consume().len(), 1);
    let w = ring_wait(&h, f);
    assert!(w.cancel().expect("cancel ran"));
    let irp = w.irp();
    drop(w);
    assert_eq!(wait_done(&h, irp), STATUS_CANCELLED);
    // A wait pending at close is completed by CLEANUP, and so is the ring.
    let w = ring_wait(&h, f);
    let irp = w.irp();
    drop(w);
    assert_eq!(h.close(f).expect("closed"), 0);
    assert_eq!(wait_done(&h, irp), STATUS_CANCELLED);
    assert_eq!(wait_done(&h, r.irp), STATUS_CANCELLED);
    common::finish(h, &[]);
}

#[test]
fn cancelling_the_attach_request_detaches_the_ring_and_frames_go_to_reads_again() {
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    let r = attach_ring(&h, f, 64, 2048);
    let layout = r.layout;
    let mem = Arc::new(UserMemory::new(layout.len()).expect("memory"));
    let again = h.submit_ioctl_shared(f, ring::IOCTL_RAWLINK_RING_ATTACH, &setup(2048), &mem).expect("submitted");
    assert!(again.is_completed(), "one ring per handle");
    let irp = again.irp();
    drop(again);
    assert_eq!(wait_done(&h, irp), STATUS_INVALID_DEVICE_STATE);
    h.indicate_receive(0, vec![frame(1, 64)], false).expect("indicated");
    // CancelIoEx of the attach request.
    assert!(h.cancel_request(r.irp).expect("cancel"), "the ring's cancel routine ran");
    assert_eq!(wait_done(&h, r.irp), STATUS_CANCELLED);
    h.indicate_receive(0, vec![frame(2, 64)], false).expect("indicated");
    let read = h.read(f, 4096).expect("read");
    let frames: Vec<_> = rawlink_abi::Frames::new(&read.output).map(|(_, d)| d.to_vec()).collect();
    assert_eq!(frames, vec![frame(2, 64)], "after the detach, frames are queued for reads");
    // A new ring can be attached again.
    let r2 = attach_ring(&h, f, 64, 2048);
    h.indicate_receive(0, vec![frame(3, 64)], false).expect("indicated");
    assert_eq!(r2.consume().len(), 1);
    let s = stats(&h, f);
    assert_eq!((s.queued, s.received), (3, 3), "the detached ring's frame stays counted: {s:?}");
    close_with_ring(h, f, &r2);
}

/// Closes `f`, whose ring is still attached: CLEANUP completes the attach request (cancelled), and once it
/// is finished CLOSE follows; then unload, a clean verifier and an empty pool.
fn close_with_ring(h: Host, f: Handle, r: &Ring) {
    assert_eq!(h.close(f).expect("closed"), 0);
    assert_eq!(wait_done(&h, r.irp), STATUS_CANCELLED);
    common::finish(h, &[]);
}

#[test]
fn a_hostile_consumer_index_breaks_the_ring_with_a_defined_outcome() {
    // Past the producer, backwards, garbage: each breaks the ring at the next batch.
    for (name, bad) in [("past the producer", 10u32), ("garbage", 0xDEAD_BEEF), ("backwards", 2)] {
        let h = common::running(common::ethernet(1));
        let f = common::attach(&h, 0);
        let r = attach_ring(&h, f, 16, 256);
        h.indicate_receive(0, (0..8).map(|i| frame(i, 100)).collect(), false).expect("indicated");
        assert_eq!(r.producer(), 8);
        r.mem.store_u32(ring::CONSUMER_OFFSET, 4);
        h.indicate_receive(0, vec![frame(8, 100)], false).expect("indicated");
        assert_eq!(r.producer(), 9, "{name}: a valid consumer index");
        let before: Vec<u8> = {
            let mut b = vec![0; r.layout.len()];
            assert!(r.mem.read_into(0, &mut b));
            b
        };
        r.mem.store_u32(ring::CONSUMER_OFFSET, bad);
        h.indicate_receive(0, (0..8).map(|i| frame(100 + i, 100)).collect(), false).expect("indicated");
        assert_eq!(wait_done(&h, r.irp), STATUS_INVALID_PARAMETER, "{name}: the ring is detached");
        assert_eq!(r.status(), ring::status::BROKEN, "{name}");
        assert_eq!(r.producer(), 9, "{name}: nothing more was produced");
        let mut after = vec![0; r.layout.len()];
        assert!(r.mem.read_into(0, &mut after));
        let changed: Vec<usize> = (0..after.len()).filter(|&i| before[i] != after[i]).collect();
        assert!(
            changed.iter().all(|&i| (ring::CONSUMER_OFFSET..ring::CONSUMER_OFFSET + 4).contains(&i)
                || (ring::STATUS_OFFSET..ring::STATUS_OFFSET + 4).contains(&i)),
            "{name}: a broken ring gets no frame bytes: {changed:?}"
        );
        assert_eq!(
            h.device_io_control(f, ring::IOCTL_RAWLINK_RING_WAIT, &[], 0).expect("ioctl").status,
            STATUS_INVALID_DEVICE_STATE,
            "{name}: no ring any more"
        );
        common::finish(h, &[f]);
    }
}

#[test]
fn a_ring_wait_with_a_hostile_consumer_index_detaches() {
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    let r = attach_ring(&h, f, 16, 256);
    r.mem.store_u32(ring::CONSUMER_OFFSET, 77);
    assert_eq!(
        h.device_io_control(f, ring::IOCTL_RAWLINK_RING_WAIT, &[], 0).expect("ioctl").status,
        STATUS_INVALID_PARAMETER
    );
    assert_eq!(wait_done(&h, r.irp), STATUS_INVALID_PARAMETER);
    common::finish(h, &[f]);
}

#[test]
fn a_process_scribbling_over_the_whole_ring_while_frames_arrive_gets_no_out_of_range_write() {
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    let r = attach_ring(&h, f, 64, 128);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let (mem, layout, stop) = (&r.mem, r.layout, &stop);
        s.spawn(move || {
            // A hostile thread: random words everywhere, the consumer index included (a guard page follows
            // the ring: a write past it would fault the driver).
            let mut x = 0x9E37_79B9_7F4A_7C15u64;
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let at = (x as usize % layout.len()) & !3;
                mem.store_u32(at, (x >> 32) as u32);
            }
        });
        for i in 0..200 {
            let frames = (0..16).map(|j| frame(i * 16 + j, 60 + (j as usize * 131) % 1400)).collect();
            h.indicate_receive(0, frames, false).expect("indicated");
        }
        stop.store(true, std::sync::atomic::Ordering::Release);
    });
    // Broken (almost surely, the consumer word was hit) or not, the driver is well: statistics answer, reads
    // work, and the close detaches whatever is left.
    let s = stats(&h, f);
    assert_eq!(s.received, 3200, "{s:?}");
    assert_eq!(s.queued + s.dropped_queue_full + s.filtered, 3200, "every frame accounted for: {s:?}");
    assert_eq!(h.close(f).expect("closed"), 0);
    let st = wait_done(&h, r.irp);
    assert!(st == STATUS_INVALID_PARAMETER || st == STATUS_CANCELLED, "{st:#x}");
    common::finish(h, &[]);
}

#[test]
fn pages_are_locked_and_mapped_once_never_per_batch() {
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    let count = |api: &str| h.fault_history().0.iter().filter(|(a, _)| a == api).count();
    let (locks, maps) = (h.user_pages_locked(), count("MmMapLockedPagesSpecifyCache"));
    let r = attach_ring(&h, f, 256, 2048);
    assert_eq!(h.user_pages_locked(), locks + 1, "the I/O manager locked the ring's pages once");
    assert_eq!(count("MmMapLockedPagesSpecifyCache"), maps + 1, "the driver mapped them once");
    assert_eq!(count("MmProbeAndLockPages"), 1);
    let mut got = 0;
    for i in 0..100 {
        h.indicate_receive(0, (0..16).map(|j| frame(i * 16 + j, 512)).collect(), false).expect("indicated");
        assert_eq!(
            h.device_io_control(f, ring::IOCTL_RAWLINK_RING_WAIT, &[], 0).expect("ioctl").status,
            STATUS_SUCCESS,
            "frames are waiting: at once"
        );
        got += r.consume().len();
    }
    assert_eq!(got, 1600);
    assert_eq!(h.user_pages_locked(), locks + 1, "no lock per batch");
    assert_eq!(count("MmMapLockedPagesSpecifyCache"), maps + 1, "no mapping per batch");
    // For contrast: every ReadFile on the DO_DIRECT_IO device is a probe-and-lock of its buffer.
    for _ in 0..10 {
        assert_eq!(h.read(f, 4096).expect("read").status, STATUS_SUCCESS);
    }
    assert_eq!(h.user_pages_locked(), locks + 11, "reads lock their buffer each time");
    close_with_ring(h, f, &r);
}

#[test]
fn closing_with_frames_in_flight_detaches_cleanly() {
    for round in 0..5 {
        let h = common::running(common::ethernet(1));
        let f = common::attach(&h, 0);
        let r = attach_ring(&h, f, 64, 2048);
        std::thread::scope(|s| {
            let h = &h;
            s.spawn(move || {
                for i in 0..60 {
                    let frames = (0..32).map(|j| frame(i * 32 + j, 200)).collect();
                    h.indicate_receive(0, frames, false).expect("indicated");
                }
            });
            std::thread::sleep(Duration::from_millis(2 * round));
            assert_eq!(h.close(f).expect("closed"), 0);
        });
        assert_eq!(wait_done_status_or_finished(&h, r.irp), STATUS_CANCELLED);
        assert_eq!(h.outstanding_receives(), 0);
        common::finish(h, &[]);
    }
}

/// The attach request's final status (closing the handle may have finished it already: then it was
/// cancelled, which `finish` checks through the verifier).
fn wait_done_status_or_finished(h: &Host, irp: usize) -> i32 {
    match h.wait_request(irp, Duration::from_secs(10)) {
        Ok(Some(r)) => r.status,
        _ => STATUS_CANCELLED,
    }
}

#[test]
fn bad_setups_are_refused_before_anything_is_held() {
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    let try_attach = |input: &[u8], len: usize| {
        let mem = Arc::new(UserMemory::new(len).expect("memory"));
        let mut p = h.submit_ioctl_shared(f, ring::IOCTL_RAWLINK_RING_ATTACH, input, &mem).expect("submitted");
        p.wait(Duration::from_secs(10)).expect("waited").expect("completed").status
    };
    let ok_len = RingLayout::with_slots(64, 2048).unwrap().len();
    assert_eq!(try_attach(&[0; 7], ok_len), STATUS_BUFFER_TOO_SMALL);
    assert_eq!(try_attach(&RingSetup { slot_size: 2048, flags: 1 }.to_bytes(), ok_len), STATUS_INVALID_PARAMETER);
    assert_eq!(try_attach(&setup(2000), ok_len), STATUS_INVALID_PARAMETER, "not a power of two");
    assert_eq!(try_attach(&setup(32), ok_len), STATUS_INVALID_PARAMETER, "too small");
    assert_eq!(try_attach(&setup(2048), ok_len + 4096), STATUS_INVALID_PARAMETER, "not a power of two of slots");
    assert_eq!(try_attach(&setup(2048), 4096), STATUS_INVALID_PARAMETER, "no data area");
    // Before the handle is attached to an adapter.
    let g = h.open("\\\\.\\RawLink").expect("opened");
    let mem = Arc::new(UserMemory::new(ok_len).expect("memory"));
    let p = h.submit_ioctl_shared(g, ring::IOCTL_RAWLINK_RING_ATTACH, &setup(2048), &mem).expect("submitted");
    let irp = p.irp();
    drop(p);
    assert_eq!(wait_done(&h, irp), STATUS_INVALID_DEVICE_STATE);
    // Nothing held: the handle still attaches a ring and reads work.
    let r = attach_ring(&h, f, 64, 2048);
    h.indicate_receive(0, vec![frame(1, 64)], false).expect("indicated");
    assert_eq!(r.consume().len(), 1);
    assert_eq!(h.close(g).expect("closed"), 0);
    close_with_ring(h, f, &r);
}

/// The driver with one adapter, `faults` planned, a budget of `mib` MiB (None: the default).
fn running_with(faults: Vec<FaultRule>, mib: Option<u32>) -> Host {
    let bytes = common::package_file("rawlink.sys");
    let mut h = Host::load(&bytes, HostConfig { faults, ..HostConfig::default() }).expect("loaded");
    if let Some(m) = mib {
        let key = format!("{}\\Parameters", h.registry_path());
        h.set_registry_value(&key, "PoolBudgetMiB", 4, &m.to_le_bytes());
    }
    h.add_adapter(ndis_host::ndis::AdapterConfig::ethernet(1)).expect("adapter");
    assert_eq!(h.driver_entry().expect("DriverEntry ran"), 0);
    h
}

#[test]
fn every_setup_failure_gets_a_defined_status_and_leaks_nothing() {
    let layout = RingLayout::with_slots(1024, 2048).unwrap();
    // Each failure point of the setup: the I/O manager's probe-and-lock, the driver's mapping, its budget.
    let dry = running_with(Vec::new(), None);
    let f = common::attach(&dry, 0);
    let count = |h: &Host, api: &str| h.fault_history().0.iter().filter(|(a, _)| a == api).count() as u64;
    let maps_before = count(&dry, "MmMapLockedPagesSpecifyCache");
    let probes_before = count(&dry, "MmProbeAndLockPages");
    common::finish(dry, &[f]);
    let cases = [
        (
            vec![FaultRule::FailNth { api: "MmProbeAndLockPages".into(), n: probes_before + 1 }],
            None,
            STATUS_INSUFFICIENT_RESOURCES,
        ),
        (
            vec![FaultRule::FailNth { api: "MmMapLockedPagesSpecifyCache".into(), n: maps_before + 1 }],
            None,
            STATUS_INSUFFICIENT_RESOURCES,
        ),
        (Vec::new(), Some(2), STATUS_QUOTA_EXCEEDED),
    ];
    for (faults, mib, want) in cases {
        let what = format!("{faults:?} budget {mib:?}");
        let h = running_with(faults, mib);
        let f = common::attach(&h, 0);
        let pool = h.pool_in_use();
        let mem = Arc::new(UserMemory::new(layout.len()).expect("memory"));
        let mut p = h.submit_ioctl_shared(f, ring::IOCTL_RAWLINK_RING_ATTACH, &setup(2048), &mem).expect("submitted");
        assert!(p.is_completed(), "{what}: completed at once");
        let st = p.wait(Duration::from_secs(10)).expect("waited").expect("completed").status;
        drop(p);
        assert_eq!(st, want, "{what}");
        assert_ne!(st, STATUS_PENDING);
        assert_eq!(h.pool_in_use(), pool, "{what}: nothing held");
        assert_eq!(mem.load_u32(0), 0, "{what}: nothing written");
        // The handle is unharmed: a smaller ring (within any budget) attaches.
        let r = attach_ring(&h, f, 64, 2048);
        h.indicate_receive(0, vec![frame(1, 64)], false).expect("indicated");
        assert_eq!(r.consume().len(), 1, "{what}");
        close_with_ring(h, f, &r);
    }
}

#[test]
fn an_unbind_detaches_the_ring_with_the_adapter_gone() {
    let h = common::running(common::ethernet(1));
    let f = common::attach(&h, 0);
    let r = attach_ring(&h, f, 64, 2048);
    let w = ring_wait(&h, f);
    let wirp = w.irp();
    drop(w);
    h.remove_adapter(0).expect("unbound");
    assert_eq!(wait_done(&h, r.irp), STATUS_INVALID_DEVICE_STATE);
    assert_eq!(wait_done(&h, wirp), STATUS_INVALID_DEVICE_STATE);
    common::finish(h, &[f]);
}

#[test]
fn a_ring_wait_whose_allocation_fails_gets_insufficient_resources() {
    // The wait list's first slot is the one allocation on the ring's paths; fail it (the allocator's next
    // pool allocation after setup).
    let dry = running_with(Vec::new(), None);
    let f = common::attach(&dry, 0);
    let r = attach_ring(&dry, f, 16, 256);
    let (history, _) = dry.fault_history();
    let api = ["ExAllocatePool2", "ExAllocatePoolWithTag"]
        .into_iter()
        .find(|a| history.iter().any(|(h, _)| h == a))
        .expect("the driver allocates pool");
    let n = history.iter().filter(|(h, _)| h == api).count() as u64;
    close_with_ring(dry, f, &r);
    let h = running_with(vec![FaultRule::FailNth { api: api.into(), n: n + 1 }], None);
    let f = common::attach(&h, 0);
    let r = attach_ring(&h, f, 16, 256);
    assert_eq!(
        h.device_io_control(f, ring::IOCTL_RAWLINK_RING_WAIT, &[], 0).expect("ioctl").status,
        STATUS_INSUFFICIENT_RESOURCES
    );
    // Nothing is broken: the next wait pends and frames wake it.
    let w = ring_wait(&h, f);
    let irp = w.irp();
    drop(w);
    h.indicate_receive(0, vec![frame(1, 64)], false).expect("indicated");
    assert_eq!(wait_done(&h, irp), STATUS_SUCCESS);
    assert_eq!(r.consume().len(), 1);
    close_with_ring(h, f, &r);
}

//! The send slots of the real rawlink.sys (`src/kernel/sendpool.rs`, `src/txpool.rs`): after warm-up a write
//! makes no allocating or freeing call at all, whatever its size or form; an exhausted pool refuses a write
//! whole and reports the frames of a SEND that got no slot; an MTU change resizes the slots; a failure
//! anywhere in building them is a defined status with nothing leaked.
#![cfg(target_os = "linux")]

mod common;

use common::status::*;
use ndis_host::faults::FaultRule;
use ndis_host::host::{Host, HostConfig};
use ndis_host::ndis::{AdapterConfig, SendCompletion};
use rawlink_abi::{ndisprot, rawlink, SendReply};
use std::time::Duration;

const STATUS_QUOTA_EXCEEDED: i32 = 0xC000_0044u32 as i32;
const REG_DWORD: u32 = 4;

/// Slots a binding may have (`txpool::MAX_SLOTS`, one write of MAX_BATCH frames).
const MAX_SLOTS: usize = 4096;
/// Slots per chunk (`txpool::CHUNK_SLOTS`).
const CHUNK_SLOTS: usize = 64;

fn frame(src: [u8; 6], n: u8, len: usize) -> Vec<u8> {
    let mut f = vec![0xFF; 6];
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x88, 0xB5]);
    f.extend((0..len.saturating_sub(14)).map(|i| (i as u8) ^ n));
    f
}

/// Calls that allocate or free memory or NDIS objects, by name.
fn allocating(name: &str) -> bool {
    ndis_host::faults::ALLOCATING_APIS.contains(&name)
        || (name.starts_with("Ndis") || name.starts_with("Ex") || name.starts_with("Io"))
            && (name.contains("Allocate") || name.contains("Free"))
}

fn host(config: HostConfig, adapter: AdapterConfig) -> Host {
    let bytes = common::package_file("rawlink.sys");
    let mut h = Host::load(&bytes, config).expect("loaded");
    h.add_adapter(adapter).expect("adapter");
    assert_eq!(h.driver_entry().expect("DriverEntry ran"), 0);
    h
}

fn utf16z(s: &str) -> Vec<u8> {
    s.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect()
}

#[test]
fn after_warm_up_writes_make_no_allocating_call_per_frame_or_per_write() {
    let a = AdapterConfig::ethernet(1);
    let h = host(HostConfig { trace_capacity: 4_000_000, ..HostConfig::default() }, a.clone());
    let f = common::attach(&h, 0);
    let np = h.open("\\\\.\\RawLink").expect("opened");
    let r = h.device_io_control(np, ndisprot::IOCTL_NDISPROT_OPEN_DEVICE, &utf16z(&a.name), 0).expect("ioctl");
    assert_eq!(r.status, STATUS_SUCCESS);
    let sizes = [64usize, 512, 1514];
    let batches: Vec<Vec<u8>> =
        sizes.iter().map(|&len| common::batch(&(0..64u8).map(|i| frame(a.mac, i, len)).collect::<Vec<_>>())).collect();
    // Warm-up: the first writes build the slots.
    for b in &batches {
        assert_eq!(h.write(f, b).expect("write").status, STATUS_SUCCESS);
    }
    let (kept_before, dropped) = h.trace_retained();
    assert_eq!(dropped, 0);
    let warm_allocations = h.trace().iter().filter(|e| allocating(&e.name)).count();
    assert!(warm_allocations > 2 * CHUNK_SLOTS, "the warm-up built slots ({warm_allocations} allocating calls)");
    let sent_before = h.sent_count(0);
    // Steady state: 300 batched writes (64 frames each, three sizes), 100 SEND ioctls, 200 one-frame writes.
    for i in 0..300 {
        assert_eq!(h.write(f, &batches[i % 3]).expect("write").status, STATUS_SUCCESS);
    }
    for i in 0..100 {
        let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_SEND, &batches[i % 3], SendReply::LEN).expect("send");
        let reply = SendReply::parse(&r.output).expect("reply");
        assert_eq!((reply.frames_sent, reply.first_failure), (64, SendReply::NONE));
    }
    for i in 0..200 {
        let one = frame(a.mac, i as u8, sizes[i % 3]);
        assert_eq!(h.write(np, &one).expect("write").information, one.len());
    }
    let frames = (300 + 100) * 64 + 200;
    assert_eq!(h.sent_count(0) - sent_before, frames);
    let (kept, dropped) = h.trace_retained();
    assert_eq!(dropped, 0, "the whole run is in the trace");
    let trace = h.trace();
    let steady = &trace[kept_before..kept];
    let sends = steady.iter().filter(|e| e.name == "NdisSendNetBufferLists").count();
    assert_eq!(sends, 600, "every request is in the part of the trace looked at");
    let calls: Vec<&str> = steady.iter().filter(|e| allocating(&e.name)).map(|e| e.name.as_str()).collect();
    assert!(
        calls.is_empty(),
        "{} allocating calls for {frames} frames: {:?}",
        calls.len(),
        &calls[..calls.len().min(20)]
    );
    eprintln!("steady state: {frames} frames in 600 requests, {} trace events, 0 allocating calls", steady.len());
    common::finish(h, &[f, np]);
}

#[test]
fn an_exhausted_pool_refuses_a_write_whole_and_reports_the_frames_of_a_send_without_a_slot() {
    let a = AdapterConfig { send_completion: SendCompletion::Deferred, ..AdapterConfig::ethernet(1) };
    let mut h = host(HostConfig::default(), a.clone());
    let f = common::attach(&h, 0);
    // All but 10 slots go out and stay out (completions deferred).
    let many: Vec<Vec<u8>> = (0..MAX_SLOTS - 10).map(|i| frame(a.mac, i as u8, 60)).collect();
    let first = h.submit_write(f, &common::batch(&many)).expect("submitted").irp();
    assert_eq!(h.sent_count(0), (MAX_SLOTS - 10) as u64);
    // A write needing more than the 10 left: refused whole, nothing sent.
    let eleven: Vec<Vec<u8>> = (0..11u8).map(|i| frame(a.mac, i, 100)).collect();
    let r = h.write(f, &common::batch(&eleven)).expect("write");
    assert_eq!((r.status, r.information), (STATUS_INSUFFICIENT_RESOURCES, 0));
    assert_eq!(h.sent_count(0), (MAX_SLOTS - 10) as u64, "nothing of the refused write went out");
    // A SEND of the same eleven: ten go, the eleventh is reported.
    let send = h.submit_ioctl(f, rawlink::IOCTL_RAWLINK_SEND, &common::batch(&eleven), SendReply::LEN).expect("send");
    let second = send.irp();
    drop(send);
    assert_eq!(h.sent_count(0), MAX_SLOTS as u64);
    // Now none is left: a SEND gets its reply at once, a one-frame batch is refused.
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_SEND, &common::batch(&eleven[..2]), SendReply::LEN);
    let reply = SendReply::parse(&r.expect("send").output).expect("reply");
    assert_eq!(
        (reply.frames_sent, reply.first_failure, reply.status),
        (0, 0, STATUS_INSUFFICIENT_RESOURCES),
        "no slot at all"
    );
    let r = h.write(f, &common::batch(&eleven[..1])).expect("write");
    assert_eq!(r.status, STATUS_INSUFFICIENT_RESOURCES);
    // The completions give the slots back; the writes complete as usual.
    assert_eq!(h.complete_sends(0, 0, false).expect("completed"), MAX_SLOTS);
    let w = h.wait_request(first, Duration::from_secs(5)).expect("waited").expect("completed");
    assert_eq!((w.status, w.information), (STATUS_SUCCESS, (MAX_SLOTS - 10) * 60));
    let s = h.wait_request(second, Duration::from_secs(5)).expect("waited").expect("completed");
    let reply = SendReply::parse(&s.output).expect("reply");
    assert_eq!((reply.frames_sent, reply.first_failure, reply.status), (10, 10, STATUS_INSUFFICIENT_RESOURCES));
    let mut w = h.submit_write(f, &common::batch(&eleven)).expect("submitted");
    assert!(w.wait(Duration::from_millis(1)).expect("wait").is_none(), "in flight (deferred)");
    let irp = w.irp();
    drop(w);
    assert_eq!(h.complete_sends(0, 0, false).expect("completed"), 11);
    let w = h.wait_request(irp, Duration::from_secs(5)).expect("waited").expect("completed");
    assert_eq!(w.status, STATUS_SUCCESS, "slots are back after the completions");
    common::finish(h, &[f]);
}

/// Chunks of `slot` bytes per slot in the driver's pool (their buffers are one block each).
fn chunks(h: &Host, slot: usize) -> usize {
    h.pool().iter().filter(|&&(_, size)| size == CHUNK_SLOTS * slot).count()
}

#[test]
fn an_mtu_change_resizes_the_slots_and_a_pause_waits_for_the_slots_out() {
    let a = AdapterConfig {
        send_completion: SendCompletion::Async { delay: Duration::from_millis(100), per_call: 0, reverse: false },
        ..AdapterConfig::ethernet(1)
    };
    let mut h = host(HostConfig::default(), a.clone());
    let f = common::attach(&h, 0);
    let small: Vec<Vec<u8>> = (0..100u8).map(|i| frame(a.mac, i, 1514)).collect();
    assert_eq!(h.write(f, &common::batch(&small)).expect("write").status, STATUS_SUCCESS);
    // Slots are out while the MTU changes: the pause pends until they are back.
    let irp = h.submit_write(f, &common::batch(&small)).expect("submitted").irp();
    assert_eq!(h.change_mtu(0, 9000).expect("restart"), 0);
    let w = h.wait_request(irp, Duration::from_secs(5)).expect("waited").expect("completed");
    assert_eq!(w.status, STATUS_SUCCESS);
    // At most 100 frames were out at once: two chunks of 1536-byte slots (1514 B + a VLAN tag, in cache
    // lines), reused by the second write.
    assert_eq!((chunks(&h, 1536), chunks(&h, 9024)), (2, 0));
    // Jumbo frames get jumbo slots; the 1536-byte ones are freed.
    let jumbo: Vec<Vec<u8>> = (0..100u8).map(|i| frame(a.mac, i, 9014)).collect();
    let before = h.sent_count(0);
    assert_eq!(h.write(f, &common::batch(&jumbo)).expect("write").status, STATUS_SUCCESS);
    assert_eq!(h.sent_count(0) - before, 100);
    assert_eq!(h.sent_frames(0).last(), jumbo.last(), "sent byte for byte");
    assert_eq!((chunks(&h, 1536), chunks(&h, 9024)), (0, 2), "jumbo slots replaced the small ones");
    let pool_9000 = h.pool_in_use();
    // A smaller MTU keeps the larger slots and applies the smaller limit.
    assert_eq!(h.change_mtu(0, 1500).expect("restart"), 0);
    let r = h.write(f, &common::batch(&[frame(a.mac, 1, 1515)])).expect("write");
    assert_eq!(r.status, STATUS_INVALID_BUFFER_SIZE);
    assert_eq!(h.write(f, &common::batch(&small)).expect("write").status, STATUS_SUCCESS);
    assert_eq!(h.pool_in_use(), pool_9000, "no new slots for smaller frames");
    common::finish(h, &[f]);
}

/// Every allocating call the first write makes (the pool's first chunk: its pool memory, then an MDL and an
/// NBL per slot) is failed once, in a fresh driver each time: that write fails with
/// STATUS_INSUFFICIENT_RESOURCES and sends nothing, the next write builds the slots and succeeds, and the
/// unload leaves no pool, MDL or NBL behind.
#[test]
fn each_failure_while_building_the_slots_is_insufficient_resources_and_leaks_nothing() {
    let a = AdapterConfig::ethernet(1);
    let frames: Vec<Vec<u8>> = (0..3u8).map(|i| frame(a.mac, i, 100)).collect();
    let batch = common::batch(&frames);
    // The calls of one first write, from a clean run.
    let h = host(HostConfig::default(), a.clone());
    let f = common::attach(&h, 0);
    let (before, _) = h.fault_history();
    assert_eq!(h.write(f, &batch).expect("write").status, STATUS_SUCCESS);
    let (after, _) = h.fault_history();
    common::finish(h, &[f]);
    let calls: Vec<(String, u64)> = after[before.len()..]
        .iter()
        .filter(|(api, _)| ndis_host::faults::ALLOCATING_APIS.contains(&api.as_str()))
        .cloned()
        .collect();
    for api in ["NdisAllocateMdl", "NdisAllocateNetBufferAndNetBufferList"] {
        assert_eq!(calls.iter().filter(|(a, _)| a == api).count(), CHUNK_SLOTS, "{api}: one per slot of a chunk");
    }
    // Failing the first, second and last of each kind covers each unwinding path; every pool allocation too.
    let mut cases: Vec<(String, u64)> = Vec::new();
    for api in ["NdisAllocateMdl", "NdisAllocateNetBufferAndNetBufferList"] {
        let of: Vec<&(String, u64)> = calls.iter().filter(|(a, _)| a == api).collect();
        for i in [0, 1, of.len() - 1] {
            cases.push(of[i].clone());
        }
    }
    cases.extend(calls.iter().filter(|(a, _)| !a.starts_with("NdisAllocate")).cloned());
    assert!(cases.len() >= 7, "{cases:?}");
    for (api, n) in cases {
        let config = HostConfig { faults: vec![FaultRule::FailNth { api: api.clone(), n }], ..HostConfig::default() };
        let h = host(config, a.clone());
        let f = common::attach(&h, 0);
        let r = h.write(f, &batch).expect("write");
        assert_eq!((r.status, r.information), (STATUS_INSUFFICIENT_RESOURCES, 0), "failing {api} #{n}");
        assert_eq!(h.sent_count(0), 0, "failing {api} #{n}: nothing sent");
        assert_eq!(h.write(f, &batch).expect("write").status, STATUS_SUCCESS, "after failing {api} #{n}");
        assert_eq!(h.sent_frames(0), frames);
        common::finish(h, &[f]);
    }
}

/// A budget too small for one chunk of slots: the write is STATUS_QUOTA_EXCEEDED, nothing leaks.
#[test]
fn a_budget_too_small_for_the_slots_is_quota_exceeded() {
    let a = AdapterConfig::ethernet(1);
    let bytes = common::package_file("rawlink.sys");
    let mut h = Host::load(&bytes, HostConfig::default()).expect("loaded");
    let key = format!("{}\\Parameters", h.registry_path());
    h.set_registry_value(&key, "PoolBudgetMiB", REG_DWORD, &1u32.to_le_bytes());
    h.add_adapter(a.clone()).expect("adapter");
    assert_eq!(h.driver_entry().expect("DriverEntry ran"), 0);
    let f = h.open("\\\\.\\RawLink").expect("opened");
    // The handle's queue takes most of the 1 MiB budget; a chunk of 1536-byte slots (96 KiB) no longer fits.
    let q = (1u32 << 20) - (64 << 10);
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_SET_QUEUE_SIZE, &q.to_le_bytes(), 0).expect("ioctl");
    assert_eq!(r.status, STATUS_SUCCESS);
    let r = h.device_io_control(f, rawlink::IOCTL_RAWLINK_OPEN, &0u32.to_le_bytes(), 0).expect("ioctl");
    assert_eq!(r.status, STATUS_SUCCESS);
    let r = h.write(f, &common::batch(&[frame(a.mac, 0, 60)])).expect("write");
    assert_eq!(r.status, STATUS_QUOTA_EXCEEDED);
    assert_eq!(h.sent_count(0), 0);
    common::finish(h, &[f]);
}

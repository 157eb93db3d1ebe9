//! ndis-host's load-time CR8 patches on the real rawlink.sys: every `mov reg, cr8` of the image becomes a
//! trap-free detour, the driver sees the same IRQL as through the fault handler (DriverEntry at
//! DISPATCH_LEVEL is refused either way), and receiving, reading, sending and unbinding take no CR8 trap.
//! The tests of this file run one at a time: the trap count is one per process.
#![cfg(target_os = "linux")]

mod common;

use ndis_host::host::{cr8_traps, Host, HostConfig};
use ndis_host::loader::PrivilegedKind;
use std::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn host(patch_cr8: bool) -> Host {
    let bytes = common::package_file("rawlink.sys");
    let mut h = Host::load(&bytes, HostConfig { patch_cr8, ..HostConfig::default() }).expect("loads");
    h.add_adapter(ndis_host::ndis::AdapterConfig::ethernet(1)).expect("adapter");
    h
}

fn frame(n: usize, len: usize) -> Vec<u8> {
    let mut f = vec![0xFF; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 9, 0x88, 0xB5]);
    f.extend((0..len - 14).map(|i| (i ^ n) as u8));
    f
}

/// Loads, binds, attaches, receives and reads 512 frames, sends 64, closes and unloads; returns the CR8 traps
/// it took and the frames read.
fn round_trip(patch_cr8: bool) -> (u64, usize) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let before = cr8_traps();
    let mut h = host(patch_cr8);
    assert_eq!(h.driver_entry().expect("DriverEntry"), 0);
    let f = common::attach(&h, 0);
    let frames: Vec<Vec<u8>> = (0..512).map(|n| frame(n, 64)).collect();
    assert_eq!(h.indicate_receive(0, frames, false).expect("indicated"), 0);
    let mut read = 0;
    loop {
        let r = h.read(f, 256 * 1024).expect("read");
        assert_eq!(r.status, 0);
        if r.information == 0 {
            break;
        }
        read += rawlink_abi::Frames::new(&r.output).count();
    }
    let mac = ndis_host::ndis::AdapterConfig::ethernet(1).mac;
    let out: Vec<Vec<u8>> = (0..64)
        .map(|n| {
            let mut fr = frame(n, 64);
            fr[6..12].copy_from_slice(&mac);
            fr
        })
        .collect();
    let w = h.write(f, &common::batch(&out)).expect("write");
    assert_eq!(w.status, 0, "write");
    common::finish(h, &[f]);
    (cr8_traps() - before, read)
}

#[test]
fn every_cr8_read_of_rawlink_sys_is_patched() {
    let h = host(true);
    let image = h.image();
    let sites: Vec<u32> = image
        .privileged
        .iter()
        .filter(|p| matches!(p.kind, PrivilegedKind::ReadCr8 | PrivilegedKind::WriteCr8))
        .map(|p| p.rva)
        .collect();
    assert!(!sites.is_empty(), "the driver reads its IRQL somewhere: {:?}", image.privileged);
    assert!(image.cr8_refused.is_empty(), "sites left to the trap: {:?}", image.cr8_refused);
    let mut patched = image.cr8_patched.clone();
    patched.sort_unstable();
    assert_eq!(patched, sites);
    let unpatched = host(false);
    assert!(unpatched.image().cr8_patched.is_empty());
}

/// The plan does not depend on where the image was mapped. A base-relocated pointer's high half, read as an
/// RVA, once named the instruction after a CR8 read (image at 0x7f28_8314_b000, read at RVA 0x7f24) and left
/// that site to the trap on one CI run in many. Here the image is mapped, for each site a user address can
/// reach that way, so that the high half of every pointer into it is the RVA 4 bytes past the site.
#[test]
fn the_cr8_plan_does_not_depend_on_the_load_address() {
    let sites: Vec<u32> = {
        let h = host(true);
        let image = h.image();
        image.privileged.iter().filter(|p| matches!(p.kind, PrivilegedKind::ReadCr8)).map(|p| p.rva).collect()
    };
    let mut tried = 0;
    // User addresses end at 0x7fff_ffff_ffff: a high half of at most 0x7ffe.
    for rva in sites.iter().map(|&s| s + 4).filter(|&r| r < 0x7fff) {
        let high = (rva as usize) << 32;
        // The first of a few addresses with that high half that is free (shared libraries live up there).
        let Some(h) = [0x1000_0000usize, 0x4000_0000, 0x9000_0000].iter().find_map(|&low| {
            Host::load(
                &common::package_file("rawlink.sys"),
                HostConfig { image_address: Some(high | low), ..HostConfig::default() },
            )
            .ok()
        }) else {
            panic!("no address with high half {rva:#x} was free");
        };
        let image = h.image();
        assert_eq!(image.base() >> 32, rva as usize);
        assert!(image.cr8_refused.is_empty(), "image at {:#x}: {:?}", image.base(), image.cr8_refused);
        tried += 1;
    }
    eprintln!("{tried} load addresses tried");
}

#[test]
fn driver_entry_at_dispatch_level_is_refused_patched_and_trapped() {
    for patch_cr8 in [true, false] {
        let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = cr8_traps();
        let mut h = host(patch_cr8);
        // 0xC0000184: STATUS_INVALID_DEVICE_STATE, the driver's answer to a non-PASSIVE DriverEntry.
        assert_eq!(h.driver_entry_at(2).expect("DriverEntry ran") as u32, 0xC000_0184, "patch_cr8 {patch_cr8}");
        let traps = cr8_traps() - before;
        if patch_cr8 {
            assert_eq!(traps, 0, "patched: the IRQL read does not trap");
        } else {
            assert!(traps >= 1, "trapped: the IRQL read is emulated");
        }
        assert!(h.violations().is_empty(), "{:#?}", h.violations());
    }
}

#[test]
fn receive_read_send_and_unload_take_no_cr8_trap_when_patched() {
    let (patched, read) = round_trip(true);
    assert_eq!(read, 512);
    assert_eq!(patched, 0, "CR8 traps with the patches");
    let (trapped, read) = round_trip(false);
    assert_eq!(read, 512);
    assert!(trapped > 0, "the same run without patches traps on CR8 ({trapped})");
    eprintln!("CR8 traps for bind, 512 frames received and read, 64 sent, unload: patched 0, trapped {trapped}");
}

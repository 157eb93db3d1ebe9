//! End to end through the real Linux network stack: rawlink.sys writes an ARP request on an adapter whose
//! far side is a TAP interface in a network namespace this test creates; Linux answers, and the reply comes
//! back through the driver's receive path to a ReadFile. Needs root (network namespaces, /dev/net/tun), as
//! CI has; without it the test fails saying so. Addresses are 192.0.2.0/24 (documentation range), inside
//! the test's own namespace only.
#![cfg(target_os = "linux")]

mod common;

use ndis_host::backend::tap::{enter_network_namespace, TapBackend};
use ndis_host::host::{Host, HostConfig};
use ndis_host::ndis::AdapterConfig;
use rawlink_abi::{rawlink, Frames};
use std::process::Command;
use std::time::{Duration, Instant};

fn ip(args: &[&str]) {
    let out =
        Command::new("ip").args(args).output().unwrap_or_else(|e| panic!("`ip` cannot run ({e}); install iproute2"));
    assert!(out.status.success(), "`ip {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
}

/// A network namespace of this test's own, deleted on drop.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

#[test]
fn an_arp_request_written_to_the_driver_is_answered_by_linux_and_read_back() {
    let ns = Netns(format!("rl-drv-{}", std::process::id()));
    ip(&["netns", "add", &ns.0]);
    let path = std::path::PathBuf::from("/var/run/netns").join(&ns.0);
    // The TAP lives in the namespace of the thread that opens it.
    let tap = std::thread::scope(|s| {
        s.spawn(|| {
            enter_network_namespace(&path).unwrap_or_else(|e| panic!("entering {}: {e}", ns.0));
            TapBackend::open("tap0").unwrap_or_else(|e| panic!("opening tap0: {e}"))
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    });
    ip(&["-n", &ns.0, "link", "set", "tap0", "up"]);
    ip(&["-n", &ns.0, "addr", "add", "192.0.2.1/24", "dev", "tap0"]);

    let a = AdapterConfig::ethernet(1);
    let bytes = common::package_file("rawlink.sys");
    let mut h = Host::load(&bytes, HostConfig::default()).expect("loaded");
    h.add_adapter(a.clone()).expect("adapter");
    assert_eq!(h.driver_entry().expect("DriverEntry ran"), 0);
    h.set_backend(0, Some(Box::new(tap)));
    let f = h.open("\\\\.\\RawLink").expect("opened");
    assert_eq!(h.device_io_control(f, rawlink::IOCTL_RAWLINK_OPEN, &0u32.to_le_bytes(), 0).expect("ioctl").status, 0);

    // ARP: who has 192.0.2.1? tell 192.0.2.2 (us).
    let mut arp = vec![0xFF; 6];
    arp.extend_from_slice(&a.mac);
    arp.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    arp.extend_from_slice(&a.mac);
    arp.extend_from_slice(&[192, 0, 2, 2]);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&[192, 0, 2, 1]);
    arp.resize(60, 0);
    let batch = common::batch(&[arp]);
    assert_eq!(h.write(f, &batch).expect("write").status, 0);

    let deadline = Instant::now() + Duration::from_secs(5);
    let reply = loop {
        h.pump().expect("pumped");
        let r = h.read(f, 64 * 1024).expect("read");
        let found = Frames::new(&r.output)
            .map(|(_, d)| d.to_vec())
            .find(|d| d.len() >= 42 && d[12..14] == [0x08, 0x06] && d[20..22] == [0, 2] && d[28..32] == [192, 0, 2, 1]);
        if let Some(f) = found {
            break f;
        }
        assert!(Instant::now() < deadline, "no ARP reply from Linux within 5 s");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(&reply[0..6], &a.mac, "the reply is addressed to the adapter");
    assert_eq!(&reply[32..38], &a.mac, "target hardware address");

    assert_eq!(h.close(f).expect("closed"), 0);
    h.unload().expect("unload");
    let v = h.violations();
    assert!(v.is_empty(), "verifier: {v:#?}");
    drop(h); // closes the TAP before the namespace goes
}

//! The real rawlink.sys in ndis-host: DriverEntry, DriverUnload, and DriverEntry under every injected failure.
#![cfg(target_os = "linux")]

mod common;

use common::status::*;

use ndis_host::faults::FaultRule;
use ndis_host::host::{Host, HostConfig};
use ndis_host::loader::PrivilegedKind;
use ndis_host::trace::Direction;

fn host(config: HostConfig) -> Host {
    let bytes = common::package_file("rawlink.sys");
    Host::load(&bytes, config).unwrap_or_else(|e| panic!("loading rawlink.sys: {e}"))
}

fn assert_clean(h: &Host) {
    let v = h.violations();
    assert!(v.is_empty(), "verifier: {v:#?}");
}

#[test]
fn driver_entry_registers_the_protocol_with_every_handler() {
    let mut h = host(HostConfig::default());
    assert_eq!(h.driver_entry().expect("DriverEntry ran"), 0);
    let protocols = h.protocols();
    assert_eq!(protocols.len(), 1, "{protocols:?}");
    let (c, live) = &protocols[0];
    assert_eq!(c.name, "RAWLINK");
    assert!(live);
    assert_eq!(c.header_type, 0x95, "NDIS_OBJECT_TYPE_PROTOCOL_DRIVER_CHARACTERISTICS");
    assert_eq!(c.header_revision, 2);
    assert_eq!(c.header_size, 128);
    assert_eq!((c.major_ndis_version, c.minor_ndis_version), (6, 89), "the OS offers 6.89, the driver implements it");
    assert_eq!((c.major_driver_version, c.minor_driver_version), (0, 1));
    assert_eq!(c.flags, 0, "no NDIS_PROTOCOL_DRIVER_UDP_RSC_NOT_SUPPORTED: URO stays on");
    let image = h.image();
    for (n, f) in c.handlers() {
        let f = f.unwrap_or_else(|| panic!("{n} not registered"));
        assert!(image.contains(f), "{n} handler {f:#x} is outside the image");
    }
    assert_eq!(h.devices(), ["\\Device\\RawLink"]);
    let links = h.symbolic_links();
    assert_eq!(links.get("\\DosDevices\\Global\\RawLink").map(String::as_str), Some("\\Device\\RawLink"));
    // SetOptions ran inside the registration, as NDIS does.
    let trace = h.trace();
    let reg = trace.iter().position(|e| e.name == "NdisRegisterProtocolDriver").expect("registered");
    let so = trace.iter().position(|e| e.name == "ProtocolSetOptions").expect("SetOptions called");
    assert!(so > reg && trace[reg].result.as_deref().is_some_and(|r| r.starts_with("STATUS_SUCCESS")));
    assert_clean(&h);
    h.unload().expect("unload");
    assert_clean(&h);
}

#[test]
fn unload_releases_everything_in_reverse_order() {
    let mut h = host(HostConfig::default());
    assert_eq!(h.driver_entry().expect("DriverEntry ran"), 0);
    assert!(!h.pool().is_empty(), "the driver keeps its globals in pool");
    h.unload().expect("unload");
    assert!(h.pool().is_empty(), "pool left: {:?}", h.pool());
    assert!(h.devices().is_empty());
    assert!(h.symbolic_links().is_empty());
    assert!(h.protocols().iter().all(|(_, live)| !live));
    let order: Vec<String> = h
        .trace()
        .into_iter()
        .skip_while(|e| e.name != "DriverUnload")
        .filter(|e| e.direction == Direction::DriverToHost)
        .map(|e| e.name)
        .filter(|n| ["NdisDeregisterProtocolDriver", "IoDeleteSymbolicLink", "IoDeleteDevice"].contains(&n.as_str()))
        .collect();
    assert_eq!(order, ["NdisDeregisterProtocolDriver", "IoDeleteSymbolicLink", "IoDeleteDevice"]);
    assert_clean(&h);
}

#[test]
fn driver_entry_refuses_ndis_older_than_6_30() {
    let mut h = host(HostConfig { ndis_version: 0x0006_0014, ..HostConfig::default() });
    assert_eq!(h.driver_entry().expect("DriverEntry ran"), NDIS_STATUS_BAD_VERSION);
    assert!(h.protocols().is_empty());
    assert!(h.pool().is_empty());
    assert_clean(&h);
}

#[test]
fn registers_the_os_version_when_it_is_older_than_the_driver_maximum() {
    let mut h = host(HostConfig { ndis_version: 0x0006_001E, ..HostConfig::default() });
    assert_eq!(h.driver_entry().expect("DriverEntry ran"), 0);
    let (c, _) = h.protocols().remove(0);
    assert_eq!((c.major_ndis_version, c.minor_ndis_version), (6, 30));
    h.unload().expect("unload");
    assert_clean(&h);
}

#[test]
fn works_without_ex_allocate_pool2() {
    let mut h = host(HostConfig { ex_allocate_pool2: false, ..HostConfig::default() });
    assert_eq!(h.driver_entry().expect("DriverEntry ran"), 0);
    let trace = h.trace();
    assert!(trace.iter().any(|e| e.name == "ExAllocatePoolWithTag"));
    assert!(!trace.iter().any(|e| e.name == "ExAllocatePool2"));
    h.unload().expect("unload");
    assert_clean(&h);
}

/// Every injectable call DriverEntry makes, from a run without faults.
fn injectable_calls() -> Vec<(String, u64)> {
    let mut h = host(HostConfig::default());
    assert_eq!(h.driver_entry().expect("DriverEntry ran"), 0);
    let (history, injected) = h.fault_history();
    assert!(injected.is_empty());
    h.unload().expect("unload");
    // Only DriverEntry's calls: the unload's are not failure points of DriverEntry.
    let entry_calls = h
        .trace()
        .iter()
        .take_while(|e| e.name != "DriverUnload")
        .filter(|e| e.direction == Direction::DriverToHost)
        .count();
    assert!(entry_calls > 0);
    history
}

fn check_failed_entry(h: &mut Host, what: &str) {
    let status = h.driver_entry().expect("DriverEntry ran");
    assert_eq!(status, STATUS_INSUFFICIENT_RESOURCES, "{what}: DriverEntry must return the failure");
    let trace = h.trace();
    let registered = trace.iter().any(|e| {
        e.name == "NdisRegisterProtocolDriver" && e.result.as_deref().is_some_and(|r| r.starts_with("STATUS_SUCCESS"))
    });
    let deregistrations = trace.iter().filter(|e| e.name == "NdisDeregisterProtocolDriver").count();
    assert_eq!(deregistrations, usize::from(registered), "{what}: deregister exactly when registration succeeded");
    assert!(h.pool().is_empty(), "{what}: pool leaked: {:?}", h.pool());
    assert!(h.devices().is_empty(), "{what}: device left");
    assert!(h.symbolic_links().is_empty(), "{what}: link left");
    assert!(h.protocols().iter().all(|(_, live)| !live), "{what}: still registered");
    assert_clean(h);
    let calls_before = h.trace().len();
    h.unload().expect("no unload after a failed DriverEntry");
    let later: Vec<_> = h.trace().into_iter().skip(calls_before).collect();
    assert!(later.is_empty(), "{what}: calls after a failed DriverEntry: {later:?}");
}

#[test]
fn driver_entry_fault_sweep_fails_cleanly_at_every_point() {
    let calls = injectable_calls();
    assert!(calls.iter().any(|(a, _)| a == "IoCreateDevice"));
    assert!(calls.iter().any(|(a, _)| a == "NdisRegisterProtocolDriver"));
    for (api, n) in &calls {
        let what = format!("failing {api} #{n}");
        let mut h =
            host(HostConfig { faults: vec![FaultRule::FailNth { api: api.clone(), n: *n }], ..HostConfig::default() });
        if api == "MmGetSystemRoutineAddress" {
            // Not finding ExAllocatePool2 is an older Windows, not a failure: the driver uses
            // ExAllocatePoolWithTag.
            assert_eq!(h.driver_entry().expect("DriverEntry ran"), 0, "{what}");
            assert!(h.trace().iter().any(|e| e.name == "ExAllocatePoolWithTag"), "{what}");
            h.unload().expect("unload");
            assert_clean(&h);
        } else {
            check_failed_entry(&mut h, &what);
        }
        let (_, injected) = h.fault_history();
        assert_eq!(injected, [(api.clone(), *n)], "{what}");
    }
}

#[test]
fn driver_entry_fails_cleanly_when_every_allocation_from_n_on_fails() {
    let allocations = injectable_calls().iter().filter(|(a, _)| a.starts_with("ExAllocatePool")).count() as u64;
    assert!(allocations >= 2, "DriverEntry allocates its globals and its unload record");
    for n in 1..=allocations {
        let mut h = host(HostConfig { faults: vec![FaultRule::FailAllocationsFrom { n }], ..HostConfig::default() });
        check_failed_entry(&mut h, &format!("allocations from #{n}"));
    }
}

#[test]
fn the_irql_read_is_emulated() {
    let h = host(HostConfig::default());
    assert!(
        h.image().privileged.iter().any(|p| p.kind == PrivilegedKind::ReadCr8),
        "the pre-scan finds KeGetCurrentIrql's CR8 read: {:?}",
        h.image().privileged
    );
    assert!(h.image().privileged.iter().all(|p| p.kind != PrivilegedKind::Other), "{:?}", h.image().privileged);
}

#[test]
fn driver_entry_at_dispatch_level_is_refused_by_the_driver() {
    let mut h = host(HostConfig::default());
    assert_eq!(h.driver_entry_at(2).expect("DriverEntry ran"), STATUS_INVALID_DEVICE_STATE);
    assert!(h.trace().iter().all(|e| e.direction == Direction::HostToDriver), "no kernel call at DISPATCH_LEVEL");
    assert_clean(&h);
}

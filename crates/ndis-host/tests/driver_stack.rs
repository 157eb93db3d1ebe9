//! The real rawlink.sys fits the x64 kernel stack: DriverEntry and DriverUnload, measured by stack painting
//! in ndis-host, stay well within the budget (`ndis_host::ke::STACK_BUDGET`).
#![cfg(target_os = "linux")]

use ndis_host::host::{Host, HostConfig};
use ndis_host::ke::{KERNEL_STACK_SIZE, STACK_BUDGET};
use std::path::PathBuf;

fn driver() -> Vec<u8> {
    let dir = std::env::var_os("RAWLINK_PACKAGE_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("..").join("target").join("rawlink-package")
    });
    let path = dir.join("rawlink.sys");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; run `cargo xtask build` first", path.display()))
}

#[test]
fn driver_entry_and_unload_stay_well_within_the_kernel_stack() {
    let mut h = Host::load(&driver(), HostConfig::default()).expect("rawlink.sys loads");
    assert_eq!(h.driver_entry().expect("DriverEntry ran"), 0);
    h.unload().expect("unload");
    let report = h.stack_report();
    let summary: Vec<String> =
        report.iter().map(|(n, u)| format!("{n}: {} bytes ({} calls)", u.max_depth, u.calls)).collect();
    let summary = summary.join(", ");
    for name in ["DriverEntry", "DriverUnload"] {
        let depth = report.get(name).unwrap_or_else(|| panic!("{name} was not measured: {summary}")).max_depth;
        assert!(
            depth <= STACK_BUDGET * 3 / 4,
            "{name} used {depth} bytes of stack (driver plus host export frames); budget {STACK_BUDGET} of the \
             {KERNEL_STACK_SIZE}-byte kernel stack. All: {summary}"
        );
    }
    eprintln!("stack use of the real driver: {summary}");
    let v = h.violations();
    assert!(v.is_empty(), "verifier: {v:#?}");
}

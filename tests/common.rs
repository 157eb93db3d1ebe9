//! Shared helpers of the integration tests: where the built package is.
#![allow(dead_code)]

use std::path::PathBuf;

/// The package folder `cargo xtask build` writes (`RAWLINK_PACKAGE_DIR` overrides).
pub fn package_dir() -> PathBuf {
    std::env::var_os("RAWLINK_PACKAGE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target").join("rawlink-package"))
}

/// Reads a file of the package, failing the test with the command that makes it.
pub fn package_file(name: &str) -> Vec<u8> {
    let path = package_dir().join(name);
    match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) => panic!("{}: {e}; run `cargo xtask build` (or `cargo xtask test`) first", path.display()),
    }
}

/// The real driver loaded in ndis-host with `adapters`, DriverEntry succeeded (adapters bound).
#[cfg(target_os = "linux")]
pub fn running(adapters: Vec<ndis_host::ndis::AdapterConfig>) -> ndis_host::host::Host {
    let bytes = package_file("rawlink.sys");
    let mut h = ndis_host::host::Host::load(&bytes, ndis_host::host::HostConfig::default())
        .unwrap_or_else(|e| panic!("loading rawlink.sys: {e}"));
    for a in adapters {
        h.add_adapter(a).expect("adapter");
    }
    assert_eq!(h.driver_entry().expect("DriverEntry ran"), 0);
    h
}

/// Ethernet adapters 1..=n.
#[cfg(target_os = "linux")]
pub fn ethernet(n: u8) -> Vec<ndis_host::ndis::AdapterConfig> {
    (1..=n).map(ndis_host::ndis::AdapterConfig::ethernet).collect()
}

/// Opens `\\.\RawLink` and attaches the handle to binding `index`.
#[cfg(target_os = "linux")]
pub fn attach(h: &ndis_host::host::Host, index: u32) -> ndis_host::io::Handle {
    let f = h.open("\\\\.\\RawLink").expect("opened");
    let r = h.device_io_control(f, rawlink_abi::rawlink::IOCTL_RAWLINK_OPEN, &index.to_le_bytes(), 0).expect("ioctl");
    assert_eq!(r.status, 0, "attach to binding {index}");
    f
}

/// Closes `handles`, unloads, and requires a clean verifier and no pool left.
#[cfg(target_os = "linux")]
pub fn finish(mut h: ndis_host::host::Host, handles: &[ndis_host::io::Handle]) {
    for &f in handles {
        assert_eq!(h.close(f).expect("closed"), 0);
    }
    h.unload().expect("unload");
    let v = h.violations();
    assert!(v.is_empty(), "verifier: {v:#?}");
    assert!(h.pool().is_empty(), "pool left: {:?}", h.pool());
}

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

/// A broadcast frame from `src` of `len` bytes (EtherType 0x88B5, the local experimental one), its payload
/// bytes numbered and mixed with `n`.
pub fn frame_from(src: [u8; 6], n: u8, len: usize) -> Vec<u8> {
    let mut f = vec![0xFF; 6];
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x88, 0xB5]);
    f.extend((0..len.saturating_sub(14)).map(|i| (i as u8) ^ n));
    f
}

/// A write buffer carrying `frames`: one record each (see `rawlink_abi::write_record`).
pub fn batch(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut b = Vec::new();
    for f in frames {
        let at = b.len();
        b.resize(at + rawlink_abi::FrameHeader::record_len(f.len()), 0);
        rawlink_abi::write_record(&mut b[at..], f).expect("room for the record");
    }
    b
}

/// The NTSTATUS / NDIS_STATUS values the tests expect, written as the unsigned hex the docs use.
#[allow(dead_code)]
pub mod status {
    // CAST: the docs' unsigned hex, as the i32 the I/O manager reports.
    pub const NDIS_STATUS_BAD_VERSION: i32 = 0xC001_0004u32 as i32;
    pub const NDIS_STATUS_UNSUPPORTED_MEDIA: i32 = 0xC001_0019u32 as i32;
    pub const STATUS_ACCESS_DENIED: i32 = 0xC000_0022u32 as i32;
    pub const STATUS_BUFFER_TOO_SMALL: i32 = 0xC000_0023u32 as i32;
    pub const STATUS_CANCELLED: i32 = 0xC000_0120u32 as i32;
    pub const STATUS_DEVICE_NOT_READY: i32 = 0xC000_00A3u32 as i32;
    pub const STATUS_DEVICE_POWERED_OFF: i32 = 0xC000_048Fu32 as i32;
    pub const STATUS_INSUFFICIENT_RESOURCES: i32 = 0xC000_009Au32 as i32;
    pub const STATUS_INVALID_BUFFER_SIZE: i32 = 0xC000_0206u32 as i32;
    pub const STATUS_INVALID_DEVICE_REQUEST: i32 = 0xC000_0010u32 as i32;
    pub const STATUS_INVALID_DEVICE_STATE: i32 = 0xC000_0184u32 as i32;
    pub const STATUS_INVALID_PARAMETER: i32 = 0xC000_000Du32 as i32;
    pub const STATUS_IO_TIMEOUT: i32 = 0xC000_00B5u32 as i32;
    pub const STATUS_NOT_FOUND: i32 = 0xC000_0225u32 as i32;
    pub const STATUS_NOT_SUPPORTED: i32 = 0xC000_00BBu32 as i32;
    pub const STATUS_NO_MORE_ENTRIES: i32 = 0x8000_001Au32 as i32;
    pub const STATUS_SUCCESS: i32 = 0;
}

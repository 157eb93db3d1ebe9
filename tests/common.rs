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

//! `ndis-host` as a user runs it: clear errors for bad inputs, and a clean run of the real driver.

use std::path::PathBuf;
use std::process::Command;

fn ndis_host(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ndis-host")).args(args).output().expect("ndis-host runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// The driver `cargo xtask build` packaged (`RAWLINK_PACKAGE_DIR` overrides the folder).
fn rawlink_sys() -> PathBuf {
    let dir = std::env::var_os("RAWLINK_PACKAGE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/rawlink-package"));
    let p = dir.join("rawlink.sys");
    assert!(p.is_file(), "{} is missing; run `cargo xtask build` first", p.display());
    p
}

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let p = std::env::temp_dir().join(format!("ndis-host-cli-{}-{name}", std::process::id()));
    std::fs::write(&p, bytes).expect("temp file written");
    p
}

#[test]
fn a_missing_file_is_named() {
    let (ok, text) = ndis_host(&["run", "--once", "/nonexistent/rawlink.sys"]);
    assert!(!ok);
    assert!(text.contains("/nonexistent/rawlink.sys") && text.contains("No such file"), "{text}");
}

#[test]
fn a_file_that_is_not_a_pe_is_refused() {
    let p = temp_file("notpe.sys", b"this is not a driver");
    let (ok, text) = ndis_host(&["run", "--once", p.to_str().expect("utf-8 path")]);
    let _ = std::fs::remove_file(&p);
    assert!(!ok);
    assert!(text.contains("not a PE image"), "{text}");
}

#[test]
fn a_pe_for_another_machine_is_refused() {
    let mut b = std::fs::read(rawlink_sys()).expect("read");
    let lfanew = u32::from_le_bytes(b[0x3C..0x40].try_into().expect("4 bytes")) as usize;
    b[lfanew + 4..lfanew + 6].copy_from_slice(&0xAA64u16.to_le_bytes()); // ARM64
    let p = temp_file("arm64.sys", &b);
    let (ok, text) = ndis_host(&["run", "--once", p.to_str().expect("utf-8 path")]);
    let _ = std::fs::remove_file(&p);
    assert!(!ok);
    assert!(text.contains("machine 0xaa64 is not AMD64"), "{text}");
}

#[test]
fn missing_imports_are_listed_by_name() {
    let mut b = std::fs::read(rawlink_sys()).expect("read");
    let needle = b"NdisGetVersion\0";
    let pos = b.windows(needle.len()).position(|w| w == needle).expect("imported");
    b[pos..pos + 14].copy_from_slice(b"InsertTailList");
    let p = temp_file("imports.sys", &b);
    let (ok, text) = ndis_host(&["run", "--once", p.to_str().expect("utf-8 path")]);
    let _ = std::fs::remove_file(&p);
    assert!(!ok);
    assert!(text.contains("ndis.sys!InsertTailList"), "{text}");
}

#[test]
fn the_real_driver_runs_binds_and_unloads_clean() {
    let sys = rawlink_sys();
    let (ok, text) = ndis_host(&["run", "--once", "--adapters", "2", sys.to_str().expect("utf-8 path")]);
    assert!(ok, "{text}");
    assert!(text.contains("DriverEntry returned 0x00000000"), "{text}");
    assert!(text.contains("binding to adapter 1 Running"), "{text}");
    assert!(text.contains("verifier: no violations, no leaks"), "{text}");
}

//! ndis-host's loader on the real rawlink.sys and on broken copies of it.
#![cfg(target_os = "linux")]

mod common;

use ndis_host::host::{Host, HostConfig, HostError};
use ndis_host::loader::LoadError;

fn bytes() -> Vec<u8> {
    common::package_file("rawlink.sys")
}

fn load_err(b: &[u8]) -> HostError {
    match Host::load(b, HostConfig::default()) {
        Ok(_) => panic!("the broken image loaded"),
        Err(e) => e,
    }
}

/// Replaces the first NUL-terminated occurrence of `from` (an import name) with `to` (not longer).
fn rename_import(b: &mut [u8], from: &str, to: &str) {
    assert!(to.len() <= from.len());
    let needle = [from.as_bytes(), b"\0"].concat();
    let pos =
        b.windows(needle.len()).position(|w| w == needle.as_slice()).unwrap_or_else(|| panic!("{from} not imported"));
    b[pos..pos + from.len()].fill(0);
    b[pos..pos + to.len()].copy_from_slice(to.as_bytes());
}

#[test]
fn the_real_driver_loads_relocated_and_bound() {
    let h = Host::load(&bytes(), HostConfig::default()).expect("loads");
    let img = h.image();
    assert_ne!(img.base(), 0x1_4000_0000, "relocated away from the link-time base");
    assert!(img.contains(img.entry));
    assert_eq!(img.export("DriverEntry"), Some(img.entry));
    assert!(img
        .bindings
        .iter()
        .any(|(i, _)| i.name == "NdisRegisterProtocolDriver" && i.module.eq_ignore_ascii_case("ndis.sys")));
    assert!(img.bindings.iter().all(|(_, addr)| *addr != 0));
}

#[test]
fn an_import_windows_does_not_export_is_named() {
    let mut b = bytes();
    // A header inline (InsertTailList), which no kernel module exports.
    rename_import(&mut b, "NdisGetVersion", "InsertTailList");
    let e = load_err(&b);
    assert!(matches!(e, HostError::Load(LoadError::NotExported(_))), "{e}");
    assert!(e.to_string().contains("ndis.sys!InsertTailList"), "{e}");
}

#[test]
fn an_import_the_host_does_not_provide_is_named() {
    let mut b = bytes();
    // A real ndis.sys export (an `import` row of WDK 10.0.16299) that the host does not emulate.
    let provided = ndis_host::provided_exports();
    let table = ndis_host::wdk::FunctionTable::wdk_16299();
    let tsv = include_str!("../reference/wdk-10.0.16299/functions.tsv");
    let name = tsv
        .lines()
        .filter_map(|l| l.split('\t').next())
        .find(|n| {
            n.starts_with("Ndis")
                && n.len() <= "NdisGetVersion".len()
                && table.header(n) == Some("km/ndis.h")
                && table.linkage(n) == Some(ndis_host::wdk::Linkage::Import)
                && !provided.iter().any(|(_, p)| p == n)
        })
        .expect("an NDIS export the host lacks");
    rename_import(&mut b, "NdisGetVersion", name);
    let e = load_err(&b);
    assert!(matches!(e, HostError::Load(LoadError::Unresolved(_))), "{e}");
    assert_eq!(e.to_string(), format!("imports the host does not provide: ndis.sys!{name}"));
}

#[test]
fn non_pe_and_wrong_machine_are_refused_with_a_reason() {
    let e = load_err(b"MZ but nothing else");
    assert!(e.to_string().contains("not a PE"), "{e}");
    let mut b = bytes();
    let lfanew = u32::from_le_bytes(b[0x3C..0x40].try_into().unwrap()) as usize;
    b[lfanew + 4..lfanew + 6].copy_from_slice(&0x014Cu16.to_le_bytes()); // i386
    let e = load_err(&b);
    assert!(e.to_string().contains("not AMD64"), "{e}");
}

#[test]
fn a_missing_file_is_reported_with_its_path() {
    let e = Host::load_file(std::path::Path::new("/nonexistent/rawlink.sys"), HostConfig::default()).unwrap_err();
    assert!(e.to_string().starts_with("reading /nonexistent/rawlink.sys:"), "{e}");
}

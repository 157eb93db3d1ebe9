//! Audits the built rawlink.sys the way the Windows loader, ApiValidator and link.exe conventions would.
#![cfg(target_os = "linux")]

mod common;

use ndis_host::image::{audit, pe_checksum, Finding, ImageInfo};
use ndis_host::wdk::FunctionTable;

fn built() -> (Vec<u8>, ImageInfo) {
    let bytes = common::package_file("rawlink.sys");
    let info = ImageInfo::parse(&bytes).unwrap_or_else(|e| panic!("rawlink.sys: {e}"));
    (bytes, info)
}

fn rules(findings: &[Finding]) -> Vec<&'static str> {
    findings.iter().map(|f| f.rule).collect()
}

#[test]
fn built_driver_passes_the_whole_audit() {
    let (_, info) = built();
    let findings = audit(&info, &FunctionTable::wdk_16299());
    let listed: Vec<String> = findings.iter().map(ToString::to_string).collect();
    assert!(findings.is_empty(), "rawlink.sys fails the audit:\n  {}", listed.join("\n  "));
}

#[test]
fn pe32_plus_amd64_native_driver() {
    let (_, info) = built();
    assert_eq!(info.machine, 0x8664, "machine");
    assert_eq!(info.subsystem, 1, "subsystem must be NATIVE");
    for (bit, name) in [(0x40, "DYNAMIC_BASE"), (0x100, "NX_COMPAT"), (0x80, "FORCE_INTEGRITY")] {
        assert_ne!(info.dll_characteristics & bit, 0, "{name} missing");
    }
    assert_eq!(info.file_characteristics & 0x1, 0, "relocations stripped");
    assert!(!info.has_tls, "TLS directory present");
}

#[test]
fn entry_point_is_the_only_export_driver_entry() {
    let (_, info) = built();
    let names: Vec<&str> = info.exports.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["DriverEntry"], "export table");
    assert_eq!(info.exports[0].1, info.entry_point, "entry point is not DriverEntry");
}

#[test]
fn checksum_is_set_and_correct() {
    let (_, info) = built();
    assert_ne!(info.check_sum, 0, "checksum not set (/RELEASE)");
    assert_eq!(info.check_sum, info.computed_check_sum);
}

#[test]
fn sections_are_never_writable_and_executable_and_never_empty() {
    let (_, info) = built();
    assert!(info.sections.iter().any(|s| s.name == ".text" && s.is_executable()));
    for s in &info.sections {
        assert!(!(s.is_writable() && s.is_executable()), "{} is W+X", s.name);
        assert_ne!(s.characteristics & 0xE000_0000, 0, "{} has no access flags", s.name);
        assert!(s.is_discardable() || s.is_not_paged(), "{} may be paged", s.name);
    }
}

#[test]
fn imports_come_only_from_kernel_modules_and_are_real_exports() {
    let (_, info) = built();
    let table = FunctionTable::wdk_16299();
    assert!(info.imports.iter().any(|i| i.name == "NdisRegisterProtocolDriver"));
    assert!(info.imports.iter().any(|i| i.name == "NdisDeregisterProtocolDriver"));
    for imp in &info.imports {
        assert!(["ntoskrnl.exe", "hal.dll", "ndis.sys"].contains(&imp.module.to_ascii_lowercase().as_str()), "{imp}");
        assert_eq!(table.linkage(&imp.name), Some(ndis_host::wdk::Linkage::Import), "{imp}");
    }
}

// ---- the audit itself must catch broken images: mutate the real one ----

/// File offset of section header `index`.
fn section_header_offset(bytes: &[u8], index: usize) -> usize {
    let lfanew = u32::from_le_bytes(bytes[0x3C..0x40].try_into().unwrap()) as usize;
    let size_of_optional = u16::from_le_bytes(bytes[lfanew + 20..lfanew + 22].try_into().unwrap()) as usize;
    lfanew + 4 + 20 + size_of_optional + index * 40
}

fn optional_header(bytes: &[u8]) -> usize {
    u32::from_le_bytes(bytes[0x3C..0x40].try_into().unwrap()) as usize + 24
}

fn fix_checksum(bytes: &mut [u8]) {
    let off = optional_header(bytes) + 64;
    let sum = pe_checksum(bytes, off);
    bytes[off..off + 4].copy_from_slice(&sum.to_le_bytes());
}

fn audit_bytes(bytes: &[u8]) -> Vec<Finding> {
    audit(&ImageInfo::parse(bytes).expect("still a PE"), &FunctionTable::wdk_16299())
}

#[test]
fn audit_catches_a_writable_executable_section() {
    let (mut bytes, info) = built();
    let text = info.sections.iter().position(|s| s.name == ".text").expect(".text");
    let off = section_header_offset(&bytes, text) + 36;
    let flags = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) | 0x8000_0000;
    bytes[off..off + 4].copy_from_slice(&flags.to_le_bytes());
    fix_checksum(&mut bytes);
    assert_eq!(rules(&audit_bytes(&bytes)), ["section-wx"]);
}

#[test]
fn audit_catches_empty_section_characteristics() {
    let (mut bytes, info) = built();
    let last = info.sections.len() - 1;
    let off = section_header_offset(&bytes, last) + 36;
    bytes[off..off + 4].copy_from_slice(&0u32.to_le_bytes());
    fix_checksum(&mut bytes);
    assert!(rules(&audit_bytes(&bytes)).contains(&"section-flags"));
}

#[test]
fn audit_catches_a_stale_checksum_and_a_wrong_subsystem() {
    let (mut bytes, _) = built();
    let sub = optional_header(&bytes) + 68;
    bytes[sub..sub + 2].copy_from_slice(&2u16.to_le_bytes()); // WINDOWS_GUI
    let found = audit_bytes(&bytes);
    assert_eq!(rules(&found), ["subsystem", "checksum"], "{found:?}");
}

#[test]
fn audit_catches_missing_dll_characteristics() {
    let (mut bytes, _) = built();
    let dc = optional_header(&bytes) + 70;
    let v = u16::from_le_bytes(bytes[dc..dc + 2].try_into().unwrap()) & !0x80; // drop FORCE_INTEGRITY
    bytes[dc..dc + 2].copy_from_slice(&v.to_le_bytes());
    fix_checksum(&mut bytes);
    let found = audit_bytes(&bytes);
    assert_eq!(rules(&found), ["dll-characteristics"]);
    assert!(found[0].message.contains("FORCE_INTEGRITY"));
}

#[test]
fn audit_catches_an_import_windows_does_not_export() {
    let (mut bytes, _) = built();
    // Rename an imported function's hint/name entry in place: same length, not an export.
    let needle = b"NdisGetVersion\0";
    let pos = bytes.windows(needle.len()).position(|w| w == needle).expect("NdisGetVersion imported");
    bytes[pos..pos + needle.len() - 1].copy_from_slice(b"NdisGetVersioX");
    fix_checksum(&mut bytes);
    let found = audit_bytes(&bytes);
    assert_eq!(rules(&found), ["import-not-exported"], "{found:?}");
    assert!(found[0].message.contains("ndis.sys!NdisGetVersioX"), "{}", found[0].message);
}

#[test]
fn loader_errors_name_the_problem() {
    assert!(ImageInfo::parse(b"not a PE at all").unwrap_err().to_string().contains("not a PE"));
    let (mut bytes, _) = built();
    let machine = optional_header(&bytes) - 20;
    bytes[machine..machine + 2].copy_from_slice(&0xAA64u16.to_le_bytes());
    assert_eq!(ImageInfo::parse(&bytes).unwrap_err().to_string(), "machine 0xaa64 is not AMD64 (0x8664)");
}

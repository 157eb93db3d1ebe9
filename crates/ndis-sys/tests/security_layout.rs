//! Layouts of the security and registry types the driver uses, which the reference tables
//! (`reference/wdk-10.0.16299/layout-*.json`) do not list. The expected offsets and sizes were checked with
//! `_Static_assert`s compiled by clang (x86_64-pc-windows-msvc, `_AMD64_ _WIN64 _KERNEL_MODE`) against the
//! WDK 10.0.16299 `km/ntifs.h`; the headers are not part of this repository.

use ndis_sys::*;
use std::mem::{offset_of, size_of};

#[test]
fn object_attributes() {
    assert_eq!(size_of::<OBJECT_ATTRIBUTES>(), 48);
    assert_eq!(offset_of!(OBJECT_ATTRIBUTES, RootDirectory), 8);
    assert_eq!(offset_of!(OBJECT_ATTRIBUTES, ObjectName), 16);
    assert_eq!(offset_of!(OBJECT_ATTRIBUTES, Attributes), 24);
    assert_eq!(offset_of!(OBJECT_ATTRIBUTES, SecurityDescriptor), 32);
    assert_eq!(offset_of!(OBJECT_ATTRIBUTES, SecurityQualityOfService), 40);
}

#[test]
fn key_value_partial_information() {
    assert_eq!(size_of::<KEY_VALUE_PARTIAL_INFORMATION>(), 16);
    assert_eq!(offset_of!(KEY_VALUE_PARTIAL_INFORMATION, Type), 4);
    assert_eq!(offset_of!(KEY_VALUE_PARTIAL_INFORMATION, DataLength), 8);
    assert_eq!(offset_of!(KEY_VALUE_PARTIAL_INFORMATION, Data), 12);
}

#[test]
fn security_subject_context_and_luid() {
    assert_eq!(size_of::<SECURITY_SUBJECT_CONTEXT>(), 32);
    assert_eq!(offset_of!(SECURITY_SUBJECT_CONTEXT, ImpersonationLevel), 8);
    assert_eq!(offset_of!(SECURITY_SUBJECT_CONTEXT, PrimaryToken), 16);
    assert_eq!(offset_of!(SECURITY_SUBJECT_CONTEXT, ProcessAuditId), 24);
    assert_eq!(size_of::<LUID>(), 8);
    assert_eq!(offset_of!(LUID, HighPart), 4);
}

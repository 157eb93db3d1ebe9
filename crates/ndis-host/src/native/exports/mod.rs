//! The kernel and NDIS exports the driver imports: `extern "win64"` shims that copy arguments out of driver
//! memory, apply the verifier's rules and fault plan, and keep the machine's books.
//!
//! Each shim finds its machine through the processor thread it runs on ([`current`]). None holds the state
//! lock while calling back into the driver. They carry the WDK's names, as the import table spells them.
#![allow(non_snake_case)]

use super::call;
use super::cpu;
use super::memory::{read_obj, read_utf16, write_obj, HostBlock};
use crate::loader::{LoadedImage, Resolver};
use crate::machine::{current, Bugcheck, DeviceRec, Inner, PoolBlock, ProtocolCharacteristics, ProtocolRec};
use crate::trace::{Arg, Direction};
use crate::verifier::Rule;
use ndis_sys::*;
use std::ffi::c_void;
use std::mem::size_of;

pub(super) const PASSIVE: u8 = 0;
pub(super) const DISPATCH: u8 = 2;

/// STATUS values the shims return.
pub(super) const ST_SUCCESS: i32 = 0;
// CAST: NTSTATUS failure codes are written as unsigned hex.
pub(super) const ST_UNSUCCESSFUL: i32 = 0xC000_0001u32 as i32;
pub(super) const ST_INVALID_PARAMETER: i32 = 0xC000_000Du32 as i32;
pub(super) const ST_OBJECT_NAME_COLLISION: i32 = 0xC000_0035u32 as i32;
pub(super) const ST_OBJECT_NAME_NOT_FOUND: i32 = 0xC000_0034u32 as i32;
pub(super) const ST_INSUFFICIENT_RESOURCES: i32 = 0xC000_009Au32 as i32;
pub(super) const NDIS_ST_BAD_VERSION: i32 = 0xC001_0004u32 as i32;
pub(super) const NDIS_ST_BAD_CHARACTERISTICS: i32 = 0xC001_0005u32 as i32;

/// Resolves the driver's imports against the shims below.
#[derive(Debug)]
pub struct Exports;

macro_rules! export_table {
    ($($module:literal : $name:ident),* $(,)?) => {
        /// (module, name, address) of every export this file provides.
        pub(super) fn table() -> Vec<(&'static str, &'static str, usize)> {
            vec![$(($module, stringify!($name), $name as *const () as usize)),*]
        }
    };
}

#[cfg(test)]
mod deferred_tests;
mod io;
mod ke;
mod ndis;
mod ndis_extra;
mod rtl;
mod security;
mod sync;
mod timers;

pub(crate) use super::dispatch::{call_into_driver, critical_depth};
pub(crate) use security::open_handles;
pub(crate) use timers::{check_deferred_released, start_system_threads};

/// (module, name, address) of every export the host provides.
pub fn table() -> Vec<(&'static str, &'static str, usize)> {
    [
        io::table(),
        ke::table(),
        ndis::table(),
        ndis_extra::table(),
        rtl::table(),
        security::table(),
        sync::table(),
        timers::table(),
    ]
    .concat()
}

impl Resolver for Exports {
    fn resolve(&self, module: &str, name: &str) -> Option<usize> {
        table().into_iter().find(|(m, n, _)| m.eq_ignore_ascii_case(module) && *n == name).map(|(_, _, a)| a)
    }
}

/// A traced value shown in hex (formatted when the trace is read).
pub(super) fn hex(v: impl Into<u64>) -> Arg<'static> {
    Arg::Hex(v.into())
}

/// A traced address.
pub(super) fn ptr(p: *const c_void) -> Arg<'static> {
    // CAST: addresses are 64 bits.
    Arg::Hex(p as usize as u64)
}

/// Reads a UNICODE_STRING the driver passed; `None` for a null pointer.
///
/// # Safety
///
/// `p` is null or points to a readable UNICODE_STRING whose buffer holds `Length` bytes.
pub(super) unsafe fn unicode(p: *const UNICODE_STRING) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: guaranteed by the caller.
    let u: UNICODE_STRING = unsafe { read_obj(p as usize) };
    if u.Buffer.is_null() {
        return Some(String::new());
    }
    // SAFETY: guaranteed by the caller.
    Some(unsafe { read_utf16(u.Buffer as usize, usize::from(u.Length)) })
}

// ---------------------------------------------------------------- calls into the driver

/// Calls a driver routine from inside an export (same processor, nested), at the current IRQL.
pub(super) fn call_back(inner: &Inner, name: &str, f: usize, args: &[(&'static str, u64)]) -> u64 {
    call_into_driver(inner, cpu::irql(), name, f, args)
}

// ---------------------------------------------------------------- driver object

/// Prepares the DRIVER_OBJECT (with its DRIVER_EXTENSION and names) and the registry path.
pub(crate) fn init_driver_object(block: &HostBlock, registry: &HostBlock, image: &LoadedImage, service: &str) {
    // Names longer than this would not fit the blocks' string areas.
    let service: String = service.chars().filter(char::is_ascii_alphanumeric).take(64).collect();
    let base = block.addr();
    let ext = base + 0x200;
    let strings = base + 0x400;
    let mut off = strings;
    let mut put = |s: &str| -> UNICODE_STRING {
        let units: Vec<u16> = s.encode_utf16().collect();
        for (i, u) in units.iter().enumerate() {
            // SAFETY: the block is 4 KiB; names are short and laid out from 0x400 on.
            unsafe { write_obj(off + i * 2, *u) };
        }
        // CAST: short constant names.
        let len = (units.len() * 2) as u16;
        let s = UNICODE_STRING { Length: len, MaximumLength: len + 2, Buffer: off as *mut u16 };
        off += usize::from(len) + 2;
        s
    };
    let driver_name = put(&format!("\\Driver\\{service}"));
    let service_key_name = put(&service);
    let hw = put("\\REGISTRY\\MACHINE\\HARDWARE\\DESCRIPTION\\SYSTEM");
    // HardwareDatabase points at a UNICODE_STRING; keep it in the string area too.
    let hw_addr = off;
    // SAFETY: inside the 4 KiB block, after the strings.
    unsafe { write_obj(hw_addr, hw) };
    let d = base as *mut DRIVER_OBJECT;
    // SAFETY: the block is zeroed, 16-aligned and larger than DRIVER_OBJECT + DRIVER_EXTENSION; the driver
    // has not seen it yet, so it is read and written back whole.
    let mut obj: DRIVER_OBJECT = unsafe { read_obj(base) };
    // CAST: IO_TYPE_DRIVER and the structure size.
    obj.Type = 4;
    obj.Size = size_of::<DRIVER_OBJECT>() as i16;
    obj.DriverStart = image.base() as *mut c_void;
    obj.DriverSize = image.size() as u32;
    obj.DriverExtension = ext as *mut DRIVER_EXTENSION;
    obj.DriverName = driver_name;
    obj.HardwareDatabase = hw_addr as *mut UNICODE_STRING;
    obj.DriverInit = None;
    // SAFETY: as above.
    unsafe { write_obj(base, obj) };
    // SAFETY: the extension lies at 0x200 in the same block, zeroed.
    let mut e: DRIVER_EXTENSION = unsafe { read_obj(ext) };
    e.DriverObject = d;
    e.ServiceKeyName = service_key_name;
    // SAFETY: as above.
    unsafe { write_obj(ext, e) };
    // Registry path: \REGISTRY\MACHINE\SYSTEM\CurrentControlSet\Services\<service>
    let path: Vec<u16> =
        format!("\\REGISTRY\\MACHINE\\SYSTEM\\CurrentControlSet\\Services\\{service}").encode_utf16().collect();
    let buf = registry.addr() + 32;
    for (i, u) in path.iter().enumerate() {
        // SAFETY: the registry block is 512 bytes; the path (a service name of at most 64 characters) is
        // < 260 bytes from offset 32.
        unsafe { write_obj(buf + i * 2, *u) };
    }
    // CAST: a short constant path.
    let len = (path.len() * 2) as u16;
    // SAFETY: the registry block starts with room for a UNICODE_STRING.
    unsafe { write_obj(registry.addr(), UNICODE_STRING { Length: len, MaximumLength: len, Buffer: buf as *mut u16 }) };
}

/// The registry path `init_driver_object` wrote into `registry`.
pub(crate) fn registry_path(registry: &HostBlock) -> String {
    // SAFETY: the block holds the UNICODE_STRING and, after it, its buffer (written at load).
    unsafe { unicode(registry.addr() as *const UNICODE_STRING) }.unwrap_or_default()
}

/// The DriverUnload routine the driver set, if any.
pub(crate) fn driver_unload_routine(inner: &Inner) -> Option<usize> {
    // SAFETY: the driver object block lives as long as the machine; the driver writes DriverUnload only in
    // DriverEntry, which has returned.
    let d: DRIVER_OBJECT = unsafe { read_obj(inner.driver_object.addr()) };
    d.DriverUnload.map(|f| f as usize)
}

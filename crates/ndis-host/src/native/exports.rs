//! The kernel and NDIS exports the driver imports: `extern "win64"` shims that copy arguments out of driver
//! memory, apply the verifier's rules and fault plan, and keep the machine's books.
//!
//! Each shim finds its machine through the processor thread it runs on ([`current`]). None holds the state
//! lock while calling back into the driver. They carry the WDK's names, as the import table spells them.
#![allow(non_snake_case)]

use super::call;
use super::cpu;
use super::memory::{read_cstr, read_obj, read_utf16, write_obj, HostBlock};
use crate::host::{current, Bugcheck, DeviceRec, Inner, PoolBlock, ProtocolCharacteristics, ProtocolRec};
use crate::loader::{LoadedImage, Resolver};
use crate::trace::{status, Direction};
use crate::verifier::Rule;
use ndis_sys::*;
use std::ffi::c_void;
use std::mem::size_of;

const PASSIVE: u8 = 0;
const DISPATCH: u8 = 2;

/// STATUS values the shims return.
const ST_SUCCESS: i32 = 0;
// CAST: NTSTATUS failure codes are written as unsigned hex.
const ST_UNSUCCESSFUL: i32 = 0xC000_0001u32 as i32;
const ST_INVALID_PARAMETER: i32 = 0xC000_000Du32 as i32;
const ST_OBJECT_NAME_COLLISION: i32 = 0xC000_0035u32 as i32;
const ST_OBJECT_NAME_NOT_FOUND: i32 = 0xC000_0034u32 as i32;
const ST_INSUFFICIENT_RESOURCES: i32 = 0xC000_009Au32 as i32;
const NDIS_ST_BAD_VERSION: i32 = 0xC001_0004u32 as i32;
const NDIS_ST_BAD_CHARACTERISTICS: i32 = 0xC001_0005u32 as i32;

/// Resolves the driver's imports against the shims below.
#[derive(Debug)]
pub struct Exports;

macro_rules! export_table {
    ($($module:literal : $name:ident),* $(,)?) => {
        /// (module, name, address) of every export the host provides.
        pub fn table() -> Vec<(&'static str, &'static str, usize)> {
            vec![$(($module, stringify!($name), $name as *const () as usize)),*]
        }
    };
}

export_table! {
    "ntoskrnl.exe": ExAllocatePoolWithTag,
    "ntoskrnl.exe": ExFreePoolWithTag,
    "ntoskrnl.exe": ExFreePool,
    "ntoskrnl.exe": MmGetSystemRoutineAddress,
    "ntoskrnl.exe": IoCreateDevice,
    "ntoskrnl.exe": IoDeleteDevice,
    "ntoskrnl.exe": IoCreateSymbolicLink,
    "ntoskrnl.exe": IoDeleteSymbolicLink,
    "ntoskrnl.exe": IofCompleteRequest,
    "ntoskrnl.exe": KeBugCheckEx,
    "ntoskrnl.exe": DbgPrint,
    "ntoskrnl.exe": DbgPrintEx,
    "ntoskrnl.exe": KeInitializeSpinLock,
    "ntoskrnl.exe": KeAcquireSpinLockRaiseToDpc,
    "ntoskrnl.exe": KeReleaseSpinLock,
    "ntoskrnl.exe": KeAcquireSpinLockAtDpcLevel,
    "ntoskrnl.exe": KeReleaseSpinLockFromDpcLevel,
    "ntoskrnl.exe": RtlInitUnicodeString,
    "ntoskrnl.exe": KeQueryPerformanceCounter,
    "ndis.sys": NdisGetVersion,
    "ndis.sys": NdisRegisterProtocolDriver,
    "ndis.sys": NdisDeregisterProtocolDriver,
}

impl Resolver for Exports {
    fn resolve(&self, module: &str, name: &str) -> Option<usize> {
        table().into_iter().find(|(m, n, _)| m.eq_ignore_ascii_case(module) && *n == name).map(|(_, _, a)| a)
    }
}

fn hex(v: impl Into<u64>) -> String {
    format!("{:#x}", v.into())
}

fn ptr(p: *const c_void) -> String {
    format!("{:#x}", p as usize)
}

/// Reads a UNICODE_STRING the driver passed; `None` for a null pointer.
///
/// # Safety
///
/// `p` is null or points to a readable UNICODE_STRING whose buffer holds `Length` bytes.
unsafe fn unicode(p: *const UNICODE_STRING) -> Option<String> {
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

/// Runs driver function `f` on this processor at `irql`, traced, checking the IRQL it returns at.
pub(crate) fn call_into_driver(inner: &Inner, irql: u8, name: &str, f: usize, args: &[(&'static str, u64)]) -> u64 {
    let prev = cpu::irql();
    cpu::set_irql(irql);
    let idx = inner.trace_call(Direction::HostToDriver, name, args.iter().map(|(n, v)| (*n, hex(*v))).collect());
    let values: Vec<u64> = args.iter().map(|(_, v)| *v).collect();
    // SAFETY: `f` is a driver routine the driver registered for exactly this call, with these argument
    // values, all integers or pointers to memory the host lent it.
    let r = unsafe { call::call(f, &values) };
    let after = cpu::irql();
    if after != irql {
        inner.violation(Rule::IrqlNotRestored, format!("{name} returned at IRQL {after}; it was called at IRQL {irql}"));
    }
    // CAST: statuses are the low 32 bits of RAX.
    inner.trace_result(idx, status(r as u32 as i32));
    cpu::set_irql(prev);
    r
}

/// Calls a driver routine from inside an export (same processor, nested), at the current IRQL.
fn call_back(inner: &Inner, name: &str, f: usize, args: &[(&'static str, u64)]) -> u64 {
    call_into_driver(inner, cpu::irql(), name, f, args)
}

// ---------------------------------------------------------------- driver object

/// Prepares the DRIVER_OBJECT (with its DRIVER_EXTENSION and names) and the registry path.
pub(crate) fn init_driver_object(block: &HostBlock, registry: &HostBlock, image: &LoadedImage) {
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
    let driver_name = put("\\Driver\\RAWLINK");
    let service = put("RAWLINK");
    let hw = put("\\REGISTRY\\MACHINE\\HARDWARE\\DESCRIPTION\\SYSTEM");
    // SAFETY: the block is zeroed, 16-aligned and larger than DRIVER_OBJECT + DRIVER_EXTENSION; the driver
    // has not seen it yet.
    unsafe {
        let d = base as *mut DRIVER_OBJECT;
        // CAST: IO_TYPE_DRIVER and the structure size.
        (*d).Type = 4;
        (*d).Size = size_of::<DRIVER_OBJECT>() as i16;
        (*d).DriverStart = image.base() as *mut c_void;
        (*d).DriverSize = image.size() as u32;
        (*d).DriverExtension = ext as *mut DRIVER_EXTENSION;
        (*d).DriverName = driver_name;
        (*d).HardwareDatabase = block.addr() as *mut UNICODE_STRING;
        (*d).DriverInit = None;
        let e = ext as *mut DRIVER_EXTENSION;
        (*e).DriverObject = d;
        (*e).ServiceKeyName = service;
    }
    // HardwareDatabase points at a UNICODE_STRING; keep it in the string area too.
    let hw_addr = off;
    // SAFETY: inside the 4 KiB block, after the strings.
    unsafe {
        write_obj(hw_addr, hw);
        (*(base as *mut DRIVER_OBJECT)).HardwareDatabase = hw_addr as *mut UNICODE_STRING;
    }
    // Registry path: \REGISTRY\MACHINE\SYSTEM\CurrentControlSet\Services\RAWLINK
    let path: Vec<u16> = "\\REGISTRY\\MACHINE\\SYSTEM\\CurrentControlSet\\Services\\RAWLINK".encode_utf16().collect();
    let buf = registry.addr() + 32;
    for (i, u) in path.iter().enumerate() {
        // SAFETY: the registry block is 512 bytes; the path is < 240 bytes from offset 32.
        unsafe { write_obj(buf + i * 2, *u) };
    }
    // CAST: a short constant path.
    let len = (path.len() * 2) as u16;
    // SAFETY: the registry block starts with room for a UNICODE_STRING.
    unsafe { write_obj(registry.addr(), UNICODE_STRING { Length: len, MaximumLength: len, Buffer: buf as *mut u16 }) };
}

/// The DriverUnload routine the driver set, if any.
pub(crate) fn driver_unload_routine(inner: &Inner) -> Option<usize> {
    // SAFETY: the driver object block lives as long as the machine; the driver writes DriverUnload only in
    // DriverEntry, which has returned.
    let d: DRIVER_OBJECT = unsafe { read_obj(inner.driver_object.addr()) };
    d.DriverUnload.map(|f| f as usize)
}

// ---------------------------------------------------------------- pool

fn pool_alloc(inner: &Inner, api: &'static str, size: usize, tag: u32) -> *mut c_void {
    if !inner.require_irql_at_most(api, DISPATCH) {
        return std::ptr::null_mut();
    }
    if tag == 0 {
        inner.violation(Rule::BadParameter, format!("{api} with tag 0"));
    }
    if inner.inject(api) {
        return std::ptr::null_mut();
    }
    let Some(block) = HostBlock::new(size, 16) else { return std::ptr::null_mut() };
    let addr = block.addr();
    inner.state().pool.insert(addr, PoolBlock { block, tag, size, api });
    addr as *mut c_void
}

fn pool_free(inner: &Inner, api: &str, p: *mut c_void, tag: Option<u32>) {
    if !inner.require_irql_at_most(api, DISPATCH) {
        return;
    }
    let removed = inner.state().pool.remove(&(p as usize));
    match removed {
        None => inner.violation(Rule::BadFree, format!("{api}({}) frees memory that is not an allocated pool block", ptr(p))),
        Some(b) => {
            if let Some(t) = tag.filter(|&t| t != b.tag) {
                inner.violation(
                    Rule::BadFree,
                    format!(
                        "{api}({}) with tag '{}' frees a block allocated with tag '{}'",
                        ptr(p),
                        crate::host::tag_text(t),
                        crate::host::tag_text(b.tag)
                    ),
                );
            }
        }
    }
}

extern "win64" fn ExAllocatePoolWithTag(pool_type: i32, size: usize, tag: u32) -> *mut c_void {
    let inner = current();
    let idx = inner.trace_call(
        Direction::DriverToHost,
        "ExAllocatePoolWithTag",
        vec![("PoolType", pool_type.to_string()), ("NumberOfBytes", size.to_string()), ("Tag", crate::host::tag_text(tag))],
    );
    // NonPagedPool (0), NonPagedPoolNx (512), NonPagedPoolNxCacheAligned (516) are resident; paged pool (1)
    // may not be touched at DISPATCH_LEVEL, which the driver does.
    if pool_type != 0 && pool_type != 512 && pool_type != 516 {
        inner.violation(Rule::BadParameter, format!("ExAllocatePoolWithTag with pool type {pool_type}: rawlink needs non-paged pool"));
    }
    let p = pool_alloc(&inner, "ExAllocatePoolWithTag", size, tag);
    inner.trace_result(idx, ptr(p));
    p
}

/// `ExAllocatePool2`, found only through MmGetSystemRoutineAddress (it is not in WDK 10.0.16299's exports).
extern "win64" fn ExAllocatePool2(flags: u64, size: usize, tag: u32) -> *mut c_void {
    let inner = current();
    let idx = inner.trace_call(
        Direction::DriverToHost,
        "ExAllocatePool2",
        vec![("Flags", hex(flags)), ("NumberOfBytes", size.to_string()), ("Tag", crate::host::tag_text(tag))],
    );
    const POOL_FLAG_NON_PAGED: u64 = 0x40;
    if flags & POOL_FLAG_NON_PAGED == 0 {
        inner.violation(Rule::BadParameter, format!("ExAllocatePool2 without POOL_FLAG_NON_PAGED (flags {flags:#x})"));
    }
    let p = pool_alloc(&inner, "ExAllocatePool2", size, tag);
    inner.trace_result(idx, ptr(p));
    p
}

extern "win64" fn ExFreePoolWithTag(p: *mut c_void, tag: u32) {
    let inner = current();
    inner.trace_call(Direction::DriverToHost, "ExFreePoolWithTag", vec![("P", ptr(p)), ("Tag", crate::host::tag_text(tag))]);
    pool_free(&inner, "ExFreePoolWithTag", p, Some(tag));
}

extern "win64" fn ExFreePool(p: *mut c_void) {
    let inner = current();
    inner.trace_call(Direction::DriverToHost, "ExFreePool", vec![("P", ptr(p))]);
    pool_free(&inner, "ExFreePool", p, None);
}

extern "win64" fn MmGetSystemRoutineAddress(name: *mut UNICODE_STRING) -> *mut c_void {
    let inner = current();
    // SAFETY: the driver passes a UNICODE_STRING it owns (the routine's contract).
    let n = unsafe { unicode(name) }.unwrap_or_default();
    let idx = inner.trace_call(Direction::DriverToHost, "MmGetSystemRoutineAddress", vec![("SystemRoutineName", n.clone())]);
    inner.require_irql("MmGetSystemRoutineAddress", PASSIVE);
    let addr = match n.as_str() {
        "ExAllocatePool2" if inner.config.ex_allocate_pool2 => ExAllocatePool2 as *const () as usize,
        other => Exports.resolve("ntoskrnl.exe", other).unwrap_or(0),
    };
    inner.trace_result(idx, hex(addr as u64));
    addr as *mut c_void
}

// ---------------------------------------------------------------- I/O manager objects

extern "win64" fn IoCreateDevice(
    driver: *mut DRIVER_OBJECT,
    extension_size: u32,
    name: *mut UNICODE_STRING,
    device_type: u32,
    characteristics: u32,
    exclusive: u8,
    out: *mut *mut DEVICE_OBJECT,
) -> i32 {
    let inner = current();
    // SAFETY: a null or driver-owned UNICODE_STRING, per the routine's contract.
    let n = unsafe { unicode(name) };
    let idx = inner.trace_call(
        Direction::DriverToHost,
        "IoCreateDevice",
        vec![
            ("DeviceExtensionSize", extension_size.to_string()),
            ("DeviceName", n.clone().unwrap_or_else(|| "NULL".into())),
            ("DeviceType", hex(device_type)),
            ("DeviceCharacteristics", hex(characteristics)),
            ("Exclusive", exclusive.to_string()),
        ],
    );
    let result = (|| {
        if !inner.require_irql("IoCreateDevice", PASSIVE) {
            return ST_INVALID_PARAMETER;
        }
        if driver as usize != inner.driver_object.addr() || out.is_null() {
            inner.violation(Rule::BadParameter, "IoCreateDevice with a foreign driver object or a null out pointer");
            return ST_INVALID_PARAMETER;
        }
        if inner.inject("IoCreateDevice") {
            return ST_INSUFFICIENT_RESOURCES;
        }
        let mut st = inner.state();
        if let Some(n) = &n {
            let taken = st.devices.iter().any(|d| d.name.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(n)));
            if taken {
                return ST_OBJECT_NAME_COLLISION;
            }
        }
        let dev_size = size_of::<DEVICE_OBJECT>();
        let Some(block) = HostBlock::new(dev_size + extension_size as usize, 16) else { return ST_INSUFFICIENT_RESOURCES };
        let d = block.as_ptr::<DEVICE_OBJECT>();
        // SAFETY: `block` is a fresh zeroed block large enough for DEVICE_OBJECT + extension; `driver` is
        // the machine's driver object (checked above); `out` is the driver's out pointer (non-null).
        unsafe {
            (*d).Type = 3; // IO_TYPE_DEVICE
            // CAST: the structure size fits a u16.
            (*d).Size = (dev_size + extension_size as usize) as u16;
            (*d).ReferenceCount = 0;
            (*d).DriverObject = driver;
            (*d).NextDevice = (*driver).DeviceObject;
            (*d).Flags = DO_DEVICE_INITIALIZING;
            (*d).Characteristics = characteristics;
            (*d).DeviceExtension = if extension_size > 0 { (block.addr() + dev_size) as *mut c_void } else { std::ptr::null_mut() };
            (*d).DeviceType = device_type;
            (*d).StackSize = 1;
            (*driver).DeviceObject = d;
            *out = d;
        }
        st.devices.push(DeviceRec { block, name: n.clone() });
        ST_SUCCESS
    })();
    inner.trace_result(idx, status(result));
    result
}

extern "win64" fn IoDeleteDevice(device: *mut DEVICE_OBJECT) {
    let inner = current();
    inner.trace_call(Direction::DriverToHost, "IoDeleteDevice", vec![("DeviceObject", ptr(device.cast()))]);
    inner.require_irql("IoDeleteDevice", PASSIVE);
    let mut st = inner.state();
    let Some(pos) = st.devices.iter().position(|d| d.block.addr() == device as usize) else {
        drop(st);
        inner.violation(Rule::BadParameter, format!("IoDeleteDevice({}) on an object that is not a live device", ptr(device.cast())));
        return;
    };
    let rec = st.devices.remove(pos);
    // Unlink from the driver object's device list.
    let drv = inner.driver_object.as_ptr::<DRIVER_OBJECT>();
    // SAFETY: the driver object and every listed device block are host-owned and alive; the list holds only
    // devices created by IoCreateDevice.
    unsafe {
        let next = (*device).NextDevice;
        if (*drv).DeviceObject == device {
            (*drv).DeviceObject = next;
        } else {
            let mut p = (*drv).DeviceObject;
            while !p.is_null() {
                if (*p).NextDevice == device {
                    (*p).NextDevice = next;
                    break;
                }
                p = (*p).NextDevice;
            }
        }
    }
    drop(st);
    drop(rec);
}

extern "win64" fn IoCreateSymbolicLink(link: *mut UNICODE_STRING, target: *mut UNICODE_STRING) -> i32 {
    let inner = current();
    // SAFETY: driver-owned UNICODE_STRINGs per the routine's contract.
    let (l, t) = unsafe { (unicode(link), unicode(target)) };
    let (l, t) = (l.unwrap_or_default(), t.unwrap_or_default());
    let idx = inner.trace_call(
        Direction::DriverToHost,
        "IoCreateSymbolicLink",
        vec![("SymbolicLinkName", l.clone()), ("DeviceName", t.clone())],
    );
    let r = (|| {
        if !inner.require_irql("IoCreateSymbolicLink", PASSIVE) {
            return ST_INVALID_PARAMETER;
        }
        if l.is_empty() || t.is_empty() {
            return ST_INVALID_PARAMETER;
        }
        if inner.inject("IoCreateSymbolicLink") {
            return ST_INSUFFICIENT_RESOURCES;
        }
        let mut st = inner.state();
        if st.links.keys().any(|k| k.eq_ignore_ascii_case(&l)) {
            return ST_OBJECT_NAME_COLLISION;
        }
        st.links.insert(l.clone(), t.clone());
        ST_SUCCESS
    })();
    inner.trace_result(idx, status(r));
    r
}

extern "win64" fn IoDeleteSymbolicLink(link: *mut UNICODE_STRING) -> i32 {
    let inner = current();
    // SAFETY: a driver-owned UNICODE_STRING per the routine's contract.
    let l = unsafe { unicode(link) }.unwrap_or_default();
    let idx = inner.trace_call(Direction::DriverToHost, "IoDeleteSymbolicLink", vec![("SymbolicLinkName", l.clone())]);
    inner.require_irql("IoDeleteSymbolicLink", PASSIVE);
    let mut st = inner.state();
    let key = st.links.keys().find(|k| k.eq_ignore_ascii_case(&l)).cloned();
    let r = match key {
        Some(k) => {
            st.links.remove(&k);
            ST_SUCCESS
        }
        None => ST_OBJECT_NAME_NOT_FOUND,
    };
    drop(st);
    inner.trace_result(idx, status(r));
    r
}

extern "win64" fn IofCompleteRequest(irp: *mut IRP, boost: i8) {
    let inner = current();
    inner.trace_call(Direction::DriverToHost, "IofCompleteRequest", vec![("Irp", ptr(irp.cast())), ("PriorityBoost", boost.to_string())]);
    inner.require_irql_at_most("IofCompleteRequest", DISPATCH);
    let mut st = inner.state();
    let n = st.completed_irps.entry(irp as usize).or_insert(0);
    *n += 1;
    if *n > 1 {
        drop(st);
        inner.violation(Rule::DoubleCompletion, format!("IRP {} completed twice", ptr(irp.cast())));
    }
}

// ---------------------------------------------------------------- bug checks and debug output

extern "win64" fn KeBugCheckEx(code: u32, p1: u64, p2: u64, p3: u64, p4: u64) -> ! {
    let inner = current();
    inner.trace_call(
        Direction::DriverToHost,
        "KeBugCheckEx",
        vec![("BugCheckCode", hex(code)), ("P1", hex(p1)), ("P2", hex(p2)), ("P3", hex(p3)), ("P4", hex(p4))],
    );
    inner.bugcheck(Bugcheck { code, params: [p1, p2, p3, p4] })
}

/// Formats a kernel printf string with the integer arguments at hand (win64 varargs arrive as integers).
fn kprintf(fmt: &str, args: &[u64]) -> String {
    let mut out = String::new();
    let mut it = args.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = String::new();
        while let Some(&n) = chars.peek() {
            spec.push(n);
            chars.next();
            if n.is_ascii_alphabetic() && !matches!(n, 'l' | 'h' | 'I' | 'w' | 'z') || n == '%' {
                break;
            }
        }
        let conv = spec.chars().last().unwrap_or('%');
        let arg = || it.clone().next().copied().unwrap_or(0);
        match conv {
            '%' => out.push('%'),
            'd' | 'i' => {
                let v = arg();
                it.next();
                // CAST: %d prints a 32-bit int unless l/I64 widened it.
                if spec.contains("I64") || spec.contains("ll") { out.push_str(&(v as i64).to_string()) } else { out.push_str(&(v as i32).to_string()) }
            }
            'u' => {
                let v = arg();
                it.next();
                if spec.contains("I64") || spec.contains("ll") { out.push_str(&v.to_string()) } else { out.push_str(&(v as u32).to_string()) }
            }
            'x' | 'X' | 'p' => {
                let v = arg();
                it.next();
                out.push_str(&format!("{v:#x}"));
            }
            's' => {
                let v = arg();
                it.next();
                // SAFETY: %s takes a NUL-terminated string from the driver (DbgPrint's contract).
                let s = if v == 0 { "(null)".to_owned() } else { unsafe { read_cstr(v as usize, 1024) } };
                out.push_str(&s);
            }
            'Z' => {
                let v = arg();
                it.next();
                // SAFETY: %wZ takes a PUNICODE_STRING.
                out.push_str(&unsafe { unicode(v as *const UNICODE_STRING) }.unwrap_or_else(|| "(null)".into()));
            }
            _ => {
                it.next();
                out.push('%');
                out.push_str(&spec);
            }
        }
    }
    out
}

extern "win64" fn DbgPrintEx(component: u32, level: u32, format: *const u8, a0: u64, a1: u64, a2: u64, a3: u64, a4: u64) -> u32 {
    let inner = current();
    // SAFETY: DbgPrintEx's format is a NUL-terminated string from the driver.
    let f = unsafe { read_cstr(format as usize, 4096) };
    let text = kprintf(&f, &[a0, a1, a2, a3, a4]);
    inner.trace_call(
        Direction::DriverToHost,
        "DbgPrintEx",
        vec![("ComponentId", hex(component)), ("Level", level.to_string()), ("Text", text.trim_end().to_owned())],
    );
    0
}

extern "win64" fn DbgPrint(format: *const u8, a0: u64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> u32 {
    let inner = current();
    // SAFETY: DbgPrint's format is a NUL-terminated string from the driver.
    let f = unsafe { read_cstr(format as usize, 4096) };
    let text = kprintf(&f, &[a0, a1, a2, a3, a4, a5]);
    inner.trace_call(Direction::DriverToHost, "DbgPrint", vec![("Text", text.trim_end().to_owned())]);
    0
}

// ---------------------------------------------------------------- spin locks

extern "win64" fn KeInitializeSpinLock(lock: *mut usize) {
    // SAFETY: the driver passes its KSPIN_LOCK.
    unsafe { write_obj(lock as usize, 0usize) };
}

fn acquire(inner: &Inner, api: &str, lock: *mut usize) {
    let me = std::thread::current().id();
    loop {
        let mut st = inner.state();
        match st.spin_locks.get(&(lock as usize)) {
            None => {
                st.spin_locks.insert(lock as usize, me);
                // SAFETY: the driver's KSPIN_LOCK; a held lock is non-zero as on Windows.
                unsafe { write_obj(lock as usize, 1usize) };
                return;
            }
            Some(&holder) if holder == me => {
                drop(st);
                inner.violation(Rule::SpinLock, format!("{api}({}) acquires a spin lock this processor already holds (deadlock on Windows)", ptr(lock.cast())));
                return;
            }
            Some(_) => {
                drop(st);
                std::thread::yield_now();
            }
        }
    }
}

fn release(inner: &Inner, api: &str, lock: *mut usize) {
    let me = std::thread::current().id();
    let mut st = inner.state();
    match st.spin_locks.get(&(lock as usize)) {
        Some(&holder) if holder == me => {
            st.spin_locks.remove(&(lock as usize));
            // SAFETY: the driver's KSPIN_LOCK.
            unsafe { write_obj(lock as usize, 0usize) };
        }
        _ => {
            drop(st);
            inner.violation(Rule::SpinLock, format!("{api}({}) releases a spin lock this processor does not hold", ptr(lock.cast())));
        }
    }
}

extern "win64" fn KeAcquireSpinLockRaiseToDpc(lock: *mut usize) -> u8 {
    let inner = current();
    let old = cpu::irql();
    inner.trace_call(Direction::DriverToHost, "KeAcquireSpinLockRaiseToDpc", vec![("SpinLock", ptr(lock.cast()))]);
    inner.require_irql_at_most("KeAcquireSpinLockRaiseToDpc", DISPATCH);
    cpu::set_irql(DISPATCH);
    acquire(&inner, "KeAcquireSpinLockRaiseToDpc", lock);
    old
}

extern "win64" fn KeReleaseSpinLock(lock: *mut usize, new_irql: u8) {
    let inner = current();
    inner.trace_call(Direction::DriverToHost, "KeReleaseSpinLock", vec![("SpinLock", ptr(lock.cast())), ("NewIrql", new_irql.to_string())]);
    inner.require_irql("KeReleaseSpinLock", DISPATCH);
    release(&inner, "KeReleaseSpinLock", lock);
    if new_irql > DISPATCH {
        inner.violation(Rule::Irql, format!("KeReleaseSpinLock to IRQL {new_irql}, above DISPATCH_LEVEL"));
    }
    cpu::set_irql(new_irql.min(DISPATCH));
}

extern "win64" fn KeAcquireSpinLockAtDpcLevel(lock: *mut usize) {
    let inner = current();
    inner.trace_call(Direction::DriverToHost, "KeAcquireSpinLockAtDpcLevel", vec![("SpinLock", ptr(lock.cast()))]);
    inner.require_irql("KeAcquireSpinLockAtDpcLevel", DISPATCH);
    acquire(&inner, "KeAcquireSpinLockAtDpcLevel", lock);
}

extern "win64" fn KeReleaseSpinLockFromDpcLevel(lock: *mut usize) {
    let inner = current();
    inner.trace_call(Direction::DriverToHost, "KeReleaseSpinLockFromDpcLevel", vec![("SpinLock", ptr(lock.cast()))]);
    inner.require_irql("KeReleaseSpinLockFromDpcLevel", DISPATCH);
    release(&inner, "KeReleaseSpinLockFromDpcLevel", lock);
}

// ---------------------------------------------------------------- run-time library

extern "win64" fn RtlInitUnicodeString(dest: *mut UNICODE_STRING, src: *const u16) {
    let mut len = 0usize;
    if !src.is_null() {
        // SAFETY: the source is a NUL-terminated UTF-16 string (the routine's contract).
        while unsafe { read_obj::<u16>(src as usize + len * 2) } != 0 {
            len += 1;
        }
    }
    // CAST: UNICODE_STRING lengths are 16-bit; longer sources are a driver bug the routine also truncates.
    let bytes = (len * 2).min(0xFFFC) as u16;
    let value = UNICODE_STRING {
        Length: bytes,
        MaximumLength: if src.is_null() { 0 } else { bytes + 2 },
        Buffer: src.cast_mut(),
    };
    // SAFETY: `dest` is the driver's UNICODE_STRING.
    unsafe { write_obj(dest as usize, value) };
}

extern "win64" fn KeQueryPerformanceCounter(freq: *mut i64) -> i64 {
    use std::sync::OnceLock;
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    let start = *START.get_or_init(std::time::Instant::now);
    if !freq.is_null() {
        // SAFETY: an optional out pointer of the driver.
        unsafe { write_obj(freq as usize, 10_000_000i64) };
    }
    // CAST: 100 ns ticks since the host started fit an i64 for 29 000 years.
    (start.elapsed().as_nanos() / 100) as i64
}

// ---------------------------------------------------------------- NDIS

extern "win64" fn NdisGetVersion() -> u32 {
    let inner = current();
    let idx = inner.trace_call(Direction::DriverToHost, "NdisGetVersion", vec![]);
    let v = inner.config.ndis_version;
    inner.trace_result(idx, format!("{}.{}", v >> 16, v & 0xFF));
    v
}

/// NDIS minor versions that exist for major 6.
const NDIS6_MINORS: &[u32] = &[0, 1, 20, 30, 40, 50, 51, 60, 70, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89];

/// Validates characteristics as NdisRegisterProtocolDriver does; `Err` is the NDIS_STATUS it returns.
fn check_characteristics(c: &NDIS_PROTOCOL_DRIVER_CHARACTERISTICS, os_version: u32) -> Result<(), (i32, String)> {
    let bad = |m: String| Err((NDIS_ST_BAD_CHARACTERISTICS, m));
    if c.Header.Type != NDIS_OBJECT_TYPE_PROTOCOL_DRIVER_CHARACTERISTICS {
        return bad(format!("Header.Type {:#x}", c.Header.Type));
    }
    let (rev, size) = (c.Header.Revision, c.Header.Size);
    let min_size = match rev {
        1 => NDIS_SIZEOF_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_1,
        2 => NDIS_SIZEOF_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_2,
        _ => return bad(format!("Header.Revision {rev}")),
    };
    if size < min_size {
        return bad(format!("Header.Size {size} is below {min_size} for revision {rev}"));
    }
    let version = (u32::from(c.MajorNdisVersion) << 16) | u32::from(c.MinorNdisVersion);
    if c.MajorNdisVersion != 6 || !NDIS6_MINORS.contains(&u32::from(c.MinorNdisVersion)) {
        return Err((NDIS_ST_BAD_VERSION, format!("NDIS version {}.{} does not exist", c.MajorNdisVersion, c.MinorNdisVersion)));
    }
    if version > os_version {
        return Err((NDIS_ST_BAD_VERSION, format!("NDIS {}.{} is newer than this Windows ({}.{})", c.MajorNdisVersion, c.MinorNdisVersion, os_version >> 16, os_version & 0xFF)));
    }
    if rev == 2 && version < 0x0006_001E {
        return bad("revision 2 characteristics need NDIS 6.30 or later".into());
    }
    if c.Name.Length == 0 || c.Name.Buffer.is_null() {
        return bad("empty protocol name".into());
    }
    let required = [
        ("BindAdapterHandlerEx", c.BindAdapterHandlerEx.is_some()),
        ("UnbindAdapterHandlerEx", c.UnbindAdapterHandlerEx.is_some()),
        ("OpenAdapterCompleteHandlerEx", c.OpenAdapterCompleteHandlerEx.is_some()),
        ("CloseAdapterCompleteHandlerEx", c.CloseAdapterCompleteHandlerEx.is_some()),
        ("NetPnPEventHandler", c.NetPnPEventHandler.is_some()),
        ("OidRequestCompleteHandler", c.OidRequestCompleteHandler.is_some()),
        ("StatusHandlerEx", c.StatusHandlerEx.is_some()),
        ("ReceiveNetBufferListsHandler", c.ReceiveNetBufferListsHandler.is_some()),
        ("SendNetBufferListsCompleteHandler", c.SendNetBufferListsCompleteHandler.is_some()),
    ];
    if let Some((name, _)) = required.iter().find(|(_, present)| !present) {
        return bad(format!("{name} is missing"));
    }
    Ok(())
}

extern "win64" fn NdisRegisterProtocolDriver(
    context: *mut c_void,
    chars: *mut NDIS_PROTOCOL_DRIVER_CHARACTERISTICS,
    handle_out: *mut *mut c_void,
) -> i32 {
    let inner = current();
    let idx = inner.trace_call(
        Direction::DriverToHost,
        "NdisRegisterProtocolDriver",
        vec![("ProtocolDriverContext", ptr(context)), ("ProtocolCharacteristics", ptr(chars.cast()))],
    );
    let result = register(&inner, context, chars, handle_out);
    inner.trace_result(idx, status(result));
    result
}

fn register(inner: &Inner, context: *mut c_void, chars: *mut NDIS_PROTOCOL_DRIVER_CHARACTERISTICS, handle_out: *mut *mut c_void) -> i32 {
    if !inner.require_irql("NdisRegisterProtocolDriver", PASSIVE) {
        return ST_UNSUCCESSFUL;
    }
    if chars.is_null() || handle_out.is_null() {
        inner.violation(Rule::BadParameter, "NdisRegisterProtocolDriver with a null characteristics or handle pointer");
        return ST_INVALID_PARAMETER;
    }
    // Copy only the bytes the header claims (at most the largest revision), so a revision-1 structure is
    // not over-read.
    // SAFETY: `chars` points to the driver's characteristics, at least a header long.
    let header: NDIS_OBJECT_HEADER = unsafe { read_obj(chars as usize) };
    let mut c: NDIS_PROTOCOL_DRIVER_CHARACTERISTICS =
        // SAFETY: all-zero is a valid value of this plain-data structure.
        unsafe { std::mem::zeroed() };
    let n = usize::from(header.Size).min(size_of::<NDIS_PROTOCOL_DRIVER_CHARACTERISTICS>());
    // SAFETY: the driver vouches for `Header.Size` bytes; `c` has room for `n` bytes.
    unsafe { std::ptr::copy_nonoverlapping(chars as *const u8, std::ptr::from_mut(&mut c).cast::<u8>(), n) };
    if let Err((st, why)) = check_characteristics(&c, inner.config.ndis_version) {
        inner.violation(Rule::BadParameter, format!("NdisRegisterProtocolDriver refused: {why}"));
        return st;
    }
    if inner.inject("NdisRegisterProtocolDriver") {
        // CAST: NDIS_STATUS_RESOURCES.
        return ST_INSUFFICIENT_RESOURCES;
    }
    // SAFETY: the name buffer is the driver's, Length bytes long (checked non-empty above).
    let name = unsafe { read_utf16(c.Name.Buffer as usize, usize::from(c.Name.Length)) };
    let Some(handle) = HostBlock::new(64, 16) else { return ST_INSUFFICIENT_RESOURCES };
    let h = handle.addr();
    let f = |p: Option<usize>| p;
    let chars = ProtocolCharacteristics {
        header_type: c.Header.Type,
        header_revision: c.Header.Revision,
        header_size: c.Header.Size,
        major_ndis_version: c.MajorNdisVersion,
        minor_ndis_version: c.MinorNdisVersion,
        major_driver_version: c.MajorDriverVersion,
        minor_driver_version: c.MinorDriverVersion,
        flags: c.Flags,
        name: name.clone(),
        set_options: f(c.SetOptionsHandler.map(|p| p as usize)),
        bind_adapter_ex: f(c.BindAdapterHandlerEx.map(|p| p as usize)),
        unbind_adapter_ex: f(c.UnbindAdapterHandlerEx.map(|p| p as usize)),
        open_adapter_complete_ex: f(c.OpenAdapterCompleteHandlerEx.map(|p| p as usize)),
        close_adapter_complete_ex: f(c.CloseAdapterCompleteHandlerEx.map(|p| p as usize)),
        net_pnp_event: f(c.NetPnPEventHandler.map(|p| p as usize)),
        uninstall: f(c.UninstallHandler.map(|p| p as usize)),
        oid_request_complete: f(c.OidRequestCompleteHandler.map(|p| p as usize)),
        status_ex: f(c.StatusHandlerEx.map(|p| p as usize)),
        receive_net_buffer_lists: f(c.ReceiveNetBufferListsHandler.map(|p| p as usize)),
        send_net_buffer_lists_complete: f(c.SendNetBufferListsCompleteHandler.map(|p| p as usize)),
        direct_oid_request_complete: f(c.DirectOidRequestCompleteHandler.map(|p| p as usize)),
    };
    {
        let mut st = inner.state();
        if st.protocols.iter().any(|p| !p.deregistered && p.chars.name.eq_ignore_ascii_case(&name)) {
            drop(st);
            inner.violation(Rule::Registration, format!("protocol {name} registered twice"));
            return ST_UNSUCCESSFUL;
        }
        st.protocols.push(ProtocolRec { handle, chars, context: context as usize, deregistered: false });
    }
    // NDIS hands out the handle before calling any handler.
    // SAFETY: the driver's out pointer (non-null, checked).
    unsafe { write_obj(handle_out as usize, h as *mut c_void) };
    if let Some(set_options) = c.SetOptionsHandler {
        let r = call_back(inner, "ProtocolSetOptions", set_options as usize, &[("NdisDriverHandle", h as u64), ("DriverContext", context as u64)]);
        // CAST: NDIS_STATUS in the low 32 bits.
        let st = r as u32 as i32;
        if st != 0 {
            // NDIS fails the registration and forgets the protocol.
            let mut s = inner.state();
            if let Some(p) = s.protocols.iter_mut().find(|p| p.handle.addr() == h) {
                p.deregistered = true;
            }
            return st;
        }
    }
    ST_SUCCESS
}

extern "win64" fn NdisDeregisterProtocolDriver(handle: *mut c_void) {
    let inner = current();
    inner.trace_call(Direction::DriverToHost, "NdisDeregisterProtocolDriver", vec![("NdisProtocolHandle", ptr(handle))]);
    inner.require_irql("NdisDeregisterProtocolDriver", PASSIVE);
    let mut st = inner.state();
    match st.protocols.iter_mut().find(|p| p.handle.addr() == handle as usize) {
        Some(p) if !p.deregistered => p.deregistered = true,
        Some(p) => {
            let name = p.chars.name.clone();
            drop(st);
            inner.violation(Rule::Registration, format!("protocol {name} deregistered twice"));
        }
        None => {
            drop(st);
            inner.violation(Rule::BadParameter, format!("NdisDeregisterProtocolDriver({}) with an unknown handle", ptr(handle)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::kprintf;

    #[test]
    fn kernel_printf_formats_integers() {
        assert_eq!(kprintf("a %d b %u c %x %%", &[(-5i64) as u64, 7, 255]), "a -5 b 7 c 0xff %");
        assert_eq!(kprintf("%I64x", &[0x1_0000_0000]), "0x100000000");
    }
}

//! The C run-time and Rtl helpers every WDK-built driver imports — `memcpy`, `memset`, `memmove`, `memcmp`
//! (the compiler emits calls to them for struct copies and zeroing), `strlen`, `wcslen`, the counted-string
//! routines — and the kernel's critical regions and interlocked lists.
//!
//! IRQL rules are the documented ones: the memory routines run at any IRQL on resident memory (all host
//! memory is resident); `RtlCopyUnicodeString` at or below DISPATCH_LEVEL on non-paged strings;
//! `RtlEqualUnicodeString` and `RtlCompareUnicodeString` at PASSIVE_LEVEL; `KeEnterCriticalRegion` and
//! `KeLeaveCriticalRegion` at or below APC_LEVEL; the `ExInterlocked` list routines at any IRQL.
//!
//! The memory routines are not traced: compilers call them for every structure copy, and a trace of them
//! would say nothing about the driver's use of the kernel.

use super::super::dispatch::{set_critical_depth, CRITICAL};
use super::sync::APC;
use super::*;
use std::sync::Mutex;

export_table! {
    "ntoskrnl.exe": memcpy,
    "ntoskrnl.exe": memmove,
    "ntoskrnl.exe": memset,
    "ntoskrnl.exe": memcmp,
    "ntoskrnl.exe": strlen,
    "ntoskrnl.exe": wcslen,
    "ntoskrnl.exe": RtlCompareMemory,
    "ntoskrnl.exe": RtlCopyUnicodeString,
    "ntoskrnl.exe": RtlEqualUnicodeString,
    "ntoskrnl.exe": RtlCompareUnicodeString,
    "ntoskrnl.exe": KeEnterCriticalRegion,
    "ntoskrnl.exe": KeLeaveCriticalRegion,
    "ntoskrnl.exe": KeAreApcsDisabled,
    "ntoskrnl.exe": ExInterlockedInsertHeadList,
    "ntoskrnl.exe": ExInterlockedInsertTailList,
    "ntoskrnl.exe": ExInterlockedRemoveHeadList,
    "ntoskrnl.exe": ExInterlockedPushEntryList,
    "ntoskrnl.exe": ExInterlockedPopEntryList,
}

// ---------------------------------------------------------------- memory

/// Whether a memory routine got a null pointer for a non-empty range: recorded, and the call does nothing
/// (on Windows it would fault in the driver's context).
fn null_range(api: &str, pointers: &[(&str, usize)], len: usize) -> bool {
    if len == 0 {
        return false;
    }
    let Some((name, _)) = pointers.iter().find(|(_, p)| *p == 0) else { return false };
    current().violation(Rule::BadParameter, format!("{api} of {len} byte(s) with a null {name}"));
    true
}

/// One byte of a buffer the driver passed to a memory routine, inside the length it gave.
fn byte(addr: usize) -> u8 {
    // SAFETY: called only for addresses inside a buffer a driver passed with its length (the memory routines'
    // contract: both buffers hold that many bytes).
    unsafe { read_obj::<u8>(addr) }
}

extern "win64" fn memcpy(dst: *mut c_void, src: *const c_void, len: usize) -> *mut c_void {
    let (d, s) = (dst as usize, src as usize);
    if null_range("memcpy", &[("destination", d), ("source", s)], len) {
        return dst;
    }
    if len > 0 && d < s.wrapping_add(len) && s < d.wrapping_add(len) && d != s {
        current().violation(
            Rule::BadParameter,
            format!("memcpy({d:#x}, {s:#x}, {len}) with overlapping ranges: the result is undefined (use memmove)"),
        );
        // SAFETY: both ranges are the driver's (the routine's contract); copy handles the overlap.
        unsafe { std::ptr::copy(src.cast::<u8>(), dst.cast::<u8>(), len) };
        return dst;
    }
    // SAFETY: the driver's source and destination of `len` bytes (the routine's contract), not overlapping.
    unsafe { std::ptr::copy_nonoverlapping(src.cast::<u8>(), dst.cast::<u8>(), len) };
    dst
}

extern "win64" fn memmove(dst: *mut c_void, src: *const c_void, len: usize) -> *mut c_void {
    if null_range("memmove", &[("destination", dst as usize), ("source", src as usize)], len) {
        return dst;
    }
    // SAFETY: the driver's source and destination of `len` bytes; they may overlap.
    unsafe { std::ptr::copy(src.cast::<u8>(), dst.cast::<u8>(), len) };
    dst
}

extern "win64" fn memset(dst: *mut c_void, value: i32, len: usize) -> *mut c_void {
    if null_range("memset", &[("destination", dst as usize)], len) {
        return dst;
    }
    // CAST: memset stores the value converted to unsigned char.
    let byte = value as u8;
    // SAFETY: the driver's destination of `len` bytes.
    unsafe { std::ptr::write_bytes(dst.cast::<u8>(), byte, len) };
    dst
}

extern "win64" fn memcmp(a: *const c_void, b: *const c_void, len: usize) -> i32 {
    if null_range("memcmp", &[("first buffer", a as usize), ("second buffer", b as usize)], len) {
        return 0;
    }
    for i in 0..len {
        let (x, y) = (byte(a as usize + i), byte(b as usize + i));
        if x != y {
            return i32::from(x) - i32::from(y);
        }
    }
    0
}

extern "win64" fn strlen(s: *const u8) -> usize {
    if null_range("strlen", &[("string", s as usize)], 1) {
        return 0;
    }
    let mut n = 0;
    // SAFETY: a NUL-terminated string (the routine's contract).
    while unsafe { read_obj::<u8>(s as usize + n) } != 0 {
        n += 1;
    }
    n
}

extern "win64" fn wcslen(s: *const u16) -> usize {
    if null_range("wcslen", &[("string", s as usize)], 1) {
        return 0;
    }
    let mut n = 0;
    // SAFETY: a NUL-terminated UTF-16 string (the routine's contract).
    while unsafe { read_obj::<u16>(s as usize + n * 2) } != 0 {
        n += 1;
    }
    n
}

extern "win64" fn RtlCompareMemory(a: *const c_void, b: *const c_void, len: usize) -> usize {
    let inner = current();
    let idx = inner.trace_call(
        Direction::DriverToHost,
        "RtlCompareMemory",
        &[("Source1", ptr(a)), ("Source2", ptr(b)), ("Length", len.into())],
    );
    let r = if null_range("RtlCompareMemory", &[("Source1", a as usize), ("Source2", b as usize)], len) {
        0
    } else {
        (0..len).take_while(|&i| byte(a as usize + i) == byte(b as usize + i)).count()
    };
    inner.trace_result(idx, r.into());
    r
}

// ---------------------------------------------------------------- counted strings

/// The UTF-16 units of a UNICODE_STRING; `None` for a null pointer.
///
/// # Safety
///
/// `p` is null or a readable UNICODE_STRING whose buffer holds `Length` bytes.
unsafe fn units(p: *const UNICODE_STRING) -> Option<Vec<u16>> {
    if p.is_null() {
        return None;
    }
    // SAFETY: guaranteed by the caller.
    let u: UNICODE_STRING = unsafe { read_obj(p as usize) };
    let n = usize::from(u.Length) / 2;
    if u.Buffer.is_null() {
        return Some(Vec::new());
    }
    // SAFETY: guaranteed by the caller: Length bytes at Buffer.
    Some((0..n).map(|i| unsafe { read_obj::<u16>(u.Buffer as usize + i * 2) }).collect())
}

/// `RtlUpcaseUnicodeChar` for the characters a driver compares in names: ASCII and Latin-1 letters (the
/// system's upcase table maps far more; names of devices and adapters are ASCII).
fn upcase(c: u16) -> u16 {
    match c {
        0x61..=0x7A => c - 0x20,
        0xE0..=0xFE if c != 0xF7 => c - 0x20,
        _ => c,
    }
}

extern "win64" fn RtlCopyUnicodeString(dest: *mut UNICODE_STRING, src: *const UNICODE_STRING) {
    let inner = current();
    inner.trace_call(
        Direction::DriverToHost,
        "RtlCopyUnicodeString",
        &[("DestinationString", ptr(dest.cast())), ("SourceString", ptr(src.cast()))],
    );
    if !inner.require_irql_at_most("RtlCopyUnicodeString", DISPATCH) {
        return;
    }
    if dest.is_null() {
        inner.violation(Rule::BadParameter, "RtlCopyUnicodeString with a null DestinationString");
        return;
    }
    // SAFETY: the driver's destination UNICODE_STRING.
    let mut d: UNICODE_STRING = unsafe { read_obj(dest as usize) };
    // SAFETY: a null or driver-owned source string.
    let copied = match unsafe { units(src) } {
        None => 0,
        Some(s) => {
            let room = usize::from(d.MaximumLength) / 2;
            let n = s.len().min(room);
            if n > 0 && d.Buffer.is_null() {
                inner.violation(Rule::BadParameter, "RtlCopyUnicodeString into a string with a null Buffer");
                return;
            }
            for (i, u) in s.iter().take(n).enumerate() {
                // SAFETY: the destination buffer holds MaximumLength bytes.
                unsafe { write_obj(d.Buffer as usize + i * 2, *u) };
            }
            // The routine NUL-terminates when there is room for it.
            if n < room {
                // SAFETY: as above; n < room.
                unsafe { write_obj(d.Buffer as usize + n * 2, 0u16) };
            }
            n
        }
    };
    // CAST: at most MaximumLength / 2 units.
    d.Length = (copied * 2) as u16;
    // SAFETY: the driver's destination UNICODE_STRING.
    unsafe { write_obj(dest as usize, d) };
}

fn compare_strings(api: &str, a: *const UNICODE_STRING, b: *const UNICODE_STRING, fold: bool) -> Option<i32> {
    let inner = current();
    inner.require_irql(api, PASSIVE);
    // SAFETY: the driver's first string (the routine's contract).
    let x = unsafe { units(a) };
    // SAFETY: the driver's second string.
    let y = unsafe { units(b) };
    let (Some(x), Some(y)) = (x, y) else {
        inner.violation(Rule::BadParameter, format!("{api} with a null string"));
        return None;
    };
    let key = |c: u16| if fold { upcase(c) } else { c };
    for (p, q) in x.iter().zip(&y) {
        let (p, q) = (key(*p), key(*q));
        if p != q {
            return Some(i32::from(p) - i32::from(q));
        }
    }
    // CAST: string lengths fit an i32.
    Some(x.len() as i32 - y.len() as i32)
}

extern "win64" fn RtlEqualUnicodeString(a: *const UNICODE_STRING, b: *const UNICODE_STRING, fold: u8) -> u8 {
    let inner = current();
    let idx = inner.trace_call(
        Direction::DriverToHost,
        "RtlEqualUnicodeString",
        &[("String1", ptr(a.cast())), ("String2", ptr(b.cast())), ("CaseInSensitive", fold.into())],
    );
    let r = compare_strings("RtlEqualUnicodeString", a, b, fold != 0) == Some(0);
    inner.trace_result(idx, if r { Arg::Word("TRUE") } else { Arg::Word("FALSE") });
    u8::from(r)
}

extern "win64" fn RtlCompareUnicodeString(a: *const UNICODE_STRING, b: *const UNICODE_STRING, fold: u8) -> i32 {
    let inner = current();
    let idx = inner.trace_call(
        Direction::DriverToHost,
        "RtlCompareUnicodeString",
        &[("String1", ptr(a.cast())), ("String2", ptr(b.cast())), ("CaseInSensitive", fold.into())],
    );
    let r = compare_strings("RtlCompareUnicodeString", a, b, fold != 0).unwrap_or(0);
    inner.trace_result(idx, r.into());
    r
}

// ---------------------------------------------------------------- critical regions

extern "win64" fn KeEnterCriticalRegion() {
    let inner = current();
    inner.trace_call(Direction::DriverToHost, "KeEnterCriticalRegion", &[]);
    inner.require_irql_at_most("KeEnterCriticalRegion", APC);
    CRITICAL.with(|c| c.set(c.get().saturating_add(1)));
}

extern "win64" fn KeLeaveCriticalRegion() {
    let inner = current();
    inner.trace_call(Direction::DriverToHost, "KeLeaveCriticalRegion", &[]);
    inner.require_irql_at_most("KeLeaveCriticalRegion", APC);
    let depth = critical_depth();
    if depth == 0 {
        inner.violation(
            Rule::Apc,
            "KeLeaveCriticalRegion without a matching KeEnterCriticalRegion on this thread (KernelApcDisable underflows)",
        );
        return;
    }
    set_critical_depth(depth - 1);
}

extern "win64" fn KeAreApcsDisabled() -> u8 {
    let inner = current();
    let idx = inner.trace_call(Direction::DriverToHost, "KeAreApcsDisabled", &[]);
    let r = critical_depth() > 0 || cpu::irql() >= APC;
    inner.trace_result(idx, if r { Arg::Word("TRUE") } else { Arg::Word("FALSE") });
    u8::from(r)
}

// ---------------------------------------------------------------- interlocked lists

/// Serialises every ExInterlocked list operation. The driver's spin lock argument is what Windows takes; one
/// host lock for all lists is stricter and runs no driver code while held.
static LISTS: Mutex<()> = Mutex::new(());

/// Checks the spin lock of an ExInterlocked call: not null, not held through KeAcquireSpinLock by this
/// thread (Windows would spin on it for ever).
fn check_list_lock(inner: &Inner, api: &str, lock: usize) -> bool {
    if lock == 0 {
        inner.violation(Rule::BadParameter, format!("{api} with a null Lock"));
        return false;
    }
    let held = inner.state().spin_locks.get(&lock).copied();
    if held == Some(std::thread::current().id()) {
        inner.violation(
            Rule::SpinLock,
            format!("{api} with spin lock {lock:#x}, which this processor already holds: it would spin for ever"),
        );
        return false;
    }
    true
}

/// Reads a link field of a list the driver passed to an ExInterlocked routine.
fn get(addr: usize) -> usize {
    // SAFETY: called only for the Flink/Blink/Next fields of a list head or entry the driver passed (non-null,
    // checked) and of the entries linked into that list, which the routine's contract makes valid.
    unsafe { read_obj::<usize>(addr) }
}

/// Writes a link field of a list the driver passed to an ExInterlocked routine.
fn put(addr: usize, value: usize) {
    // SAFETY: as in `get`; the list is changed only under `LISTS`.
    unsafe { write_obj(addr, value) }
}

fn list_call(api: &'static str, args: &[(&'static str, Arg<'_>)]) -> (Arc<Inner>, u64) {
    let inner = current();
    let idx = inner.trace_call(Direction::DriverToHost, api, args);
    (inner, idx)
}

use std::sync::Arc;

/// Inserts `entry` after `head` (at the front) or before it (at the back); returns the old first entry, or
/// null when the list was empty.
fn insert(api: &'static str, head: usize, entry: usize, lock: usize, front: bool) -> usize {
    let (inner, idx) =
        list_call(api, &[("ListHead", hex(head as u64)), ("ListEntry", hex(entry as u64)), ("Lock", hex(lock as u64))]);
    if !check_list_lock(&inner, api, lock) || head == 0 || entry == 0 {
        if head == 0 || entry == 0 {
            inner.violation(Rule::BadParameter, format!("{api} with a null ListHead or ListEntry"));
        }
        inner.trace_result(idx, "0x0".into());
        return 0;
    }
    let _g = LISTS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    // A LIST_ENTRY is Flink at 0, Blink at 8.
    let first = get(head);
    let was_empty = first == head;
    if front {
        put(entry, first);
        put(entry + 8, head);
        put(first + 8, entry);
        put(head, entry);
    } else {
        let last = get(head + 8);
        put(entry, head);
        put(entry + 8, last);
        put(last, entry);
        put(head + 8, entry);
    }
    let r = if was_empty { 0 } else { first };
    inner.trace_result(idx, hex(r as u64));
    r
}

extern "win64" fn ExInterlockedInsertHeadList(head: *mut c_void, entry: *mut c_void, lock: *mut usize) -> *mut c_void {
    insert("ExInterlockedInsertHeadList", head as usize, entry as usize, lock as usize, true) as *mut c_void
}

extern "win64" fn ExInterlockedInsertTailList(head: *mut c_void, entry: *mut c_void, lock: *mut usize) -> *mut c_void {
    insert("ExInterlockedInsertTailList", head as usize, entry as usize, lock as usize, false) as *mut c_void
}

extern "win64" fn ExInterlockedRemoveHeadList(head: *mut c_void, lock: *mut usize) -> *mut c_void {
    let api = "ExInterlockedRemoveHeadList";
    let (inner, idx) = list_call(api, &[("ListHead", ptr(head)), ("Lock", ptr(lock.cast()))]);
    let (h, l) = (head as usize, lock as usize);
    if !check_list_lock(&inner, api, l) || h == 0 {
        if h == 0 {
            inner.violation(Rule::BadParameter, format!("{api} with a null ListHead"));
        }
        inner.trace_result(idx, "0x0".into());
        return std::ptr::null_mut();
    }
    let _g = LISTS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let first = get(h);
    let r = if first == h {
        0
    } else {
        let next = get(first);
        put(h, next);
        put(next + 8, h);
        first
    };
    inner.trace_result(idx, hex(r as u64));
    r as *mut c_void
}

extern "win64" fn ExInterlockedPushEntryList(head: *mut c_void, entry: *mut c_void, lock: *mut usize) -> *mut c_void {
    let api = "ExInterlockedPushEntryList";
    let (inner, idx) =
        list_call(api, &[("ListHead", ptr(head)), ("ListEntry", ptr(entry)), ("Lock", ptr(lock.cast()))]);
    let (h, e) = (head as usize, entry as usize);
    if !check_list_lock(&inner, api, lock as usize) || h == 0 || e == 0 {
        if h == 0 || e == 0 {
            inner.violation(Rule::BadParameter, format!("{api} with a null ListHead or ListEntry"));
        }
        inner.trace_result(idx, "0x0".into());
        return std::ptr::null_mut();
    }
    let _g = LISTS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    // A SINGLE_LIST_ENTRY is Next at 0.
    let first = get(h);
    put(e, first);
    put(h, e);
    inner.trace_result(idx, hex(first as u64));
    first as *mut c_void
}

extern "win64" fn ExInterlockedPopEntryList(head: *mut c_void, lock: *mut usize) -> *mut c_void {
    let api = "ExInterlockedPopEntryList";
    let (inner, idx) = list_call(api, &[("ListHead", ptr(head)), ("Lock", ptr(lock.cast()))]);
    let h = head as usize;
    if !check_list_lock(&inner, api, lock as usize) || h == 0 {
        if h == 0 {
            inner.violation(Rule::BadParameter, format!("{api} with a null ListHead"));
        }
        inner.trace_result(idx, "0x0".into());
        return std::ptr::null_mut();
    }
    let _g = LISTS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let first = get(h);
    if first != 0 {
        put(h, get(first));
    }
    inner.trace_result(idx, hex(first as u64));
    first as *mut c_void
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Host;
    use crate::machine::HostConfig;
    use crate::native::dispatch::check_critical_regions;

    fn host() -> Host {
        Host::load(&super::super::ndis::tests::tiny_image(), HostConfig::default()).expect("loads")
    }

    fn rules(h: &Host) -> Vec<Rule> {
        h.violations().iter().map(|v| v.rule).collect()
    }

    #[test]
    fn memcpy_over_overlapping_ranges_is_a_finding_and_memmove_is_not() {
        let h = host();
        let moved = h
            .run(0, "memmove", |_| {
                let mut b: Vec<u8> = (0..16).collect();
                let p = b.as_mut_ptr().cast::<c_void>();
                memmove(p.wrapping_byte_add(2), p, 8);
                b
            })
            .expect("runs");
        assert_eq!(&moved[..10], &[0, 1, 0, 1, 2, 3, 4, 5, 6, 7]);
        assert!(h.violations().is_empty(), "{:?}", h.violations());
        h.run(0, "memcpy", |_| {
            let mut b = [0u8; 16];
            let p = b.as_mut_ptr().cast::<c_void>();
            memcpy(p.wrapping_byte_add(2), p, 8);
            memset(std::ptr::null_mut(), 0, 4);
        })
        .expect("runs");
        let v = h.violations();
        assert_eq!(rules(&h), [Rule::BadParameter, Rule::BadParameter], "{v:?}");
        assert!(v.first().is_some_and(|v| v.message.contains("overlapping")), "{v:?}");
        assert!(v.get(1).is_some_and(|v| v.message.contains("null destination")), "{v:?}");
    }

    #[test]
    fn a_critical_region_left_entered_or_left_twice_is_a_finding() {
        let h = host();
        h.run(0, "regions", |inner| {
            let before = critical_depth();
            KeEnterCriticalRegion();
            KeLeaveCriticalRegion();
            check_critical_regions(inner, "Balanced", before);
            KeEnterCriticalRegion();
            check_critical_regions(inner, "Unbalanced", before);
            KeLeaveCriticalRegion();
        })
        .expect("runs");
        let v = h.violations();
        assert_eq!(rules(&h), [Rule::Apc, Rule::Apc], "{v:?}");
        assert!(v.first().is_some_and(|v| v.message.starts_with("Unbalanced returned with 1")), "{v:?}");
        assert!(v.get(1).is_some_and(|v| v.message.contains("without a matching")), "{v:?}");
    }

    #[test]
    fn string_routines_compare_as_documented_at_their_irql() {
        let h = host();
        let (eq, ne, cmp) = h
            .run(0, "strings", |_| {
                let a: Vec<u16> = "RlProt".encode_utf16().collect();
                let b: Vec<u16> = "RLPROT".encode_utf16().collect();
                // CAST: short constants.
                let s = |v: &Vec<u16>| UNICODE_STRING {
                    Length: (v.len() * 2) as u16,
                    MaximumLength: (v.len() * 2) as u16,
                    Buffer: v.as_ptr().cast_mut(),
                };
                let (x, y) = (s(&a), s(&b));
                (RtlEqualUnicodeString(&x, &y, 1), RtlEqualUnicodeString(&x, &y, 0), RtlCompareUnicodeString(&x, &y, 0))
            })
            .expect("runs");
        assert_eq!((eq, ne), (1, 0));
        assert!(cmp > 0, "'l' sorts after 'L'");
        assert!(h.violations().is_empty());
        h.run(0, "at dispatch", |_| {
            cpu::set_irql(DISPATCH);
            let e = UNICODE_STRING { Length: 0, MaximumLength: 0, Buffer: std::ptr::null_mut() };
            RtlEqualUnicodeString(&e, &e, 0);
            cpu::set_irql(PASSIVE);
        })
        .expect("runs");
        assert_eq!(rules(&h), [Rule::Irql]);
    }

    #[test]
    fn interlocked_lists_insert_and_remove_in_order() {
        let h = host();
        let order = h
            .run(0, "lists", |_| {
                // A LIST_ENTRY head and two entries, 16 bytes each, and a spin lock.
                let mut mem = vec![0usize; 7];
                let base = mem.as_mut_ptr() as usize;
                let (hp, e0, e1, lock) = (base, base + 16, base + 32, (base + 48) as *mut usize);
                put(hp, hp);
                put(hp + 8, hp);
                let hv = hp as *mut c_void;
                let first = ExInterlockedInsertTailList(hv, e0 as *mut c_void, lock) as usize;
                let second = ExInterlockedInsertTailList(hv, e1 as *mut c_void, lock) as usize;
                let a = ExInterlockedRemoveHeadList(hv, lock) as usize;
                let b = ExInterlockedRemoveHeadList(hv, lock) as usize;
                let c = ExInterlockedRemoveHeadList(hv, lock) as usize;
                drop(mem);
                (first, second == e0, a == e0, b == e1, c)
            })
            .expect("runs");
        assert_eq!(order, (0, true, true, true, 0));
        assert!(h.violations().is_empty(), "{:?}", h.violations());
    }

    #[test]
    fn ndis_memory_goes_back_through_ndis_free_memory_only() {
        let h = host();
        h.run(0, "memory", |inner| {
            let mut p: *mut c_void = std::ptr::null_mut();
            assert_eq!(super::super::ndis_extra::tests_alloc(&mut p, 64), 0);
            super::super::ke::pool_free(inner, "ExFreePoolWithTag", p, None);
            let q = super::super::ke::pool_alloc(inner, "ExAllocatePoolWithTag", 32, 0x7465_7354);
            super::super::ke::pool_free(inner, "NdisFreeMemory", q, None);
        })
        .expect("runs");
        let v = h.violations();
        assert_eq!(rules(&h), [Rule::BadFree, Rule::BadFree], "{v:?}");
        assert!(v.first().is_some_and(|v| v.message.contains("allocated with NdisAllocateMemoryWithTag")), "{v:?}");
        assert!(v.get(1).is_some_and(|v| v.message.contains("allocated with ExAllocatePoolWithTag")), "{v:?}");
    }
}

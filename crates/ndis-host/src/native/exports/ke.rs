//! Executive, kernel and run-time library exports: pool, spin locks, bug checks, debug output.

use super::super::memory::read_cstr;
use super::*;

export_table! {
    "ntoskrnl.exe": ExAllocatePoolWithTag,
    "ntoskrnl.exe": ExFreePoolWithTag,
    "ntoskrnl.exe": ExFreePool,
    "ntoskrnl.exe": MmGetSystemRoutineAddress,
    "ntoskrnl.exe": KeBugCheckEx,
    "ntoskrnl.exe": DbgPrintEx,
    "ntoskrnl.exe": DbgPrint,
    "ntoskrnl.exe": KeInitializeSpinLock,
    "ntoskrnl.exe": KeAcquireSpinLockRaiseToDpc,
    "ntoskrnl.exe": KeReleaseSpinLock,
    "ntoskrnl.exe": KeAcquireSpinLockAtDpcLevel,
    "ntoskrnl.exe": KeReleaseSpinLockFromDpcLevel,
    "ntoskrnl.exe": RtlInitUnicodeString,
    "ntoskrnl.exe": KeQueryPerformanceCounter,
}

// ---------------------------------------------------------------- pool

pub(super) fn pool_alloc(inner: &Inner, api: &'static str, size: usize, tag: u32) -> *mut c_void {
    if !inner.require_irql_at_most(api, DISPATCH) {
        return std::ptr::null_mut();
    }
    if tag == 0 {
        inner.violation(Rule::BadParameter, format!("{api} with tag 0"));
    }
    if inner.inject(api) {
        return std::ptr::null_mut();
    }
    if let Some(limit) = inner.config.pool_limit {
        let used: usize = inner.state().pool.values().map(|b| b.size).sum();
        if used.saturating_add(size) > limit {
            return std::ptr::null_mut();
        }
    }
    let Some(block) = HostBlock::new(size, 16) else { return std::ptr::null_mut() };
    let addr = block.addr();
    inner.state().pool.insert(addr, PoolBlock { block, tag, size, api });
    addr as *mut c_void
}

pub(super) fn pool_free(inner: &Inner, api: &str, p: *mut c_void, tag: Option<u32>) {
    if !inner.require_irql_at_most(api, DISPATCH) {
        return;
    }
    let removed = {
        let mut st = inner.state();
        let removed = st.pool.remove(p as usize);
        if let Some(b) = &removed {
            // SAFETY: the block was the driver's and is being freed: nobody may use it any more.
            unsafe { super::super::memory::fill(b.block.addr(), b.size, crate::machine::FREED_POOL_POISON) };
            if st.freed_pool.len() == crate::machine::FREED_POOL_KEPT {
                st.freed_pool.pop_front();
                st.quarantine.pop_front();
            }
            st.freed_pool.push_back((b.block.addr(), b.size));
        }
        removed
    };
    // The memory stays in quarantine (see State::quarantine); the record keeps only its tag.
    let removed = removed.map(|b| {
        let kept = (b.tag, b.api);
        inner.state().quarantine.push_back(b.block);
        kept
    });
    match removed {
        None => inner
            .violation(Rule::BadFree, format!("{api}({}) frees memory that is not an allocated pool block", ptr(p))),
        Some((block_tag, block_api)) => {
            // NDIS memory goes back through NdisFreeMemory, kernel pool through ExFreePool(WithTag).
            let ndis_block = block_api.starts_with("NdisAllocateMemory");
            if ndis_block != api.starts_with("Ndis") {
                inner.violation(Rule::BadFree, format!("{api}({}) frees a block allocated with {}", ptr(p), block_api));
            }
            if let Some(t) = tag.filter(|&t| t != block_tag) {
                inner.violation(
                    Rule::BadFree,
                    format!(
                        "{api}({}) with tag '{}' frees a block allocated with tag '{}'",
                        ptr(p),
                        crate::machine::tag_text(t),
                        crate::machine::tag_text(block_tag)
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
        &[("PoolType", pool_type.into()), ("NumberOfBytes", size.into()), ("Tag", Arg::Tag(tag))],
    );
    // NonPagedPool (0), NonPagedPoolNx (512), NonPagedPoolNxCacheAligned (516) are resident; paged pool (1)
    // may not be touched at DISPATCH_LEVEL, which the driver does.
    if pool_type != 0 && pool_type != 512 && pool_type != 516 {
        inner.violation(
            Rule::BadParameter,
            format!("ExAllocatePoolWithTag with pool type {pool_type}: rawlink needs non-paged pool"),
        );
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
        &[("Flags", hex(flags)), ("NumberOfBytes", size.into()), ("Tag", Arg::Tag(tag))],
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
    inner.trace_call(Direction::DriverToHost, "ExFreePoolWithTag", &[("P", ptr(p)), ("Tag", Arg::Tag(tag))]);
    pool_free(&inner, "ExFreePoolWithTag", p, Some(tag));
}

extern "win64" fn ExFreePool(p: *mut c_void) {
    let inner = current();
    inner.trace_call(Direction::DriverToHost, "ExFreePool", &[("P", ptr(p))]);
    pool_free(&inner, "ExFreePool", p, None);
}

extern "win64" fn MmGetSystemRoutineAddress(name: *mut UNICODE_STRING) -> *mut c_void {
    let inner = current();
    // SAFETY: the driver passes a UNICODE_STRING it owns (the routine's contract).
    let n = unsafe { unicode(name) }.unwrap_or_default();
    let idx = inner.trace_call(
        Direction::DriverToHost,
        "MmGetSystemRoutineAddress",
        &[("SystemRoutineName", n.as_str().into())],
    );
    inner.require_irql("MmGetSystemRoutineAddress", PASSIVE);
    // An injected fault: the routine is not found, as on a Windows that lacks it.
    let addr = match n.as_str() {
        _ if inner.inject("MmGetSystemRoutineAddress") => 0,
        "ExAllocatePool2" if inner.config.ex_allocate_pool2 => ExAllocatePool2 as *const () as usize,
        other => Exports.resolve("ntoskrnl.exe", other).unwrap_or(0),
    };
    inner.trace_result(idx, hex(addr as u64));
    addr as *mut c_void
}

// ---------------------------------------------------------------- bug checks and debug output

extern "win64" fn KeBugCheckEx(code: u32, p1: u64, p2: u64, p3: u64, p4: u64) -> ! {
    let inner = current();
    inner.trace_call(
        Direction::DriverToHost,
        "KeBugCheckEx",
        &[("BugCheckCode", hex(code)), ("P1", hex(p1)), ("P2", hex(p2)), ("P3", hex(p3)), ("P4", hex(p4))],
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
                if spec.contains("I64") || spec.contains("ll") {
                    out.push_str(&(v as i64).to_string())
                } else {
                    out.push_str(&(v as i32).to_string())
                }
            }
            'u' => {
                let v = arg();
                it.next();
                if spec.contains("I64") || spec.contains("ll") {
                    out.push_str(&v.to_string())
                } else {
                    out.push_str(&(v as u32).to_string())
                }
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

extern "win64" fn DbgPrintEx(
    component: u32,
    level: u32,
    format: *const u8,
    a0: u64,
    a1: u64,
    a2: u64,
    a3: u64,
    a4: u64,
) -> u32 {
    let inner = current();
    // SAFETY: DbgPrintEx's format is a NUL-terminated string from the driver.
    let f = unsafe { read_cstr(format as usize, 4096) };
    let text = kprintf(&f, &[a0, a1, a2, a3, a4]);
    inner.trace_call(
        Direction::DriverToHost,
        "DbgPrintEx",
        &[("ComponentId", hex(component)), ("Level", level.into()), ("Text", text.trim_end().into())],
    );
    0
}

extern "win64" fn DbgPrint(format: *const u8, a0: u64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> u32 {
    let inner = current();
    // SAFETY: DbgPrint's format is a NUL-terminated string from the driver.
    let f = unsafe { read_cstr(format as usize, 4096) };
    let text = kprintf(&f, &[a0, a1, a2, a3, a4, a5]);
    inner.trace_call(Direction::DriverToHost, "DbgPrint", &[("Text", text.trim_end().into())]);
    0
}

// ---------------------------------------------------------------- spin locks

extern "win64" fn KeInitializeSpinLock(lock: *mut usize) {
    // SAFETY: the driver passes its KSPIN_LOCK.
    unsafe { write_obj(lock as usize, 0usize) };
}

thread_local! {
    /// This thread's id, the holder recorded for a spin lock (std::thread::current() clones an Arc per call).
    static ME: std::thread::ThreadId = std::thread::current().id();
}

/// A spin lock inside freed pool: the finding `State::freed_object` reports, from a state lock already held.
fn freed_lock(inner: &Inner, st: std::sync::MutexGuard<'_, crate::machine::State>, api: &str, lock: *mut usize) {
    drop(st);
    inner.violation(
        Rule::UseAfterFree,
        format!("{api}({:#x}): the spin lock lies in a pool block the driver already freed", lock as usize),
    );
}

/// Takes `lock` for this processor: one state lock on the fast path (the freed-pool check, the held-lock
/// table and the lock word together).
fn acquire(inner: &Inner, api: &str, lock: *mut usize) {
    let me = ME.with(|m| *m);
    let key = lock as usize;
    loop {
        let mut st = inner.state();
        if st.in_freed_pool(key) {
            return freed_lock(inner, st, api, lock);
        }
        match st.spin_locks.entry(key) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(me);
                // SAFETY: the driver's KSPIN_LOCK; a held lock is non-zero as on Windows.
                unsafe { write_obj(key, 1usize) };
                return;
            }
            std::collections::hash_map::Entry::Occupied(o) if *o.get() == me => {
                drop(st);
                inner.violation(
                    Rule::SpinLock,
                    format!(
                        "{api}({}) acquires a spin lock this processor already holds (deadlock on Windows)",
                        ptr(lock.cast())
                    ),
                );
                return;
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                drop(st);
                std::thread::yield_now();
            }
        }
    }
}

/// Releases `lock`: one state lock, as [`acquire`].
fn release(inner: &Inner, api: &str, lock: *mut usize) {
    let me = ME.with(|m| *m);
    let key = lock as usize;
    let mut st = inner.state();
    if st.in_freed_pool(key) {
        return freed_lock(inner, st, api, lock);
    }
    if st.spin_locks.get(&key) == Some(&me) {
        st.spin_locks.remove(&key);
        // SAFETY: the driver's KSPIN_LOCK.
        unsafe { write_obj(key, 0usize) };
        return;
    }
    drop(st);
    inner.violation(
        Rule::SpinLock,
        format!("{api}({}) releases a spin lock this processor does not hold", ptr(lock.cast())),
    );
}

extern "win64" fn KeAcquireSpinLockRaiseToDpc(lock: *mut usize) -> u8 {
    let inner = current();
    let old = cpu::irql();
    inner.trace_call(Direction::DriverToHost, "KeAcquireSpinLockRaiseToDpc", &[("SpinLock", ptr(lock.cast()))]);
    inner.require_irql_at_most("KeAcquireSpinLockRaiseToDpc", DISPATCH);
    cpu::set_irql(DISPATCH);
    acquire(&inner, "KeAcquireSpinLockRaiseToDpc", lock);
    old
}

extern "win64" fn KeReleaseSpinLock(lock: *mut usize, new_irql: u8) {
    let inner = current();
    inner.trace_call(
        Direction::DriverToHost,
        "KeReleaseSpinLock",
        &[("SpinLock", ptr(lock.cast())), ("NewIrql", new_irql.into())],
    );
    inner.require_irql("KeReleaseSpinLock", DISPATCH);
    release(&inner, "KeReleaseSpinLock", lock);
    if new_irql > DISPATCH {
        inner.violation(Rule::Irql, format!("KeReleaseSpinLock to IRQL {new_irql}, above DISPATCH_LEVEL"));
    }
    cpu::set_irql(new_irql.min(DISPATCH));
}

extern "win64" fn KeAcquireSpinLockAtDpcLevel(lock: *mut usize) {
    let inner = current();
    inner.trace_call(Direction::DriverToHost, "KeAcquireSpinLockAtDpcLevel", &[("SpinLock", ptr(lock.cast()))]);
    inner.require_irql("KeAcquireSpinLockAtDpcLevel", DISPATCH);
    acquire(&inner, "KeAcquireSpinLockAtDpcLevel", lock);
}

extern "win64" fn KeReleaseSpinLockFromDpcLevel(lock: *mut usize) {
    let inner = current();
    inner.trace_call(Direction::DriverToHost, "KeReleaseSpinLockFromDpcLevel", &[("SpinLock", ptr(lock.cast()))]);
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

#[cfg(test)]
mod tests {
    use super::kprintf;

    #[test]
    fn kernel_printf_formats_integers() {
        assert_eq!(kprintf("a %d b %u c %x %%", &[(-5i64) as u64, 7, 255]), "a -5 b 7 c 0xff %");
        assert_eq!(kprintf("%I64x", &[0x1_0000_0000]), "0x100000000");
    }
}

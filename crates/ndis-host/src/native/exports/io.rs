//! I/O manager exports: device objects, symbolic links, IRP completion and cancellation, MDLs; and the
//! native half of the emulated I/O manager's calls into the driver (dispatch and cancel routines).

use super::super::dispatch::{acquire_cancel_lock, release_cancel_lock};
use super::super::irp::MdlBlock;
use super::*;
use std::mem::offset_of;

export_table! {
    "ntoskrnl.exe": IoCreateDevice,
    "ntoskrnl.exe": IoDeleteDevice,
    "ntoskrnl.exe": IoCreateSymbolicLink,
    "ntoskrnl.exe": IoDeleteSymbolicLink,
    "ntoskrnl.exe": IofCompleteRequest,
    "ntoskrnl.exe": IoAcquireCancelSpinLock,
    "ntoskrnl.exe": IoReleaseCancelSpinLock,
    "ntoskrnl.exe": IoAllocateMdl,
    "ntoskrnl.exe": IoFreeMdl,
    "ntoskrnl.exe": MmBuildMdlForNonPagedPool,
    "ntoskrnl.exe": MmMapLockedPagesSpecifyCache,
    "ntoskrnl.exe": MmUnmapLockedPages,
    "ntoskrnl.exe": IoCsqInitialize,
    "ntoskrnl.exe": IoCsqInsertIrp,
    "ntoskrnl.exe": IoCsqRemoveIrp,
    "ntoskrnl.exe": IoCsqRemoveNextIrp,
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
        &[
            ("DeviceExtensionSize", extension_size.into()),
            ("DeviceName", n.as_deref().map_or(Arg::Word("NULL"), Arg::Text)),
            ("DeviceType", hex(device_type)),
            ("DeviceCharacteristics", hex(characteristics)),
            ("Exclusive", exclusive.into()),
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
        let Some(block) = HostBlock::new(dev_size + extension_size as usize, 16) else {
            return ST_INSUFFICIENT_RESOURCES;
        };
        let d = block.addr();
        let list_head = driver as usize + offset_of!(DRIVER_OBJECT, DeviceObject);
        // SAFETY: `block` is a fresh zeroed block large enough for a DEVICE_OBJECT (valid for any bits).
        let mut dev: DEVICE_OBJECT = unsafe { read_obj(d) };
        dev.Type = 3; // IO_TYPE_DEVICE
                      // CAST: the structure size fits a u16.
        dev.Size = (dev_size + extension_size as usize) as u16;
        dev.ReferenceCount = 0;
        dev.DriverObject = driver;
        // SAFETY: `driver` is the machine's driver object (checked above).
        dev.NextDevice = unsafe { read_obj(list_head) };
        dev.Flags = DO_DEVICE_INITIALIZING;
        dev.Characteristics = characteristics;
        dev.DeviceExtension = if extension_size > 0 { (d + dev_size) as *mut c_void } else { std::ptr::null_mut() };
        dev.DeviceType = device_type;
        dev.StackSize = 1;
        // SAFETY: as above, the fresh block.
        unsafe { write_obj(d, dev) };
        // SAFETY: as above, the machine's driver object.
        unsafe { write_obj(list_head, d) };
        // SAFETY: `out` is the driver's out pointer (non-null, checked above).
        unsafe { write_obj(out as usize, d) };
        st.devices.push(DeviceRec { block, name: n.clone() });
        ST_SUCCESS
    })();
    inner.trace_result(idx, Arg::Status(result));
    result
}

extern "win64" fn IoDeleteDevice(device: *mut DEVICE_OBJECT) {
    let inner = current();
    inner.trace_call(Direction::DriverToHost, "IoDeleteDevice", &[("DeviceObject", ptr(device.cast()))]);
    inner.require_irql("IoDeleteDevice", PASSIVE);
    let mut st = inner.state();
    let Some(pos) = st.devices.iter().position(|d| d.block.addr() == device as usize) else {
        drop(st);
        inner.violation(
            Rule::BadParameter,
            format!("IoDeleteDevice({}) on an object that is not a live device", ptr(device.cast())),
        );
        return;
    };
    let rec = st.devices.remove(pos);
    // Unlink from the driver object's device list.
    // The driver object and every listed device block are host-owned and alive; the list holds only devices
    // created by IoCreateDevice, so each link below is a live DEVICE_OBJECT's NextDevice.
    let head = inner.driver_object.addr() + offset_of!(DRIVER_OBJECT, DeviceObject);
    let link = |dev: usize| dev + offset_of!(DEVICE_OBJECT, NextDevice);
    // SAFETY: `device` is a live device block (found above).
    let next: usize = unsafe { read_obj(link(device as usize)) };
    let mut at = head;
    loop {
        // SAFETY: `at` is the list head or a live device's NextDevice (see above).
        let p: usize = unsafe { read_obj(at) };
        if p == 0 {
            break;
        }
        if p == device as usize {
            // SAFETY: as above.
            unsafe { write_obj(at, next) };
            break;
        }
        at = link(p);
    }
    drop(st);
    drop(rec);
}

extern "win64" fn IoCreateSymbolicLink(link: *mut UNICODE_STRING, target: *mut UNICODE_STRING) -> i32 {
    let inner = current();
    // SAFETY: driver-owned UNICODE_STRINGs per the routine's contract.
    let l = unsafe { unicode(link) };
    // SAFETY: as above.
    let t = unsafe { unicode(target) };
    let (l, t) = (l.unwrap_or_default(), t.unwrap_or_default());
    let idx = inner.trace_call(
        Direction::DriverToHost,
        "IoCreateSymbolicLink",
        &[("SymbolicLinkName", l.as_str().into()), ("DeviceName", t.as_str().into())],
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
    inner.trace_result(idx, Arg::Status(r));
    r
}

extern "win64" fn IoDeleteSymbolicLink(link: *mut UNICODE_STRING) -> i32 {
    let inner = current();
    // SAFETY: a driver-owned UNICODE_STRING per the routine's contract.
    let l = unsafe { unicode(link) }.unwrap_or_default();
    let idx =
        inner.trace_call(Direction::DriverToHost, "IoDeleteSymbolicLink", &[("SymbolicLinkName", l.as_str().into())]);
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
    inner.trace_result(idx, Arg::Status(r));
    r
}

extern "win64" fn IofCompleteRequest(irp: *mut IRP, boost: i8) {
    let inner = current();
    let idx = inner.trace_call(
        Direction::DriverToHost,
        "IofCompleteRequest",
        &[("Irp", ptr(irp.cast())), ("PriorityBoost", boost.into())],
    );
    inner.require_irql_at_most("IofCompleteRequest", DISPATCH);
    super::ndis::check_irp_mdl_not_in_flight(&inner, irp as usize);
    // The I/O manager's side: checks, PendingReturned, and the signal to whoever waits for the request.
    if let Some((s, info)) = crate::io::complete_request(&inner, irp as usize) {
        inner.trace_result(idx, Arg::IoStatus(s, info as u64));
    }
}

// ---------------------------------------------------------------- cancel spin lock

extern "win64" fn IoAcquireCancelSpinLock(irql: *mut u8) {
    let inner = current();
    inner.trace_call(Direction::DriverToHost, "IoAcquireCancelSpinLock", &[("Irql", ptr(irql.cast()))]);
    inner.require_irql_at_most("IoAcquireCancelSpinLock", DISPATCH);
    let old = cpu::irql();
    cpu::set_irql(DISPATCH);
    acquire_cancel_lock(&inner, "IoAcquireCancelSpinLock");
    if irql.is_null() {
        inner.violation(Rule::BadParameter, "IoAcquireCancelSpinLock with a null Irql pointer");
        return;
    }
    // SAFETY: the driver's KIRQL out pointer (non-null, checked).
    unsafe { write_obj(irql as usize, old) };
}

extern "win64" fn IoReleaseCancelSpinLock(irql: u8) {
    let inner = current();
    inner.trace_call(Direction::DriverToHost, "IoReleaseCancelSpinLock", &[("Irql", irql.into())]);
    inner.require_irql("IoReleaseCancelSpinLock", DISPATCH);
    release_cancel_lock(&inner, "IoReleaseCancelSpinLock");
    if irql > DISPATCH {
        inner.violation(Rule::Irql, format!("IoReleaseCancelSpinLock to IRQL {irql}, above DISPATCH_LEVEL"));
    }
    cpu::set_irql(irql.min(DISPATCH));
}

// ---------------------------------------------------------------- MDLs

extern "win64" fn IoAllocateMdl(
    va: *mut c_void,
    length: u32,
    secondary: u8,
    charge_quota: u8,
    irp: *mut IRP,
) -> *mut MDL {
    let inner = current();
    let idx = inner.trace_call(
        Direction::DriverToHost,
        "IoAllocateMdl",
        &[
            ("VirtualAddress", ptr(va)),
            ("Length", length.into()),
            ("SecondaryBuffer", secondary.into()),
            ("ChargeQuota", charge_quota.into()),
            ("Irp", ptr(irp.cast())),
        ],
    );
    let r = (|| {
        if !inner.require_irql_at_most("IoAllocateMdl", DISPATCH) {
            return std::ptr::null_mut();
        }
        if length == 0 {
            inner.violation(Rule::BadParameter, "IoAllocateMdl with Length 0");
            return std::ptr::null_mut();
        }
        if inner.inject("IoAllocateMdl") {
            return std::ptr::null_mut();
        }
        // IoAllocateMdl fails lengths whose MDL would not fit (the documented limit is below 4 GiB - 1 page).
        let Some(m) = MdlBlock::build(va as usize, length, MDL_ALLOCATED_FIXED_SIZE, false) else {
            return std::ptr::null_mut();
        };
        let addr = m.addr();
        if !irp.is_null() {
            // The driver passes an IRP it owns, whose MdlAddress chain holds valid MDLs; IoAllocateMdl
            // links the new MDL into it.
            let field = irp as usize + offset_of!(IRP, MdlAddress);
            // SAFETY: see above.
            let first: usize = unsafe { read_obj(field) };
            if secondary == 0 || first == 0 {
                // SAFETY: see above.
                unsafe { write_obj(field, addr) };
            } else {
                let mut p = first;
                loop {
                    // SAFETY: an MDL of the IRP's chain (see above).
                    let next: usize = unsafe { read_obj(p + offset_of!(MDL, Next)) };
                    if next == 0 {
                        break;
                    }
                    p = next;
                }
                // SAFETY: the chain's last MDL.
                unsafe { write_obj(p + offset_of!(MDL, Next), addr) };
            }
        }
        inner.state().io.driver_mdls.insert(addr, m);
        addr as *mut MDL
    })();
    inner.trace_result(idx, ptr(r.cast()));
    r
}

extern "win64" fn IoFreeMdl(mdl: *mut MDL) {
    let inner = current();
    inner.trace_call(Direction::DriverToHost, "IoFreeMdl", &[("Mdl", ptr(mdl.cast()))]);
    inner.require_irql_at_most("IoFreeMdl", DISPATCH);
    let removed = inner.state().io.driver_mdls.remove(&(mdl as usize));
    match removed {
        None => inner.violation(
            Rule::BadFree,
            format!("IoFreeMdl({}) frees an MDL IoAllocateMdl did not allocate", ptr(mdl.cast())),
        ),
        Some(m) => {
            if m.read().MdlFlags & MDL_PAGES_LOCKED != 0 {
                inner.violation(
                    Rule::BadFree,
                    format!("IoFreeMdl({}) frees an MDL whose pages are still locked", ptr(mdl.cast())),
                );
            }
        }
    }
}

/// Whether `va..va + len` lies in non-paged memory the driver may describe: its pool, its image, or a
/// buffer the I/O manager lent it.
fn is_nonpaged(inner: &Inner, va: usize, len: usize) -> bool {
    let end = va.saturating_add(len);
    if inner.image.contains(va) && (len == 0 || inner.image.contains(end - 1)) {
        return true;
    }
    let st = inner.state();
    st.pool.values().any(|b| va >= b.block.addr() && end <= b.block.addr() + b.size) || st.io.lent_range(va, end)
}

extern "win64" fn MmBuildMdlForNonPagedPool(mdl: *mut MDL) {
    let inner = current();
    inner.trace_call(
        Direction::DriverToHost,
        "MmBuildMdlForNonPagedPool",
        &[("MemoryDescriptorList", ptr(mdl.cast()))],
    );
    inner.require_irql_at_most("MmBuildMdlForNonPagedPool", DISPATCH);
    let st = inner.state();
    let Some(m) = st.io.driver_mdls.get(&(mdl as usize)) else {
        drop(st);
        inner.violation(
            Rule::BadParameter,
            format!("MmBuildMdlForNonPagedPool({}) on an MDL IoAllocateMdl did not allocate", ptr(mdl.cast())),
        );
        return;
    };
    let mut h = m.read();
    drop(st);
    let va = h.StartVa as usize + h.ByteOffset as usize;
    if h.MdlFlags & (MDL_PAGES_LOCKED | MDL_SOURCE_IS_NONPAGED_POOL | MDL_PARTIAL) != 0 {
        inner
            .violation(Rule::BadParameter, format!("MmBuildMdlForNonPagedPool on an MDL with flags {:#x}", h.MdlFlags));
    }
    if !is_nonpaged(&inner, va, h.ByteCount as usize) {
        inner.violation(
            Rule::BadParameter,
            format!("MmBuildMdlForNonPagedPool on {va:#x}+{}: not non-paged memory", h.ByteCount),
        );
    }
    h.MdlFlags |= MDL_SOURCE_IS_NONPAGED_POOL;
    h.MappedSystemVa = va as PVOID;
    let st = inner.state();
    if let Some(m) = st.io.driver_mdls.get(&(mdl as usize)) {
        m.write(h);
        m.fill_pfns();
    }
}

extern "win64" fn MmMapLockedPagesSpecifyCache(
    mdl: *mut MDL,
    access_mode: i8,
    cache_type: i32,
    requested: *mut c_void,
    bugcheck_on_failure: u32,
    priority: u32,
) -> *mut c_void {
    let inner = current();
    let idx = inner.trace_call(
        Direction::DriverToHost,
        "MmMapLockedPagesSpecifyCache",
        &[
            ("MemoryDescriptorList", ptr(mdl.cast())),
            ("AccessMode", access_mode.into()),
            ("CacheType", cache_type.into()),
            ("RequestedAddress", ptr(requested)),
            ("BugCheckOnFailure", bugcheck_on_failure.into()),
            ("Priority", hex(priority)),
        ],
    );
    let r = (|| {
        if access_mode != KernelMode {
            inner.violation(
                Rule::BadParameter,
                "MmMapLockedPagesSpecifyCache into user mode: a driver maps a request's MDL into system space only",
            );
            return std::ptr::null_mut();
        }
        if !inner.require_irql_at_most("MmMapLockedPagesSpecifyCache", DISPATCH) || mdl.is_null() {
            return std::ptr::null_mut();
        }
        if !requested.is_null() {
            inner.violation(Rule::BadParameter, "MmMapLockedPagesSpecifyCache with a RequestedAddress in kernel mode");
        }
        // SAFETY: the driver passes an MDL it owns (an IRP's or its own).
        let mut h: MDL = unsafe { read_obj(mdl as usize) };
        if h.MdlFlags & (MDL_PAGES_LOCKED | MDL_SOURCE_IS_NONPAGED_POOL | MDL_PARTIAL) == 0 {
            inner.violation(
                Rule::BadParameter,
                format!("MmMapLockedPagesSpecifyCache on an MDL whose pages are not locked (flags {:#x})", h.MdlFlags),
            );
        }
        if h.MdlFlags & MDL_MAPPED_TO_SYSTEM_VA != 0 {
            inner.violation(
                Rule::BadParameter,
                "MmMapLockedPagesSpecifyCache on an MDL already mapped; use MmGetSystemAddressForMdlSafe",
            );
            return h.MappedSystemVa;
        }
        if inner.inject("MmMapLockedPagesSpecifyCache") {
            return std::ptr::null_mut();
        }
        // One flat address space: the system mapping of the pages is the address they were described at.
        let va = h.StartVa as usize + h.ByteOffset as usize;
        h.MappedSystemVa = va as PVOID;
        h.MdlFlags |= MDL_MAPPED_TO_SYSTEM_VA;
        // SAFETY: as above.
        unsafe { write_obj(mdl as usize, h) };
        va as *mut c_void
    })();
    inner.trace_result(idx, ptr(r));
    r
}

extern "win64" fn MmUnmapLockedPages(base: *mut c_void, mdl: *mut MDL) {
    let inner = current();
    inner.trace_call(
        Direction::DriverToHost,
        "MmUnmapLockedPages",
        &[("BaseAddress", ptr(base)), ("MemoryDescriptorList", ptr(mdl.cast()))],
    );
    inner.require_irql_at_most("MmUnmapLockedPages", DISPATCH);
    if mdl.is_null() {
        inner.violation(Rule::BadParameter, "MmUnmapLockedPages with a null MDL");
        return;
    }
    // SAFETY: the driver passes the MDL it mapped.
    let mut h: MDL = unsafe { read_obj(mdl as usize) };
    if h.MdlFlags & MDL_MAPPED_TO_SYSTEM_VA == 0 || h.MappedSystemVa != base {
        inner.violation(
            Rule::BadParameter,
            format!("MmUnmapLockedPages({}) of an MDL not mapped at that address", ptr(base)),
        );
        return;
    }
    h.MdlFlags &= !MDL_MAPPED_TO_SYSTEM_VA;
    // SAFETY: as above.
    unsafe { write_obj(mdl as usize, h) };
}

// ---------------------------------------------------------------- cancel-safe queues (the kernel's csq library)

const IO_TYPE_CSQ_IRP_CONTEXT: u32 = 1;
const IO_TYPE_CSQ: u32 = 2;
/// `Tail.Overlay.DriverContext[3]`, where the library keeps the IRP's queue or context.
const DRIVER_CONTEXT_3: usize =
    std::mem::offset_of!(IRP, Tail) + std::mem::offset_of!(IRP_Tail_Overlay, u) + 3 * size_of::<usize>();
/// `Tail.Overlay.CurrentStackLocation`.
const CURRENT_STACK: usize = std::mem::offset_of!(IRP, Tail)
    + std::mem::offset_of!(IRP_Tail_Overlay, s)
    + std::mem::offset_of!(IRP_Tail_Overlay_s, u);

/// Calls one of the driver's IO_CSQ callbacks (nested, on this processor). The lock callbacks change the
/// IRQL on purpose, so only the trace is kept here; the spin lock routines they call check the IRQL.
fn csq_call(inner: &Inner, name: &str, f: usize, args: &[u64]) -> u64 {
    let idx = inner.trace_with(Direction::HostToDriver, Arg::Text(name), args.iter().map(|a| ("Arg", hex(*a))));
    // SAFETY: `f` is a callback the driver registered with IoCsqInitialize for exactly this call; every
    // argument is the driver's IO_CSQ, one of its IRPs, its peek context or a KIRQL (pointer).
    let r = unsafe { call::call(f, args) };
    inner.trace_result(idx, hex(r));
    r
}

/// A copy of the driver's IO_CSQ; `None` (and a violation) when it was not initialised.
fn csq_of(inner: &Inner, api: &str, csq: *mut IO_CSQ) -> Option<IO_CSQ> {
    if csq.is_null() {
        inner.violation(Rule::BadParameter, format!("{api} with a null IO_CSQ"));
        return None;
    }
    // SAFETY: the driver's IO_CSQ (the routine's contract).
    let q: IO_CSQ = unsafe { read_obj(csq as usize) };
    if q.Type != IO_TYPE_CSQ
        || q.CsqInsertIrp.is_none()
        || q.CsqRemoveIrp.is_none()
        || q.CsqPeekNextIrp.is_none()
        || q.CsqAcquireLock.is_none()
        || q.CsqReleaseLock.is_none()
        || q.CsqCompleteCanceledIrp.is_none()
    {
        inner.violation(
            Rule::BadParameter,
            format!("{api}({}) on an IO_CSQ that IoCsqInitialize did not set up", ptr(csq.cast())),
        );
        return None;
    }
    Some(q)
}

fn fnaddr<T>(f: Option<T>) -> usize
where
    T: Copy,
{
    // SAFETY: `T` is one of the IO_CSQ callback pointer types, each a plain function pointer.
    f.map_or(0, |g| unsafe { std::mem::transmute_copy::<T, usize>(&g) })
}

/// CsqAcquireLock(Csq, &Irql); returns the IRQL to hand back to CsqReleaseLock.
fn csq_lock(inner: &Inner, q: &IO_CSQ, csq: usize) -> u8 {
    let mut irql = 0u8;
    let p = std::ptr::addr_of_mut!(irql) as u64;
    csq_call(inner, "CsqAcquireLock", fnaddr(q.CsqAcquireLock), &[csq as u64, p]);
    irql
}

fn csq_unlock(inner: &Inner, q: &IO_CSQ, csq: usize, irql: u8) {
    csq_call(inner, "CsqReleaseLock", fnaddr(q.CsqReleaseLock), &[csq as u64, u64::from(irql)]);
}

fn cancel_cell(irp: usize) -> &'static std::sync::atomic::AtomicUsize {
    // SAFETY: the pointer-aligned CancelRoutine field of an IRP the driver owns, written only with
    // interlocked operations (IoSetCancelRoutine); used only while the IRP is queued.
    unsafe { std::sync::atomic::AtomicUsize::from_ptr((irp + std::mem::offset_of!(IRP, CancelRoutine)) as *mut usize) }
}

extern "win64" fn IoCsqInitialize(
    csq: *mut IO_CSQ,
    insert: PIO_CSQ_INSERT_IRP,
    remove: PIO_CSQ_REMOVE_IRP,
    peek: PIO_CSQ_PEEK_NEXT_IRP,
    acquire: PIO_CSQ_ACQUIRE_LOCK,
    release: PIO_CSQ_RELEASE_LOCK,
    complete_canceled: PIO_CSQ_COMPLETE_CANCELED_IRP,
) -> i32 {
    let inner = current();
    let idx = inner.trace_call(Direction::DriverToHost, "IoCsqInitialize", &[("Csq", ptr(csq.cast()))]);
    let r = if csq.is_null() {
        inner.violation(Rule::BadParameter, "IoCsqInitialize with a null IO_CSQ");
        ST_INVALID_PARAMETER
    } else {
        let q = IO_CSQ {
            Type: IO_TYPE_CSQ,
            CsqInsertIrp: insert,
            CsqRemoveIrp: remove,
            CsqPeekNextIrp: peek,
            CsqAcquireLock: acquire,
            CsqReleaseLock: release,
            CsqCompleteCanceledIrp: complete_canceled,
            ReservePointer: std::ptr::null_mut(),
        };
        // SAFETY: the driver's IO_CSQ storage (non-null).
        unsafe { write_obj(csq as usize, q) };
        ST_SUCCESS
    };
    inner.trace_result(idx, Arg::Status(r));
    r
}

/// The cancel routine IoCsqInsertIrp installs (`IopCsqCancelRoutine`).
extern "win64" fn csq_cancel_routine(_device: *mut DEVICE_OBJECT, irp: *mut IRP) {
    let inner = current();
    let irp = irp as usize;
    // SAFETY: the IRP being cancelled; IoCancelIrp set CancelIrql.
    let cancel_irql: u8 = unsafe { read_obj(irp + std::mem::offset_of!(IRP, CancelIrql)) };
    IoReleaseCancelSpinLock(cancel_irql);
    // SAFETY: the IRP's DriverContext[3], where IoCsqInsertIrp put its queue or context.
    let ctx: usize = unsafe { read_obj(irp + DRIVER_CONTEXT_3) };
    if ctx == 0 {
        inner.violation(Rule::Irp, format!("IRP {irp:#x} queued with IoCsqInsertIrp lost its DriverContext[3]"));
        return;
    }
    // SAFETY: DriverContext[3] points at the driver's IO_CSQ or IO_CSQ_IRP_CONTEXT, both starting with Type.
    let ty: u32 = unsafe { read_obj(ctx) };
    let csq = if ty == IO_TYPE_CSQ_IRP_CONTEXT {
        // SAFETY: an IO_CSQ_IRP_CONTEXT (Type checked).
        let c: IO_CSQ_IRP_CONTEXT = unsafe { read_obj(ctx) };
        c.Csq as usize
    } else {
        ctx
    };
    let Some(q) = csq_of(&inner, "IoCsq cancel routine", csq as *mut IO_CSQ) else { return };
    let irql = csq_lock(&inner, &q, csq);
    csq_call(&inner, "CsqRemoveIrp", fnaddr(q.CsqRemoveIrp), &[csq as u64, irp as u64]);
    if ty == IO_TYPE_CSQ_IRP_CONTEXT {
        // SAFETY: the IO_CSQ_IRP_CONTEXT's Irp field.
        unsafe { write_obj(ctx + std::mem::offset_of!(IO_CSQ_IRP_CONTEXT, Irp), 0usize) };
    }
    // SAFETY: the IRP's DriverContext[3].
    unsafe { write_obj(irp + DRIVER_CONTEXT_3, 0usize) };
    csq_unlock(&inner, &q, csq, irql);
    csq_call(&inner, "CsqCompleteCanceledIrp", fnaddr(q.CsqCompleteCanceledIrp), &[csq as u64, irp as u64]);
}

extern "win64" fn IoCsqInsertIrp(csq: *mut IO_CSQ, irp: *mut IRP, context: *mut IO_CSQ_IRP_CONTEXT) {
    let inner = current();
    inner.trace_call(
        Direction::DriverToHost,
        "IoCsqInsertIrp",
        &[("Csq", ptr(csq.cast())), ("Irp", ptr(irp.cast())), ("Context", ptr(context.cast()))],
    );
    inner.require_irql_at_most("IoCsqInsertIrp", DISPATCH);
    let Some(q) = csq_of(&inner, "IoCsqInsertIrp", csq) else { return };
    if irp.is_null() {
        inner.violation(Rule::BadParameter, "IoCsqInsertIrp with a null IRP");
        return;
    }
    let (csq, irp) = (csq as usize, irp as usize);
    let irql = csq_lock(&inner, &q, csq);
    if context.is_null() {
        // SAFETY: the driver's IRP (it owns it in its dispatch routine).
        unsafe { write_obj(irp + DRIVER_CONTEXT_3, csq) };
    } else {
        let c = IO_CSQ_IRP_CONTEXT { Type: IO_TYPE_CSQ_IRP_CONTEXT, Irp: irp as PIRP, Csq: csq as PIO_CSQ };
        // SAFETY: the driver's IO_CSQ_IRP_CONTEXT (non-null).
        unsafe { write_obj(context as usize, c) };
        // SAFETY: as above, the IRP.
        unsafe { write_obj(irp + DRIVER_CONTEXT_3, context as usize) };
    }
    csq_call(&inner, "CsqInsertIrp", fnaddr(q.CsqInsertIrp), &[csq as u64, irp as u64]);
    // IoMarkIrpPending.
    // SAFETY: the IRP's current stack location, set by the I/O manager.
    let sl: usize = unsafe { read_obj(irp + CURRENT_STACK) };
    if sl != 0 {
        let control = sl + std::mem::offset_of!(IO_STACK_LOCATION, Control);
        // SAFETY: the current stack location's Control byte.
        let c: u8 = unsafe { read_obj(control) };
        // SAFETY: as above.
        unsafe { write_obj(control, c | SL_PENDING_RETURNED) };
    }
    let old = cancel_cell(irp).swap(csq_cancel_routine as *const () as usize, std::sync::atomic::Ordering::SeqCst);
    if old != 0 {
        inner.violation(Rule::Irp, format!("IoCsqInsertIrp({irp:#x}) on an IRP that already has a cancel routine"));
    }
    // SAFETY: the IRP's Cancel flag.
    let cancelled: u8 = unsafe { read_obj(irp + std::mem::offset_of!(IRP, Cancel)) };
    if cancelled != 0 && cancel_cell(irp).swap(0, std::sync::atomic::Ordering::SeqCst) != 0 {
        // Cancelled before the routine was set: take it back out and complete it here.
        csq_call(&inner, "CsqRemoveIrp", fnaddr(q.CsqRemoveIrp), &[csq as u64, irp as u64]);
        if !context.is_null() {
            // SAFETY: the context's Irp field.
            unsafe { write_obj(context as usize + std::mem::offset_of!(IO_CSQ_IRP_CONTEXT, Irp), 0usize) };
        }
        // SAFETY: the IRP's DriverContext[3].
        unsafe { write_obj(irp + DRIVER_CONTEXT_3, 0usize) };
        csq_unlock(&inner, &q, csq, irql);
        csq_call(&inner, "CsqCompleteCanceledIrp", fnaddr(q.CsqCompleteCanceledIrp), &[csq as u64, irp as u64]);
        return;
    }
    csq_unlock(&inner, &q, csq, irql);
}

/// Takes `irp` off the queue if its cancel routine has not started (under the queue's lock).
fn csq_take(inner: &Inner, q: &IO_CSQ, csq: usize, irp: usize) -> bool {
    if cancel_cell(irp).swap(0, std::sync::atomic::Ordering::SeqCst) == 0 {
        return false;
    }
    csq_call(inner, "CsqRemoveIrp", fnaddr(q.CsqRemoveIrp), &[csq as u64, irp as u64]);
    // SAFETY: the IRP's DriverContext[3] (the IRP is queued, so the driver owns it).
    let ctx: usize = unsafe { read_obj(irp + DRIVER_CONTEXT_3) };
    if ctx != 0 && ctx != csq {
        // SAFETY: DriverContext[3] holds the IO_CSQ_IRP_CONTEXT IoCsqInsertIrp filled.
        unsafe { write_obj(ctx + std::mem::offset_of!(IO_CSQ_IRP_CONTEXT, Irp), 0usize) };
    }
    // SAFETY: as above.
    unsafe { write_obj(irp + DRIVER_CONTEXT_3, 0usize) };
    true
}

extern "win64" fn IoCsqRemoveIrp(csq: *mut IO_CSQ, context: *mut IO_CSQ_IRP_CONTEXT) -> *mut IRP {
    let inner = current();
    let idx = inner.trace_call(
        Direction::DriverToHost,
        "IoCsqRemoveIrp",
        &[("Csq", ptr(csq.cast())), ("Context", ptr(context.cast()))],
    );
    inner.require_irql_at_most("IoCsqRemoveIrp", DISPATCH);
    let Some(q) = csq_of(&inner, "IoCsqRemoveIrp", csq) else { return std::ptr::null_mut() };
    if context.is_null() {
        inner.violation(Rule::BadParameter, "IoCsqRemoveIrp with a null context");
        return std::ptr::null_mut();
    }
    let csq = csq as usize;
    let irql = csq_lock(&inner, &q, csq);
    // SAFETY: the driver's IO_CSQ_IRP_CONTEXT (non-null).
    let c: IO_CSQ_IRP_CONTEXT = unsafe { read_obj(context as usize) };
    let irp = c.Irp as usize;
    let got = irp != 0 && csq_take(&inner, &q, csq, irp);
    csq_unlock(&inner, &q, csq, irql);
    let r = if got { irp } else { 0 };
    inner.trace_result(idx, hex(r as u64));
    r as *mut IRP
}

extern "win64" fn IoCsqRemoveNextIrp(csq: *mut IO_CSQ, peek_context: *mut c_void) -> *mut IRP {
    let inner = current();
    let idx = inner.trace_call(
        Direction::DriverToHost,
        "IoCsqRemoveNextIrp",
        &[("Csq", ptr(csq.cast())), ("PeekContext", ptr(peek_context))],
    );
    inner.require_irql_at_most("IoCsqRemoveNextIrp", DISPATCH);
    let Some(q) = csq_of(&inner, "IoCsqRemoveNextIrp", csq) else { return std::ptr::null_mut() };
    let csq = csq as usize;
    let irql = csq_lock(&inner, &q, csq);
    let mut irp =
        csq_call(&inner, "CsqPeekNextIrp", fnaddr(q.CsqPeekNextIrp), &[csq as u64, 0, peek_context as u64]) as usize;
    while irp != 0 && !csq_take(&inner, &q, csq, irp) {
        // Its cancel routine owns it: skip to the next one.
        irp = csq_call(
            &inner,
            "CsqPeekNextIrp",
            fnaddr(q.CsqPeekNextIrp),
            &[csq as u64, irp as u64, peek_context as u64],
        ) as usize;
    }
    csq_unlock(&inner, &q, csq, irql);
    inner.trace_result(idx, hex(irp as u64));
    irp as *mut IRP
}

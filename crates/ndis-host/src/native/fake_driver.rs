//! Dispatch routines that behave like (good and bad) drivers, for tests of the I/O manager. They run on
//! processor threads like driver code and call the kernel exports through the export table, as a driver's
//! import table would.

use super::exports::Exports;
use super::memory::{read_obj, write_obj, HostBlock};
use crate::loader::Resolver;
use ndis_sys::*;
use std::collections::HashMap;
use std::mem::offset_of;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

pub use crate::io::state::Behaviour;

/// IRPs queued by [`Behaviour::PendCancelable`]/[`Behaviour::PendUnmarked`], per device object.
/// (IRP, whether it has a cancel routine).
static QUEUED: Mutex<Option<HashMap<usize, Vec<(usize, bool)>>>> = Mutex::new(None);

fn queue(device: usize, irp: usize, cancelable: bool) {
    let mut q = QUEUED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    q.get_or_insert_with(HashMap::new).entry(device).or_default().push((irp, cancelable));
}

fn unqueue(device: usize, irp: usize) -> bool {
    let mut q = QUEUED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(list) = q.get_or_insert_with(HashMap::new).get_mut(&device) else { return false };
    let before = list.len();
    list.retain(|&(i, _)| i != irp);
    list.len() != before
}

fn export(name: &str) -> usize {
    Exports.resolve("ntoskrnl.exe", name).unwrap_or(0)
}

fn complete(irp: usize, status: i32, information: usize) {
    // SAFETY: `irp` is an IRP this fake driver owns (dispatched to it, not yet completed).
    unsafe {
        write_obj(irp + offset_of!(IRP, IoStatus), status);
    }
    // SAFETY: as above.
    unsafe {
        write_obj(irp + offset_of!(IRP, IoStatus) + offset_of!(IO_STATUS_BLOCK, Information), information);
    }
    let f = export("IofCompleteRequest");
    // SAFETY: the host's IofCompleteRequest export, (PIRP, CCHAR) in the win64 convention.
    let g = unsafe { std::mem::transmute::<usize, extern "win64" fn(usize, i8)>(f) };
    g(irp, 0);
}

fn current_stack(irp: usize) -> usize {
    // SAFETY: a dispatched IRP; the I/O manager set its current stack location.
    unsafe {
        read_obj(irp + offset_of!(IRP, Tail) + offset_of!(IRP_Tail_Overlay, s) + offset_of!(IRP_Tail_Overlay_s, u))
    }
}

fn mark_pending(irp: usize) {
    let c = current_stack(irp) + offset_of!(IO_STACK_LOCATION, Control);
    // SAFETY: the current stack location of a dispatched IRP (IoMarkIrpPending's inline).
    let v: u8 = unsafe { read_obj(c) };
    // SAFETY: as above.
    unsafe { write_obj(c, v | SL_PENDING_RETURNED) };
}

fn cancel_routine_cell(irp: usize) -> &'static AtomicUsize {
    // SAFETY: the pointer-aligned CancelRoutine field of a live IRP, written only with interlocked
    // operations; the reference is used only while the IRP is owned by this driver.
    unsafe { AtomicUsize::from_ptr((irp + offset_of!(IRP, CancelRoutine)) as *mut usize) }
}

extern "win64" fn cancel(device: usize, irp: usize) {
    // SAFETY: the IRP being cancelled; CancelIrql was set by IoCancelIrp.
    let irql: u8 = unsafe { read_obj(irp + offset_of!(IRP, CancelIrql)) };
    let release = export("IoReleaseCancelSpinLock");
    // SAFETY: the host's IoReleaseCancelSpinLock export, (KIRQL).
    let g = unsafe { std::mem::transmute::<usize, extern "win64" fn(u8)>(release) };
    g(irql);
    if unqueue(device, irp) {
        complete(irp, ST_CANCELLED, 0);
    }
}

const ST_CANCELLED: i32 = 0xC000_0120u32 as i32;
const ST_PENDING: i32 = 0x103;

macro_rules! dispatch_fn {
    ($name:ident, $b:expr) => {
        extern "win64" fn $name(device: usize, irp: usize) -> i32 {
            run(device, irp, $b)
        }
    };
}
dispatch_fn!(d_pend, Behaviour::PendCancelable);
dispatch_fn!(d_pend_unmarked, Behaviour::PendUnmarked);
dispatch_fn!(d_no_complete, Behaviour::ReturnWithoutCompleting);
dispatch_fn!(d_mismatch, Behaviour::StatusMismatch);
dispatch_fn!(d_twice, Behaviour::CompleteTwice);
dispatch_fn!(d_fill, Behaviour::FillOutput { overrun: false });
dispatch_fn!(d_fill_overrun, Behaviour::FillOutput { overrun: true });
dispatch_fn!(d_mdl, Behaviour::MdlRoundTrip { leak: false });
dispatch_fn!(d_mdl_leak, Behaviour::MdlRoundTrip { leak: true });
dispatch_fn!(d_csq, Behaviour::CsqPend);

/// The address of the dispatch routine that behaves as `b`.
pub fn routine(b: Behaviour) -> usize {
    let f: extern "win64" fn(usize, usize) -> i32 = match b {
        Behaviour::PendCancelable => d_pend,
        Behaviour::PendUnmarked => d_pend_unmarked,
        Behaviour::ReturnWithoutCompleting => d_no_complete,
        Behaviour::StatusMismatch => d_mismatch,
        Behaviour::CompleteTwice => d_twice,
        Behaviour::FillOutput { overrun: false } => d_fill,
        Behaviour::FillOutput { overrun: true } => d_fill_overrun,
        Behaviour::MdlRoundTrip { leak: false } => d_mdl,
        Behaviour::MdlRoundTrip { leak: true } => d_mdl_leak,
        Behaviour::CsqPend => d_csq,
    };
    f as usize
}

fn run(device: usize, irp: usize, b: Behaviour) -> i32 {
    match b {
        Behaviour::PendCancelable => {
            mark_pending(irp);
            queue(device, irp, true);
            cancel_routine_cell(irp).store(cancel as *const () as usize, Ordering::SeqCst);
            ST_PENDING
        }
        Behaviour::PendUnmarked => {
            queue(device, irp, false);
            ST_PENDING
        }
        Behaviour::ReturnWithoutCompleting => 0,
        Behaviour::StatusMismatch => {
            complete(irp, 0, 0);
            0xC000_0001u32 as i32
        }
        Behaviour::CompleteTwice => {
            complete(irp, 0, 0);
            complete(irp, 0, 0);
            0
        }
        Behaviour::FillOutput { overrun } => {
            let sl = current_stack(irp);
            // SAFETY: the current stack location of a dispatched IRP.
            let s: IO_STACK_LOCATION = unsafe { read_obj(sl) };
            // SAFETY: as above; the IRP itself.
            let i: IRP = unsafe { read_obj(irp) };
            let (len, method) = match s.MajorFunction {
                IRP_MJ_READ => {
                    // SAFETY: a copied union, read as the member the major function selects.
                    let p = unsafe { s.Parameters.Read };
                    (p.Length as usize, None)
                }
                IRP_MJ_DEVICE_CONTROL => {
                    // SAFETY: as above.
                    let p = unsafe { s.Parameters.DeviceIoControl };
                    (p.OutputBufferLength as usize, Some(p.IoControlCode & 3))
                }
                _ => (0, None),
            };
            // SAFETY: reading the SystemBuffer member of a copied union.
            let system = unsafe { i.AssociatedIrp.SystemBuffer } as usize;
            let target = match method {
                Some(0) => system,
                Some(3) => i.UserBuffer as usize,
                _ if !i.MdlAddress.is_null() => {
                    // MmGetSystemAddressForMdlSafe: map unless already mapped.
                    // SAFETY: the IRP's MDL.
                    let m: MDL = unsafe { read_obj(i.MdlAddress as usize) };
                    if m.MdlFlags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL) != 0 {
                        m.MappedSystemVa as usize
                    } else {
                        let f = export("MmMapLockedPagesSpecifyCache");
                        // SAFETY: the host's MmMapLockedPagesSpecifyCache export.
                        let g = unsafe {
                            std::mem::transmute::<usize, extern "win64" fn(usize, i8, i32, usize, u32, u32) -> usize>(f)
                        };
                        g(i.MdlAddress as usize, KernelMode, 1, 0, 0, 0x10 | 0x4000_0000)
                    }
                }
                _ if method.is_none() => system,
                _ => 0,
            };
            if target != 0 {
                for k in 0..len {
                    // SAFETY: the request's output buffer of `len` bytes.
                    unsafe { write_obj(target + k, 0x5Au8) };
                }
            }
            complete(irp, 0, len + usize::from(overrun));
            0
        }
        Behaviour::MdlRoundTrip { leak } => {
            let st = mdl_round_trip(leak);
            complete(irp, st, 0);
            st
        }
        Behaviour::CsqPend => {
            let csq = csq_for(device);
            let f = export("IoCsqInsertIrp");
            // SAFETY: the host's IoCsqInsertIrp export, (PIO_CSQ, PIRP, PIO_CSQ_IRP_CONTEXT).
            let g = unsafe { std::mem::transmute::<usize, extern "win64" fn(usize, usize, usize)>(f) };
            g(csq, irp, 0);
            ST_PENDING
        }
    }
}

fn mdl_round_trip(leak: bool) -> i32 {
    const TAG: u32 = u32::from_le_bytes(*b"Fake");
    // SAFETY: the host's exports, with their WDK signatures in the win64 convention.
    let alloc = unsafe {
        std::mem::transmute::<usize, extern "win64" fn(i32, usize, u32) -> usize>(export("ExAllocatePoolWithTag"))
    };
    // SAFETY: as above.
    let free = unsafe { std::mem::transmute::<usize, extern "win64" fn(usize, u32)>(export("ExFreePoolWithTag")) };
    // SAFETY: as above.
    let io_alloc = unsafe {
        std::mem::transmute::<usize, extern "win64" fn(usize, u32, u8, u8, usize) -> usize>(export("IoAllocateMdl"))
    };
    // SAFETY: as above.
    let build = unsafe { std::mem::transmute::<usize, extern "win64" fn(usize)>(export("MmBuildMdlForNonPagedPool")) };
    // SAFETY: as above.
    let io_free = unsafe { std::mem::transmute::<usize, extern "win64" fn(usize)>(export("IoFreeMdl")) };
    let buf = alloc(512, 256, TAG); // NonPagedPoolNx, 256 bytes
    if buf == 0 {
        return 0xC000_009Au32 as i32;
    }
    let va = buf + 10;
    let mdl = io_alloc(va, 100, 0, 0, 0);
    let mut ok = mdl != 0;
    if ok {
        build(mdl);
        // SAFETY: the MDL IoAllocateMdl just returned.
        let m: MDL = unsafe { read_obj(mdl) };
        ok = m.MappedSystemVa as usize == va
            && m.MdlFlags & MDL_SOURCE_IS_NONPAGED_POOL != 0
            && m.StartVa as usize + m.ByteOffset as usize == va
            && m.ByteCount == 100;
        if !leak {
            io_free(mdl);
        }
    }
    free(buf, TAG);
    if ok {
        0
    } else {
        0xC000_0001u32 as i32
    }
}

/// One cancel-safe queue per device: the IO_CSQ, then its KSPIN_LOCK at +64; its IRPs in CSQ_IRPS.
static CSQS: Mutex<Option<HashMap<usize, HostBlock>>> = Mutex::new(None);
static CSQ_IRPS: Mutex<Option<HashMap<usize, Vec<usize>>>> = Mutex::new(None);
const CSQ_LOCK: usize = 64;

fn csq_irps<R>(f: impl FnOnce(&mut HashMap<usize, Vec<usize>>) -> R) -> R {
    let mut q = CSQ_IRPS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    f(q.get_or_insert_with(HashMap::new))
}

/// The device's queue, initialised with IoCsqInitialize on first use (on a processor).
fn csq_for(device: usize) -> usize {
    let mut m = CSQS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let m = m.get_or_insert_with(HashMap::new);
    if let Some(b) = m.get(&device) {
        return b.addr();
    }
    let Some(b) = HostBlock::new(CSQ_LOCK + 8, 16) else { return 0 };
    let addr = b.addr();
    m.insert(device, b);
    let f = export("IoCsqInitialize");
    // SAFETY: the host's IoCsqInitialize export with the seven win64 arguments it declares.
    let g = unsafe {
        std::mem::transmute::<usize, extern "win64" fn(usize, usize, usize, usize, usize, usize, usize) -> i32>(f)
    };
    g(
        addr,
        csq_insert as *const () as usize,
        csq_remove as *const () as usize,
        csq_peek as *const () as usize,
        csq_acquire as *const () as usize,
        csq_release as *const () as usize,
        csq_complete_canceled as *const () as usize,
    );
    addr
}

extern "win64" fn csq_insert(csq: usize, irp: usize) {
    csq_irps(|q| q.entry(csq).or_default().push(irp));
}

extern "win64" fn csq_remove(csq: usize, irp: usize) {
    csq_irps(|q| q.entry(csq).or_default().retain(|&i| i != irp));
}

extern "win64" fn csq_peek(csq: usize, irp: usize, _ctx: usize) -> usize {
    csq_irps(|q| {
        let list = q.entry(csq).or_default();
        let next = if irp == 0 { Some(0) } else { list.iter().position(|&i| i == irp).map(|p| p + 1) };
        next.and_then(|n| list.get(n).copied()).unwrap_or(0)
    })
}

extern "win64" fn csq_acquire(csq: usize, irql: usize) {
    // SAFETY: the host's KeAcquireSpinLockRaiseToDpc export, (PKSPIN_LOCK) -> KIRQL.
    let g =
        unsafe { std::mem::transmute::<usize, extern "win64" fn(usize) -> u8>(export("KeAcquireSpinLockRaiseToDpc")) };
    let old = g(csq + CSQ_LOCK);
    // SAFETY: the KIRQL out pointer the csq library passes.
    unsafe { write_obj(irql, old) };
}

extern "win64" fn csq_release(csq: usize, irql: u8) {
    // SAFETY: the host's KeReleaseSpinLock export, (PKSPIN_LOCK, KIRQL).
    let g = unsafe { std::mem::transmute::<usize, extern "win64" fn(usize, u8)>(export("KeReleaseSpinLock")) };
    g(csq + CSQ_LOCK, irql);
}

extern "win64" fn csq_complete_canceled(_csq: usize, irp: usize) {
    complete(irp, ST_CANCELLED, 0);
}

/// Completes every IRP still queued for `device` with `status` (a driver's queue drain), taking back
/// each cancel routine first (a NULL from IoSetCancelRoutine means the cancel routine owns the IRP);
/// returns how many it completed. Runs on a processor.
pub fn complete_queued(device: usize, status: i32) -> usize {
    let irps: Vec<(usize, bool)> = {
        let mut q = QUEUED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        q.get_or_insert_with(HashMap::new).remove(&device).unwrap_or_default()
    };
    let mut n = 0;
    for (irp, cancelable) in irps {
        if cancelable && cancel_routine_cell(irp).swap(0, Ordering::SeqCst) == 0 {
            continue;
        }
        complete(irp, status, 0);
        n += 1;
    }
    let csq = CSQS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .as_ref()
        .and_then(|m| m.get(&device).map(HostBlock::addr));
    if let Some(csq) = csq {
        // SAFETY: the host's IoCsqRemoveNextIrp export, (PIO_CSQ, PVOID) -> PIRP.
        let next = unsafe {
            std::mem::transmute::<usize, extern "win64" fn(usize, usize) -> usize>(export("IoCsqRemoveNextIrp"))
        };
        loop {
            let irp = next(csq, 0);
            if irp == 0 {
                break;
            }
            complete(irp, status, 0);
            n += 1;
        }
    }
    n
}

//! NDIS exports NDIS 6 protocol drivers commonly import besides the binding and send/receive core: NDIS
//! memory, sleeping, copying between NET_BUFFERs, NBL context space and an NBL's pool.
//!
//! IRQL rules, as documented: NdisAllocateMemoryWithTag(Priority), NdisFreeMemory(WithTagPriority),
//! NdisCopyFromNetBufferToNetBuffer, NdisAllocate/FreeNetBufferListContext and NdisGetPoolFromNetBufferList at
//! or below DISPATCH_LEVEL; NdisMSleep at PASSIVE_LEVEL.

use super::ndis::{mdl_known, nb_known, readable};
use super::*;
use crate::native::ndis_objects as objects;

export_table! {
    "ndis.sys": NdisAllocateMemoryWithTag,
    "ndis.sys": NdisAllocateMemoryWithTagPriority,
    "ndis.sys": NdisFreeMemoryWithTagPriority,
    "ndis.sys": NdisMSleep,
    "ndis.sys": NdisCopyFromNetBufferToNetBuffer,
    "ndis.sys": NdisAllocateNetBufferListContext,
    "ndis.sys": NdisFreeNetBufferListContext,
    "ndis.sys": NdisGetPoolFromNetBufferList,
}

const NDIS_ST_SUCCESS: i32 = 0;
// CAST: NDIS_STATUS failure codes are written as unsigned hex.
const NDIS_ST_FAILURE: i32 = 0xC000_0001u32 as i32;
const NDIS_ST_RESOURCES: i32 = 0xC000_009Au32 as i32;

fn call(name: &'static str, args: &[(&'static str, Arg<'_>)]) -> (std::sync::Arc<Inner>, u64) {
    let inner = current();
    let idx = inner.trace_call(Direction::DriverToHost, name, args);
    (inner, idx)
}

// ---------------------------------------------------------------- memory

/// Whether `handle` is one NDIS gave the driver: its protocol handle or an open binding's.
fn ndis_handle(inner: &Inner, handle: usize) -> bool {
    let st = inner.state();
    st.protocols.iter().any(|p| p.handle.addr() == handle && !p.deregistered)
        || st.ndis.opens.iter().any(|o| o.handle.addr() == handle && !o.closed)
}

/// NDIS memory is tagged non-paged pool; NdisFreeMemory gives it back.
extern "win64" fn NdisAllocateMemoryWithTagPriority(
    handle: *mut c_void,
    length: u32,
    tag: u32,
    priority: i32,
) -> *mut c_void {
    let api = "NdisAllocateMemoryWithTagPriority";
    let (inner, idx) = call(
        api,
        &[
            ("NdisHandle", ptr(handle)),
            ("Length", length.into()),
            ("Tag", Arg::Tag(tag)),
            ("Priority", priority.into()),
        ],
    );
    let r = if ndis_handle(&inner, handle as usize) {
        super::ke::pool_alloc(&inner, api, length as usize, tag)
    } else {
        inner.violation(
            Rule::BadParameter,
            format!("{api} with NdisHandle {}, which is not a protocol or binding handle NDIS gave", ptr(handle)),
        );
        std::ptr::null_mut()
    };
    inner.trace_result(idx, ptr(r));
    r
}

/// The NDIS 5 form, still exported: the address comes back through `out`.
extern "win64" fn NdisAllocateMemoryWithTag(out: *mut *mut c_void, length: u32, tag: u32) -> i32 {
    let api = "NdisAllocateMemoryWithTag";
    let (inner, idx) =
        call(api, &[("VirtualAddress", ptr(out.cast())), ("Length", length.into()), ("Tag", Arg::Tag(tag))]);
    let r = if out.is_null() {
        inner.violation(Rule::BadParameter, format!("{api} with a null VirtualAddress"));
        NDIS_ST_FAILURE
    } else {
        let p = super::ke::pool_alloc(&inner, api, length as usize, tag);
        // SAFETY: the driver's out pointer (checked non-null).
        unsafe { write_obj(out as usize, p) };
        if p.is_null() {
            NDIS_ST_FAILURE
        } else {
            NDIS_ST_SUCCESS
        }
    };
    inner.trace_result(idx, Arg::Status(r));
    r
}

extern "win64" fn NdisFreeMemoryWithTagPriority(handle: *mut c_void, p: *mut c_void, tag: u32) {
    let api = "NdisFreeMemoryWithTagPriority";
    let (inner, _) = call(api, &[("NdisHandle", ptr(handle)), ("VirtualAddress", ptr(p)), ("Tag", Arg::Tag(tag))]);
    super::ke::pool_free(&inner, api, p, Some(tag));
}

extern "win64" fn NdisMSleep(microseconds: u32) {
    let (inner, _) = call("NdisMSleep", &[("MicrosecondsToSleep", microseconds.into())]);
    if inner.require_irql("NdisMSleep", PASSIVE) {
        std::thread::sleep(std::time::Duration::from_micros(u64::from(microseconds)));
    }
}

// ---------------------------------------------------------------- NET_BUFFER data

extern "win64" fn NdisCopyFromNetBufferToNetBuffer(
    dst: *mut NET_BUFFER,
    dst_offset: u32,
    bytes: u32,
    src: *const NET_BUFFER,
    src_offset: u32,
    copied: *mut u32,
) -> i32 {
    let api = "NdisCopyFromNetBufferToNetBuffer";
    let (inner, idx) = call(
        api,
        &[
            ("Destination", ptr(dst.cast())),
            ("DestinationOffset", dst_offset.into()),
            ("BytesToCopy", bytes.into()),
            ("Source", ptr(src.cast())),
            ("SourceOffset", src_offset.into()),
        ],
    );
    let r = (|| {
        if !inner.require_irql_at_most(api, DISPATCH) {
            return NDIS_ST_FAILURE;
        }
        if copied.is_null() {
            inner.violation(Rule::BadParameter, format!("{api} with a null BytesCopied"));
            return NDIS_ST_FAILURE;
        }
        let st = inner.state();
        for (what, nb) in [("Destination", dst as usize), ("Source", src as usize)] {
            if !nb_known(&st, nb) {
                drop(st);
                inner.violation(
                    Rule::BadParameter,
                    format!("{api}: {what} {nb:#x} is not a NET_BUFFER the driver holds"),
                );
                return NDIS_ST_FAILURE;
            }
        }
        // Received NET_BUFFERs are the host's own memory; the driver's are checked as for a send.
        let driver_nb =
            |nb: usize| st.ndis.driver_nbls.values().any(|d| d.nb == nb) || st.ndis.driver_nbs.contains_key(&nb);
        // SAFETY: a NET_BUFFER the host allocated (checked above).
        let d = unsafe { objects::nb_view(dst as usize) };
        // SAFETY: as above.
        let s = unsafe { objects::nb_view(src as usize) };
        let src_received = !driver_nb(src as usize);
        if !driver_nb(dst as usize) {
            drop(st);
            inner.violation(
                Rule::Ndis,
                format!(
                    "{api}: Destination {:#x} is a received NET_BUFFER, which NDIS owns (the driver may not write it)",
                    dst as usize
                ),
            );
            return NDIS_ST_FAILURE;
        }
        let available = s.data_length.saturating_sub(src_offset);
        let n = bytes.min(available);
        let data = match objects::gather(
            s.mdl_chain,
            s.data_offset.saturating_add(src_offset),
            n,
            &|m| src_received || mdl_known(&st, m),
            &|a, l| src_received || readable(&inner, &st, a, l),
        ) {
            Ok(b) => b,
            Err(why) => {
                drop(st);
                inner.violation(Rule::BadParameter, format!("{api}: Source: {why}"));
                return NDIS_ST_FAILURE;
            }
        };
        let written = objects::scatter(
            d.mdl_chain,
            u64::from(d.data_offset) + u64::from(dst_offset),
            &data,
            &|m| mdl_known(&st, m),
            &|a, l| readable(&inner, &st, a, l),
        );
        drop(st);
        match written {
            Ok(w) => {
                // CAST: at most BytesToCopy.
                // SAFETY: the driver's BytesCopied (checked non-null).
                unsafe { write_obj(copied as usize, w as u32) };
                NDIS_ST_SUCCESS
            }
            Err(why) => {
                inner.violation(Rule::BadParameter, format!("{api}: Destination: {why}"));
                NDIS_ST_FAILURE
            }
        }
    })();
    inner.trace_result(idx, Arg::Status(r));
    r
}

// ---------------------------------------------------------------- NBL contexts

/// Whether `nbl` is an NBL the driver may change: one of its own, or a received one it holds.
fn nbl_held(st: &crate::machine::State, nbl: usize) -> bool {
    st.ndis.driver_nbls.contains_key(&nbl) || st.ndis.outstanding.contains_key(&nbl)
}

/// Reads an NBL's Context pointer.
fn context_of(nbl: usize) -> usize {
    // SAFETY: called only for NBLs `nbl_held` accepted, which the host allocated.
    let l: NET_BUFFER_LIST = unsafe { read_obj(nbl) };
    l.Context as usize
}

/// Writes an NBL's Context pointer.
fn set_context_of(nbl: usize, context: usize) {
    let at = nbl + std::mem::offset_of!(NET_BUFFER_LIST, Context);
    // SAFETY: called only for NBLs `nbl_held` accepted; the field lies inside the NBL.
    unsafe { write_obj(at, context) };
}

extern "win64" fn NdisAllocateNetBufferListContext(
    nbl: *mut NET_BUFFER_LIST,
    size: u16,
    backfill: u16,
    tag: u32,
) -> i32 {
    let api = "NdisAllocateNetBufferListContext";
    let (inner, idx) = call(
        api,
        &[
            ("NetBufferList", ptr(nbl.cast())),
            ("ContextSize", size.into()),
            ("ContextBackFill", backfill.into()),
            ("PoolTag", Arg::Tag(tag)),
        ],
    );
    let r = (|| {
        if !inner.require_irql_at_most(api, DISPATCH) {
            return NDIS_ST_FAILURE;
        }
        let l = nbl as usize;
        if !nbl_held(&inner.state(), l) {
            inner.violation(Rule::BadParameter, format!("{api}({l:#x}) on an NBL the driver does not hold"));
            return NDIS_ST_FAILURE;
        }
        if size == 0 || size % 8 != 0 || backfill % 8 != 0 {
            inner.violation(
                Rule::BadParameter,
                format!(
                    "{api}: ContextSize {size} / ContextBackFill {backfill} not non-zero multiples of sizeof(void*)"
                ),
            );
            return NDIS_ST_FAILURE;
        }
        let ctx = context_of(l);
        if ctx != 0 {
            // SAFETY: the NBL's context block, which the host allocated with the NBL or here.
            let mut c: NET_BUFFER_LIST_CONTEXT = unsafe { read_obj(ctx) };
            if c.Offset >= size {
                c.Offset -= size;
                // SAFETY: as above.
                unsafe { write_obj(ctx, c) };
                return NDIS_ST_SUCCESS;
            }
        }
        if inner.inject(api) {
            return NDIS_ST_RESOURCES;
        }
        let total = usize::from(size) + usize::from(backfill);
        let Some(block) = HostBlock::new(size_of::<NET_BUFFER_LIST_CONTEXT>() + total, 16) else {
            return NDIS_ST_RESOURCES;
        };
        // SAFETY: the fresh zeroed block, large enough for the header.
        let mut c: NET_BUFFER_LIST_CONTEXT = unsafe { read_obj(block.addr()) };
        c.Next = ctx as PNET_BUFFER_LIST_CONTEXT;
        // CAST: two u16 values that NDIS limits to a u16 sum.
        c.Size = total as u16;
        c.Offset = backfill;
        // SAFETY: as above.
        unsafe { write_obj(block.addr(), c) };
        set_context_of(l, block.addr());
        inner.state().ndis.nbl_contexts.insert(block.addr(), (block, l));
        NDIS_ST_SUCCESS
    })();
    inner.trace_result(idx, Arg::Status(r));
    r
}

extern "win64" fn NdisFreeNetBufferListContext(nbl: *mut NET_BUFFER_LIST, size: u16) {
    let api = "NdisFreeNetBufferListContext";
    let (inner, _) = call(api, &[("NetBufferList", ptr(nbl.cast())), ("ContextSize", size.into())]);
    if !inner.require_irql_at_most(api, DISPATCH) {
        return;
    }
    let l = nbl as usize;
    if !nbl_held(&inner.state(), l) {
        inner.violation(Rule::BadParameter, format!("{api}({l:#x}) on an NBL the driver does not hold"));
        return;
    }
    let ctx = context_of(l);
    if ctx == 0 {
        inner.violation(Rule::BadParameter, format!("{api}({l:#x}) on an NBL with no context"));
        return;
    }
    // SAFETY: the NBL's context block, which the host allocated.
    let mut c: NET_BUFFER_LIST_CONTEXT = unsafe { read_obj(ctx) };
    if u32::from(c.Offset) + u32::from(size) > u32::from(c.Size) {
        inner.violation(
            Rule::BadParameter,
            format!(
                "{api}({l:#x}, {size}) frees more context than is allocated (Offset {} of Size {})",
                c.Offset, c.Size
            ),
        );
        return;
    }
    c.Offset += size;
    // SAFETY: as above.
    unsafe { write_obj(ctx, c) };
    if c.Offset == c.Size {
        // A block NdisAllocateNetBufferListContext added goes once it is empty; the NBL's own stays.
        let mut st = inner.state();
        if st.ndis.nbl_contexts.remove(&ctx).is_some() {
            set_context_of(l, c.Next as usize);
        }
    }
}

extern "win64" fn NdisGetPoolFromNetBufferList(nbl: *mut NET_BUFFER_LIST) -> *mut c_void {
    let api = "NdisGetPoolFromNetBufferList";
    let (inner, idx) = call(api, &[("NetBufferList", ptr(nbl.cast()))]);
    let r = (|| {
        if !inner.require_irql_at_most(api, DISPATCH) {
            return 0;
        }
        if !nbl_held(&inner.state(), nbl as usize) {
            inner.violation(
                Rule::BadParameter,
                format!("{api}({}) on an NBL the driver does not hold", ptr(nbl.cast())),
            );
            return 0;
        }
        // SAFETY: an NBL the host allocated (checked above).
        let l: NET_BUFFER_LIST = unsafe { read_obj(nbl as usize) };
        l.NdisPoolHandle as usize
    })();
    inner.trace_result(idx, hex(r as u64));
    r as *mut c_void
}

/// NdisAllocateMemoryWithTag for the unit tests of the pool rules.
#[cfg(test)]
pub(super) fn tests_alloc(out: &mut *mut c_void, len: u32) -> i32 {
    NdisAllocateMemoryWithTag(out, len, 0x7465_7354)
}

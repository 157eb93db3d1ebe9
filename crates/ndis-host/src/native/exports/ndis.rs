//! NDIS exports: version, protocol registration.

use super::*;
use crate::native::ndis_objects::write_query_answer;

export_table! {
    "ndis.sys": NdisGetVersion,
    "ndis.sys": NdisRegisterProtocolDriver,
    "ndis.sys": NdisDeregisterProtocolDriver,
    "ndis.sys": NdisOpenAdapterEx,
    "ndis.sys": NdisCompleteBindAdapterEx,
    "ndis.sys": NdisCloseAdapterEx,
    "ndis.sys": NdisCompleteUnbindAdapterEx,
    "ndis.sys": NdisAllocateNetBufferListPool,
    "ndis.sys": NdisFreeNetBufferListPool,
    "ndis.sys": NdisQueryAdapterInstanceName,
    "ndis.sys": NdisFreeMemory,
    "ndis.sys": NdisReturnNetBufferLists,
    "ndis.sys": NdisAllocateNetBufferList,
    "ndis.sys": NdisAllocateNetBufferAndNetBufferList,
    "ndis.sys": NdisFreeNetBufferList,
    "ndis.sys": NdisAllocateMdl,
    "ndis.sys": NdisFreeMdl,
    "ndis.sys": NdisGetDataBuffer,
    "ndis.sys": NdisSendNetBufferLists,
    "ndis.sys": NdisOidRequest,
    "ndis.sys": NdisCancelOidRequest,
    "ndis.sys": NdisCompleteNetPnPEvent,
    "ndis.sys": NdisAllocateNetBufferPool,
    "ndis.sys": NdisFreeNetBufferPool,
    "ndis.sys": NdisAllocateNetBuffer,
    "ndis.sys": NdisFreeNetBuffer,
    "ndis.sys": NdisAdvanceNetBufferDataStart,
    "ndis.sys": NdisRetreatNetBufferDataStart,
    "ndis.sys": NdisGeneratePartialCancelId,
    "ndis.sys": NdisCancelSendNetBufferLists,
}

// ---------------------------------------------------------------- NDIS

extern "win64" fn NdisGetVersion() -> u32 {
    let inner = current();
    let idx = inner.trace_call(Direction::DriverToHost, "NdisGetVersion", &[]);
    let v = inner.config.ndis_version;
    inner.trace_result(idx, Arg::Version(v));
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
        return Err((
            NDIS_ST_BAD_VERSION,
            format!("NDIS version {}.{} does not exist", c.MajorNdisVersion, c.MinorNdisVersion),
        ));
    }
    if version > os_version {
        return Err((
            NDIS_ST_BAD_VERSION,
            format!(
                "NDIS {}.{} is newer than this Windows ({}.{})",
                c.MajorNdisVersion,
                c.MinorNdisVersion,
                os_version >> 16,
                os_version & 0xFF
            ),
        ));
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
        &[("ProtocolDriverContext", ptr(context)), ("ProtocolCharacteristics", ptr(chars.cast()))],
    );
    let result = register(&inner, context, chars, handle_out);
    inner.trace_result(idx, Arg::Status(result));
    result
}

fn register(
    inner: &Inner,
    context: *mut c_void,
    chars: *mut NDIS_PROTOCOL_DRIVER_CHARACTERISTICS,
    handle_out: *mut *mut c_void,
) -> i32 {
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
        let r = call_back(
            inner,
            "ProtocolSetOptions",
            set_options as usize,
            &[("NdisDriverHandle", h as u64), ("DriverContext", context as u64)],
        );
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
    inner.trace_call(Direction::DriverToHost, "NdisDeregisterProtocolDriver", &[("NdisProtocolHandle", ptr(handle))]);
    inner.require_irql("NdisDeregisterProtocolDriver", PASSIVE);
    // NDIS unbinds every binding of the protocol before deregistration returns.
    inner.unbind_all();
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
            inner.violation(
                Rule::BadParameter,
                format!("NdisDeregisterProtocolDriver({}) with an unknown handle", ptr(handle)),
            );
        }
    }
}

// ---------------------------------------------------------------- bindings

/// NDIS calls that need no registration (memory the driver owns, pool teardown during unload).
const WITHOUT_REGISTRATION: &[&str] = &["NdisFreeMemory", "NdisFreeNetBufferListPool", "NdisFreeNetBufferPool"];

fn ndis_call(name: &'static str, args: &[(&'static str, Arg<'_>)]) -> (std::sync::Arc<Inner>, u64) {
    let inner = current();
    let idx = inner.trace_call(Direction::DriverToHost, name, args);
    // Binding-level NDIS calls after the protocol deregistered address bindings that no longer exist.
    let deregistered = {
        let st = inner.state();
        !st.protocols.is_empty() && st.protocols.iter().all(|p| p.deregistered)
    };
    if deregistered && !WITHOUT_REGISTRATION.contains(&name) {
        inner.violation(Rule::Registration, format!("{name} called after NdisDeregisterProtocolDriver"));
    }
    (inner, idx)
}

const NDIS_ST_PENDING: i32 = 0x103;
const NDIS_ST_UNSUPPORTED_MEDIA: i32 = 0xC001_0019u32 as i32;

extern "win64" fn NdisOpenAdapterEx(
    protocol: *mut c_void,
    context: *mut c_void,
    params: *mut NDIS_OPEN_PARAMETERS,
    bind_context: *mut c_void,
    handle_out: *mut *mut c_void,
) -> i32 {
    let (inner, idx) = ndis_call(
        "NdisOpenAdapterEx",
        &[
            ("NdisProtocolHandle", ptr(protocol)),
            ("ProtocolBindingContext", ptr(context)),
            ("BindContext", ptr(bind_context)),
        ],
    );
    let r = open_adapter(&inner, protocol, context, params, bind_context, handle_out);
    inner.trace_result(idx, Arg::Status(r));
    r
}

fn open_adapter(
    inner: &Inner,
    protocol: *mut c_void,
    context: *mut c_void,
    params: *mut NDIS_OPEN_PARAMETERS,
    bind_context: *mut c_void,
    handle_out: *mut *mut c_void,
) -> i32 {
    if !inner.require_irql("NdisOpenAdapterEx", PASSIVE) {
        return ST_UNSUCCESSFUL;
    }
    let adapter = inner.state().ndis.binds.get(&(bind_context as usize)).map(|p| p.adapter);
    let Some(adapter) = adapter else {
        inner.violation(Rule::Ndis, "NdisOpenAdapterEx outside ProtocolBindAdapterEx (unknown BindContext)");
        return ST_INVALID_PARAMETER;
    };
    let live = inner.state().protocols.iter().any(|p| !p.deregistered && p.handle.addr() == protocol as usize);
    if !live || params.is_null() || handle_out.is_null() {
        inner.violation(Rule::BadParameter, "NdisOpenAdapterEx with an unknown protocol handle or null parameters");
        return ST_INVALID_PARAMETER;
    }
    // SAFETY: the driver's open parameters, valid for the call (and, for the fields NDIS writes, until the
    // open completes — they live in the driver's binding).
    let p: NDIS_OPEN_PARAMETERS = unsafe { read_obj(params as usize) };
    if p.Header.Type != NDIS_OBJECT_TYPE_OPEN_PARAMETERS || p.Header.Size < NDIS_SIZEOF_OPEN_PARAMETERS_REVISION_1 {
        inner.violation(
            Rule::BadParameter,
            format!("NDIS_OPEN_PARAMETERS header {:?}", (p.Header.Type, p.Header.Revision, p.Header.Size)),
        );
        return ST_INVALID_PARAMETER;
    }
    let medium = inner.state().ndis.adapters.get(adapter).map(|a| a.medium).unwrap_or(-1);
    let mut selected = None;
    for i in 0..p.MediumArraySize as usize {
        // SAFETY: MediumArray holds MediumArraySize entries (the structure's contract).
        let m: NDIS_MEDIUM = unsafe { read_obj(p.MediumArray as usize + i * 4) };
        if m == medium {
            selected = Some(i);
            break;
        }
    }
    let Some(selected) = selected else { return NDIS_ST_UNSUPPORTED_MEDIA };
    if inner.inject("NdisOpenAdapterEx") {
        return ST_INSUFFICIENT_RESOURCES;
    }
    let Some(handle) = HostBlock::new(64, 16) else { return ST_INSUFFICIENT_RESOURCES };
    let h = handle.addr();
    let pends = inner.state().ndis.adapters.get(adapter).is_some_and(|a| a.open_pends);
    // CAST: an index into a short array.
    let selected = selected as u32;
    // SAFETY: the driver's out pointer (SelectedMediumIndex lives in its binding).
    unsafe { write_obj(p.SelectedMediumIndex as usize, selected) };
    // SAFETY: the driver's out pointer (checked non-null).
    unsafe { write_obj(handle_out as usize, h as *mut c_void) };
    inner.state().ndis.opens.push(crate::ndis::OpenRec {
        adapter,
        handle,
        context: context as usize,
        state: crate::ndis::NdisBindingState::Binding,
        open_pending: pends,
        close_pending: false,
        closed: false,
    });
    if pends {
        NDIS_ST_PENDING
    } else {
        ST_SUCCESS
    }
}

extern "win64" fn NdisCompleteBindAdapterEx(bind_context: *mut c_void, st: i32) {
    let (inner, _) = ndis_call(
        "NdisCompleteBindAdapterEx",
        &[("BindAdapterContext", ptr(bind_context)), ("Status", Arg::Status(st))],
    );
    let mut s = inner.state();
    match s.ndis.binds.get_mut(&(bind_context as usize)) {
        Some(p) if p.completed.is_none() => p.completed = Some(st),
        Some(_) => {
            drop(s);
            inner.violation(Rule::DoubleCompletion, "NdisCompleteBindAdapterEx called twice for one bind");
        }
        None => {
            drop(s);
            inner.violation(Rule::Ndis, "NdisCompleteBindAdapterEx for no bind in progress");
        }
    }
}

extern "win64" fn NdisCloseAdapterEx(handle: *mut c_void) -> i32 {
    let (inner, idx) = ndis_call("NdisCloseAdapterEx", &[("NdisBindingHandle", ptr(handle))]);
    inner.require_irql("NdisCloseAdapterEx", PASSIVE);
    let mut s = inner.state();
    let adapter = s
        .ndis
        .opens
        .iter()
        .find(|o| o.handle.addr() == handle as usize && !o.closed && !o.close_pending)
        .map(|o| o.adapter);
    let r = match adapter {
        None => {
            drop(s);
            inner.violation(Rule::Ndis, format!("NdisCloseAdapterEx({}) on a handle that is not open", ptr(handle)));
            ST_INVALID_PARAMETER
        }
        Some(a) => {
            let oids = s.ndis.pending_oids.values().filter(|p| p.0 == a).count();
            if oids > 0 {
                inner.violation(
                    Rule::Ndis,
                    format!("NdisCloseAdapterEx on adapter {a} with {oids} OID request(s) still pending"),
                );
            }
            let sends = s.ndis.in_flight.values().filter(|p| p.0 == a).count();
            if sends > 0 {
                inner.violation(
                    Rule::Ndis,
                    format!("NdisCloseAdapterEx on adapter {a} with {sends} send(s) not yet completed"),
                );
            }
            let pends = s.ndis.adapters.get(a).is_some_and(|a| a.close_pends);
            if let Some(o) = s.ndis.opens.iter_mut().find(|o| o.handle.addr() == handle as usize && !o.closed) {
                if pends {
                    o.close_pending = true;
                } else {
                    o.closed = true;
                }
            }
            if pends {
                NDIS_ST_PENDING
            } else {
                ST_SUCCESS
            }
        }
    };
    inner.trace_result(idx, Arg::Status(r));
    r
}

extern "win64" fn NdisCompleteUnbindAdapterEx(unbind_context: *mut c_void) {
    let (inner, _) = ndis_call("NdisCompleteUnbindAdapterEx", &[("UnbindContext", ptr(unbind_context))]);
    let mut s = inner.state();
    match s.ndis.unbinds.get_mut(&(unbind_context as usize)) {
        Some(p) if p.completed.is_none() => p.completed = Some(0),
        _ => {
            drop(s);
            inner.violation(Rule::Ndis, "NdisCompleteUnbindAdapterEx for no unbind in progress (or twice)");
        }
    }
}

extern "win64" fn NdisAllocateNetBufferListPool(
    handle: *mut c_void,
    params: *mut NET_BUFFER_LIST_POOL_PARAMETERS,
) -> *mut c_void {
    let (inner, idx) = ndis_call("NdisAllocateNetBufferListPool", &[("NdisHandle", ptr(handle))]);
    let r = (|| {
        if !inner.require_irql_at_most("NdisAllocateNetBufferListPool", DISPATCH) || params.is_null() {
            return std::ptr::null_mut();
        }
        // SAFETY: the driver's pool parameters, read during the call.
        let p: NET_BUFFER_LIST_POOL_PARAMETERS = unsafe { read_obj(params as usize) };
        if p.Header.Type != NDIS_OBJECT_TYPE_DEFAULT
            || p.Header.Size < NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1
        {
            inner.violation(Rule::BadParameter, "NET_BUFFER_LIST_POOL_PARAMETERS with a wrong header");
            return std::ptr::null_mut();
        }
        if p.PoolTag == 0 {
            inner.violation(Rule::BadParameter, "NdisAllocateNetBufferListPool with tag 0");
        }
        if inner.inject("NdisAllocateNetBufferListPool") {
            return std::ptr::null_mut();
        }
        let Some(block) = HostBlock::new(64, 16) else { return std::ptr::null_mut() };
        let a = block.addr();
        let pool = crate::ndis::NblPool {
            block,
            tag: p.PoolTag,
            allocate_nb: p.fAllocateNetBuffer != 0,
            data_size: p.DataSize,
        };
        inner.state().ndis.nbl_pools.insert(a, pool);
        a as *mut c_void
    })();
    inner.trace_result(idx, ptr(r));
    r
}

extern "win64" fn NdisFreeNetBufferListPool(pool: *mut c_void) {
    let (inner, _) = ndis_call("NdisFreeNetBufferListPool", &[("PoolHandle", ptr(pool))]);
    inner.require_irql_at_most("NdisFreeNetBufferListPool", DISPATCH);
    let mut s = inner.state();
    let Some(tag) = s.ndis.nbl_pools.remove(&(pool as usize)).map(|p| p.tag) else {
        drop(s);
        inner.violation(Rule::Ndis, format!("NdisFreeNetBufferListPool({}) frees no pool", ptr(pool)));
        return;
    };
    let alive = s.ndis.driver_nbls.values().filter(|n| n.pool == pool as usize).count();
    drop(s);
    if alive > 0 {
        inner.violation(
            Rule::Ndis,
            format!(
                "NdisFreeNetBufferListPool({}) (tag '{}') with {alive} NBL(s) of the pool not freed",
                ptr(pool),
                crate::machine::tag_text(tag)
            ),
        );
    }
}

extern "win64" fn NdisQueryAdapterInstanceName(out: *mut NDIS_STRING, handle: *mut c_void) -> i32 {
    let (inner, idx) = ndis_call("NdisQueryAdapterInstanceName", &[("NdisBindingHandle", ptr(handle))]);
    inner.require_irql("NdisQueryAdapterInstanceName", PASSIVE);
    let r = (|| {
        let name = {
            let s = inner.state();
            let adapter =
                s.ndis.opens.iter().find(|o| o.handle.addr() == handle as usize && !o.closed).map(|o| o.adapter);
            adapter.and_then(|a| s.ndis.adapters.get(a)).map(|a| a.friendly_name.clone())
        };
        let Some(name) = name else {
            inner.violation(Rule::Ndis, "NdisQueryAdapterInstanceName on a handle that is not open");
            return ST_INVALID_PARAMETER;
        };
        if out.is_null() || inner.inject("NdisQueryAdapterInstanceName") {
            return ST_INSUFFICIENT_RESOURCES;
        }
        let units: Vec<u16> = name.encode_utf16().collect();
        let Some(block) = HostBlock::new(units.len() * 2 + 2, 16) else { return ST_INSUFFICIENT_RESOURCES };
        for (i, u) in units.iter().enumerate() {
            // SAFETY: inside the block just allocated.
            unsafe { write_obj(block.addr() + i * 2, *u) };
        }
        // CAST: friendly names are short.
        let len = (units.len() * 2) as u16;
        // SAFETY: the driver's out NDIS_STRING.
        unsafe {
            write_obj(
                out as usize,
                NDIS_STRING { Length: len, MaximumLength: len + 2, Buffer: block.addr() as *mut u16 },
            )
        };
        inner.state().ndis.ndis_memory.insert(block.addr(), block);
        ST_SUCCESS
    })();
    inner.trace_result(idx, Arg::Status(r));
    r
}

extern "win64" fn NdisFreeMemory(p: *mut c_void, length: u32, flags: u32) {
    let (inner, _) = ndis_call(
        "NdisFreeMemory",
        &[("VirtualAddress", ptr(p)), ("Length", length.into()), ("MemoryFlags", hex(flags))],
    );
    inner.require_irql_at_most("NdisFreeMemory", DISPATCH);
    let (ndis, pool) = {
        let mut st = inner.state();
        let ndis = st.ndis.ndis_memory.remove(&(p as usize)).is_some();
        (ndis, st.pool.contains_key(&(p as usize)))
    };
    if pool {
        // NdisAllocateMemoryWithTag(Priority) memory is tagged pool.
        super::ke::pool_free(&inner, "NdisFreeMemory", p, None);
    } else if !ndis {
        inner.violation(Rule::BadFree, format!("NdisFreeMemory({}) frees memory NDIS did not allocate", ptr(p)));
    }
}

extern "win64" fn NdisReturnNetBufferLists(handle: *mut c_void, nbls: *mut c_void, flags: u32) {
    let (inner, _) = ndis_call(
        "NdisReturnNetBufferLists",
        &[("NdisBindingHandle", ptr(handle)), ("NetBufferLists", ptr(nbls)), ("ReturnFlags", hex(flags))],
    );
    inner.require_irql_at_most("NdisReturnNetBufferLists", DISPATCH);
    if flags & 1 != 0 && super::super::cpu::irql() != DISPATCH {
        inner.violation(
            Rule::Irql,
            "NdisReturnNetBufferLists with NDIS_RETURN_FLAGS_DISPATCH_LEVEL below DISPATCH_LEVEL",
        );
    }
    // SAFETY: the chain is made of NBLs the host built for an indication (checked one by one below).
    let chain = unsafe { crate::native::ndis_objects::chain(nbls as usize, 1 << 16) };
    let mut s = inner.state();
    let mut unknown = 0;
    for n in &chain {
        forget_contexts(&mut s, *n);
        if s.ndis.outstanding.remove(n).is_none() {
            unknown += 1;
        }
    }
    // Recycle the memory of indications that are entirely back (for the next indications' chains).
    let st = &mut *s;
    let (out, indications) = (&st.ndis.outstanding, &mut st.ndis.indications);
    let (keep, back): (Vec<_>, Vec<_>) =
        std::mem::take(indications).into_iter().partition(|(nbls, _)| nbls.iter().any(|n| out.contains_key(n)));
    *indications = keep;
    drop(s);
    for (_, lent) in back {
        lent.recycle();
    }
    if unknown > 0 {
        inner.violation(
            Rule::DoubleCompletion,
            format!("NdisReturnNetBufferLists returned {unknown} NBL(s) the driver did not own"),
        );
    }
}

// ---------------------------------------------------------------- NBLs, MDLs

/// Drops the context blocks (see `ndis_extra`) NdisAllocateNetBufferListContext added to `nbl` (the NBL is freed or returned).
pub(crate) fn forget_contexts(st: &mut crate::machine::State, nbl: usize) {
    st.ndis.nbl_contexts.retain(|_, (_, n)| *n != nbl);
}

#[cfg(test)]
#[path = "ndis_tests.rs"]
pub(super) mod tests;

use super::super::ndis_objects as objects;
use crate::machine::State;

/// Whether `m` is an MDL the driver may chain into a NET_BUFFER it sends: NdisAllocateMdl, IoAllocateMdl,
/// data NDIS allocated with an NBL, an MDL the driver built in its own pool, or the MdlAddress of a request
/// it has not completed (DO_DIRECT_IO: the I/O manager lends it until completion).
pub(super) fn mdl_known(st: &State, m: usize) -> bool {
    st.ndis.ndis_mdls.contains_key(&m)
        || st.io.driver_mdls.contains_key(&m)
        || st.io.lent_mdl(m)
        || st.ndis.driver_nbls.values().any(|n| n.data.is_some_and(|d| d.0 == m))
        || st.ndis.driver_nbs.values().any(|n| n.2.is_some_and(|d| d.0 == m))
        || in_pool(st, m, size_of::<MDL>())
}

fn in_pool(st: &State, addr: usize, len: usize) -> bool {
    pool_block(st, addr, len).is_some()
}

/// The pool block (start, end) that holds `addr..addr+len`, if one does.
fn pool_block(st: &State, addr: usize, len: usize) -> Option<(usize, usize)> {
    let (base, size) = st.pool.live(addr)?;
    let end = addr.checked_add(len)?;
    (end <= base + size).then_some((base, base + size))
}

/// Whether `addr..addr+len` is memory the driver owns (pool, data NDIS allocated for its NBLs, its image, a
/// buffer of a request in flight).
pub(super) fn readable(inner: &Inner, st: &State, addr: usize, len: usize) -> bool {
    in_pool(st, addr, len)
        || st.io.lent_range(addr, addr + len)
        || st.ndis.driver_nbls.values().any(|n| n.data.is_some_and(|(_, a, l)| addr >= a && addr + len <= a + l))
        || st.ndis.driver_nbs.values().any(|n| n.2.is_some_and(|(_, a, l)| addr >= a && addr + len <= a + l))
        || (inner.image.contains(addr) && inner.image.contains(addr + len - 1))
}

fn allocate_nbl(
    inner: &Inner,
    api: &'static str,
    pool: usize,
    context_size: u16,
    backfill: u16,
    nb: Option<objects::NbSpec>,
) -> usize {
    if !inner.require_irql_at_most(api, DISPATCH) {
        return 0;
    }
    if context_size % 16 != 0 || backfill % 16 != 0 {
        inner.violation(Rule::BadParameter, format!("{api}: ContextSize {context_size} / ContextBackFill {backfill} not multiples of MEMORY_ALLOCATION_ALIGNMENT"));
    }
    let (allocate_nb, data_size) = match inner.state().ndis.nbl_pools.get(&pool) {
        Some(p) => (p.allocate_nb, p.data_size),
        None => {
            inner.violation(Rule::Ndis, format!("{api}({:#x}) on a pool that does not exist", pool));
            return 0;
        }
    };
    let mut spec = nb;
    if let Some(s) = spec.as_mut() {
        if !allocate_nb {
            inner.violation(Rule::BadParameter, format!("{api} on a pool allocated without fAllocateNetBuffer"));
            return 0;
        }
        if s.mdl_chain == 0 {
            s.ndis_data = data_size;
            if s.data_length > 0 && u64::from(s.data_offset) + s.data_length as u64 > u64::from(data_size) {
                inner.violation(
                    Rule::BadParameter,
                    format!("{api}: DataOffset + DataLength exceed the pool's DataSize {data_size} with no MDL chain"),
                );
                return 0;
            }
        }
    }
    // A driver MDL chain: position CurrentMdl at DataOffset, checking the chain on the way.
    let mut current = None;
    if let Some(s) = spec.filter(|s| s.mdl_chain != 0) {
        let st = inner.state();
        let located = objects::locate(s.mdl_chain, u64::from(s.data_offset), &|m| mdl_known(&st, m));
        drop(st);
        match located {
            Some(c) => current = Some(c),
            None => {
                inner.violation(
                    Rule::BadParameter,
                    format!(
                        "{api}: MdlChain {:#x} is not a chain of the driver's MDLs covering DataOffset {}",
                        s.mdl_chain, s.data_offset
                    ),
                );
                return 0;
            }
        }
    }
    if inner.inject(api) {
        return 0;
    }
    let Some(parts) = objects::allocate_nbl(pool, context_size, backfill, spec, current) else { return 0 };
    let a = parts.nbl;
    inner
        .state()
        .ndis
        .driver_nbls
        .insert(a, crate::ndis::DriverNbl { pool, blocks: parts.blocks, nb: parts.nb, data: parts.data });
    a
}

extern "win64" fn NdisAllocateNetBufferList(
    pool: *mut c_void,
    context_size: u16,
    backfill: u16,
) -> *mut NET_BUFFER_LIST {
    let (inner, idx) = ndis_call(
        "NdisAllocateNetBufferList",
        &[("PoolHandle", ptr(pool)), ("ContextSize", hex(context_size)), ("ContextBackFill", hex(backfill))],
    );
    let r = allocate_nbl(&inner, "NdisAllocateNetBufferList", pool as usize, context_size, backfill, None);
    inner.trace_result(idx, hex(r as u64));
    r as *mut NET_BUFFER_LIST
}

extern "win64" fn NdisAllocateNetBufferAndNetBufferList(
    pool: *mut c_void,
    context_size: u16,
    backfill: u16,
    mdl_chain: *mut MDL,
    data_offset: u32,
    data_length: usize,
) -> *mut NET_BUFFER_LIST {
    let (inner, idx) = ndis_call(
        "NdisAllocateNetBufferAndNetBufferList",
        &[
            ("PoolHandle", ptr(pool)),
            ("ContextSize", hex(context_size)),
            ("ContextBackFill", hex(backfill)),
            ("MdlChain", ptr(mdl_chain.cast())),
            ("DataOffset", hex(data_offset)),
            ("DataLength", hex(data_length as u64)),
        ],
    );
    let spec = objects::NbSpec { mdl_chain: mdl_chain as usize, data_offset, data_length, ndis_data: 0 };
    let r = allocate_nbl(
        &inner,
        "NdisAllocateNetBufferAndNetBufferList",
        pool as usize,
        context_size,
        backfill,
        Some(spec),
    );
    inner.trace_result(idx, hex(r as u64));
    r as *mut NET_BUFFER_LIST
}

extern "win64" fn NdisFreeNetBufferList(nbl: *mut NET_BUFFER_LIST) {
    let (inner, _) = ndis_call("NdisFreeNetBufferList", &[("NetBufferList", ptr(nbl.cast()))]);
    inner.require_irql_at_most("NdisFreeNetBufferList", DISPATCH);
    let n = nbl as usize;
    let mut s = inner.state();
    if s.ndis.in_flight.contains_key(&n) {
        drop(s);
        inner.violation(
            Rule::Ndis,
            format!("NdisFreeNetBufferList({n:#x}) frees an NBL that is still being sent (not completed)"),
        );
        return;
    }
    forget_contexts(&mut s, n);
    if s.ndis.driver_nbls.remove(&n).is_none() {
        let received = s.ndis.outstanding.contains_key(&n);
        drop(s);
        let what = if received {
            "a received NBL NDIS owns (return it with NdisReturnNetBufferLists)"
        } else {
            "an NBL not allocated from a pool of this driver (or freed twice)"
        };
        inner.violation(Rule::BadFree, format!("NdisFreeNetBufferList({n:#x}) frees {what}"));
    }
}

extern "win64" fn NdisAllocateMdl(handle: *mut c_void, va: *mut c_void, length: u32) -> *mut MDL {
    let (inner, idx) = ndis_call(
        "NdisAllocateMdl",
        &[("NdisHandle", ptr(handle)), ("VirtualAddress", ptr(va)), ("Length", length.into())],
    );
    let r = (|| {
        if !inner.require_irql_at_most("NdisAllocateMdl", DISPATCH) {
            return 0;
        }
        let known = {
            let s = inner.state();
            s.ndis.opens.iter().any(|o| o.handle.addr() == handle as usize && !o.closed)
                || s.protocols.iter().any(|p| !p.deregistered && p.handle.addr() == handle as usize)
        };
        if !known {
            inner.violation(
                Rule::BadParameter,
                format!("NdisAllocateMdl with handle {} (neither a binding nor the protocol handle)", ptr(handle)),
            );
        }
        if va.is_null() || length == 0 {
            inner.violation(Rule::BadParameter, "NdisAllocateMdl for no memory (null address or length 0)");
            return 0;
        }
        if inner.inject("NdisAllocateMdl") {
            return 0;
        }
        let Some(m) = objects::build_mdl(va as usize, length) else { return 0 };
        let a = m.addr();
        inner.state().ndis.ndis_mdls.insert(a, m);
        a
    })();
    inner.trace_result(idx, hex(r as u64));
    r as *mut MDL
}

extern "win64" fn NdisFreeMdl(mdl: *mut MDL) {
    let (inner, _) = ndis_call("NdisFreeMdl", &[("Mdl", ptr(mdl.cast()))]);
    inner.require_irql_at_most("NdisFreeMdl", DISPATCH);
    let m = mdl as usize;
    let mut s = inner.state();
    // An MDL chained into an NBL that is being sent is still in use.
    let in_use = s.ndis.in_flight.keys().any(|&n| {
        s.ndis.driver_nbls.get(&n).is_some_and(|d| {
            d.nb != 0 && {
                // SAFETY: `d.nb` is the NET_BUFFER the host allocated with this driver NBL.
                let v = unsafe { objects::nb_view(d.nb) };
                v.mdl_chain == m
            }
        })
    });
    if in_use {
        drop(s);
        inner.violation(Rule::Ndis, format!("NdisFreeMdl({m:#x}) frees an MDL of an NBL that is still being sent"));
        return;
    }
    if s.ndis.ndis_mdls.remove(&m).is_none() {
        drop(s);
        inner.violation(
            Rule::BadFree,
            format!("NdisFreeMdl({m:#x}) frees an MDL NdisAllocateMdl did not allocate (or frees it twice)"),
        );
    }
}

/// Whether `nb` is a NET_BUFFER the host allocated and the driver may read: one of its NBLs, or one of a
/// received NBL it holds.
pub(super) fn nb_known(st: &State, nb: usize) -> bool {
    if nb == 0 {
        return false;
    }
    if st.ndis.driver_nbls.values().any(|d| d.nb == nb) || st.ndis.driver_nbs.contains_key(&nb) {
        return true;
    }
    st.ndis.outstanding.keys().any(|&l| {
        // SAFETY: outstanding NBLs are received NBLs the host built and keeps until they are returned.
        unsafe { objects::nbl_has_nb(l, nb, 64) }
    })
}

extern "win64" fn NdisGetDataBuffer(
    nb: *mut NET_BUFFER,
    bytes: u32,
    storage: *mut c_void,
    align_multiple: u32,
    align_offset: u32,
) -> *mut c_void {
    let (inner, idx) = ndis_call(
        "NdisGetDataBuffer",
        &[
            ("NetBuffer", ptr(nb.cast())),
            ("BytesNeeded", bytes.into()),
            ("Storage", ptr(storage)),
            ("AlignMultiple", align_multiple.into()),
            ("AlignOffset", align_offset.into()),
        ],
    );
    let r = (|| {
        if !inner.require_irql_at_most("NdisGetDataBuffer", DISPATCH) {
            return 0;
        }
        if align_multiple == 0 || !align_multiple.is_power_of_two() {
            inner.violation(
                Rule::BadParameter,
                format!("NdisGetDataBuffer with AlignMultiple {align_multiple} (must be a power of two, 1 for none)"),
            );
            return 0;
        }
        let s = inner.state();
        if !nb_known(&s, nb as usize) {
            drop(s);
            inner.violation(
                Rule::BadParameter,
                format!("NdisGetDataBuffer({}) on a NET_BUFFER the driver does not hold", ptr(nb.cast())),
            );
            return 0;
        }
        // SAFETY: checked above: a NET_BUFFER the host allocated.
        let v = unsafe { objects::nb_view(nb as usize) };
        if bytes == 0 || bytes > v.data_length {
            return 0;
        }
        // Received NET_BUFFERs and their MDLs and data are the host's own.
        let received = !s.ndis.driver_nbls.values().any(|d| d.nb == nb as usize)
            && !s.ndis.driver_nbs.contains_key(&(nb as usize));
        let known = |m: usize| received || mdl_known(&s, m);
        let Some((m, off)) = objects::locate(v.mdl_chain, u64::from(v.data_offset), &known) else {
            drop(s);
            inner.violation(
                Rule::BadParameter,
                "NdisGetDataBuffer on a NET_BUFFER whose MDL chain does not reach DataOffset",
            );
            return 0;
        };
        if m != v.current_mdl || off != v.current_offset {
            drop(s);
            inner.violation(
                Rule::BadParameter,
                "NdisGetDataBuffer: CurrentMdl/CurrentMdlOffset disagree with DataOffset",
            );
            return 0;
        }
        // SAFETY: `m` is an MDL `known` accepted.
        let mdl: MDL = unsafe { read_obj(m) };
        let va = mdl.MappedSystemVa as usize + off as usize;
        let contiguous = off as usize + bytes as usize <= mdl.ByteCount as usize;
        let aligned = (va + align_offset as usize) % align_multiple as usize == 0;
        if contiguous && aligned {
            return va;
        }
        if storage.is_null() {
            return 0;
        }
        // Copy through the chain (received MDLs are the host's; the driver's were checked as for a send).
        let got =
            objects::gather(v.mdl_chain, v.data_offset, bytes, &known, &|a, l| received || readable(&inner, &s, a, l));
        drop(s);
        match got {
            Ok(b) => {
                for (i, x) in b.iter().enumerate() {
                    // SAFETY: the driver's storage holds BytesNeeded bytes (the function's contract).
                    unsafe { write_obj(storage as usize + i, *x) };
                }
                storage as usize
            }
            Err(why) => {
                inner.violation(Rule::BadParameter, format!("NdisGetDataBuffer: {why}"));
                0
            }
        }
    })();
    inner.trace_result(idx, hex(r as u64));
    r as *mut c_void
}

// ---------------------------------------------------------------- sends

/// IofCompleteRequest of `irp` while an NBL the driver sent still chains the request's MdlAddress: once the
/// request completes the I/O manager unlocks and frees those pages while the adapter may still read them.
pub(crate) fn check_irp_mdl_not_in_flight(inner: &Inner, irp: usize) {
    let st = inner.state();
    let Some(mdl) = st.io.irp_mdl(irp) else { return };
    let held = st.ndis.in_flight.keys().copied().find(|&l| {
        // SAFETY: an NBL of the driver's the adapter holds; the host allocated it and its NET_BUFFERs.
        let mut b = unsafe { objects::first_nb(l) };
        let mut n = 0;
        while b != 0 && n < 4096 {
            n += 1;
            // SAFETY: a NET_BUFFER the host allocated for the driver.
            let v = unsafe { objects::nb_view(b) };
            let mut m = v.mdl_chain;
            let mut k = 0;
            while m != 0 && k < 4096 && mdl_known(&st, m) {
                if m == mdl {
                    return true;
                }
                k += 1;
                // SAFETY: an MDL `mdl_known` vouches for.
                m = unsafe { read_obj::<MDL>(m) }.Next as usize;
            }
            b = v.next;
        }
        false
    });
    drop(st);
    if let Some(l) = held {
        inner.violation(
            Rule::Irp,
            format!("IRP {irp:#x} completed while NBL {l:#x}, built on its MdlAddress, is still being sent"),
        );
    }
}

extern "win64" fn NdisSendNetBufferLists(handle: *mut c_void, nbls: *mut NET_BUFFER_LIST, port: u32, flags: u32) {
    let (inner, _) = ndis_call(
        "NdisSendNetBufferLists",
        &[
            ("NdisBindingHandle", ptr(handle)),
            ("NetBufferLists", ptr(nbls.cast())),
            ("PortNumber", port.into()),
            ("SendFlags", hex(flags)),
        ],
    );
    send(&inner, handle as usize, nbls as usize, port, flags);
}

fn send(inner: &std::sync::Arc<Inner>, handle: usize, head: usize, port: u32, flags: u32) {
    if !inner.require_irql_at_most("NdisSendNetBufferLists", DISPATCH) {
        return;
    }
    let irql = cpu::irql();
    if flags & NDIS_SEND_FLAGS_DISPATCH_LEVEL != 0 && irql != DISPATCH {
        inner.violation(
            Rule::Irql,
            format!("NdisSendNetBufferLists with NDIS_SEND_FLAGS_DISPATCH_LEVEL at IRQL {irql}"),
        );
    }
    if port != 0 {
        inner.violation(
            Rule::BadParameter,
            format!("NdisSendNetBufferLists on port {port}; the adapter has only the default port 0"),
        );
    }
    let mut s = inner.state();
    let Some((adapter, state)) =
        s.ndis.opens.iter().find(|o| o.handle.addr() == handle && !o.closed).map(|o| (o.adapter, o.state))
    else {
        drop(s);
        inner.violation(Rule::Ndis, format!("NdisSendNetBufferLists on {handle:#x}, which is not an open binding"));
        return;
    };
    // Walk the chain through NBLs the host allocated for the driver only (room for a typical batch at once).
    // Each with the NET_BUFFER NDIS allocated along with it (0 if none).
    let mut chain: Vec<(usize, usize)> = Vec::with_capacity(64);
    let mut n = head;
    while n != 0 {
        let Some(own_nb) = s.ndis.driver_nbls.get(&n).map(|d| d.nb) else {
            drop(s);
            inner.violation(Rule::Ndis, format!("NdisSendNetBufferLists: NBL {n:#x} was not allocated from a pool of this driver; the send is dropped"));
            return;
        };
        // Every NBL on the chain is a distinct driver NBL unless the chain loops: one more than there are is a
        // loop (no search of the chain for each NBL).
        if s.ndis.in_flight.contains_key(&n) || chain.len() >= s.ndis.driver_nbls.len() {
            drop(s);
            inner.violation(Rule::Ndis, format!("NdisSendNetBufferLists: NBL {n:#x} is sent again while its earlier send is still in flight (or the chain loops)"));
            return;
        }
        chain.push((n, own_nb));
        // SAFETY: a driver NBL the host allocated (checked above).
        n = unsafe { objects::next_nbl(n) };
    }
    if chain.is_empty() {
        drop(s);
        inner.violation(Rule::BadParameter, "NdisSendNetBufferLists with no NBLs");
        return;
    }
    let running = matches!(
        state,
        crate::ndis::NdisBindingState::Running
            | crate::ndis::NdisBindingState::Restarting
            | crate::ndis::NdisBindingState::PauseDelivering
    );
    // A miniport whose link is down fails sends with NDIS_STATUS_MEDIA_DISCONNECTED and transmits nothing.
    let connected = s.ndis.oids.get(&adapter).is_none_or(|m| m.connected);
    let mut problems = Vec::new();
    let mut frames = Vec::with_capacity(chain.len());
    // The pool block the last frame's data was found in (send buffers are often carved from one block).
    let last_block = std::cell::Cell::new((0usize, 0usize));
    for &(l, own_nb) in &chain {
        let mut status = NDIS_STATUS_SUCCESS;
        if !running {
            status = NDIS_STATUS_PAUSED;
        } else if !connected {
            status = NDIS_STATUS_MEDIA_DISCONNECTED;
        } else {
            // SAFETY: a driver NBL the host allocated.
            let mut b = unsafe { objects::first_nb(l) };
            if b == 0 {
                problems.push(format!("NBL {l:#x} has no NET_BUFFER"));
                status = NDIS_STATUS_INVALID_PACKET;
            }
            let mut count = 0;
            while b != 0 && status == NDIS_STATUS_SUCCESS {
                count += 1;
                // The NBL's own NET_BUFFER (the usual case) is found without walking every driver NBL.
                let known =
                    own_nb == b || s.ndis.driver_nbs.contains_key(&b) || s.ndis.driver_nbls.values().any(|d| d.nb == b);
                if count > 4096 || !known {
                    problems.push(format!(
                        "NBL {l:#x} chains NET_BUFFER {b:#x}, which is not one NDIS allocated for the driver"
                    ));
                    status = NDIS_STATUS_INVALID_PACKET;
                    break;
                }
                // SAFETY: a NET_BUFFER the host allocated for the driver.
                let v = unsafe { objects::nb_view(b) };
                let buffer = crate::ndis::frame_buffer(&mut s.ndis);
                let st = &s;
                // locate and gather check the same MDLs: the last one found known is not looked up again.
                let last_known = std::cell::Cell::new(0);
                let known = |m: usize| {
                    let k = (m != 0 && m == last_known.get()) || mdl_known(st, m);
                    if k {
                        last_known.set(m);
                    }
                    k
                };
                let readable_memo = |a: usize, len: usize| {
                    let (start, end) = last_block.get();
                    if a >= start && a.checked_add(len).is_some_and(|e| e <= end) && start < end {
                        return true;
                    }
                    if let Some(block) = pool_block(st, a, len) {
                        last_block.set(block);
                        return true;
                    }
                    readable(inner, st, a, len)
                };
                let r = objects::locate(v.mdl_chain, u64::from(v.data_offset), &known)
                    .filter(|&(m, o)| m == v.current_mdl && o == v.current_offset)
                    .ok_or_else(|| format!("NET_BUFFER {b:#x}: CurrentMdl/CurrentMdlOffset do not match DataOffset {} in its MDL chain", v.data_offset))
                    .and_then(|_| objects::gather_into(v.mdl_chain, v.data_offset, v.data_length, &known, &readable_memo, buffer));
                match r {
                    Ok(f) if f.is_empty() => {
                        problems.push(format!("NET_BUFFER {b:#x} has DataLength 0"));
                        status = NDIS_STATUS_INVALID_PACKET;
                    }
                    Ok(f) => frames.push(f),
                    Err(why) => {
                        problems.push(format!("NBL {l:#x}: {why}"));
                        status = NDIS_STATUS_INVALID_PACKET;
                    }
                }
                b = v.next;
            }
        }
        s.ndis.in_flight.insert(l, (adapter, status));
    }
    let chain: Vec<usize> = chain.into_iter().map(|(l, _)| l).collect();
    let mode = s.ndis.adapters.get(adapter).map_or(crate::ndis::SendCompletion::Synchronous, |a| a.send_completion);
    let deferred = mode != crate::ndis::SendCompletion::Synchronous;
    if let Some(m) = s.ndis.oids.get_mut(&adapter) {
        m.xmit_ok += frames.len() as u64;
        m.xmit_octets += frames.iter().map(|f| f.len() as u64).sum::<u64>();
    }
    // The backend transmits outside the state lock (a TAP write is a system call).
    let backend = s.ndis.backends.get(&adapter).cloned();
    let loop_back_wanted = flags & NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK != 0 && running && connected;
    // The record takes the frames unless the backend or the loopback still needs them.
    let kept = if backend.is_some() || loop_back_wanted { frames.clone() } else { std::mem::take(&mut frames) };
    crate::ndis::record_sent(&mut s.ndis, adapter, kept);
    if deferred && running {
        s.ndis.held_sends.extend(chain.iter().map(|&l| (adapter, l)));
    }
    drop(s);
    if let Some(b) = backend {
        for f in &frames {
            b.transmit(f);
        }
    }
    if !running {
        inner.violation(Rule::Ndis, format!("NdisSendNetBufferLists on adapter {adapter} while the binding is {state:?} (sends only in Running); completed with NDIS_STATUS_PAUSED"));
    }
    for p in problems {
        inner.violation(Rule::Ndis, format!("NdisSendNetBufferLists: malformed send: {p}"));
    }
    if !(deferred && running) {
        crate::ndis::complete_sends(inner, adapter, &chain);
    } else if let crate::ndis::SendCompletion::Async { delay, per_call, reverse } = mode {
        crate::ndis::later(inner, delay, move |i| {
            crate::ndis::flush_sends(i, adapter, per_call, reverse);
        });
    }
    if loop_back_wanted {
        loop_back(inner, adapter, frames);
    }
}

/// NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK: what the sending binding's packet filter accepts of the frames it sent
/// is indicated back to it, one NBL per frame with NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET (NDIS does not loop a
/// protocol's own sends back without the flag).
fn loop_back(inner: &Inner, adapter: usize, frames: Vec<Vec<u8>>) {
    let accepted: Vec<(Vec<u8>, crate::ndis::ReceiveMeta)> = {
        let mut st = inner.state();
        let Some(model) = crate::ndis::oid_model(&mut st.ndis, adapter) else { return };
        frames
            .into_iter()
            .filter(|f| model.accepts(f))
            .map(|f| (f, crate::ndis::ReceiveMeta { loopback: true, ..Default::default() }))
            .collect()
    };
    if !accepted.is_empty() {
        crate::ndis::indicate_meta(inner, adapter, &accepted);
    }
}

// ---------------------------------------------------------------- OID requests

/// `NDIS_RUNTIME_VERSION_650`: NDIS_OID_REQUEST revision 2 from here on.
const NDIS_650: u32 = 0x0006_0032;

extern "win64" fn NdisOidRequest(handle: *mut c_void, request: *mut NDIS_OID_REQUEST) -> i32 {
    let (inner, idx) =
        ndis_call("NdisOidRequest", &[("NdisBindingHandle", ptr(handle)), ("OidRequest", ptr(request.cast()))]);
    let r = oid_request(&inner, handle as usize, request as usize);
    inner.trace_result(idx, Arg::Status(r));
    r
}

fn oid_request(inner: &std::sync::Arc<Inner>, handle: usize, request: usize) -> i32 {
    if !inner.require_irql_at_most("NdisOidRequest", DISPATCH) {
        return NDIS_STATUS_FAILURE;
    }
    let adapter = inner.state().ndis.opens.iter().find(|o| o.handle.addr() == handle && !o.closed).map(|o| o.adapter);
    let Some(adapter) = adapter else {
        inner.violation(Rule::Ndis, format!("NdisOidRequest on {handle:#x}, which is not an open binding"));
        return NDIS_STATUS_INVALID_PARAMETER;
    };
    if request == 0 {
        inner.violation(Rule::BadParameter, "NdisOidRequest with a null request");
        return NDIS_STATUS_INVALID_PARAMETER;
    }
    if inner.state().ndis.pending_oids.contains_key(&request) {
        inner.violation(
            Rule::DoubleCompletion,
            format!("NdisOidRequest({request:#x}) issued again while that request is still pending"),
        );
        return NDIS_STATUS_INVALID_PARAMETER;
    }
    if inner.inject("NdisOidRequest") {
        // CAST: NDIS_STATUS_RESOURCES, as when NDIS cannot queue the request.
        return ST_INSUFFICIENT_RESOURCES;
    }
    // SAFETY: the driver's request, at least a header long (its contract); the rest is read after the size check.
    let header: NDIS_OBJECT_HEADER = unsafe { read_obj(request) };
    let version = inner.config.ndis_version;
    let ok = header.Type == NDIS_OBJECT_TYPE_OID_REQUEST
        && match header.Revision {
            NDIS_OID_REQUEST_REVISION_1 => header.Size >= NDIS_SIZEOF_OID_REQUEST_REVISION_1,
            NDIS_OID_REQUEST_REVISION_2 => version >= NDIS_650 && header.Size >= NDIS_SIZEOF_OID_REQUEST_REVISION_2,
            _ => false,
        };
    if !ok {
        inner.violation(
            Rule::BadParameter,
            format!("NdisOidRequest: header (type {}, revision {}, size {}) is not an NDIS_OID_REQUEST this NDIS ({}.{}) accepts", header.Type, header.Revision, header.Size, version >> 16, version & 0xFF),
        );
        return NDIS_STATUS_INVALID_PARAMETER;
    }
    let data_at = request + std::mem::offset_of!(NDIS_OID_REQUEST, DATA);
    // SAFETY: within the revision-1 size checked above.
    let req: NDIS_OID_REQUEST = unsafe { read_obj(request) };
    if req.PortNumber != 0 {
        inner.violation(
            Rule::BadParameter,
            format!("NdisOidRequest on port {}; the adapter has only port 0", req.PortNumber),
        );
    }
    let (pends, delay) = inner.state().ndis.adapters.get(adapter).map_or((false, None), |a| (a.oid_pends, a.oid_delay));
    let status_out = match req.RequestType {
        t if t == NdisRequestQueryInformation || t == NdisRequestQueryStatistics => {
            // SAFETY: the active member for a query.
            let q = unsafe { req.DATA.QUERY_INFORMATION };
            if q.InformationBuffer.is_null() && q.InformationBufferLength != 0 {
                inner.violation(Rule::BadParameter, "NdisOidRequest: a query with a null buffer of non-zero length");
                return NDIS_STATUS_INVALID_PARAMETER;
            }
            let buffer_zeroed = q.InformationBufferLength == 0 || {
                // SAFETY: the driver's buffer of InformationBufferLength bytes.
                let bytes = unsafe {
                    super::super::memory::read_bytes(q.InformationBuffer as usize, q.InformationBufferLength as usize)
                };
                bytes.iter().all(|&b| b == 0)
            };
            let entry = crate::ndis::OidLogEntry {
                adapter,
                oid: q.Oid,
                set: false,
                length: q.InformationBufferLength,
                buffer_zeroed,
            };
            crate::ndis::log_oid(&mut inner.state().ndis, entry);
            let answer = {
                let mut st = inner.state();
                crate::ndis::oid_model(&mut st.ndis, adapter).map(|m| m.query(q.Oid, q.InformationBufferLength))
            };
            let (written, needed, st) = match answer {
                // A pended query fills the buffer when it completes successfully (finish_query).
                Some(Ok(bytes)) if pends => {
                    inner.state().ndis.pending_queries.insert(request, (q.InformationBuffer as usize, bytes));
                    (0, 0, NDIS_STATUS_SUCCESS)
                }
                Some(Ok(bytes)) => {
                    write_query_answer(q.InformationBuffer as usize, &bytes);
                    // CAST: bounded by InformationBufferLength.
                    (bytes.len() as u32, 0, NDIS_STATUS_SUCCESS)
                }
                Some(Err(e)) => (0, e.bytes_needed, e.status),
                None => (0, 0, NDIS_STATUS_FAILURE),
            };
            // SAFETY: the request's DATA.QUERY_INFORMATION.BytesWritten, inside the checked size.
            unsafe {
                write_obj(
                    data_at + std::mem::offset_of!(NDIS_OID_REQUEST_DATA_QUERY_INFORMATION, BytesWritten),
                    written,
                )
            };
            // SAFETY: the request's DATA.QUERY_INFORMATION.BytesNeeded, inside the checked size.
            unsafe {
                write_obj(data_at + std::mem::offset_of!(NDIS_OID_REQUEST_DATA_QUERY_INFORMATION, BytesNeeded), needed)
            };
            st
        }
        t if t == NdisRequestSetInformation => {
            // SAFETY: the active member for a set.
            let q = unsafe { req.DATA.SET_INFORMATION };
            if q.InformationBuffer.is_null() && q.InformationBufferLength != 0 {
                inner.violation(Rule::BadParameter, "NdisOidRequest: a set with a null buffer of non-zero length");
                return NDIS_STATUS_INVALID_PARAMETER;
            }
            let data = if q.InformationBufferLength == 0 {
                Vec::new()
            } else {
                // SAFETY: the driver's buffer of InformationBufferLength bytes.
                unsafe {
                    super::super::memory::read_bytes(q.InformationBuffer as usize, q.InformationBufferLength as usize)
                }
            };
            let entry = crate::ndis::OidLogEntry {
                adapter,
                oid: q.Oid,
                set: true,
                length: q.InformationBufferLength,
                buffer_zeroed: false,
            };
            crate::ndis::log_oid(&mut inner.state().ndis, entry);
            // A pended set takes effect when it completes successfully (a cancelled one never does): the model
            // is only tried now, for the status and byte counts.
            let answer = {
                let mut st = inner.state();
                let answer = crate::ndis::oid_model(&mut st.ndis, adapter).map(|m| {
                    if pends {
                        m.clone().set(q.Oid, &data)
                    } else {
                        m.set(q.Oid, &data)
                    }
                });
                if pends && matches!(answer, Some(Ok(_))) {
                    st.ndis.pending_sets.insert(request, (q.Oid, data));
                }
                answer
            };
            let (read, needed, st) = match answer {
                Some(Ok(n)) => (n, 0, NDIS_STATUS_SUCCESS),
                Some(Err(e)) => (0, e.bytes_needed, e.status),
                None => (0, 0, NDIS_STATUS_FAILURE),
            };
            // SAFETY: the request's DATA.SET_INFORMATION.BytesRead, inside the checked size.
            unsafe {
                write_obj(data_at + std::mem::offset_of!(NDIS_OID_REQUEST_DATA_SET_INFORMATION, BytesRead), read)
            };
            // SAFETY: the request's DATA.SET_INFORMATION.BytesNeeded, inside the checked size.
            unsafe {
                write_obj(data_at + std::mem::offset_of!(NDIS_OID_REQUEST_DATA_SET_INFORMATION, BytesNeeded), needed)
            };
            st
        }
        t if t == NdisRequestMethod => NDIS_STATUS_NOT_SUPPORTED,
        other => {
            inner.violation(Rule::BadParameter, format!("NdisOidRequest with RequestType {other}"));
            return NDIS_STATUS_INVALID_PARAMETER;
        }
    };
    if pends {
        let issue = {
            let mut s = inner.state();
            s.ndis.pending_oids.insert(request, (adapter, req.RequestId as usize, status_out));
            s.ndis.oid_issues += 1;
            let issue = s.ndis.oid_issues;
            s.ndis.oid_issue.insert(request, issue);
            issue
        };
        if let Some(d) = delay {
            crate::ndis::later(inner, d, move |i| {
                crate::ndis::complete_oid_issue(i, adapter, request, status_out, Some(issue))
            });
        }
        return NDIS_STATUS_PENDING;
    }
    status_out
}

extern "win64" fn NdisCancelOidRequest(handle: *mut c_void, request_id: *mut c_void) {
    let (inner, _) =
        ndis_call("NdisCancelOidRequest", &[("NdisBindingHandle", ptr(handle)), ("RequestId", ptr(request_id))]);
    inner.require_irql_at_most("NdisCancelOidRequest", DISPATCH);
    let found = {
        let s = inner.state();
        let adapter = s.ndis.opens.iter().find(|o| o.handle.addr() == handle as usize && !o.closed).map(|o| o.adapter);
        adapter.and_then(|a| {
            s.ndis.pending_oids.iter().find(|(_, p)| p.0 == a && p.1 == request_id as usize).map(|(&r, _)| (a, r))
        })
    };
    // A request not pending (already completed) is not an error: cancel races completion.
    if let Some((adapter, request)) = found {
        crate::ndis::complete_oid(&inner, adapter, request, NDIS_STATUS_REQUEST_ABORTED);
    }
}

// ---------------------------------------------------------------- PnP

extern "win64" fn NdisCompleteNetPnPEvent(handle: *mut c_void, notification: *mut NET_PNP_EVENT_NOTIFICATION, st: i32) {
    let (inner, _) = ndis_call(
        "NdisCompleteNetPnPEvent",
        &[
            ("NdisBindingHandle", ptr(handle)),
            ("NetPnPEventNotification", ptr(notification.cast())),
            ("Status", Arg::Status(st)),
        ],
    );
    inner.require_irql_at_most("NdisCompleteNetPnPEvent", DISPATCH);
    let mut s = inner.state();
    match s.ndis.pending_pnp.get_mut(&(notification as usize)) {
        Some((h, done)) if *h == handle as usize && done.is_none() => *done = Some(st),
        Some((h, None)) => {
            let h = *h;
            drop(s);
            inner.violation(
                Rule::BadParameter,
                format!("NdisCompleteNetPnPEvent with binding handle {} for an event of binding {h:#x}", ptr(handle)),
            );
        }
        Some(_) => {
            drop(s);
            inner.violation(Rule::DoubleCompletion, "NdisCompleteNetPnPEvent called twice for one PnP event");
        }
        None => {
            drop(s);
            inner.violation(
                Rule::Ndis,
                format!("NdisCompleteNetPnPEvent({}) for no PnP event in progress", ptr(notification.cast())),
            );
        }
    }
}

// ---------------------------------------------------------------- NET_BUFFER pools, data start, cancel

extern "win64" fn NdisAllocateNetBufferPool(
    handle: *mut c_void,
    params: *mut NET_BUFFER_POOL_PARAMETERS,
) -> *mut c_void {
    let (inner, idx) = ndis_call("NdisAllocateNetBufferPool", &[("NdisHandle", ptr(handle))]);
    let r = (|| {
        if !inner.require_irql_at_most("NdisAllocateNetBufferPool", DISPATCH) || params.is_null() {
            return 0;
        }
        // SAFETY: the driver's pool parameters, read during the call.
        let p: NET_BUFFER_POOL_PARAMETERS = unsafe { read_obj(params as usize) };
        if p.Header.Type != NDIS_OBJECT_TYPE_DEFAULT
            || p.Header.Size < NDIS_SIZEOF_NET_BUFFER_POOL_PARAMETERS_REVISION_1
        {
            inner.violation(Rule::BadParameter, "NET_BUFFER_POOL_PARAMETERS with a wrong header");
            return 0;
        }
        if p.PoolTag == 0 {
            inner.violation(Rule::BadParameter, "NdisAllocateNetBufferPool with tag 0");
        }
        if inner.inject("NdisAllocateNetBufferPool") {
            return 0;
        }
        let Some(block) = HostBlock::new(64, 16) else { return 0 };
        let a = block.addr();
        inner.state().ndis.nb_pools.insert(a, (block, p.PoolTag, p.DataSize));
        a
    })();
    inner.trace_result(idx, hex(r as u64));
    r as *mut c_void
}

extern "win64" fn NdisFreeNetBufferPool(pool: *mut c_void) {
    let (inner, _) = ndis_call("NdisFreeNetBufferPool", &[("PoolHandle", ptr(pool))]);
    inner.require_irql_at_most("NdisFreeNetBufferPool", DISPATCH);
    let mut s = inner.state();
    if s.ndis.nb_pools.remove(&(pool as usize)).is_none() {
        drop(s);
        inner.violation(Rule::Ndis, format!("NdisFreeNetBufferPool({}) frees no pool", ptr(pool)));
        return;
    }
    let alive = s.ndis.driver_nbs.values().filter(|n| n.0 == pool as usize).count();
    drop(s);
    if alive > 0 {
        inner.violation(
            Rule::Ndis,
            format!("NdisFreeNetBufferPool({}) with {alive} NET_BUFFER(s) of the pool not freed", ptr(pool)),
        );
    }
}

extern "win64" fn NdisAllocateNetBuffer(
    pool: *mut c_void,
    mdl_chain: *mut MDL,
    data_offset: u32,
    data_length: usize,
) -> *mut NET_BUFFER {
    let (inner, idx) = ndis_call(
        "NdisAllocateNetBuffer",
        &[
            ("PoolHandle", ptr(pool)),
            ("MdlChain", ptr(mdl_chain.cast())),
            ("DataOffset", hex(data_offset)),
            ("DataLength", hex(data_length as u64)),
        ],
    );
    let r = (|| {
        if !inner.require_irql_at_most("NdisAllocateNetBuffer", DISPATCH) {
            return 0;
        }
        let Some(data_size) = inner.state().ndis.nb_pools.get(&(pool as usize)).map(|p| p.2) else {
            inner.violation(
                Rule::Ndis,
                format!("NdisAllocateNetBuffer({}) on a NET_BUFFER pool that does not exist", ptr(pool)),
            );
            return 0;
        };
        let mut spec = objects::NbSpec { mdl_chain: mdl_chain as usize, data_offset, data_length, ndis_data: 0 };
        let mut current = None;
        if spec.mdl_chain == 0 {
            spec.ndis_data = data_size;
        } else {
            let st = inner.state();
            current = objects::locate(spec.mdl_chain, u64::from(data_offset), &|m| mdl_known(&st, m));
            drop(st);
            if current.is_none() {
                inner.violation(Rule::BadParameter, format!("NdisAllocateNetBuffer: MdlChain {} is not a chain of the driver's MDLs covering DataOffset {data_offset}", ptr(mdl_chain.cast())));
                return 0;
            }
        }
        if inner.inject("NdisAllocateNetBuffer") {
            return 0;
        }
        let mut parts = objects::NblParts { blocks: vec![], nbl: 0, nb: 0, data: None };
        let Some(nb) = objects::allocate_nb(&mut parts, pool as usize, spec, current) else { return 0 };
        inner.state().ndis.driver_nbs.insert(nb, (pool as usize, parts.blocks, parts.data));
        nb
    })();
    inner.trace_result(idx, hex(r as u64));
    r as *mut NET_BUFFER
}

extern "win64" fn NdisFreeNetBuffer(nb: *mut NET_BUFFER) {
    let (inner, _) = ndis_call("NdisFreeNetBuffer", &[("NetBuffer", ptr(nb.cast()))]);
    inner.require_irql_at_most("NdisFreeNetBuffer", DISPATCH);
    let n = nb as usize;
    let mut s = inner.state();
    // A NET_BUFFER chained into an NBL being sent is still in use.
    let in_use = s.ndis.in_flight.keys().any(|&l| {
        // SAFETY: NBLs in flight are the driver's, host-allocated; their NET_BUFFERs are host-allocated too
        // (the send checked every NET_BUFFER of the chain).
        unsafe { objects::nbl_has_nb(l, n, 4096) }
    });
    if in_use {
        drop(s);
        inner.violation(
            Rule::Ndis,
            format!("NdisFreeNetBuffer({n:#x}) frees a NET_BUFFER of an NBL that is still being sent"),
        );
        return;
    }
    if s.ndis.driver_nbs.remove(&n).is_none() {
        drop(s);
        inner.violation(Rule::BadFree, format!("NdisFreeNetBuffer({n:#x}) frees a NET_BUFFER NdisAllocateNetBuffer did not allocate (or frees it twice)"));
    }
}

fn move_data_start(inner: &Inner, api: &str, nb: usize, advance: bool, delta: u32) -> bool {
    if !inner.require_irql_at_most(api, DISPATCH) {
        return false;
    }
    let s = inner.state();
    if !nb_known(&s, nb) {
        drop(s);
        inner.violation(Rule::BadParameter, format!("{api}({nb:#x}) on a NET_BUFFER the driver does not hold"));
        return false;
    }
    // SAFETY: a NET_BUFFER the host allocated (checked).
    let v = unsafe { objects::nb_view(nb) };
    let (offset, length) = if advance {
        if delta > v.data_length {
            drop(s);
            inner.violation(Rule::BadParameter, format!("{api} by {delta} bytes past DataLength {}", v.data_length));
            return false;
        }
        (v.data_offset + delta, v.data_length - delta)
    } else {
        if delta > v.data_offset {
            // NDIS would allocate a new MDL in front; the host does not: the driver must handle the failure.
            return false;
        }
        (v.data_offset - delta, v.data_length + delta)
    };
    let received = !s.ndis.driver_nbls.values().any(|d| d.nb == nb) && !s.ndis.driver_nbs.contains_key(&nb);
    let current = objects::locate(v.mdl_chain, u64::from(offset), &|m| received || mdl_known(&s, m));
    drop(s);
    let Some(current) = current else {
        inner.violation(Rule::BadParameter, format!("{api}: the MDL chain does not reach the new DataOffset {offset}"));
        return false;
    };
    // SAFETY: a NET_BUFFER the host allocated (checked above).
    unsafe { objects::set_data_start(nb, offset, length, current) };
    true
}

extern "win64" fn NdisAdvanceNetBufferDataStart(
    nb: *mut NET_BUFFER,
    delta: u32,
    free_mdl: u8,
    _free_mdl_handler: *mut c_void,
) {
    let (inner, _) = ndis_call(
        "NdisAdvanceNetBufferDataStart",
        &[("NetBuffer", ptr(nb.cast())), ("DataOffsetDelta", delta.into()), ("FreeMdl", free_mdl.into())],
    );
    move_data_start(&inner, "NdisAdvanceNetBufferDataStart", nb as usize, true, delta);
}

extern "win64" fn NdisRetreatNetBufferDataStart(
    nb: *mut NET_BUFFER,
    delta: u32,
    backfill: u32,
    _allocate_mdl_handler: *mut c_void,
) -> i32 {
    let (inner, idx) = ndis_call(
        "NdisRetreatNetBufferDataStart",
        &[("NetBuffer", ptr(nb.cast())), ("DataOffsetDelta", delta.into()), ("DataBackFill", backfill.into())],
    );
    let r = if move_data_start(&inner, "NdisRetreatNetBufferDataStart", nb as usize, false, delta) {
        NDIS_STATUS_SUCCESS
    } else {
        NDIS_STATUS_RESOURCES
    };
    inner.trace_result(idx, Arg::Status(r));
    r
}

extern "win64" fn NdisGeneratePartialCancelId() -> u8 {
    let (inner, idx) = ndis_call("NdisGeneratePartialCancelId", &[]);
    let id = {
        let mut s = inner.state();
        s.ndis.cancel_ids = s.ndis.cancel_ids.wrapping_add(1);
        s.ndis.cancel_ids
    };
    inner.trace_result(idx, hex(id));
    id
}

extern "win64" fn NdisCancelSendNetBufferLists(handle: *mut c_void, cancel_id: *mut c_void) {
    let (inner, _) =
        ndis_call("NdisCancelSendNetBufferLists", &[("NdisBindingHandle", ptr(handle)), ("CancelId", ptr(cancel_id))]);
    inner.require_irql_at_most("NdisCancelSendNetBufferLists", DISPATCH);
    let (adapter, cancelled) = {
        let mut s = inner.state();
        let Some(adapter) =
            s.ndis.opens.iter().find(|o| o.handle.addr() == handle as usize && !o.closed).map(|o| o.adapter)
        else {
            drop(s);
            inner.violation(
                Rule::Ndis,
                format!("NdisCancelSendNetBufferLists on {}, which is not an open binding", ptr(handle)),
            );
            return;
        };
        let held: Vec<usize> = s.ndis.held_sends.iter().filter(|(a, _)| *a == adapter).map(|(_, n)| *n).collect();
        // SAFETY: held sends are the driver's NBLs in flight (host-allocated).
        let cancelled: Vec<usize> =
            held.into_iter().filter(|&n| unsafe { objects::cancel_id(n) } == cancel_id as usize).collect();
        for n in &cancelled {
            if let Some(e) = s.ndis.in_flight.get_mut(n) {
                e.1 = NDIS_STATUS_SEND_ABORTED;
            }
        }
        (adapter, cancelled)
    };
    crate::ndis::complete_sends(&inner, adapter, &cancelled);
}

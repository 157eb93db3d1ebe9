//! NDIS exports: version, protocol registration.

use super::*;

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
            inner.violation(Rule::BadParameter, format!("NdisDeregisterProtocolDriver({}) with an unknown handle", ptr(handle)));
        }
    }
}


// ---------------------------------------------------------------- bindings

fn ndis_call(name: &str, args: Vec<(&'static str, String)>) -> (std::sync::Arc<Inner>, usize) {
    let inner = current();
    let idx = inner.trace_call(Direction::DriverToHost, name, args);
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
        vec![("NdisProtocolHandle", ptr(protocol)), ("ProtocolBindingContext", ptr(context)), ("BindContext", ptr(bind_context))],
    );
    let r = open_adapter(&inner, protocol, context, params, bind_context, handle_out);
    inner.trace_result(idx, status(r));
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
        inner.violation(Rule::BadParameter, format!("NDIS_OPEN_PARAMETERS header {:?}", (p.Header.Type, p.Header.Revision, p.Header.Size)));
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
    // SAFETY: out pointers of the driver (SelectedMediumIndex lives in its binding).
    unsafe {
        // CAST: an index into a short array.
        write_obj(p.SelectedMediumIndex as usize, selected as u32);
        write_obj(handle_out as usize, h as *mut c_void);
    }
    inner.state().ndis.opens.push(crate::ndis::OpenRec {
        adapter,
        handle,
        context: context as usize,
        state: crate::ndis::NdisBindingState::Binding,
        open_pending: pends,
        close_pending: false,
        closed: false,
    });
    if pends { NDIS_ST_PENDING } else { ST_SUCCESS }
}

extern "win64" fn NdisCompleteBindAdapterEx(bind_context: *mut c_void, st: i32) {
    let (inner, _) = ndis_call("NdisCompleteBindAdapterEx", vec![("BindAdapterContext", ptr(bind_context)), ("Status", status(st))]);
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
    let (inner, idx) = ndis_call("NdisCloseAdapterEx", vec![("NdisBindingHandle", ptr(handle))]);
    inner.require_irql("NdisCloseAdapterEx", PASSIVE);
    let mut s = inner.state();
    let adapter = s.ndis.opens.iter().find(|o| o.handle.addr() == handle as usize && !o.closed && !o.close_pending).map(|o| o.adapter);
    let r = match adapter {
        None => {
            drop(s);
            inner.violation(Rule::Ndis, format!("NdisCloseAdapterEx({}) on a handle that is not open", ptr(handle)));
            ST_INVALID_PARAMETER
        }
        Some(a) => {
            let pends = s.ndis.adapters.get(a).is_some_and(|a| a.close_pends);
            if let Some(o) = s.ndis.opens.iter_mut().find(|o| o.handle.addr() == handle as usize && !o.closed) {
                if pends {
                    o.close_pending = true;
                } else {
                    o.closed = true;
                }
            }
            if pends { NDIS_ST_PENDING } else { ST_SUCCESS }
        }
    };
    inner.trace_result(idx, status(r));
    r
}

extern "win64" fn NdisCompleteUnbindAdapterEx(unbind_context: *mut c_void) {
    let (inner, _) = ndis_call("NdisCompleteUnbindAdapterEx", vec![("UnbindContext", ptr(unbind_context))]);
    let mut s = inner.state();
    match s.ndis.unbinds.get_mut(&(unbind_context as usize)) {
        Some(p) if p.completed.is_none() => p.completed = Some(0),
        _ => {
            drop(s);
            inner.violation(Rule::Ndis, "NdisCompleteUnbindAdapterEx for no unbind in progress (or twice)");
        }
    }
}

extern "win64" fn NdisAllocateNetBufferListPool(handle: *mut c_void, params: *mut NET_BUFFER_LIST_POOL_PARAMETERS) -> *mut c_void {
    let (inner, idx) = ndis_call("NdisAllocateNetBufferListPool", vec![("NdisHandle", ptr(handle))]);
    let r = (|| {
        if !inner.require_irql_at_most("NdisAllocateNetBufferListPool", DISPATCH) || params.is_null() {
            return std::ptr::null_mut();
        }
        // SAFETY: the driver's pool parameters, read during the call.
        let p: NET_BUFFER_LIST_POOL_PARAMETERS = unsafe { read_obj(params as usize) };
        if p.Header.Type != NDIS_OBJECT_TYPE_DEFAULT || p.Header.Size < NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1 {
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
        inner.state().ndis.nbl_pools.insert(a, (block, p.PoolTag));
        a as *mut c_void
    })();
    inner.trace_result(idx, ptr(r));
    r
}

extern "win64" fn NdisFreeNetBufferListPool(pool: *mut c_void) {
    let (inner, _) = ndis_call("NdisFreeNetBufferListPool", vec![("PoolHandle", ptr(pool))]);
    inner.require_irql_at_most("NdisFreeNetBufferListPool", DISPATCH);
    if inner.state().ndis.nbl_pools.remove(&(pool as usize)).is_none() {
        inner.violation(Rule::Ndis, format!("NdisFreeNetBufferListPool({}) frees no pool", ptr(pool)));
    }
}

extern "win64" fn NdisQueryAdapterInstanceName(out: *mut NDIS_STRING, handle: *mut c_void) -> i32 {
    let (inner, idx) = ndis_call("NdisQueryAdapterInstanceName", vec![("NdisBindingHandle", ptr(handle))]);
    inner.require_irql("NdisQueryAdapterInstanceName", PASSIVE);
    let r = (|| {
        let name = {
            let s = inner.state();
            let adapter = s.ndis.opens.iter().find(|o| o.handle.addr() == handle as usize && !o.closed).map(|o| o.adapter);
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
        unsafe { write_obj(out as usize, NDIS_STRING { Length: len, MaximumLength: len + 2, Buffer: block.addr() as *mut u16 }) };
        inner.state().ndis.ndis_memory.insert(block.addr(), block);
        ST_SUCCESS
    })();
    inner.trace_result(idx, status(r));
    r
}

extern "win64" fn NdisFreeMemory(p: *mut c_void, length: u32, flags: u32) {
    let (inner, _) = ndis_call("NdisFreeMemory", vec![("VirtualAddress", ptr(p)), ("Length", length.to_string()), ("MemoryFlags", hex(flags))]);
    inner.require_irql_at_most("NdisFreeMemory", DISPATCH);
    if inner.state().ndis.ndis_memory.remove(&(p as usize)).is_none() {
        inner.violation(Rule::BadFree, format!("NdisFreeMemory({}) frees memory NDIS did not allocate", ptr(p)));
    }
}

extern "win64" fn NdisReturnNetBufferLists(handle: *mut c_void, nbls: *mut c_void, flags: u32) {
    let (inner, _) = ndis_call("NdisReturnNetBufferLists", vec![("NdisBindingHandle", ptr(handle)), ("NetBufferLists", ptr(nbls)), ("ReturnFlags", hex(flags))]);
    inner.require_irql_at_most("NdisReturnNetBufferLists", DISPATCH);
    if flags & 1 != 0 && super::super::cpu::irql() != DISPATCH {
        inner.violation(Rule::Irql, "NdisReturnNetBufferLists with NDIS_RETURN_FLAGS_DISPATCH_LEVEL below DISPATCH_LEVEL");
    }
    // SAFETY: the chain is made of NBLs the host built for an indication (checked one by one below).
    let chain = unsafe { crate::native::ndis_objects::chain(nbls as usize, 1 << 16) };
    let mut s = inner.state();
    let mut unknown = 0;
    for n in &chain {
        if s.ndis.outstanding.remove(n).is_none() {
            unknown += 1;
        }
    }
    // Free the memory of indications that are entirely back.
    let out = s.ndis.outstanding.clone();
    s.ndis.indications.retain(|(nbls, _)| nbls.iter().any(|n| out.contains_key(n)));
    drop(s);
    if unknown > 0 {
        inner.violation(Rule::DoubleCompletion, format!("NdisReturnNetBufferLists returned {unknown} NBL(s) the driver did not own"));
    }
}

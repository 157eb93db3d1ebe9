//! NDIS exports: version, protocol registration.

use super::*;

export_table! {
    "ndis.sys": NdisGetVersion,
    "ndis.sys": NdisRegisterProtocolDriver,
    "ndis.sys": NdisDeregisterProtocolDriver,
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


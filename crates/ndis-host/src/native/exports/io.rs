//! I/O manager exports: device objects, symbolic links, IRP completion.

use super::*;

export_table! {
    "ntoskrnl.exe": IoCreateDevice,
    "ntoskrnl.exe": IoDeleteDevice,
    "ntoskrnl.exe": IoCreateSymbolicLink,
    "ntoskrnl.exe": IoDeleteSymbolicLink,
    "ntoskrnl.exe": IofCompleteRequest,
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


//! The I/O manager's requests as the public API: opening the driver's device, read, write, device control,
//! cleanup and close on a [`Host`], and requests still in flight ([`PendingIo`]). The I/O manager's model
//! (building, dispatching and completing IRPs) is [`crate::io`].

use crate::host::{Host, HostError};
use crate::io::irp_flags::*;
use crate::io::*;
use crate::machine::Inner;
use crate::native::irp::{
    device_facts, major_function, Buffer, FileObjectBlock, IosbBlock, IrpBlock, IrpSpec, MdlBlock,
    SecurityContextBlock, StackParameters, FO_CLEANUP_COMPLETE, FO_HANDLE_CREATED,
};
use crate::trace::Arg;
use crate::verifier::Rule;
use ndis_sys::{
    KernelMode, DO_EXCLUSIVE, IRP_MJ_CLEANUP, IRP_MJ_CLOSE, IRP_MJ_CREATE, IRP_MJ_READ, IRP_MJ_WRITE, MDL_PAGES_LOCKED,
    MDL_WRITE_OPERATION,
};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where a submitted request stands.
enum Submitted {
    /// Refused before reaching the driver, or finished.
    Done(IoResult),
    InFlight(usize),
}

impl Requests for Host {
    fn wait_irp(&self, irp: usize, timeout: Duration) -> Result<Option<IoResult>, HostError> {
        Host::wait_irp(self, irp, timeout)
    }

    fn cancel_irp(&self, irp: usize) -> Result<bool, HostError> {
        Host::cancel_irp(self, irp)
    }

    fn machine(&self) -> &Inner {
        &self.inner
    }
}

impl Host {
    /// Arms a [`UserFlip`] for the next request that carries a caller input buffer (replacing one still armed).
    pub fn arm_user_flip(&self, flip: UserFlip) {
        let f = &self.inner().user_flip;
        *f.slot() = FlipSlot { plan: Some(flip), ..FlipSlot::default() };
        f.armed.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Whether the armed flip wrote the caller's buffer (it does not if the driver made fewer calls, or the
    /// bytes did not fit the buffer).
    pub fn user_flip_fired(&self) -> bool {
        self.inner().user_flip.slot().fired
    }

    /// A new process of the emulated machine.
    pub fn new_process(&self) -> ProcessId {
        let mut st = self.inner.state();
        let io = &mut st.io;
        io.next_pid = io.next_pid.max(1) + 1;
        let pid = ProcessId(io.next_pid);
        io.processes.insert(pid);
        pid
    }

    /// Turns the double-fetch watch on or off: while each request is dispatched, its caller input buffer
    /// (WriteFile on a DO_DIRECT_IO device, direct and neither-I/O IOCTL input) is watched, and a byte the
    /// driver reads twice is a [`Rule::DoubleFetch`] finding naming both instructions. Slow (every access
    /// to the buffer traps twice): for tests.
    pub fn set_double_fetch_watch(&self, on: bool) {
        self.inner.double_fetch_watch.store(on, std::sync::atomic::Ordering::Release);
    }

    /// A new process of the emulated machine whose threads run with `token` (see [`crate::security`]).
    pub fn new_process_as(&self, token: crate::security::Token) -> ProcessId {
        let pid = self.new_process();
        self.inner.state().security.tokens.insert(pid.0, token);
        pid
    }

    /// Sets a registry value (`key` an NT name such as `\Registry\Machine\SYSTEM\...`; case does not
    /// matter), e.g. before DriverEntry reads it.
    pub fn set_registry_value(&self, key: &str, name: &str, kind: u32, data: &[u8]) {
        let mut st = self.inner.state();
        let values = st.security.registry.entry(key.to_ascii_lowercase()).or_default();
        values.insert(name.to_ascii_lowercase(), crate::security::RegValue { kind, data: data.to_vec() });
    }

    /// The DACL the driver set on its device named `name` (`\Device\RawLink`), if it set one.
    pub fn device_security(&self, name: &str) -> Option<crate::security::Descriptor> {
        let st = self.inner.state();
        let device = st.devices.iter().find(|d| d.name.as_deref() == Some(name))?.block.addr();
        st.security.devices.get(&device).cloned()
    }

    /// Opens `path` (`\\.\RawLink`, `\??\RawLink`, `\Device\RawLink` ...) for reading and writing in the
    /// initial process.
    pub fn open(&self, path: &str) -> Result<Handle, OpenError> {
        self.open_in(ProcessId::INITIAL, path, Access::READ_WRITE)
    }

    /// Opens `path` in process `pid` asking for `access`: IRP_MJ_CREATE on the device the name resolves to.
    pub fn open_in(&self, pid: ProcessId, path: &str, access: Access) -> Result<Handle, OpenError> {
        let (device, rest) = {
            let st = self.inner.state();
            let names: Vec<&str> = st.devices.iter().filter_map(|d| d.name.as_deref()).collect();
            let (dev_name, rest) = resolve_name(&st.links, &names, path).map_err(OpenError::Status)?;
            let Some(rec) = st.devices.iter().find(|d| d.name.as_deref() == Some(dev_name)) else {
                return Err(OpenError::Status(STATUS_OBJECT_NAME_NOT_FOUND));
            };
            let facts = device_facts(&rec.block);
            let device = rec.block.addr();
            if facts.flags & DO_EXCLUSIVE != 0 && st.io.files.values().any(|f| f.device == device) {
                return Err(OpenError::Status(STATUS_ACCESS_DENIED));
            }
            // The access check (SeAccessCheck against the device's descriptor): for the device itself, and
            // with FILE_DEVICE_SECURE_OPEN for every name below it; other names below it are the driver's
            // to check.
            const FILE_DEVICE_SECURE_OPEN: u32 = 0x100;
            let checked = rest.is_empty() || facts.characteristics & FILE_DEVICE_SECURE_OPEN != 0;
            if let Some(d) = st.security.devices.get(&device).filter(|_| checked) {
                let asked = if access.grants(Access::READ) { 0x0012_0089 } else { 0 }
                    | if access.grants(Access::WRITE) { 0x0012_0116 } else { 0 };
                if !d.grants(&st.security.token(pid.0), asked) {
                    return Err(OpenError::Status(STATUS_ACCESS_DENIED));
                }
            }
            (device, rest)
        };
        let fo = FileObjectBlock::build(device, &rest, access.grants(Access::READ), access.grants(Access::WRITE), 0)
            .ok_or(OpenError::Status(STATUS_INSUFFICIENT_RESOURCES))?;
        // FILE_OPEN disposition, FILE_NON_DIRECTORY_FILE; CreateFile's FILE_ATTRIBUTE_NORMAL and full sharing.
        // GENERIC_READ/GENERIC_WRITE arrive mapped to FILE_GENERIC_READ (0x120089) / FILE_GENERIC_WRITE (0x120116).
        const FILE_OPEN: u32 = 1;
        const FILE_NON_DIRECTORY_FILE: u32 = 0x40;
        let options = (FILE_OPEN << 24) | FILE_NON_DIRECTORY_FILE;
        let desired = if access.grants(Access::READ) { 0x0012_0089 } else { 0 }
            | if access.grants(Access::WRITE) { 0x0012_0116 } else { 0 };
        let security =
            SecurityContextBlock::build(desired, options).ok_or(OpenError::Status(STATUS_INSUFFICIENT_RESOURCES))?;
        let file_id = {
            let mut st = self.inner.state();
            st.io.processes.insert(pid);
            st.io.next_file += 1;
            let id = st.io.next_file;
            st.io.files.insert(
                id,
                FileRec { fo, device, access, handles: 0, pending: 0, cleanup_sent: false, close_sent: false },
            );
            id
        };
        let mut req = Request::new(
            IRP_MJ_CREATE,
            StackParameters::Create {
                security_context: security.addr(),
                options,
                file_attributes: 0x80,
                share_access: 3,
            },
        );
        req.flags = IRP_CREATE_OPERATION | IRP_SYNCHRONOUS_API;
        req.security = Some(security);
        req.file_name = Some(rest.clone());
        req.details = vec![("DesiredAccess", Arg::Hex(desired.into()))];
        let result = self.submit(pid, file_id, req).and_then(|s| self.finish(s));
        let result = match result {
            Ok(r) => r,
            Err(e) => {
                self.inner.state().io.files.remove(&file_id);
                return Err(e.into());
            }
        };
        let mut st = self.inner.state();
        if nt_error(result.status) || result.status == STATUS_PENDING {
            // A failed create: the file object goes away without cleanup or close.
            st.io.files.remove(&file_id);
            return Err(OpenError::Status(result.status));
        }
        let Some(f) = st.io.files.get_mut(&file_id) else { return Err(OpenError::Status(STATUS_INVALID_HANDLE)) };
        f.handles += 1;
        f.fo.add_flags(FO_HANDLE_CREATED);
        st.io.next_handle = st.io.next_handle.max(0x40) + 4;
        let handle = Handle { pid, value: st.io.next_handle };
        st.io.handles.insert(handle, file_id);
        Ok(handle)
    }

    /// Closes a handle: IRP_MJ_CLEANUP when it was the file object's last handle, then IRP_MJ_CLOSE once no
    /// request of the file is outstanding. Returns STATUS_SUCCESS or STATUS_INVALID_HANDLE.
    pub fn close(&self, handle: Handle) -> Result<i32, HostError> {
        let (file_id, last) = {
            let mut st = self.inner.state();
            let Some(file_id) = st.io.handles.remove(&handle) else { return Ok(STATUS_INVALID_HANDLE) };
            let Some(f) = st.io.files.get_mut(&file_id) else { return Ok(STATUS_INVALID_HANDLE) };
            f.handles = f.handles.saturating_sub(1);
            (file_id, f.handles == 0)
        };
        if last {
            // A file object whose CLEANUP `cleanup_only` sent already gets only its CLOSE.
            if !self.inner.state().io.files.get(&file_id).is_some_and(|f| f.cleanup_sent) {
                self.send_cleanup(handle.pid, file_id)?;
            }
            self.close_if_unreferenced(handle.pid, file_id)?;
        }
        Ok(STATUS_SUCCESS)
    }

    /// The race at the I/O manager's edge, made deterministic: IRP_MJ_CLEANUP of `handle`'s file object is
    /// sent now, but the handle stays usable, so later requests on it stand for requests that were already
    /// in flight when the last handle closed and reach the driver after CLEANUP. [`Host::close`] then sends
    /// only IRP_MJ_CLOSE. Returns STATUS_SUCCESS or STATUS_INVALID_HANDLE.
    pub fn cleanup_only(&self, handle: Handle) -> Result<i32, HostError> {
        let file_id = {
            let st = self.inner.state();
            let Some(&file_id) = st.io.handles.get(&handle) else { return Ok(STATUS_INVALID_HANDLE) };
            match st.io.files.get(&file_id) {
                Some(f) if !f.cleanup_sent => file_id,
                _ => return Ok(STATUS_INVALID_HANDLE),
            }
        };
        self.send_cleanup(handle.pid, file_id)?;
        Ok(STATUS_SUCCESS)
    }

    /// IRP_MJ_CLEANUP of `file_id`, waiting for it; the file object is then marked FO_CLEANUP_COMPLETE.
    fn send_cleanup(&self, pid: ProcessId, file_id: u64) -> Result<(), HostError> {
        let mut req = Request::new(IRP_MJ_CLEANUP, StackParameters::None);
        req.flags = IRP_CLOSE_OPERATION | IRP_SYNCHRONOUS_API;
        req.requestor_mode = KernelMode;
        if let Some(f) = self.inner.state().io.files.get_mut(&file_id) {
            f.cleanup_sent = true;
        }
        let s = self.submit(pid, file_id, req)?;
        self.finish(s)?;
        if let Some(f) = self.inner.state().io.files.get(&file_id) {
            f.fo.add_flags(FO_CLEANUP_COMPLETE);
        }
        Ok(())
    }

    /// Sends IRP_MJ_CLOSE when the file object has no handles and no outstanding requests.
    fn close_if_unreferenced(&self, pid: ProcessId, file_id: u64) -> Result<(), HostError> {
        {
            let mut st = self.inner.state();
            let Some(f) = st.io.files.get_mut(&file_id) else { return Ok(()) };
            if f.handles != 0 || f.pending != 0 || !f.cleanup_sent || f.close_sent {
                return Ok(());
            }
            f.close_sent = true;
        }
        let mut req = Request::new(IRP_MJ_CLOSE, StackParameters::None);
        req.flags = IRP_CLOSE_OPERATION | IRP_SYNCHRONOUS_API;
        req.requestor_mode = KernelMode;
        let s = self.submit(pid, file_id, req)?;
        self.finish(s)?;
        self.inner.state().io.files.remove(&file_id);
        Ok(())
    }

    /// DuplicateHandle: a second handle to the same file object, in process `target`. CLEANUP is sent only
    /// when the file object's last handle is closed.
    pub fn duplicate_handle(&self, handle: Handle, target: ProcessId) -> Option<Handle> {
        let mut st = self.inner.state();
        let file_id = *st.io.handles.get(&handle)?;
        st.io.files.get_mut(&file_id)?.handles += 1;
        st.io.processes.insert(target);
        st.io.next_handle = st.io.next_handle.max(0x40) + 4;
        let dup = Handle { pid: target, value: st.io.next_handle };
        st.io.handles.insert(dup, file_id);
        Some(dup)
    }

    /// The handles that are open, by process.
    pub fn open_handles(&self) -> Vec<Handle> {
        self.inner.state().io.handles.keys().copied().collect()
    }

    /// The FileName the driver's FILE_OBJECT of `handle` carries.
    pub fn file_name(&self, handle: Handle) -> Option<String> {
        let st = self.inner.state();
        let id = st.io.handles.get(&handle)?;
        st.io.files.get(id).map(|f| f.fo.file_name())
    }

    /// ReadFile of `len` bytes, waiting for completion.
    pub fn read(&self, handle: Handle, len: usize) -> Result<IoResult, HostError> {
        let s = self.submit_handle(handle, Access::READ, |flags| read_write(IRP_MJ_READ, flags, &[], len))?;
        self.finish(s)
    }

    /// WriteFile of `bytes`, waiting for completion.
    pub fn write(&self, handle: Handle, bytes: &[u8]) -> Result<IoResult, HostError> {
        let s =
            self.submit_handle(handle, Access::WRITE, |flags| read_write(IRP_MJ_WRITE, flags, bytes, bytes.len()))?;
        self.finish(s)
    }

    /// DeviceIoControl, waiting for completion.
    pub fn device_io_control(
        &self,
        handle: Handle,
        code: u32,
        input: &[u8],
        output_len: usize,
    ) -> Result<IoResult, HostError> {
        let need = CtlCode::decode(code).required_access;
        let s = self.submit_handle(handle, need, |_| device_control(code, input, output_len))?;
        self.finish(s)
    }

    /// An overlapped ReadFile.
    pub fn submit_read(&self, handle: Handle, len: usize) -> Result<PendingIo<'_>, HostError> {
        let s = self.submit_handle(handle, Access::READ, |flags| read_write(IRP_MJ_READ, flags, &[], len))?;
        Ok(self.pending(s))
    }

    /// Waits for a request submitted earlier whose [`PendingIo`] was dropped (by its `irp()` number), e.g.
    /// because the test needed `&mut Host` meanwhile. `None` if it did not complete within `timeout`.
    pub fn wait_request(&self, irp: usize, timeout: Duration) -> Result<Option<IoResult>, HostError> {
        self.wait_irp(irp, timeout)
    }

    /// Cancels a request submitted earlier whose [`PendingIo`] was dropped (IoCancelIrp, as CancelIoEx);
    /// true if the driver's cancel routine ran.
    pub fn cancel_request(&self, irp: usize) -> Result<bool, HostError> {
        self.cancel_irp(irp)
    }

    /// An overlapped WriteFile.
    pub fn submit_write(&self, handle: Handle, bytes: &[u8]) -> Result<PendingIo<'_>, HostError> {
        let s =
            self.submit_handle(handle, Access::WRITE, |flags| read_write(IRP_MJ_WRITE, flags, bytes, bytes.len()))?;
        Ok(self.pending(s))
    }

    /// An overlapped DeviceIoControl.
    pub fn submit_ioctl(
        &self,
        handle: Handle,
        code: u32,
        input: &[u8],
        output_len: usize,
    ) -> Result<PendingIo<'_>, HostError> {
        let need = CtlCode::decode(code).required_access;
        let s = self.submit_handle(handle, need, |_| device_control(code, input, output_len))?;
        Ok(self.pending(s))
    }

    /// An overlapped DeviceIoControl whose output buffer is `memory`, caller memory that stays shared with the
    /// driver while the request is outstanding (a mapped ring: METHOD_OUT_DIRECT or METHOD_IN_DIRECT, the
    /// I/O manager probes and locks its pages once, for the life of the request). Nothing is copied back at
    /// completion; the caller reads `memory` itself.
    pub fn submit_ioctl_shared(
        &self,
        handle: Handle,
        code: u32,
        input: &[u8],
        memory: &Arc<UserMemory>,
    ) -> Result<PendingIo<'_>, HostError> {
        let ctl = CtlCode::decode(code);
        let mem = Arc::clone(memory);
        let s = self.submit_handle(handle, ctl.required_access, move |_| {
            let mut r = device_control(code, input, 0)?;
            // A zero-length buffer has no MDL, as on Windows.
            if matches!(ctl.transfer, TransferType::InDirect | TransferType::OutDirect) && !mem.is_empty() {
                let len = u32::try_from(mem.len()).map_err(|_| STATUS_INVALID_PARAMETER)?;
                if let StackParameters::DeviceIoControl { output_length, .. } = &mut r.params {
                    *output_length = len;
                }
                r.mdl_over = Some((true, ctl.transfer == TransferType::OutDirect));
                r.info_limit = mem.len();
                r.output = Output::None;
                r.shared = Some(mem);
            }
            Ok(r)
        })?;
        Ok(self.pending(s))
    }

    /// How many caller buffers the I/O manager has probed and locked for direct-I/O requests
    /// (MmProbeAndLockPages), since the host started.
    pub fn user_pages_locked(&self) -> u64 {
        self.inner.state().io.pages_locked
    }

    fn pending(&self, s: Submitted) -> PendingIo<'_> {
        match s {
            Submitted::Done(r) => PendingIo { host: self, irp: 0, result: Some(r) },
            Submitted::InFlight(irp) => PendingIo { host: self, irp, result: None },
        }
    }

    /// Waits for a submitted request for the machine's call timeout.
    fn finish(&self, s: Submitted) -> Result<IoResult, HostError> {
        match s {
            Submitted::Done(r) => Ok(r),
            Submitted::InFlight(irp) => {
                let timeout = self.inner.config.call_timeout;
                self.wait_irp(irp, timeout)?
                    .ok_or_else(|| HostError::Hang { call: format!("completion of IRP {irp:#x}"), timeout })
            }
        }
    }

    /// Checks the handle and its access, then builds and dispatches the request `build` makes for the
    /// device's flags.
    fn submit_handle(
        &self,
        handle: Handle,
        need: Access,
        build: impl FnOnce(u32) -> Result<Request, i32>,
    ) -> Result<Submitted, HostError> {
        let (file_id, flags) = {
            let st = self.inner.state();
            let Some(&file_id) = st.io.handles.get(&handle) else {
                return Ok(Submitted::Done(IoResult::status_only(STATUS_INVALID_HANDLE)));
            };
            let Some(f) = st.io.files.get(&file_id) else {
                return Ok(Submitted::Done(IoResult::status_only(STATUS_INVALID_HANDLE)));
            };
            if !f.access.grants(need) {
                return Ok(Submitted::Done(IoResult::status_only(STATUS_ACCESS_DENIED)));
            }
            let Some(dev) = st.devices.iter().find(|d| d.block.addr() == f.device) else {
                return Ok(Submitted::Done(IoResult::status_only(STATUS_NO_SUCH_DEVICE)));
            };
            (file_id, device_facts(&dev.block).flags)
        };
        match build(flags) {
            Ok(req) => self.submit(handle.pid, file_id, req),
            Err(s) => Ok(Submitted::Done(IoResult::status_only(s))),
        }
    }

    /// Builds the IRP of `req` on `file_id` and calls the device's dispatch routine.
    fn submit(&self, pid: ProcessId, file_id: u64, req: Request) -> Result<Submitted, HostError> {
        let Request {
            major,
            flags,
            requestor_mode,
            params,
            system,
            user_in,
            user_out,
            shared,
            mdl_over,
            user_buffer,
            security,
            output,
            info_limit,
            details,
            file_name,
        } = req;
        let user_in = user_in.map(Arc::new);
        if let Some(b) = &user_in {
            self.inner.user_flip.target(b);
        }
        let watched = user_in
            .as_ref()
            .filter(|_| self.inner.double_fetch_watch.load(std::sync::atomic::Ordering::Acquire))
            .map(|b| (b.addr(), b.len()));
        let built = {
            let mut st = self.inner.state();
            let Some(f) = st.io.files.get(&file_id) else {
                return Ok(Submitted::Done(IoResult::status_only(STATUS_INVALID_HANDLE)));
            };
            let (device, fo) = (f.device, f.fo.addr());
            let Some(dev) = st.devices.iter().find(|d| d.block.addr() == device) else {
                return Ok(Submitted::Done(IoResult::status_only(STATUS_NO_SUCH_DEVICE)));
            };
            let facts = device_facts(&dev.block);
            let mdl = match mdl_over {
                None => None,
                Some((over_out, device_writes)) => {
                    let b = if over_out {
                        user_out
                            .as_ref()
                            .map(|b| (b.addr(), b.len()))
                            .or(shared.as_deref().map(|m| (m.addr(), m.len())))
                    } else {
                        user_in.as_deref().map(|b| (b.addr(), b.len()))
                    };
                    match b {
                        None => None,
                        Some((addr, len)) => {
                            // IoAllocateMdl + MmProbeAndLockPages(UserMode, IoWriteAccess or IoReadAccess): the
                            // probe can fail (the pages cannot be locked), and the request then never reaches
                            // the driver.
                            if self.inner.inject("MmProbeAndLockPages") {
                                return Ok(Submitted::Done(IoResult::status_only(STATUS_INSUFFICIENT_RESOURCES)));
                            }
                            st.io.pages_locked += 1;
                            let mdl_flags = MDL_PAGES_LOCKED | if device_writes { MDL_WRITE_OPERATION } else { 0 };
                            // Buffer lengths were checked to fit a ULONG when the request was built.
                            let m = u32::try_from(len).ok().and_then(|len| MdlBlock::build(addr, len, mdl_flags, true));
                            match m {
                                Some(m) => Some(m),
                                None => {
                                    return Ok(Submitted::Done(IoResult::status_only(STATUS_INSUFFICIENT_RESOURCES)))
                                }
                            }
                        }
                    }
                }
            };
            let ub = match user_buffer {
                Some(true) => user_out.as_ref().map_or(0, Buffer::addr),
                Some(false) => user_in.as_deref().map_or(0, Buffer::addr),
                None => 0,
            };
            let Some(iosb) = IosbBlock::new() else {
                return Ok(Submitted::Done(IoResult::status_only(STATUS_INSUFFICIENT_RESOURCES)));
            };
            let spec = IrpSpec {
                major,
                flags,
                requestor_mode,
                stack_size: facts.stack_size,
                device,
                file: fo,
                system_buffer: system.as_ref().map_or(0, Buffer::addr),
                user_buffer: ub,
                mdl: mdl.as_ref().map_or(0, MdlBlock::addr),
                user_iosb: iosb.addr(),
                params,
            };
            let Some(irp) = IrpBlock::build(&spec) else {
                return Ok(Submitted::Done(IoResult::status_only(STATUS_INSUFFICIENT_RESOURCES)));
            };
            let irp = Arc::new(irp);
            let addr = irp.addr();
            st.completed_irps.remove(&addr);
            if let Some(f) = st.io.files.get_mut(&file_id) {
                f.pending += 1;
            }
            st.io.irps.insert(
                addr,
                IrpRec {
                    irp: Arc::clone(&irp),
                    major,
                    pid,
                    file: file_id,
                    device,
                    system,
                    user_in,
                    user_out,
                    shared,
                    _lent: (mdl, security),
                    iosb,
                    output,
                    info_limit,
                    completion: None,
                    returned: None,
                    cancelling: false,
                },
            );
            (irp, device)
        };
        let (irp, device) = built;
        let addr = irp.addr();
        let f = major_function(&self.inner.driver_object, major);
        let name = major_name(major);
        if f == 0 {
            // IopInvalidDeviceRequest: the I/O manager completes what the driver has no routine for.
            let mut st = self.inner.state();
            if let Some(r) = st.io.irps.get_mut(&addr) {
                r.completion = Some((STATUS_INVALID_DEVICE_REQUEST, 0));
                r.returned = Some(STATUS_INVALID_DEVICE_REQUEST);
            }
            return Ok(Submitted::InFlight(addr));
        }
        let label = name.to_owned();
        // The dispatch routine runs in the caller's thread, as on Windows: requests of different callers
        // reach the driver concurrently, and one that blocks in its dispatch routine holds up no other.
        self.run_in_caller_thread(0, name, move |inner| {
            crate::security::as_caller(pid.0, || {
                let watch = watched.and_then(|(start, len)| crate::native::watch::arm(start, len));
                let named = file_name.as_deref().map(|n| ("FileName", Arg::Text(n)));
                let traced = named.iter().chain(&details).copied();
                let status = crate::native::dispatch::call_dispatch(inner, &label, f, device, &irp, traced);
                if let Some(found) = watch.and_then(crate::native::watch::Armed::finish) {
                    inner.violation(
                        Rule::DoubleFetch,
                        format!(
                            "{label}: the caller's input byte at offset {} was read twice while the request was dispatched, first at {}, then at {} (the caller can change it in between)",
                            found.offset,
                            inner.symbolize(found.first_rip).unwrap_or_else(|| format!("{:#x}", found.first_rip)),
                            inner.symbolize(found.second_rip).unwrap_or_else(|| format!("{:#x}", found.second_rip)),
                        ),
                    );
                }
                after_dispatch(inner, irp.addr(), &label, status);
            });
        })?;
        Ok(Submitted::InFlight(addr))
    }

    /// Waits until the IRP is finished (completed, dispatch returned, no cancel running), then finishes it.
    fn wait_irp(&self, irp: usize, timeout: Duration) -> Result<Option<IoResult>, HostError> {
        let start = Instant::now();
        loop {
            {
                let st = self.inner.state();
                let Some(r) = st.io.irps.get(&irp) else {
                    return Err(HostError::State(format!("IRP {irp:#x} is not outstanding")));
                };
                let abandoned = r.completion.is_none() && r.returned.is_some_and(|s| s != STATUS_PENDING);
                if abandoned {
                    // The dispatch routine broke the contract (a violation is recorded): report what it
                    // returned and leave the IRP to the unload check.
                    return Ok(Some(IoResult::status_only(r.returned.unwrap_or(STATUS_PENDING))));
                }
                if r.completion.is_some() && r.returned.is_some() && !r.cancelling {
                    break;
                }
                // Woken by a completion, a dispatch return, a cancel's end or a bug check (`irp_changed`,
                // notified under this lock, so nothing is missed); every 5 ms at the latest, to look at the
                // clock and the bug check anyway.
                let left = timeout.saturating_sub(start.elapsed()).min(Duration::from_millis(5));
                if !left.is_zero() {
                    self.inner.wait_irp_change(st, left);
                }
            }
            if let Some(b) = self.bugcheck() {
                return Err(HostError::Bugcheck(b));
            }
            if start.elapsed() >= timeout {
                return Ok(None);
            }
        }
        let (rec, file) = {
            let mut st = self.inner.state();
            let Some(rec) = st.io.irps.remove(&irp) else {
                return Err(HostError::State(format!("IRP {irp:#x} vanished")));
            };
            if let Some(f) = st.io.files.get_mut(&rec.file) {
                f.pending = f.pending.saturating_sub(1);
            }
            let file = (rec.pid, rec.file);
            (rec, file)
        };
        let result = self.finish_irp(&rec);
        drop(rec);
        self.close_if_unreferenced(file.0, file.1)?;
        Ok(Some(result))
    }

    /// The I/O manager's completion work: checks, the copy back to the caller, the caller's IOSB.
    fn finish_irp(&self, rec: &IrpRec) -> IoResult {
        let (status, information) = rec.completion.unwrap_or((STATUS_PENDING, 0));
        let name = major_name(rec.major);
        let transfers = !matches!(rec.output, Output::None) || rec.major == IRP_MJ_WRITE;
        if transfers && information > rec.info_limit {
            self.inner.violation(
                Rule::Irp,
                format!(
                    "{name} IRP {:#x} completed with Information {information} beyond the caller's {} bytes",
                    rec.irp.addr(),
                    rec.info_limit
                ),
            );
        }
        let n = information.min(rec.info_limit);
        let output = if nt_error(status) {
            Vec::new()
        } else {
            match rec.output {
                Output::None => Vec::new(),
                Output::System(_) => rec.system.as_ref().map(|b| b.bytes(n)).unwrap_or_default(),
                Output::UserOut(_) => rec.user_out.as_ref().map(|b| b.bytes(n)).unwrap_or_default(),
            }
        };
        rec.iosb.set(status, information);
        IoResult { status, information, output }
    }

    /// IoCancelIrp on an outstanding request, on a processor at PASSIVE_LEVEL.
    fn cancel_irp(&self, irp: usize) -> Result<bool, HostError> {
        let (block, device) = {
            let mut st = self.inner.state();
            let Some(r) = st.io.irps.get_mut(&irp) else { return Ok(false) };
            if r.completion.is_some() {
                return Ok(false);
            }
            r.cancelling = true;
            (Arc::clone(&r.irp), r.device)
        };
        let ran = self.run_in_caller_thread(1, "IoCancelIrp", move |inner| {
            crate::native::dispatch::cancel_irp(inner, &block, device)
        });
        if let Some(r) = self.inner.state().io.irps.get_mut(&irp) {
            r.cancelling = false;
        }
        self.inner.irp_changed();
        ran
    }

    /// Process exit: cancels the process's outstanding requests, waits for them, then closes every handle
    /// it still has (cleanup, then close), as Windows does.
    pub fn exit_process(&self, pid: ProcessId) -> Result<(), HostError> {
        let irps: Vec<usize> = {
            let st = self.inner.state();
            st.io.irps.iter().filter(|(_, r)| r.pid == pid && r.completion.is_none()).map(|(a, _)| *a).collect()
        };
        for irp in &irps {
            self.cancel_irp(*irp)?;
        }
        for irp in irps {
            let timeout = self.inner.config.call_timeout;
            if self.wait_irp(irp, timeout)?.is_none() {
                self.inner.violation(
                    Rule::Irp,
                    format!(
                        "IRP {irp:#x} of exiting process {} was not completed within {timeout:?} after IoCancelIrp",
                        pid.0
                    ),
                );
            }
        }
        let handles: Vec<Handle> = self.inner.state().io.handles.keys().filter(|h| h.pid == pid).copied().collect();
        for h in handles {
            self.close(h)?;
        }
        self.inner.state().io.processes.remove(&pid);
        Ok(())
    }

    /// Before DriverUnload: Windows does not unload a driver whose device has open files; the host records
    /// that as a violation and closes them (every process exits) so the unload can be checked.
    pub(crate) fn close_all_before_unload(&self) -> Result<(), HostError> {
        let (files, pids) = {
            let st = self.inner.state();
            let pids: BTreeSet<ProcessId> = st.io.handles.keys().map(|h| h.pid).collect();
            (st.io.files.len(), pids)
        };
        if files == 0 {
            return Ok(());
        }
        self.inner.violation(
            Rule::Irp,
            format!("unload requested while {files} file object(s) are open on the driver's device; Windows refuses to unload then (the host closed them first)"),
        );
        for pid in pids {
            self.exit_process(pid)?;
        }
        Ok(())
    }

    /// After DriverUnload: requests still outstanding and MDLs the driver did not free.
    pub(crate) fn check_io_released(&self, when: &str) {
        let st = self.inner.state();
        let irps: Vec<String> =
            st.io.irps.values().map(|r| format!("{} {:#x}", major_name(r.major), r.irp.addr())).collect();
        let mdls = st.io.driver_mdls.len();
        drop(st);
        if !irps.is_empty() {
            self.inner
                .violation(Rule::Irp, format!("{when}: {} IRP(s) never completed: {}", irps.len(), irps.join(", ")));
        }
        if mdls != 0 {
            self.inner.violation(Rule::PoolLeak, format!("{when}: {mdls} MDL(s) from IoAllocateMdl not freed"));
        }
    }
}

// Test support: dispatch routines that behave like good and bad drivers (`FakeDispatch`).
impl Host {
    /// Test support: replaces the driver's `MajorFunction[major]` with a host routine that behaves as `b`,
    /// to exercise pending, cancellation, buffer copy-back and the verifier's IRP rules.
    #[doc(hidden)]
    pub fn install_fake_dispatch(&self, major: u8, b: FakeDispatch) {
        crate::native::irp::set_major_function(
            &self.inner.driver_object,
            major,
            crate::native::fake_driver::routine(b),
        );
    }

    /// Test support: completes every request a [`FakeDispatch::PendCancelable`] or
    /// [`FakeDispatch::PendUnmarked`] routine queued, with `status`; returns how many.
    #[doc(hidden)]
    pub fn complete_fake_queue(&self, status: i32) -> Result<usize, HostError> {
        let devices: Vec<usize> = self.inner.state().devices.iter().map(|d| d.block.addr()).collect();
        self.run(0, "fake driver queue drain", move |_inner| {
            devices.into_iter().map(|d| crate::native::fake_driver::complete_queued(d, status)).sum()
        })
    }
}

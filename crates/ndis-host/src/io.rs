//! The emulated I/O manager: opening the driver's device by name, and read, write, device-control, cleanup
//! and close requests built as Windows builds them, with pending, completion, cancellation and the handles
//! of exiting processes.
//!
//! A request is an [`IrpBlock`](crate::native::irp::IrpBlock) with `StackSize` stack locations, the
//! buffers its transfer type asks for (a system buffer, an MDL over the caller's buffer, or the caller's
//! pointers), the caller's file object and an IO_STATUS_BLOCK. The host thread builds it, a caller thread of
//! its own (as on Windows, where the dispatch routine runs in the requesting thread) calls the device's
//! `MajorFunction` at PASSIVE_LEVEL, and the request is finished — output copied back, memory
//! freed — once the dispatch routine has returned and the driver has called IofCompleteRequest
//! ([`complete_request`]). The verifier checks the dispatch contract on the way: STATUS_PENDING only with
//! IoMarkIrpPending, a synchronous return only after completion and with the completed status, no cancel
//! routine left in a completed IRP, no Information beyond the caller's buffer.

pub mod state;
pub use crate::native::user_memory::UserMemory;
use state::irp_flags::*;
pub use state::Behaviour as FakeDispatch;
pub use state::*;

use crate::machine::{HostError, Inner};
use crate::native::irp::{Buffer, SecurityContextBlock, StackParameters};
use crate::trace::{status, Arg};
use crate::verifier::Rule;
use ndis_sys::{
    UserMode, DO_BUFFERED_IO, DO_DIRECT_IO, IRP_MJ_CLEANUP, IRP_MJ_CLOSE, IRP_MJ_CREATE, IRP_MJ_DEVICE_CONTROL,
    IRP_MJ_READ, IRP_MJ_WRITE, SL_PENDING_RETURNED,
};
use std::time::Duration;

/// Why an open failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("open failed with {}", status(*.0))]
    Status(i32),
    #[error(transparent)]
    Host(#[from] HostError),
}

impl OpenError {
    /// The NTSTATUS, when the open failed with one.
    pub fn status(&self) -> Option<i32> {
        match self {
            OpenError::Status(s) => Some(*s),
            OpenError::Host(_) => None,
        }
    }
}

/// What a [`PendingIo`] needs of the [`Host`](crate::host::Host) that submitted it, which lies a layer above
/// this module (see the crate documentation).
pub(crate) trait Requests: std::fmt::Debug {
    /// Waits up to `timeout` for the request to finish.
    fn wait_irp(&self, irp: usize, timeout: Duration) -> Result<Option<IoResult>, HostError>;
    /// IoCancelIrp.
    fn cancel_irp(&self, irp: usize) -> Result<bool, HostError>;
    /// The machine.
    fn machine(&self) -> &Inner;
}

/// A request still in flight; [`PendingIo::wait`] finishes it, [`PendingIo::cancel`] cancels it.
#[derive(Debug)]
#[must_use = "a submitted request should be waited for"]
pub struct PendingIo<'h> {
    pub(crate) host: &'h dyn Requests,
    pub(crate) irp: usize,
    pub(crate) result: Option<IoResult>,
}

impl PendingIo<'_> {
    /// Waits up to `timeout` for the request to complete; `None` if it is still pending.
    pub fn wait(&mut self, timeout: Duration) -> Result<Option<IoResult>, HostError> {
        if self.result.is_none() {
            self.result = self.host.wait_irp(self.irp, timeout)?;
        }
        Ok(self.result.clone())
    }

    /// Whether the driver completed the request (it may not be finished yet).
    pub fn is_completed(&self) -> bool {
        self.result.is_some()
            || self.host.machine().state().io.irps.get(&self.irp).is_none_or(|r| r.completion.is_some())
    }

    /// Cancels the request (IoCancelIrp); true if the driver's cancel routine ran.
    pub fn cancel(&self) -> Result<bool, HostError> {
        if self.result.is_some() {
            return Ok(false);
        }
        self.host.cancel_irp(self.irp)
    }

    /// The IRP's address (for matching the trace).
    pub fn irp(&self) -> usize {
        self.irp
    }
}

// ---------------------------------------------------------------- completion (processor threads)

/// How many completed IRPs the I/O manager remembers past their end (to report a second completion).
pub const COMPLETED_IRPS_KEPT: usize = 4096;

/// IofCompleteRequest's I/O-manager half: records the completion of an IRP the host issued and checks it;
/// returns the IoStatus it completed with.
pub(crate) fn complete_request(inner: &Inner, irp: usize) -> Option<(i32, usize)> {
    let mut st = inner.state();
    let count = {
        let n = st.completed_irps.entry(irp).or_insert(0);
        *n += 1;
        *n
    };
    // Completions of IRPs long finished are forgotten, so a run of days keeps a bounded record.
    if st.completed_irps.len() > COMPLETED_IRPS_KEPT {
        let crate::machine::State { completed_irps, io, .. } = &mut *st;
        completed_irps.retain(|a, _| *a == irp || io.irps.contains_key(a));
    }
    let Some(rec) = st.io.irps.get_mut(&irp) else {
        drop(st);
        if count > 1 {
            inner.violation(Rule::DoubleCompletion, format!("IRP {irp:#x} completed twice"));
        } else {
            inner.violation(
                Rule::BadParameter,
                format!("IofCompleteRequest({irp:#x}) on an IRP the I/O manager did not issue"),
            );
        }
        return None;
    };
    if rec.completion.is_some() || count > 1 {
        drop(st);
        inner.violation(Rule::DoubleCompletion, format!("IRP {irp:#x} completed twice"));
        return None;
    }
    let (s, info) = rec.irp.io_status();
    rec.irp.set_pending_returned(rec.irp.stack_control() & SL_PENDING_RETURNED != 0);
    let routine = rec.irp.cancel_routine();
    rec.completion = Some((s, info));
    drop(st);
    inner.irp_changed();
    if routine != 0 {
        inner.violation(
            Rule::Irp,
            format!("IRP {irp:#x} completed with its cancel routine still set (bug check 0x48 CANCEL_STATE_IN_COMPLETED_IRP)"),
        );
    }
    if s == STATUS_PENDING {
        inner.violation(Rule::Irp, format!("IRP {irp:#x} completed with IoStatus.Status STATUS_PENDING"));
    }
    Some((s, info))
}

/// After the dispatch routine returned: the pending/completion contract.
pub(crate) fn after_dispatch(inner: &Inner, irp: usize, name: &str, returned: i32) {
    let mut st = inner.state();
    let Some(rec) = st.io.irps.get_mut(&irp) else { return };
    rec.returned = Some(returned);
    let marked = rec.irp.stack_control() & SL_PENDING_RETURNED != 0;
    let completion = rec.completion;
    drop(st);
    inner.irp_changed();
    if returned == STATUS_PENDING {
        if !marked {
            inner.violation(
                Rule::Irp,
                format!("{name} returned STATUS_PENDING without IoMarkIrpPending on IRP {irp:#x}"),
            );
        }
        return;
    }
    match completion {
        None => inner.violation(
            Rule::Irp,
            format!(
                "{name} returned {} without completing IRP {irp:#x} (only STATUS_PENDING may leave it outstanding)",
                status(returned)
            ),
        ),
        Some((s, _)) if s != returned => inner.violation(
            Rule::Irp,
            format!(
                "{name} returned {} but completed IRP {irp:#x} with IoStatus.Status {}",
                status(returned),
                status(s)
            ),
        ),
        Some(_) => {}
    }
    if marked {
        inner.violation(Rule::Irp, format!("{name} marked IRP {irp:#x} pending but returned {}", status(returned)));
    }
}

pub(crate) fn major_name(major: u8) -> &'static str {
    match major {
        IRP_MJ_CREATE => "IRP_MJ_CREATE",
        IRP_MJ_CLOSE => "IRP_MJ_CLOSE",
        IRP_MJ_READ => "IRP_MJ_READ",
        IRP_MJ_WRITE => "IRP_MJ_WRITE",
        IRP_MJ_DEVICE_CONTROL => "IRP_MJ_DEVICE_CONTROL",
        IRP_MJ_CLEANUP => "IRP_MJ_CLEANUP",
        _ => "IRP_MJ_?",
    }
}

// ---------------------------------------------------------------- building requests

/// The buffers and parameters of one request, before it has an IRP.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) major: u8,
    pub(crate) flags: u32,
    pub(crate) requestor_mode: i8,
    pub(crate) params: StackParameters,
    pub(crate) system: Option<Buffer>,
    pub(crate) user_in: Option<Buffer>,
    pub(crate) user_out: Option<Buffer>,
    /// Caller memory shared with the driver; the MDL describes it (see [`Host::submit_ioctl_shared`](crate::host::Host::submit_ioctl_shared)).
    pub(crate) shared: Option<std::sync::Arc<UserMemory>>,
    /// Which of the user buffers the MDL describes, and whether the device writes it.
    pub(crate) mdl_over: Option<(bool, bool)>,
    /// Which user buffer is `UserBuffer`: Some(true) = user_out, Some(false) = user_in.
    pub(crate) user_buffer: Option<bool>,
    pub(crate) security: Option<SecurityContextBlock>,
    pub(crate) output: Output,
    pub(crate) info_limit: usize,
    /// What the trace shows of the request besides DeviceObject and Irp (raw values, formatted when read).
    pub(crate) details: Vec<(&'static str, Arg<'static>)>,
    /// The FileName a create traces, first.
    pub(crate) file_name: Option<String>,
}

impl Request {
    pub(crate) fn new(major: u8, params: StackParameters) -> Self {
        Request {
            major,
            flags: 0,
            requestor_mode: UserMode,
            params,
            system: None,
            user_in: None,
            user_out: None,
            shared: None,
            mdl_over: None,
            user_buffer: None,
            security: None,
            output: Output::None,
            info_limit: 0,
            details: Vec::new(),
            file_name: None,
        }
    }
}

pub(crate) fn alloc(len: usize, init: &[u8], fill: u8) -> Result<Option<Buffer>, i32> {
    if len == 0 {
        return Ok(None);
    }
    Buffer::new(len, init, fill).map(Some).ok_or(STATUS_INSUFFICIENT_RESOURCES)
}

/// A read or write as NtReadFile/NtWriteFile build it for a device with `device_flags`.
pub(crate) fn read_write(major: u8, device_flags: u32, data: &[u8], len: usize) -> Result<Request, i32> {
    let length = u32::try_from(len).map_err(|_| STATUS_INVALID_PARAMETER)?;
    let is_read = major == IRP_MJ_READ;
    let params = if is_read {
        StackParameters::Read { length, byte_offset: 0 }
    } else {
        StackParameters::Write { length, byte_offset: 0 }
    };
    let mut r = Request::new(major, params);
    r.flags = if is_read { IRP_READ_OPERATION } else { IRP_WRITE_OPERATION };
    r.info_limit = len;
    r.details.push(("Length", Arg::from(len)));
    // The caller's buffer: for a read, the one a finished read of this size used (a process reads into the
    // same buffer again; zero-filled the first time), for a write the data.
    let user = if is_read && len > 0 {
        Some(Buffer::output(len).ok_or(STATUS_INSUFFICIENT_RESOURCES)?)
    } else {
        alloc(len, data, 0)?
    };
    if device_flags & DO_BUFFERED_IO != 0 {
        r.system = alloc(len, data, UNINITIALIZED_FILL)?;
        if r.system.is_some() {
            r.flags |= IRP_BUFFERED_IO | IRP_DEALLOCATE_BUFFER | if is_read { IRP_INPUT_OPERATION } else { 0 };
        }
        if is_read {
            r.user_out = user;
            r.user_buffer = Some(true);
            r.output = Output::System(len);
        } else {
            r.user_in = user;
            r.user_buffer = Some(false);
        }
    } else if device_flags & DO_DIRECT_IO != 0 {
        if is_read {
            r.user_out = user;
            r.mdl_over = Some((true, true));
            r.output = Output::UserOut(len);
        } else {
            r.user_in = user;
            r.mdl_over = Some((false, false));
        }
    } else if is_read {
        r.user_out = user;
        r.user_buffer = Some(true);
        r.output = Output::UserOut(len);
    } else {
        r.user_in = user;
        r.user_buffer = Some(false);
    }
    Ok(r)
}

/// A device-control request as NtDeviceIoControlFile builds it for `code`'s transfer type.
pub(crate) fn device_control(code: u32, input: &[u8], output_len: usize) -> Result<Request, i32> {
    let input_length = u32::try_from(input.len()).map_err(|_| STATUS_INVALID_PARAMETER)?;
    let output_length = u32::try_from(output_len).map_err(|_| STATUS_INVALID_PARAMETER)?;
    let ctl = CtlCode::decode(code);
    let mut r = Request::new(
        IRP_MJ_DEVICE_CONTROL,
        StackParameters::DeviceIoControl { output_length, input_length, code, type3_input: 0 },
    );
    r.info_limit = output_len;
    r.details = vec![
        ("IoControlCode", Arg::Hex(code.into())),
        ("InputBufferLength", Arg::from(input.len())),
        ("OutputBufferLength", Arg::from(output_len)),
    ];
    match ctl.transfer {
        TransferType::Buffered => {
            r.system = alloc(buffered_size(input.len(), output_len), input, UNINITIALIZED_FILL)?;
            if r.system.is_some() {
                r.flags |=
                    IRP_BUFFERED_IO | IRP_DEALLOCATE_BUFFER | if output_len > 0 { IRP_INPUT_OPERATION } else { 0 };
            }
            // The caller's output buffer is UserBuffer, where the I/O manager copies the result.
            r.user_out = alloc(output_len, &[], 0)?;
            r.user_buffer = r.user_out.as_ref().map(|_| true);
            r.output = Output::System(output_len);
        }
        TransferType::InDirect | TransferType::OutDirect => {
            r.system = alloc(input.len(), input, 0)?;
            if r.system.is_some() {
                r.flags |= IRP_BUFFERED_IO | IRP_DEALLOCATE_BUFFER;
            }
            r.user_out = alloc(output_len, &[], 0)?;
            if r.user_out.is_some() {
                r.mdl_over = Some((true, ctl.transfer == TransferType::OutDirect));
            }
            r.output = Output::UserOut(output_len);
        }
        TransferType::Neither => {
            r.user_in = alloc(input.len(), input, 0)?;
            r.user_out = alloc(output_len, &[], 0)?;
            if let (Some(b), StackParameters::DeviceIoControl { type3_input, .. }) = (&r.user_in, &mut r.params) {
                *type3_input = b.addr();
            }
            r.user_buffer = r.user_out.as_ref().map(|_| true);
            r.output = Output::UserOut(output_len);
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn ctl_codes_decode_as_the_ctl_code_macro_encodes() {
        // CTL_CODE(FILE_DEVICE_NETWORK 0x12, 0x800, METHOD_BUFFERED, FILE_READ_ACCESS | FILE_WRITE_ACCESS)
        let code = ctl_code(0x12, 0x800, 0, 3);
        assert_eq!(code, 0x0012_E000);
        let c = CtlCode::decode(code);
        assert_eq!(
            c,
            CtlCode {
                device_type: 0x12,
                required_access: Access::READ_WRITE,
                function: 0x800,
                transfer: TransferType::Buffered
            }
        );
        assert_eq!(CtlCode::decode(ctl_code(0x22, 1, 1, 0)).transfer, TransferType::InDirect);
        assert_eq!(CtlCode::decode(ctl_code(0x22, 1, 2, 1)).transfer, TransferType::OutDirect);
        let n = CtlCode::decode(ctl_code(0x22, 0xFFF, 3, 2));
        assert_eq!((n.transfer, n.required_access, n.function), (TransferType::Neither, Access::WRITE, 0xFFF));
        assert!(Access::READ_WRITE.grants(Access::WRITE));
        assert!(!Access::READ.grants(Access::WRITE));
        assert!(Access::READ.grants(Access::NONE));
    }

    #[test]
    fn buffered_requests_size_one_buffer_for_both_directions() {
        assert_eq!(buffered_size(10, 100), 100);
        assert_eq!(buffered_size(100, 10), 100);
        assert_eq!(buffered_size(0, 0), 0);
        let r = device_control(ctl_code(0x12, 1, 0, 0), &[1, 2, 3], 8).expect("request");
        let sys = r.system.as_ref().expect("system buffer");
        assert_eq!(sys.len(), 8);
        assert_eq!(
            sys.bytes(8),
            [
                1,
                2,
                3,
                UNINITIALIZED_FILL,
                UNINITIALIZED_FILL,
                UNINITIALIZED_FILL,
                UNINITIALIZED_FILL,
                UNINITIALIZED_FILL
            ]
        );
        assert_eq!(r.flags, IRP_BUFFERED_IO | IRP_DEALLOCATE_BUFFER | IRP_INPUT_OPERATION);
        assert_eq!(r.output, Output::System(8));
        let none = device_control(ctl_code(0x12, 1, 0, 0), &[], 0).expect("request");
        assert!(none.system.is_none() && none.flags == 0);
        let direct = device_control(ctl_code(0x12, 1, 2, 0), &[9; 4], 16).expect("request");
        assert_eq!(direct.system.as_ref().map(Buffer::len), Some(4));
        assert_eq!(direct.mdl_over, Some((true, true)));
        let neither = device_control(ctl_code(0x12, 1, 3, 0), &[9; 4], 16).expect("request");
        assert!(neither.system.is_none());
        match neither.params {
            StackParameters::DeviceIoControl { type3_input, .. } => {
                assert_eq!(Some(type3_input), neither.user_in.as_ref().map(Buffer::addr))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reads_and_writes_follow_the_device_flags() {
        let r = read_write(IRP_MJ_READ, DO_DIRECT_IO, &[], 100).expect("read");
        assert_eq!(r.mdl_over, Some((true, true)));
        assert!(r.system.is_none());
        let w = read_write(IRP_MJ_WRITE, DO_BUFFERED_IO, b"abc", 3).expect("write");
        assert_eq!(w.system.as_ref().map(|b| b.bytes(3)), Some(b"abc".to_vec()));
        assert_eq!(w.flags, IRP_WRITE_OPERATION | IRP_BUFFERED_IO | IRP_DEALLOCATE_BUFFER);
        let n = read_write(IRP_MJ_READ, 0, &[], 5).expect("read");
        assert_eq!((n.user_buffer, n.mdl_over), (Some(true), None));
        let empty = read_write(IRP_MJ_READ, DO_DIRECT_IO, &[], 0).expect("read");
        assert!(empty.user_out.is_none(), "no MDL for a zero-length transfer");
    }

    #[test]
    fn names_resolve_through_the_dos_devices_namespace() {
        let mut links = BTreeMap::new();
        links.insert("\\DosDevices\\Global\\RawLink".to_owned(), "\\Device\\RawLink".to_owned());
        let devices = ["\\Device\\RawLink"];
        for p in [
            "\\\\.\\RawLink",
            "\\??\\RawLink",
            "\\DosDevices\\rawlink",
            "\\GLOBAL??\\RawLink",
            "\\DosDevices\\Global\\RawLink",
            "\\Device\\RawLink",
        ] {
            assert_eq!(resolve_name(&links, &devices, p), Ok(("\\Device\\RawLink", String::new())), "{p}");
        }
        assert_eq!(resolve_name(&links, &devices, "\\\\.\\RawLink\\x"), Ok(("\\Device\\RawLink", "\\x".to_owned())));
        assert_eq!(resolve_name(&links, &devices, "\\\\.\\Nope"), Err(STATUS_OBJECT_NAME_NOT_FOUND));
        assert_eq!(resolve_name(&links, &devices, "\\Device\\RawLinkX"), Err(STATUS_OBJECT_NAME_NOT_FOUND));
        assert_eq!(resolve_name(&links, &devices, "\\Device\\Other"), Err(STATUS_OBJECT_NAME_NOT_FOUND));
        let mut other = BTreeMap::new();
        other.insert("\\??\\RL".to_owned(), "\\Device\\RawLink".to_owned());
        assert_eq!(
            resolve_name(&other, &devices, "\\DosDevices\\Global\\rl"),
            Ok(("\\Device\\RawLink", String::new()))
        );
    }

    #[test]
    fn severity() {
        assert!(nt_error(STATUS_ACCESS_DENIED));
        assert!(!nt_error(STATUS_SUCCESS));
        assert!(!nt_error(STATUS_PENDING));
        assert!(!nt_error(0x8000_0005u32 as i32));
    }
}

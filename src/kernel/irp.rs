//! Ownership of an IRP between dispatch and completion.

use crate::error::Error;
use ndis_sys::*;

/// An IRP this driver owns: it must be completed exactly once, which `complete` (taking `self`) enforces.
///
/// # Invariants
///
/// `0` is a valid IRP delivered to this driver's dispatch routine and not yet completed.
#[derive(Debug)]
#[must_use = "an IRP must be completed"]
pub struct Irp(PIRP);

impl Irp {
    /// Takes ownership of a dispatched IRP.
    ///
    /// # Safety
    ///
    /// `irp` is null or an IRP the I/O manager passed to this driver's dispatch routine, not yet completed,
    /// and nothing else will complete it.
    pub unsafe fn from_raw(irp: PIRP) -> Option<Self> {
        // INVARIANT: guaranteed by the caller for non-null pointers.
        (!irp.is_null()).then_some(Irp(irp))
    }

    /// The raw pointer (to compare with a list entry).
    pub fn as_raw(&self) -> PIRP {
        self.0
    }

    /// The current stack location (`IoGetCurrentIrpStackLocation`, a header inline).
    fn stack(&self) -> PIO_STACK_LOCATION {
        // SAFETY: type invariant: a valid dispatched IRP, whose current stack location the I/O manager set.
        unsafe { (*self.0).Tail.Overlay.s.u.CurrentStackLocation }
    }

    /// `IRP_MJ_*` of the request.
    pub fn major_function(&self) -> u8 {
        let s = self.stack();
        // SAFETY: the current stack location of a dispatched IRP is valid.
        unsafe { (*s).MajorFunction }
    }

    /// The file object's FsContext (the driver's per-handle state), or null.
    pub fn fs_context(&self) -> *mut core::ffi::c_void {
        let s = self.stack();
        // SAFETY: the current stack location is valid; CREATE/READ/WRITE/DEVICE_CONTROL/CLEANUP/CLOSE on
        // this device always carry the file object they are for.
        unsafe {
            let f = (*s).FileObject;
            if f.is_null() {
                return core::ptr::null_mut();
            }
            (*f).FsContext
        }
    }

    /// The length in bytes of the file object's FileName: at IRP_MJ_CREATE, the part of the opened name
    /// below the device (`\\.\RawLink\x` gives `\x`); 0 for the device itself or without a file object.
    pub fn file_name_len(&self) -> usize {
        let s = self.stack();
        // SAFETY: as in `fs_context`; FileName is set by the I/O manager before CREATE is dispatched.
        unsafe {
            let f = (*s).FileObject;
            if f.is_null() {
                return 0;
            }
            usize::from((*f).FileName.Length)
        }
    }

    /// Stores the per-handle state in the file object (IRP_MJ_CREATE). Returns false without a file object.
    pub fn set_fs_context(&self, p: *mut core::ffi::c_void) -> bool {
        let s = self.stack();
        // SAFETY: as in `fs_context`; the driver owns FsContext of its own device's file objects.
        unsafe {
            let f = (*s).FileObject;
            if f.is_null() {
                return false;
            }
            (*f).FsContext = p;
        }
        true
    }

    /// For IRP_MJ_READ on a DO_DIRECT_IO device: the caller's buffer, mapped, `Parameters.Read.Length`
    /// bytes; `None` if it cannot be mapped (or there is none: a zero-length read).
    pub fn read_buffer(&mut self) -> Result<Option<&mut [u8]>, Error> {
        let len = self.read_length();
        self.mapped_mdl(len)
    }

    /// For IRP_MJ_READ: `Parameters.Read.Length`.
    pub fn read_length(&self) -> usize {
        let s = self.stack();
        // SAFETY: IRP_MJ_READ (the caller checked); its Parameters union holds Read.
        unsafe { (*s).Parameters.Read.Length as usize }
    }

    /// For IRP_MJ_WRITE on a DO_DIRECT_IO device: the caller's buffer, mapped, `Parameters.Write.Length`
    /// bytes; `None` if there is none, STATUS_INSUFFICIENT_RESOURCES if it cannot be mapped.
    pub fn write_buffer(&mut self) -> Result<Option<&[u8]>, Error> {
        let s = self.stack();
        // SAFETY: IRP_MJ_WRITE (the caller checked); its Parameters union holds Write, laid out as Read.
        let len = unsafe { (*s).Parameters.Write.Length } as usize;
        self.mapped_mdl(len).map(|b| b.map(|b| &*b))
    }

    /// The caller's buffer behind MdlAddress: `None` when there is none (no MDL or length 0);
    /// STATUS_INSUFFICIENT_RESOURCES when the system cannot map it (MmGetSystemAddressForMdlSafe failed), which
    /// is a shortage of system PTEs, not a fault of the caller's buffer.
    fn mapped_mdl(&mut self, len: usize) -> Result<Option<&mut [u8]>, Error> {
        // SAFETY: a dispatched IRP; MdlAddress is the I/O manager's MDL for the caller's locked buffer.
        let mdl = unsafe { (*self.0).MdlAddress };
        if mdl.is_null() || len == 0 {
            return Ok(None);
        }
        // SAFETY: the MDL describes the caller's buffer, locked for the life of the IRP.
        let va = unsafe { super::nbl::system_address(mdl) }.cast_mut();
        if va.is_null() {
            return Err(Error::INSUFFICIENT_RESOURCES);
        }
        // SAFETY: `len` bytes at `va` are the caller's buffer (the MDL covers the transfer length);
        // `&mut self` keeps this the only view until the IRP completes.
        Ok(Some(unsafe { core::slice::from_raw_parts_mut(va.cast::<u8>(), len) }))
    }

    /// For a METHOD_OUT_DIRECT device-control request: the caller's output buffer (`OutputBufferLength`
    /// bytes), which the I/O manager probed and locked for the life of the request, mapped into system space
    /// once. `None` without one; STATUS_INVALID_PARAMETER if it does not start on a page; STATUS_INSUFFICIENT_RESOURCES
    /// if it cannot be mapped. The region stays valid only while the request is outstanding: its owner must
    /// drop it before the request completes.
    pub fn locked_output(&mut self) -> Result<Option<super::shared::SharedRegion>, Error> {
        let (_, _, len) = self.ioctl();
        // SAFETY: a dispatched IRP; for METHOD_OUT_DIRECT, MdlAddress is the I/O manager's MDL for the
        // caller's locked output buffer (or null).
        let mdl = unsafe { (*self.0).MdlAddress };
        if mdl.is_null() || len == 0 {
            return Ok(None);
        }
        // SAFETY: a valid MDL; ByteOffset (MmGetMdlByteOffset, a header inline) and ByteCount are plain fields.
        let (offset, count) = unsafe { ((*mdl).ByteOffset, (*mdl).ByteCount) };
        if offset != 0 || count != len {
            return Err(Error::INVALID_PARAMETER);
        }
        // SAFETY: the MDL describes the caller's buffer, locked for the life of the IRP.
        let va = unsafe { super::nbl::system_address(mdl) }.cast_mut();
        if va.is_null() {
            return Err(Error::INSUFFICIENT_RESOURCES);
        }
        // SAFETY: `len` bytes at the page-aligned `va` are the locked buffer's system mapping, valid until the
        // IRP completes (the caller's obligation above).
        Ok(Some(unsafe { super::shared::SharedRegion::new(va, len as usize) }))
    }

    /// Marks the IRP pending (`IoMarkIrpPending`, a header inline) and hands it over to whoever completes it
    /// later; the dispatch routine then returns STATUS_PENDING.
    pub fn mark_pending(self) -> PendingIrp {
        let s = self.stack();
        // SAFETY: the current stack location of a dispatched IRP; setting SL_PENDING_RETURNED is what
        // IoMarkIrpPending does.
        unsafe { (*s).Control |= SL_PENDING_RETURNED };
        PendingIrp(self.0)
    }

    /// For IRP_MJ_DEVICE_CONTROL: (IoControlCode, InputBufferLength, OutputBufferLength).
    pub fn ioctl(&self) -> (u32, u32, u32) {
        let s = self.stack();
        // SAFETY: the current stack location of a dispatched IRP is valid; for IRP_MJ_DEVICE_CONTROL its
        // Parameters union holds DeviceIoControl (the caller checked the major function).
        unsafe {
            let p = (*s).Parameters.DeviceIoControl;
            (p.IoControlCode, p.InputBufferLength, p.OutputBufferLength)
        }
    }

    /// The METHOD_BUFFERED system buffer of a device-control request, `len` bytes (the larger of the input
    /// and output lengths, as the I/O manager allocates it), or an empty slice when there is none.
    ///
    /// # Safety
    ///
    /// The IRP is an IRP_MJ_DEVICE_CONTROL whose code uses METHOD_BUFFERED, and `len` is at most
    /// max(InputBufferLength, OutputBufferLength).
    pub unsafe fn system_buffer(&mut self, len: usize) -> &mut [u8] {
        // SAFETY: for METHOD_BUFFERED the I/O manager points SystemBuffer at a non-paged buffer of
        // max(in, out) bytes that belongs to this IRP until completion; `&mut self` keeps it exclusive.
        unsafe {
            let p = (*self.0).AssociatedIrp.SystemBuffer.cast::<u8>();
            if p.is_null() || len == 0 {
                return &mut [];
            }
            core::slice::from_raw_parts_mut(p, len)
        }
    }

    /// Completes a METHOD_BUFFERED device-control request with `reply` as its output (STATUS_BUFFER_TOO_SMALL
    /// if the caller's output buffer cannot hold it; STATUS_INVALID_DEVICE_REQUEST for any other request).
    pub fn complete_with_reply(mut self, reply: &[u8]) -> NTSTATUS {
        let (code, in_len, out_len) = self.ioctl();
        if self.major_function() != IRP_MJ_DEVICE_CONTROL || code & 0x3 != METHOD_BUFFERED {
            return self.complete(STATUS_INVALID_DEVICE_REQUEST, 0);
        }
        // SAFETY: an IRP_MJ_DEVICE_CONTROL with a METHOD_BUFFERED code (checked); the system buffer's length.
        let buf = unsafe { self.system_buffer(in_len.max(out_len) as usize) };
        match buf.get_mut(..reply.len()).filter(|_| out_len as usize >= reply.len()) {
            Some(dst) => {
                dst.copy_from_slice(reply);
                self.complete(STATUS_SUCCESS, reply.len())
            }
            None => self.complete(STATUS_BUFFER_TOO_SMALL, 0),
        }
    }

    /// Completes the IRP (`IoCompleteRequest`, a macro over `IofCompleteRequest`) and returns `status` for the
    /// dispatch routine to return.
    pub fn complete(self, status: NTSTATUS, information: usize) -> NTSTATUS {
        self.complete_with_boost(status, information, IO_NO_INCREMENT)
    }

    fn complete_with_boost(self, status: NTSTATUS, information: usize, boost: CCHAR) -> NTSTATUS {
        // SAFETY: type invariant; the IRP is completed exactly once because `self` is consumed.
        unsafe {
            (*self.0).IoStatus.Information = information;
        }
        // SAFETY: as above.
        unsafe {
            (*self.0).IoStatus.u.Status = status;
        }
        // SAFETY: as above; IofCompleteRequest may be called at IRQL <= DISPATCH_LEVEL.
        unsafe { IofCompleteRequest(self.0, boost) };
        status
    }
}

/// An IRP marked pending, to be completed exactly once later (from any thread, IRQL <= DISPATCH_LEVEL).
///
/// # Invariants
///
/// `0` is a pending IRP of this driver, not yet completed.
#[derive(Debug)]
#[must_use = "a pending IRP must be completed"]
pub struct PendingIrp(PIRP);

// SAFETY: an IRP may be completed from any thread.
unsafe impl Send for PendingIrp {}

impl PendingIrp {
    /// Sets (or clears, with `None`) the cancel routine (`IoSetCancelRoutine`, a header inline: an
    /// interlocked exchange) and returns the previous one.
    pub fn set_cancel_routine(&self, routine: PDRIVER_CANCEL) -> PDRIVER_CANCEL {
        let new = routine.map_or(core::ptr::null_mut(), |f| f as *mut core::ffi::c_void);
        // SAFETY: a pending IRP of this driver; `CancelRoutine` is a pointer-sized, pointer-aligned field that
        // the I/O manager also swaps atomically, so viewing it as an AtomicPtr is what IoSetCancelRoutine does.
        let slot = unsafe {
            &*(core::ptr::addr_of_mut!((*self.0).CancelRoutine)
                .cast::<core::sync::atomic::AtomicPtr<core::ffi::c_void>>())
        };
        let old = slot.swap(new, core::sync::atomic::Ordering::AcqRel);
        if old.is_null() {
            None
        } else {
            // SAFETY: a non-null value of this field is a cancel routine (set by this driver).
            Some(unsafe {
                core::mem::transmute::<*mut core::ffi::c_void, unsafe extern "system" fn(*mut DEVICE_OBJECT, *mut IRP)>(
                    old,
                )
            })
        }
    }

    /// Whether the I/O manager has asked to cancel the IRP (`Irp->Cancel`).
    pub fn cancel_requested(&self) -> bool {
        // SAFETY: a pending IRP of this driver; the I/O manager writes Cancel before calling the cancel
        // routine, so it is read volatile.
        unsafe { core::ptr::addr_of!((*self.0).Cancel).read_volatile() != 0 }
    }

    /// For a pending IRP_MJ_READ: `Parameters.Read.Length`.
    pub fn read_length(&self) -> usize {
        // Irp has no Drop: the temporary view gives nothing up.
        Irp(self.0).read_length()
    }

    /// The raw pointer, for comparison with the IRP a cancel routine receives.
    pub fn as_ptr(&self) -> PIRP {
        self.0
    }

    /// Back to an owned IRP, to fill and complete it.
    pub fn into_irp(self) -> Irp {
        Irp(self.0)
    }

    /// Completes the IRP.
    pub fn complete(self, status: NTSTATUS, information: usize) {
        let _ = Irp(self.0).complete_with_boost(status, information, IO_NETWORK_INCREMENT);
    }
}

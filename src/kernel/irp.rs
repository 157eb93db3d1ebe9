//! Ownership of an IRP between dispatch and completion.

use ndis_sys::*;

/// An IRP this driver owns: it must be completed exactly once, which `complete` (taking `self`) enforces.
///
/// # Invariants
///
/// `0` is a valid IRP delivered to this driver's dispatch routine and not yet completed.
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

    /// Completes the IRP (`IoCompleteRequest`, a macro over `IofCompleteRequest`) and returns `status` for the
    /// dispatch routine to return.
    pub fn complete(self, status: NTSTATUS, information: usize) -> NTSTATUS {
        // SAFETY: type invariant; the IRP is completed exactly once because `self` is consumed.
        unsafe {
            (*self.0).IoStatus.Information = information;
        }
        // SAFETY: as above.
        unsafe {
            (*self.0).IoStatus.u.Status = status;
        }
        // SAFETY: as above; IofCompleteRequest may be called at IRQL <= DISPATCH_LEVEL.
        unsafe { IofCompleteRequest(self.0, IO_NO_INCREMENT) };
        status
    }
}

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

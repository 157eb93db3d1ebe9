//! The driver's global state: everything a callback may touch, created before registration.

use crate::version::NdisVersion;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

/// Driver-wide state. Lives in one pool block from DriverEntry until DriverUnload; NDIS gets its address as
/// the ProtocolDriverContext, the control device keeps it in its extension.
#[derive(Debug)]
pub struct Driver {
    /// The NDIS version the driver registered (see [`crate::version`]).
    pub version: NdisVersion,
    /// The NdisProtocolHandle. NDIS writes it through [`Driver::protocol_handle_slot`] during
    /// NdisRegisterProtocolDriver, possibly before calling BindAdapterEx from inside that call.
    protocol_handle: AtomicPtr<c_void>,
}

impl Driver {
    pub fn new(version: NdisVersion) -> Self {
        Self { version, protocol_handle: AtomicPtr::new(ptr::null_mut()) }
    }

    /// The handle NDIS assigned at registration (null before it).
    pub fn protocol_handle(&self) -> *mut c_void {
        self.protocol_handle.load(Ordering::Acquire)
    }

    /// Where NdisRegisterProtocolDriver stores the handle. `AtomicPtr<T>` has the layout of `*mut T`.
    pub fn protocol_handle_slot(&self) -> *mut *mut c_void {
        self.protocol_handle.as_ptr()
    }
}

//! The driver's global state: everything a callback may touch, created before registration.

use crate::binding::{Binding, BindingPtr};
use crate::control::{self, BindingView};
use crate::error::Result;
use crate::kernel::sync::{Event, SpinLock};
use crate::version::NdisVersion;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

/// Driver-wide state. Lives in one pool block from DriverEntry until DriverUnload; NDIS gets its address as
/// the ProtocolDriverContext, the control device keeps it in its extension.
#[derive(Debug)]
pub struct Driver {
    /// The NDIS version the driver registered (see [`crate::version`]).
    pub version: NdisVersion,
    /// The NdisProtocolHandle. NDIS writes it through [`Driver::protocol_handle_slot`] during
    /// NdisRegisterProtocolDriver, possibly before calling BindAdapterEx from inside that call.
    protocol_handle: AtomicPtr<c_void>,
    /// Every binding that exists (opening, open, or closing).
    bindings: SpinLock<Vec<BindingPtr>>,
    /// NetEventBindsComplete arrived: NDIS has offered every adapter present at registration.
    pub binds_complete: AtomicBool,
    /// Signalled with `binds_complete` (BIND_WAIT waits on it).
    pub binds_complete_event: Event,
}

impl Driver {
    pub fn new(version: NdisVersion) -> Self {
        Self {
            version,
            protocol_handle: AtomicPtr::new(ptr::null_mut()),
            bindings: SpinLock::new(Vec::new()),
            binds_complete: AtomicBool::new(false),
            binds_complete_event: Event::new(),
        }
    }

    /// Initialises what must sit at its final address (the driver's pool block) before use.
    pub fn init_in_place(&self) {
        self.binds_complete_event.init();
    }

    /// Records NetEventBindsComplete.
    pub fn set_binds_complete(&self) {
        self.binds_complete.store(true, Ordering::Release);
        self.binds_complete_event.set();
    }

    /// Calls `f` with the `index`th enumerated binding itself (under the binding-list lock), or `None`.
    pub fn with_binding_ref<R>(&self, index: u32, f: impl FnOnce(Option<&Binding>) -> R) -> R {
        let list = self.bindings.lock();
        let found = list
            .iter()
            .filter_map(|p| crate::binding::live(*p))
            .filter(|b| control::enumerated(b.state()))
            .nth(usize::try_from(index).unwrap_or(usize::MAX));
        f(found)
    }

    /// Calls `f` with the enumerated binding whose adapter is `name` (under the binding-list lock), or `None`.
    pub fn with_binding_named<R>(
        &self,
        name: impl Iterator<Item = u16> + Clone,
        f: impl FnOnce(Option<&Binding>) -> R,
    ) -> R {
        let list = self.bindings.lock();
        let found = list
            .iter()
            .filter_map(|p| crate::binding::live(*p))
            .filter(|b| control::enumerated(b.state()))
            .find(|b| control::same_name(&b.adapter_name, name.clone()));
        f(found)
    }

    /// Calls `f` with the binding at `b` if it still exists (under the binding-list lock), else `None`.
    pub fn with_live_binding<R>(&self, b: *mut Binding, f: impl FnOnce(Option<&Binding>) -> R) -> R {
        let list = self.bindings.lock();
        let found = list.iter().find(|p| p.0 == b).and_then(|p| crate::binding::live(*p));
        f(found)
    }

    /// Calls `f` with a view of the `index`th enumerated binding (see [`control::enumerated`]), or `None`.
    pub fn with_binding<R>(&self, index: u32, f: impl FnOnce(Option<&BindingView<'_>>) -> R) -> R {
        self.with_binding_ref(index, |b| match b {
            Some(b) => b.with_view(|v| f(Some(v))),
            None => f(None),
        })
    }

    /// The handle NDIS assigned at registration (null before it).
    pub fn protocol_handle(&self) -> *mut c_void {
        self.protocol_handle.load(Ordering::Acquire)
    }

    /// Where NdisRegisterProtocolDriver stores the handle. `AtomicPtr<T>` has the layout of `*mut T`.
    pub fn protocol_handle_slot(&self) -> *mut *mut c_void {
        self.protocol_handle.as_ptr()
    }

    /// Adds a binding to the list.
    pub fn bindings_insert(&self, b: *mut Binding) -> Result {
        let mut list = self.bindings.lock();
        list.try_reserve(1)?;
        list.push(BindingPtr(b));
        Ok(())
    }

    /// Removes a binding from the list.
    pub fn bindings_remove(&self, b: *mut Binding) {
        self.bindings.lock().retain(|p| p.0 != b);
    }
}

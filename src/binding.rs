//! Bindings: one per adapter rawlink is bound to, from ProtocolBindAdapterEx to ProtocolUnbindAdapterEx.
//!
//! A [`Binding`] lives in one pool block whose address NDIS holds as the ProtocolBindingContext. It is on
//! the driver's binding list from the moment the open is issued until the close completed, so unload and
//! enumeration always see it. State changes go through [`crate::state::next`] under the binding's lock.
//!
//! Completion is event-driven: a pended open finishes in OpenAdapterCompleteEx (which completes the bind with
//! NdisCompleteBindAdapterEx), a pended close in CloseAdapterCompleteEx (which completes the unbind with
//! NdisCompleteUnbindAdapterEx). Nothing sleeps or polls.
#![allow(unsafe_code)]

use crate::driver::Driver;
use crate::error::{nt_result, Error, Result};
use crate::kernel::alloc::{try_box, POOL_TAG};
use crate::kernel::irql;
use crate::kernel::sync::SpinLock;
use crate::kernel::{nbl, time};
use crate::open::OpenPtr;
use crate::state::{self, BindingEvent, BindingState};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};
use ndis_sys::*;
use rawlink_abi::{frame_flags, FrameHeader};

/// The longest MAC address NDIS describes (`NDIS_MAX_PHYS_ADDRESS_LENGTH`); Ethernet uses 6 bytes.
const ETHERNET_ADDRESS_LENGTH: usize = 6;

/// A binding pointer on the driver's list. Bindings are pool blocks owned by this module; the list only
/// records which exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BindingPtr(pub *mut Binding);

// SAFETY: a binding is Sync (its mutable state is locked); the pointer is only dereferenced while the binding
// is on the list, which its owner leaves before freeing it.
unsafe impl Send for BindingPtr {}

/// The binding behind a list entry.
///
/// Callers hold the driver's binding-list lock: a binding leaves the list (under that lock) before it is
/// freed, so an entry read under the lock is live for as long as the lock is held.
pub fn live<'a>(p: BindingPtr) -> Option<&'a Binding> {
    // SAFETY: see above; entries are never null (they come from Box::into_raw).
    unsafe { p.0.as_ref() }
}

/// Mutable binding state, behind the binding's lock.
#[derive(Debug)]
struct Inner {
    state: BindingState,
    /// The UnbindContext of an unbind whose close pended.
    unbind_context: NDIS_HANDLE,
    /// NBLs sent and not yet completed.
    sends_in_flight: u32,
    /// A NetEventPause waiting for `sends_in_flight` to reach 0.
    pause: PNET_PNP_EVENT_NOTIFICATION,
}

/// One bound adapter.
#[derive(Debug)]
pub struct Binding {
    driver: *const Driver,
    /// NdisBindingHandle; NdisOpenAdapterEx writes it, possibly before the open completes.
    handle: AtomicPtr<c_void>,
    /// The BindContext of the bind in progress (used to complete a pended open).
    bind_context: NDIS_HANDLE,
    inner: SpinLock<Inner>,
    /// `\DEVICE\{GUID}` of the adapter.
    pub adapter_name: Vec<u16>,
    /// The adapter's friendly name (NdisQueryAdapterInstanceName), when known.
    pub friendly_name: SpinLock<Vec<u16>>,
    pub mac: [u8; ETHERNET_ADDRESS_LENGTH],
    pub mtu: u32,
    pub link_speed: u64,
    /// Media connect state at bind time.
    pub connected: bool,
    /// The medium NdisOpenAdapterEx selected from `medium`; NDIS writes it, possibly at completion.
    medium_index: u32,
    medium: [NDIS_MEDIUM; 1],
    open_parameters: NDIS_OPEN_PARAMETERS,
    /// Handles attached to this binding.
    opens: SpinLock<Vec<OpenPtr>>,
    /// The binding's NBL pool (for sends); freed when the binding is dropped.
    nbl_pool: NblPool,
}

// SAFETY: the raw pointers are NDIS handles and the driver globals, both valid from any thread for the life
// of the binding; mutable state is behind `inner`'s spin lock or atomics.
unsafe impl Send for Binding {}
// SAFETY: as above.
unsafe impl Sync for Binding {}

impl Binding {
    /// The NdisBindingHandle.
    pub fn handle(&self) -> NDIS_HANDLE {
        self.handle.load(Ordering::Acquire)
    }

    /// The current state.
    pub fn state(&self) -> BindingState {
        self.inner.lock().state
    }

    /// Calls `f` with a view of this binding for replies (the friendly name's lock is held meanwhile).
    pub fn with_view<R>(&self, f: impl FnOnce(&crate::control::BindingView<'_>) -> R) -> R {
        let friendly = self.friendly_name.lock();
        f(&crate::control::BindingView {
            adapter_name: &self.adapter_name,
            friendly_name: &friendly,
            mac: self.mac,
            mtu: self.mtu,
            link_speed: self.link_speed,
            connected: self.connected,
            state: self.state(),
        })
    }

    /// The NBL pool sends allocate from.
    pub fn pool(&self) -> NDIS_HANDLE {
        self.nbl_pool.0
    }

    /// Counts `n` sends about to be issued; refused unless the data path is on.
    pub fn sends_begin(&self, n: u32) -> Result {
        let mut g = self.inner.lock();
        if !g.state.data_path_on() {
            return Err(Error::DEVICE_NOT_READY);
        }
        g.sends_in_flight = g.sends_in_flight.saturating_add(n);
        Ok(())
    }

    /// Counts `n` sends completed; the last one completes a pause that was waiting for it.
    pub fn sends_end(&self, n: u32) {
        let pause = {
            let mut g = self.inner.lock_at_dispatch();
            g.sends_in_flight = g.sends_in_flight.saturating_sub(n);
            if g.sends_in_flight == 0 && !g.pause.is_null() && g.state == BindingState::Pausing {
                g.state = BindingState::Paused;
                core::mem::replace(&mut g.pause, ptr::null_mut())
            } else {
                ptr::null_mut()
            }
        };
        if !pause.is_null() {
            // SAFETY: the notification NDIS passed to the pause that returned pending; completed once.
            unsafe { NdisCompleteNetPnPEvent(self.handle(), pause, NDIS_STATUS_SUCCESS) };
        }
    }

    /// Attaches a handle.
    pub fn opens_insert(&self, o: OpenPtr) -> Result {
        let mut l = self.opens.lock();
        l.try_reserve(1)?;
        l.push(o);
        Ok(())
    }

    /// Detaches a handle.
    pub fn opens_remove(&self, o: OpenPtr) {
        self.opens.lock().retain(|x| *x != o);
    }

    /// Applies `event`; a refused event leaves the state unchanged and is reported.
    fn transition(&self, event: BindingEvent) -> core::result::Result<BindingState, state::Refused> {
        let mut g = self.inner.lock();
        let to = state::next(g.state, event)?;
        g.state = to;
        Ok(to)
    }
}

/// Copies a counted UTF-16 string NDIS lent us.
fn copy_string(s: *const NDIS_STRING) -> Result<Vec<u16>> {
    if s.is_null() {
        return Ok(Vec::new());
    }
    // SAFETY: NDIS passes a valid NDIS_STRING for the duration of the call.
    let s = unsafe { *s };
    let n = usize::from(s.Length / 2);
    let mut v = Vec::new();
    v.try_reserve_exact(n)?;
    if n > 0 && !s.Buffer.is_null() {
        // SAFETY: the string's buffer holds `Length` bytes.
        let units = unsafe { core::slice::from_raw_parts(s.Buffer, n) };
        v.extend_from_slice(units);
    }
    Ok(v)
}

/// ProtocolBindAdapterEx: validates the adapter, creates the binding and opens the adapter.
pub fn bind(driver: &Driver, bind_context: NDIS_HANDLE, params: *const NDIS_BIND_PARAMETERS) -> NDIS_STATUS {
    match try_bind(driver, bind_context, params) {
        Ok(status) => status,
        Err(e) => e.to_status(),
    }
}

fn try_bind(driver: &Driver, bind_context: NDIS_HANDLE, params: *const NDIS_BIND_PARAMETERS) -> Result<NDIS_STATUS> {
    if params.is_null() {
        return Err(Error::INVALID_PARAMETER);
    }
    // SAFETY: NDIS passes valid bind parameters for the duration of the call; only fields present in every
    // revision rawlink accepts (checked below) are read.
    let p = unsafe { &*params };
    if p.Header.Type != NDIS_OBJECT_TYPE_BIND_PARAMETERS || p.Header.Size < NDIS_SIZEOF_BIND_PARAMETERS_REVISION_1 {
        return Err(Error::INVALID_PARAMETER);
    }
    // rawlink speaks Ethernet only; any other medium is declined with the status NDIS documents for it.
    if p.MediaType != NdisMedium802_3 {
        return Err(Error::NDIS_UNSUPPORTED_MEDIA);
    }
    if usize::from(p.MacAddressLength) != ETHERNET_ADDRESS_LENGTH {
        return Err(Error::NDIS_UNSUPPORTED_MEDIA);
    }
    let mut mac = [0u8; ETHERNET_ADDRESS_LENGTH];
    if let Some(src) = p.CurrentMacAddress.get(..ETHERNET_ADDRESS_LENGTH) {
        mac.copy_from_slice(src);
    }
    let adapter_name = copy_string(p.AdapterName)?;

    let pool = NblPool::allocate(driver)?;
    let binding = try_box(Binding {
        driver: ptr::from_ref(driver),
        handle: AtomicPtr::new(ptr::null_mut()),
        bind_context,
        inner: SpinLock::new(Inner {
            state: BindingState::Opening,
            unbind_context: ptr::null_mut(),
            sends_in_flight: 0,
            pause: ptr::null_mut(),
        }),
        adapter_name,
        friendly_name: SpinLock::new(Vec::new()),
        mac,
        mtu: p.MtuSize,
        link_speed: p.XmitLinkSpeed,
        connected: p.MediaConnectState == MediaConnectStateConnected,
        opens: SpinLock::new(Vec::new()),
        medium_index: 0,
        medium: [NdisMedium802_3],
        // SAFETY: NDIS_OPEN_PARAMETERS is plain data; all-zero is valid and filled in below.
        open_parameters: unsafe { core::mem::zeroed() },
        nbl_pool: pool,
    })?;
    let raw = Box::into_raw(binding);
    // From here the binding is reachable by NDIS (as the open's context) and by unload (through the list).
    if let Err(e) = driver.bindings_insert(raw) {
        // SAFETY: `raw` came from Box::into_raw above and was published nowhere.
        drop(unsafe { Box::from_raw(raw) });
        return Err(e);
    }
    // SAFETY: `raw` is a live binding owned by this driver; the open parameters live inside it, so they stay
    // valid while the open may be pending.
    let status = unsafe {
        let b = &mut *raw;
        b.open_parameters.Header.Type = NDIS_OBJECT_TYPE_OPEN_PARAMETERS;
        b.open_parameters.Header.Revision = NDIS_OPEN_PARAMETERS_REVISION_1;
        b.open_parameters.Header.Size = NDIS_SIZEOF_OPEN_PARAMETERS_REVISION_1;
        b.open_parameters.AdapterName = p.AdapterName;
        b.open_parameters.MediumArray = b.medium.as_mut_ptr();
        b.open_parameters.MediumArraySize = 1;
        b.open_parameters.SelectedMediumIndex = &mut b.medium_index;
        b.open_parameters.FrameTypeArray = ptr::null_mut();
        b.open_parameters.FrameTypeArraySize = 0;
        NdisOpenAdapterEx(
            driver.protocol_handle(),
            raw.cast::<c_void>(),
            &mut b.open_parameters,
            bind_context,
            b.handle.as_ptr(),
        )
    };
    if status == NDIS_STATUS_PENDING {
        // OpenAdapterCompleteEx finishes the bind.
        return Ok(NDIS_STATUS_PENDING);
    }
    // SAFETY: the open completed synchronously; `raw` is still ours.
    Ok(unsafe { open_completed(raw, status) })
}

/// Finishes an open, synchronous or pended: on success the binding is Paused (NDIS restarts it next);
/// on failure it is taken off the list and freed. Returns the bind's final status.
///
/// # Safety
///
/// `raw` is a binding created by `try_bind` whose open has just completed with `status`.
unsafe fn open_completed(raw: *mut Binding, status: NDIS_STATUS) -> NDIS_STATUS {
    // SAFETY: guaranteed by the caller.
    let b = unsafe { &*raw };
    let event = if status == NDIS_STATUS_SUCCESS { BindingEvent::OpenSucceeded } else { BindingEvent::OpenFailed };
    let _ = b.transition(event);
    if status != NDIS_STATUS_SUCCESS {
        // SAFETY: the open failed, so NDIS holds no reference to the binding.
        unsafe { destroy(raw) };
        return status;
    }
    if irql::current() == irql::PASSIVE_LEVEL {
        query_friendly_name(b);
    }
    NDIS_STATUS_SUCCESS
}

/// ProtocolOpenAdapterCompleteEx: completes the pended bind.
///
/// # Safety
///
/// `raw` is the ProtocolBindingContext of a binding whose NdisOpenAdapterEx returned pending.
pub unsafe fn open_adapter_complete(raw: *mut Binding, status: NDIS_STATUS) {
    // SAFETY: the binding lives until its open completes (now) and, on success, until unbind.
    let bind_context = unsafe { (*raw).bind_context };
    // SAFETY: guaranteed by the caller.
    let status = unsafe { open_completed(raw, status) };
    // SAFETY: the BindContext of the bind that returned NDIS_STATUS_PENDING; completed exactly once.
    unsafe { NdisCompleteBindAdapterEx(bind_context, status) };
}

/// Caches the adapter's friendly name (PASSIVE_LEVEL only), freeing what NDIS allocated for it.
fn query_friendly_name(b: &Binding) {
    let mut name = NDIS_STRING { Length: 0, MaximumLength: 0, Buffer: ptr::null_mut() };
    // SAFETY: PASSIVE_LEVEL (checked by the caller); the binding handle is open.
    let status = unsafe { NdisQueryAdapterInstanceName(&mut name, b.handle()) };
    if nt_result(status).is_err() || name.Buffer.is_null() {
        return;
    }
    if let Ok(v) = copy_string(&name) {
        *b.friendly_name.lock() = v;
    }
    // SAFETY: NDIS allocated the buffer for this call; the caller frees it with NdisFreeMemory (length 0).
    unsafe { NdisFreeMemory(name.Buffer.cast(), 0, 0) };
}

/// ProtocolUnbindAdapterEx: closes the adapter; the binding is freed when the close completes.
///
/// # Safety
///
/// `raw` is the ProtocolBindingContext of a bound (Paused) binding.
pub unsafe fn unbind(raw: *mut Binding, unbind_context: NDIS_HANDLE) -> NDIS_STATUS {
    // SAFETY: guaranteed by the caller.
    let b = unsafe { &*raw };
    let _ = b.transition(BindingEvent::Unbind);
    b.inner.lock().unbind_context = unbind_context;
    // SAFETY: the binding is open; PASSIVE_LEVEL (UnbindAdapterEx's IRQL).
    let status = unsafe { NdisCloseAdapterEx(b.handle()) };
    if status == NDIS_STATUS_PENDING {
        return NDIS_STATUS_PENDING;
    }
    let _ = b.transition(BindingEvent::Closed);
    // SAFETY: the close completed, so NDIS no longer references the binding.
    unsafe { destroy(raw) };
    NDIS_STATUS_SUCCESS
}

/// ProtocolCloseAdapterCompleteEx: frees the binding and completes the pended unbind.
///
/// # Safety
///
/// `raw` is the ProtocolBindingContext of a binding whose NdisCloseAdapterEx returned pending.
pub unsafe fn close_adapter_complete(raw: *mut Binding) {
    // SAFETY: guaranteed by the caller; the binding is freed below, after its last use.
    let b = unsafe { &*raw };
    let _ = b.transition(BindingEvent::Closed);
    let unbind_context = b.inner.lock().unbind_context;
    // SAFETY: the close completed; nothing references the binding any more.
    unsafe { destroy(raw) };
    // SAFETY: the UnbindContext of the unbind that returned pending; completed exactly once.
    unsafe { NdisCompleteUnbindAdapterEx(unbind_context) };
}

/// Takes a binding off the driver's list and frees it with its NBL pool.
///
/// # Safety
///
/// `raw` came from `try_bind`'s `Box::into_raw` and NDIS no longer references it.
unsafe fn destroy(raw: *mut Binding) {
    // SAFETY: guaranteed by the caller.
    let b = unsafe { Box::from_raw(raw) };
    // SAFETY: the binding's driver outlives every binding (deregistration unbinds all before unload frees it).
    let driver = unsafe { &*b.driver };
    // Handles attached to this binding now report the adapter gone.
    for o in b.opens.lock().drain(..) {
        if let Some(o) = o.get() {
            o.binding_gone();
        }
    }
    driver.bindings_remove(raw);
    drop(b);
}

/// ProtocolNetPnPEvent for a binding: pause and restart move the state machine.
///
/// # Safety
///
/// `raw` is the ProtocolBindingContext of a bound binding; `n` is a valid notification.
pub unsafe fn net_pnp_event(raw: *mut Binding, n: *const NET_PNP_EVENT_NOTIFICATION) -> NDIS_STATUS {
    // SAFETY: guaranteed by the caller.
    let (b, event) = unsafe { (&*raw, (*n).NetPnPEvent.NetEvent) };
    match event {
        e if e == NetEventRestart => {
            // The restart parameters (attributes that changed while paused) carry nothing rawlink caches
            // beyond what the bind parameters gave; the data path simply turns on.
            if b.transition(BindingEvent::Restart).is_err() {
                return NDIS_STATUS_FAILURE;
            }
            let _ = b.transition(BindingEvent::Restarted);
            NDIS_STATUS_SUCCESS
        }
        e if e == NetEventPause => {
            // Under the binding's lock: either no send is in flight and the pause is done now, or the last
            // send completion finishes it (sends_end) — no polling, no sleeping.
            let mut g = b.inner.lock();
            let Ok(pausing) = state::next(g.state, BindingEvent::Pause) else { return NDIS_STATUS_FAILURE };
            g.state = pausing;
            if g.sends_in_flight == 0 {
                if let Ok(paused) = state::next(g.state, BindingEvent::Paused) {
                    g.state = paused;
                }
                NDIS_STATUS_SUCCESS
            } else {
                g.pause = n.cast_mut();
                NDIS_STATUS_PENDING
            }
        }
        // Power, removal queries, reconfiguration: nothing to refuse or release.
        _ => NDIS_STATUS_SUCCESS,
    }
}

/// ProtocolReceiveNetBufferLists: copies every frame (every NET_BUFFER of every NBL) once into the queue
/// of each attached handle, then gives the NBLs straight back to NDIS — unless NDIS_RECEIVE_FLAGS_RESOURCES
/// says NDIS reclaims them itself when this call returns. Never waits, never allocates.
///
/// # Safety
///
/// `raw` is the ProtocolBindingContext of an open binding; `nbls` is the chain NDIS indicated.
pub unsafe fn receive(raw: *mut Binding, nbls: PNET_BUFFER_LIST, flags: ULONG) {
    if nbls.is_null() {
        return;
    }
    // SAFETY: guaranteed by the caller.
    let b = unsafe { &*raw };
    {
        let opens = b.opens.lock_at_dispatch();
        if !opens.is_empty() {
            let now = time::now_100ns();
            // SAFETY: the chain NDIS indicated stays with the driver until returned below (or this returns).
            unsafe {
                nbl::for_each_frame(nbls, |frame| {
                    // Peek at the EtherType to flag 802.1Q frames.
                    let mut head = [0u8; 14];
                    let mut got = 0;
                    for part in frame.fragments() {
                        let n = part.len().min(head.len() - got);
                        if let (Some(d), Some(s)) = (head.get_mut(got..got + n), part.get(..n)) {
                            d.copy_from_slice(s);
                        }
                        got += n;
                        if got == head.len() {
                            break;
                        }
                    }
                    let vlan = got == 14 && head[12..14] == [0x81, 0x00];
                    // CAST: NET_BUFFER.DataLength is a ULONG.
                    let header = FrameHeader {
                        captured_length: frame.len as u32,
                        original_length: frame.len as u32,
                        timestamp: now,
                        flags: if vlan { frame_flags::VLAN_TAGGED } else { 0 },
                    };
                    for o in opens.iter().filter_map(|o| o.get()) {
                        if let Some(q) = o.queue.lock_at_dispatch().as_mut() {
                            q.push(header, frame.fragments());
                        }
                    }
                });
            }
            // Waiting reads take what arrived.
            for o in opens.iter().filter_map(|o| o.get()) {
                o.complete_reads();
            }
        }
    }
    if flags & NDIS_RECEIVE_FLAGS_RESOURCES != 0 {
        return;
    }
    let handle = b.handle();
    let return_flags =
        if flags & NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL != 0 { NDIS_RETURN_FLAGS_DISPATCH_LEVEL } else { 0 };
    // SAFETY: the NBLs were indicated on this binding and are returned exactly once.
    unsafe { NdisReturnNetBufferLists(handle, nbls, return_flags) };
}

/// An NBL pool; freed in `Drop`.
#[derive(Debug)]
struct NblPool(NDIS_HANDLE);

impl NblPool {
    fn allocate(driver: &Driver) -> Result<Self> {
        let mut params = NET_BUFFER_LIST_POOL_PARAMETERS {
            Header: NDIS_OBJECT_HEADER {
                Type: NDIS_OBJECT_TYPE_DEFAULT,
                Revision: NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1,
                Size: NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1,
            },
            ProtocolId: NDIS_PROTOCOL_ID_DEFAULT,
            fAllocateNetBuffer: 1,
            ContextSize: 0,
            PoolTag: POOL_TAG,
            DataSize: 0,
        };
        // SAFETY: IRQL <= DISPATCH_LEVEL; the parameters are complete and only read during the call.
        let pool = unsafe { NdisAllocateNetBufferListPool(driver.protocol_handle(), &mut params) };
        if pool.is_null() {
            return Err(Error::INSUFFICIENT_RESOURCES);
        }
        Ok(NblPool(pool))
    }
}

impl Drop for NblPool {
    fn drop(&mut self) {
        // SAFETY: a pool from NdisAllocateNetBufferListPool whose NBLs have all been freed.
        unsafe { NdisFreeNetBufferListPool(self.0) }
    }
}

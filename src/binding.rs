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
use crate::filter::Groups;
use crate::kernel::alloc::{try_box, POOL_TAG};
use crate::kernel::irql;
use crate::kernel::sendpool::SendPool;
use crate::kernel::sync::{AtDispatch, Event, Gate, SpinLock};
use crate::kernel::{nbl, time};
use crate::open::OpenPtr;
use crate::outcome::{tally, LOST, QUEUED, RUN, WANTED};
use crate::request::{self, OidOp, Owner};
use crate::state::{self, BindingEvent, BindingState};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ffi::c_void;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use ndis_sys::*;
use rawlink_abi::{BindingStatistics, FrameHeader};

/// Multicast addresses a binding remembers (what it last set with OID_802_3_MULTICAST_LIST).
pub const MAX_MULTICAST: usize = crate::filter::Groups::CAPACITY;

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
    /// Holders of a [`BindingRef`]; an unbind waits for them to leave.
    users: u32,
    /// The adapter is in a low-power state (NetEventSetPower to D1..D3): no sends until D0.
    powered_down: bool,
}

/// An OID request in flight on the binding (see [`crate::request`]).
#[derive(Debug, Clone, Copy)]
struct OidEntry {
    id: usize,
    owner: Owner,
    cancelled: bool,
}

/// The binding's receive and send counters (see [`BindingStatistics`]).
#[derive(Debug, Default)]
pub struct Counters {
    pub received: AtomicU64,
    pub delivered: AtomicU64,
    pub filtered: AtomicU64,
    pub dropped_queue_full: AtomicU64,
    pub dropped_too_large: AtomicU64,
    pub dropped_resources: AtomicU64,
    pub sent: AtomicU64,
    pub send_failed: AtomicU64,
}

impl Counters {
    pub fn add(c: &AtomicU64, n: u64) {
        if n != 0 {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> BindingStatistics {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BindingStatistics {
            received: g(&self.received),
            delivered: g(&self.delivered),
            filtered: g(&self.filtered),
            dropped_queue_full: g(&self.dropped_queue_full),
            dropped_too_large: g(&self.dropped_too_large),
            dropped_resources: g(&self.dropped_resources),
            sent: g(&self.sent),
            send_failed: g(&self.send_failed),
        }
    }
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
    /// Payload bytes after the Ethernet header; from the bind parameters, then from restart attributes.
    mtu: AtomicU32,
    /// Bits per second, from the bind parameters and later link-state indications.
    link_speed: AtomicU64,
    /// Media connect state, likewise.
    connected: AtomicBool,
    /// The medium NdisOpenAdapterEx selected from `medium`; NDIS writes it, possibly at completion.
    medium_index: u32,
    medium: [NDIS_MEDIUM; 1],
    open_parameters: NDIS_OPEN_PARAMETERS,
    /// Handles attached to this binding.
    opens: SpinLock<Vec<OpenPtr>>,
    /// The send slots (`kernel::sendpool`): declared before `nbl_pool`, so they (and their NBLs) are freed
    /// first when the binding is dropped — after the unbind, when no send is in flight.
    send_slots: SendPool<crate::send::Batch>,
    /// The binding's NBL pool (for the send slots); freed when the binding is dropped.
    nbl_pool: NblPool,
    /// Signalled when the last [`BindingRef`] goes while the binding is closing.
    idle: Event,
    /// Serialises packet-filter updates (each is an OID request waited for at PASSIVE_LEVEL).
    filter_gate: Gate,
    /// The packet filter NDIS last accepted for this binding (0 when it opens).
    applied_filter: AtomicU32,
    /// The multicast list NDIS last accepted: the union of the handles' lists.
    multicast: SpinLock<Groups>,
    /// The lookahead NDIS last accepted: the largest a handle asked for (0: none set).
    applied_lookahead: AtomicU32,
    /// OID requests in flight, and whether the binding refuses new ones (it is closing).
    oids: SpinLock<(Vec<OidEntry>, bool)>,
    pub counters: Counters,
    /// Held from the state check of a send to the return of NdisSendNetBufferLists, and by the pause
    /// handler while it leaves Running (see `send::send`).
    pub send_gate: SpinLock<()>,
}

/// A counted reference that keeps a binding from closing: an unbind waits until every reference is gone
/// (after cancelling their OID requests), so code holding one may wait at PASSIVE_LEVEL — for an OID
/// request, say — without the binding lock.
///
/// # Invariants
///
/// The binding's `users` count includes this reference, so the binding is not freed while it exists.
#[derive(Debug)]
pub struct BindingRef(NonNull<Binding>);

// SAFETY: a binding is Sync; the reference only keeps it alive.
unsafe impl Send for BindingRef {}

impl core::ops::Deref for BindingRef {
    type Target = Binding;
    fn deref(&self) -> &Binding {
        // SAFETY: type invariant.
        unsafe { self.0.as_ref() }
    }
}

impl Drop for BindingRef {
    fn drop(&mut self) {
        let b: &Binding = self;
        let last = {
            let mut g = b.inner.lock();
            g.users = g.users.saturating_sub(1);
            g.users == 0 && g.state == BindingState::Closing
        };
        if last {
            b.idle.set();
        }
    }
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
        let state = self.state();
        let friendly = self.friendly_name.lock();
        f(&crate::control::BindingView {
            adapter_name: &self.adapter_name,
            friendly_name: &friendly,
            mac: self.mac,
            mtu: self.mtu(),
            link_speed: self.link_speed.load(Ordering::Relaxed),
            connected: self.connected.load(Ordering::Relaxed),
            state,
        })
    }

    /// The adapter's MTU as last reported.
    pub fn mtu(&self) -> u32 {
        self.mtu.load(Ordering::Relaxed)
    }

    /// The driver this binding belongs to.
    pub fn driver(&self) -> &Driver {
        // SAFETY: the driver outlives every binding (deregistration unbinds all before unload frees it).
        unsafe { &*self.driver }
    }

    /// A counted reference, unless the binding is opening or closing.
    pub fn acquire(&self) -> Option<BindingRef> {
        let mut g = self.inner.lock();
        if !crate::control::enumerated(g.state) {
            return None;
        }
        g.users = g.users.checked_add(1)?;
        // INVARIANT: counted just now.
        Some(BindingRef(NonNull::from(self)))
    }

    /// Records an OID request about to be issued; refused while the binding closes.
    pub fn oid_register(&self, id: usize, owner: Owner) -> Result {
        let mut g = self.oids.lock();
        if g.1 {
            return Err(Error::DEVICE_NOT_READY);
        }
        g.0.try_reserve(1)?;
        g.0.push(OidEntry { id, owner, cancelled: false });
        Ok(())
    }

    /// Forgets a completed OID request.
    pub fn oid_unregister(&self, id: usize) {
        self.oids.lock().0.retain(|e| e.id != id);
    }

    /// Cancels the OID requests in flight of `owner` (all of them with `None`), one NdisCancelOidRequest
    /// each, called with no lock held (NDIS may complete the request inside the call).
    pub fn cancel_oids(&self, owner: Option<Owner>) {
        loop {
            let next = {
                let mut g = self.oids.lock();
                let e = g.0.iter_mut().find(|e| !e.cancelled && owner.is_none_or(|o| o == e.owner));
                e.map(|e| {
                    e.cancelled = true;
                    e.id
                })
            };
            let Some(id) = next else { return };
            request::cancel(self.handle(), id);
        }
    }

    /// Issues an OID request for `owner` and waits for it (see [`request::issue`]). The caller holds a
    /// [`BindingRef`] (`self` is reached through one).
    pub fn oid(&self, oid: u32, op: OidOp<'_>, timeout_ms: u32, owner: Owner) -> Result<u32> {
        request::issue(self, self.driver().version, oid, op, timeout_ms, owner)
    }

    /// Sets the adapter packet filter to the union of the attached handles' classes, if it changed
    /// (PASSIVE_LEVEL; the caller holds a [`BindingRef`]). When the last handle leaves, the union is 0: the
    /// binding receives nothing again, as when it opened.
    pub fn update_packet_filter(&self) -> Result {
        let _gate = self.filter_gate.enter().ok_or(Error::INVALID_DEVICE_STATE)?;
        let want = {
            let opens = self.opens.lock();
            crate::filter::union(opens.iter().filter_map(|o| o.get()).map(|o| o.classes()))
        };
        if want == self.applied_filter.load(Ordering::Acquire) {
            return Ok(());
        }
        let value = want.to_le_bytes();
        self.oid(
            OID_GEN_CURRENT_PACKET_FILTER,
            OidOp::Set(&value),
            rawlink_abi::OidHeader::DEFAULT_TIMEOUT_MS,
            Owner::DRIVER,
        )?;
        self.applied_filter.store(want, Ordering::Release);
        Ok(())
    }

    /// Sets the adapter multicast list to the union of the attached handles' lists, if it changed
    /// (PASSIVE_LEVEL; the caller holds a [`BindingRef`]). More groups than the adapter list holds is
    /// STATUS_INSUFFICIENT_RESOURCES and changes nothing; when the last handle leaves, the list is empty again.
    pub fn update_multicast(&self) -> Result {
        let _gate = self.filter_gate.enter().ok_or(Error::INVALID_DEVICE_STATE)?;
        let want = {
            let opens = self.opens.lock();
            let mut union = Groups::EMPTY;
            for o in opens.iter().filter_map(|o| o.get()) {
                union = Groups::union([&union, &o.groups()]).ok_or(Error::INSUFFICIENT_RESOURCES)?;
            }
            union
        };
        if want == *self.multicast.lock() {
            return Ok(());
        }
        let mut value = [0u8; MAX_MULTICAST * 6];
        let n = want.write_to(&mut value);
        self.oid(
            OID_802_3_MULTICAST_LIST,
            OidOp::Set(value.get(..n).unwrap_or_default()),
            rawlink_abi::OidHeader::DEFAULT_TIMEOUT_MS,
            Owner::DRIVER,
        )?;
        *self.multicast.lock() = want;
        Ok(())
    }

    /// Sets the adapter lookahead to the largest value an attached handle asked for, if it changed
    /// (PASSIVE_LEVEL; the caller holds a [`BindingRef`]). With no handle asking, the last value stays:
    /// lookahead is a hint, and NDIS keeps the largest over all protocols' bindings anyway.
    pub fn update_lookahead(&self) -> Result {
        let _gate = self.filter_gate.enter().ok_or(Error::INVALID_DEVICE_STATE)?;
        let want = {
            let opens = self.opens.lock();
            crate::filter::lookahead(opens.iter().filter_map(|o| o.get()).map(|o| o.lookahead()))
        };
        if want == 0 || want == self.applied_lookahead.load(Ordering::Acquire) {
            return Ok(());
        }
        self.oid(
            OID_GEN_CURRENT_LOOKAHEAD,
            OidOp::Set(&want.to_le_bytes()),
            rawlink_abi::OidHeader::DEFAULT_TIMEOUT_MS,
            Owner::DRIVER,
        )?;
        self.applied_lookahead.store(want, Ordering::Release);
        Ok(())
    }

    /// The NBL pool the send slots' NBLs come from.
    pub fn pool(&self) -> NDIS_HANDLE {
        self.nbl_pool.0
    }

    /// The binding's send slots.
    pub fn send_slots(&self) -> &SendPool<crate::send::Batch> {
        &self.send_slots
    }

    /// Counts `n` sends about to be issued; refused unless the data path is on.
    pub fn sends_begin(&self, n: u32) -> Result {
        let mut g = self.inner.lock();
        if g.powered_down {
            return Err(Error::DEVICE_POWERED_OFF);
        }
        if !g.state.data_path_on() {
            return Err(Error::DEVICE_NOT_READY);
        }
        g.sends_in_flight = g.sends_in_flight.saturating_add(n);
        Ok(())
    }

    /// Counts `n` sends completed; the last one completes a pause that was waiting for it.
    /// `at`: the caller is known to run at DISPATCH_LEVEL (the send-complete flags said so).
    pub fn sends_end(&self, n: u32, at: Option<AtDispatch<'_>>) {
        let pause = {
            let mut g = match at {
                Some(at) => self.inner.lock_dpc(at),
                None => self.inner.lock(),
            };
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
    let send_slots = SendPool::new()?;
    let binding = try_box(Binding {
        driver: ptr::from_ref(driver),
        handle: AtomicPtr::new(ptr::null_mut()),
        bind_context,
        inner: SpinLock::new(Inner {
            state: BindingState::Opening,
            unbind_context: ptr::null_mut(),
            sends_in_flight: 0,
            pause: ptr::null_mut(),
            users: 0,
            powered_down: false,
        }),
        adapter_name,
        friendly_name: SpinLock::new(Vec::new()),
        mac,
        mtu: AtomicU32::new(p.MtuSize),
        link_speed: AtomicU64::new(p.XmitLinkSpeed),
        connected: AtomicBool::new(p.MediaConnectState == MediaConnectStateConnected),
        opens: SpinLock::new(Vec::new()),
        medium_index: 0,
        medium: [NdisMedium802_3],
        // SAFETY: NDIS_OPEN_PARAMETERS is plain data; all-zero is valid and filled in below.
        open_parameters: unsafe { core::mem::zeroed() },
        send_slots,
        nbl_pool: pool,
        idle: Event::new(),
        filter_gate: Gate::new(),
        applied_filter: AtomicU32::new(0),
        multicast: SpinLock::new(Groups::EMPTY),
        applied_lookahead: AtomicU32::new(0),
        oids: SpinLock::new((Vec::new(), false)),
        counters: Counters::default(),
        send_gate: SpinLock::new(()),
    })?;
    // The kernel objects are initialised at their final address.
    binding.idle.init();
    binding.filter_gate.init();
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
    // No new OID request from here; the ones in flight are cancelled, then every holder of a BindingRef
    // is waited for (each finishes once its request completed), so nothing uses the binding handle after
    // the close.
    b.oids.lock().1 = true;
    b.cancel_oids(None);
    // The attached handles give back their references (their later requests report the adapter gone).
    for o in b.opens.lock().iter().filter_map(|o| o.get()) {
        o.unlink();
    }
    let busy = {
        let mut g = b.inner.lock();
        g.unbind_context = unbind_context;
        g.users != 0
    };
    if busy {
        b.idle.wait();
    }
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
    let mut opens = b.opens.lock();
    for o in opens.drain(..) {
        if let Some(o) = o.get() {
            o.binding_gone();
        }
    }
    drop(opens);
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
            if b.transition(BindingEvent::Restart).is_err() {
                return NDIS_STATUS_FAILURE;
            }
            // SAFETY: for NetEventRestart the buffer is the NDIS_PROTOCOL_RESTART_PARAMETERS NDIS lends for
            // the call (or null).
            unsafe { read_restart_attributes(b, &(*n).NetPnPEvent) };
            let _ = b.transition(BindingEvent::Restarted);
            NDIS_STATUS_SUCCESS
        }
        e if e == NetEventPause => {
            // With the send gate held no send is between its state check and NDIS; under the binding's
            // lock: either no send is in flight and the pause is done now, or the last send completion
            // finishes it (sends_end) — no polling, no sleeping.
            let _gate = b.send_gate.lock();
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
        e if e == NetEventSetPower => {
            // NDIS sends SetPower(Dx) and then pauses the stack (the pause waits for sends in flight, as
            // always); it restarts the stack before SetPower(D0). The flag refuses new writes
            // (STATUS_DEVICE_POWERED_OFF) from SetPower(Dx) until SetPower(D0).
            // SAFETY: for NetEventSetPower the buffer is an NDIS_DEVICE_POWER_STATE (a ULONG).
            let state = unsafe {
                let ev = &(*n).NetPnPEvent;
                if ev.Buffer.is_null() || (ev.BufferLength as usize) < core::mem::size_of::<NDIS_DEVICE_POWER_STATE>() {
                    return NDIS_STATUS_INVALID_PARAMETER;
                }
                ev.Buffer.cast::<NDIS_DEVICE_POWER_STATE>().read_unaligned()
            };
            let low = state != NdisDeviceStateD0;
            b.inner.lock().powered_down = low;
            let kind = if low { rawlink_abi::event::POWER_LOW } else { rawlink_abi::event::POWER_ON };
            // CAST: a small enum value (1 = D0 ... 4 = D3).
            b.post_event(rawlink_abi::Event { kind, value: state as u64 });
            NDIS_STATUS_SUCCESS
        }
        // QueryRemoveDevice: rawlink holds nothing that would stop the removal (handles stay valid and see
        // ADAPTER_GONE after the unbind); CancelRemoveDevice: nothing was changed to undo. Reconfiguration and
        // the rest: nothing to refuse or release.
        _ => NDIS_STATUS_SUCCESS,
    }
}

/// Entries of a restart attribute list rawlink looks at before giving up (a list is a handful long).
const MAX_RESTART_ATTRIBUTES: usize = 64;

/// Takes what changed while the binding was paused from the restart attributes: the MTU and link speed of
/// OID_GEN_MINIPORT_RESTART_ATTRIBUTES (NDIS_RESTART_GENERAL_ATTRIBUTES).
///
/// # Safety
///
/// `ev` is the NET_PNP_EVENT of a NetEventRestart NDIS passed for the duration of the call.
unsafe fn read_restart_attributes(b: &Binding, ev: &NET_PNP_EVENT) {
    let size = core::mem::size_of::<NDIS_PROTOCOL_RESTART_PARAMETERS>();
    if ev.Buffer.is_null() || (ev.BufferLength as usize) < size {
        return;
    }
    // SAFETY: checked non-null and long enough; valid for the call (caller's contract).
    let params = unsafe { &*ev.Buffer.cast::<NDIS_PROTOCOL_RESTART_PARAMETERS>() };
    if params.Header.Type != NDIS_OBJECT_TYPE_PROTOCOL_RESTART_PARAMETERS {
        return;
    }
    let general = core::mem::offset_of!(NDIS_RESTART_GENERAL_ATTRIBUTES, MaxRcvLinkSpeed);
    let mut a = params.RestartAttributes;
    for _ in 0..MAX_RESTART_ATTRIBUTES {
        if a.is_null() {
            return;
        }
        // SAFETY: an entry of the list NDIS lent with the parameters.
        let entry = unsafe { &*a };
        if entry.Oid == OID_GEN_MINIPORT_RESTART_ATTRIBUTES && entry.DataLength as usize >= general {
            let g = core::ptr::addr_of!(entry.Data).cast::<NDIS_RESTART_GENERAL_ATTRIBUTES>();
            // SAFETY: `Data` holds DataLength bytes, which cover the three fields read (checked above); each
            // is read on its own through a raw pointer, unaligned, so no reference spans unchecked bytes.
            let (kind, mtu, speed) = unsafe {
                (
                    core::ptr::addr_of!((*g).Header.Type).read_unaligned(),
                    core::ptr::addr_of!((*g).MtuSize).read_unaligned(),
                    core::ptr::addr_of!((*g).MaxXmitLinkSpeed).read_unaligned(),
                )
            };
            if kind == NDIS_OBJECT_TYPE_RESTART_GENERAL_ATTRIBUTES && mtu != 0 {
                b.mtu.store(mtu, Ordering::Relaxed);
                b.link_speed.store(speed, Ordering::Relaxed);
            }
        }
        a = entry.Next;
    }
}

/// ProtocolReceiveNetBufferLists: offers every frame (every NET_BUFFER of every NBL) once to each attached
/// handle, which copies it into its queue if its filter wants it, then gives the NBLs straight back to
/// NDIS — unless NDIS_RECEIVE_FLAGS_RESOURCES says NDIS reclaims them itself when this call returns. Never
/// waits, never allocates; every frame is counted as delivered, filtered or dropped with its reason.
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
    let uro = b.driver().version >= crate::version::NdisVersion::new(6, 89);
    // SAFETY: NDIS sets NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL only when it calls at DISPATCH_LEVEL, where this
    // callback stays; the proof does not outlive the call. Without the flag the open-list lock raises.
    let ndis_at_dispatch = (flags & NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL != 0).then(|| unsafe { AtDispatch::assume() });
    {
        let opens = match ndis_at_dispatch {
            Some(at) => b.opens.lock_dpc(at),
            None => b.opens.lock(),
        };
        // From here on the open-list lock is held: DISPATCH_LEVEL, known without reading the IRQL.
        let at = opens.at_dispatch();
        let groups = *b.multicast.lock_dpc(at);
        let run = Run { now: time::now_100ns(), mac: &b.mac, groups: groups.as_slice() };
        let c = &b.counters;
        let (mut received, mut delivered, mut filtered, mut resources) = (0, 0, 0, 0);
        let mut drops = Drops::default();
        // SAFETY: the chain NDIS indicated stays with the driver until returned below (or this returns).
        let mut cursor = unsafe { nbl::Frames::new(nbls, uro) };
        // Runs of up to RUN frames: each handle is locked once per run and offered the run's frames.
        loop {
            let mut outcome = [0u8; RUN];
            let mut end = None;
            for o in opens.iter().filter_map(|o| o.get()) {
                let mut rx = o.rx_at_dispatch(at);
                end = Some(run.offer(Some(&mut rx), cursor.clone(), &mut outcome, &mut drops));
            }
            let (next, n) = match end {
                Some(e) => e,
                None => run.offer(None, cursor.clone(), &mut outcome, &mut drops),
            };
            let t = tally(outcome.get(..n).unwrap_or_default());
            received += n as u64;
            (resources, delivered, filtered) = (resources + t.lost, delivered + t.queued, filtered + t.filtered);
            if n < RUN {
                break;
            }
            cursor = next;
        }
        Counters::add(&c.received, received);
        Counters::add(&c.delivered, delivered);
        Counters::add(&c.filtered, filtered);
        Counters::add(&c.dropped_queue_full, drops.full);
        Counters::add(&c.dropped_too_large, drops.large);
        Counters::add(&c.dropped_resources, resources);
        // Waiting reads take what arrived.
        if delivered != 0 {
            for o in opens.iter().filter_map(|o| o.get()) {
                o.complete_reads();
            }
        }
        // Rings whose waiters should wake, or which their process broke.
        for o in opens.iter().filter_map(|o| o.get()) {
            o.ring_service();
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

/// What the frames of one indication share.
struct Run<'g> {
    now: u64,
    mac: &'g [u8; 6],
    groups: &'g [[u8; 6]],
}

impl Run<'_> {
    /// Offers up to RUN frames from `frames` to one handle's locked receive side (or, with none, only looks
    /// at them), ORing each frame's outcome into `outcome`; returns the cursor after them and their number.
    fn offer<'f>(
        &self,
        mut rx: Option<&mut crate::open::RxLocked<'_>>,
        mut frames: nbl::Frames<'f>,
        outcome: &mut [u8; RUN],
        drops: &mut Drops,
    ) -> (nbl::Frames<'f>, usize) {
        let mut n = 0;
        for out in outcome.iter_mut() {
            let Some(frame) = frames.next() else { break };
            n += 1;
            // Every fragment is mapped here, so a frame whose data cannot be reached is known before
            // anything is queued.
            *out |= match frame.contiguous() {
                // The usual frame: one fragment holds all of it; its first bytes (addresses, EtherType, a
                // VLAN tag) decide.
                Some(bytes) => self.offer_frame(
                    rx.as_deref_mut(),
                    &frame,
                    bytes.get(..crate::filter::HEAD).unwrap_or(bytes),
                    nbl::Parts::One(Some(bytes)),
                    drops,
                ),
                None => self.offer_scattered(rx.as_deref_mut(), frame, drops),
            };
        }
        if let Some(rx) = rx {
            rx.count_offered(n);
        }
        (frames, n)
    }

    /// [`Run::offer`] of a frame spread over MDLs (or one that cannot be mapped): its first bytes gathered
    /// from the fragments; a frame whose data cannot all be reached is lost to resources.
    #[cold]
    #[inline(never)]
    fn offer_scattered(
        &self,
        rx: Option<&mut crate::open::RxLocked<'_>>,
        frame: nbl::Frame<'_>,
        drops: &mut Drops,
    ) -> u8 {
        let mut gathered = [0u8; crate::filter::HEAD];
        let (mut got, mut avail) = (0, 0);
        for part in frame.fragments() {
            let k = part.len().min(gathered.len() - got);
            if let Some(d) = gathered.get_mut(got..got + k) {
                crate::copy::copy(d, part);
            }
            got += k;
            avail += part.len();
        }
        let head = gathered.get(..got).unwrap_or_default();
        if avail < frame.len {
            if let Some(rx) = rx {
                rx.lost_to_resources(destination(head, self), head);
            }
            return LOST;
        }
        self.offer_frame(rx, &frame, head, nbl::Parts::Chain(frame.fragments()), drops)
    }

    /// Offers one frame whose bytes are all reachable (`head`: its first bytes) to the handle, if any;
    /// returns its outcome bits.
    #[inline(always)]
    fn offer_frame(
        &self,
        rx: Option<&mut crate::open::RxLocked<'_>>,
        frame: &nbl::Frame<'_>,
        head: &[u8],
        parts: nbl::Parts<'_>,
        drops: &mut Drops,
    ) -> u8 {
        let Some(rx) = rx else { return 0 };
        let m = frame.meta;
        let vlan = if crate::filter::vlan_tagged(head) { rawlink_abi::frame_flags::VLAN_TAGGED } else { 0 };
        // CAST: NET_BUFFER.DataLength is a ULONG.
        let header = FrameHeader {
            captured_length: frame.len as u32,
            original_length: frame.len as u32,
            timestamp: self.now,
            flags: m.flags | vlan,
            segment_count: m.segment_count,
            segment_size: m.segment_size,
        };
        match rx.offer(destination(head, self), head, header, parts) {
            crate::open::Offer::Filtered => 0,
            crate::open::Offer::Queued => QUEUED | WANTED,
            crate::open::Offer::Full => {
                drops.full += 1;
                WANTED
            }
            crate::open::Offer::TooLarge => {
                drops.large += 1;
                WANTED
            }
        }
    }
}

/// Frames a run's handles wanted but could not queue, by reason.
#[derive(Debug, Default)]
struct Drops {
    full: u64,
    large: u64,
}

/// The destination class of a frame whose first bytes are `head`, for the binding's address and groups.
#[inline(always)]
fn destination(head: &[u8], run: &Run<'_>) -> crate::filter::Destination {
    match head.first_chunk::<6>() {
        Some(d) => crate::filter::destination(d, run.mac, run.groups),
        None => crate::filter::Destination::Other,
    }
}

/// ProtocolStatusEx for a binding: link-state changes update the cached link and reach every attached
/// handle as an event.
///
/// # Safety
///
/// `raw` is the ProtocolBindingContext of an open binding; `s` is the indication NDIS passed.
pub unsafe fn status(raw: *mut Binding, s: *const NDIS_STATUS_INDICATION) {
    // SAFETY: guaranteed by the caller.
    let (b, s) = unsafe { (&*raw, &*s) };
    if s.StatusCode != NDIS_STATUS_LINK_STATE
        || s.StatusBuffer.is_null()
        || (s.StatusBufferSize as usize) < core::mem::size_of::<NDIS_LINK_STATE>()
    {
        return;
    }
    // SAFETY: for NDIS_STATUS_LINK_STATE the buffer is an NDIS_LINK_STATE of the size checked above.
    let ls = unsafe { s.StatusBuffer.cast::<NDIS_LINK_STATE>().read_unaligned() };
    let up = ls.MediaConnectState == MediaConnectStateConnected;
    b.connected.store(up, Ordering::Relaxed);
    if up {
        b.link_speed.store(ls.XmitLinkSpeed, Ordering::Relaxed);
    }
    let e = if up {
        rawlink_abi::Event { kind: rawlink_abi::event::LINK_UP, value: ls.XmitLinkSpeed }
    } else {
        rawlink_abi::Event { kind: rawlink_abi::event::LINK_DOWN, value: 0 }
    };
    b.post_event(e);
}

impl Binding {
    /// Delivers an adapter event to every attached handle.
    pub fn post_event(&self, e: rawlink_abi::Event) {
        for o in self.opens.lock().iter().filter_map(|o| o.get()) {
            o.post_event(e);
        }
    }
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

//! Emulated NDIS: virtual Ethernet adapters and the documented binding lifecycle.
//!
//! BindAdapterEx → NdisOpenAdapterEx (synchronous, or pended and completed with OpenAdapterCompleteEx) →
//! Paused → NetEventRestart → Running ⇄ NetEventPause/NetEventRestart → UnbindAdapterEx → NdisCloseAdapterEx
//! (synchronous or pended, completed with CloseAdapterCompleteEx) → unbind complete. The host drives these
//! steps the way NDIS does and checks the driver's side of each: an open outside a bind, a bind that fails
//! but leaves its adapter open, a completion for nothing pending, NBLs that are never returned.
//!
//! The data path: the driver's NBLs, NET_BUFFERs and MDLs are tracked from allocation to free (foreign or
//! double frees, frees while sent, leaks at pool free and unload); a send is accepted only in Running, each
//! NET_BUFFER's bytes are gathered from its MDL chain (which must be the driver's MDLs over memory it owns),
//! handed to the adapter's [`crate::backend::Backend`] and recorded, then completed per
//! [`SendCompletion`] (inline, held for the test, or by an adapter thread after a delay, split and
//! reordered); a pause first completes every held send and may pend until NdisCompleteNetPnPEvent. Receives
//! come from [`Host::indicate_receive_shaped`](crate::host::Host::indicate_receive_shaped), [`Host::indicate_receive_meta`](crate::host::Host::indicate_receive_meta) (NBLs carrying checksum,
//! loopback and RSC/URO metadata), [`Host::pump`](crate::host::Host::pump) or the receive pump thread, and pass the binding's packet
//! filter when [`AdapterConfig::enforce_packet_filter`] is set. OID requests are answered by each adapter's
//! [`crate::oid::OidModel`], synchronously or pended (a pended set takes effect when it completes). Power
//! transitions pause and restart the binding around NetEventSetPower ([`Host::set_power`](crate::host::Host::set_power)).

use crate::machine::Inner;
use crate::native::memory::HostBlock;
use crate::native::ndis_objects::{self as objects, BindFacts, Lent};
pub use crate::native::ndis_objects::{ReceiveMeta, ReceiveShape};
use crate::trace::status;
use crate::verifier::Rule;

pub mod state;
pub use state::*;

pub(crate) const NDIS_STATUS_SUCCESS: i32 = 0;
pub(crate) const NDIS_STATUS_PENDING: i32 = 0x103;
pub(crate) const NET_EVENT_SET_POWER: i32 = 0;
pub(crate) const NET_EVENT_QUERY_REMOVE_DEVICE: i32 = 2;
pub(crate) const NET_EVENT_CANCEL_REMOVE_DEVICE: i32 = 3;
pub(crate) const NET_EVENT_BINDS_COMPLETE: i32 = 6;
pub(crate) const NET_EVENT_PAUSE: i32 = 8;
pub(crate) const NET_EVENT_RESTART: i32 = 9;
pub(crate) const NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL: u32 = 1;
pub(crate) const NDIS_RECEIVE_FLAGS_RESOURCES: u32 = 2;

pub(crate) fn facts(a: &AdapterConfig, index: usize) -> BindFacts<'_> {
    BindFacts {
        adapter_name: &a.name,
        medium: a.medium,
        mac: a.mac,
        mtu: a.mtu,
        link_speed: a.link_speed,
        connected: a.connected,
        // CAST: a handful of adapters.
        if_index: 10 + index as u32,
    }
}

/// Binds `adapter` to the registered protocol, as NDIS does when an adapter arrives; returns the final
/// bind status. Runs on a processor at PASSIVE_LEVEL.
pub(crate) fn bind(inner: &Inner, adapter: usize) -> i32 {
    let Some((context, handler)) = inner.protocol_handler(|c| c.bind_adapter_ex) else { return NDIS_STATUS_SUCCESS };
    let cfg = match inner.state().ndis.adapters.get(adapter) {
        Some(c) => c.clone(),
        None => return NDIS_STATUS_SUCCESS,
    };
    oid_model(&mut inner.state().ndis, adapter);
    let Some(block) = HostBlock::new(16, 16) else { return 0 };
    let bind_context = block.addr();
    inner.state().ndis.binds.insert(bind_context, Pending { block, adapter, completed: None });
    let mut lent = Lent::default();
    let params = objects::bind_parameters(&mut lent, &facts(&cfg, adapter));
    let r = crate::native::dispatch::call_into_driver(
        inner,
        0,
        "ProtocolBindAdapterEx",
        handler,
        &[
            ("ProtocolDriverContext", context as u64),
            ("BindContext", bind_context as u64),
            ("BindParameters", params as u64),
        ],
    );
    // CAST: NDIS_STATUS is the low 32 bits.
    let mut st = r as u32 as i32;
    // A pended open completes now, as the miniport would later.
    let pended_open = inner
        .state()
        .ndis
        .opens
        .iter()
        .find(|o| o.adapter == adapter && o.open_pending && !o.closed)
        .map(|o| o.context);
    if let Some(ctx) = pended_open {
        if let Some((_, complete)) = inner.protocol_handler(|c| c.open_adapter_complete_ex) {
            if let Some(o) = inner.state().ndis.opens.iter_mut().find(|o| o.context == ctx && o.open_pending) {
                o.open_pending = false;
            }
            crate::native::dispatch::call_into_driver(
                inner,
                2,
                "ProtocolOpenAdapterCompleteEx",
                complete,
                &[("ProtocolBindingContext", ctx as u64), ("Status", 0)],
            );
        }
    }
    if st == NDIS_STATUS_PENDING {
        match inner.state().ndis.binds.get(&bind_context).and_then(|p| p.completed) {
            Some(s) => st = s,
            None => {
                inner.violation(
                    Rule::Ndis,
                    format!(
                        "BindAdapterEx for {} returned pending and never called NdisCompleteBindAdapterEx",
                        cfg.name
                    ),
                );
                st = NDIS_STATUS_PENDING;
            }
        }
    }
    inner.state().ndis.binds.remove(&bind_context);
    let open = inner.state().ndis.opens.iter().position(|o| o.adapter == adapter && !o.closed);
    if st == NDIS_STATUS_SUCCESS {
        match open {
            None => inner
                .violation(Rule::Ndis, format!("BindAdapterEx for {} succeeded without opening the adapter", cfg.name)),
            Some(i) => {
                if let Some(o) = inner.state().ndis.opens.get_mut(i) {
                    o.state = NdisBindingState::Paused;
                }
                restart(inner, adapter);
            }
        }
    } else if open.is_some() {
        inner.violation(
            Rule::Ndis,
            format!("BindAdapterEx for {} failed ({}) but left the adapter open", cfg.name, status(st)),
        );
    }
    drop(lent);
    st
}

/// The open of `adapter`, if bound: (ProtocolBindingContext, state).
pub(crate) fn open_of(inner: &Inner, adapter: usize) -> Option<(usize, NdisBindingState)> {
    inner.state().ndis.opens.iter().find(|o| o.adapter == adapter && !o.closed).map(|o| (o.context, o.state))
}

pub(crate) fn set_state(inner: &Inner, adapter: usize, state: NdisBindingState) {
    if let Some(o) = inner.state().ndis.opens.iter_mut().find(|o| o.adapter == adapter && !o.closed) {
        o.state = state;
    }
}

/// Sends a NET_PNP_EVENT to a binding; returns the driver's status.
pub(crate) fn pnp(inner: &Inner, context: usize, code: i32, buffer: usize, len: u32) -> i32 {
    pnp_then(inner, context, code, buffer, len, || {})
}

/// [`pnp`], calling `returned` as soon as the driver's handler returned (before a pended event completes).
pub(crate) fn pnp_then(
    inner: &Inner,
    context: usize,
    code: i32,
    buffer: usize,
    len: u32,
    returned: impl FnOnce(),
) -> i32 {
    let Some((_, handler)) = inner.protocol_handler(|c| c.net_pnp_event) else { return NDIS_STATUS_SUCCESS };
    let mut lent = Lent::default();
    let n = objects::pnp_notification(&mut lent, inner.config.ndis_version, code, buffer, len);
    let name = match code {
        NET_EVENT_PAUSE => "ProtocolNetPnPEvent(NetEventPause)",
        NET_EVENT_RESTART => "ProtocolNetPnPEvent(NetEventRestart)",
        NET_EVENT_BINDS_COMPLETE => "ProtocolNetPnPEvent(NetEventBindsComplete)",
        NET_EVENT_SET_POWER => "ProtocolNetPnPEvent(NetEventSetPower)",
        NET_EVENT_QUERY_REMOVE_DEVICE => "ProtocolNetPnPEvent(NetEventQueryRemoveDevice)",
        NET_EVENT_CANCEL_REMOVE_DEVICE => "ProtocolNetPnPEvent(NetEventCancelRemoveDevice)",
        _ => "ProtocolNetPnPEvent",
    };
    let handle = inner
        .state()
        .ndis
        .opens
        .iter()
        .find(|o| o.context == context && !o.closed && context != 0)
        .map(|o| o.handle.addr());
    if let Some(h) = handle {
        inner.state().ndis.pending_pnp.insert(n, (h, None));
    }
    let r = crate::native::dispatch::call_into_driver(
        inner,
        0,
        name,
        handler,
        &[("ProtocolBindingContext", context as u64), ("NetPnPEventNotification", n as u64)],
    );
    returned();
    // CAST: NDIS_STATUS.
    let mut st = r as u32 as i32;
    if st == NDIS_STATUS_PENDING {
        st = wait_pnp(inner, n, name, handle);
    }
    inner.state().ndis.pending_pnp.remove(&n);
    drop(lent);
    st
}

/// Whether `adapter` holds sends until the test completes them ([`SendCompletion::Deferred`]).
pub(crate) fn held_for_test(inner: &Inner, adapter: usize) -> bool {
    inner.state().ndis.adapters.get(adapter).is_some_and(|a| a.send_completion == SendCompletion::Deferred)
}

/// How long NDIS waits for a pended PnP event before the host reports it.
pub(crate) const PNP_TIMEOUT: std::time::Duration =
    std::time::Duration::from_millis(if cfg!(test) { 300 } else { 5000 });

/// Waits for NdisCompleteNetPnPEvent on a pended event, completing the adapter's held sends meanwhile (a
/// pause may wait for them); returns the status it completed with.
pub(crate) fn wait_pnp(inner: &Inner, n: usize, name: &str, handle: Option<usize>) -> i32 {
    let adapter =
        handle.and_then(|h| inner.state().ndis.opens.iter().find(|o| o.handle.addr() == h).map(|o| o.adapter));
    let start = std::time::Instant::now();
    loop {
        if let Some(st) = inner.state().ndis.pending_pnp.get(&n).and_then(|p| p.1) {
            return st;
        }
        if start.elapsed() > PNP_TIMEOUT || inner.down.load(std::sync::atomic::Ordering::Acquire) {
            inner.violation(Rule::Ndis, format!("{name} returned NDIS_STATUS_PENDING and NdisCompleteNetPnPEvent was not called within {PNP_TIMEOUT:?}"));
            return NDIS_STATUS_PENDING;
        }
        if let Some(a) = adapter.filter(|&a| held_for_test(inner, a)) {
            flush_sends(inner, a, 0, false);
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// NetEventRestart: Paused → Running.
pub(crate) fn restart(inner: &Inner, adapter: usize) -> i32 {
    restart_with(inner, adapter, None)
}

/// NetEventRestart, with the attributes that changed while paused.
pub(crate) fn restart_with(inner: &Inner, adapter: usize, change: Option<objects::RestartChange>) -> i32 {
    let Some((context, state)) = open_of(inner, adapter) else { return NDIS_STATUS_SUCCESS };
    if state != NdisBindingState::Paused {
        return NDIS_STATUS_SUCCESS;
    }
    let mut lent = Lent::default();
    // CAST: a handful of adapters.
    let (params, len) = objects::restart_parameters(&mut lent, 10 + adapter as u32, change);
    set_state(inner, adapter, NdisBindingState::Restarting);
    let st = pnp(inner, context, NET_EVENT_RESTART, params, len);
    if st == NDIS_STATUS_SUCCESS {
        set_state(inner, adapter, NdisBindingState::Running);
    } else {
        set_state(inner, adapter, NdisBindingState::Paused);
        inner.violation(Rule::Ndis, format!("NetEventRestart on adapter {adapter} returned {}", status(st)));
    }
    st
}

/// NetEventPause: Running → Paused.
pub(crate) fn pause(inner: &Inner, adapter: usize) -> i32 {
    let Some((context, state)) = open_of(inner, adapter) else { return NDIS_STATUS_SUCCESS };
    if state != NdisBindingState::Running {
        return NDIS_STATUS_SUCCESS;
    }
    // Sends held for the test are completed before the pause; an adapter that completes by itself keeps
    // its sends in flight, and the driver must wait for them (pend the pause) before it completes.
    if held_for_test(inner, adapter) {
        flush_sends(inner, adapter, 0, false);
    }
    set_state(inner, adapter, NdisBindingState::PauseDelivering);
    let st = pnp_then(inner, context, NET_EVENT_PAUSE, 0, 0, || set_state(inner, adapter, NdisBindingState::Pausing));
    // A pause cannot fail: the binding is paused either way.
    set_state(inner, adapter, NdisBindingState::Paused);
    let in_flight = inner.state().ndis.in_flight.values().filter(|f| f.0 == adapter).count();
    if in_flight > 0 {
        inner.violation(Rule::Ndis, format!("NetEventPause on adapter {adapter} completed with {in_flight} send(s) still in flight (a pause completes only after every send has)"));
    }
    if st != NDIS_STATUS_SUCCESS {
        inner.violation(
            Rule::Ndis,
            format!("NetEventPause on adapter {adapter} returned {} (a pause must complete)", status(st)),
        );
    }
    st
}

/// `NdisDeviceStateD0`.
pub(crate) const D0: u32 = 1;

/// Whether NDIS pauses `adapter`'s binding around power transitions (see [`Host::set_power`](crate::host::Host::set_power)).
pub(crate) fn pauses_on_suspend(inner: &Inner, adapter: usize) -> bool {
    let no_pause = inner.state().ndis.adapters.get(adapter).is_some_and(|a| a.no_pause_on_suspend);
    let protocol_630 = inner
        .state()
        .protocols
        .iter()
        .find(|p| !p.deregistered)
        .is_some_and(|p| (p.chars.major_ndis_version, p.chars.minor_ndis_version) >= (6, 30));
    !(no_pause && protocol_630)
}

/// NetEventSetPower with the binding's pause before a low-power state and its restart before D0.
pub(crate) fn set_power(inner: &Inner, adapter: usize, device_state: u32) -> i32 {
    let Some((context, state)) = open_of(inner, adapter) else { return NDIS_STATUS_SUCCESS };
    let pauses = pauses_on_suspend(inner, adapter);
    let power = |inner: &Inner| {
        let mut lent = Lent::default();
        let buf = objects::u32_buffer(&mut lent, device_state);
        pnp(inner, context, NET_EVENT_SET_POWER, buf, 4)
    };
    let st = if device_state == D0 {
        let paused_by_power = inner.state().ndis.power_paused.remove(&adapter);
        if pauses && paused_by_power {
            restart(inner, adapter);
        }
        power(inner)
    } else {
        let st = power(inner);
        if pauses && state == NdisBindingState::Running && st != ndis_sys::NDIS_STATUS_NOT_SUPPORTED {
            pause(inner, adapter);
            inner.state().ndis.power_paused.insert(adapter);
        }
        st
    };
    if st == ndis_sys::NDIS_STATUS_NOT_SUPPORTED {
        // An old protocol: NDIS unbinds it from the adapter.
        inner.state().ndis.power_paused.remove(&adapter);
        unbind(inner, adapter);
    }
    st
}

/// NetEventBindsComplete to the protocol (binding context NULL).
pub(crate) fn binds_complete(inner: &Inner) {
    pnp(inner, 0, NET_EVENT_BINDS_COMPLETE, 0, 0);
}

/// Pauses (if running) and unbinds `adapter`, as NDIS does when the adapter or the protocol goes away.
pub(crate) fn unbind(inner: &Inner, adapter: usize) {
    if open_of(inner, adapter).is_none() {
        return;
    }
    inner.state().ndis.power_paused.remove(&adapter);
    pause(inner, adapter);
    let Some((context, _)) = open_of(inner, adapter) else { return };
    let Some((_, handler)) = inner.protocol_handler(|c| c.unbind_adapter_ex) else { return };
    let Some(block) = HostBlock::new(16, 16) else { return };
    let unbind_context = block.addr();
    inner.state().ndis.unbinds.insert(unbind_context, Pending { block, adapter, completed: None });
    set_state(inner, adapter, NdisBindingState::Unbinding);
    let r = crate::native::dispatch::call_into_driver(
        inner,
        0,
        "ProtocolUnbindAdapterEx",
        handler,
        &[("UnbindContext", unbind_context as u64), ("ProtocolBindingContext", context as u64)],
    );
    // CAST: NDIS_STATUS.
    let st = r as u32 as i32;
    // A pended close completes now.
    let pended = inner.state().ndis.opens.iter().any(|o| o.context == context && o.close_pending);
    if pended {
        if let Some((_, complete)) = inner.protocol_handler(|c| c.close_adapter_complete_ex) {
            if let Some(o) = inner.state().ndis.opens.iter_mut().find(|o| o.context == context && o.close_pending) {
                o.close_pending = false;
                o.closed = true;
            }
            crate::native::dispatch::call_into_driver(
                inner,
                2,
                "ProtocolCloseAdapterCompleteEx",
                complete,
                &[("ProtocolBindingContext", context as u64)],
            );
        }
    }
    let completed = inner.state().ndis.unbinds.get(&unbind_context).and_then(|p| p.completed).is_some();
    if st == NDIS_STATUS_PENDING && !completed {
        inner.violation(
            Rule::Ndis,
            format!(
                "UnbindAdapterEx on adapter {adapter} returned pending and never called NdisCompleteUnbindAdapterEx"
            ),
        );
    } else if st != NDIS_STATUS_PENDING && st != NDIS_STATUS_SUCCESS {
        inner.violation(
            Rule::Ndis,
            format!("UnbindAdapterEx on adapter {adapter} returned {} (it must succeed)", status(st)),
        );
    }
    inner.state().ndis.unbinds.remove(&unbind_context);
    if open_of(inner, adapter).is_some() {
        inner.violation(
            Rule::Ndis,
            format!("UnbindAdapterEx on adapter {adapter} finished without closing the adapter"),
        );
    }
}

/// Indicates `frames` on `adapter` as one NBL chain at DISPATCH_LEVEL; returns how many NBLs the driver still
/// holds afterwards.
pub(crate) fn indicate(inner: &Inner, adapter: usize, frames: &[Vec<u8>], resources: bool) -> usize {
    indicate_shaped(inner, adapter, frames, resources, ReceiveShape::default())
}

/// A received frame and the metadata its NBL carries.
type Arrival<'f> = objects::Arrival<'f>;

/// The `frames` adapter `adapter`'s binding receives: all of them, or (with
/// [`AdapterConfig::enforce_packet_filter`]) those its packet filter accepts, counting the others.
pub(crate) fn packet_filter<'f>(inner: &Inner, adapter: usize, frames: Vec<Arrival<'f>>) -> Vec<Arrival<'f>> {
    let mut st = inner.state();
    if !st.ndis.adapters.get(adapter).is_some_and(|a| a.enforce_packet_filter) {
        return frames;
    }
    let Some(model) = oid_model(&mut st.ndis, adapter) else { return Vec::new() };
    let before = frames.len();
    let passed: Vec<Arrival<'f>> = frames.into_iter().filter(|f| model.accepts(f.0)).collect();
    let dropped = (before - passed.len()) as u64;
    if dropped > 0 {
        *st.ndis.filtered.entry(adapter).or_default() += dropped;
    }
    passed
}

/// [`indicate`] with the frames laid out as `shape` says.
pub(crate) fn indicate_shaped(
    inner: &Inner,
    adapter: usize,
    frames: &[Vec<u8>],
    resources: bool,
    shape: ReceiveShape,
) -> usize {
    let frames = frames.iter().map(|f| (f.as_slice(), None)).collect();
    indicate_frames(inner, adapter, frames, resources, shape)
}

/// Indicates `frames` on `adapter`, one NBL per frame, each NBL carrying its frame's metadata.
pub(crate) fn indicate_meta(inner: &Inner, adapter: usize, frames: &[(Vec<u8>, ReceiveMeta)]) -> usize {
    let frames = frames.iter().map(|(f, m)| (f.as_slice(), Some(*m))).collect();
    indicate_frames(inner, adapter, frames, false, ReceiveShape { nbs_per_nbl: 1, ..ReceiveShape::default() })
}

/// Indicates what passes the packet filter of `frames` as one NBL chain laid out as `shape` says (an NBL of
/// several frames carries its first frame's metadata); returns how many NBLs the driver still holds.
pub(crate) fn indicate_frames(
    inner: &Inner,
    adapter: usize,
    frames: Vec<Arrival<'_>>,
    resources: bool,
    shape: ReceiveShape,
) -> usize {
    let Some((context, state)) = open_of(inner, adapter) else { return 0 };
    if state != NdisBindingState::Running {
        return 0;
    }
    let Some((_, handler)) = inner.protocol_handler(|c| c.receive_net_buffer_lists) else { return 0 };
    let mut shape = shape;
    let (one_nb, passive) = inner
        .state()
        .ndis
        .adapters
        .get(adapter)
        .map_or((false, false), |a| (a.one_net_buffer_per_nbl, a.receive_at_passive));
    if one_nb {
        shape.nbs_per_nbl = 1;
    }
    // NDIS sets NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL exactly when the indication runs at DISPATCH_LEVEL.
    let (irql, at_dispatch) = if passive { (0, 0) } else { (2, NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL) };
    let frames = packet_filter(inner, adapter, frames);
    let mut lent = Lent::default();
    let nbls = objects::receive_chain_with_meta(&mut lent, &frames, shape);
    let Some(&head) = nbls.first() else { return 0 };
    {
        let mut st = inner.state();
        for &n in &nbls {
            st.ndis.outstanding.insert(n, adapter);
        }
    }
    let flags = at_dispatch | if resources { NDIS_RECEIVE_FLAGS_RESOURCES } else { 0 };
    crate::native::dispatch::call_into_driver(
        inner,
        irql,
        "ProtocolReceiveNetBufferLists",
        handler,
        &[
            ("ProtocolBindingContext", context as u64),
            ("NetBufferLists", head as u64),
            ("PortNumber", 0),
            ("NumberOfNetBufferLists", nbls.len() as u64),
            ("ReceiveFlags", u64::from(flags)),
        ],
    );
    let mut st = inner.state();
    if resources {
        // NDIS takes the NBLs back when the call returns; the driver must not have returned them.
        let returned = nbls.iter().filter(|n| !st.ndis.outstanding.contains_key(n)).count();
        for n in &nbls {
            st.ndis.outstanding.remove(n);
        }
        drop(st);
        if returned > 0 {
            inner.violation(Rule::Ndis, format!("{returned} NBL(s) indicated with NDIS_RECEIVE_FLAGS_RESOURCES were returned with NdisReturnNetBufferLists"));
        }
        lent.recycle();
        return 0;
    }
    let held = nbls.iter().filter(|n| st.ndis.outstanding.contains_key(n)).count();
    if held > 0 {
        st.ndis.indications.push((nbls, lent));
    } else {
        drop(st);
        lent.recycle();
    }
    held
}

impl Inner {
    /// The registered protocol's context and one of its handlers.
    pub(crate) fn protocol_handler(
        &self,
        pick: impl Fn(&crate::machine::ProtocolCharacteristics) -> Option<usize>,
    ) -> Option<(usize, usize)> {
        let st = self.state();
        let p = st.protocols.iter().find(|p| !p.deregistered)?;
        Some((p.context, pick(&p.chars)?))
    }

    /// Unbinds every adapter (NdisDeregisterProtocolDriver does this synchronously).
    pub(crate) fn unbind_all(&self) {
        let adapters: Vec<usize> = self.state().ndis.opens.iter().filter(|o| !o.closed).map(|o| o.adapter).collect();
        for a in adapters {
            unbind(self, a);
        }
    }
}

// ---------------------------------------------------------------- sends, receives, OIDs, status

/// Completes the driver's sends `batch` (all in flight on `adapter`) through ProtocolSendNetBufferListsComplete
/// in one call at `irql`, in this order, each NBL carrying the status the adapter gave it.
pub(crate) fn complete_sends(inner: &Inner, adapter: usize, batch: &[usize]) {
    complete_sends_at(inner, adapter, batch, crate::native::cpu::irql());
}

pub(crate) fn complete_sends_at(inner: &Inner, adapter: usize, batch: &[usize], irql: u8) {
    if batch.is_empty() {
        return;
    }
    let Some((context, _)) = open_of(inner, adapter) else { return };
    let Some((_, handler)) = inner.protocol_handler(|c| c.send_net_buffer_lists_complete) else { return };
    let head = {
        let mut st = inner.state();
        // Another thread may have completed some of them meanwhile (a pause and an adapter thread).
        let batch = objects::take_completed(&mut st.ndis.in_flight, batch);
        let Some(&head) = batch.first() else { return };
        if !st.ndis.held_sends.is_empty() {
            st.ndis.held_sends.retain(|(_, n)| !batch.contains(n));
        }
        head
    };
    let flags = if irql >= 2 { ndis_sys::NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL } else { 0 };
    crate::native::dispatch::call_into_driver(
        inner,
        irql,
        "ProtocolSendNetBufferListsComplete",
        handler,
        &[
            ("ProtocolBindingContext", context as u64),
            ("NetBufferLists", head as u64),
            ("SendCompleteFlags", u64::from(flags)),
        ],
    );
}

/// Completes every held send of `adapter` at DISPATCH_LEVEL: `per_call` NBLs per completion call (0: all in
/// one), in send order or reversed. Returns how many were completed.
pub(crate) fn flush_sends(inner: &Inner, adapter: usize, per_call: usize, reverse: bool) -> usize {
    let mut held: Vec<usize> =
        inner.state().ndis.held_sends.iter().filter(|(a, _)| *a == adapter).map(|(_, n)| *n).collect();
    if reverse {
        held.reverse();
    }
    let n = held.len();
    let size = if per_call == 0 { n.max(1) } else { per_call };
    for batch in held.chunks(size) {
        complete_sends_at(inner, adapter, batch, 2);
    }
    n
}

/// Runs `job` on a new system thread of the machine (as processor 1) after `delay`, unless the machine is down
/// by then: the adapter completing something by itself.
pub(crate) fn later(
    inner: &std::sync::Arc<Inner>,
    delay: std::time::Duration,
    job: impl FnOnce(&Inner) + Send + 'static,
) {
    let spawned = crate::machine::spawn_system_thread(inner, "adapter", 1, move |i| {
        std::thread::sleep(delay);
        if !i.down.load(std::sync::atomic::Ordering::Acquire) {
            job(i);
        }
    });
    if let Err(e) = spawned {
        inner.violation(Rule::Ndis, format!("the host could not start an adapter completion thread: {e}"));
    }
}

/// Completes pended OID requests of `adapter` (every adapter: `None`) through ProtocolOidRequestComplete at
/// DISPATCH_LEVEL; returns how many.
pub(crate) fn complete_oids(inner: &Inner, adapter: Option<usize>) -> usize {
    let pending: Vec<(usize, usize, i32)> = inner
        .state()
        .ndis
        .pending_oids
        .iter()
        .filter(|(_, p)| adapter.is_none_or(|a| p.0 == a))
        .map(|(&r, p)| (r, p.0, p.2))
        .collect();
    for &(request, a, status) in &pending {
        complete_oid(inner, a, request, status);
    }
    pending.len()
}

/// Completes one pended OID request with `status`.
pub(crate) fn complete_oid(inner: &Inner, adapter: usize, request: usize, status: i32) {
    complete_oid_issue(inner, adapter, request, status, None);
}

/// Completes a pended OID request if it is still the issue `issue` (any issue: `None`).
pub(crate) fn complete_oid_issue(inner: &Inner, adapter: usize, request: usize, status: i32, issue: Option<u64>) {
    {
        let mut st = inner.state();
        if issue.is_some_and(|i| st.ndis.oid_issue.get(&request) != Some(&i)) {
            return;
        }
        if st.ndis.pending_oids.remove(&request).is_none() {
            return;
        }
        st.ndis.oid_issue.remove(&request);
        // The adapter applies a pended set as it completes it (not when it was cancelled or failed).
        let set = st.ndis.pending_sets.remove(&request);
        if let (Some((oid, data)), NDIS_STATUS_SUCCESS) = (set, status) {
            if let Some(m) = oid_model(&mut st.ndis, adapter) {
                // It succeeded on the model when issued; only this adapter's own pended sets change it meanwhile.
                let _ = m.set(oid, &data);
            }
        }
        // Likewise it fills a pended query's buffer as it completes it.
        let query = st.ndis.pending_queries.remove(&request);
        if let (Some((buffer, bytes)), NDIS_STATUS_SUCCESS) = (query, status) {
            crate::native::ndis_objects::finish_query(request, buffer, &bytes);
        }
    }
    let Some((context, _)) = open_of(inner, adapter) else { return };
    let Some((_, handler)) = inner.protocol_handler(|c| c.oid_request_complete) else { return };
    // CAST: NDIS_STATUS passed as its 32-bit pattern.
    let st = u64::from(status as u32);
    crate::native::dispatch::call_into_driver(
        inner,
        2,
        "ProtocolOidRequestComplete",
        handler,
        &[("ProtocolBindingContext", context as u64), ("OidRequest", request as u64), ("Status", st)],
    );
}

/// The OID model of `adapter`, created from its configuration on first use.
pub(crate) fn oid_model<'a>(ndis: &'a mut NdisState, adapter: usize) -> Option<&'a mut crate::oid::OidModel> {
    let cfg = ndis.adapters.get(adapter)?.clone();
    Some(
        ndis.oids
            .entry(adapter)
            .or_insert_with(|| crate::oid::OidModel::new(cfg.mac, cfg.mtu, cfg.link_speed, cfg.connected)),
    )
}

/// Indicates NDIS_STATUS_LINK_STATE on `adapter` with its current link state.
pub(crate) fn indicate_link_state(inner: &Inner, adapter: usize, connected: bool) {
    let (payload, handle) = {
        let mut st = inner.state();
        if let Some(a) = st.ndis.adapters.get_mut(adapter) {
            a.connected = connected;
        }
        let Some(m) = oid_model(&mut st.ndis, adapter) else { return };
        m.connected = connected;
        let payload = m.link_state();
        let handle = st.ndis.opens.iter().find(|o| o.adapter == adapter && !o.closed).map(|o| o.handle.addr());
        (payload, handle)
    };
    if handle.is_some() {
        indicate_status(inner, adapter, ndis_sys::NDIS_STATUS_LINK_STATE, &payload);
    }
}

/// Indicates status `code` with `payload` as its buffer through ProtocolStatusEx at DISPATCH_LEVEL.
pub(crate) fn indicate_status(inner: &Inner, adapter: usize, code: i32, payload: &[u8]) {
    let handle = inner.state().ndis.opens.iter().find(|o| o.adapter == adapter && !o.closed).map(|o| o.handle.addr());
    let (Some(handle), Some((context, _))) = (handle, open_of(inner, adapter)) else { return };
    let Some((_, handler)) = inner.protocol_handler(|c| c.status_ex) else { return };
    let mut lent = Lent::default();
    let ind = objects::status_indication(&mut lent, handle, code, payload);
    crate::native::dispatch::call_into_driver(
        inner,
        2,
        "ProtocolStatusEx",
        handler,
        &[("ProtocolBindingContext", context as u64), ("StatusIndication", ind as u64)],
    );
}

/// Polls every adapter's backend and indicates what arrived to Running bindings; returns the frames indicated.
pub(crate) fn pump(inner: &Inner) -> usize {
    // Poll outside the state lock (a TAP read is a system call).
    let backends: Vec<(usize, std::sync::Arc<dyn crate::backend::Backend>)> =
        inner.state().ndis.backends.iter().map(|(&a, b)| (a, std::sync::Arc::clone(b))).collect();
    let arrived: Vec<(usize, Vec<Vec<u8>>)> =
        backends.iter().map(|(a, b)| (*a, b.poll())).filter(|(_, f)| !f.is_empty()).collect();
    let mut n = 0;
    for (a, frames) in arrived {
        if open_of(inner, a).is_some_and(|(_, s)| s == NdisBindingState::Running) {
            n += frames.len();
            if let Some(m) = oid_model(&mut inner.state().ndis, a) {
                m.rcv_ok += frames.len() as u64;
                m.rcv_octets += frames.iter().map(|f| f.len() as u64).sum::<u64>();
            }
            let (shape, resources) = inner
                .state()
                .ndis
                .adapters
                .get(a)
                .map_or((ReceiveShape::default(), false), |c| (c.receive_shape, c.receive_resources));
            indicate_shaped(inner, a, &frames, resources, shape);
        }
    }
    n
}

/// The receive pump's wait when nothing arrived: with one backend, that backend's own wait, which ends as soon
/// as a frame is there (a wire's condition variable, a TAP's `poll(2)`); with several, a plain sleep.
pub(crate) fn idle_wait(inner: &Inner, timeout: std::time::Duration) {
    let only = {
        let st = inner.state();
        let mut all = st.ndis.backends.values();
        match (all.next(), all.next()) {
            (Some(b), None) => Some(std::sync::Arc::clone(b)),
            _ => None,
        }
    };
    match only {
        Some(b) => b.wait(timeout),
        None => std::thread::sleep(timeout),
    }
}

/// Verifier checks of NDIS data-path state for a driver that is no longer loaded.
pub(crate) fn check_released(inner: &Inner, when: &str) {
    let st = inner.state();
    let nbls = st.ndis.driver_nbls.len();
    let mdls = st.ndis.ndis_mdls.len();
    let oids = st.ndis.pending_oids.len();
    let nbs = st.ndis.driver_nbs.len();
    let nb_pools = st.ndis.nb_pools.len();
    let contexts = st.ndis.nbl_contexts.len();
    drop(st);
    if contexts != 0 {
        inner.violation(
            Rule::Ndis,
            format!("{when}: {contexts} NBL context block(s) from NdisAllocateNetBufferListContext never freed (NdisFreeNetBufferListContext)"),
        );
    }
    if nbs != 0 {
        inner.violation(
            Rule::Ndis,
            format!("{when}: {nbs} NET_BUFFER(s) allocated by the driver never freed (NdisFreeNetBuffer)"),
        );
    }
    if nb_pools != 0 {
        inner.violation(Rule::Ndis, format!("{when}: {nb_pools} NET_BUFFER pool(s) never freed"));
    }
    if nbls != 0 {
        inner.violation(
            Rule::Ndis,
            format!("{when}: {nbls} NBL(s) allocated by the driver never freed (NdisFreeNetBufferList)"),
        );
    }
    if mdls != 0 {
        inner.violation(Rule::Ndis, format!("{when}: {mdls} MDL(s) from NdisAllocateMdl never freed (NdisFreeMdl)"));
    }
    if oids != 0 {
        inner.violation(Rule::Ndis, format!("{when}: {oids} OID request(s) still pending"));
    }
}

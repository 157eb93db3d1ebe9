//! Emulated NDIS: virtual Ethernet adapters and the documented binding lifecycle.
//!
//! BindAdapterEx → NdisOpenAdapterEx (synchronous, or pended and completed with OpenAdapterCompleteEx) →
//! Paused → NetEventRestart → Running ⇄ NetEventPause/NetEventRestart → UnbindAdapterEx → NdisCloseAdapterEx
//! (synchronous or pended, completed with CloseAdapterCompleteEx) → unbind complete. The host drives these
//! steps the way NDIS does and checks the driver's side of each: an open outside a bind, a bind that fails
//! but leaves its adapter open, a completion for nothing pending, NBLs that are never returned.

use crate::host::{Host, HostError, Inner};
use crate::native::memory::HostBlock;
use crate::native::ndis_objects::{self as objects, BindFacts, Lent};
use crate::trace::status;
use crate::verifier::Rule;
use std::collections::BTreeMap;

/// `NdisMedium802_3`.
pub const MEDIUM_802_3: i32 = 0;
/// `NdisMediumNative802_11`.
pub const MEDIUM_NATIVE_802_11: i32 = 16;

const NDIS_STATUS_SUCCESS: i32 = 0;
const NDIS_STATUS_PENDING: i32 = 0x103;
const NET_EVENT_BINDS_COMPLETE: i32 = 6;
const NET_EVENT_PAUSE: i32 = 8;
const NET_EVENT_RESTART: i32 = 9;
const NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL: u32 = 1;
const NDIS_RECEIVE_FLAGS_RESOURCES: u32 = 2;

/// A virtual adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterConfig {
    /// `\DEVICE\{GUID}`.
    pub name: String,
    pub friendly_name: String,
    pub medium: i32,
    pub mac: [u8; 6],
    pub mtu: u32,
    /// Bits per second.
    pub link_speed: u64,
    pub connected: bool,
    /// NdisOpenAdapterEx returns NDIS_STATUS_PENDING and completes through OpenAdapterCompleteEx.
    pub open_pends: bool,
    /// NdisCloseAdapterEx returns NDIS_STATUS_PENDING and completes through CloseAdapterCompleteEx.
    pub close_pends: bool,
}

impl AdapterConfig {
    /// Ethernet adapter number `n` with a locally administered MAC.
    pub fn ethernet(n: u8) -> Self {
        Self {
            name: format!("\\DEVICE\\{{5E1A0000-0000-4000-8000-0000000000{n:02X}}}"),
            friendly_name: format!("Virtual Ethernet Adapter #{n}"),
            medium: MEDIUM_802_3,
            mac: [0x02, 0x52, 0x4C, 0x00, 0x00, n],
            mtu: 1500,
            link_speed: 1_000_000_000,
            connected: true,
            open_pends: false,
            close_pends: false,
        }
    }
}

/// Where NDIS sees a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdisBindingState {
    /// BindAdapterEx in progress.
    Binding,
    Paused,
    Running,
    /// UnbindAdapterEx in progress.
    Unbinding,
}

/// One open of an adapter by the driver.
#[derive(Debug)]
pub(crate) struct OpenRec {
    pub adapter: usize,
    /// The NdisBindingHandle (a host block: unique, stable).
    pub handle: HostBlock,
    /// The driver's ProtocolBindingContext.
    pub context: usize,
    pub state: NdisBindingState,
    /// The open pended and OpenAdapterCompleteEx is still owed.
    pub open_pending: bool,
    /// The close pended and CloseAdapterCompleteEx is still owed.
    pub close_pending: bool,
    pub closed: bool,
}

/// A bind or unbind in progress, keyed by its context address.
#[derive(Debug)]
pub(crate) struct Pending {
    /// Keeps the context's address unique while the operation is in progress.
    #[allow(dead_code, reason = "held for its address")]
    pub block: HostBlock,
    pub adapter: usize,
    /// The status NdisCompleteBindAdapterEx gave (binds), or `Some(0)` once NdisCompleteUnbindAdapterEx ran.
    pub completed: Option<i32>,
}

/// NDIS's books.
#[derive(Debug, Default)]
pub(crate) struct NdisState {
    pub adapters: Vec<AdapterConfig>,
    pub opens: Vec<OpenRec>,
    pub binds: BTreeMap<usize, Pending>,
    pub unbinds: BTreeMap<usize, Pending>,
    /// NBL pools the driver allocated: handle block → tag.
    pub nbl_pools: BTreeMap<usize, (HostBlock, u32)>,
    /// Memory NDIS allocated for the driver (NdisQueryAdapterInstanceName), freed with NdisFreeMemory.
    pub ndis_memory: BTreeMap<usize, HostBlock>,
    /// Indicated NBLs the driver still owns: NBL address → adapter.
    pub outstanding: BTreeMap<usize, usize>,
    /// Memory of indications, kept until every NBL of it is back.
    pub indications: Vec<(Vec<usize>, Lent)>,
}

/// What a test sees of a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindingInfo {
    pub adapter: usize,
    pub state: NdisBindingState,
}

fn facts(a: &AdapterConfig, index: usize) -> BindFacts<'_> {
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
    let Some(block) = HostBlock::new(16, 16) else { return 0 };
    let bind_context = block.addr();
    inner.state().ndis.binds.insert(bind_context, Pending { block, adapter, completed: None });
    let mut lent = Lent::default();
    let params = objects::bind_parameters(&mut lent, &facts(&cfg, adapter));
    let r = crate::exports::call_into_driver(
        inner,
        0,
        "ProtocolBindAdapterEx",
        handler,
        &[("ProtocolDriverContext", context as u64), ("BindContext", bind_context as u64), ("BindParameters", params as u64)],
    );
    // CAST: NDIS_STATUS is the low 32 bits.
    let mut st = r as u32 as i32;
    // A pended open completes now, as the miniport would later.
    let pended_open = inner.state().ndis.opens.iter().find(|o| o.adapter == adapter && o.open_pending && !o.closed).map(|o| o.context);
    if let Some(ctx) = pended_open {
        if let Some((_, complete)) = inner.protocol_handler(|c| c.open_adapter_complete_ex) {
            if let Some(o) = inner.state().ndis.opens.iter_mut().find(|o| o.context == ctx && o.open_pending) {
                o.open_pending = false;
            }
            crate::exports::call_into_driver(
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
                inner.violation(Rule::Ndis, format!("BindAdapterEx for {} returned pending and never called NdisCompleteBindAdapterEx", cfg.name));
                st = NDIS_STATUS_PENDING;
            }
        }
    }
    inner.state().ndis.binds.remove(&bind_context);
    let open = inner.state().ndis.opens.iter().position(|o| o.adapter == adapter && !o.closed);
    if st == NDIS_STATUS_SUCCESS {
        match open {
            None => inner.violation(Rule::Ndis, format!("BindAdapterEx for {} succeeded without opening the adapter", cfg.name)),
            Some(i) => {
                if let Some(o) = inner.state().ndis.opens.get_mut(i) {
                    o.state = NdisBindingState::Paused;
                }
                restart(inner, adapter);
            }
        }
    } else if open.is_some() {
        inner.violation(Rule::Ndis, format!("BindAdapterEx for {} failed ({}) but left the adapter open", cfg.name, status(st)));
    }
    drop(lent);
    st
}

/// The open of `adapter`, if bound: (ProtocolBindingContext, state).
fn open_of(inner: &Inner, adapter: usize) -> Option<(usize, NdisBindingState)> {
    inner.state().ndis.opens.iter().find(|o| o.adapter == adapter && !o.closed).map(|o| (o.context, o.state))
}

fn set_state(inner: &Inner, adapter: usize, state: NdisBindingState) {
    if let Some(o) = inner.state().ndis.opens.iter_mut().find(|o| o.adapter == adapter && !o.closed) {
        o.state = state;
    }
}

/// Sends a NET_PNP_EVENT to a binding; returns the driver's status.
fn pnp(inner: &Inner, context: usize, code: i32, buffer: usize, len: u32) -> i32 {
    let Some((_, handler)) = inner.protocol_handler(|c| c.net_pnp_event) else { return NDIS_STATUS_SUCCESS };
    let mut lent = Lent::default();
    let n = objects::pnp_notification(&mut lent, code, buffer, len);
    let name = match code {
        NET_EVENT_PAUSE => "ProtocolNetPnPEvent(NetEventPause)",
        NET_EVENT_RESTART => "ProtocolNetPnPEvent(NetEventRestart)",
        NET_EVENT_BINDS_COMPLETE => "ProtocolNetPnPEvent(NetEventBindsComplete)",
        _ => "ProtocolNetPnPEvent",
    };
    let r = crate::exports::call_into_driver(inner, 0, name, handler, &[("ProtocolBindingContext", context as u64), ("NetPnPEventNotification", n as u64)]);
    // CAST: NDIS_STATUS.
    r as u32 as i32
}

/// NetEventRestart: Paused → Running.
pub(crate) fn restart(inner: &Inner, adapter: usize) -> i32 {
    let Some((context, state)) = open_of(inner, adapter) else { return NDIS_STATUS_SUCCESS };
    if state != NdisBindingState::Paused {
        return NDIS_STATUS_SUCCESS;
    }
    let mut lent = Lent::default();
    // CAST: a handful of adapters.
    let (params, len) = objects::restart_parameters(&mut lent, 10 + adapter as u32);
    let st = pnp(inner, context, NET_EVENT_RESTART, params, len);
    if st == NDIS_STATUS_SUCCESS {
        set_state(inner, adapter, NdisBindingState::Running);
    } else {
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
    let st = pnp(inner, context, NET_EVENT_PAUSE, 0, 0);
    if st == NDIS_STATUS_SUCCESS {
        set_state(inner, adapter, NdisBindingState::Paused);
    } else {
        inner.violation(Rule::Ndis, format!("NetEventPause on adapter {adapter} returned {} (a pause must complete)", status(st)));
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
    pause(inner, adapter);
    let Some((context, _)) = open_of(inner, adapter) else { return };
    let Some((_, handler)) = inner.protocol_handler(|c| c.unbind_adapter_ex) else { return };
    let Some(block) = HostBlock::new(16, 16) else { return };
    let unbind_context = block.addr();
    inner.state().ndis.unbinds.insert(unbind_context, Pending { block, adapter, completed: None });
    set_state(inner, adapter, NdisBindingState::Unbinding);
    let r = crate::exports::call_into_driver(
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
            crate::exports::call_into_driver(inner, 2, "ProtocolCloseAdapterCompleteEx", complete, &[("ProtocolBindingContext", context as u64)]);
        }
    }
    let completed = inner.state().ndis.unbinds.get(&unbind_context).and_then(|p| p.completed).is_some();
    if st == NDIS_STATUS_PENDING && !completed {
        inner.violation(Rule::Ndis, format!("UnbindAdapterEx on adapter {adapter} returned pending and never called NdisCompleteUnbindAdapterEx"));
    } else if st != NDIS_STATUS_PENDING && st != NDIS_STATUS_SUCCESS {
        inner.violation(Rule::Ndis, format!("UnbindAdapterEx on adapter {adapter} returned {} (it must succeed)", status(st)));
    }
    inner.state().ndis.unbinds.remove(&unbind_context);
    if open_of(inner, adapter).is_some() {
        inner.violation(Rule::Ndis, format!("UnbindAdapterEx on adapter {adapter} finished without closing the adapter"));
    }
}

/// Indicates `frames` on `adapter` as one NBL chain at DISPATCH_LEVEL; returns how many NBLs the driver still
/// holds afterwards.
pub(crate) fn indicate(inner: &Inner, adapter: usize, frames: &[Vec<u8>], resources: bool) -> usize {
    let Some((context, state)) = open_of(inner, adapter) else { return 0 };
    if state != NdisBindingState::Running {
        return 0;
    }
    let Some((_, handler)) = inner.protocol_handler(|c| c.receive_net_buffer_lists) else { return 0 };
    let mut lent = Lent::default();
    let nbls = objects::receive_chain(&mut lent, frames, 14);
    let Some(&head) = nbls.first() else { return 0 };
    {
        let mut st = inner.state();
        for &n in &nbls {
            st.ndis.outstanding.insert(n, adapter);
        }
    }
    let flags = NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL | if resources { NDIS_RECEIVE_FLAGS_RESOURCES } else { 0 };
    crate::exports::call_into_driver(
        inner,
        2,
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
        return 0;
    }
    let held = nbls.iter().filter(|n| st.ndis.outstanding.contains_key(n)).count();
    if held > 0 {
        st.ndis.indications.push((nbls, lent));
    }
    held
}

impl Inner {
    /// The registered protocol's context and one of its handlers.
    pub(crate) fn protocol_handler(&self, pick: impl Fn(&crate::host::ProtocolCharacteristics) -> Option<usize>) -> Option<(usize, usize)> {
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

impl Host {
    /// Adds a virtual adapter; once the protocol is registered, NDIS binds it right away.
    pub fn add_adapter(&mut self, config: AdapterConfig) -> Result<usize, HostError> {
        let index = {
            let mut st = self.inner().state();
            st.ndis.adapters.push(config);
            st.ndis.adapters.len() - 1
        };
        if self.protocols().iter().any(|(_, live)| *live) {
            self.run(0, "bind", move |inner| bind(inner, index))?;
        }
        Ok(index)
    }

    /// Offers every adapter to the protocol, then NetEventBindsComplete (what NDIS does after registration).
    pub(crate) fn bind_all(&self) -> Result<(), HostError> {
        let n = self.inner().state().ndis.adapters.len();
        self.run(0, "bind", move |inner| {
            for a in 0..n {
                bind(inner, a);
            }
            binds_complete(inner);
        })
    }

    /// Removes adapter `index`: NDIS pauses and unbinds it.
    pub fn remove_adapter(&mut self, index: usize) -> Result<(), HostError> {
        self.run(0, "unbind", move |inner| unbind(inner, index))
    }

    /// NetEventPause on adapter `index`.
    pub fn pause(&mut self, index: usize) -> Result<i32, HostError> {
        self.run(0, "pause", move |inner| pause(inner, index))
    }

    /// NetEventRestart on adapter `index`.
    pub fn restart(&mut self, index: usize) -> Result<i32, HostError> {
        self.run(0, "restart", move |inner| restart(inner, index))
    }

    /// Indicates received frames on adapter `index` (one NBL chain, DISPATCH_LEVEL, processor 1); returns how
    /// many NBLs the driver kept (to return later).
    pub fn indicate_receive(&mut self, index: usize, frames: Vec<Vec<u8>>, resources: bool) -> Result<usize, HostError> {
        self.run(1, "receive", move |inner| indicate(inner, index, &frames, resources))
    }

    /// The bindings NDIS knows.
    pub fn bindings(&self) -> Vec<BindingInfo> {
        self.inner().state().ndis.opens.iter().filter(|o| !o.closed).map(|o| BindingInfo { adapter: o.adapter, state: o.state }).collect()
    }

    /// Received NBLs the driver has not returned.
    pub fn outstanding_receives(&self) -> usize {
        self.inner().state().ndis.outstanding.len()
    }
}

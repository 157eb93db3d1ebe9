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
//! come from [`Host::indicate_receive_shaped`], [`Host::indicate_receive_meta`] (NBLs carrying checksum,
//! loopback and RSC/URO metadata), [`Host::pump`] or the receive pump thread, and pass the binding's packet
//! filter when [`AdapterConfig::enforce_packet_filter`] is set. OID requests are answered by each adapter's
//! [`crate::oid::OidModel`], synchronously or pended (a pended set takes effect when it completes). Power
//! transitions pause and restart the binding around NetEventSetPower ([`Host::set_power`]).

use crate::host::{Host, HostError, Inner};
use crate::native::memory::HostBlock;
use crate::native::ndis_objects::{self as objects, BindFacts, Lent};
pub use crate::native::ndis_objects::{ReceiveMeta, ReceiveShape};
use crate::trace::status;
use crate::verifier::Rule;
use std::collections::BTreeMap;

/// `NdisMedium802_3`.
pub const MEDIUM_802_3: i32 = 0;
/// `NdisMediumNative802_11`.
pub const MEDIUM_NATIVE_802_11: i32 = 16;

const NDIS_STATUS_SUCCESS: i32 = 0;
const NDIS_STATUS_PENDING: i32 = 0x103;
const NET_EVENT_SET_POWER: i32 = 0;
const NET_EVENT_QUERY_REMOVE_DEVICE: i32 = 2;
const NET_EVENT_CANCEL_REMOVE_DEVICE: i32 = 3;
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
    /// When the adapter completes the driver's sends.
    pub send_completion: SendCompletion,
    /// NdisOidRequest returns NDIS_STATUS_PENDING; the request completes through ProtocolOidRequestComplete
    /// when the test calls [`Host::complete_oid_requests`] (or after `oid_delay` on another processor).
    pub oid_pends: bool,
    /// With `oid_pends`: complete each pended request by itself after this delay, from another processor
    /// (`None`: only [`Host::complete_oid_requests`] completes them).
    pub oid_delay: Option<std::time::Duration>,
    /// How the adapter lays out what its backend delivers (NET_BUFFERs per NBL, MDLs per frame, headroom).
    pub receive_shape: ReceiveShape,
    /// Indicate what the backend delivers with NDIS_RECEIVE_FLAGS_RESOURCES (the driver must copy at once).
    pub receive_resources: bool,
    /// Deliver a received frame only if the binding's packet filter (OID_GEN_CURRENT_PACKET_FILTER, with the
    /// multicast list) accepts its destination, as NDIS does; frames filtered out are counted
    /// ([`Host::frames_filtered`]) and not indicated. On by default; off: every frame reaches a Running binding
    /// (for tests of host mechanics with drivers that never set a filter).
    pub enforce_packet_filter: bool,
    /// Every receive indication on this adapter carries one NET_BUFFER per NBL, whatever shape the test or
    /// [`AdapterConfig::receive_shape`] asks for (the common miniport shape, which some protocol drivers
    /// assume); off, NBLs may carry several NET_BUFFERs as NDIS allows.
    pub one_net_buffer_per_nbl: bool,
    /// The miniport sets NDIS_MINIPORT_ATTRIBUTES_NO_PAUSE_ON_SUSPEND: with protocols of NDIS 6.30 or later,
    /// NDIS does not pause the binding around power transitions ([`Host::set_power`]).
    pub no_pause_on_suspend: bool,
}

/// When an adapter completes the sends the driver gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SendCompletion {
    /// Inside NdisSendNetBufferLists, on the caller's processor.
    #[default]
    Synchronous,
    /// Held until [`Host::complete_sends`] completes them from another processor; a pause completes them
    /// first (before NetEventPause).
    Deferred,
    /// Completed by the adapter itself `delay` after each send call, from another processor (processor 1 at
    /// DISPATCH_LEVEL), `per_call` NBLs per completion call (0: all), in send order or `reverse`d. Sends in
    /// flight at a pause stay in flight: the driver must pend the pause until they complete.
    Async { delay: std::time::Duration, per_call: usize, reverse: bool },
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
            send_completion: SendCompletion::Synchronous,
            oid_pends: false,
            oid_delay: None,
            receive_shape: ReceiveShape { nbs_per_nbl: 1, mdls_per_nb: 1, data_offset: 14 },
            receive_resources: false,
            enforce_packet_filter: true,
            one_net_buffer_per_nbl: false,
            no_pause_on_suspend: false,
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
    /// NetEventRestart delivered and not yet returned. The protocol may send from here on: the binding
    /// enters Running "when the driver is ready to resume send and receive operations" (Restarting a
    /// Binding, learn.microsoft.com), which it decides inside its handler.
    Restarting,
    /// NetEventPause being delivered: the driver's handler has not returned yet. A send issued now raced
    /// with the notification (the driver could not have known) and is accepted; the pause must wait for it.
    PauseDelivering,
    /// NetEventPause delivered and not yet completed (no new sends).
    Pausing,
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
    /// NBL pools the driver allocated, by handle.
    pub nbl_pools: BTreeMap<usize, NblPool>,
    /// NBLs the driver allocated from its pools, by address.
    pub driver_nbls: BTreeMap<usize, DriverNbl>,
    /// NET_BUFFER pools the driver allocated, by handle: (handle block, tag, DataSize).
    pub nb_pools: BTreeMap<usize, (HostBlock, u32, u32)>,
    /// NET_BUFFERs the driver allocated from its NET_BUFFER pools: address → (pool, blocks, the data NDIS
    /// allocated with it as (MDL, address, length)).
    pub driver_nbs: BTreeMap<usize, (usize, Vec<HostBlock>, Option<(usize, usize, usize)>)>,
    /// NdisGeneratePartialCancelId's last value.
    pub cancel_ids: u8,
    /// MDLs NdisAllocateMdl gave the driver, by address.
    pub ndis_mdls: BTreeMap<usize, HostBlock>,
    /// The driver's NBLs the adapter holds (sent, not yet completed): NBL → (adapter, completion status).
    pub in_flight: BTreeMap<usize, (usize, i32)>,
    /// Sends held for deferred completion, in send order: (adapter, NBL).
    pub held_sends: Vec<(usize, usize)>,
    /// Frames the driver sent, per adapter.
    pub sent: BTreeMap<usize, std::collections::VecDeque<Vec<u8>>>,
    /// Frames the driver sent, per adapter, since the start (the record above keeps the last [`SENT_KEPT`]).
    pub sent_count: BTreeMap<usize, u64>,
    /// The far side of each adapter (none: frames are counted and dropped).
    pub backends: BTreeMap<usize, std::sync::Arc<dyn crate::backend::Backend>>,
    /// Each adapter's OID state, created at its first bind.
    pub oids: BTreeMap<usize, crate::oid::OidModel>,
    /// OID requests pended to the driver: request address → (adapter, RequestId, status to complete with).
    pub pending_oids: BTreeMap<usize, (usize, usize, i32)>,
    /// The sets among them that succeed when completed: request address → (OID, data), applied to the model
    /// only when the request completes with NDIS_STATUS_SUCCESS.
    pub pending_sets: BTreeMap<usize, (u32, Vec<u8>)>,
    /// The queries among them that succeed: request address → (InformationBuffer, the answer), written into
    /// the driver's buffer only when the request completes with NDIS_STATUS_SUCCESS.
    pub pending_queries: BTreeMap<usize, (usize, Vec<u8>)>,
    /// Each pended request's issue number (so a delayed completion never completes a later request that
    /// reuses the address), and the last number given.
    pub oid_issue: BTreeMap<usize, u64>,
    pub oid_issues: u64,
    /// The last [`OID_LOG_KEPT`] OID requests the driver issued, oldest first.
    pub oid_log: std::collections::VecDeque<OidLogEntry>,
    /// Whether the receive pump thread runs.
    pub pump_running: bool,
    /// PnP events the driver pended: notification address → (binding handle, the status NdisCompleteNetPnPEvent
    /// gave once called).
    pub pending_pnp: BTreeMap<usize, (usize, Option<i32>)>,
    /// Memory NDIS allocated for the driver (NdisQueryAdapterInstanceName), freed with NdisFreeMemory.
    pub ndis_memory: BTreeMap<usize, HostBlock>,
    /// Indicated NBLs the driver still owns: NBL address → adapter.
    pub outstanding: BTreeMap<usize, usize>,
    /// Memory of indications, kept until every NBL of it is back.
    pub indications: Vec<(Vec<usize>, Lent)>,
    /// Received frames the packet filter kept from the binding, per adapter.
    pub filtered: BTreeMap<usize, u64>,
    /// Adapters whose binding a transition to a low-power state paused (restarted at D0).
    pub power_paused: std::collections::BTreeSet<usize>,
    /// NET_BUFFER_LIST_CONTEXT blocks NdisAllocateNetBufferListContext added: context address → (its block,
    /// the NBL it was added to).
    pub nbl_contexts: BTreeMap<usize, (HostBlock, usize)>,
}

/// One OID request as the driver issued it, for tests that check what a miniport is handed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidLogEntry {
    pub adapter: usize,
    pub oid: u32,
    /// A set (otherwise a query).
    pub set: bool,
    /// The InformationBuffer's length.
    pub length: u32,
    /// For a query: whether every byte of the InformationBuffer was zero when the request reached the
    /// miniport (a driver that passes user bytes or stale pool down hands the miniport data it never meant to).
    pub buffer_zeroed: bool,
}

/// How many OID requests the host's log keeps.
pub const OID_LOG_KEPT: usize = 256;

/// Records an OID request in the bounded log.
pub(crate) fn log_oid(ndis: &mut NdisState, entry: OidLogEntry) {
    if ndis.oid_log.len() == OID_LOG_KEPT {
        ndis.oid_log.pop_front();
    }
    ndis.oid_log.push_back(entry);
}

/// How many of the frames the driver sent the host keeps per adapter (a long `run` would grow without end).
pub const SENT_KEPT: usize = 4096;

/// Records frames the driver sent on `adapter`.
pub(crate) fn record_sent(ndis: &mut NdisState, adapter: usize, frames: &[Vec<u8>]) {
    let q = ndis.sent.entry(adapter).or_default();
    q.extend(frames.iter().cloned());
    while q.len() > SENT_KEPT {
        q.pop_front();
    }
    *ndis.sent_count.entry(adapter).or_default() += frames.len() as u64;
}

/// An NBL pool: its handle block and what NET_BUFFER_LIST_POOL_PARAMETERS asked for.
#[derive(Debug)]
pub(crate) struct NblPool {
    #[allow(dead_code, reason = "held for its address")]
    pub block: HostBlock,
    pub tag: u32,
    pub allocate_nb: bool,
    pub data_size: u32,
}

/// An NBL the driver allocated, with the memory NDIS allocated along with it.
#[derive(Debug)]
pub(crate) struct DriverNbl {
    pub pool: usize,
    /// The NBL, its NET_BUFFER (if any), its context area and the data NDIS allocated (MDL, buffer).
    #[allow(dead_code, reason = "held until the NBL is freed")]
    pub blocks: Vec<HostBlock>,
    /// The NET_BUFFER allocated with it (0 if none).
    pub nb: usize,
    /// Data NDIS allocated for it (its MDL, address, length), which a send may read.
    pub data: Option<(usize, usize, usize)>,
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
    oid_model(&mut inner.state().ndis, adapter);
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
    pnp_then(inner, context, code, buffer, len, || {})
}

/// [`pnp`], calling `returned` as soon as the driver's handler returned (before a pended event completes).
fn pnp_then(inner: &Inner, context: usize, code: i32, buffer: usize, len: u32, returned: impl FnOnce()) -> i32 {
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
    let r = crate::exports::call_into_driver(
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
fn held_for_test(inner: &Inner, adapter: usize) -> bool {
    inner.state().ndis.adapters.get(adapter).is_some_and(|a| a.send_completion == SendCompletion::Deferred)
}

/// How long NDIS waits for a pended PnP event before the host reports it.
const PNP_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(if cfg!(test) { 300 } else { 5000 });

/// Waits for NdisCompleteNetPnPEvent on a pended event, completing the adapter's held sends meanwhile (a
/// pause may wait for them); returns the status it completed with.
fn wait_pnp(inner: &Inner, n: usize, name: &str, handle: Option<usize>) -> i32 {
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
const D0: u32 = 1;

/// Whether NDIS pauses `adapter`'s binding around power transitions (see [`Host::set_power`]).
fn pauses_on_suspend(inner: &Inner, adapter: usize) -> bool {
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
fn set_power(inner: &Inner, adapter: usize, device_state: u32) -> i32 {
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
            crate::exports::call_into_driver(
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
fn packet_filter<'f>(inner: &Inner, adapter: usize, frames: Vec<Arrival<'f>>) -> Vec<Arrival<'f>> {
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
fn indicate_frames(
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
    if inner.state().ndis.adapters.get(adapter).is_some_and(|a| a.one_net_buffer_per_nbl) {
        shape.nbs_per_nbl = 1;
    }
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
        pick: impl Fn(&crate::host::ProtocolCharacteristics) -> Option<usize>,
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
    pub fn remove_adapter(&self, index: usize) -> Result<(), HostError> {
        self.run(0, "unbind", move |inner| unbind(inner, index))
    }

    /// NetEventPause on adapter `index`.
    pub fn pause(&self, index: usize) -> Result<i32, HostError> {
        self.run(0, "pause", move |inner| pause(inner, index))
    }

    /// NetEventRestart on adapter `index`.
    pub fn restart(&self, index: usize) -> Result<i32, HostError> {
        self.run(0, "restart", move |inner| restart(inner, index))
    }

    /// The adapter's MTU changes as NDIS reports it to a protocol: the binding is paused, the new MTU is
    /// recorded (bind parameters of later binds, OIDs), and the restart carries it in its restart attributes
    /// (OID_GEN_MINIPORT_RESTART_ATTRIBUTES). Returns the restart's status.
    pub fn change_mtu(&mut self, index: usize, mtu: u32) -> Result<i32, HostError> {
        let paused = self.pause(index)?;
        if paused != NDIS_STATUS_SUCCESS {
            return Ok(paused);
        }
        let speed = {
            let mut st = self.inner().state();
            let a = st.ndis.adapters.get_mut(index).ok_or_else(|| HostError::State(format!("no adapter {index}")))?;
            a.mtu = mtu;
            let speed = a.link_speed;
            if let Some(m) = st.ndis.oids.get_mut(&index) {
                m.mtu = mtu;
            }
            speed
        };
        let change = objects::RestartChange { mtu, link_speed: speed };
        self.run(0, "restart", move |inner| restart_with(inner, index, Some(change)))
    }

    /// Indicates received frames on adapter `index` (one NBL chain, DISPATCH_LEVEL, processor 1); returns how
    /// many NBLs the driver kept (to return later).
    pub fn indicate_receive(&self, index: usize, frames: Vec<Vec<u8>>, resources: bool) -> Result<usize, HostError> {
        self.run(1, "receive", move |inner| indicate(inner, index, &frames, resources))
    }

    /// The bindings NDIS knows.
    pub fn bindings(&self) -> Vec<BindingInfo> {
        self.inner()
            .state()
            .ndis
            .opens
            .iter()
            .filter(|o| !o.closed)
            .map(|o| BindingInfo { adapter: o.adapter, state: o.state })
            .collect()
    }

    /// How many received frames adapter `index`'s packet filter kept from its binding (counted only with
    /// [`AdapterConfig::enforce_packet_filter`]).
    pub fn frames_filtered(&self, index: usize) -> u64 {
        self.inner().state().ndis.filtered.get(&index).copied().unwrap_or(0)
    }

    /// Received NBLs the driver has not returned.
    pub fn outstanding_receives(&self) -> usize {
        self.inner().state().ndis.outstanding.len()
    }
}

// ---------------------------------------------------------------- sends, receives, OIDs, status

/// Completes the driver's sends `batch` (all in flight on `adapter`) through ProtocolSendNetBufferListsComplete
/// in one call at `irql`, in this order, each NBL carrying the status the adapter gave it.
pub(crate) fn complete_sends(inner: &Inner, adapter: usize, batch: &[usize]) {
    complete_sends_at(inner, adapter, batch, crate::native::cpu::irql());
}

fn complete_sends_at(inner: &Inner, adapter: usize, batch: &[usize], irql: u8) {
    if batch.is_empty() {
        return;
    }
    let Some((context, _)) = open_of(inner, adapter) else { return };
    let Some((_, handler)) = inner.protocol_handler(|c| c.send_net_buffer_lists_complete) else { return };
    let head = {
        let mut st = inner.state();
        // Another thread may have completed some of them meanwhile (a pause and an adapter thread).
        let batch: Vec<usize> = batch.iter().copied().filter(|n| st.ndis.in_flight.contains_key(n)).collect();
        let Some(head) = objects::link_completed(&st.ndis, &batch) else { return };
        // The NBLs are the driver's again once the completion is called.
        for n in &batch {
            st.ndis.in_flight.remove(n);
        }
        st.ndis.held_sends.retain(|(_, n)| !batch.contains(n));
        head
    };
    let flags = if irql >= 2 { ndis_sys::NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL } else { 0 };
    crate::exports::call_into_driver(
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
    let spawned = crate::host::spawn_system_thread(inner, "adapter", 1, move |i| {
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
            crate::exports::finish_query(request, buffer, &bytes);
        }
    }
    let Some((context, _)) = open_of(inner, adapter) else { return };
    let Some((_, handler)) = inner.protocol_handler(|c| c.oid_request_complete) else { return };
    // CAST: NDIS_STATUS passed as its 32-bit pattern.
    let st = u64::from(status as u32);
    crate::exports::call_into_driver(
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
fn indicate_link_state(inner: &Inner, adapter: usize, connected: bool) {
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
fn indicate_status(inner: &Inner, adapter: usize, code: i32, payload: &[u8]) {
    let handle = inner.state().ndis.opens.iter().find(|o| o.adapter == adapter && !o.closed).map(|o| o.handle.addr());
    let (Some(handle), Some((context, _))) = (handle, open_of(inner, adapter)) else { return };
    let Some((_, handler)) = inner.protocol_handler(|c| c.status_ex) else { return };
    let mut lent = Lent::default();
    let ind = objects::status_indication(&mut lent, handle, code, payload);
    crate::exports::call_into_driver(
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

impl Host {
    /// Sets (or removes) the far side of adapter `index`.
    pub fn set_backend(&mut self, index: usize, backend: Option<Box<dyn crate::backend::Backend>>) {
        let mut st = self.inner().state();
        match backend {
            Some(b) => st.ndis.backends.insert(index, std::sync::Arc::from(b)),
            None => st.ndis.backends.remove(&index),
        };
    }

    /// Connects adapters `a` and `b` with a [`crate::backend::Wire`]: what the driver sends on one is received
    /// on the other (when [`Host::pump`] runs).
    pub fn connect(&mut self, a: usize, b: usize) {
        let (x, y) = crate::backend::Wire::pair();
        self.set_backend(a, Some(Box::new(x)));
        self.set_backend(b, Some(Box::new(y)));
    }

    /// Every frame the driver sent on adapter `index`, in order.
    pub fn sent_frames(&self, index: usize) -> Vec<Vec<u8>> {
        self.inner().state().ndis.sent.get(&index).map(|q| q.iter().cloned().collect()).unwrap_or_default()
    }

    /// How many frames the driver sent on adapter `index` since the start.
    pub fn sent_count(&self, index: usize) -> u64 {
        self.inner().state().ndis.sent_count.get(&index).copied().unwrap_or(0)
    }

    /// The driver's NBLs the adapters hold (sent, not completed).
    pub fn sends_in_flight(&self) -> usize {
        self.inner().state().ndis.in_flight.len()
    }

    /// Completes adapter `index`'s held sends from processor 1 at DISPATCH_LEVEL, `per_call` NBLs per
    /// ProtocolSendNetBufferListsComplete (0: all in one), in send order or `reverse`d; returns how many.
    pub fn complete_sends(&mut self, index: usize, per_call: usize, reverse: bool) -> Result<usize, HostError> {
        self.run(1, "send completion", move |inner| flush_sends(inner, index, per_call, reverse))
    }

    /// Polls every adapter's backend on processor 1 and indicates what arrived; returns the frames indicated.
    pub fn pump(&mut self) -> Result<usize, HostError> {
        self.run(1, "receive", pump)
    }

    /// Starts the machine's receive pump: a thread (processor 0) that polls every adapter's backend each
    /// millisecond and indicates what arrived to Running bindings at DISPATCH_LEVEL, until the host goes.
    /// Without it, [`Host::pump`] indicates on demand.
    pub fn start_receive_pump(&mut self) -> Result<(), HostError> {
        {
            let mut st = self.inner().state();
            if st.ndis.pump_running {
                return Ok(());
            }
            st.ndis.pump_running = true;
        }
        crate::host::spawn_system_thread(&self.inner, "receive-pump", 0, |inner| loop {
            if inner.ke.deferred().shutdown || inner.down.load(std::sync::atomic::Ordering::Acquire) {
                return;
            }
            if pump(inner) == 0 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
        .map_err(|e| HostError::State(format!("starting the receive pump: {e}")))
    }

    /// Completes pended OID requests (of adapter `index`, or all) from processor 1; returns how many.
    pub fn complete_oid_requests(&mut self, index: Option<usize>) -> Result<usize, HostError> {
        self.run(1, "OID completion", move |inner| complete_oids(inner, index))
    }

    /// Changes whether adapter `index` pends the OID requests issued from now on (see
    /// [`AdapterConfig::oid_pends`]); requests already pended stay so. Fails for an unknown adapter.
    pub fn set_oid_pends(&self, index: usize, pends: bool) -> Result<(), HostError> {
        let mut st = self.inner().state();
        let a = st.ndis.adapters.get_mut(index).ok_or_else(|| HostError::State(format!("no adapter {index}")))?;
        a.oid_pends = pends;
        Ok(())
    }

    /// OID requests pended to the driver and not yet completed.
    pub fn pending_oid_requests(&self) -> usize {
        self.inner().state().ndis.pending_oids.len()
    }

    /// The last [`OID_LOG_KEPT`] OID requests the driver issued, oldest first.
    pub fn oid_requests(&self) -> Vec<OidLogEntry> {
        self.inner().state().ndis.oid_log.iter().cloned().collect()
    }

    /// Adapter `index`'s OID state (packet filter, multicast list, counters), if it was ever bound.
    pub fn oid_state(&self, index: usize) -> Option<crate::oid::OidModel> {
        self.inner().state().ndis.oids.get(&index).cloned()
    }

    /// Indicates received frames on adapter `index` from processor `processor`, laid out as `shape` says
    /// (several NET_BUFFERs per NBL, several MDLs per NET_BUFFER, headroom); returns the NBLs the driver kept.
    pub fn indicate_receive_shaped(
        &self,
        index: usize,
        processor: usize,
        frames: Vec<Vec<u8>>,
        resources: bool,
        shape: ReceiveShape,
    ) -> Result<usize, HostError> {
        self.run(processor, "receive", move |inner| indicate_shaped(inner, index, &frames, resources, shape))
    }

    /// Indicates received frames carrying NBL metadata on adapter `index` (one NBL per frame, so each carries
    /// its own NblFlags and NetBufferListInfo; processor 1, DISPATCH_LEVEL, one chain); returns the NBLs the
    /// driver kept. Frames with URO info are refused (nothing is indicated) when URO is off
    /// ([`Host::uro_enabled`]): NDIS never indicates UDP-coalesced NBLs to a protocol that switched it off.
    pub fn indicate_receive_meta(
        &mut self,
        index: usize,
        frames: &[(Vec<u8>, ReceiveMeta)],
    ) -> Result<usize, HostError> {
        if frames.iter().any(|(_, m)| m.uro.is_some()) && !self.uro_enabled() {
            return Err(HostError::State(
                "URO (UdpRecvSegCoalesceOffloadInfo) indicated while NDIS has UDP receive coalescing switched off \
                 (emulated NDIS below 6.89, or a protocol registered below 6.89 or with \
                 NDIS_PROTOCOL_DRIVER_UDP_RSC_NOT_SUPPORTED)"
                    .into(),
            ));
        }
        let frames = frames.to_vec();
        self.run(1, "receive", move |inner| indicate_meta(inner, index, &frames))
    }

    /// Whether NDIS keeps UDP receive segment coalescing (URO) on for the adapters: the emulated NDIS is 6.89
    /// or later and no registered protocol switches it off. A protocol registering below NDIS 6.89, or with
    /// `NDIS_PROTOCOL_DRIVER_UDP_RSC_NOT_SUPPORTED` in its characteristics' Flags, makes NDIS switch URO off
    /// on the NICs it binds to (for every protocol), as documented for NDIS 6.89.
    pub fn uro_enabled(&self) -> bool {
        self.inner().config.ndis_version >= crate::host::NDIS_689
            && self.protocols().iter().filter(|(_, live)| *live).all(|(c, _)| {
                let version = (u32::from(c.major_ndis_version) << 16) | u32::from(c.minor_ndis_version);
                version >= crate::host::NDIS_689 && c.flags & ndis_sys::NDIS_PROTOCOL_DRIVER_UDP_RSC_NOT_SUPPORTED == 0
            })
    }

    /// Indicates `a` from processor 0 and `b` from processor 1 at the same time (both at DISPATCH_LEVEL) on
    /// adapter `index`; returns the NBLs the driver kept from each.
    pub fn indicate_receive_concurrently(
        &mut self,
        index: usize,
        a: Vec<Vec<u8>>,
        b: Vec<Vec<u8>>,
        shape: ReceiveShape,
    ) -> Result<(usize, usize), HostError> {
        let this = &*self;
        std::thread::scope(|s| {
            let first =
                s.spawn(move || this.run(0, "receive", move |inner| indicate_shaped(inner, index, &a, false, shape)));
            let second = this.run(1, "receive", move |inner| indicate_shaped(inner, index, &b, false, shape));
            let first = first.join().unwrap_or(Err(HostError::Down));
            Ok((first?, second?))
        })
    }

    /// A device power transition of adapter `index` (NDIS_DEVICE_POWER_STATE `device_state`: 1 = D0, 2–4 =
    /// D1–D3), as NDIS 6 delivers it to a bound protocol: NetEventSetPower with the state in a 4-byte buffer
    /// and, around it, the pause and restart of the binding. To a low-power state: NetEventSetPower(Dx), then
    /// NetEventPause (a Running binding); back to D0: NetEventRestart (of a binding this paused), then
    /// NetEventSetPower(D0) — "after issuing the set power request, NDIS pauses the driver stack if the
    /// miniport adapter is transitioning to a low-power state; NDIS restarts the driver stack before the
    /// set-power request if the miniport adapter is transitioning to the working state (D0)" (learn.microsoft.com,
    /// Handling PnP Events and Power Management Events in a Protocol Driver). With
    /// [`AdapterConfig::no_pause_on_suspend`] and a protocol of NDIS 6.30 or later there is no pause or restart
    /// (OID_PNP_SET_POWER, NDIS_MINIPORT_ATTRIBUTES_NO_PAUSE_ON_SUSPEND). A protocol that answers
    /// NetEventSetPower with NDIS_STATUS_NOT_SUPPORTED is unbound, as NDIS does with old protocols. Returns the
    /// driver's (or NdisCompleteNetPnPEvent's) status for NetEventSetPower.
    pub fn set_power(&mut self, index: usize, device_state: u32) -> Result<i32, HostError> {
        self.run(0, "set power", move |inner| set_power(inner, index, device_state))
    }

    /// NetEventQueryRemoveDevice (`query`) or NetEventCancelRemoveDevice on adapter `index`'s binding.
    pub fn query_remove(&mut self, index: usize, query: bool) -> Result<i32, HostError> {
        let code = if query { NET_EVENT_QUERY_REMOVE_DEVICE } else { NET_EVENT_CANCEL_REMOVE_DEVICE };
        self.run(0, "query remove", move |inner| match open_of(inner, index) {
            Some((context, _)) => pnp(inner, context, code, 0, 0),
            None => NDIS_STATUS_SUCCESS,
        })
    }

    /// Indicates any status (`NDIS_STATUS_*`, with `payload` as its StatusBuffer) through ProtocolStatusEx
    /// on processor 1 at DISPATCH_LEVEL.
    pub fn indicate_status(&mut self, index: usize, code: i32, payload: Vec<u8>) -> Result<(), HostError> {
        self.run(1, "status", move |inner| indicate_status(inner, index, code, &payload))
    }

    /// Indicates a link state change (NDIS_STATUS_LINK_STATE through ProtocolStatusEx) on processor 1.
    pub fn indicate_link_state(&self, index: usize, connected: bool) -> Result<(), HostError> {
        self.run(1, "status", move |inner| indicate_link_state(inner, index, connected))
    }
}

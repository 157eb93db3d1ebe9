//! NDIS's state: adapters and their configuration, opens (bindings), pended binds, unbinds and PnP events,
//! NBL pools, the driver's NBLs in flight, indications held by the driver, the OID log and the sent frames.

use crate::native::memory::HostBlock;
use crate::native::ndis_objects::Lent;
pub use crate::native::ndis_objects::{ReceiveMeta, ReceiveShape};
use std::collections::BTreeMap;

/// `NdisMedium802_3`.
pub const MEDIUM_802_3: i32 = 0;
/// `NdisMediumNative802_11`.
pub const MEDIUM_NATIVE_802_11: i32 = 16;

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
    /// when the test calls [`Host::complete_oid_requests`](crate::host::Host::complete_oid_requests) (or after `oid_delay` on another processor).
    pub oid_pends: bool,
    /// With `oid_pends`: complete each pended request by itself after this delay, from another processor
    /// (`None`: only [`Host::complete_oid_requests`](crate::host::Host::complete_oid_requests) completes them).
    pub oid_delay: Option<std::time::Duration>,
    /// How the adapter lays out what its backend delivers (NET_BUFFERs per NBL, MDLs per frame, headroom).
    pub receive_shape: ReceiveShape,
    /// Indicate what the backend delivers with NDIS_RECEIVE_FLAGS_RESOURCES (the driver must copy at once).
    pub receive_resources: bool,
    /// Deliver a received frame only if the binding's packet filter (OID_GEN_CURRENT_PACKET_FILTER, with the
    /// multicast list) accepts its destination, as NDIS does; frames filtered out are counted
    /// ([`Host::frames_filtered`](crate::host::Host::frames_filtered)) and not indicated. On by default; off: every frame reaches a Running binding
    /// (for tests of host mechanics with drivers that never set a filter).
    pub enforce_packet_filter: bool,
    /// Every receive indication on this adapter carries one NET_BUFFER per NBL, whatever shape the test or
    /// [`AdapterConfig::receive_shape`] asks for (the common miniport shape, which some protocol drivers
    /// assume); off, NBLs may carry several NET_BUFFERs as NDIS allows.
    pub one_net_buffer_per_nbl: bool,
    /// Receive indications on this adapter come at PASSIVE_LEVEL without NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL, as
    /// from a miniport that indicates from a thread (NDIS calls ProtocolReceiveNetBufferLists at IRQL <=
    /// DISPATCH_LEVEL and sets that flag only when the IRQL is DISPATCH_LEVEL). Off (the default): every
    /// indication at DISPATCH_LEVEL with the flag. A driver that assumes DISPATCH_LEVEL without the flag
    /// (e.g. KeAcquireSpinLockAtDpcLevel) gets an IRQL finding.
    pub receive_at_passive: bool,
    /// The miniport sets NDIS_MINIPORT_ATTRIBUTES_NO_PAUSE_ON_SUSPEND: with protocols of NDIS 6.30 or later,
    /// NDIS does not pause the binding around power transitions ([`Host::set_power`](crate::host::Host::set_power)).
    pub no_pause_on_suspend: bool,
}

/// When an adapter completes the sends the driver gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SendCompletion {
    /// Inside NdisSendNetBufferLists, on the caller's processor.
    #[default]
    Synchronous,
    /// Held until [`Host::complete_sends`](crate::host::Host::complete_sends) completes them from another processor; a pause completes them
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
            receive_at_passive: false,
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

/// A map keyed by a host address that a sent or received frame looks up (a hash map: no lookup walks a tree,
/// and nothing depends on the order).
pub type AddrMap<V> = rustc_hash::FxHashMap<usize, V>;

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
    pub driver_nbls: AddrMap<DriverNbl>,
    /// NET_BUFFER pools the driver allocated, by handle: (handle block, tag, DataSize).
    pub nb_pools: BTreeMap<usize, (HostBlock, u32, u32)>,
    /// NET_BUFFERs the driver allocated from its NET_BUFFER pools: address → (pool, blocks, the data NDIS
    /// allocated with it as (MDL, address, length)).
    pub driver_nbs: BTreeMap<usize, (usize, Vec<HostBlock>, Option<(usize, usize, usize)>)>,
    /// NdisGeneratePartialCancelId's last value.
    pub cancel_ids: u8,
    /// MDLs NdisAllocateMdl gave the driver, by address.
    pub ndis_mdls: AddrMap<HostBlock>,
    /// The driver's NBLs the adapter holds (sent, not yet completed): NBL → (adapter, completion status).
    pub in_flight: AddrMap<(usize, i32)>,
    /// Sends held for deferred completion, in send order: (adapter, NBL).
    pub held_sends: Vec<(usize, usize)>,
    /// Frames the driver sent, per adapter.
    pub sent: BTreeMap<usize, std::collections::VecDeque<Vec<u8>>>,
    /// Buffers of frames that left `sent`, for the next sends to copy their frames into (at most
    /// [`SPARE_KEPT`]): in steady state a send allocates no frame buffer.
    pub spare_frames: Vec<Vec<u8>>,
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
    pub outstanding: AddrMap<usize>,
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

/// How many buffers of frames that left the send record [`NdisState::spare_frames`] keeps, and the largest
/// it keeps (a large send's buffer is freed, so the spares hold at most 16 MiB).
pub const SPARE_KEPT: usize = 1024;
pub const SPARE_MAX_BYTES: usize = 16 * 1024;

/// Records frames the driver sent on `adapter` (taking them); the buffers of the frames that leave the record
/// become spares.
pub(crate) fn record_sent(ndis: &mut NdisState, adapter: usize, frames: Vec<Vec<u8>>) {
    *ndis.sent_count.entry(adapter).or_default() += frames.len() as u64;
    let q = ndis.sent.entry(adapter).or_default();
    q.extend(frames);
    while q.len() > SENT_KEPT {
        match q.pop_front() {
            Some(old) if ndis.spare_frames.len() < SPARE_KEPT && old.capacity() <= SPARE_MAX_BYTES => {
                ndis.spare_frames.push(old)
            }
            _ => {}
        }
    }
}

/// An empty buffer for a frame being sent: a spare one (see [`record_sent`]) or a new one.
pub(crate) fn frame_buffer(ndis: &mut NdisState) -> Vec<u8> {
    let mut b = ndis.spare_frames.pop().unwrap_or_default();
    b.clear();
    b
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_send_record_keeps_the_newest_frames_and_hands_the_buffers_of_older_ones_to_later_sends() {
        let mut ndis = NdisState::default();
        let frames = |from: usize, n: usize| (from..from + n).map(|i| i.to_le_bytes().to_vec()).collect::<Vec<_>>();
        record_sent(&mut ndis, 1, frames(0, SENT_KEPT));
        assert!(ndis.spare_frames.is_empty());
        record_sent(&mut ndis, 1, frames(SENT_KEPT, 3));
        let q = &ndis.sent[&1];
        assert_eq!(q.len(), SENT_KEPT);
        assert_eq!(q.front(), Some(&3usize.to_le_bytes().to_vec()), "the 3 oldest left the record");
        assert_eq!(q.back(), Some(&(SENT_KEPT + 2).to_le_bytes().to_vec()));
        assert_eq!(ndis.sent_count[&1], SENT_KEPT as u64 + 3);
        assert_eq!(ndis.spare_frames.len(), 3);
        let b = frame_buffer(&mut ndis);
        assert!(b.is_empty() && b.capacity() >= 8, "a spare comes back empty, its capacity kept");
        assert_eq!(ndis.spare_frames.len(), 2);
        // The spares are bounded: a record that drops many frames at once keeps SPARE_KEPT of their buffers.
        record_sent(&mut ndis, 1, frames(0, SENT_KEPT));
        assert_eq!(ndis.spare_frames.len(), SPARE_KEPT);
        assert_eq!(ndis.sent[&1].len(), SENT_KEPT);
        // A buffer larger than SPARE_MAX_BYTES is freed, not kept.
        let mut ndis = NdisState::default();
        record_sent(&mut ndis, 1, vec![vec![0; SPARE_MAX_BYTES + 1]]);
        record_sent(&mut ndis, 1, frames(0, SENT_KEPT));
        assert!(ndis.spare_frames.is_empty());
    }
}

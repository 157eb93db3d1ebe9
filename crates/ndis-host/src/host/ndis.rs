//! NDIS as the public API: adapters, their far sides, receive indications, pause and restart, unbind and
//! rebind, power, link state and the OID log on a [`Host`]. The NDIS model itself is [`crate::ndis`].

use crate::host::{Host, HostError};
use crate::native::ndis_objects::{self as objects};
pub use crate::native::ndis_objects::{ReceiveMeta, ReceiveShape};
use crate::ndis::*;

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
                crate::ndis::idle_wait(inner, std::time::Duration::from_millis(1));
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
    /// `frames` is anything that lends the frames (a `Vec<Vec<u8>>`, or an `Arc<[Vec<u8>]>` indicated again
    /// and again without copying them).
    pub fn indicate_receive_shaped(
        &self,
        index: usize,
        processor: usize,
        frames: impl AsRef<[Vec<u8>]> + Send + 'static,
        resources: bool,
        shape: ReceiveShape,
    ) -> Result<usize, HostError> {
        self.run(processor, "receive", move |inner| indicate_shaped(inner, index, frames.as_ref(), resources, shape))
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

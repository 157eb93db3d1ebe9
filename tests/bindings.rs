//! The real rawlink.sys bound to virtual adapters in ndis-host: bind, restart, pause, receive, unbind.
#![cfg(target_os = "linux")]

mod common;

use ndis_host::faults::FaultRule;
use ndis_host::host::{Host, HostConfig};
use ndis_host::ndis::{AdapterConfig, NdisBindingState, MEDIUM_NATIVE_802_11};
use ndis_host::trace::Direction;

// CAST: NDIS_STATUS values are written as the unsigned hex the docs use.

fn host_with(adapters: Vec<AdapterConfig>, config: HostConfig) -> Host {
    let bytes = common::package_file("rawlink.sys");
    let mut h = Host::load(&bytes, config).unwrap_or_else(|e| panic!("loading rawlink.sys: {e}"));
    for a in adapters {
        h.add_adapter(a).expect("adapter added");
    }
    assert_eq!(h.driver_entry().expect("DriverEntry ran"), 0);
    h
}

fn assert_clean(h: &Host) {
    let v = h.violations();
    assert!(v.is_empty(), "verifier: {v:#?}");
}

fn calls(h: &Host, name: &str) -> usize {
    h.trace().iter().filter(|e| e.name == name).count()
}

#[test]
fn two_adapters_are_bound_restarted_and_unbound_at_unload() {
    let mut h = host_with(vec![AdapterConfig::ethernet(1), AdapterConfig::ethernet(2)], HostConfig::default());
    let b = h.bindings();
    assert_eq!(b.len(), 2, "{b:?}");
    assert!(b.iter().all(|b| b.state == NdisBindingState::Running), "{b:?}");
    assert_eq!(calls(&h, "NdisOpenAdapterEx"), 2);
    assert_eq!(calls(&h, "ProtocolNetPnPEvent(NetEventRestart)"), 2);
    assert_eq!(calls(&h, "ProtocolNetPnPEvent(NetEventBindsComplete)"), 1);
    // The friendly name was queried and NDIS's buffer freed.
    assert_eq!(calls(&h, "NdisQueryAdapterInstanceName"), 2);
    assert_eq!(calls(&h, "NdisFreeMemory"), 2);
    assert_clean(&h);
    h.unload().expect("unload");
    assert!(h.bindings().is_empty());
    assert_eq!(calls(&h, "ProtocolNetPnPEvent(NetEventPause)"), 2);
    assert_eq!(calls(&h, "ProtocolUnbindAdapterEx"), 2);
    assert_eq!(calls(&h, "NdisCloseAdapterEx"), 2);
    // Unbinding happens inside NdisDeregisterProtocolDriver, before the device goes.
    let t = h.trace();
    let dereg = t.iter().position(|e| e.name == "NdisDeregisterProtocolDriver").expect("deregistered");
    let last_close = t.iter().rposition(|e| e.name == "NdisCloseAdapterEx").expect("closed");
    let delete = t.iter().position(|e| e.name == "IoDeleteDevice").expect("device deleted");
    assert!(dereg < last_close && last_close < delete);
    assert_clean(&h);
}

#[test]
fn pended_open_and_close_complete_through_their_handlers() {
    let a = AdapterConfig { open_pends: true, close_pends: true, ..AdapterConfig::ethernet(1) };
    let mut h = host_with(vec![a], HostConfig::default());
    assert_eq!(h.bindings().len(), 1);
    assert_eq!(h.bindings()[0].state, NdisBindingState::Running);
    assert_eq!(calls(&h, "ProtocolOpenAdapterCompleteEx"), 1);
    assert_eq!(calls(&h, "NdisCompleteBindAdapterEx"), 1);
    h.unload().expect("unload");
    assert_eq!(calls(&h, "ProtocolCloseAdapterCompleteEx"), 1);
    assert_eq!(calls(&h, "NdisCompleteUnbindAdapterEx"), 1);
    assert_clean(&h);
}

#[test]
fn adapters_arriving_later_are_bound_and_removal_unbinds() {
    let mut h = host_with(vec![], HostConfig::default());
    assert!(h.bindings().is_empty());
    let a = h.add_adapter(AdapterConfig::ethernet(7)).expect("added");
    assert_eq!(h.bindings().len(), 1);
    h.remove_adapter(a).expect("removed");
    assert!(h.bindings().is_empty());
    h.unload().expect("unload");
    assert_clean(&h);
}

#[test]
fn pause_and_restart() {
    let mut h = host_with(vec![AdapterConfig::ethernet(1)], HostConfig::default());
    assert_eq!(h.pause(0).expect("paused"), 0);
    assert_eq!(h.bindings()[0].state, NdisBindingState::Paused);
    // Nothing is indicated to a paused binding.
    assert_eq!(h.indicate_receive(0, vec![vec![0xFF; 60]], false).expect("indicated"), 0);
    assert_eq!(h.restart(0).expect("restarted"), 0);
    assert_eq!(h.bindings()[0].state, NdisBindingState::Running);
    h.unload().expect("unload");
    assert_clean(&h);
}

#[test]
fn non_ethernet_adapters_are_declined_with_unsupported_media() {
    let wifi = AdapterConfig { medium: MEDIUM_NATIVE_802_11, ..AdapterConfig::ethernet(3) };
    let mut h = host_with(vec![wifi, AdapterConfig::ethernet(4)], HostConfig::default());
    let bind = h.trace().into_iter().find(|e| e.name == "ProtocolBindAdapterEx").expect("offered");
    assert!(bind.result.as_deref().is_some_and(|r| r.starts_with("NDIS_STATUS_UNSUPPORTED_MEDIA")), "{bind}");
    assert_eq!(h.bindings().len(), 1);
    assert_eq!(h.bindings()[0].adapter, 1);
    h.unload().expect("unload");
    assert_clean(&h);
}

#[test]
fn received_nbls_are_returned_at_once_and_kept_not_under_resources() {
    // No handle is attached, so the binding's packet filter is 0; the adapter indicates regardless, to reach
    // the receive path (NDIS would deliver these once a handle asked for them).
    let adapter = AdapterConfig { enforce_packet_filter: false, ..AdapterConfig::ethernet(1) };
    let mut h = host_with(vec![adapter], HostConfig::default());
    let frames: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 60 + usize::from(i)]).collect();
    assert_eq!(h.indicate_receive(0, frames.clone(), false).expect("indicated"), 0, "every NBL returned");
    assert_eq!(h.outstanding_receives(), 0);
    let ret = h.trace().into_iter().find(|e| e.name == "NdisReturnNetBufferLists").expect("returned");
    assert_eq!(ret.irql, 2, "returned at DISPATCH_LEVEL");
    assert_eq!(ret.arg("ReturnFlags"), Some("0x1"), "NDIS_RETURN_FLAGS_DISPATCH_LEVEL");
    let before = calls(&h, "NdisReturnNetBufferLists");
    assert_eq!(h.indicate_receive(0, frames, true).expect("indicated"), 0);
    assert_eq!(
        calls(&h, "NdisReturnNetBufferLists"),
        before,
        "NBLs under NDIS_RECEIVE_FLAGS_RESOURCES are not returned"
    );
    h.unload().expect("unload");
    assert_clean(&h);
}

/// Every injectable call a bind makes, counted from a run without faults.
/// Also returns how many pool allocations DriverEntry made before the bind.
fn bind_calls() -> (Vec<(String, u64)>, u64) {
    let h = host_with(vec![AdapterConfig::ethernet(1)], HostConfig::default());
    let (history, _) = h.fault_history();
    let before_bind: Vec<_> = h
        .trace()
        .into_iter()
        .take_while(|e| e.name != "ProtocolBindAdapterEx")
        .filter(|e| e.direction == Direction::DriverToHost)
        .collect();
    assert!(!before_bind.is_empty());
    let entry_allocs = before_bind.iter().filter(|e| e.name.starts_with("ExAllocatePool")).count() as u64;
    (history, entry_allocs)
}

#[test]
fn a_bind_that_fails_at_any_point_leaks_nothing_and_leaves_the_adapter_closed() {
    let (all, entry_allocs) = bind_calls();
    // Failure points inside the bind: after DriverEntry's own calls.
    let bind_points: Vec<(String, u64)> = all
        .iter()
        .filter(|(api, n)| {
            matches!(
                api.as_str(),
                "NdisAllocateNetBufferListPool" | "NdisOpenAdapterEx" | "NdisQueryAdapterInstanceName"
            ) || (api.starts_with("ExAllocatePool") && *n > entry_allocs)
        })
        .cloned()
        .collect();
    assert!(bind_points.iter().any(|(a, _)| a == "NdisOpenAdapterEx"));
    assert!(bind_points.iter().any(|(a, _)| a == "NdisAllocateNetBufferListPool"));
    for (api, n) in bind_points {
        let what = format!("failing {api} #{n}");
        let mut h = host_with(
            vec![AdapterConfig::ethernet(1)],
            HostConfig { faults: vec![FaultRule::FailNth { api: api.clone(), n }], ..HostConfig::default() },
        );
        let bind = h.trace().into_iter().find(|e| e.name == "ProtocolBindAdapterEx").expect("offered");
        let bound = bind.result.as_deref().is_some_and(|r| r.starts_with("STATUS_SUCCESS"));
        // The pool and the open are essential; the friendly name (and its copy) is not.
        if matches!(api.as_str(), "NdisOpenAdapterEx" | "NdisAllocateNetBufferListPool") {
            assert!(!bound, "{what}: the bind must fail");
        }
        if bound {
            assert_eq!(h.bindings().len(), 1, "{what}");
            assert_eq!(h.bindings()[0].state, NdisBindingState::Running, "{what}");
        } else {
            assert!(h.bindings().is_empty(), "{what}: a failed bind leaves no binding");
        }
        assert_clean(&h);
        h.unload().expect("unload");
        assert!(h.pool().is_empty(), "{what}: {:?}", h.pool());
        assert_clean(&h);
    }
}

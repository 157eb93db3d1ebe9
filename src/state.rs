//! The binding state machine: the states NDIS moves a protocol binding through, and the one function that
//! decides every transition.
//!
//! ```text
//!   Opening ──open ok──▶ Paused ──restart──▶ Restarting ──restarted──▶ Running
//!      │                  ▲  │                                          │
//!  open failed            │  └──unbind──▶ Closing ──closed──▶ Closed      pause
//!      ▼                  │                                             ▼
//!    Closed               └────────────paused (no send in flight)──── Pausing
//! ```
//!
//! NDIS guarantees the order (Restart only from Paused, Pause only from Running, Unbind only from Paused);
//! an event that arrives in another state is refused with [`Refused`] and leaves the state unchanged, so a
//! confused caller gets a defined status instead of a corrupted binding.

use core::fmt;

/// Where a binding is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BindingState {
    /// NdisOpenAdapterEx issued, not yet complete.
    Opening,
    /// Open, but NDIS has not started (or has stopped) the data path: no sends, no receives.
    Paused,
    /// NetEventRestart is being handled.
    Restarting,
    /// The data path is on.
    Running,
    /// NetEventPause arrived; waiting for sends in flight to complete.
    Pausing,
    /// Unbinding: NdisCloseAdapterEx issued.
    Closing,
    /// Gone (or never opened); the binding is about to be freed.
    Closed,
}

impl fmt::Display for BindingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What happens to a binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BindingEvent {
    /// NdisOpenAdapterEx completed (synchronously or in OpenAdapterCompleteEx).
    OpenSucceeded,
    OpenFailed,
    /// NetEventRestart.
    Restart,
    /// The restart was handled.
    Restarted,
    /// NetEventPause.
    Pause,
    /// The last send in flight completed while pausing (or there was none).
    Paused,
    /// ProtocolUnbindAdapterEx.
    Unbind,
    /// NdisCloseAdapterEx completed.
    Closed,
}

/// An event the current state does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    pub state: BindingState,
    pub event: BindingEvent,
}

/// The next state, or why not.
pub fn next(state: BindingState, event: BindingEvent) -> Result<BindingState, Refused> {
    use BindingEvent as E;
    use BindingState as S;
    let to = match (state, event) {
        // Opening: the open completes either way.
        (S::Opening, E::OpenSucceeded) => S::Paused,
        (S::Opening, E::OpenFailed) => S::Closed,
        // Paused: NDIS restarts the data path, or unbinds.
        (S::Paused, E::Restart) => S::Restarting,
        (S::Paused, E::Unbind) => S::Closing,
        // Restarting: the restart handler finished.
        (S::Restarting, E::Restarted) => S::Running,
        // Running: only a pause stops it.
        (S::Running, E::Pause) => S::Pausing,
        // Pausing: done once no send is in flight.
        (S::Pausing, E::Paused) => S::Paused,
        // Closing: the close completed.
        (S::Closing, E::Closed) => S::Closed,
        // Every other pair is refused; each state is listed so that a new state cannot slip through.
        (S::Opening | S::Paused | S::Restarting | S::Running | S::Pausing | S::Closing | S::Closed, _) => {
            return Err(Refused { state, event })
        }
    };
    Ok(to)
}

impl BindingState {
    /// Whether frames may be sent and received.
    pub fn data_path_on(self) -> bool {
        self == BindingState::Running
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BindingEvent as E;
    use BindingState as S;

    const STATES: [S; 7] = [S::Opening, S::Paused, S::Restarting, S::Running, S::Pausing, S::Closing, S::Closed];
    const EVENTS: [E; 8] =
        [E::OpenSucceeded, E::OpenFailed, E::Restart, E::Restarted, E::Pause, E::Paused, E::Unbind, E::Closed];

    /// The whole table: every allowed transition.
    const ALLOWED: [(S, E, S); 8] = [
        (S::Opening, E::OpenSucceeded, S::Paused),
        (S::Opening, E::OpenFailed, S::Closed),
        (S::Paused, E::Restart, S::Restarting),
        (S::Paused, E::Unbind, S::Closing),
        (S::Restarting, E::Restarted, S::Running),
        (S::Running, E::Pause, S::Pausing),
        (S::Pausing, E::Paused, S::Paused),
        (S::Closing, E::Closed, S::Closed),
    ];

    #[test]
    fn every_allowed_transition() {
        for (from, ev, to) in ALLOWED {
            assert_eq!(next(from, ev), Ok(to), "{from} --{ev:?}-->");
        }
    }

    #[test]
    fn every_other_pair_is_refused_and_names_itself() {
        let mut refused = 0;
        for s in STATES {
            for e in EVENTS {
                if ALLOWED.iter().any(|&(f, ev, _)| f == s && ev == e) {
                    continue;
                }
                assert_eq!(next(s, e), Err(Refused { state: s, event: e }), "{s} --{e:?}--> must be refused");
                refused += 1;
            }
        }
        assert_eq!(refused, STATES.len() * EVENTS.len() - ALLOWED.len());
    }

    #[test]
    fn a_full_life() {
        let mut s = S::Opening;
        for e in [
            E::OpenSucceeded,
            E::Restart,
            E::Restarted,
            E::Pause,
            E::Paused,
            E::Restart,
            E::Restarted,
            E::Pause,
            E::Paused,
            E::Unbind,
            E::Closed,
        ] {
            s = next(s, e).unwrap_or_else(|r| panic!("{r:?}"));
        }
        assert_eq!(s, S::Closed);
    }

    #[test]
    fn only_running_carries_data() {
        for s in STATES {
            assert_eq!(s.data_path_on(), s == S::Running);
        }
    }
}

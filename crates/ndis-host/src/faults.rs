//! Deterministic fault injection: "fail the Nth call of API X" and "fail every allocation from the Nth on".

use std::collections::HashMap;

/// Exports that allocate memory; `FailAllocationsFrom` counts these together.
pub const ALLOCATING_APIS: &[&str] = &[
    "ExAllocatePoolWithTag",
    "ExAllocatePool2",
    "NdisAllocateMemoryWithTagPriority",
    "NdisAllocateMemoryWithTag",
    "NdisAllocateNetBufferListContext",
    "NdisAllocateNetBufferListPool",
    "NdisAllocateNetBufferAndNetBufferList",
    "NdisAllocateNetBufferList",
    "NdisAllocateMdl",
    "IoAllocateMdl",
    "IoAllocateWorkItem",
];

/// How many entries of [`FaultPlan::history`] and [`FaultPlan::injected`] are kept (the oldest go first): a
/// sweep reads the history of one DriverEntry or one bind, far fewer calls; a run of days must stay bounded.
pub const HISTORY_KEPT: usize = 1 << 16;

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultRule {
    /// The `n`th call (1-based) of `api` fails.
    FailNth { api: String, n: u64 },
    /// Every allocating call from the `n`th (1-based, counted across [`ALLOCATING_APIS`]) on fails.
    FailAllocationsFrom { n: u64 },
}

/// The rules of one run plus the call counters they are evaluated against.
#[derive(Debug, Default, Clone)]
pub struct FaultPlan {
    rules: Vec<FaultRule>,
    calls: HashMap<String, u64>,
    allocations: u64,
    /// Every injectable call in order: (api, its 1-based count), for building sweeps (the last
    /// [`HISTORY_KEPT`]).
    pub history: std::collections::VecDeque<(String, u64)>,
    /// Calls this plan failed (the last [`HISTORY_KEPT`]).
    pub injected: std::collections::VecDeque<(String, u64)>,
}

impl FaultPlan {
    pub fn new(rules: Vec<FaultRule>) -> Self {
        Self { rules, ..Self::default() }
    }

    /// Counts a call of `api` and says whether it must fail.
    pub fn should_fail(&mut self, api: &str) -> bool {
        // No allocation per call in steady state: the counter exists after the first call, and a full
        // history hands its oldest name's buffer to the newest entry.
        let n = match self.calls.get_mut(api) {
            Some(c) => {
                *c += 1;
                *c
            }
            None => {
                self.calls.insert(api.to_owned(), 1);
                1
            }
        };
        let alloc_n = if ALLOCATING_APIS.contains(&api) {
            self.allocations += 1;
            Some(self.allocations)
        } else {
            None
        };
        let mut name = if self.history.len() == HISTORY_KEPT { self.history.pop_front().map(|(s, _)| s) } else { None }
            .unwrap_or_default();
        name.clear();
        name.push_str(api);
        self.history.push_back((name, n));
        let fail = self.rules.iter().any(|r| match r {
            FaultRule::FailNth { api: a, n: k } => a == api && *k == n,
            FaultRule::FailAllocationsFrom { n: k } => alloc_n.is_some_and(|m| m >= *k),
        });
        if fail {
            if self.injected.len() == HISTORY_KEPT {
                self.injected.pop_front();
            }
            self.injected.push_back((api.to_owned(), n));
        }
        fail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_call_fails_once() {
        let mut p = FaultPlan::new(vec![FaultRule::FailNth { api: "IoCreateDevice".into(), n: 2 }]);
        assert!(!p.should_fail("IoCreateDevice"));
        assert!(!p.should_fail("ExAllocatePoolWithTag"));
        assert!(p.should_fail("IoCreateDevice"));
        assert!(!p.should_fail("IoCreateDevice"));
        assert_eq!(p.injected, [("IoCreateDevice".to_owned(), 2)]);
    }

    #[test]
    fn the_history_keeps_a_bounded_number_of_calls() {
        let mut p = FaultPlan::new(vec![FaultRule::FailAllocationsFrom { n: 1 }]);
        for _ in 0..HISTORY_KEPT + 10 {
            assert!(p.should_fail("ExAllocatePoolWithTag"));
        }
        assert_eq!((p.history.len(), p.injected.len()), (HISTORY_KEPT, HISTORY_KEPT));
        let last = u64::try_from(HISTORY_KEPT + 10).expect("fits");
        assert_eq!(p.history.back(), Some(&("ExAllocatePoolWithTag".to_owned(), last)));
    }

    #[test]
    fn allocations_fail_from_n_on_across_apis() {
        let mut p = FaultPlan::new(vec![FaultRule::FailAllocationsFrom { n: 2 }]);
        assert!(!p.should_fail("ExAllocatePoolWithTag"));
        assert!(!p.should_fail("IoCreateDevice"));
        assert!(p.should_fail("ExAllocatePool2"));
        assert!(p.should_fail("ExAllocatePoolWithTag"));
        assert_eq!(p.history.len(), 4);
    }
}

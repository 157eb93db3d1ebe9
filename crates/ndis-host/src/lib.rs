//! ndis-host: loads the real `rawlink.sys` (or another x64 NDIS 6 protocol driver) into a Linux process and
//! checks it the way Windows would.
//!
//! # Layers
//!
//! The crate is laid out in layers, bottom to top; a module uses only modules of its own layer or below, and
//! no modules use each other in a circle (`tests/layers.rs` reads every source file and enforces both, with
//! the same table):
//!
//! 0. **Foundations**, which know nothing of a machine: [`image`] (reading and auditing the PE image as the
//!    Windows loader, ApiValidator and link.exe's driver conventions expect it), [`loader`] (mapping it),
//!    [`privileged`] (its ring-0-only instructions), [`cr8patch`] (trap-free detours for its CR8 accesses),
//!    [`wdk`] (the WDK's tables), [`oid`], [`trace`], [`verifier`], [`faults`], [`backend`] (an adapter's far
//!    side), and the native primitives `native::{call, cpu, mapping, memory, user_memory, stack, inline, watch,
//!    tap}` (raw memory, the processors' IRQL and fault handling, calls through foreign function pointers,
//!    jobs on the asking thread's own kernel stack).
//! 1. **State and object layouts** of each model: [`ke`] (dispatcher, timers, work items), [`security`]
//!    (tokens, descriptors, the registry), [`io::state`] (files, handles, IRPs in flight), [`ndis::state`]
//!    (adapters, opens, pools, NBLs in flight), and the kernel objects the driver sees in memory,
//!    `native::irp` (IRPs, MDLs, file objects) and `native::ndis_objects` (NBLs, NET_BUFFERs).
//! 2. **The machine**, [`machine`]: the one lock over all that state, the verifier's findings, the trace,
//!    the fault plan, the loaded image and the processor threads.
//! 3. **Models** that act on the machine and call into the driver: [`io`] (the I/O manager: building,
//!    dispatching and completing IRPs), [`ndis`] (the binding lifecycle, sends, receives, OIDs), and
//!    `native::dispatch` (every call into the driver: traced, stack-measured, IRQL and critical regions
//!    checked).
//! 4. **The exported ABI**: `native::exports` (the kernel and NDIS functions the driver imports, with the
//!    verifier's rules) and `native::fake_driver` (dispatch routines for the I/O manager's own tests).
//! 5. **The public API**: [`host`] ([`host::Host`]; its I/O-manager and NDIS requests are in `host::io` and
//!    `host::ndis`).
//!
//! Where a lower module must reach a higher one it is handed a function: the fault handler in `native::cpu`
//! calls the double-fetch watch through `native::cpu::SegvHook`, installed by `native::watch`.
//! The old paths stay public: `ndis::AdapterConfig` and `io::UserFlip` re-export their `state` modules.
#![deny(unsafe_code)]

pub mod backend;
pub mod cr8patch;
pub mod faults;
pub mod host;
pub mod image;
pub mod io;
pub mod ke;
pub mod loader;
pub mod machine;
mod native;
pub mod ndis;
pub mod oid;
pub mod privileged;
pub mod security;
pub mod trace;
pub mod verifier;
pub mod wdk;

pub(crate) use native::exports;

/// Every kernel export the host provides, as (module, name).
pub fn provided_exports() -> Vec<(&'static str, &'static str)> {
    exports::table().into_iter().map(|(m, n, _)| (m, n)).collect()
}

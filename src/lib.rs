//! rawlink: an NDIS 6 protocol driver that gives user mode raw Ethernet send and receive on every bound
//! adapter.
//!
//! Layout (Microsoft's ndisprot split, in Rust):
//! * [`entry`]: DriverEntry / DriverUnload — acquisition and release of everything, in order;
//! * `protocol`: the ProtocolXxx callbacks and the registration characteristics;
//! * `dispatch`: IRP dispatch for the control device;
//! * `kernel`: the thin safe wrappers over kernel and NDIS calls (allocator, panic handler, spin lock, IRP);
//! * `binding`, `driver`: bindings (open, restart, pause, close) and the driver globals;
//! * `open`: handles (filters, queues, waiting reads and event requests); `request`: OID requests;
//! * [`error`], [`version`], [`state`], [`control`], [`filter`], [`meta`], [`events`], [`rxqueue`], [`tx`],
//!   [`txpool`]: plain safe logic, unit-tested on the Linux host.
//!
//! The FFI layer is compiled only for the Windows target, where the raw imports exist. On the host the crate
//! links `std` (for its panic handler and the test harness) but still uses only `core` and `alloc`.
#![no_std]
#![deny(unsafe_code)]

#[cfg(not(windows))]
extern crate std;

extern crate alloc;

pub mod budget;
pub mod control;
pub mod copy;
pub mod error;
pub mod events;
pub mod filter;
pub mod meta;
pub mod outcome;
pub mod ring;
pub mod rxqueue;
pub mod security;
pub mod state;
pub mod tx;
pub mod txpool;
pub mod version;

#[cfg(windows)]
mod kernel;

#[cfg(windows)]
mod binding;
#[cfg(windows)]
mod dispatch;
#[cfg(windows)]
pub mod driver;
#[cfg(windows)]
pub mod entry;
#[cfg(windows)]
mod open;
#[cfg(windows)]
mod protocol;
#[cfg(windows)]
mod request;
#[cfg(windows)]
mod send;

// Windows builds with the WDK (`--features wdk`): compile-time proof that ndis-sys matches the WDK.
#[cfg(feature = "wdk")]
mod wdk_check;

#[cfg(windows)]
#[global_allocator]
static ALLOCATOR: kernel::alloc::PoolAllocator = kernel::alloc::PoolAllocator;

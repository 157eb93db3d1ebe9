//! The host's native layer: the only place in ndis-host that touches raw memory, page protections, signals
//! and foreign function pointers. Running a PE driver inside a Linux process cannot be done without that;
//! everything above this module is safe Rust. Every `unsafe` block states why it is sound.
#![allow(unsafe_code)]

pub mod call;
pub mod cpu;
pub mod dispatch;
pub mod exports;
pub mod fake_driver;
pub mod inline;
pub mod irp;
pub mod mapping;
pub mod memory;
pub mod ndis_objects;
pub mod stack;
#[cfg(target_os = "linux")]
pub mod tap;
pub mod user_memory;
pub mod watch;

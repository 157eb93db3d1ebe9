//! rawlink: an NDIS 6 protocol driver (placeholder; the driver is being written).
#![no_std]
#![deny(unsafe_code)]

#[cfg(not(windows))]
extern crate std;

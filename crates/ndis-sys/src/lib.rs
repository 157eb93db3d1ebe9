//! Raw Windows kernel and NDIS 6 bindings (placeholder; filled in by the bindings work).
#![no_std]

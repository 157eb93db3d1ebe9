//! ndis-host: loads the real `rawlink.sys` (or another x64 NDIS 6 protocol driver) into a Linux process and
//! checks it the way Windows would.
//!
//! This first part is [`image`]: reading and auditing the PE image as the Windows loader, ApiValidator and
//! link.exe's driver conventions expect it. The loader and the emulated kernel build on it.
#![deny(unsafe_code)]

pub mod backend;
pub mod cr8patch;
pub mod faults;
pub mod host;
pub mod image;
pub mod io;
pub mod ke;
pub mod loader;
mod native;
pub mod ndis;
pub mod oid;
pub mod security;
pub mod trace;
pub mod verifier;
pub mod wdk;

pub(crate) use native::exports;

/// Every kernel export the host provides, as (module, name).
pub fn provided_exports() -> Vec<(&'static str, &'static str)> {
    exports::table().into_iter().map(|(m, n, _)| (m, n)).collect()
}

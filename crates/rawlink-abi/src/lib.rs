//! The contract between rawlink.sys and user mode: device names, IOCTL codes and wire structs.
#![no_std]
#![forbid(unsafe_code)]

/// NT name of the control device the driver creates.
pub const DEVICE_NAME: &str = "\\Device\\RawLink";
/// Name of the symbolic link user mode opens (`\\.\RawLink`).
pub const SYMBOLIC_LINK_NAME: &str = "\\DosDevices\\Global\\RawLink";
/// Protocol name registered with NDIS; also the service name in the INF.
pub const PROTOCOL_NAME: &str = "RAWLINK";

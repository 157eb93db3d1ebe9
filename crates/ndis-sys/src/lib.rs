//! Raw Windows kernel and NDIS 6 bindings for an NDIS protocol driver, written by hand under the WDK's own
//! names and proven against the WDK by the tests in `tests/`.
//!
//! `use ndis_sys::*;` brings every type, constant, callback type and imported function into scope, as in
//! `wdk-sys`. The items live in modules by subsystem — [`types`] (scalars, strings, lists, 64-bit unions),
//! [`ke`] (dispatcher objects, DPCs, locks), [`io`] (driver/device objects, IRPs, MDLs), [`ndis`] (NDIS
//! structures and ProtocolXxx callback types), [`constants`], [`functions`] — and are re-exported flat.
//! [`ndis689`] holds the NDIS 6.89 layouts of the structures that grew since NDIS 6.30; it is not
//! re-exported because its names collide with the 6.30 ones.
//!
//! # Ground truth
//!
//! Layouts are those of WDK 10.0.16299 (`ntifs.h` + `ndis.h`, x64, `NDIS630`), which the driver targets so it
//! loads on every Windows 10 and 11; `tests/layout.rs` checks the size, alignment and the offset of every
//! field path of every structure in `reference/wdk-10.0.16299/layout-ndis630.json`, and the `ndis689` types
//! against `reference/wdk-10.0.26100/layout-ndis689.json`. `tests/constants.rs` checks every constant
//! against the WDK's constant tables and `tests/functions.rs` every import against its export list.
//!
//! # Fixed-width types only
//!
//! These types describe Windows x64 memory both in the driver (`x86_64-pc-windows-msvc`) and in the Linux
//! emulator that hosts it (`x86_64-unknown-linux-gnu`). So every scalar is a fixed-width integer or a raw
//! pointer: `ULONG = u32`, `LONG = i32`, `USHORT = u16`, `UCHAR = u8`, `BOOLEAN = u8`, `ULONG_PTR = usize`,
//! `NTSTATUS = NDIS_STATUS = i32`, `KIRQL = u8`, `KSPIN_LOCK = usize`, handles are `*mut c_void`. `c_long`
//! (64 bits on Linux, 32 on Windows) is never used. C enums are `INT` (`i32`) aliases plus one constant per
//! enumerator, so any value Windows hands over is valid.
//!
//! # Anonymous members
//!
//! Rust has no anonymous struct or union members, so each gets a name:
//!
//! * an anonymous **union** member is named `u`, an anonymous **struct** member `s`; when a type has more
//!   than one of a kind they are numbered in declaration order (`u1`, `u2`, `s1`, …);
//! * the type of an anonymous or untagged member is named `<OUTER>_<member>` (`IRP_Tail_Overlay`,
//!   `NET_BUFFER_LIST_u1`), except where the WDK has a typedef for the same layout, which is then used
//!   (`NET_BUFFER_DATA`, `NET_BUFFER_LIST_DATA`, `LARGE_INTEGER_s`);
//! * every named WDK member keeps its name, so a C path `a.b` becomes `a.u.b` or `a.s.b` in Rust.
//!
//! The paths a protocol driver uses most:
//!
//! | C | Rust |
//! |---|---|
//! | `NET_BUFFER_LIST.Next` / `.FirstNetBuffer` | `u1.s.Next` / `u1.s.FirstNetBuffer` |
//! | `NET_BUFFER_LIST.Status` | `u2.Status` |
//! | `NET_BUFFER.Next` / `.CurrentMdl` / `.CurrentMdlOffset` / `.MdlChain` / `.DataOffset` | `u1.s.Next` / `u1.s.CurrentMdl` / `u1.s.CurrentMdlOffset` / `u1.s.MdlChain` / `u1.s.DataOffset` |
//! | `NET_BUFFER.DataLength` | `u1.s.u.DataLength` |
//! | `IRP.AssociatedIrp.SystemBuffer` | `AssociatedIrp.SystemBuffer` |
//! | `IRP.IoStatus.Status` | `IoStatus.u.Status` |
//! | `IRP.Tail.Overlay.CurrentStackLocation` | `Tail.Overlay.s.u.CurrentStackLocation` |
//! | `IRP.Tail.Overlay.DriverContext` | `Tail.Overlay.u.s.DriverContext` |
//! | `IO_STACK_LOCATION.Parameters.DeviceIoControl.IoControlCode` | unchanged |
//! | `IO_STACK_LOCATION.Parameters.Read.Length` / `.Write.Length` | unchanged |
//! | `DRIVER_OBJECT.MajorFunction` / `.DriverUnload`, `DEVICE_OBJECT.Flags` | unchanged |
//! | `KEVENT.Header.SignalState` | unchanged; `Header.Type` is `Header.u.s1.Type` |
//! | `LARGE_INTEGER.LowPart` / `.QuadPart` | `s.LowPart` / `QuadPart` |
//!
//! Where the WDK aligns a member beyond its natural alignment (`POINTER_ALIGNMENT` in `IO_STACK_LOCATION`,
//! `DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT)` in `NET_BUFFER_LIST`), an explicit `_padN` field takes the
//! gap. Types the WDK aligns to 16 bytes (`NET_BUFFER_LIST`, `NET_BUFFER`, `IRP`, `DEVICE_OBJECT`,
//! `SLIST_HEADER`, …) are `#[repr(C, align(16))]`.
//!
//! # Bit-fields
//!
//! A run of bit-fields is one storage-unit field (`Bits`, or `Bits1`/`Bits2`), an unsigned integer as wide as
//! the C storage unit, documented with the bit-fields it holds. Each bit-field has a getter named as in the
//! WDK and a `set_` setter (`TagHeader.VlanId()`, `TagHeader.set_VlanId(5)`), and the type's `BITFIELDS`
//! table gives each one's bit offset and width (checked against the WDK too).
//!
//! # Imported functions
//!
//! Functions are declared only on `target_os = "windows"`, linked with `raw-dylib` from `ntoskrnl.exe` and
//! `ndis.sys` (no import libraries needed), and only if WDK 10.0.16299 declares them as exports.
//! [`IMPORTED_FUNCTIONS`] lists them on every target. Header inlines (`KeGetCurrentIrql`,
//! `IoGetCurrentIrpStackLocation`, `NdisAllocateSpinLock`) must be written in Rust; newer exports are looked
//! up at run time (`ExAllocatePool2` through `MmGetSystemRoutineAddress` and [`PEX_ALLOCATE_POOL2`]).
//!
//! # Structure sizes change with the NDIS version
//!
//! NDIS structures carry a revision and size in their [`NDIS_OBJECT_HEADER`]. The types here are the NDIS
//! 6.30 layouts; NDIS adds fields in later versions: at NDIS 6.80+ a `NET_BUFFER_LIST` is 368 bytes (27
//! `NetBufferListInfo` slots) instead of 336 (24), `NDIS_OID_REQUEST` REVISION_2 is 248 bytes instead of
//! 240, `NET_PNP_EVENT_NOTIFICATION` REVISION_2 is 176 instead of 168 (see [`ndis689`]). A driver must never
//! assume `size_of::<NET_BUFFER_LIST>()` for memory NDIS allocates, never copy NDIS-owned structures by value,
//! and must read `Header.Revision`/`Size` before any field a later revision added.
//!
//! # Microsoft Learn
//!
//! * [NDIS protocol drivers](https://learn.microsoft.com/windows-hardware/drivers/network/ndis-protocol-drivers2)
//! * [`NDIS_PROTOCOL_DRIVER_CHARACTERISTICS`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/ns-ndis-_ndis_protocol_driver_characteristics),
//!   [`NDIS_BIND_PARAMETERS`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/ns-ndis-_ndis_bind_parameters),
//!   [`NDIS_OPEN_PARAMETERS`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/ns-ndis-_ndis_open_parameters)
//! * [`NET_BUFFER_LIST`](https://learn.microsoft.com/windows-hardware/drivers/ddi/nbl/ns-nbl-net_buffer_list),
//!   [`NET_BUFFER`](https://learn.microsoft.com/windows-hardware/drivers/ddi/nbl/ns-nbl-net_buffer),
//!   [`NET_BUFFER_LIST_POOL_PARAMETERS`](https://learn.microsoft.com/windows-hardware/drivers/ddi/nblapi/ns-nblapi-net_buffer_list_pool_parameters)
//! * [`NDIS_OID_REQUEST`](https://learn.microsoft.com/windows-hardware/drivers/ddi/oidrequest/ns-oidrequest-ndis_oid_request),
//!   [`NDIS_STATUS_INDICATION`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/ns-ndis-_ndis_status_indication),
//!   [`NET_PNP_EVENT_NOTIFICATION`](https://learn.microsoft.com/windows-hardware/drivers/ddi/ndis/ns-ndis-_net_pnp_event_notification)
//! * [`IRP`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ns-wdm-_irp),
//!   [`IO_STACK_LOCATION`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ns-wdm-_io_stack_location),
//!   [`DRIVER_OBJECT`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ns-wdm-_driver_object),
//!   [`DEVICE_OBJECT`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ns-wdm-_device_object),
//!   [`MDL`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ns-wdm-_mdl)
#![no_std]
#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals)]
#![allow(clippy::upper_case_acronyms)]

#[macro_use]
mod macros;

pub mod constants;
pub mod functions;
pub mod io;
pub mod ke;
pub mod ndis;
pub mod ndis689;
pub mod types;

pub use constants::*;
pub use functions::*;
pub use io::*;
pub use ke::*;
pub use ndis::*;
pub use types::*;

/// One bit-field of a type, as listed in the type's `BITFIELDS` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BitField {
    /// The WDK's name for the bit-field (also the name of its getter).
    pub name: &'static str,
    /// Offset of its lowest bit from the start of the containing type, in bits (little-endian numbering).
    pub bit_offset: usize,
    /// Width in bits.
    pub bit_width: u32,
}

/// One constant, as listed in [`constants::ALL_CONSTANTS`] and [`ndis689::ALL_CONSTANTS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConstantInfo {
    /// The WDK name.
    pub name: &'static str,
    /// The value, widened losslessly.
    pub value: i128,
    /// Whether the declared type is signed.
    pub signed: bool,
    /// Width of the declared type in bits.
    pub bits: u32,
}

// Compile-time layout checks (the full field-by-field check against the WDK is `tests/layout.rs`).
macro_rules! assert_layout {
    ($( $ty:ty => $size:literal, $align:literal; )*) => {
        $(
            const _: () = assert!(core::mem::size_of::<$ty>() == $size, stringify!($ty));
            const _: () = assert!(core::mem::align_of::<$ty>() == $align, stringify!($ty));
        )*
    };
}

assert_layout! {
    DEVICE_OBJECT => 336, 16;
    DRIVER_EXTENSION => 40, 8;
    DRIVER_OBJECT => 336, 8;
    FAST_MUTEX => 56, 8;
    FILE_OBJECT => 216, 8;
    IO_CSQ => 64, 8;
    IO_REMOVE_LOCK => 32, 8;
    IO_STACK_LOCATION => 72, 8;
    IO_STATUS_BLOCK => 16, 8;
    IRP => 208, 16;
    KDPC => 64, 8;
    KEVENT => 24, 8;
    KLOCK_QUEUE_HANDLE => 24, 8;
    KMUTEX => 56, 8;
    KSEMAPHORE => 32, 8;
    KSPIN_LOCK_QUEUE => 16, 8;
    KTIMER => 64, 8;
    LARGE_INTEGER => 8, 8;
    LIST_ENTRY => 16, 8;
    LOCK_STATE_EX => 3, 1;
    MDL => 48, 8;
    NDIS_BIND_PARAMETERS => 312, 8;
    NDIS_EVENT => 24, 8;
    NDIS_GENERIC_OBJECT => 32, 8;
    NDIS_LINK_STATE => 40, 8;
    NDIS_NET_BUFFER_LIST_8021Q_INFO => 8, 8;
    NDIS_OBJECT_HEADER => 4, 2;
    NDIS_OFFLOAD => 156, 4;
    NDIS_OID_REQUEST => 240, 8;
    NDIS_OPEN_PARAMETERS => 56, 8;
    NDIS_PM_CAPABILITIES => 60, 4;
    NDIS_PORT_AUTHENTICATION_PARAMETERS => 20, 4;
    NDIS_PROTOCOL_DRIVER_CHARACTERISTICS => 128, 8;
    NDIS_PROTOCOL_RESTART_PARAMETERS => 56, 8;
    NDIS_RECEIVE_SCALE_CAPABILITIES => 20, 4;
    NDIS_RESTART_ATTRIBUTES => 32, 16;
    NDIS_RESTART_GENERAL_ATTRIBUTES => 88, 8;
    NDIS_SPIN_LOCK => 16, 8;
    NDIS_STATUS_INDICATION => 112, 8;
    NDIS_STRING => 16, 8;
    NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO => 8, 8;
    NDIS_TIMER_CHARACTERISTICS => 24, 8;
    NET_BUFFER => 176, 16;
    NET_BUFFER_LIST => 336, 16;
    NET_BUFFER_LIST_CONTEXT => 16, 16;
    NET_BUFFER_LIST_POOL_PARAMETERS => 16, 4;
    NET_BUFFER_POOL_PARAMETERS => 12, 4;
    NET_PNP_EVENT => 152, 8;
    NET_PNP_EVENT_NOTIFICATION => 168, 8;
    SINGLE_LIST_ENTRY => 8, 8;
    SLIST_HEADER => 16, 16;
    UNICODE_STRING => 16, 8;
    WORK_QUEUE_ITEM => 32, 8;
    // Types the reference tables do not cover, from their documented definitions.
    NDIS_RSC_NBL_INFO => 8, 8;
    NDIS_UDP_RSC_OFFLOAD_NET_BUFFER_LIST_INFO => 8, 8;
    NDIS_STATISTICS_INFO => 152, 8;
    IO_CSQ_IRP_CONTEXT => 24, 8;
    GUID => 16, 4;
    PROCESSOR_NUMBER => 4, 2;
}

// The offsets drivers depend on most (all others: tests/layout.rs).
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(NET_BUFFER_LIST, u1.s.FirstNetBuffer) == 8);
    assert!(offset_of!(NET_BUFFER_LIST, ProtocolReserved) == 64);
    assert!(offset_of!(NET_BUFFER_LIST, u2.Status) == 140);
    assert!(offset_of!(NET_BUFFER_LIST, NetBufferListInfo) == 144);
    assert!(offset_of!(NET_BUFFER, u1.s.u.DataLength) == 24);
    assert!(offset_of!(NET_BUFFER, u1.s.MdlChain) == 32);
    assert!(offset_of!(NET_BUFFER, u1.s.DataOffset) == 40);
    assert!(offset_of!(NET_BUFFER, ProtocolReserved) == 80);
    assert!(offset_of!(IRP, AssociatedIrp.SystemBuffer) == 24);
    assert!(offset_of!(IRP, IoStatus) == 48);
    assert!(offset_of!(IRP, Tail.Overlay.s.u.CurrentStackLocation) == 184);
    assert!(offset_of!(IO_STACK_LOCATION, Parameters.DeviceIoControl.IoControlCode) == 24);
    assert!(offset_of!(IO_STACK_LOCATION, FileObject) == 48);
    assert!(offset_of!(DRIVER_OBJECT, DriverUnload) == 104);
    assert!(offset_of!(DRIVER_OBJECT, MajorFunction) == 112);
    assert!(offset_of!(DEVICE_OBJECT, Flags) == 48);
    assert!(offset_of!(DEVICE_OBJECT, DeviceExtension) == 64);
    assert!(offset_of!(NDIS_PROTOCOL_DRIVER_CHARACTERISTICS, DirectOidRequestCompleteHandler) == 120);
    assert!(offset_of!(NDIS_BIND_PARAMETERS, CurrentMacAddress) == 106);
    assert!(offset_of!(NDIS_OID_REQUEST, DATA.QUERY_INFORMATION.BytesWritten) == 52);
};

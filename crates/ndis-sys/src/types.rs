//! Basic types of `ntdef.h`, `wdm.h` and `ifdef.h`: fixed-width scalars, pointers, strings, lists,
//! `LARGE_INTEGER`, `GUID`, `NET_LUID`, `SLIST_HEADER`, and the opaque kernel objects other structures point to.

use core::ffi::c_void;

// ---------------------------------------------------------------------------------------------------------
// Scalars. Only fixed-width types: `long` is 32 bits on Windows but 64 bits on Linux, and these types describe
// Windows memory on both.
// ---------------------------------------------------------------------------------------------------------

/// `void` (only used behind pointers).
pub type VOID = c_void;
/// `void *`.
pub type PVOID = *mut c_void;
/// `const void *`.
pub type PCVOID = *const c_void;
/// `HANDLE` (`void *`).
pub type HANDLE = *mut c_void;
/// `HANDLE *`.
pub type PHANDLE = *mut HANDLE;

/// `char` (signed on MSVC).
pub type CHAR = i8;
/// `CCHAR`: a `char`-sized count.
pub type CCHAR = i8;
/// `unsigned char`.
pub type UCHAR = u8;
/// `short`.
pub type SHORT = i16;
/// `CSHORT`: a `short`-sized count.
pub type CSHORT = i16;
/// `unsigned short`.
pub type USHORT = u16;
/// `long` on Windows: 32 bits.
pub type LONG = i32;
/// `unsigned long` on Windows: 32 bits.
pub type ULONG = u32;
/// `int`.
pub type INT = i32;
/// `unsigned int`.
pub type UINT = u32;
/// `__int64`.
pub type LONGLONG = i64;
/// `unsigned __int64`.
pub type ULONGLONG = u64;
/// `LONG64`.
pub type LONG64 = i64;
/// `ULONG64`.
pub type ULONG64 = u64;
/// `UINT8`.
pub type UINT8 = u8;
/// `UINT16`.
pub type UINT16 = u16;
/// `UINT32`.
pub type UINT32 = u32;
/// `UINT64`.
pub type UINT64 = u64;
/// `INT32`.
pub type INT32 = i32;
/// `INT64`.
pub type INT64 = i64;
/// `LONG_PTR`: pointer-sized signed integer.
pub type LONG_PTR = isize;
/// `ULONG_PTR`: pointer-sized unsigned integer.
pub type ULONG_PTR = usize;
/// `SIZE_T`.
pub type SIZE_T = usize;
/// `SSIZE_T`.
pub type SSIZE_T = isize;
/// `BOOLEAN`: one byte, `TRUE` = 1, `FALSE` = 0.
pub type BOOLEAN = u8;
/// `LOGICAL`: a 32-bit truth value.
pub type LOGICAL = ULONG;
/// `WCHAR`: one UTF-16 code unit.
pub type WCHAR = u16;

/// `NTSTATUS`: negative values (`0xC...`) are errors, `0x8...` warnings, `0x4...` informational.
pub type NTSTATUS = LONG;
/// `ACCESS_MASK`.
pub type ACCESS_MASK = ULONG;
/// `KIRQL`: an interrupt request level (0..=15 on x64).
pub type KIRQL = UCHAR;
/// `KSPIN_LOCK`: a pointer-sized spin lock word; 0 means released.
pub type KSPIN_LOCK = ULONG_PTR;
/// `KPRIORITY`.
pub type KPRIORITY = LONG;
/// `KPROCESSOR_MODE` (`KernelMode` = 0, `UserMode` = 1).
pub type KPROCESSOR_MODE = CCHAR;
/// `KAFFINITY`: a processor bit mask within one group.
pub type KAFFINITY = ULONG_PTR;
/// `DEVICE_TYPE` (`FILE_DEVICE_*`).
pub type DEVICE_TYPE = ULONG;
/// `SECURITY_INFORMATION`.
pub type SECURITY_INFORMATION = ULONG;
/// `LCID`: a locale identifier.
pub type LCID = ULONG;
/// `PSECURITY_DESCRIPTOR` (`void *` in the WDK).
pub type PSECURITY_DESCRIPTOR = PVOID;
/// `PSID` (`void *` in the WDK).
pub type PSID = PVOID;
/// `PACCESS_TOKEN` (`void *` in the WDK).
pub type PACCESS_TOKEN = PVOID;
/// `KEY_VALUE_INFORMATION_CLASS` (an enum).
pub type KEY_VALUE_INFORMATION_CLASS = i32;
/// `SECURITY_IMPERSONATION_LEVEL` (an enum).
pub type SECURITY_IMPERSONATION_LEVEL = i32;

/// `LUID`: a locally unique identifier (here, a privilege's).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LUID {
    pub LowPart: ULONG,
    pub HighPart: LONG,
}

/// `OBJECT_ATTRIBUTES`: what ZwOpenKey and friends open (the `InitializeObjectAttributes` macro fills it).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct OBJECT_ATTRIBUTES {
    pub Length: ULONG,
    pub RootDirectory: HANDLE,
    pub ObjectName: *mut UNICODE_STRING,
    pub Attributes: ULONG,
    pub SecurityDescriptor: PVOID,
    pub SecurityQualityOfService: PVOID,
}
/// `OBJECT_ATTRIBUTES *`.
pub type POBJECT_ATTRIBUTES = *mut OBJECT_ATTRIBUTES;

/// `KEY_VALUE_PARTIAL_INFORMATION`: ZwQueryValueKey's KeyValuePartialInformation reply; `Data` runs on for
/// `DataLength` bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KEY_VALUE_PARTIAL_INFORMATION {
    pub TitleIndex: ULONG,
    pub Type: ULONG,
    pub DataLength: ULONG,
    pub Data: [UCHAR; 1],
}

/// `SECURITY_SUBJECT_CONTEXT`: the tokens of a thread, as SeCaptureSubjectContext captures them.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SECURITY_SUBJECT_CONTEXT {
    pub ClientToken: PACCESS_TOKEN,
    pub ImpersonationLevel: SECURITY_IMPERSONATION_LEVEL,
    pub PrimaryToken: PACCESS_TOKEN,
    pub ProcessAuditId: PVOID,
}
/// `SECURITY_SUBJECT_CONTEXT *`.
pub type PSECURITY_SUBJECT_CONTEXT = *mut SECURITY_SUBJECT_CONTEXT;
/// `POOL_FLAGS` (`ExAllocatePool2`'s flags, `POOL_FLAG_*`).
pub type POOL_FLAGS = ULONG64;

// Pointer aliases.
/// `CHAR *`.
pub type PCHAR = *mut CHAR;
/// `CHAR *` (a NUL-terminated string).
pub type PSTR = *mut CHAR;
/// `const CHAR *` (a NUL-terminated string).
pub type PCSTR = *const CHAR;
/// `CCHAR *`.
pub type PCCHAR = *mut CCHAR;
/// `UCHAR *`.
pub type PUCHAR = *mut UCHAR;
/// `USHORT *`.
pub type PUSHORT = *mut USHORT;
/// `LONG *`.
pub type PLONG = *mut LONG;
/// `ULONG *`.
pub type PULONG = *mut ULONG;
/// `UINT *`.
pub type PUINT = *mut UINT;
/// `ULONG64 *`.
pub type PULONG64 = *mut ULONG64;
/// `ULONG_PTR *`.
pub type PULONG_PTR = *mut ULONG_PTR;
/// `SIZE_T *`.
pub type PSIZE_T = *mut SIZE_T;
/// `BOOLEAN *`.
pub type PBOOLEAN = *mut BOOLEAN;
/// `WCHAR *`.
pub type PWCH = *mut WCHAR;
/// `WCHAR *` (a NUL-terminated string).
pub type PWSTR = *mut WCHAR;
/// `const WCHAR *` (a NUL-terminated string).
pub type PCWSTR = *const WCHAR;
/// `NTSTATUS *`.
pub type PNTSTATUS = *mut NTSTATUS;
/// `KIRQL *`.
pub type PKIRQL = *mut KIRQL;
/// `KSPIN_LOCK *`.
pub type PKSPIN_LOCK = *mut KSPIN_LOCK;
/// `ACCESS_MASK *`.
pub type PACCESS_MASK = *mut ACCESS_MASK;

// ---------------------------------------------------------------------------------------------------------
// Strings and lists.
// ---------------------------------------------------------------------------------------------------------

/// [`UNICODE_STRING`](https://learn.microsoft.com/windows/win32/api/ntdef/ns-ntdef-_unicode_string): a
/// counted UTF-16 string. `Length` and `MaximumLength` are in bytes; `Buffer` need not be NUL-terminated.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct UNICODE_STRING {
    pub Length: USHORT,
    pub MaximumLength: USHORT,
    pub Buffer: PWCH,
}
/// `UNICODE_STRING *`.
pub type PUNICODE_STRING = *mut UNICODE_STRING;
/// `const UNICODE_STRING *`.
pub type PCUNICODE_STRING = *const UNICODE_STRING;

/// `STRING` / `ANSI_STRING`: a counted byte string.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct STRING {
    pub Length: USHORT,
    pub MaximumLength: USHORT,
    pub Buffer: PCHAR,
}
/// `ANSI_STRING`.
pub type ANSI_STRING = STRING;
/// `STRING *`.
pub type PSTRING = *mut STRING;
/// `ANSI_STRING *`.
pub type PANSI_STRING = *mut STRING;

/// [`LIST_ENTRY`](https://learn.microsoft.com/windows/win32/api/ntdef/ns-ntdef-list_entry): a doubly linked,
/// circular list link.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LIST_ENTRY {
    pub Flink: *mut LIST_ENTRY,
    pub Blink: *mut LIST_ENTRY,
}
/// `LIST_ENTRY *`.
pub type PLIST_ENTRY = *mut LIST_ENTRY;

/// `SINGLE_LIST_ENTRY`: a singly linked list link.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SINGLE_LIST_ENTRY {
    pub Next: *mut SINGLE_LIST_ENTRY,
}
/// `SINGLE_LIST_ENTRY *`.
pub type PSINGLE_LIST_ENTRY = *mut SINGLE_LIST_ENTRY;
/// `SLIST_ENTRY` (x64: a 16-byte aligned `SINGLE_LIST_ENTRY`). Only used behind pointers here.
pub type PSLIST_ENTRY = *mut SINGLE_LIST_ENTRY;

/// `SLIST_HEADER` (x64): the head of an interlocked singly linked list. 16-byte aligned.
#[repr(C, align(16))]
#[derive(Clone, Copy)]
pub union SLIST_HEADER {
    /// The two 64-bit halves.
    pub s: SLIST_HEADER_s,
    /// The x64 bit layout.
    pub HeaderX64: SLIST_HEADER_HeaderX64,
}
/// `SLIST_HEADER *`.
pub type PSLIST_HEADER = *mut SLIST_HEADER;

/// Anonymous member `s` of [`SLIST_HEADER`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SLIST_HEADER_s {
    pub Alignment: ULONGLONG,
    pub Region: ULONGLONG,
}

/// `SLIST_HEADER.HeaderX64`: bit-fields only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SLIST_HEADER_HeaderX64 {
    /// Storage unit: `Depth:16`, `Sequence:48`.
    pub Bits1: ULONGLONG,
    /// Storage unit: `Reserved:4`, `NextEntry:60`.
    pub Bits2: ULONGLONG,
}
bitfields!(SLIST_HEADER_HeaderX64 {
    Bits1: ULONGLONG {
        Depth / set_Depth: 0, 16;
        Sequence / set_Sequence: 16, 48;
    }
    Bits2: ULONGLONG {
        Reserved / set_Reserved: 0, 4;
        NextEntry / set_NextEntry: 4, 60;
    }
});

// ---------------------------------------------------------------------------------------------------------
// 64-bit integers as the WDK spells them.
// ---------------------------------------------------------------------------------------------------------

/// [`LARGE_INTEGER`](https://learn.microsoft.com/windows/win32/api/winnt/ns-winnt-large_integer-r1): a signed
/// 64-bit integer, also readable as its two 32-bit halves.
#[repr(C)]
#[derive(Clone, Copy)]
pub union LARGE_INTEGER {
    /// The anonymous `{ LowPart; HighPart; }` member.
    pub s: LARGE_INTEGER_s,
    /// The named `u` member (same layout as `s`).
    pub u: LARGE_INTEGER_s,
    pub QuadPart: LONGLONG,
}
/// `LARGE_INTEGER *`.
pub type PLARGE_INTEGER = *mut LARGE_INTEGER;
/// `PHYSICAL_ADDRESS`.
pub type PHYSICAL_ADDRESS = LARGE_INTEGER;
/// `PHYSICAL_ADDRESS *`.
pub type PPHYSICAL_ADDRESS = *mut LARGE_INTEGER;

impl LARGE_INTEGER {
    /// A `LARGE_INTEGER` holding `value`.
    #[inline]
    pub const fn from_quad(value: i64) -> Self {
        Self { QuadPart: value }
    }
}

/// The halves of a [`LARGE_INTEGER`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LARGE_INTEGER_s {
    pub LowPart: ULONG,
    pub HighPart: LONG,
}

/// `ULARGE_INTEGER`: an unsigned 64-bit integer, also readable as its two 32-bit halves.
#[repr(C)]
#[derive(Clone, Copy)]
pub union ULARGE_INTEGER {
    /// The anonymous `{ LowPart; HighPart; }` member.
    pub s: ULARGE_INTEGER_s,
    /// The named `u` member (same layout as `s`).
    pub u: ULARGE_INTEGER_s,
    pub QuadPart: ULONGLONG,
}
/// `ULARGE_INTEGER *`.
pub type PULARGE_INTEGER = *mut ULARGE_INTEGER;

/// The halves of a [`ULARGE_INTEGER`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ULARGE_INTEGER_s {
    pub LowPart: ULONG,
    pub HighPart: ULONG,
}

union_debug!(SLIST_HEADER, LARGE_INTEGER, ULARGE_INTEGER);

// ---------------------------------------------------------------------------------------------------------
// Identifiers.
// ---------------------------------------------------------------------------------------------------------

/// `GUID`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GUID {
    pub Data1: u32,
    pub Data2: u16,
    pub Data3: u16,
    pub Data4: [u8; 8],
}
/// `GUID *`.
pub type PGUID = *mut GUID;
/// `const GUID *`.
pub type LPCGUID = *const GUID;

/// [`NET_LUID_LH`](https://learn.microsoft.com/windows/win32/api/ifdef/ns-ifdef-net_luid_lh): the locally
/// unique identifier of a network interface.
#[repr(C)]
#[derive(Clone, Copy)]
pub union NET_LUID_LH {
    pub Value: ULONG64,
    pub Info: NET_LUID_LH_Info,
}
/// `NET_LUID`.
pub type NET_LUID = NET_LUID_LH;
/// `NET_LUID *`.
pub type PNET_LUID = *mut NET_LUID_LH;
/// `IF_LUID`.
pub type IF_LUID = NET_LUID_LH;
union_debug!(NET_LUID_LH);

/// `NET_LUID_LH.Info`: bit-fields only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NET_LUID_LH_Info {
    /// Storage unit: `Reserved:24`, `NetLuidIndex:24`, `IfType:16`.
    pub Bits: ULONG64,
}
bitfields!(NET_LUID_LH_Info {
    Bits: ULONG64 {
        Reserved / set_Reserved: 0, 24;
        NetLuidIndex / set_NetLuidIndex: 24, 24;
        IfType / set_IfType: 48, 16;
    }
});

/// `NET_IFINDEX`: an interface index.
pub type NET_IFINDEX = ULONG;
/// `NET_IFTYPE`: an IANA interface type (`IF_TYPE_*`).
pub type NET_IFTYPE = USHORT;
/// `NET_IF_COMPARTMENT_ID`.
pub type NET_IF_COMPARTMENT_ID = UINT32;
/// `NET_IF_ACCESS_TYPE` (enum).
pub type NET_IF_ACCESS_TYPE = INT;
/// `NET_IF_DIRECTION_TYPE` (enum).
pub type NET_IF_DIRECTION_TYPE = INT;
/// `NET_IF_CONNECTION_TYPE` (enum).
pub type NET_IF_CONNECTION_TYPE = INT;
/// `NET_IF_MEDIA_CONNECT_STATE` (enum).
pub type NET_IF_MEDIA_CONNECT_STATE = INT;
/// `NET_IF_MEDIA_DUPLEX_STATE` (enum).
pub type NET_IF_MEDIA_DUPLEX_STATE = INT;

/// `PROCESSOR_NUMBER`: a processor's group and number within the group.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PROCESSOR_NUMBER {
    pub Group: USHORT,
    pub Number: UCHAR,
    pub Reserved: UCHAR,
}
/// `PROCESSOR_NUMBER *`.
pub type PPROCESSOR_NUMBER = *mut PROCESSOR_NUMBER;

/// `OBJECT_HANDLE_INFORMATION` (ObReferenceObjectByHandle's optional out parameter).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct OBJECT_HANDLE_INFORMATION {
    pub HandleAttributes: ULONG,
    pub GrantedAccess: ACCESS_MASK,
}
/// `OBJECT_HANDLE_INFORMATION *`.
pub type POBJECT_HANDLE_INFORMATION = *mut OBJECT_HANDLE_INFORMATION;

// ---------------------------------------------------------------------------------------------------------
// Opaque kernel objects.
// ---------------------------------------------------------------------------------------------------------

opaque!(
    /// `EPROCESS`: a process.
    EPROCESS,
    /// `ETHREAD`: an executive thread.
    ETHREAD,
    /// `KTHREAD`: a kernel thread.
    KTHREAD,
    /// `OBJECT_TYPE`: an object manager type (e.g. `*ExEventObjectType`).
    OBJECT_TYPE,
    /// `KWAIT_BLOCK`.
    KWAIT_BLOCK,
);
/// `EPROCESS *`.
pub type PEPROCESS = *mut EPROCESS;
/// `ETHREAD *`.
pub type PETHREAD = *mut ETHREAD;
/// `KTHREAD *`.
pub type PKTHREAD = *mut KTHREAD;
/// `OBJECT_TYPE *`.
pub type POBJECT_TYPE = *mut OBJECT_TYPE;
/// `KWAIT_BLOCK *`.
pub type PKWAIT_BLOCK = *mut KWAIT_BLOCK;

//! Every declared constant against the WDK's constant tables.
//!
//! The list of constants comes from the declarations themselves (`ALL_CONSTANTS`, built by the same macro
//! invocation that declares them), so a constant cannot be added without being checked here. Each is looked
//! up in `reference/wdk-10.0.16299/constants-ndis630.tsv`, then (for names only NDIS 6.89 headers define) in
//! `reference/wdk-10.0.26100/constants-ndis689.tsv`; the `ndis689` module's constants only in the latter.
//!
//! The tables hold 32-bit values, negatives as two's complement. A signed constant must equal the table's
//! decimal; an unsigned one of 32 bits or less must equal it modulo 2^32 (so `0xC0000001` matches
//! `-1073741823`) and fit its type; a 64-bit unsigned one must equal its zero- or sign-extension (the tables
//! cut 64-bit macros to 32 bits: `NDIS_LINK_SPEED_UNKNOWN` is `(ULONG64)-1`, `POOL_FLAG_REQUIRED_END`
//! `0x80000000`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::TsvConstant;
use ndis_sys::*;
use std::collections::{BTreeMap, BTreeSet};

/// Constants the tables do not hold (their extraction keeps only some name prefixes), with the value the
/// WDK header defines and where.
const NOT_IN_TABLES: &[(&str, i128, &str)] = &[
    ("MdlMappingNoWrite", 0x8000_0000, "wdm.h `#define MdlMappingNoWrite 0x80000000`"),
    ("MdlMappingNoExecute", 0x4000_0000, "wdm.h `#define MdlMappingNoExecute 0x40000000` (Windows 8 and later)"),
    ("TRUE", 1, "ntdef.h `#define TRUE 1`"),
    ("FALSE", 0, "ntdef.h `#define FALSE 0`"),
    ("PAGE_SIZE", 0x1000, "wdm.h, x64: `#define PAGE_SIZE 0x1000`"),
    ("PAGE_SHIFT", 12, "wdm.h, x64: `#define PAGE_SHIFT 12L`"),
    ("OBJ_CASE_INSENSITIVE", 0x40, "ntdef.h `#define OBJ_CASE_INSENSITIVE 0x00000040L`"),
    ("OBJ_KERNEL_HANDLE", 0x200, "ntdef.h `#define OBJ_KERNEL_HANDLE 0x00000200L`"),
    ("WRITE_DAC", 0x0004_0000, "winnt.h/wdm.h `#define WRITE_DAC (0x00040000L)`"),
    ("KEY_READ", 0x0002_0019, "wdm.h `KEY_READ`: (STANDARD_RIGHTS_READ | KEY_QUERY_VALUE | KEY_ENUMERATE_SUB_KEYS | KEY_NOTIFY) & ~SYNCHRONIZE"),
    ("DACL_SECURITY_INFORMATION", 4, "winnt.h `#define DACL_SECURITY_INFORMATION (0x00000004L)`"),
    ("REG_BINARY", 3, "wdm.h `#define REG_BINARY ( 3ul )`"),
    ("REG_DWORD", 4, "wdm.h `#define REG_DWORD ( 4ul )`"),
    ("SE_TCB_PRIVILEGE", 7, "wdm.h `#define SE_TCB_PRIVILEGE (7L)`"),
];

/// Whether a declared constant has the value the table row gives.
fn matches(c: &ConstantInfo, row: &TsvConstant) -> bool {
    let d = i128::from(row.decimal);
    // The table's 32-bit pattern, and its sign-extension to 64 bits, as unsigned numbers.
    let low32 = d.rem_euclid(1 << 32);
    let sign_extended64 = d.rem_euclid(1 << 64);
    match (c.signed, c.bits) {
        (true, _) => c.value == d,
        (false, 64) => c.value == low32 || (d < 0 && c.value == sign_extended64),
        (false, bits) => c.value == low32 && c.value < (1i128 << bits) && (d >= 0 || bits == 32),
    }
}

fn check(
    decls: &[ConstantInfo],
    tables: &[&BTreeMap<String, TsvConstant>],
    unlisted: &[(&str, i128, &str)],
) -> (Vec<String>, usize) {
    let mut errors = Vec::new();
    let mut checked = 0;
    let mut seen = BTreeSet::new();
    for c in decls {
        if !seen.insert(c.name) {
            errors.push(format!("{} declared twice", c.name));
        }
        match tables.iter().find_map(|t| t.get(c.name)) {
            Some(row) => {
                checked += 1;
                if !matches(c, row) {
                    errors.push(format!(
                        "{}: declared {} ({} {}-bit) but the WDK says {} ({}, {})",
                        c.name,
                        c.value,
                        if c.signed { "signed" } else { "unsigned" },
                        c.bits,
                        row.decimal,
                        row.hex,
                        row.header
                    ));
                }
            }
            None => match unlisted.iter().find(|u| u.0 == c.name) {
                Some(&(_, value, _)) if value == c.value => {}
                Some(&(_, value, _)) => {
                    errors.push(format!("{}: declared {} but documented as {value}", c.name, c.value))
                }
                None => errors.push(format!("{}: in neither WDK table and not listed in NOT_IN_TABLES", c.name)),
            },
        }
    }
    (errors, checked)
}

#[test]
fn constants_match_the_wdk() {
    let t630 = common::constants(common::CONSTANTS_NDIS630);
    let t689 = common::constants(common::CONSTANTS_NDIS689);
    let (errors, checked) = check(ALL_CONSTANTS, &[&t630, &t689], NOT_IN_TABLES);
    assert!(errors.is_empty(), "{} constant errors:\n{}", errors.len(), errors.join("\n"));
    assert_eq!(checked + NOT_IN_TABLES.len(), ALL_CONSTANTS.len());
    assert!(checked > 1000, "only {checked} constants checked");
}

#[test]
fn ndis689_constants_match_the_26100_headers() {
    let t689 = common::constants(common::CONSTANTS_NDIS689);
    let t630 = common::constants(common::CONSTANTS_NDIS630);
    let (errors, checked) = check(ndis689::ALL_CONSTANTS, &[&t689], &[]);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    assert_eq!(checked, ndis689::ALL_CONSTANTS.len());
    // They are here because their 6.30 value differs; the crate root holds the 6.30 one.
    for c in ndis689::ALL_CONSTANTS {
        let root = ALL_CONSTANTS.iter().find(|r| r.name == c.name);
        assert!(root.is_some_and(|r| i128::from(t630[c.name].decimal) == r.value), "{}", c.name);
        assert_ne!(t630[c.name].decimal, t689[c.name].decimal, "{} needs no 6.89 variant", c.name);
    }
}

#[test]
fn unlisted_constants_are_really_unlisted() {
    let t630 = common::constants(common::CONSTANTS_NDIS630);
    let t689 = common::constants(common::CONSTANTS_NDIS689);
    for &(name, _, source) in NOT_IN_TABLES {
        assert!(!source.is_empty(), "{name}: no source");
        assert!(
            !t630.contains_key(name) && !t689.contains_key(name),
            "{name} is in a table now: remove it from NOT_IN_TABLES"
        );
        assert!(ALL_CONSTANTS.iter().any(|c| c.name == name), "{name} is not declared");
    }
}

/// The check itself rejects wrong values and types (so a passing run means something).
#[test]
fn the_value_check_rejects_mismatches() {
    let row = |decimal| TsvConstant { hex: String::new(), decimal, header: String::new(), kind: String::new() };
    let c = |value, signed, bits| ConstantInfo { name: "X", value, signed, bits };
    assert!(matches(&c(-1_073_741_823, true, 32), &row(-1_073_741_823))); // NTSTATUS 0xC0000001
    assert!(!matches(&c(0xC000_0001, false, 32), &row(-1_073_741_822)));
    assert!(matches(&c(0xC000_0001, false, 32), &row(-1_073_741_823))); // ULONG 0xC0000001
    assert!(!matches(&c(3_221_225_473, true, 64), &row(-1_073_741_823))); // i64 must be exact
    assert!(matches(&c(0x8000, false, 16), &row(0x8000)));
    assert!(!matches(&c(0x1_0000, false, 16), &row(0x1_0000))); // does not fit
    assert!(!matches(&c(0xFF, false, 8), &row(-1))); // negative value in a narrow unsigned type
    assert!(matches(&c(i128::from(u64::MAX), false, 64), &row(-1))); // (ULONG64)-1
    assert!(matches(&c(0x8000_0000, false, 64), &row(-2_147_483_648))); // 0x80000000ULL
    assert!(!matches(&c(2, true, 32), &row(3)));
}

/// The C types of the macros drivers pass around, as the fields and parameters they go into expect:
/// `(name prefixes, signed, bits)`; the first matching family wins.
const FAMILIES: &[(&[&str], bool, u32)] = &[
    (&["NDIS_SIZEOF_"], false, 16),
    (&["NDIS_STATUS_INDICATION_FLAGS_", "NDIS_STATISTICS_"], false, 32),
    (&["STATUS_", "NDIS_STATUS_"], true, 32),
    (&["IRP_MJ_", "IRP_MN_", "NDIS_OBJECT_TYPE_", "NDIS_PROTOCOL_ID_"], false, 8),
    (
        &[
            "OID_",
            "NDIS_PACKET_TYPE_",
            "DO_",
            "NDIS_RECEIVE_FLAGS_",
            "NDIS_SEND_FLAGS_",
            "NDIS_RETURN_FLAGS_",
            "NDIS_SEND_COMPLETE_FLAGS_",
            "NDIS_RUNTIME_VERSION_",
            "NDIS_PROTOCOL_DRIVER_SUPPORTS_",
            "NDIS_PROTOCOL_DRIVER_UDP_",
            "METHOD_",
        ],
        false,
        32,
    ),
    (&["NdisMedium", "NetEvent", "NdisRequest"], true, 32),
    (&["PASSIVE_LEVEL", "LOW_LEVEL", "APC_LEVEL", "DISPATCH_LEVEL", "HIGH_LEVEL"], false, 8),
];

#[test]
fn constant_families_have_their_field_types() {
    for c in ALL_CONSTANTS {
        let n = c.name;
        let revision = n.rsplit_once("_REVISION_").is_some_and(|(_, d)| d.chars().all(|c| c.is_ascii_digit()));
        let expect = if revision && !n.starts_with("NDIS_SIZEOF_") {
            Some((false, 8)) // NDIS_OBJECT_HEADER.Revision
        } else if n.starts_with("IO_") && n.ends_with("_INCREMENT") {
            Some((true, 8)) // IofCompleteRequest's CCHAR PriorityBoost
        } else {
            FAMILIES.iter().find(|(p, _, _)| p.iter().any(|p| n.starts_with(p))).map(|&(_, s, b)| (s, b))
        };
        if let Some(want) = expect {
            assert_eq!((c.signed, c.bits), want, "{n}");
        }
    }
}

/// The constants a protocol driver with an IOCTL interface needs are all there.
#[test]
fn required_constants_are_declared() {
    let declared: BTreeSet<&str> = ALL_CONSTANTS.iter().map(|c| c.name).collect();
    let required = [
        "STATUS_SUCCESS",
        "STATUS_PENDING",
        "STATUS_UNSUCCESSFUL",
        "STATUS_INVALID_PARAMETER",
        "STATUS_INVALID_DEVICE_REQUEST",
        "STATUS_INSUFFICIENT_RESOURCES",
        "STATUS_BUFFER_TOO_SMALL",
        "STATUS_CANCELLED",
        "STATUS_NO_MORE_ENTRIES",
        "STATUS_NOT_SUPPORTED",
        "STATUS_DEVICE_NOT_READY",
        "NDIS_STATUS_SUCCESS",
        "NDIS_STATUS_PENDING",
        "NDIS_STATUS_FAILURE",
        "NDIS_STATUS_RESOURCES",
        "NDIS_STATUS_NOT_SUPPORTED",
        "NDIS_STATUS_BAD_VERSION",
        "NDIS_STATUS_BAD_CHARACTERISTICS",
        "NDIS_STATUS_UNSUPPORTED_MEDIA",
        "NDIS_STATUS_PAUSED",
        "NDIS_STATUS_LINK_STATE",
        "NDIS_STATUS_MEDIA_CONNECT",
        "NDIS_STATUS_MEDIA_DISCONNECT",
        "NDIS_STATUS_RESET_START",
        "NDIS_STATUS_RESET_END",
        "NDIS_STATUS_CURRENT_MAC_ADDRESS_CHANGE",
        "NDIS_STATUS_L2_MTU_SIZE_CHANGE",
        "NDIS_STATUS_REQUEST_ABORTED",
        "IRP_MJ_CREATE",
        "IRP_MJ_CLEANUP",
        "IRP_MJ_CLOSE",
        "IRP_MJ_READ",
        "IRP_MJ_WRITE",
        "IRP_MJ_DEVICE_CONTROL",
        "IRP_MJ_MAXIMUM_FUNCTION",
        "FILE_DEVICE_NETWORK",
        "FILE_DEVICE_SECURE_OPEN",
        "DO_DIRECT_IO",
        "DO_BUFFERED_IO",
        "DO_DEVICE_INITIALIZING",
        "METHOD_BUFFERED",
        "METHOD_IN_DIRECT",
        "METHOD_OUT_DIRECT",
        "METHOD_NEITHER",
        "FILE_ANY_ACCESS",
        "FILE_READ_ACCESS",
        "FILE_WRITE_ACCESS",
        "NDIS_OBJECT_TYPE_DEFAULT",
        "NDIS_OBJECT_TYPE_PROTOCOL_DRIVER_CHARACTERISTICS",
        "NDIS_OBJECT_TYPE_OPEN_PARAMETERS",
        "NDIS_OBJECT_TYPE_OID_REQUEST",
        "NDIS_OBJECT_TYPE_TIMER_CHARACTERISTICS",
        "NDIS_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_2",
        "NDIS_SIZEOF_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_2",
        "NDIS_OPEN_PARAMETERS_REVISION_1",
        "NDIS_SIZEOF_OPEN_PARAMETERS_REVISION_1",
        "NDIS_OID_REQUEST_REVISION_1",
        "NDIS_OID_REQUEST_REVISION_2",
        "NDIS_SIZEOF_OID_REQUEST_REVISION_1",
        "NDIS_SIZEOF_OID_REQUEST_REVISION_2",
        "NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1",
        "NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1",
        "NET_BUFFER_POOL_PARAMETERS_REVISION_1",
        "NDIS_SIZEOF_NET_BUFFER_POOL_PARAMETERS_REVISION_1",
        "NDIS_PROTOCOL_DRIVER_SUPPORTS_CURRENT_MAC_ADDRESS_CHANGE",
        "NDIS_PROTOCOL_DRIVER_SUPPORTS_L2_MTU_SIZE_CHANGE",
        "NDIS_PROTOCOL_DRIVER_UDP_RSC_NOT_SUPPORTED",
        "NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL",
        "NDIS_RECEIVE_FLAGS_RESOURCES",
        "NDIS_SEND_FLAGS_DISPATCH_LEVEL",
        "NDIS_RETURN_FLAGS_DISPATCH_LEVEL",
        "NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL",
        "NDIS_PACKET_TYPE_DIRECTED",
        "NDIS_PACKET_TYPE_PROMISCUOUS",
        "NDIS_PACKET_TYPE_NO_LOCAL",
        "NdisMedium802_3",
        "NetEventSetPower",
        "NetEventQueryPower",
        "NetEventQueryRemoveDevice",
        "NetEventCancelRemoveDevice",
        "NetEventReconfigure",
        "NetEventBindList",
        "NetEventBindsComplete",
        "NetEventPnPCapabilities",
        "NetEventPause",
        "NetEventRestart",
        "NetEventPortActivation",
        "NetEventPortDeactivation",
        "NetEventIMReEnableDevice",
        "NdisRequestQueryInformation",
        "NdisRequestSetInformation",
        "NdisRequestMethod",
        "OID_GEN_CURRENT_PACKET_FILTER",
        "OID_802_3_MULTICAST_LIST",
        "OID_802_3_CURRENT_ADDRESS",
        "OID_802_3_PERMANENT_ADDRESS",
        "OID_802_3_MAXIMUM_LIST_SIZE",
        "OID_GEN_MAXIMUM_FRAME_SIZE",
        "OID_GEN_MAXIMUM_TOTAL_SIZE",
        "OID_GEN_LINK_STATE",
        "OID_GEN_LINK_SPEED",
        "OID_GEN_MEDIA_CONNECT_STATUS",
        "OID_GEN_STATISTICS",
        "OID_GEN_XMIT_OK",
        "OID_GEN_RCV_OK",
        "OID_GEN_FRIENDLY_NAME",
        "OID_GEN_VENDOR_DESCRIPTION",
        "OID_GEN_MAC_OPTIONS",
        "NDIS_RUNTIME_VERSION_630",
        "NDIS_RUNTIME_VERSION_650",
        "NDIS_RUNTIME_VERSION_680",
        "NDIS_RUNTIME_VERSION_689",
        "TcpIpChecksumNetBufferListInfo",
        "Ieee8021QNetBufferListInfo",
        "NetBufferListFrameType",
        "TcpRecvSegCoalesceInfo",
        "UdpRecvSegCoalesceOffloadInfo",
        "MaxNetBufferListInfo",
        "NDIS_DEFAULT_PORT_NUMBER",
        "NDIS_PROTOCOL_ID_DEFAULT",
        "PASSIVE_LEVEL",
        "APC_LEVEL",
        "DISPATCH_LEVEL",
        "MdlMappingNoExecute",
        "NormalPagePriority",
        "NonPagedPoolNx",
        "POOL_FLAG_NON_PAGED",
        "KernelMode",
        "Executive",
        "NotificationEvent",
        "SynchronizationEvent",
        "IO_NO_INCREMENT",
        "IO_NETWORK_INCREMENT",
        "EVENT_INCREMENT",
        "DPFLTR_IHVNETWORK_ID",
        "DPFLTR_ERROR_LEVEL",
        "DPFLTR_WARNING_LEVEL",
        "DPFLTR_TRACE_LEVEL",
        "DPFLTR_INFO_LEVEL",
        "MmCached",
        "IoWriteAccess",
        "DelayedWorkQueue",
        "NDIS_STATISTICS_INFO_REVISION_1",
    ];
    let missing: Vec<&str> = required.iter().copied().filter(|n| !declared.contains(n)).collect();
    assert!(missing.is_empty(), "missing: {missing:?}");
}

/// `CTL_CODE` against I/O control codes the WDK defines.
#[test]
fn ctl_code_builds_wdk_ioctls() {
    let t = common::constants(common::CONSTANTS_NDIS630);
    let wdk = |n: &str| u32::try_from(t[n].decimal).unwrap();
    assert_eq!(
        CTL_CODE(FILE_DEVICE_PHYSICAL_NETCARD, 0, METHOD_OUT_DIRECT, FILE_ANY_ACCESS),
        wdk("IOCTL_NDIS_QUERY_GLOBAL_STATS")
    );
    assert_eq!(
        CTL_CODE(FILE_DEVICE_PHYSICAL_NETCARD, 3, METHOD_OUT_DIRECT, FILE_ANY_ACCESS),
        wdk("IOCTL_NDIS_QUERY_SELECTED_STATS")
    );
    // NDISPROT's IOCTL_NDISPROT_OPEN_DEVICE.
    let open = CTL_CODE(FILE_DEVICE_NETWORK, 0x200, METHOD_BUFFERED, FILE_READ_ACCESS | FILE_WRITE_ACCESS);
    assert_eq!(open, 0x0012_C800);
    assert_eq!(DEVICE_TYPE_FROM_CTL_CODE(open), FILE_DEVICE_NETWORK);
    assert_eq!(METHOD_FROM_CTL_CODE(open), METHOD_BUFFERED);
}

//! Every imported function against WDK 10.0.16299's function list.
//!
//! `IMPORTED_FUNCTIONS` is built by the same macro invocation that writes the `extern` blocks, so it lists
//! exactly what the driver can import. Each entry must be an `import` row of
//! `reference/wdk-10.0.16299/functions.tsv` (so it is exported by every supported Windows), from a kernel
//! module, and `ndis.h` functions must come from `ndis.sys`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use ndis_sys::IMPORTED_FUNCTIONS;
use std::collections::BTreeSet;

const MODULES: &[&str] = &["ntoskrnl.exe", "ndis.sys", "HAL.dll"];

#[test]
fn imports_are_wdk_16299_exports_from_the_right_module() {
    let table = common::functions(common::FUNCTIONS_16299);
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    for &(module, name) in IMPORTED_FUNCTIONS {
        if !seen.insert(name) {
            errors.push(format!("{name}: declared twice"));
        }
        if !MODULES.contains(&module) {
            errors.push(format!("{name}: module {module} is not ntoskrnl.exe, ndis.sys or HAL.dll"));
        }
        match table.get(name) {
            None => errors.push(format!("{name}: not declared by WDK 10.0.16299 (newer, or not a WDK function)")),
            Some((_, linkage)) if linkage != "import" => {
                errors.push(format!("{name}: {linkage} in WDK 10.0.16299, not an export"));
            }
            Some((header, _)) => {
                let from_ndis = header == "km/ndis.h";
                if from_ndis != (module == "ndis.sys") {
                    errors.push(format!("{name}: declared in {header} but imported from {module}"));
                }
                if !from_ndis && module != "ntoskrnl.exe" && module != "HAL.dll" {
                    errors.push(format!("{name}: a {header} function must come from ntoskrnl.exe (or HAL.dll)"));
                }
            }
        }
    }
    assert!(errors.is_empty(), "{} import errors:\n{}", errors.len(), errors.join("\n"));
}

#[test]
fn the_driver_api_is_declared() {
    let declared: BTreeSet<&str> = IMPORTED_FUNCTIONS.iter().map(|&(_, n)| n).collect();
    let required = [
        "IoCreateDevice",
        "IoDeleteDevice",
        "IoCreateSymbolicLink",
        "IoDeleteSymbolicLink",
        "IofCompleteRequest",
        "IoAllocateMdl",
        "IoFreeMdl",
        "IoAcquireCancelSpinLock",
        "IoReleaseCancelSpinLock",
        "IoAllocateWorkItem",
        "IoQueueWorkItem",
        "IoFreeWorkItem",
        "ExAllocatePoolWithTag",
        "ExFreePoolWithTag",
        "MmGetSystemRoutineAddress",
        "MmMapLockedPagesSpecifyCache",
        "MmBuildMdlForNonPagedPool",
        "MmProbeAndLockPages",
        "MmUnlockPages",
        "KeBugCheckEx",
        "KeInitializeSpinLock",
        "KeAcquireSpinLockRaiseToDpc",
        "KeReleaseSpinLock",
        "KeAcquireSpinLockAtDpcLevel",
        "KeReleaseSpinLockFromDpcLevel",
        "KeInitializeEvent",
        "KeSetEvent",
        "KeResetEvent",
        "KeClearEvent",
        "KeReadStateEvent",
        "KeWaitForSingleObject",
        "KeWaitForMultipleObjects",
        "KeDelayExecutionThread",
        "KeQueryPerformanceCounter",
        "KeQuerySystemTimePrecise",
        "KeInitializeTimer",
        "KeInitializeTimerEx",
        "KeSetTimer",
        "KeSetTimerEx",
        "KeCancelTimer",
        "KeInitializeDpc",
        "KeGetCurrentProcessorNumberEx",
        "KeQueryActiveProcessorCountEx",
        "KeLowerIrql",
        "ObReferenceObjectByHandle",
        "ObfDereferenceObject",
        "ObfReferenceObject",
        "PsGetCurrentProcessId",
        "RtlInitUnicodeString",
        "RtlCompareUnicodeString",
        "RtlCopyUnicodeString",
        "DbgPrint",
        "DbgPrintEx",
        "NdisGetVersion",
        "NdisRegisterProtocolDriver",
        "NdisDeregisterProtocolDriver",
        "NdisOpenAdapterEx",
        "NdisCloseAdapterEx",
        "NdisCompleteBindAdapterEx",
        "NdisCompleteUnbindAdapterEx",
        "NdisUnbindAdapter",
        "NdisAllocateNetBufferListPool",
        "NdisFreeNetBufferListPool",
        "NdisAllocateNetBufferPool",
        "NdisFreeNetBufferPool",
        "NdisAllocateNetBufferAndNetBufferList",
        "NdisAllocateNetBufferList",
        "NdisAllocateNetBuffer",
        "NdisFreeNetBuffer",
        "NdisFreeNetBufferList",
        "NdisAllocateMdl",
        "NdisFreeMdl",
        "NdisSendNetBufferLists",
        "NdisCancelSendNetBufferLists",
        "NdisReturnNetBufferLists",
        "NdisOidRequest",
        "NdisCancelOidRequest",
        "NdisDirectOidRequest",
        "NdisQueryAdapterInstanceName",
        "NdisQueryBindInstanceName",
        "NdisFreeMemory",
        "NdisAllocateMemoryWithTagPriority",
        "NdisGetRoutineAddress",
        "NdisInitializeEvent",
        "NdisSetEvent",
        "NdisResetEvent",
        "NdisWaitEvent",
        "NdisGetDataBuffer",
        "NdisAdvanceNetBufferDataStart",
        "NdisRetreatNetBufferDataStart",
        "NdisAllocateIoWorkItem",
        "NdisQueueIoWorkItem",
        "NdisFreeIoWorkItem",
        "NdisAllocateTimerObject",
        "NdisSetTimerObject",
        "NdisCancelTimerObject",
        "NdisFreeTimerObject",
        "NdisGeneratePartialCancelId",
        "NdisReEnumerateProtocolBindings",
        "NdisAllocateGenericObject",
        "NdisFreeGenericObject",
        "NdisWriteEventLogEntry",
    ];
    let missing: Vec<&str> = required.iter().copied().filter(|n| !declared.contains(n)).collect();
    assert!(missing.is_empty(), "missing imports: {missing:?}");
}

/// Header inlines, macros and post-16299 exports must never be imported: the driver would not load.
#[test]
fn inlines_macros_and_newer_exports_are_not_imported() {
    let table = common::functions(common::FUNCTIONS_16299);
    for name in [
        "KeGetCurrentIrql",
        "IoGetCurrentIrpStackLocation",
        "NdisAllocateSpinLock",
        "NdisFreeSpinLock",
        "ExInitializeFastMutex",
        "KeRaiseIrqlToDpcLevel",
        "IoSetCancelRoutine",
        "IoMarkIrpPending",
    ] {
        assert_eq!(table[name].1, "inline", "{name} should be a header inline in WDK 10.0.16299");
        assert!(!IMPORTED_FUNCTIONS.iter().any(|&(_, n)| n == name), "{name} is imported");
    }
    for name in ["ExAllocatePool2", "IoCompleteRequest", "NdisAcquireSpinLock", "KeAcquireSpinLock"] {
        assert!(!table.contains_key(name), "{name} should not be a 10.0.16299 function");
        assert!(!IMPORTED_FUNCTIONS.iter().any(|&(_, n)| n == name), "{name} is imported");
    }
}

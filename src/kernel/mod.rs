//! The thin layer of safe wrappers over the kernel and NDIS: the only driver module (with the callback shims
//! in `protocol` and `dispatch`, and `entry`) where `unsafe` is allowed. Every `unsafe` block states why it
//! is sound in a `// SAFETY:` line.
//!
//! Compiled only for the Windows target: the raw imports exist only there. The protocol logic above this
//! layer is plain safe Rust and is unit-tested on the host.
#![allow(unsafe_code)]

pub mod alloc;
pub mod irp;
pub mod irql;
pub mod nbl;
pub mod panic;
pub mod security;
pub mod sendpool;
pub mod shared;
pub mod string;
pub mod sync;
pub mod time;
pub mod timer;

// `_fltused` tells the MSVC toolchain that floating point is used; compiler_builtins references it. It is
// defined in assembly so that it does not appear in the export table (a `#[no_mangle] static` would).
// With `--features wdk`, wdk-sys defines it instead.
#[cfg(not(feature = "wdk"))]
core::arch::global_asm!(".globl _fltused", ".section .rdata,\"dr\"", ".p2align 2", "_fltused:", ".long 0", ".text");

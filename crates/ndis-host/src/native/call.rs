//! Calls into driver code with the Windows x64 calling convention.

/// Calls the driver function at `f` with up to eight integer/pointer arguments; returns RAX.
///
/// The win64 convention passes the first four arguments in RCX, RDX, R8, R9 and the rest on the stack above
/// 32 bytes of home space; passing more arguments than the callee reads is harmless, so each arity is one
/// function pointer type.
///
/// # Safety
///
/// `f` is the address of a function in a loaded driver image whose parameters are all integers or pointers
/// (at most `args.len()` of them), and every pointer argument is valid for what that function does with it.
pub unsafe fn call(f: usize, args: &[u64]) -> u64 {
    type F0 = extern "win64" fn() -> u64;
    type F4 = extern "win64" fn(u64, u64, u64, u64) -> u64;
    type F8 = extern "win64" fn(u64, u64, u64, u64, u64, u64, u64, u64) -> u64;
    let a = |i: usize| args.get(i).copied().unwrap_or(0);
    match args.len() {
        0 => {
            // SAFETY: the caller guarantees `f` is a driver function taking no arguments.
            let g = unsafe { std::mem::transmute::<usize, F0>(f) };
            g()
        }
        1..=4 => {
            // SAFETY: the caller guarantees `f` takes at most these integer arguments; extra register
            // arguments are ignored by the callee.
            let g = unsafe { std::mem::transmute::<usize, F4>(f) };
            g(a(0), a(1), a(2), a(3))
        }
        _ => {
            // SAFETY: as above, with stack arguments; the callee reads only those it declares.
            let g = unsafe { std::mem::transmute::<usize, F8>(f) };
            g(a(0), a(1), a(2), a(3), a(4), a(5), a(6), a(7))
        }
    }
}

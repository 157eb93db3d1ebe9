/* A stand-in for bcryptprimitives.dll under Debian 12's Wine 8.0, which lacks it. Rust's std (1.78 and later)
 * imports ProcessPrng from it for random hash seeds; this one fills the buffer from advapi32's RtlGenRandom
 * (SystemFunction036). Used only by `cargo xtask wine`, next to rawlink.exe, never shipped. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}

//! A byte copy tuned for frame sizes (14–1514 bytes, and the 24-byte record header).
//!
//! `copy_from_slice` of a run-time length calls `memcpy`, which on x86_64-pc-windows-msvc is
//! compiler_builtins' `rep movsb; rep movsq; rep movsb`: three string instructions whose start-up costs
//! dominate copies this short. Here every access has a length known at compile time (16-byte and smaller
//! pieces, which the compiler turns into plain loads and stores, no call), the tail is one overlapping
//! piece, and there is no branch per byte.

/// Copies longer than this are copied in 128-byte steps ([`copy_long`]).
pub const LONG: usize = 256;
/// Copies longer than this (longer than any frame) go to `memcpy`.
pub const BULK: usize = 4096;

/// Copies `src` into the start of `dst`, `min(dst.len(), src.len())` bytes.
#[inline]
pub fn copy(dst: &mut [u8], src: &[u8]) {
    let n = dst.len().min(src.len());
    let (Some(dst), Some(src)) = (dst.get_mut(..n), src.get(..n)) else { return };
    if n > LONG {
        copy_long(dst, src);
    } else if n >= 16 && n <= 64 {
        // Short frames: two or four 16-byte pieces, the last ones ending at the end (overlapping), no loop.
        copy16(dst, src, 0);
        if n > 32 {
            copy16(dst, src, 16);
            copy16(dst, src, n - 32);
        }
        copy16(dst, src, n - 16);
    } else if n >= 16 {
        let mut d = dst.chunks_exact_mut(32);
        let mut s = src.chunks_exact(32);
        for (d, s) in (&mut d).zip(&mut s) {
            if let (Some((d0, d1)), Some((s0, s1))) = (d.split_first_chunk_mut::<16>(), s.split_first_chunk::<16>()) {
                *d0 = *s0;
                if let (Some(d1), Some(s1)) = (d1.first_chunk_mut::<16>(), s1.first_chunk::<16>()) {
                    *d1 = *s1;
                }
            }
        }
        let done = n - d.into_remainder().len();
        if done == n {
            return;
        }
        // 1..31 bytes left: one or two 16-byte pieces ending at the end (overlapping what is copied).
        if n - done > 16 {
            copy16(dst, src, done);
        }
        copy16(dst, src, n - 16);
    } else if n >= 8 {
        copy8(dst, src, 0);
        copy8(dst, src, n - 8);
    } else if n >= 4 {
        copy4(dst, src, 0);
        copy4(dst, src, n - 4);
    } else {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = *s;
        }
    }
}

/// [`copy`] of more than [`LONG`] bytes: a large frame in 128-byte blocks of 16-byte pieces, then at most
/// two 64-byte blocks, the last ending at the end (overlapping what the blocks copied) — memcpy's string
/// instructions start too slowly for frame lengths; anything longer than a frame (a read's batch of
/// records) with memcpy, whose start-up cost is nothing next to the length.
#[inline(never)]
fn copy_long(dst: &mut [u8], src: &[u8]) {
    let n = dst.len().min(src.len());
    if n > BULK {
        if let (Some(d), Some(s)) = (dst.get_mut(..n), src.get(..n)) {
            d.copy_from_slice(s);
        }
        return;
    }
    let mut d = dst.chunks_exact_mut(128);
    let mut s = src.chunks_exact(128);
    for (d, s) in (&mut d).zip(&mut s) {
        copy_block::<128>(d, s, 0);
    }
    // 1..127 bytes left: a 64-byte block where the last one ended if more than 64 are, then the last 64
    // bytes (n > LONG, so they exist).
    let done = n - n % 128;
    if done < n {
        if n - done > 64 {
            copy_block::<64>(dst, src, done);
        }
        if let Some(at) = n.checked_sub(64) {
            copy_block::<64>(dst, src, at);
        }
    }
}

/// Copies `src` into the start of `dst` like [`copy`], but reads every source byte exactly once (no
/// overlapping tail pieces): for bytes another thread may change meanwhile — a caller's write buffer — where
/// a byte read twice is a double fetch (ndis-host's watch reports it, whatever the copy ends up holding).
///
/// 128-byte blocks (eight 16-byte pieces each: fewer loop steps per byte on full-size frames), then the
/// 0..127 bytes left as 64-, 32-, 16-, 8-, 4-, 2- and 1-byte pieces, each where the previous one ended (a
/// 64-byte frame is four pieces and no loop).
#[inline]
pub fn copy_once(dst: &mut [u8], src: &[u8]) {
    let n = dst.len().min(src.len());
    let (Some(dst), Some(src)) = (dst.get_mut(..n), src.get(..n)) else { return };
    let mut d = dst.chunks_exact_mut(128);
    let mut s = src.chunks_exact(128);
    for (d, s) in (&mut d).zip(&mut s) {
        copy_block::<128>(d, s, 0);
    }
    let (d, s) = (d.into_remainder(), s.remainder());
    let mut at = 0;
    let left = d.len();
    if left & 64 != 0 {
        copy_block::<64>(d, s, 0);
        at += 64;
    }
    if left & 32 != 0 {
        copy_block::<32>(d, s, at);
        at += 32;
    }
    if left & 16 != 0 {
        copy16(d, s, at);
        at += 16;
    }
    if left & 8 != 0 {
        copy8(d, s, at);
        at += 8;
    }
    if left & 4 != 0 {
        copy4(d, s, at);
        at += 4;
    }
    if left & 2 != 0 {
        copy2(d, s, at);
        at += 2;
    }
    if left & 1 != 0 {
        copy1(d, s, at);
    }
}

/// Copies the `N` bytes at `at` (a multiple of 16) as 16-byte pieces: one length check for the block, none per
/// piece.
#[inline(always)]
fn copy_block<const N: usize>(dst: &mut [u8], src: &[u8], at: usize) {
    let d = dst.get_mut(at..).and_then(|d| d.first_chunk_mut::<N>());
    let s = src.get(at..).and_then(|s| s.first_chunk::<N>());
    if let (Some(d), Some(s)) = (d, s) {
        for (d, s) in d.chunks_exact_mut(16).zip(s.chunks_exact(16)) {
            copy16(d, s, 0);
        }
    }
}

macro_rules! piece {
    ($name:ident, $n:literal) => {
        #[inline(always)]
        fn $name(dst: &mut [u8], src: &[u8], at: usize) {
            let d = dst.get_mut(at..).and_then(|d| d.first_chunk_mut::<$n>());
            let s = src.get(at..).and_then(|s| s.first_chunk::<$n>());
            if let (Some(d), Some(s)) = (d, s) {
                *d = *s;
            }
        }
    };
}
piece!(copy16, 16);
piece!(copy8, 8);
piece!(copy4, 4);
piece!(copy2, 2);
piece!(copy1, 1);

#[cfg(test)]
mod tests {
    use super::{copy, copy_once};
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn every_length_up_to_two_frames_and_past_bulk_is_copied_exactly_and_nothing_past_it() {
        let src: Vec<u8> = (0..4300u32).map(|i| (i * 7 + 3) as u8).collect();
        for n in 0..4300 {
            let mut dst = vec![0xEEu8; n + 40];
            copy(&mut dst[..n], &src[..n]);
            assert_eq!(&dst[..n], &src[..n], "length {n}");
            assert!(dst[n..].iter().all(|&b| b == 0xEE), "length {n} wrote past the end");
        }
    }

    #[test]
    fn the_read_once_copy_is_exact_at_every_length() {
        let src: Vec<u8> = (0..3100u32).map(|i| (i * 13 + 5) as u8).collect();
        for n in 0..3100 {
            let mut dst = vec![0xEEu8; n + 40];
            copy_once(&mut dst[..n], &src[..n]);
            assert_eq!(&dst[..n], &src[..n], "length {n}");
            assert!(dst[n..].iter().all(|&b| b == 0xEE), "length {n} wrote past the end");
        }
        let mut dst = [0u8; 5];
        copy_once(&mut dst, &[1, 2, 3]);
        assert_eq!(dst, [1, 2, 3, 0, 0]);
    }

    #[test]
    fn the_shorter_side_decides() {
        let mut dst = [0u8; 5];
        copy(&mut dst, &[1, 2, 3]);
        assert_eq!(dst, [1, 2, 3, 0, 0]);
        let mut dst = [0u8; 3];
        copy(&mut dst, &[9; 40]);
        assert_eq!(dst, [9; 3]);
    }
}

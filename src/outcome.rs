//! The outcomes of one receive run: a byte per frame, ORed over the handles it was offered to, counted
//! into the binding's statistics once per run. Pure logic, no FFI.

/// Frames offered to the handles per lock of each (the per-frame outcomes live on the stack).
pub const RUN: usize = 256;
/// Outcome bits of a frame within a run: some handle queued it, some handle wanted it, its data was lost.
pub const QUEUED: u8 = 1;
pub const WANTED: u8 = 2;
pub const LOST: u8 = 4;

/// A run's outcomes counted: frames lost to resources, queued by some handle, wanted by none.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub lost: u64,
    pub queued: u64,
    pub filtered: u64,
}

/// Counts a run's outcome bytes eight at a time: each bit of interest is moved to bit 0 of its byte, and
/// the sum of such a word's bytes is the top byte of the word times 0x0101..01 (a sum of at most 8 cannot
/// carry). The last 1..7 bytes are one zero-padded word whose padding lanes are masked off.
/// A frame counts once: lost before queued, queued before filtered (wanted by no handle).
pub fn tally(outcome: &[u8]) -> Tally {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let sum = |w: u64| w.wrapping_mul(ONES) >> 56;
    let mut t = Tally::default();
    // `lanes`: bit 0 of each byte of `w` that holds a frame's outcome.
    let mut count = |w: u64, lanes: u64| {
        let lost = (w >> LOST.trailing_zeros()) & lanes;
        let queued = (w >> QUEUED.trailing_zeros()) & lanes & !lost;
        let wanted = (w >> WANTED.trailing_zeros()) & lanes;
        t.lost += sum(lost);
        t.queued += sum(queued);
        t.filtered += sum(!(lost | queued | wanted) & lanes);
    };
    let mut words = outcome.chunks_exact(8);
    for w in &mut words {
        count(w.first_chunk::<8>().map_or(0, |b| u64::from_le_bytes(*b)), ONES);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut b = [0u8; 8];
        for (d, s) in b.iter_mut().zip(rest) {
            *d = *s;
        }
        // 1..7 bytes: the low 8 * len bits.
        count(u64::from_le_bytes(b), ONES & ((1u64 << (8 * rest.len())) - 1));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_tally_counts_as_frame_by_frame() {
        let naive = |o: &[u8]| {
            let mut t = Tally::default();
            for &o in o {
                if o & LOST != 0 {
                    t.lost += 1;
                } else if o & QUEUED != 0 {
                    t.queued += 1;
                } else if o & WANTED == 0 {
                    t.filtered += 1;
                }
            }
            t
        };
        // Every combination of the three bits, at every position of a word, runs of every length.
        let mut outcome = [0u8; RUN];
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for round in 0..200 {
            for o in outcome.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *o = (x & 7) as u8;
            }
            let n = (round * 37) % (RUN + 1);
            assert_eq!(tally(&outcome[..n]), naive(&outcome[..n]), "round {round}, {n} frames");
        }
        assert_eq!(tally(&[LOST | QUEUED | WANTED; 16]), Tally { lost: 16, queued: 0, filtered: 0 });
        assert_eq!(tally(&[0; 9]), Tally { lost: 0, queued: 0, filtered: 9 });
    }
}

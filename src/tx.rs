//! Validating a write: a batch of frame records (the same layout reads return: [`FrameHeader`], frame,
//! padding to 8 bytes), checked in full before anything is sent. Pure logic, unit-tested on the host.

use crate::error::{Error, Result};
use rawlink_abi::FrameHeader;

/// The shortest frame: destination, source, EtherType.
pub const MIN_FRAME: usize = 14;
/// An 802.1Q tag adds four bytes to the largest frame.
pub const VLAN_TAG: usize = 4;
/// The most frames one write may carry.
pub const MAX_BATCH: usize = 4096;

/// What every frame of a write must satisfy.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The adapter's MTU (payload bytes after the Ethernet header).
    pub mtu: u32,
    /// The adapter's MAC: frames must carry it as their source...
    pub mac: [u8; 6],
    /// ...unless the handle allowed other sources.
    pub any_source: bool,
}

/// Why a write was refused, and at which frame (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub frame: usize,
    pub error: Error,
}

/// Checks a whole batch; returns how many frames and bytes of frame data it holds.
///
/// Errors: a record that does not fit the buffer, or trailing bytes that are not a whole record →
/// STATUS_INVALID_PARAMETER; a frame shorter than 14 bytes or longer than MTU + 14 (+ 4 when VLAN-tagged) →
/// STATUS_INVALID_BUFFER_SIZE; a foreign source MAC → STATUS_INVALID_PARAMETER; no frame, or more than
/// [`MAX_BATCH`] → STATUS_INVALID_PARAMETER.
pub fn validate(buf: &[u8], limits: &Limits) -> core::result::Result<(usize, usize), Refusal> {
    match validate_prefix(buf, limits) {
        Prefix { refusal: Some(r), .. } => Err(r),
        Prefix { count: 0, .. } => Err(Refusal { frame: 0, error: Error::INVALID_PARAMETER }),
        Prefix { count, bytes, .. } => Ok((count, bytes)),
    }
}

/// The valid frames at the start of a batch, and why the next one (if any) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    /// Frames before the first refused one.
    pub count: usize,
    /// Their bytes of frame data.
    pub bytes: usize,
    /// Their length in the buffer, records included (where the refused record starts).
    pub len: usize,
    pub refusal: Option<Refusal>,
}

/// Checks a batch frame by frame up to the first refusal (IOCTL_RAWLINK_SEND sends that prefix and
/// reports the refusal). The errors are [`validate`]'s.
pub fn validate_prefix(buf: &[u8], limits: &Limits) -> Prefix {
    let mut p = Prefix { count: 0, bytes: 0, len: 0, refusal: None };
    loop {
        let refuse = |error| Some(Refusal { frame: p.count, error });
        match next_record(buf, p.len, p.count, max_frame(limits.mtu)) {
            Record::End => break,
            Record::Refused(e) => {
                p.refusal = refuse(e);
                break;
            }
            Record::Frame { frame, next } => {
                let len = frame.len();
                if let Err(e) = check_frame(frame, limits) {
                    p.refusal = refuse(e);
                    break;
                }
                p.count += 1;
                p.bytes += len;
                p.len = next;
            }
        }
    }
    p
}

/// The largest frame the MTU allows (a VLAN-tagged one).
pub fn max_frame(mtu: u32) -> usize {
    (mtu as usize).saturating_add(MIN_FRAME + VLAN_TAG)
}

/// The record of a batch at a given offset, as [`next_record`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record<'a> {
    /// No bytes left: the batch ends here.
    End,
    /// A frame (the caller's bytes, not read yet); the next record begins at `next`.
    Frame { frame: &'a [u8], next: usize },
    /// The record is refused: a header or frame past the end of the buffer, or the batch already holds
    /// [`MAX_BATCH`] frames → STATUS_INVALID_PARAMETER; a length below 14 or above `max_frame` →
    /// STATUS_INVALID_BUFFER_SIZE.
    Refused(Error),
}

/// Finds the record at `at`, after `count` frames. Of the caller's bytes it reads only the header's captured
/// length, once (the send path copies the frame itself into driver memory and checks the copy with
/// [`check_frame`]; padding and the rest of the header are never read).
pub fn next_record(buf: &[u8], at: usize, count: usize, max_frame: usize) -> Record<'_> {
    let rest = match buf.get(at..) {
        Some(r) if !r.is_empty() => r,
        _ => return Record::End,
    };
    let Some((header, body)) = rest.split_first_chunk::<{ FrameHeader::LEN }>() else {
        return Record::Refused(Error::INVALID_PARAMETER);
    };
    if count >= MAX_BATCH {
        return Record::Refused(Error::INVALID_PARAMETER);
    }
    // The one read of the length (FrameHeader::captured_length, little-endian at offset 0).
    let [l0, l1, l2, l3, ..] = *header;
    let len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
    let Some(frame) = body.get(..len) else { return Record::Refused(Error::INVALID_PARAMETER) };
    if !(MIN_FRAME..=max_frame).contains(&len) {
        return Record::Refused(Error::INVALID_BUFFER_SIZE);
    }
    // The last record may omit its padding.
    Record::Frame { frame, next: at + FrameHeader::record_len(len).min(rest.len()) }
}

/// The longest buffer a batch can need: [`MAX_BATCH`] records of the largest frame the MTU allows.
pub fn max_batch_len(mtu: u32) -> usize {
    MAX_BATCH.saturating_mul(FrameHeader::record_len(max_frame(mtu)))
}

/// The length check alone, for a frame not yet copied: shorter than 14 bytes or longer than the largest frame
/// the MTU allows (MTU + 14 + 4, a VLAN-tagged frame) → STATUS_INVALID_BUFFER_SIZE. [`validate`] applies the
/// exact limit (untagged frames: MTU + 14) once the frame is in driver memory.
pub fn check_frame_length(len: usize, mtu: u32) -> Result {
    if len < MIN_FRAME || len > max_frame(mtu) {
        return Err(Error::INVALID_BUFFER_SIZE);
    }
    Ok(())
}

/// The checks of one frame in driver memory: its length (MTU + 14, + 4 when VLAN-tagged), its source MAC
/// and MAC control (see [`validate`] for the statuses).
pub fn check_frame(frame: &[u8], limits: &Limits) -> Result {
    // The 14-byte header as words: each check is one or two word compares, not a byte or slice loop.
    let Some(header) = frame.first_chunk::<MIN_FRAME>() else { return Err(Error::INVALID_BUFFER_SIZE) };
    let [d0, d1, d2, d3, d4, d5, s0, s1, s2, s3, s4, s5, t0, t1] = *header;
    let ethertype = u16::from_be_bytes([t0, t1]);
    let max = limits.mtu as usize + MIN_FRAME + if ethertype == ETHERTYPE_8021Q { VLAN_TAG } else { 0 };
    if frame.len() > max {
        return Err(Error::INVALID_BUFFER_SIZE);
    }
    let [m0, m1, m2, m3, m4, m5] = limits.mac;
    let source_is_mac = u32::from_le_bytes([s0, s1, s2, s3]) == u32::from_le_bytes([m0, m1, m2, m3])
        && u16::from_le_bytes([s4, s5]) == u16::from_le_bytes([m4, m5]);
    if !limits.any_source && !source_is_mac {
        return Err(Error::INVALID_PARAMETER);
    }
    let [p0, p1, p2, p3, p4, p5] = PAUSE_DESTINATION;
    let to_pause = u32::from_le_bytes([d0, d1, d2, d3]) == u32::from_le_bytes([p0, p1, p2, p3])
        && u16::from_le_bytes([d4, d5]) == u16::from_le_bytes([p4, p5]);
    let mac_control = to_pause
        || match ethertype {
            // Tagged: the EtherType is further in (the walk over the tags).
            ETHERTYPE_8021Q | ETHERTYPE_8021AD => is_mac_control(frame),
            t => t == ETHERTYPE_MAC_CONTROL,
        };
    if mac_control {
        return Err(Error::ACCESS_DENIED);
    }
    Ok(())
}

/// EtherType of an 802.1Q (VLAN) tag.
const ETHERTYPE_8021Q: u16 = 0x8100;
/// EtherType of an 802.1ad (QinQ service) tag.
const ETHERTYPE_8021AD: u16 = 0x88A8;
/// EtherType of IEEE 802.3 MAC Control.
const ETHERTYPE_MAC_CONTROL: u16 = 0x8808;
/// The MAC-control / slow-protocols address PAUSE frames go to.
const PAUSE_DESTINATION: [u8; 6] = [0x01, 0x80, 0xC2, 0x00, 0x00, 0x01];

/// IEEE 802.3 MAC Control (EtherType 0x8808: PAUSE, priority flow control) and frames to the MAC-control /
/// slow-protocols address 01:80:C2:00:00:01: a NIC acts on them instead of forwarding them, so one from user
/// mode could stop a link or a switch port. Refused on every handle, whatever it is allowed otherwise; the
/// EtherType is looked for behind 802.1Q/802.1ad tags too.
pub fn is_mac_control(frame: &[u8]) -> bool {
    if frame.get(..6) == Some(&PAUSE_DESTINATION[..]) {
        return true;
    }
    let mut at = 12;
    while let Some(t) = frame.get(at..at + 2) {
        match t {
            [0x81, 0x00] | [0x88, 0xA8] => at += 4,
            _ => return t == ETHERTYPE_MAC_CONTROL.to_be_bytes(),
        }
    }
    false
}

/// The frames of a batch [`validate`] accepted: (offset into the buffer, length).
pub fn frames(buf: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut at = 0;
    core::iter::from_fn(move || {
        let rest = buf.get(at..)?;
        let h = FrameHeader::parse(rest).ok()?;
        let len = h.captured_length as usize;
        let start = at + FrameHeader::LEN;
        at += FrameHeader::record_len(len).min(rest.len());
        Some((start, len))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    const MAC: [u8; 6] = [2, 0x52, 0x4C, 0, 0, 1];
    const L: Limits = Limits { mtu: 1500, mac: MAC, any_source: false };

    #[test]
    fn mac_control_frames_are_refused_even_with_any_source() {
        let mut pause = frame(60, MAC);
        pause[..6].copy_from_slice(&[0x01, 0x80, 0xC2, 0, 0, 1]);
        pause[12..14].copy_from_slice(&[0x88, 0x08]);
        let any = Limits { any_source: true, ..L };
        assert_eq!(check_frame(&pause, &any), Err(Error::ACCESS_DENIED));
        // The EtherType alone (PFC to another address), and behind a VLAN tag.
        let mut pfc = frame(60, MAC);
        pfc[12..14].copy_from_slice(&[0x88, 0x08]);
        assert_eq!(check_frame(&pfc, &L), Err(Error::ACCESS_DENIED));
        let mut tagged = frame(64, MAC);
        tagged[12..18].copy_from_slice(&[0x81, 0x00, 0x00, 0x05, 0x88, 0x08]);
        assert_eq!(check_frame(&tagged, &L), Err(Error::ACCESS_DENIED));
        // Any other EtherType to the MAC-control address is refused by the address.
        let mut lacp = frame(60, MAC);
        lacp[..6].copy_from_slice(&[0x01, 0x80, 0xC2, 0, 0, 1]);
        lacp[12..14].copy_from_slice(&[0x88, 0x09]);
        assert!(is_mac_control(&lacp));
        // Ordinary frames, tagged or not, pass; a frame cut inside its tags is not MAC control.
        assert_eq!(check_frame(&frame(60, MAC), &L), Ok(()));
        assert!(!is_mac_control(&[0u8; 13]));
        assert!(!is_mac_control(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x81, 0x00, 0, 5]));
    }

    /// `check_frame` as first written (slices, the tag walk for every frame): the reference the word-compare
    /// version must agree with.
    fn check_frame_reference(frame: &[u8], limits: &Limits) -> Result {
        let tagged = frame.get(12..14) == Some(&[0x81, 0x00]);
        let max = limits.mtu as usize + MIN_FRAME + if tagged { VLAN_TAG } else { 0 };
        if frame.len() < MIN_FRAME || frame.len() > max {
            return Err(Error::INVALID_BUFFER_SIZE);
        }
        if !limits.any_source && frame.get(6..12) != Some(&limits.mac[..]) {
            return Err(Error::INVALID_PARAMETER);
        }
        if is_mac_control(frame) {
            return Err(Error::ACCESS_DENIED);
        }
        Ok(())
    }

    #[test]
    fn check_frame_agrees_with_the_reference_on_every_kind_of_header() {
        let dests = [[0xFF; 6], PAUSE_DESTINATION, [0x01, 0x80, 0xC2, 0, 0, 2]];
        let sources = [MAC, [2, 0x52, 0x4C, 0, 0, 2]];
        let types =
            [0x0800, ETHERTYPE_8021Q, ETHERTYPE_8021AD, ETHERTYPE_MAC_CONTROL, 0x8809, 0x8101].map(u16::to_be_bytes);
        let mut checked = 0;
        for len in [0, 5, 12, 13, 14, 15, 17, 18, 22, 60, 1514, 1515, 1518, 1519] {
            for dest in dests {
                for src in sources {
                    for outer in types {
                        for inner in types {
                            for any_source in [false, true] {
                                let mut f =
                                    [dest.as_slice(), &src, &outer, &[0, 7], &inner, &[0, 9], &[0x88, 0x08]].concat();
                                f.resize(len.max(f.len()), 0x5A);
                                f.truncate(len);
                                let limits = Limits { any_source, ..L };
                                assert_eq!(check_frame(&f, &limits), check_frame_reference(&f, &limits), "{f:02x?}");
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 14 * 3 * 2 * 6 * 6 * 2);
    }

    #[test]
    fn the_longest_batch_is_max_batch_records_of_the_largest_frame() {
        assert_eq!(max_batch_len(1500), MAX_BATCH * FrameHeader::record_len(1518));
        assert!(max_batch_len(u32::MAX) >= MAX_BATCH);
    }

    #[test]
    fn the_early_length_check_allows_the_largest_tagged_frame() {
        assert_eq!(check_frame_length(13, 1500), Err(Error::INVALID_BUFFER_SIZE));
        assert_eq!(check_frame_length(14, 1500), Ok(()));
        assert_eq!(check_frame_length(1518, 1500), Ok(()));
        assert_eq!(check_frame_length(1519, 1500), Err(Error::INVALID_BUFFER_SIZE));
        assert_eq!(check_frame_length(usize::MAX, u32::MAX), Err(Error::INVALID_BUFFER_SIZE));
    }

    fn frame(len: usize, src: [u8; 6]) -> Vec<u8> {
        let mut f = std::vec![0xFFu8; 6];
        f.extend_from_slice(&src);
        f.extend_from_slice(&[0x88, 0xB5]);
        f.resize(len, 0xAB);
        f
    }

    fn batch(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut b = Vec::new();
        for f in frames {
            let at = b.len();
            b.resize(at + FrameHeader::record_len(f.len()), 0);
            rawlink_abi::write_record(&mut b[at..], f).unwrap();
        }
        b
    }

    #[test]
    fn a_good_batch_is_counted_and_walked() {
        let fs = [frame(60, MAC), frame(1514, MAC), frame(14, MAC)];
        let b = batch(&fs);
        assert_eq!(validate(&b, &L), Ok((3, 60 + 1514 + 14)));
        let got: Vec<Vec<u8>> = frames(&b).map(|(o, l)| b[o..o + l].to_vec()).collect();
        assert_eq!(got, fs);
        // Without the last record's padding.
        let mut short = batch(&[frame(13 + 1, MAC)]);
        short.truncate(FrameHeader::LEN + 14);
        assert_eq!(validate(&short, &L), Ok((1, 14)));
    }

    #[test]
    fn each_bad_frame_is_named_with_its_reason() {
        let cases = [
            (std::vec![frame(60, MAC), frame(13, MAC)], 1, Error::INVALID_BUFFER_SIZE),
            (std::vec![frame(1515, MAC)], 0, Error::INVALID_BUFFER_SIZE),
            (std::vec![frame(60, MAC), frame(60, [2, 0, 0, 0, 0, 9])], 1, Error::INVALID_PARAMETER),
        ];
        for (fs, at, err) in cases {
            assert_eq!(validate(&batch(&fs), &L), Err(Refusal { frame: at, error: err }));
        }
        // A VLAN tag allows four more bytes, not five.
        let mut tagged = frame(1518, MAC);
        tagged[12..14].copy_from_slice(&[0x81, 0x00]);
        assert_eq!(validate(&batch(&[tagged.clone()]), &L), Ok((1, 1518)));
        tagged.push(0);
        assert_eq!(validate(&batch(&[tagged]), &L).map_err(|r| r.error), Err(Error::INVALID_BUFFER_SIZE));
        // Other sources only when allowed.
        let foreign = batch(&[frame(60, [9; 6])]);
        assert!(validate(&foreign, &Limits { any_source: true, ..L }).is_ok());
    }

    #[test]
    fn the_valid_prefix_is_found_with_the_first_refusal() {
        let fs = [frame(60, MAC), frame(70, MAC), frame(60, [9; 6]), frame(60, MAC)];
        let b = batch(&fs);
        let p = validate_prefix(&b, &L);
        assert_eq!((p.count, p.bytes, p.len), (2, 130, FrameHeader::record_len(60) + FrameHeader::record_len(70)));
        assert_eq!(p.refusal, Some(Refusal { frame: 2, error: Error::INVALID_PARAMETER }));
        assert_eq!(&b[p.len..p.len + 4], &60u32.to_le_bytes(), "the refused record starts there");
        let all = validate_prefix(&batch(&fs[..2]), &L);
        assert_eq!((all.count, all.refusal), (2, None));
        assert_eq!(validate_prefix(&[], &L), Prefix { count: 0, bytes: 0, len: 0, refusal: None });
    }

    #[test]
    fn malformed_batches_are_refused() {
        assert_eq!(validate(&[], &L).map_err(|r| r.error), Err(Error::INVALID_PARAMETER));
        let mut b = batch(&[frame(60, MAC)]);
        b[0] = 200; // claims more bytes than there are
        assert_eq!(validate(&b, &L), Err(Refusal { frame: 0, error: Error::INVALID_PARAMETER }));
        let mut b = batch(&[frame(60, MAC)]);
        b.extend_from_slice(&[1, 2, 3]); // trailing garbage
        assert_eq!(validate(&b, &L), Err(Refusal { frame: 1, error: Error::INVALID_PARAMETER }));
    }
}

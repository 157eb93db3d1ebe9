//! The control device's IOCTL logic, free of FFI: decoding requests and writing replies into the system
//! buffer. The dispatch routine supplies the buffer and a view of the binding asked for.

use crate::error::{Error, Result};
use crate::state::BindingState;
use rawlink_abi::{binding_state, ndisprot, rawlink, BindingRecord, QueryBinding};

/// What a reply needs to know about one binding.
#[derive(Debug, Clone, Copy)]
pub struct BindingView<'a> {
    pub adapter_name: &'a [u16],
    pub friendly_name: &'a [u16],
    pub mac: [u8; 6],
    pub mtu: u32,
    pub link_speed: u64,
    pub connected: bool,
    pub state: BindingState,
}

/// Whether enumeration lists a binding in this state: open and not going away.
pub fn enumerated(state: BindingState) -> bool {
    match state {
        BindingState::Paused | BindingState::Restarting | BindingState::Running | BindingState::Pausing => true,
        BindingState::Opening | BindingState::Closing | BindingState::Closed => false,
    }
}

fn abi_state(s: BindingState) -> u32 {
    match s {
        BindingState::Opening => binding_state::OPENING,
        BindingState::Paused => binding_state::PAUSED,
        BindingState::Restarting => binding_state::RESTARTING,
        BindingState::Running => binding_state::RUNNING,
        BindingState::Pausing => binding_state::PAUSING,
        BindingState::Closing | BindingState::Closed => binding_state::CLOSING,
    }
}

/// A decoded request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// NDISPROT's QUERY_BINDING: the `index`th binding, names as two strings.
    NdisprotQueryBinding { index: u32 },
    /// rawlink's QUERY_BINDING: the `index`th binding as a [`BindingRecord`].
    QueryBinding { index: u32 },
    /// Wait until NDIS has offered every adapter (at most 5 s).
    BindWait,
    /// Attach this handle to the `index`th binding.
    Open { index: u32 },
    /// NDISPROT's OPEN_DEVICE: attach to the adapter named in the input (UTF-16 `\DEVICE\{GUID}`), in
    /// NDISPROT's one-frame-per-call mode.
    NdisprotOpenDevice,
    /// This handle's receive counters.
    GetStatistics,
    /// Blocking (`true`) or non-blocking reads.
    SetReadMode { blocking: bool },
    /// Whether writes may carry another source MAC than the adapter's.
    AllowAnySource { allow: bool },
}

/// Decodes an IOCTL's code and input. Unknown codes get STATUS_INVALID_DEVICE_REQUEST; inputs too short for
/// their request get STATUS_BUFFER_TOO_SMALL.
pub fn decode(code: u32, input: &[u8]) -> Result<Request> {
    let index = || -> Result<u32> {
        let b: [u8; 4] = input.get(..4).and_then(|s| s.try_into().ok()).ok_or(Error::BUFFER_TOO_SMALL)?;
        Ok(u32::from_le_bytes(b))
    };
    match code {
        ndisprot::IOCTL_NDISPROT_QUERY_BINDING => {
            let q = QueryBinding::new_checked(input).map_err(|_| Error::BUFFER_TOO_SMALL)?;
            Ok(Request::NdisprotQueryBinding { index: q.binding_index() })
        }
        rawlink::IOCTL_RAWLINK_QUERY_BINDING => Ok(Request::QueryBinding { index: index()? }),
        rawlink::IOCTL_RAWLINK_OPEN => Ok(Request::Open { index: index()? }),
        ndisprot::IOCTL_NDISPROT_BIND_WAIT => Ok(Request::BindWait),
        rawlink::IOCTL_RAWLINK_GET_STATISTICS => Ok(Request::GetStatistics),
        rawlink::IOCTL_RAWLINK_ALLOW_ANY_SOURCE => match index()? {
            0 => Ok(Request::AllowAnySource { allow: false }),
            1 => Ok(Request::AllowAnySource { allow: true }),
            _ => Err(Error::INVALID_PARAMETER),
        },
        rawlink::IOCTL_RAWLINK_SET_READ_MODE => match index()? {
            rawlink_abi::READ_NON_BLOCKING => Ok(Request::SetReadMode { blocking: false }),
            rawlink_abi::READ_BLOCKING => Ok(Request::SetReadMode { blocking: true }),
            _ => Err(Error::INVALID_PARAMETER),
        },
        ndisprot::IOCTL_NDISPROT_OPEN_DEVICE => {
            let _ = adapter_name(input)?;
            Ok(Request::NdisprotOpenDevice)
        }
        _ => Err(Error::INVALID_DEVICE_REQUEST),
    }
}

/// Writes the reply to a binding query into `out`; `view` is the binding at the requested index among the
/// enumerated ones, or `None` past the end (STATUS_NO_MORE_ENTRIES). Returns the bytes written.
pub fn query_reply(request: Request, view: Option<&BindingView<'_>>, out: &mut [u8]) -> Result<usize> {
    let v = view.ok_or(Error::NO_MORE_ENTRIES)?;
    match request {
        Request::NdisprotQueryBinding { index } => {
            rawlink_abi::emit_query_binding(out, index, v.adapter_name, v.friendly_name)
                .map_err(|_| Error::BUFFER_TOO_SMALL)
        }
        Request::QueryBinding { index } => BindingRecord {
            index,
            state: abi_state(v.state),
            mtu: v.mtu,
            link_up: v.connected,
            link_speed: v.link_speed,
            mac: v.mac,
        }
        .emit(out, v.adapter_name, v.friendly_name)
        .map_err(|_| Error::BUFFER_TOO_SMALL),
        Request::BindWait
        | Request::Open { .. }
        | Request::NdisprotOpenDevice
        | Request::GetStatistics
        | Request::SetReadMode { .. }
        | Request::AllowAnySource { .. } => Err(Error::INVALID_DEVICE_REQUEST),
    }
}

/// Writes a handle's statistics reply.
pub fn statistics_reply(stats: &rawlink_abi::HandleStatistics, out: &mut [u8]) -> Result<usize> {
    let dst = out.get_mut(..rawlink_abi::HandleStatistics::LEN).ok_or(Error::BUFFER_TOO_SMALL)?;
    dst.copy_from_slice(&stats.to_bytes());
    Ok(rawlink_abi::HandleStatistics::LEN)
}

/// The adapter name of an OPEN_DEVICE request: UTF-16LE, an even number of bytes, trailing NULs ignored,
/// not empty (STATUS_INVALID_PARAMETER otherwise).
pub fn adapter_name(input: &[u8]) -> Result<impl Iterator<Item = u16> + Clone + '_> {
    if input.len() % 2 != 0 {
        return Err(Error::INVALID_PARAMETER);
    }
    let units = input
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c.first().copied().unwrap_or(0), c.get(1).copied().unwrap_or(0)]));
    let len = units.clone().rposition(|u| u != 0).map_or(0, |i| i + 1);
    if len == 0 {
        return Err(Error::INVALID_PARAMETER);
    }
    Ok(units.take(len))
}

/// Whether two adapter names are the same (the object manager compares names case-insensitively).
pub fn same_name(a: &[u16], b: impl Iterator<Item = u16>) -> bool {
    let fold = |u: u16| if (u16::from(b'a')..=u16::from(b'z')).contains(&u) { u - 32 } else { u };
    let mut b = b;
    a.iter().all(|&x| b.next().is_some_and(|y| fold(x) == fold(y))) && b.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn u(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn decode_refuses_unknown_codes_and_short_inputs() {
        assert_eq!(decode(0x0012_C8FC, &[]), Err(Error::INVALID_DEVICE_REQUEST));
        assert_eq!(decode(ndisprot::IOCTL_NDISPROT_QUERY_BINDING, &[0; 19]), Err(Error::BUFFER_TOO_SMALL));
        assert_eq!(decode(rawlink::IOCTL_RAWLINK_QUERY_BINDING, &[1, 0, 0]), Err(Error::BUFFER_TOO_SMALL));
        assert_eq!(decode(rawlink::IOCTL_RAWLINK_QUERY_BINDING, &[2, 0, 0, 0]), Ok(Request::QueryBinding { index: 2 }));
        let mut q = [0u8; 20];
        q[0] = 5;
        assert_eq!(decode(ndisprot::IOCTL_NDISPROT_QUERY_BINDING, &q), Ok(Request::NdisprotQueryBinding { index: 5 }));
        assert_eq!(decode(ndisprot::IOCTL_NDISPROT_BIND_WAIT, &[]), Ok(Request::BindWait));
    }

    #[test]
    fn replies() {
        let (name, friendly) = (u("\\DEVICE\\{1}"), u("Eth 1"));
        let v = BindingView {
            adapter_name: &name,
            friendly_name: &friendly,
            mac: [2, 0, 0, 0, 0, 1],
            mtu: 1500,
            link_speed: 1_000_000_000,
            connected: true,
            state: BindingState::Running,
        };
        let mut out = vec![0u8; 256];
        let n = query_reply(Request::QueryBinding { index: 0 }, Some(&v), &mut out).unwrap();
        let (rec, nr, _) = BindingRecord::parse(&out[..n]).unwrap();
        assert_eq!((rec.state, rec.mtu, rec.link_up, rec.mac), (binding_state::RUNNING, 1500, true, v.mac));
        assert_eq!(nr.len(), name.len() * 2);
        let n = query_reply(Request::NdisprotQueryBinding { index: 0 }, Some(&v), &mut out).unwrap();
        assert_eq!(n, 20 + 24 + 12);
        assert_eq!(query_reply(Request::QueryBinding { index: 9 }, None, &mut out), Err(Error::NO_MORE_ENTRIES));
        assert_eq!(
            query_reply(Request::QueryBinding { index: 0 }, Some(&v), &mut out[..60]),
            Err(Error::BUFFER_TOO_SMALL)
        );
    }

    #[test]
    fn adapter_names_are_checked_and_compared_case_insensitively() {
        let bytes = |s: &str| s.encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>();
        assert_eq!(adapter_name(&[]).err(), Some(Error::INVALID_PARAMETER));
        assert_eq!(adapter_name(&[0, 0]).err(), Some(Error::INVALID_PARAMETER));
        assert_eq!(adapter_name(&[b'a', 0, b'b']).err(), Some(Error::INVALID_PARAMETER));
        let mut with_nul = bytes("\\DEVICE\\{AB}");
        with_nul.extend_from_slice(&[0, 0]);
        let name = adapter_name(&with_nul).unwrap();
        assert!(same_name(&u("\\device\\{ab}"), name.clone()));
        assert!(!same_name(&u("\\device\\{ab"), name.clone()));
        assert!(!same_name(&u("\\device\\{abc}"), name));
        assert_eq!(decode(ndisprot::IOCTL_NDISPROT_OPEN_DEVICE, &with_nul), Ok(Request::NdisprotOpenDevice));
        assert_eq!(decode(ndisprot::IOCTL_NDISPROT_OPEN_DEVICE, &[0, 0]), Err(Error::INVALID_PARAMETER));
    }

    #[test]
    fn only_open_bindings_are_enumerated() {
        use BindingState as S;
        for s in [S::Opening, S::Paused, S::Restarting, S::Running, S::Pausing, S::Closing, S::Closed] {
            assert_eq!(enumerated(s), matches!(s, S::Paused | S::Restarting | S::Running | S::Pausing));
        }
    }
}

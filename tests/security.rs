//! Who may open the control device and what a handle may do, on the real rawlink.sys: the device carries
//! `D:P(A;;GA;;;SY)(A;;GA;;;BA)`, which ndis-host's I/O manager checks against each caller's token; an
//! administrator may replace it through the class key; names below the device are refused; and
//! ALLOW_ANY_SOURCE needs an administrator's token or SeTcbPrivilege.
#![cfg(target_os = "linux")]

mod common;

use common::status::*;

use ndis_host::host::{Host, HostConfig};
use ndis_host::io::{Access, Handle, OpenError, ProcessId};
use ndis_host::security::{Token, ADMINISTRATORS, SYSTEM, USERS};
use rawlink_abi::rawlink;

const STATUS_OBJECT_PATH_NOT_FOUND: i32 = 0xC000_003Au32 as i32;
const STATUS_PRIVILEGE_NOT_HELD: i32 = 0xC000_0061u32 as i32;
const REG_BINARY: u32 = 3;

/// A self-relative descriptor with a protected DACL of access-allowed ACEs (`mask`, SID), as MS-DTYP
/// lays it out.
fn descriptor(aces: &[(u32, &[u8])]) -> Vec<u8> {
    let acl_len = 8 + aces.iter().map(|(_, sid)| 8 + sid.len()).sum::<usize>();
    let mut sd = vec![1, 0];
    sd.extend_from_slice(&(0x8000u16 | 0x1000 | 0x0004).to_le_bytes());
    sd.extend_from_slice(&[0; 12]);
    sd.extend_from_slice(&20u32.to_le_bytes());
    sd.extend_from_slice(&[2, 0]);
    sd.extend_from_slice(&(acl_len as u16).to_le_bytes());
    sd.extend_from_slice(&(aces.len() as u16).to_le_bytes());
    sd.extend_from_slice(&[0, 0]);
    for (mask, sid) in aces {
        sd.extend_from_slice(&[0, 0]);
        sd.extend_from_slice(&((8 + sid.len()) as u16).to_le_bytes());
        sd.extend_from_slice(&mask.to_le_bytes());
        sd.extend_from_slice(sid);
    }
    sd
}

/// The driver loaded with one adapter, the class key's `Security` value set to `replacement` first.
fn running_with(replacement: Option<&[u8]>) -> Host {
    let bytes = common::package_file("rawlink.sys");
    let mut h = Host::load(&bytes, HostConfig::default()).expect("loaded");
    if let Some(sd) = replacement {
        h.set_registry_value(rawlink_abi::DEVICE_CLASS_PROPERTIES_KEY, "Security", REG_BINARY, sd);
    }
    h.add_adapter(ndis_host::ndis::AdapterConfig::ethernet(1)).expect("adapter");
    assert_eq!(h.driver_entry().expect("DriverEntry ran"), 0);
    h
}

fn open_as(h: &Host, token: Token) -> Result<Handle, i32> {
    let pid: ProcessId = h.new_process_as(token);
    h.open_in(pid, "\\\\.\\RawLink", Access::READ_WRITE).map_err(|e| match e {
        OpenError::Status(s) => s,
        OpenError::Host(e) => panic!("host: {e}"),
    })
}

fn allow_any_source(h: &Host, f: Handle) -> i32 {
    h.device_io_control(f, rawlink::IOCTL_RAWLINK_ALLOW_ANY_SOURCE, &1u32.to_le_bytes(), 0).expect("ioctl").status
}

#[test]
fn only_system_and_administrators_can_open_the_device() {
    let h = running_with(None);
    let d = h.device_security(rawlink_abi::DEVICE_NAME).expect("the driver set a descriptor on its device");
    assert!(d.protected, "D:P");
    let aces = d.dacl.expect("a DACL");
    let granted: Vec<(bool, u32, &[u8])> = aces.iter().map(|a| (a.allow, a.mask, &a.sid[..])).collect();
    assert_eq!(granted, [(true, 0x001F_01FF, &SYSTEM[..]), (true, 0x001F_01FF, &ADMINISTRATORS[..])]);
    assert_eq!(open_as(&h, Token::standard_user()).err(), Some(STATUS_ACCESS_DENIED));
    assert_eq!(open_as(&h, Token::tcb_user()).err(), Some(STATUS_ACCESS_DENIED), "a privilege is not a group");
    let admin = open_as(&h, Token::administrator()).expect("an administrator opens it");
    let system = open_as(&h, Token::system()).expect("LocalSystem opens it");
    common::finish(h, &[admin, system]);
}

#[test]
fn a_name_below_the_device_is_refused() {
    let h = running_with(None);
    for path in ["\\\\.\\RawLink\\x", "\\Device\\RawLink\\anything\\deeper"] {
        let r = h.open_in(ProcessId::INITIAL, path, Access::READ_WRITE);
        assert_eq!(r.err().and_then(|e| e.status()), Some(STATUS_OBJECT_PATH_NOT_FOUND), "{path}");
    }
    common::finish(h, &[]);
}

#[test]
fn an_administrator_can_replace_the_descriptor_and_sending_as_anyone_still_needs_privilege() {
    // D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GRGW;;;BU): users may open it too.
    let sd = descriptor(&[(0x1000_0000, &SYSTEM), (0x1000_0000, &ADMINISTRATORS), (0xC000_0000, &USERS)]);
    let h = running_with(Some(&sd));
    let user = open_as(&h, Token::standard_user()).expect("a user opens it under the replacement");
    let tcb = open_as(&h, Token::tcb_user()).expect("opened");
    let admin = open_as(&h, Token::administrator()).expect("opened");
    assert_eq!(allow_any_source(&h, user), STATUS_PRIVILEGE_NOT_HELD);
    assert_eq!(allow_any_source(&h, tcb), STATUS_SUCCESS);
    assert_eq!(allow_any_source(&h, admin), STATUS_SUCCESS);
    // Turning it off needs nothing.
    let off = h.device_io_control(user, rawlink::IOCTL_RAWLINK_ALLOW_ANY_SOURCE, &0u32.to_le_bytes(), 0);
    assert_eq!(off.expect("ioctl").status, STATUS_SUCCESS);
    common::finish(h, &[user, tcb, admin]);
}

#[test]
fn a_malformed_replacement_leaves_the_default_in_place() {
    let good = descriptor(&[(0xC000_0000, &USERS)]);
    let no_dacl = {
        let mut sd = good.clone();
        sd[2] &= !0x04;
        sd
    };
    for bad in [&good[..good.len() - 1], &no_dacl[..], &[1, 0, 0x04]] {
        let h = running_with(Some(bad));
        assert_eq!(open_as(&h, Token::standard_user()).err(), Some(STATUS_ACCESS_DENIED), "{bad:02x?}");
        let d = h.device_security(rawlink_abi::DEVICE_NAME).expect("descriptor");
        assert_eq!(d.dacl.map(|a| a.len()), Some(2), "the default stays");
        common::finish(h, &[]);
    }
}

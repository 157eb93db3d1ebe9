//! The NDIS data path (NBL/MDL allocation, sends and their completion, receives through backends, OID
//! requests, status indications) exercised by a stand-in protocol driver: host-side `extern "win64"`
//! handlers registered with NdisRegisterProtocolDriver and helper routines run on the machine's processors.
#![allow(clippy::multiple_unsafe_ops_per_block, reason = "test scaffolding building NDIS structures by hand")]

use super::*;
use crate::faults::FaultRule;
use crate::host::Host;
use crate::machine::HostConfig;
use crate::machine::HostError;
use crate::ndis::{AdapterConfig, NdisBindingState, ReceiveMeta, SendCompletion};
use objects::{first_nb, nb_view};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;

// ---------------------------------------------------------------- a tiny image (DriverEntry sets DriverUnload = ret)

pub(crate) fn tiny_image() -> Vec<u8> {
    let mut f = vec![0u8; 0x400];
    let mut put = |at: usize, b: &[u8]| f[at..at + b.len()].copy_from_slice(b);
    put(0, b"MZ");
    put(0x3C, &0x40u32.to_le_bytes());
    put(0x40, b"PE\0\0");
    put(0x44, &0x8664u16.to_le_bytes());
    put(0x46, &1u16.to_le_bytes());
    put(0x54, &240u16.to_le_bytes());
    put(0x56, &0x0022u16.to_le_bytes());
    let o = 0x58;
    put(o, &0x20Bu16.to_le_bytes());
    put(o + 4, &0x200u32.to_le_bytes());
    put(o + 16, &0x1000u32.to_le_bytes());
    put(o + 20, &0x1000u32.to_le_bytes());
    put(o + 24, &0x1_4000_0000u64.to_le_bytes());
    put(o + 32, &0x1000u32.to_le_bytes());
    put(o + 36, &0x200u32.to_le_bytes());
    put(o + 40, &10u16.to_le_bytes());
    put(o + 48, &10u16.to_le_bytes());
    put(o + 56, &0x2000u32.to_le_bytes());
    put(o + 60, &0x200u32.to_le_bytes());
    put(o + 68, &1u16.to_le_bytes());
    put(o + 108, &16u32.to_le_bytes());
    let s = o + 240;
    put(s, b".text\0\0\0");
    put(s + 8, &0x100u32.to_le_bytes());
    put(s + 12, &0x1000u32.to_le_bytes());
    put(s + 16, &0x200u32.to_le_bytes());
    put(s + 20, &0x200u32.to_le_bytes());
    put(s + 36, &0x6000_0020u32.to_le_bytes());
    // lea rax,[rip+0x19] (→ 0x20: ret); mov [rcx+0x68],rax; xor eax,eax; ret
    put(0x200, &[0x48, 0x8D, 0x05, 0x19, 0, 0, 0, 0x48, 0x89, 0x41, 0x68, 0x31, 0xC0, 0xC3]);
    put(0x220, &[0xC3]);
    f
}

// ---------------------------------------------------------------- the stand-in protocol

/// One ProtocolSendNetBufferListsComplete call: (NBL, Status) in chain order, flags, IRQL, processor.
#[derive(Debug, Clone)]
struct Completion {
    nbls: Vec<(usize, i32)>,
    flags: u32,
    irql: u8,
    cpu: u32,
}

#[derive(Debug, Default)]
struct Binding {
    handle: AtomicUsize,
    pool: AtomicUsize,
    selected: AtomicU32,
    completions: Mutex<Vec<Completion>>,
    oids: Mutex<Vec<(usize, i32)>>,
    statuses: Mutex<Vec<(NDIS_OBJECT_HEADER, i32, Vec<u8>)>>,
    received: Mutex<Vec<Vec<u8>>>,
    /// Every received NBL's metadata: (NblFlags, NetBufferListInfo[TcpIpChecksumNetBufferListInfo],
    /// [UdpRecvSegCoalesceOffloadInfo], [TcpRecvSegCoalesceInfo]).
    meta: Mutex<Vec<(u32, usize, usize, usize)>>,
    /// Every PnP event: (NetEvent, Header.Revision, Header.Size, the buffer's first ULONG if 4 bytes long).
    pnp: Mutex<Vec<(i32, u8, u16, Option<u32>)>>,
    /// How NetEventPause is answered: 0 success, 1 complete then pend, 2 pend for ever, 3 complete twice.
    pause_mode: AtomicU32,
    /// The status NetEventSetPower is answered with (as u32; 0: success).
    set_power_status: AtomicU32,
}

#[derive(Debug, Default)]
struct Proto {
    handle: AtomicUsize,
    data_size: u32,
    /// The NDIS minor version registered (0: 30) and the characteristics' Flags.
    minor: u8,
    flags: u32,
    binding: Mutex<Option<&'static Binding>>,
}

fn ctx<T>(p: u64) -> &'static T {
    // SAFETY: every context the stand-in hands NDIS is a leaked (never freed) `T` of the right type.
    unsafe { &*(p as *const T) }
}

extern "win64" fn bind(driver: u64, bind_context: u64, _params: u64) -> i32 {
    let p: &Proto = ctx(driver);
    let b: &'static Binding = Box::leak(Box::default());
    let mut mediums = [crate::ndis::MEDIUM_802_3];
    // SAFETY: all-zero is a valid NDIS_OPEN_PARAMETERS.
    let mut params: NDIS_OPEN_PARAMETERS = unsafe { std::mem::zeroed() };
    params.Header = NDIS_OBJECT_HEADER {
        Type: NDIS_OBJECT_TYPE_OPEN_PARAMETERS,
        Revision: NDIS_OPEN_PARAMETERS_REVISION_1,
        Size: NDIS_SIZEOF_OPEN_PARAMETERS_REVISION_1,
    };
    params.MediumArray = mediums.as_mut_ptr();
    params.MediumArraySize = 1;
    params.SelectedMediumIndex = b.selected.as_ptr();
    let mut h: *mut c_void = std::ptr::null_mut();
    let st = NdisOpenAdapterEx(
        p.handle.load(SeqCst) as *mut c_void,
        std::ptr::from_ref(b) as *mut c_void,
        &mut params,
        bind_context as *mut c_void,
        &mut h,
    );
    b.handle.store(h as usize, SeqCst);
    let mut pp = NET_BUFFER_LIST_POOL_PARAMETERS {
        Header: NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_DEFAULT,
            Revision: NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1,
            Size: NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1,
        },
        ProtocolId: 0,
        fAllocateNetBuffer: 1,
        ContextSize: 0,
        PoolTag: u32::from_le_bytes(*b"Test"),
        DataSize: p.data_size,
    };
    b.pool.store(NdisAllocateNetBufferListPool(h, &mut pp) as usize, SeqCst);
    *p.binding.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(b);
    st
}

extern "win64" fn unbind(_unbind_context: u64, binding: u64) -> i32 {
    let b: &Binding = ctx(binding);
    NdisFreeNetBufferListPool(b.pool.load(SeqCst) as *mut c_void);
    NdisCloseAdapterEx(b.handle.load(SeqCst) as *mut c_void)
}

extern "win64" fn nothing(_a: u64, _b: u64) -> i32 {
    0
}

extern "win64" fn pnp_event(binding: u64, notification: u64) -> i32 {
    if binding == 0 {
        return 0;
    }
    let b: &Binding = ctx(binding);
    // SAFETY: the host's notification, valid for the call.
    let n: NET_PNP_EVENT_NOTIFICATION = unsafe { read_obj(notification as usize) };
    let e = n.NetPnPEvent;
    // SAFETY: the host's event buffer of BufferLength bytes.
    let value = (e.BufferLength == 4).then(|| unsafe { read_obj::<u32>(e.Buffer as usize) });
    b.pnp.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((
        e.NetEvent,
        n.Header.Revision,
        n.Header.Size,
        value,
    ));
    if n.NetPnPEvent.NetEvent == NetEventSetPower {
        // CAST: an NDIS_STATUS kept as its bit pattern.
        return b.set_power_status.load(SeqCst) as i32;
    }
    if n.NetPnPEvent.NetEvent != 8 {
        return 0;
    }
    let h = b.handle.load(SeqCst) as *mut c_void;
    let p = notification as *mut NET_PNP_EVENT_NOTIFICATION;
    match b.pause_mode.load(SeqCst) {
        1 => NdisCompleteNetPnPEvent(h, p, 0),
        2 => {}
        3 => {
            NdisCompleteNetPnPEvent(h, p, 0);
            NdisCompleteNetPnPEvent(h, p, 0);
        }
        _ => return 0,
    }
    NDIS_STATUS_PENDING
}

extern "win64" fn oid_complete(binding: u64, request: u64, status: i32) {
    ctx::<Binding>(binding)
        .oids
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push((request as usize, status));
}

extern "win64" fn status_ex(binding: u64, indication: u64) {
    // SAFETY: the host's NDIS_STATUS_INDICATION and its buffer, valid for the call.
    let (s, payload) = unsafe {
        let s: NDIS_STATUS_INDICATION = read_obj(indication as usize);
        let p = crate::native::memory::read_bytes(s.StatusBuffer as usize, s.StatusBufferSize as usize);
        (s, p)
    };
    ctx::<Binding>(binding).statuses.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((
        s.Header,
        s.StatusCode,
        payload,
    ));
}

extern "win64" fn receive(binding: u64, nbls: u64, _port: u32, _n: u32, flags: u32) {
    let b: &Binding = ctx(binding);
    // SAFETY: the host's received chain, valid for the call.
    for l in unsafe { objects::chain(nbls as usize, 1024) } {
        // SAFETY: a received NBL of this indication, read at the NDIS 6.30 layout the stand-in registers.
        let nbl: NET_BUFFER_LIST = unsafe { read_obj(l) };
        let info = |i: NDIS_NET_BUFFER_LIST_INFO| nbl.NetBufferListInfo[i as usize] as usize;
        b.meta.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((
            nbl.NblFlags,
            info(TcpIpChecksumNetBufferListInfo),
            info(UdpRecvSegCoalesceOffloadInfo),
            info(TcpRecvSegCoalesceInfo),
        ));
        // SAFETY: a received NBL of this indication.
        let mut nb = unsafe { first_nb(l) };
        while nb != 0 {
            // SAFETY: a NET_BUFFER of the indication.
            let v = unsafe { nb_view(nb) };
            let mut storage = vec![0u8; v.data_length as usize];
            let p = NdisGetDataBuffer(nb as *mut NET_BUFFER, v.data_length, storage.as_mut_ptr().cast(), 1, 0);
            // SAFETY: NdisGetDataBuffer returned a pointer to DataLength contiguous bytes.
            let frame = unsafe { crate::native::memory::read_bytes(p as usize, v.data_length as usize) };
            b.received.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(frame);
            nb = v.next;
        }
    }
    if flags & NDIS_RECEIVE_FLAGS_RESOURCES == 0 {
        NdisReturnNetBufferLists(b.handle.load(SeqCst) as *mut c_void, nbls as *mut c_void, flags & 1);
    }
}

extern "win64" fn send_complete(binding: u64, nbls: u64, flags: u32) {
    // SAFETY: the completed chain: the stand-in's own NBLs.
    let chain = unsafe { objects::chain(nbls as usize, 1024) };
    let nbls = chain
        .iter()
        .map(|&l| {
            // SAFETY: one of the stand-in's NBLs (host-allocated, NBL_SIZE bytes).
            let nbl: NET_BUFFER_LIST = unsafe { read_obj(l) };
            // SAFETY: Status is the active member of a completed send.
            (l, unsafe { nbl.u2.Status })
        })
        .collect();
    let c = Completion { nbls, flags, irql: cpu::irql(), cpu: cpu::processor() };
    ctx::<Binding>(binding).completions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(c);
}

fn handler<T: Copy>(f: usize) -> T {
    // SAFETY: T is an `Option<extern fn>` handler type, pointer-sized; `f` is a win64 function of the
    // handler's shape (win64 and "system" are the same convention on x86-64 Windows).
    unsafe { std::mem::transmute_copy(&f) }
}

static NAME: [u16; 4] = [b'T' as u16, b'E' as u16, b'S' as u16, b'T' as u16];

struct Rig {
    h: Host,
    proto: &'static Proto,
}

impl Rig {
    fn new(data_size: u32, adapters: Vec<AdapterConfig>) -> Self {
        Self::with(HostConfig::default(), data_size, adapters)
    }

    fn with(config: HostConfig, data_size: u32, adapters: Vec<AdapterConfig>) -> Self {
        Self::registering(config, Proto { data_size, minor: 30, ..Proto::default() }, adapters)
    }

    /// The stand-in registered as `proto` says (version, flags, pool data size).
    fn registering(config: HostConfig, proto: Proto, adapters: Vec<AdapterConfig>) -> Self {
        let mut h = Host::load(&tiny_image(), config).expect("the tiny image loads");
        assert_eq!(h.driver_entry().expect("entry"), 0);
        let proto: &'static Proto = Box::leak(Box::new(proto));
        let p = std::ptr::from_ref(proto) as usize;
        let st = on(&h, 0, 0, move || {
            // SAFETY: all-zero is a valid characteristics structure.
            let mut c: NDIS_PROTOCOL_DRIVER_CHARACTERISTICS = unsafe { std::mem::zeroed() };
            c.Header = NDIS_OBJECT_HEADER {
                Type: NDIS_OBJECT_TYPE_PROTOCOL_DRIVER_CHARACTERISTICS,
                Revision: NDIS_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_2,
                Size: NDIS_SIZEOF_PROTOCOL_DRIVER_CHARACTERISTICS_REVISION_2,
            };
            c.MajorNdisVersion = 6;
            c.MinorNdisVersion = ctx::<Proto>(p as u64).minor;
            c.Flags = ctx::<Proto>(p as u64).flags;
            c.Name = NDIS_STRING { Length: 8, MaximumLength: 8, Buffer: NAME.as_ptr().cast_mut() };
            c.BindAdapterHandlerEx = handler(bind as *const () as usize);
            c.UnbindAdapterHandlerEx = handler(unbind as *const () as usize);
            c.OpenAdapterCompleteHandlerEx = handler(nothing as *const () as usize);
            c.CloseAdapterCompleteHandlerEx = handler(nothing as *const () as usize);
            c.NetPnPEventHandler = handler(pnp_event as *const () as usize);
            c.OidRequestCompleteHandler = handler(oid_complete as *const () as usize);
            c.StatusHandlerEx = handler(status_ex as *const () as usize);
            c.ReceiveNetBufferListsHandler = handler(receive as *const () as usize);
            c.SendNetBufferListsCompleteHandler = handler(send_complete as *const () as usize);
            let mut out: *mut c_void = std::ptr::null_mut();
            let st = NdisRegisterProtocolDriver(p as *mut c_void, &mut c, &mut out);
            ctx::<Proto>(p as u64).handle.store(out as usize, SeqCst);
            st
        });
        assert_eq!(st, 0);
        for a in adapters {
            h.add_adapter(a).expect("bind");
        }
        Self { h, proto }
    }

    fn binding(&self) -> &'static Binding {
        self.proto.binding.lock().unwrap_or_else(std::sync::PoisonError::into_inner).expect("bound")
    }

    /// Deregisters (unbinding everything) and unloads; returns the violations.
    fn finish(mut self) -> Vec<crate::verifier::Violation> {
        let p = self.proto.handle.load(SeqCst);
        on(&self.h, 0, 0, move || NdisDeregisterProtocolDriver(p as *mut c_void));
        self.h.unload().expect("unload");
        self.h.violations()
    }
}

fn on<R: Send + 'static>(h: &Host, processor: usize, irql: u8, f: impl FnOnce() -> R + Send + 'static) -> R {
    h.run(processor, "stand-in routine", move |_| {
        let prev = cpu::irql();
        cpu::set_irql(irql);
        let r = f();
        cpu::set_irql(prev);
        r
    })
    .expect("the routine ran")
}

/// Allocates an NBL with NDIS data (the pool's DataSize) holding `frame`.
fn frame_nbl(b: &'static Binding, frame: Vec<u8>) -> usize {
    let l = NdisAllocateNetBufferAndNetBufferList(
        b.pool.load(SeqCst) as *mut c_void,
        0,
        0,
        std::ptr::null_mut(),
        0,
        frame.len(),
    ) as usize;
    assert_ne!(l, 0, "allocation");
    // SAFETY: a fresh NBL of the stand-in with a NET_BUFFER whose MDL maps DataSize bytes of NDIS data.
    unsafe {
        let v = nb_view(first_nb(l));
        let m: MDL = read_obj(v.mdl_chain);
        for (i, x) in frame.iter().enumerate() {
            write_obj(m.MappedSystemVa as usize + i, *x);
        }
    }
    l
}

/// Links NBLs into a send chain.
fn link(nbls: &[usize]) -> usize {
    let with: Vec<(usize, i32)> = nbls.iter().map(|&n| (n, 0)).collect();
    // SAFETY: the stand-in's own NBLs, not in flight.
    unsafe { objects::link_with_status(&with) };
    nbls[0]
}

fn send(h: &Host, b: &'static Binding, processor: usize, irql: u8, frames: Vec<Vec<u8>>) -> Vec<usize> {
    on(h, processor, irql, move || {
        let nbls: Vec<usize> = frames.into_iter().map(|f| frame_nbl(b, f)).collect();
        let flags = if irql == DISPATCH { NDIS_SEND_FLAGS_DISPATCH_LEVEL } else { 0 };
        NdisSendNetBufferLists(b.handle.load(SeqCst) as *mut c_void, link(&nbls) as *mut NET_BUFFER_LIST, 0, flags);
        nbls
    })
}

fn free(h: &Host, nbls: Vec<usize>) {
    on(h, 0, 0, move || nbls.iter().for_each(|&n| NdisFreeNetBufferList(n as *mut NET_BUFFER_LIST)));
}

fn completions(b: &Binding) -> Vec<Completion> {
    b.completions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
}

fn has(v: &[crate::verifier::Violation], rule: Rule, text: &str) -> bool {
    v.iter().any(|x| x.rule == rule && x.message.contains(text))
}

// ---------------------------------------------------------------- tests

/// Ethernet adapter `n` for the stand-in protocols of these tests, which set no packet filter: the filter is
/// enforced only where a test asks for it.
fn stand_in(n: u8) -> AdapterConfig {
    AdapterConfig { enforce_packet_filter: false, ..AdapterConfig::ethernet(n) }
}

#[test]
fn a_send_is_gathered_recorded_and_completed_synchronously() {
    let r = Rig::new(256, vec![stand_in(0)]);
    let b = r.binding();
    assert_eq!(r.h.bindings()[0].state, NdisBindingState::Running);
    let frames = vec![vec![0xAA; 60], vec![0xBB; 1514]];
    let nbls = send(&r.h, b, 0, DISPATCH, vec![frames[0].clone(), vec![0xBB; 64]]);
    assert_eq!(r.h.sent_frames(0), vec![frames[0].clone(), vec![0xBB; 64]]);
    let c = completions(b);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].nbls, vec![(nbls[0], 0), (nbls[1], 0)]);
    assert_eq!((c[0].flags, c[0].irql), (NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL, DISPATCH));
    assert_eq!(r.h.sends_in_flight(), 0);
    assert_eq!(r.h.oid_state(0).map(|m| m.xmit_ok), Some(2));
    free(&r.h, nbls);
    let v = r.finish();
    assert!(v.is_empty(), "{v:#?}");
}

#[test]
fn a_send_chain_that_loops_is_refused_whole() {
    let r = Rig::new(256, vec![stand_in(0)]);
    let b = r.binding();
    let nbls = on(&r.h, 0, DISPATCH, move || {
        // More driver NBLs than the loop holds: the walk goes round it until it is longer than there are NBLs.
        let nbls: Vec<usize> = (0..5u8).map(|i| frame_nbl(b, vec![i; 60])).collect();
        let head = link(&nbls[..3]);
        // SAFETY: NET_BUFFER_LIST.Next is the NBL's first field; the third NBL now leads back to the first.
        unsafe { write_obj(nbls[2], head) };
        NdisSendNetBufferLists(
            b.handle.load(SeqCst) as *mut c_void,
            head as *mut NET_BUFFER_LIST,
            0,
            NDIS_SEND_FLAGS_DISPATCH_LEVEL,
        );
        // SAFETY: as above; the chain ends again before the NBLs are freed.
        unsafe { write_obj(nbls[2], 0usize) };
        nbls
    });
    assert!(r.h.sent_frames(0).is_empty());
    assert!(completions(b).is_empty());
    assert_eq!(r.h.sends_in_flight(), 0);
    free(&r.h, nbls);
    let v = r.finish();
    assert!(has(&v, Rule::Ndis, "(or the chain loops)"), "{v:#?}");
    assert_eq!(v.len(), 1, "{v:#?}");
}

#[test]
fn a_send_gathers_a_driver_mdl_chain_from_data_offset() {
    let r = Rig::new(0, vec![stand_in(0)]);
    let b = r.binding();
    let (frame, nbl, mdls, mem) = on(&r.h, 0, 0, move || {
        let alloc = crate::native::exports::table()
            .into_iter()
            .find(|e| e.1 == "ExAllocatePoolWithTag")
            .map(|e| e.2)
            .expect("export");
        // SAFETY: ExAllocatePoolWithTag's win64 signature.
        let alloc: extern "win64" fn(i32, usize, u32) -> *mut c_void = unsafe { std::mem::transmute(alloc) };
        let mem = alloc(512, 64, u32::from_le_bytes(*b"Test")) as usize;
        for i in 0..64 {
            // SAFETY: inside the 64-byte pool block.
            unsafe { write_obj(mem + i, i as u8) };
        }
        let h = b.handle.load(SeqCst) as *mut c_void;
        let m1 = NdisAllocateMdl(h, mem as *mut c_void, 10);
        let m2 = NdisAllocateMdl(h, (mem + 10) as *mut c_void, 54);
        // SAFETY: m1 is the MDL just allocated.
        unsafe { (*m1).Next = m2 };
        let nbl = NdisAllocateNetBufferAndNetBufferList(b.pool.load(SeqCst) as *mut c_void, 16, 0, m1, 4, 40) as usize;
        NdisSendNetBufferLists(h, nbl as *mut NET_BUFFER_LIST, 0, 0);
        (r_frame(), nbl, (m1 as usize, m2 as usize), mem)
    });
    fn r_frame() -> Vec<u8> {
        (4u8..44).collect()
    }
    assert_eq!(r.h.sent_frames(0), vec![frame]);
    assert_eq!(completions(b)[0].nbls, vec![(nbl, 0)]);
    assert_eq!(completions(b)[0].irql, 0);
    on(&r.h, 0, 0, move || {
        NdisFreeNetBufferList(nbl as *mut NET_BUFFER_LIST);
        NdisFreeMdl(mdls.0 as *mut MDL);
        NdisFreeMdl(mdls.1 as *mut MDL);
        let free = crate::native::exports::table()
            .into_iter()
            .find(|e| e.1 == "ExFreePoolWithTag")
            .map(|e| e.2)
            .expect("export");
        // SAFETY: ExFreePoolWithTag's win64 signature.
        let free: extern "win64" fn(*mut c_void, u32) = unsafe { std::mem::transmute(free) };
        free(mem as *mut c_void, u32::from_le_bytes(*b"Test"));
    });
    let v = r.finish();
    assert!(v.is_empty(), "{v:#?}");
}

#[test]
fn a_malformed_mdl_chain_is_a_violation_and_fails_the_send() {
    let r = Rig::new(128, vec![stand_in(0)]);
    let b = r.binding();
    let stray = HostBlock::new(256, 16).expect("memory");
    let stray_addr = stray.addr();
    let nbl = on(&r.h, 0, 0, move || {
        let l = frame_nbl(b, vec![1; 100]);
        // SAFETY: the stand-in's NBL; its NDIS MDL now chains a block that is no MDL of the driver and
        // claims more data than it maps.
        unsafe {
            let v = nb_view(first_nb(l));
            let mut m: MDL = read_obj(v.mdl_chain);
            m.ByteCount = 50;
            m.Next = stray_addr as *mut MDL;
            write_obj(v.mdl_chain, m);
        }
        NdisSendNetBufferLists(b.handle.load(SeqCst) as *mut c_void, l as *mut NET_BUFFER_LIST, 0, 0);
        l
    });
    assert!(r.h.sent_frames(0).is_empty());
    assert_eq!(completions(b)[0].nbls, vec![(nbl, NDIS_STATUS_INVALID_PACKET)]);
    free(&r.h, vec![nbl]);
    let v = r.finish();
    drop(stray);
    assert!(has(&v, Rule::Ndis, "is not an MDL of the driver"), "{v:#?}");
}

#[test]
fn deferred_completions_split_reorder_and_are_flushed_before_pause() {
    let cfg = AdapterConfig { send_completion: SendCompletion::Deferred, ..stand_in(0) };
    let mut r = Rig::new(128, vec![cfg]);
    let b = r.binding();
    let nbls = send(&r.h, b, 0, DISPATCH, vec![vec![1; 60], vec![2; 60], vec![3; 60]]);
    assert!(completions(b).is_empty());
    assert_eq!(r.h.sends_in_flight(), 3);
    // Sending an NBL again while it is in flight.
    let again = nbls[0];
    on(&r.h, 0, 0, move || {
        NdisSendNetBufferLists(b.handle.load(SeqCst) as *mut c_void, again as *mut NET_BUFFER_LIST, 0, 0)
    });
    // Freeing one in flight.
    on(&r.h, 0, 0, move || NdisFreeNetBufferList(again as *mut NET_BUFFER_LIST));
    assert_eq!(r.h.complete_sends(0, 2, true).expect("complete"), 3);
    let c = completions(b);
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].nbls.iter().map(|x| x.0).collect::<Vec<_>>(), vec![nbls[2], nbls[1]]);
    assert_eq!(c[1].nbls.iter().map(|x| x.0).collect::<Vec<_>>(), vec![nbls[0]]);
    assert!(c.iter().all(|c| c.irql == DISPATCH && c.cpu == 1 && c.flags == NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL));
    // Sends held at pause are completed before NetEventPause.
    let more = send(&r.h, b, 0, 0, vec![vec![4; 60]]);
    assert_eq!(r.h.pause(0).expect("pause"), 0);
    assert_eq!(completions(b).len(), 3);
    assert_eq!(r.h.sends_in_flight(), 0);
    // A send to a paused binding.
    let paused = send(&r.h, b, 0, 0, vec![vec![5; 60]]);
    assert_eq!(completions(b)[3].nbls, vec![(paused[0], NDIS_STATUS_PAUSED)]);
    free(&r.h, [nbls, more, paused].concat());
    let v = r.finish();
    assert!(has(&v, Rule::Ndis, "sent again while its earlier send is still in flight"), "{v:#?}");
    assert!(has(&v, Rule::Ndis, "frees an NBL that is still being sent"), "{v:#?}");
    assert!(has(&v, Rule::Ndis, "while the binding is Paused"), "{v:#?}");
    assert_eq!(v.len(), 3, "{v:#?}");
}

#[test]
fn nbl_and_mdl_ownership_rules() {
    let r = Rig::new(128, vec![stand_in(0)]);
    let b = r.binding();
    let foreign = HostBlock::new(objects::NBL_SIZE, 16).expect("memory");
    let fa = foreign.addr();
    on(&r.h, 0, 0, move || {
        let l = frame_nbl(b, vec![1; 60]);
        NdisFreeNetBufferList(l as *mut NET_BUFFER_LIST);
        NdisFreeNetBufferList(l as *mut NET_BUFFER_LIST);
        NdisFreeNetBufferList(fa as *mut NET_BUFFER_LIST);
        NdisSendNetBufferLists(b.handle.load(SeqCst) as *mut c_void, fa as *mut NET_BUFFER_LIST, 0, 0);
        NdisFreeMdl(fa as *mut MDL);
        // Left allocated: reported when the pool is freed and at unload.
        let _kept = NdisAllocateNetBufferList(b.pool.load(SeqCst) as *mut c_void, 0, 0);
        let _mdl = NdisAllocateMdl(b.handle.load(SeqCst) as *mut c_void, fa as *mut c_void, 16);
        NdisAllocateNetBufferList(b.pool.load(SeqCst) as *mut c_void, 8, 0);
    });
    let v = r.finish();
    drop(foreign);
    assert!(has(&v, Rule::BadFree, "not allocated from a pool of this driver (or freed twice)"), "{v:#?}");
    assert_eq!(
        v.iter().filter(|x| x.message.contains("not allocated from a pool of this driver (or freed twice)")).count(),
        2,
        "{v:#?}"
    );
    assert!(has(&v, Rule::Ndis, "was not allocated from a pool of this driver; the send is dropped"), "{v:#?}");
    assert!(has(&v, Rule::BadFree, "NdisFreeMdl"), "{v:#?}");
    assert!(has(&v, Rule::BadParameter, "not multiples of MEMORY_ALLOCATION_ALIGNMENT"), "{v:#?}");
    assert!(has(&v, Rule::Ndis, "with 2 NBL(s) of the pool not freed"), "{v:#?}");
    assert!(has(&v, Rule::Ndis, "NBL(s) allocated by the driver never freed"), "{v:#?}");
    assert!(has(&v, Rule::Ndis, "MDL(s) from NdisAllocateMdl never freed"), "{v:#?}");
}

#[test]
fn allocators_take_injected_faults() {
    let config = HostConfig {
        faults: vec![
            FaultRule::FailNth { api: "NdisAllocateNetBufferAndNetBufferList".into(), n: 1 },
            FaultRule::FailNth { api: "NdisAllocateMdl".into(), n: 1 },
        ],
        ..HostConfig::default()
    };
    let r = Rig::with(config, 128, vec![stand_in(0)]);
    let b = r.binding();
    let (first, second, mdl) = on(&r.h, 0, 0, move || {
        let pool = b.pool.load(SeqCst) as *mut c_void;
        let first = NdisAllocateNetBufferAndNetBufferList(pool, 0, 0, std::ptr::null_mut(), 0, 10) as usize;
        let second = NdisAllocateNetBufferAndNetBufferList(pool, 0, 0, std::ptr::null_mut(), 0, 10) as usize;
        let mdl = NdisAllocateMdl(b.handle.load(SeqCst) as *mut c_void, pool, 8) as usize;
        NdisFreeNetBufferList(second as *mut NET_BUFFER_LIST);
        (first, second, mdl)
    });
    assert_eq!((first, mdl), (0, 0));
    assert_ne!(second, 0);
    let v = r.finish();
    assert!(v.is_empty(), "{v:#?}");
}

#[test]
fn a_wire_carries_sends_to_the_other_adapter_and_get_data_buffer_reads_them() {
    let mut r = Rig::new(2048, vec![stand_in(0)]);
    let first = r.binding();
    r.h.add_adapter(stand_in(1)).expect("bind");
    let second = r.binding();
    r.h.connect(0, 1);
    let frame: Vec<u8> = (0..200u8).collect();
    let nbls = send(&r.h, first, 0, 0, vec![frame.clone()]);
    assert_eq!(r.h.pump().expect("pump"), 1);
    assert_eq!(*second.received.lock().unwrap_or_else(std::sync::PoisonError::into_inner), vec![frame]);
    assert_eq!(r.h.outstanding_receives(), 0);
    assert_eq!(r.h.oid_state(1).map(|m| m.rcv_ok), Some(1));
    free(&r.h, nbls);
    let v = r.finish();
    assert!(v.is_empty(), "{v:#?}");
}

/// An NDIS_OID_REQUEST (revision 1) in host memory with a buffer of `len` bytes.
fn oid_block(request_type: i32, oid: u32, data: &[u8], len: usize) -> (HostBlock, HostBlock) {
    let req = HostBlock::new(size_of::<NDIS_OID_REQUEST>(), 16).expect("memory");
    let buf = HostBlock::new(len.max(1), 16).expect("memory");
    for (i, x) in data.iter().enumerate() {
        // SAFETY: inside the buffer block.
        unsafe { write_obj(buf.addr() + i, *x) };
    }
    let p = req.as_ptr::<NDIS_OID_REQUEST>();
    // SAFETY: a fresh zeroed block of the structure's size.
    unsafe {
        (*p).Header = NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_OID_REQUEST,
            Revision: NDIS_OID_REQUEST_REVISION_1,
            Size: NDIS_SIZEOF_OID_REQUEST_REVISION_1,
        };
        (*p).RequestType = request_type;
        (*p).RequestId = 0x77 as PVOID;
        (*p).DATA.QUERY_INFORMATION.Oid = oid;
        (*p).DATA.QUERY_INFORMATION.InformationBuffer = buf.void();
        // CAST: small test buffers.
        (*p).DATA.QUERY_INFORMATION.InformationBufferLength = len as u32;
    }
    (req, buf)
}

fn oid(h: &Host, b: &'static Binding, req: usize) -> i32 {
    on(h, 0, 0, move || NdisOidRequest(b.handle.load(SeqCst) as *mut c_void, req as *mut NDIS_OID_REQUEST))
}

fn query_result(req: &HostBlock) -> (u32, u32) {
    // SAFETY: the test's request block.
    let r: NDIS_OID_REQUEST = unsafe { read_obj(req.addr()) };
    // SAFETY: a query's active member.
    let q = unsafe { r.DATA.QUERY_INFORMATION };
    (q.BytesWritten, q.BytesNeeded)
}

#[test]
fn oid_requests_query_and_set_the_adapter_model() {
    let r = Rig::new(128, vec![stand_in(3)]);
    let b = r.binding();
    let (req, buf) = oid_block(NdisRequestQueryInformation, OID_802_3_CURRENT_ADDRESS, &[], 6);
    assert_eq!(oid(&r.h, b, req.addr()), 0);
    assert_eq!(query_result(&req), (6, 0));
    // SAFETY: the test's buffer.
    assert_eq!(unsafe { crate::native::memory::read_bytes(buf.addr(), 6) }, stand_in(3).mac);
    let (short, _sb) = oid_block(NdisRequestQueryInformation, OID_GEN_LINK_STATE, &[], 8);
    assert_eq!(oid(&r.h, b, short.addr()), NDIS_STATUS_BUFFER_TOO_SHORT);
    assert_eq!(query_result(&short), (0, 40));
    let (unknown, _ub) = oid_block(NdisRequestQueryInformation, 0x0DEA_D000, &[], 8);
    assert_eq!(oid(&r.h, b, unknown.addr()), NDIS_STATUS_NOT_SUPPORTED);
    let (set, _setb) = oid_block(NdisRequestSetInformation, OID_GEN_CURRENT_PACKET_FILTER, &0x21u32.to_le_bytes(), 4);
    assert_eq!(oid(&r.h, b, set.addr()), 0);
    let list = [[1u8, 0, 0x5E, 0, 0, 1], [1, 0, 0x5E, 0, 0, 2]].concat();
    let (mc, _mcb) = oid_block(NdisRequestSetInformation, OID_802_3_MULTICAST_LIST, &list, 12);
    assert_eq!(oid(&r.h, b, mc.addr()), 0);
    let m = r.h.oid_state(0).expect("model");
    assert_eq!((m.packet_filter, m.multicast.len()), (0x21, 2));
    // A revision-2 request needs NDIS 6.50; a wrong type is refused.
    let (bad, _bb) = oid_block(NdisRequestQueryInformation, OID_GEN_LINK_SPEED, &[], 4);
    // SAFETY: the test's request block.
    unsafe { (*bad.as_ptr::<NDIS_OID_REQUEST>()).Header.Type = NDIS_OBJECT_TYPE_DEFAULT };
    assert_eq!(oid(&r.h, b, bad.addr()), NDIS_STATUS_INVALID_PARAMETER);
    let v = r.finish();
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(has(&v, Rule::BadParameter, "is not an NDIS_OID_REQUEST"), "{v:#?}");
}

#[test]
fn revision_2_oid_requests_follow_the_emulated_version() {
    let config = HostConfig { ndis_version: 0x0006_001E, ..HostConfig::default() };
    let r = Rig::with(config, 128, vec![stand_in(0)]);
    let b = r.binding();
    let (req, _buf) = oid_block(NdisRequestQueryInformation, OID_GEN_LINK_SPEED, &[], 4);
    // SAFETY: the test's request block; only its header changes.
    unsafe {
        (*req.as_ptr::<NDIS_OID_REQUEST>()).Header.Revision = NDIS_OID_REQUEST_REVISION_2;
        (*req.as_ptr::<NDIS_OID_REQUEST>()).Header.Size = NDIS_SIZEOF_OID_REQUEST_REVISION_1;
    }
    assert_eq!(oid(&r.h, b, req.addr()), NDIS_STATUS_INVALID_PARAMETER);
    let v = r.finish();
    assert!(has(&v, Rule::BadParameter, "this NDIS (6.30) accepts"), "{v:#?}");
}

#[test]
fn pended_oid_requests_complete_later_cancel_and_are_checked() {
    let cfg = AdapterConfig { oid_pends: true, ..stand_in(0) };
    let mut r = Rig::new(128, vec![cfg]);
    let b = r.binding();
    let (q, _qb) = oid_block(NdisRequestQueryInformation, OID_GEN_MAXIMUM_FRAME_SIZE, &[], 4);
    assert_eq!(oid(&r.h, b, q.addr()), NDIS_STATUS_PENDING);
    // The same request again while it is pending.
    assert_eq!(oid(&r.h, b, q.addr()), NDIS_STATUS_INVALID_PARAMETER);
    assert_eq!(r.h.pending_oid_requests(), 1);
    assert_eq!(r.h.complete_oid_requests(None).expect("complete"), 1);
    assert_eq!(*b.oids.lock().unwrap_or_else(std::sync::PoisonError::into_inner), vec![(q.addr(), 0)]);
    // Cancel by RequestId completes with NDIS_STATUS_REQUEST_ABORTED.
    let (c, _cb) = oid_block(NdisRequestQueryInformation, OID_GEN_MAXIMUM_FRAME_SIZE, &[], 4);
    assert_eq!(oid(&r.h, b, c.addr()), NDIS_STATUS_PENDING);
    on(&r.h, 0, 0, move || NdisCancelOidRequest(b.handle.load(SeqCst) as *mut c_void, 0x77 as *mut c_void));
    assert_eq!(
        b.oids.lock().unwrap_or_else(std::sync::PoisonError::into_inner)[1],
        (c.addr(), NDIS_STATUS_REQUEST_ABORTED)
    );
    // One left pending at close and unload.
    let (left, _lb) = oid_block(NdisRequestQueryInformation, OID_GEN_MAXIMUM_FRAME_SIZE, &[], 4);
    assert_eq!(oid(&r.h, b, left.addr()), NDIS_STATUS_PENDING);
    let v = r.finish();
    assert!(has(&v, Rule::DoubleCompletion, "issued again while that request is still pending"), "{v:#?}");
    assert!(has(&v, Rule::Ndis, "with 1 OID request(s) still pending"), "{v:#?}");
    assert!(has(&v, Rule::Ndis, "1 OID request(s) still pending"), "{v:#?}");
}

#[test]
fn link_state_changes_are_indicated_through_status_ex() {
    let mut r = Rig::new(128, vec![stand_in(0)]);
    let b = r.binding();
    r.h.indicate_link_state(0, false).expect("status");
    let s = b.statuses.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    assert_eq!(s.len(), 1);
    let (header, code, payload) = &s[0];
    assert_eq!(
        (header.Type, header.Revision, header.Size),
        (
            NDIS_OBJECT_TYPE_STATUS_INDICATION,
            NDIS_STATUS_INDICATION_REVISION_1,
            NDIS_SIZEOF_STATUS_INDICATION_REVISION_1
        )
    );
    assert_eq!(*code, NDIS_STATUS_LINK_STATE);
    assert_eq!(payload.len(), usize::from(NDIS_SIZEOF_LINK_STATE_REVISION_1));
    assert_eq!(&payload[4..8], &2u32.to_le_bytes(), "MediaConnectStateDisconnected");
    assert_eq!(r.h.oid_state(0).map(|m| m.connected), Some(false));
    // NDIS_STATUS_L2_MTU_SIZE_CHANGE (0x4001_0029) with a ULONG.
    r.h.indicate_status(0, 0x4001_0029, 9000u32.to_le_bytes().to_vec()).expect("status");
    let s = b.statuses.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    assert_eq!((s[1].1, s[1].2.clone()), (0x4001_0029, 9000u32.to_le_bytes().to_vec()));
    let v = r.finish();
    assert!(v.is_empty(), "{v:#?}");
}

#[test]
fn a_pended_pause_waits_for_ndis_complete_net_pnp_event() {
    let r = Rig::new(128, vec![stand_in(0)]);
    let b = r.binding();
    b.pause_mode.store(1, SeqCst);
    assert_eq!(r.h.pause(0).expect("pause"), 0);
    assert_eq!(r.h.bindings()[0].state, NdisBindingState::Paused);
    assert_eq!(r.h.restart(0).expect("restart"), 0);
    b.pause_mode.store(3, SeqCst);
    assert_eq!(r.h.pause(0).expect("pause"), 0);
    r.h.restart(0).expect("restart");
    b.pause_mode.store(2, SeqCst);
    r.h.pause(0).expect("pause");
    assert_eq!(r.h.bindings()[0].state, NdisBindingState::Paused);
    b.pause_mode.store(0, SeqCst);
    let v = r.finish();
    assert!(has(&v, Rule::DoubleCompletion, "NdisCompleteNetPnPEvent called twice"), "{v:#?}");
    assert!(
        has(&v, Rule::Ndis, "NetEventPause) returned NDIS_STATUS_PENDING and NdisCompleteNetPnPEvent was not called"),
        "{v:#?}"
    );
    assert_eq!(v.len(), 3, "{v:#?}");
}

#[test]
fn shaped_and_concurrent_receives_reach_the_driver_byte_for_byte() {
    let mut r = Rig::new(128, vec![stand_in(0)]);
    let b = r.binding();
    let frames: Vec<Vec<u8>> =
        (0..7u8).map(|i| (0..60 + usize::from(i) * 100).map(|j| (j as u8) ^ i).collect()).collect();
    let shape = crate::ndis::ReceiveShape { nbs_per_nbl: 3, mdls_per_nb: 3, data_offset: 30 };
    assert_eq!(r.h.indicate_receive_shaped(0, 1, frames.clone(), false, shape).expect("receive"), 0);
    assert_eq!(*b.received.lock().unwrap_or_else(std::sync::PoisonError::into_inner), frames);
    let ind = r.h.trace().into_iter().rev().find(|e| e.name == "ProtocolReceiveNetBufferLists").expect("indicated");
    assert!(ind.args.iter().any(|(n, v)| *n == "NumberOfNetBufferLists" && v == "0x3"), "{ind:?}");
    b.received.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    let a: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 64]).collect();
    let c: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i | 0x80; 64]).collect();
    assert_eq!(
        r.h.indicate_receive_concurrently(0, a.clone(), c.clone(), crate::ndis::ReceiveShape::default())
            .expect("receive"),
        (0, 0)
    );
    let mut got = b.received.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let mut want = [a, c].concat();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(r.h.outstanding_receives(), 0);
    let v = r.finish();
    assert!(v.is_empty(), "{v:#?}");
}

#[test]
fn pnp_notifications_carry_the_emulated_versions_revision_and_power_states() {
    for (version, revision, size) in [(crate::machine::NDIS_689, 2u8, 172u16), (0x0006_001E, 1, 164)] {
        let mut r = Rig::with(HostConfig { ndis_version: version, ..HostConfig::default() }, 128, vec![stand_in(0)]);
        let b = r.binding();
        assert_eq!(r.h.set_power(0, 4).expect("power"), 0);
        assert_eq!(r.h.set_power(0, 1).expect("power"), 0);
        assert_eq!(r.h.query_remove(0, true).expect("query"), 0);
        assert_eq!(r.h.query_remove(0, false).expect("cancel"), 0);
        let events = b.pnp.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        // NetEventRestart (9) at bind, then the four.
        let codes: Vec<(i32, Option<u32>)> = events.iter().map(|e| (e.0, e.3)).collect();
        // D3: NetEventSetPower, then NetEventPause (8); D0: NetEventRestart (9), then NetEventSetPower.
        assert_eq!(codes[1..], [(0, Some(4)), (8, None), (9, None), (0, Some(1)), (2, None), (3, None)]);
        assert!(events.iter().all(|e| (e.1, e.2) == (revision, size)), "{events:?}");
        let v = r.finish();
        assert!(v.is_empty(), "{v:#?}");
    }
}

fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let t = std::time::Instant::now();
    while t.elapsed() < std::time::Duration::from_secs(5) {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    false
}

#[test]
fn adapters_complete_sends_and_oids_by_themselves_after_a_delay() {
    let delay = std::time::Duration::from_millis(20);
    let cfg = AdapterConfig {
        send_completion: SendCompletion::Async { delay, per_call: 1, reverse: true },
        oid_pends: true,
        oid_delay: Some(delay),
        ..stand_in(0)
    };
    let r = Rig::new(128, vec![cfg]);
    let b = r.binding();
    let nbls = send(&r.h, b, 0, 0, vec![vec![1; 60], vec![2; 60]]);
    assert!(eventually(|| completions(b).len() == 2), "{:?}", completions(b));
    let c = completions(b);
    assert_eq!(c.iter().map(|c| c.nbls.clone()).collect::<Vec<_>>(), vec![vec![(nbls[1], 0)], vec![(nbls[0], 0)]]);
    assert!(c.iter().all(|c| (c.irql, c.cpu) == (DISPATCH, 1)));
    let (q, _qb) = oid_block(NdisRequestQueryInformation, OID_GEN_MAXIMUM_FRAME_SIZE, &[], 4);
    assert_eq!(oid(&r.h, b, q.addr()), NDIS_STATUS_PENDING);
    let qa = q.addr();
    assert!(eventually(|| b.oids.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&(qa, 0))));
    assert_eq!(query_result(&q), (4, 0));
    free(&r.h, nbls);
    let v = r.finish();
    assert!(v.is_empty(), "{v:#?}");
}

#[test]
fn the_receive_pump_indicates_what_a_backend_delivers() {
    let mut r = Rig::new(128, vec![stand_in(0)]);
    let b = r.binding();
    let (near, far) = crate::backend::Wire::pair();
    r.h.set_backend(0, Some(Box::new(near)));
    r.h.start_receive_pump().expect("pump");
    for i in 0..10u8 {
        crate::backend::Backend::transmit(&far, &[i; 64]);
    }
    assert!(eventually(|| b.received.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len() == 10));
    // What the driver sends reaches the far end.
    let nbls = send(&r.h, b, 0, 0, vec![vec![7; 60]]);
    assert_eq!(crate::backend::Backend::poll(&far), vec![vec![7; 60]]);
    free(&r.h, nbls);
    let v = r.finish();
    assert!(v.is_empty(), "{v:#?}");
}

#[test]
fn net_buffer_pools_data_start_moves_and_send_cancellation() {
    let cfg = AdapterConfig { send_completion: SendCompletion::Deferred, ..stand_in(0) };
    let mut r = Rig::new(128, vec![cfg]);
    let b = r.binding();
    let (nbl, nb, nb_pool, moves) = on(&r.h, 0, 0, move || {
        let mut pp = NET_BUFFER_POOL_PARAMETERS {
            Header: NDIS_OBJECT_HEADER {
                Type: NDIS_OBJECT_TYPE_DEFAULT,
                Revision: NET_BUFFER_POOL_PARAMETERS_REVISION_1,
                Size: NDIS_SIZEOF_NET_BUFFER_POOL_PARAMETERS_REVISION_1,
            },
            PoolTag: u32::from_le_bytes(*b"TsNb"),
            DataSize: 100,
        };
        let nb_pool = NdisAllocateNetBufferPool(b.handle.load(SeqCst) as *mut c_void, &mut pp) as usize;
        let nb = NdisAllocateNetBuffer(nb_pool as *mut c_void, std::ptr::null_mut(), 20, 60) as usize;
        // SAFETY: the NET_BUFFER just allocated, with NDIS data mapped by its MDL.
        unsafe {
            let v = nb_view(nb);
            let m: MDL = read_obj(v.mdl_chain);
            for i in 0..100 {
                write_obj(m.MappedSystemVa as usize + i, i as u8);
            }
        }
        let h = nb as *mut NET_BUFFER;
        let a = NdisRetreatNetBufferDataStart(h, 10, 0, std::ptr::null_mut());
        // SAFETY: the stand-in's NET_BUFFER.
        let after_retreat = unsafe { nb_view(nb) };
        NdisAdvanceNetBufferDataStart(h, 10, 0, std::ptr::null_mut());
        let too_far = NdisRetreatNetBufferDataStart(h, 30, 0, std::ptr::null_mut());
        let nbl = NdisAllocateNetBufferList(b.pool.load(SeqCst) as *mut c_void, 0, 0) as usize;
        // SAFETY: the stand-in's fresh NBL.
        unsafe { (*(nbl as *mut NET_BUFFER_LIST)).u1.s.FirstNetBuffer = h };
        NdisSendNetBufferLists(b.handle.load(SeqCst) as *mut c_void, nbl as *mut NET_BUFFER_LIST, 0, 0);
        // Freeing the NET_BUFFER of a send in flight.
        NdisFreeNetBuffer(h);
        (nbl, nb, nb_pool, (a, after_retreat.data_offset, after_retreat.data_length, too_far))
    });
    assert_eq!(moves, (0, 10, 70, NDIS_STATUS_RESOURCES));
    assert_eq!(r.h.sent_frames(0), vec![(20u8..80).collect::<Vec<u8>>()]);
    r.h.complete_sends(0, 0, false).expect("complete");
    // Cancellation: two of three held sends carry the cancel id.
    let (ids, three) = on(&r.h, 0, 0, move || {
        let id = NdisGeneratePartialCancelId();
        let three: Vec<usize> = (0..3).map(|i| frame_nbl(b, vec![i; 60])).collect();
        for &n in &three[..2] {
            // SAFETY: the stand-in's NBLs; NetBufferListInfo[NetBufferListCancelId] as the NDIS macro sets it.
            unsafe {
                (*(n as *mut NET_BUFFER_LIST)).NetBufferListInfo[NetBufferListCancelId as usize] =
                    (usize::from(id) << 56 | 7) as PVOID
            };
        }
        NdisSendNetBufferLists(b.handle.load(SeqCst) as *mut c_void, link(&three) as *mut NET_BUFFER_LIST, 0, 0);
        NdisCancelSendNetBufferLists(b.handle.load(SeqCst) as *mut c_void, (usize::from(id) << 56 | 7) as *mut c_void);
        (id, three)
    });
    assert_eq!(ids, 1);
    let c = completions(b);
    assert_eq!(
        c.last().map(|c| c.nbls.clone()),
        Some(vec![(three[0], NDIS_STATUS_SEND_ABORTED), (three[1], NDIS_STATUS_SEND_ABORTED)])
    );
    assert_eq!(r.h.sends_in_flight(), 1);
    r.h.complete_sends(0, 0, false).expect("complete");
    on(&r.h, 0, 0, move || {
        NdisFreeNetBufferList(nbl as *mut NET_BUFFER_LIST);
        NdisFreeNetBuffer(nb as *mut NET_BUFFER);
        NdisFreeNetBufferPool(nb_pool as *mut c_void);
    });
    free(&r.h, three);
    let v = r.finish();
    assert!(has(&v, Rule::Ndis, "frees a NET_BUFFER of an NBL that is still being sent"), "{v:#?}");
    assert_eq!(v.len(), 1, "{v:#?}");
}

#[test]
fn both_processors_send_while_the_adapter_completes_and_the_pump_receives() {
    let cfg = |n| AdapterConfig {
        send_completion: SendCompletion::Async {
            delay: std::time::Duration::from_millis(1),
            per_call: 3,
            reverse: false,
        },
        receive_shape: crate::ndis::ReceiveShape { nbs_per_nbl: 4, mdls_per_nb: 2, data_offset: 2 },
        receive_resources: true,
        ..stand_in(n)
    };
    let mut r = Rig::new(256, vec![cfg(0)]);
    let first = r.binding();
    r.h.add_adapter(cfg(1)).expect("bind");
    let second = r.binding();
    r.h.connect(0, 1);
    r.h.start_receive_pump().expect("pump");
    let h = &r.h;
    let sent: Vec<usize> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2usize)
            .map(|cpu| {
                s.spawn(move || {
                    let mut all = Vec::new();
                    for i in 0..25u8 {
                        let frames = (0..3u8)
                            .map(|k| {
                                vec![
                                    (cpu as u8) << 7 | i,
                                    k,
                                    0xEE,
                                    0xEE,
                                    0xEE,
                                    0xEE,
                                    0xEE,
                                    0xEE,
                                    0xEE,
                                    0xEE,
                                    0xEE,
                                    0xEE,
                                    0xEE,
                                    0xEE,
                                ]
                            })
                            .collect();
                        all.extend(send(h, first, cpu, DISPATCH, frames));
                    }
                    all
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("sender")).collect()
    });
    assert!(eventually(|| completions(first).iter().map(|c| c.nbls.len()).sum::<usize>() == 150));
    assert!(eventually(|| second.received.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len() == 150));
    assert_eq!(r.h.sent_frames(0).len(), 150);
    assert_eq!(r.h.sent_count(0), 150);
    assert!(completions(first).iter().all(|c| c.nbls.iter().all(|x| x.1 == 0)));
    free(&r.h, sent);
    let v = r.finish();
    assert!(v.is_empty(), "{v:#?}");
}

#[test]
fn a_pause_that_completes_with_sends_in_flight_is_a_violation() {
    let cfg = AdapterConfig {
        send_completion: SendCompletion::Async {
            delay: std::time::Duration::from_millis(100),
            per_call: 0,
            reverse: false,
        },
        ..stand_in(0)
    };
    let r = Rig::new(128, vec![cfg]);
    let b = r.binding();
    let nbls = send(&r.h, b, 0, 0, vec![vec![1; 60]]);
    // The stand-in answers NetEventPause with success at once, though its send is still in flight.
    assert_eq!(r.h.pause(0).expect("pause"), 0);
    assert!(eventually(|| completions(b).len() == 1));
    free(&r.h, nbls);
    let v = r.finish();
    assert!(has(&v, Rule::Ndis, "completed with 1 send(s) still in flight"), "{v:#?}");
    assert_eq!(v.len(), 1, "{v:#?}");
}

#[test]
fn binding_calls_after_deregistration_are_violations() {
    let r = Rig::new(0, vec![stand_in(0)]);
    let b = r.binding();
    let handle = b.handle.load(SeqCst);
    let p = r.proto.handle.load(SeqCst);
    on(&r.h, 0, 0, move || NdisDeregisterProtocolDriver(p as *mut c_void));
    // The binding is gone; a stale handle used afterwards is caught.
    on(&r.h, 0, 0, move || {
        let _ = NdisCloseAdapterEx(handle as *mut c_void);
    });
    let v = r.h.violations();
    assert!(has(&v, Rule::Registration, "NdisCloseAdapterEx called after NdisDeregisterProtocolDriver"), "{v:#?}");
}

/// A 60-byte frame to `dst` whose last byte is `tag`.
fn to(dst: [u8; 6], tag: u8) -> Vec<u8> {
    let mut f = [&dst[..], &[2, 0, 0, 0, 0, 0xEE], &[0x08, 0x00], &[0u8; 46][..]].concat();
    f[59] = tag;
    f
}

fn received(b: &Binding) -> Vec<Vec<u8>> {
    std::mem::take(&mut *b.received.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
}

#[test]
fn an_enforced_packet_filter_decides_what_every_receive_path_delivers() {
    let cfg = |n| AdapterConfig { enforce_packet_filter: true, ..stand_in(n) };
    let mut r = Rig::new(128, vec![cfg(0)]);
    let b = r.binding();
    let mac = stand_in(0).mac;
    let frames = vec![
        to(mac, 1),
        to([2, 0, 0, 0, 0, 0x99], 2),
        to([0xFF; 6], 3),
        to([1, 0, 0x5E, 0, 0, 1], 4),
        to([0x33, 0x33, 0, 0, 0, 1], 5),
        vec![0xFF; 5],
    ];
    // No filter set yet: nothing reaches the binding, and the driver is not even called.
    let calls = |h: &Host| h.trace().iter().filter(|e| e.name == "ProtocolReceiveNetBufferLists").count();
    let before = calls(&r.h);
    assert_eq!(r.h.indicate_receive(0, frames.clone(), false).expect("receive"), 0);
    assert_eq!((received(b).len(), calls(&r.h) - before), (0, 0));
    assert_eq!(r.h.frames_filtered(0), 6);
    // Directed and broadcast, set by the protocol, with a multicast list that MULTICAST alone would use.
    let set = |r: &Rig, oid_id: u32, data: Vec<u8>| {
        let (req, _buf) = oid_block(NdisRequestSetInformation, oid_id, &data, data.len());
        assert_eq!(oid(&r.h, b, req.addr()), 0);
    };
    set(&r, OID_802_3_MULTICAST_LIST, vec![1, 0, 0x5E, 0, 0, 1]);
    set(
        &r,
        OID_GEN_CURRENT_PACKET_FILTER,
        (NDIS_PACKET_TYPE_DIRECTED | NDIS_PACKET_TYPE_BROADCAST).to_le_bytes().to_vec(),
    );
    r.h.indicate_receive(0, frames.clone(), false).expect("receive");
    assert_eq!(received(b), vec![frames[0].clone(), frames[2].clone()]);
    assert_eq!(r.h.frames_filtered(0), 10);
    // The shaped path (several NET_BUFFERs per NBL) filters frame by frame.
    set(&r, OID_GEN_CURRENT_PACKET_FILTER, NDIS_PACKET_TYPE_MULTICAST.to_le_bytes().to_vec());
    let shape = crate::ndis::ReceiveShape { nbs_per_nbl: 4, mdls_per_nb: 2, data_offset: 0 };
    r.h.indicate_receive_shaped(0, 0, frames.clone(), true, shape).expect("receive");
    assert_eq!(received(b), vec![frames[3].clone()]);
    // Concurrent indications on both processors.
    set(&r, OID_GEN_CURRENT_PACKET_FILTER, NDIS_PACKET_TYPE_ALL_MULTICAST.to_le_bytes().to_vec());
    r.h.indicate_receive_concurrently(0, frames.clone(), frames.clone(), shape).expect("receive");
    let mut got = received(b);
    got.sort();
    assert_eq!(got, vec![frames[3].clone(), frames[3].clone(), frames[4].clone(), frames[4].clone()]);
    // What a backend delivers (a Wire from adapter 1, whose own filter stays 0).
    set(&r, OID_GEN_CURRENT_PACKET_FILTER, NDIS_PACKET_TYPE_PROMISCUOUS.to_le_bytes().to_vec());
    let filtered = r.h.frames_filtered(0);
    let (near, far) = crate::backend::Wire::pair();
    r.h.set_backend(0, Some(Box::new(near)));
    for f in &frames {
        crate::backend::Backend::transmit(&far, f);
    }
    assert_eq!(r.h.pump().expect("pump"), 6);
    assert_eq!(received(b), frames);
    assert_eq!(r.h.frames_filtered(0), filtered);
    let v = r.finish();
    assert!(v.is_empty(), "{v:#?}");
}

#[test]
fn without_enforcement_every_frame_is_delivered_and_none_counted() {
    let r = Rig::new(128, vec![stand_in(0)]);
    let b = r.binding();
    let frames = vec![to([2, 0, 0, 0, 0, 0x99], 1), vec![1, 2, 3]];
    r.h.indicate_receive(0, frames.clone(), false).expect("receive");
    assert_eq!(received(b), frames);
    assert_eq!(r.h.frames_filtered(0), 0);
    let v = r.finish();
    assert!(v.is_empty(), "{v:#?}");
}

#[test]
fn receive_metadata_reaches_the_driver_one_nbl_per_frame() {
    let proto = || Proto { data_size: 128, minor: 89, ..Proto::default() };
    let mut r = Rig::registering(HostConfig::default(), proto(), vec![stand_in(0)]);
    let b = r.binding();
    assert!(r.h.uro_enabled());
    let plain = ReceiveMeta::default();
    // Receive.TcpChecksumSucceeded | IpChecksumSucceeded | TcpChecksumValueInvalid (an RSC unit's checksum).
    let rsc = ReceiveMeta { checksum: 0x8 | 0x20 | 0x80, rsc: Some((5, 1)), ..plain };
    let uro = ReceiveMeta { checksum: 0x10 | 0x20, uro: Some((3, 1200)), ..plain };
    let looped = ReceiveMeta { loopback: true, ..plain };
    let frames = vec![(vec![1u8; 60], plain), (vec![2; 7000], rsc), (vec![3; 3650], uro), (vec![4; 60], looped)];
    assert_eq!(r.h.indicate_receive_meta(0, &frames).expect("receive"), 0);
    let ind = r.h.trace().into_iter().rev().find(|e| e.name == "ProtocolReceiveNetBufferLists").expect("indicated");
    assert!(ind.args.iter().any(|(n, v)| *n == "NumberOfNetBufferLists" && v == "0x4"), "{ind:?}");
    assert_eq!(received(b), frames.iter().map(|f| f.0.clone()).collect::<Vec<_>>());
    let meta = b.meta.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    assert_eq!(
        meta,
        vec![
            (0, 0, 0, 0),
            (0, 0xA8, 0, 5 | 1 << 16),
            (0, 0x30, 3 | 1200 << 16, 0),
            (NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET, 0, 0, 0),
        ]
    );
    let v = r.finish();
    assert!(v.is_empty(), "{v:#?}");
    // URO is switched off by a protocol below 6.89, by one that says it cannot take it, and below NDIS 6.89.
    let off = [
        (HostConfig::default(), Proto { minor: 30, ..proto() }),
        (HostConfig::default(), Proto { flags: NDIS_PROTOCOL_DRIVER_UDP_RSC_NOT_SUPPORTED, ..proto() }),
        (HostConfig { ndis_version: 0x0006_0056, ..HostConfig::default() }, Proto { minor: 86, ..proto() }),
    ];
    for (config, p) in off {
        let mut r = Rig::registering(config, p, vec![stand_in(0)]);
        let b = r.binding();
        assert!(!r.h.uro_enabled());
        assert!(matches!(r.h.indicate_receive_meta(0, &frames), Err(HostError::State(_))));
        assert!(received(b).is_empty(), "nothing of a refused indication is delivered");
        // TCP RSC and the rest still reach it.
        assert_eq!(r.h.indicate_receive_meta(0, &frames[..2]).expect("receive"), 0);
        assert_eq!(received(b).len(), 2);
        let v = r.finish();
        assert!(v.is_empty(), "{v:#?}");
    }
}

#[test]
fn receive_metadata_passes_the_packet_filter_frame_by_frame() {
    let cfg = AdapterConfig { enforce_packet_filter: true, ..stand_in(0) };
    let mut r = Rig::new(128, vec![cfg]);
    let b = r.binding();
    let (req, _buf) = oid_block(
        NdisRequestSetInformation,
        OID_GEN_CURRENT_PACKET_FILTER,
        &NDIS_PACKET_TYPE_DIRECTED.to_le_bytes(),
        4,
    );
    assert_eq!(oid(&r.h, b, req.addr()), 0);
    let mine = ReceiveMeta { checksum: 0x28, ..ReceiveMeta::default() };
    let frames = vec![
        (to([0xFF; 6], 1), ReceiveMeta { loopback: true, ..ReceiveMeta::default() }),
        (to(stand_in(0).mac, 2), mine),
    ];
    r.h.indicate_receive_meta(0, &frames).expect("receive");
    assert_eq!(received(b), vec![frames[1].0.clone()]);
    assert_eq!(*b.meta.lock().unwrap_or_else(std::sync::PoisonError::into_inner), vec![(0, 0x28, 0, 0)]);
    assert_eq!(r.h.frames_filtered(0), 1);
    let v = r.finish();
    assert!(v.is_empty(), "{v:#?}");
}

// ---------------------------------------------------------------- a blocked DeviceIoControl and CloseHandle

/// An export's address, as the driver's import table holds it.
fn export(name: &str) -> usize {
    crate::native::exports::table().into_iter().find(|e| e.1 == name).map(|e| e.2).expect("exported")
}

/// The stand-in's device: a SynchronizationEvent the OID completion sets, the binding, the request.
struct Control {
    event: HostBlock,
    binding: &'static Binding,
    request: (HostBlock, HostBlock),
    /// What the waiting dispatch saw: the KeWaitForSingleObject status and the OID completion status.
    seen: Mutex<Vec<(i32, i32)>>,
}

static CONTROL: Mutex<Option<&'static Control>> = Mutex::new(None);

fn control() -> &'static Control {
    CONTROL.lock().unwrap_or_else(std::sync::PoisonError::into_inner).expect("control device set up")
}

fn complete_irp(irp: usize, status: i32) {
    // SAFETY: a dispatched IRP the stand-in owns.
    unsafe { write_obj(irp + std::mem::offset_of!(IRP, IoStatus), status) };
    // SAFETY: IofCompleteRequest's win64 signature (PIRP, CCHAR).
    let complete: extern "win64" fn(usize, i8) = unsafe { std::mem::transmute(export("IofCompleteRequest")) };
    complete(irp, 0);
}

/// IRP_MJ_DEVICE_CONTROL: issues a set of OID_GEN_CURRENT_PACKET_FILTER (which the adapter pends), then waits
/// for its completion on a KEVENT at PASSIVE_LEVEL, as a driver's synchronous OID helper does.
extern "win64" fn d_ioctl(_device: usize, irp: usize) -> i32 {
    let c = control();
    let st = NdisOidRequest(c.binding.handle.load(SeqCst) as *mut c_void, c.request.0.as_ptr::<NDIS_OID_REQUEST>());
    let mut waited = 0;
    if st == NDIS_STATUS_PENDING {
        // SAFETY: KeWaitForSingleObject's win64 signature.
        let wait: extern "win64" fn(usize, i32, i8, u8, *mut i64) -> i32 =
            unsafe { std::mem::transmute(export("KeWaitForSingleObject")) };
        waited = wait(c.event.addr(), 0, 0, 0, std::ptr::null_mut());
    }
    let oid_status =
        c.binding.oids.lock().unwrap_or_else(std::sync::PoisonError::into_inner).last().map_or(st, |o| o.1);
    c.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((waited, oid_status));
    let status = if oid_status == NDIS_STATUS_REQUEST_ABORTED { 0xC000_0120u32 as i32 } else { 0 };
    complete_irp(irp, status);
    status
}

/// IRP_MJ_CLEANUP: cancels the OID request the blocked DeviceIoControl waits for.
extern "win64" fn d_cleanup(_device: usize, irp: usize) -> i32 {
    let c = control();
    NdisCancelOidRequest(c.binding.handle.load(SeqCst) as *mut c_void, 0x77 as *mut c_void);
    complete_irp(irp, 0);
    0
}

extern "win64" fn d_success(_device: usize, irp: usize) -> i32 {
    complete_irp(irp, 0);
    0
}

#[test]
fn closing_a_handle_cancels_the_oid_request_a_blocked_device_control_waits_for() {
    let cfg = AdapterConfig { oid_pends: true, enforce_packet_filter: true, ..stand_in(0) };
    let r = Rig::new(128, vec![cfg]);
    let b = r.binding();
    let event = HostBlock::new(64, 16).expect("memory");
    let request = oid_block(NdisRequestSetInformation, OID_GEN_CURRENT_PACKET_FILTER, &0x20u32.to_le_bytes(), 4);
    let c: &'static Control = Box::leak(Box::new(Control { event, binding: b, request, seen: Mutex::default() }));
    *CONTROL.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(c);
    let driver = r.h.driver_object();
    let ev = c.event.addr();
    let device = on(&r.h, 0, 0, move || {
        // SAFETY: KeInitializeEvent's win64 signature.
        let init: extern "win64" fn(usize, i32, u8) = unsafe { std::mem::transmute(export("KeInitializeEvent")) };
        init(ev, SynchronizationEvent, 0);
        let name: Vec<u16> = "\\Device\\StandIn".encode_utf16().collect();
        let mut us = UNICODE_STRING { Length: 30, MaximumLength: 30, Buffer: name.as_ptr().cast_mut() };
        let mut out: *mut DEVICE_OBJECT = std::ptr::null_mut();
        // SAFETY: IoCreateDevice's win64 signature.
        let create: extern "win64" fn(usize, u32, *mut UNICODE_STRING, u32, u32, u8, *mut *mut DEVICE_OBJECT) -> i32 =
            unsafe { std::mem::transmute(export("IoCreateDevice")) };
        assert_eq!(create(driver, 0, &mut us, 0x12, 0, 0, &mut out), 0);
        out as usize
    });
    let object = &r.h.inner.driver_object;
    crate::native::irp::set_major_function(object, IRP_MJ_CREATE, d_success as *const () as usize);
    crate::native::irp::set_major_function(object, IRP_MJ_CLOSE, d_success as *const () as usize);
    crate::native::irp::set_major_function(object, IRP_MJ_CLEANUP, d_cleanup as *const () as usize);
    crate::native::irp::set_major_function(object, IRP_MJ_DEVICE_CONTROL, d_ioctl as *const () as usize);
    // The OID completion handler sets the event the dispatch routine waits on.
    extern "win64" fn oid_done(binding: u64, request: u64, status: i32) {
        oid_complete(binding, request, status);
        // SAFETY: KeSetEvent's win64 signature.
        let set: extern "win64" fn(usize, i32, u8) -> i32 = unsafe { std::mem::transmute(export("KeSetEvent")) };
        set(control().event.addr(), 0, 0);
    }
    {
        let mut st = r.h.inner.state();
        let p = st.protocols.iter_mut().find(|p| !p.deregistered).expect("registered");
        p.chars.oid_request_complete = Some(oid_done as *const () as usize);
    }
    let h = r.h.open("\\Device\\StandIn").expect("open");
    let host = &r.h;
    let (ioctl, closed) = std::thread::scope(|s| {
        let ioctl = s.spawn(move || host.device_io_control(h, ctl_code_buffered(), &[], 0));
        assert!(eventually(|| host.pending_oid_requests() == 1), "the dispatch routine issued its OID request");
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!ioctl.is_finished(), "DeviceIoControl blocks in the driver until the request completes");
        // CloseHandle from this thread: IRP_MJ_CLEANUP reaches the driver while the other request is blocked.
        let t = std::time::Instant::now();
        let closed = host.close(h);
        assert!(t.elapsed() < std::time::Duration::from_secs(5), "close took {:?}", t.elapsed());
        (ioctl.join().expect("ioctl thread"), closed)
    });
    assert_eq!(closed.expect("close"), 0);
    assert_eq!(ioctl.expect("ioctl").status, 0xC000_0120u32 as i32, "STATUS_CANCELLED");
    assert_eq!(
        *c.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
        vec![(0, NDIS_STATUS_REQUEST_ABORTED)]
    );
    assert_eq!(r.h.pending_oid_requests(), 0);
    // A cancelled set changed nothing.
    assert_eq!(r.h.oid_state(0).map(|m| m.packet_filter), Some(0));
    let trace = r.h.trace();
    let names: Vec<&str> = trace.iter().map(|e| e.name.as_str()).collect();
    let pos = |n: &str| names.iter().position(|x| *x == n).unwrap_or(usize::MAX);
    assert!(pos("IRP_MJ_CLEANUP") < pos("ProtocolOidRequestComplete"), "{names:?}");
    on(&r.h, 0, 0, move || {
        // SAFETY: IoDeleteDevice's win64 signature.
        let delete: extern "win64" fn(usize) = unsafe { std::mem::transmute(export("IoDeleteDevice")) };
        delete(device);
    });
    *CONTROL.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    let v = r.finish();
    assert!(v.is_empty(), "{v:#?}");
}

/// A METHOD_BUFFERED control code of FILE_DEVICE_NETWORK (0x12), function 0x800, any access.
fn ctl_code_buffered() -> u32 {
    crate::io::ctl_code(0x12, 0x800, 0, 0)
}

#[test]
fn pended_sets_take_effect_only_when_they_complete_successfully() {
    let cfg = AdapterConfig { oid_pends: true, enforce_packet_filter: true, ..stand_in(0) };
    let mut r = Rig::new(128, vec![cfg]);
    let b = r.binding();
    let filter = |r: &Rig| r.h.oid_state(0).map(|m| (m.packet_filter, m.multicast.len()));
    let list = [[1u8, 0, 0x5E, 0, 0, 1], [0x33, 0x33, 0, 0, 0, 1]].concat();
    let (mc, _mcb) = oid_block(NdisRequestSetInformation, OID_802_3_MULTICAST_LIST, &list, 12);
    assert_eq!(oid(&r.h, b, mc.addr()), NDIS_STATUS_PENDING);
    let (bc, _bcb) = oid_block(
        NdisRequestSetInformation,
        OID_GEN_CURRENT_PACKET_FILTER,
        &NDIS_PACKET_TYPE_BROADCAST.to_le_bytes(),
        4,
    );
    assert_eq!(oid(&r.h, b, bc.addr()), NDIS_STATUS_PENDING);
    assert_eq!(filter(&r), Some((0, 0)), "nothing changes while the sets are pending");
    r.h.indicate_receive(0, vec![to([0xFF; 6], 1)], false).expect("receive");
    assert!(received(b).is_empty());
    assert_eq!(r.h.complete_oid_requests(Some(0)).expect("complete"), 2);
    assert_eq!(filter(&r), Some((NDIS_PACKET_TYPE_BROADCAST, 2)));
    r.h.indicate_receive(0, vec![to([0xFF; 6], 2)], false).expect("receive");
    assert_eq!(received(b), vec![to([0xFF; 6], 2)]);
    // Cancelled from the other processor: completed with NDIS_STATUS_REQUEST_ABORTED, and the filter stays.
    let (pr, _prb) = oid_block(
        NdisRequestSetInformation,
        OID_GEN_CURRENT_PACKET_FILTER,
        &NDIS_PACKET_TYPE_PROMISCUOUS.to_le_bytes(),
        4,
    );
    assert_eq!(oid(&r.h, b, pr.addr()), NDIS_STATUS_PENDING);
    on(&r.h, 1, DISPATCH, move || NdisCancelOidRequest(b.handle.load(SeqCst) as *mut c_void, 0x77 as *mut c_void));
    let oids = b.oids.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    assert_eq!(oids.last(), Some(&(pr.addr(), NDIS_STATUS_REQUEST_ABORTED)));
    assert_eq!(r.h.pending_oid_requests(), 0);
    assert_eq!(filter(&r), Some((NDIS_PACKET_TYPE_BROADCAST, 2)));
    // A set the adapter refuses completes with its status and changes nothing.
    let (bad, _badb) = oid_block(NdisRequestSetInformation, OID_GEN_CURRENT_PACKET_FILTER, &0x100u32.to_le_bytes(), 4);
    assert_eq!(oid(&r.h, b, bad.addr()), NDIS_STATUS_PENDING);
    r.h.complete_oid_requests(None).expect("complete");
    let oids = b.oids.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    assert_eq!(oids.last(), Some(&(bad.addr(), NDIS_STATUS_NOT_SUPPORTED)));
    assert_eq!(filter(&r), Some((NDIS_PACKET_TYPE_BROADCAST, 2)));
    let v = r.finish();
    assert!(v.is_empty(), "{v:#?}");
    // An adapter that completes by itself applies the set when it does.
    let delay = std::time::Duration::from_millis(20);
    let cfg = AdapterConfig { oid_pends: true, oid_delay: Some(delay), ..stand_in(0) };
    let r = Rig::new(128, vec![cfg]);
    let b = r.binding();
    let (set, _setb) = oid_block(NdisRequestSetInformation, OID_GEN_CURRENT_PACKET_FILTER, &0x9u32.to_le_bytes(), 4);
    assert_eq!(oid(&r.h, b, set.addr()), NDIS_STATUS_PENDING);
    assert_eq!(r.h.oid_state(0).map(|m| m.packet_filter), Some(0));
    assert!(eventually(|| r.h.oid_state(0).map(|m| m.packet_filter) == Some(0x9)));
    assert!(eventually(|| b.oids.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&(set.addr(), 0))));
    let v = r.finish();
    assert!(v.is_empty(), "{v:#?}");
}

fn pnp_codes(b: &Binding) -> Vec<(i32, Option<u32>)> {
    std::mem::take(&mut *b.pnp.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
        .into_iter()
        .map(|e| (e.0, e.3))
        .collect()
}

#[test]
fn a_low_power_state_pauses_the_binding_after_set_power_and_d0_restarts_it_before() {
    const D0: u32 = 1;
    const D2: u32 = 3;
    const D3: u32 = 4;
    let cfg = AdapterConfig { send_completion: SendCompletion::Deferred, ..stand_in(0) };
    let mut r = Rig::new(128, vec![cfg]);
    let b = r.binding();
    pnp_codes(b);
    // A send in flight is completed before the pause, as for any pause.
    let nbls = send(&r.h, b, 0, 0, vec![vec![1; 60]]);
    assert_eq!(r.h.set_power(0, D3).expect("power"), 0);
    assert_eq!(pnp_codes(b), [(0, Some(D3)), (8, None)]);
    assert_eq!(r.h.bindings()[0].state, NdisBindingState::Paused);
    assert_eq!(completions(b).len(), 1);
    // Nothing is received in a low-power state; a deeper state pauses nothing more.
    r.h.indicate_receive(0, vec![to([0xFF; 6], 1)], false).expect("receive");
    assert!(received(b).is_empty());
    assert_eq!(r.h.set_power(0, D2).expect("power"), 0);
    assert_eq!(pnp_codes(b), [(0, Some(D2))]);
    assert_eq!(r.h.set_power(0, D0).expect("power"), 0);
    assert_eq!(pnp_codes(b), [(9, None), (0, Some(D0))]);
    assert_eq!(r.h.bindings()[0].state, NdisBindingState::Running);
    // A binding paused before the transition stays paused at D0: NDIS restarts only what the power change paused.
    r.h.pause(0).expect("pause");
    r.h.set_power(0, D3).expect("power");
    r.h.set_power(0, D0).expect("power");
    assert_eq!(pnp_codes(b), [(8, None), (0, Some(D3)), (0, Some(D0))]);
    assert_eq!(r.h.bindings()[0].state, NdisBindingState::Paused);
    r.h.restart(0).expect("restart");
    free(&r.h, nbls);
    let v = r.finish();
    assert!(v.is_empty(), "{v:#?}");
    // A miniport with NDIS_MINIPORT_ATTRIBUTES_NO_PAUSE_ON_SUSPEND under a 6.30 protocol: no pause at all.
    let cfg = AdapterConfig { no_pause_on_suspend: true, ..stand_in(0) };
    let mut r = Rig::new(128, vec![cfg]);
    let b = r.binding();
    pnp_codes(b);
    r.h.set_power(0, D3).expect("power");
    assert_eq!(r.h.bindings()[0].state, NdisBindingState::Running);
    r.h.set_power(0, D0).expect("power");
    assert_eq!(pnp_codes(b), [(0, Some(D3)), (0, Some(D0))]);
    // An old protocol refusing NetEventSetPower is unbound.
    b.set_power_status.store(NDIS_STATUS_NOT_SUPPORTED as u32, SeqCst);
    assert_eq!(r.h.set_power(0, D3).expect("power"), NDIS_STATUS_NOT_SUPPORTED);
    assert!(r.h.bindings().is_empty());
    let v = r.finish();
    assert!(v.is_empty(), "{v:#?}");
}

#[test]
fn link_state_status_carries_a_whole_ndis_link_state_and_removal_queries_carry_no_buffer() {
    let mut r = Rig::new(128, vec![stand_in(0)]);
    let b = r.binding();
    r.h.indicate_link_state(0, false).expect("status");
    r.h.indicate_link_state(0, true).expect("status");
    let s = b.statuses.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let u32_at = |p: &[u8], at: usize| p.get(at..at + 4).map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]));
    let u64_at = |p: &[u8], at: usize| p.get(at..at + 8).and_then(|x| x.try_into().ok()).map(u64::from_le_bytes);
    let decoded: Vec<_> = s
        .iter()
        .map(|(_, code, p)| {
            (
                *code,
                p.len(),
                (p[0], p[1], u16::from_le_bytes([p[2], p[3]])),
                u32_at(p, 4),
                u32_at(p, 8),
                u64_at(p, 16),
                u64_at(p, 24),
                u32_at(p, 32),
                u32_at(p, 36),
            )
        })
        .collect();
    let header = (NDIS_OBJECT_TYPE_DEFAULT, NDIS_LINK_STATE_REVISION_1, NDIS_SIZEOF_LINK_STATE_REVISION_1);
    // (code, size, header, MediaConnectState, MediaDuplexState, Xmit, Rcv, PauseFunctions, AutoNegotiationFlags)
    assert_eq!(
        decoded,
        vec![
            (NDIS_STATUS_LINK_STATE, 40, header, Some(2), Some(2), Some(0), Some(0), Some(0), Some(0)),
            (
                NDIS_STATUS_LINK_STATE,
                40,
                header,
                Some(1),
                Some(2),
                Some(1_000_000_000),
                Some(1_000_000_000),
                Some(0),
                Some(0)
            ),
        ]
    );
    // OID_GEN_LINK_STATE answers the same structure.
    let (q, qb) = oid_block(NdisRequestQueryInformation, OID_GEN_LINK_STATE, &[], 40);
    assert_eq!(oid(&r.h, b, q.addr()), 0);
    // SAFETY: the test's 40-byte buffer.
    assert_eq!(unsafe { crate::native::memory::read_bytes(qb.addr(), 40) }, s[1].2);
    pnp_codes(b);
    assert_eq!(r.h.query_remove(0, true).expect("query"), 0);
    assert_eq!(r.h.query_remove(0, false).expect("cancel"), 0);
    assert_eq!(pnp_codes(b), [(NetEventQueryRemoveDevice, None), (NetEventCancelRemoveDevice, None)]);
    let trace = r.h.trace();
    assert!(trace.iter().any(|e| e.name == "ProtocolNetPnPEvent(NetEventQueryRemoveDevice)"));
    let v = r.finish();
    assert!(v.is_empty(), "{v:#?}");
}

#[test]
fn a_pended_query_fills_its_buffer_only_when_it_completes_successfully() {
    let cfg = AdapterConfig { oid_pends: true, ..stand_in(5) };
    let mut r = Rig::new(128, vec![cfg]);
    let b = r.binding();
    let read = |buf: &HostBlock| {
        // SAFETY: the test's 6-byte buffer.
        unsafe { crate::native::memory::read_bytes(buf.addr(), 6) }
    };
    let (q, qb) = oid_block(NdisRequestQueryInformation, OID_802_3_CURRENT_ADDRESS, &[0xEE; 6], 6);
    assert_eq!(oid(&r.h, b, q.addr()), NDIS_STATUS_PENDING);
    assert_eq!((read(&qb), query_result(&q)), (vec![0xEE; 6], (0, 0)), "nothing written while pending");
    r.h.complete_oid_requests(None).expect("complete");
    assert_eq!((read(&qb), query_result(&q)), (stand_in(5).mac.to_vec(), (6, 0)));
    // Cancelled: the buffer stays as it was.
    let (c, cb) = oid_block(NdisRequestQueryInformation, OID_802_3_CURRENT_ADDRESS, &[0xEE; 6], 6);
    assert_eq!(oid(&r.h, b, c.addr()), NDIS_STATUS_PENDING);
    on(&r.h, 1, DISPATCH, move || NdisCancelOidRequest(b.handle.load(SeqCst) as *mut c_void, 0x77 as *mut c_void));
    assert_eq!((read(&cb), query_result(&c)), (vec![0xEE; 6], (0, 0)));
    // Too short: BytesNeeded at once, the failure at completion.
    let (s, _sb) = oid_block(NdisRequestQueryInformation, OID_802_3_CURRENT_ADDRESS, &[], 4);
    assert_eq!(oid(&r.h, b, s.addr()), NDIS_STATUS_PENDING);
    r.h.complete_oid_requests(None).expect("complete");
    assert_eq!(query_result(&s), (0, 6));
    let oids = b.oids.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    assert_eq!(
        oids,
        vec![(q.addr(), 0), (c.addr(), NDIS_STATUS_REQUEST_ABORTED), (s.addr(), NDIS_STATUS_BUFFER_TOO_SHORT)]
    );
    let v = r.finish();
    assert!(v.is_empty(), "{v:#?}");
}

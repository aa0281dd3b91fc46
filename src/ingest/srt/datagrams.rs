//! UDP datagrams in batches for the SRT receive threads. One `recvmmsg`
//! takes up to [`BATCH`] datagrams into one buffer, and each datagram is
//! then a `Bytes` slice of it (no copy: the SRT payload handed to a
//! session is that slice). One `sendmmsg` sends what a round of the
//! receive loop produced (ACKs, handshake answers). The sockets of one
//! port are bound with `SO_REUSEPORT`, so the kernel spreads callers over
//! the receive threads by address and always gives one caller to the
//! same thread.
//!
//! Each socket asks the kernel for every datagram's arrival time
//! (`SO_TIMESTAMPNS`) and for its count of datagrams dropped for want of
//! buffer (`SO_RXQ_OVFL`): the age of the first datagram a round takes
//! is how far the thread is behind its socket ([`Datagrams::behind`]).

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use nix::cmsg_space;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    recvmmsg, sendmmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, MultiHeaders, RecvMsg,
    SockaddrStorage,
};
use nix::sys::time::TimeSpec;
use socket2::{Domain, Protocol, Socket, Type};
use srt_protocol::packet::Packet;

/// Datagrams one system call takes or sends at most.
pub(super) const BATCH: usize = 32;
/// Room for one datagram: SRT packets fit a 1500-byte MTU (payload at
/// most 1456 bytes). A longer datagram is not SRT and is dropped.
const SLOT: usize = 1500;
/// Kernel receive buffer asked for per socket: a receive thread wakes
/// every few milliseconds, and a burst of many streams must wait in the
/// kernel meanwhile. Linux caps it at `net.core.rmem_max` unless the
/// server may raise it (CAP_NET_ADMIN).
const RECEIVE_BUFFER: usize = 16 * 1024 * 1024;
const SEND_BUFFER: usize = 1024 * 1024;

/// One received datagram.
pub(super) struct Datagram {
    pub from: SocketAddr,
    pub data: Bytes,
}

/// Binds `count` sockets on one address (the first picks the port when
/// it is 0); each becomes one receive thread's.
pub(super) fn bind_group(addr: SocketAddr, count: usize) -> io::Result<Vec<UdpSocket>> {
    let first = bind_one(addr)?;
    let bound = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..count {
        sockets.push(bind_one(bound)?);
    }
    Ok(sockets)
}

fn bind_one(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    if setsockopt(&socket, sockopt::RcvBufForce, &RECEIVE_BUFFER).is_err() {
        socket.set_recv_buffer_size(RECEIVE_BUFFER)?;
    }
    socket.set_send_buffer_size(SEND_BUFFER)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let granted = socket.recv_buffer_size()?;
    if granted < RECEIVE_BUFFER {
        tracing::debug!(
            granted,
            wanted = RECEIVE_BUFFER,
            "SRT socket receive buffer capped by net.core.rmem_max"
        );
    }
    Ok(socket.into())
}

/// A receive thread's socket with its batch headers.
pub(super) struct Datagrams {
    socket: UdpSocket,
    received: MultiHeaders<SockaddrStorage>,
    sent: MultiHeaders<SockaddrStorage>,
    /// Serialized packets waiting for [`Datagrams::send`].
    out: BytesMut,
    out_packets: Vec<(usize, SocketAddr)>,
    /// A receive buffer no datagram was taken into yet.
    spare: Option<BytesMut>,
    /// When the first datagram of the last [`Datagrams::receive`] that
    /// took any arrived.
    first_arrival: Option<SystemTime>,
    /// The kernel's count of datagrams it dropped on this socket, as of
    /// the last datagram taken.
    dropped: u32,
}

impl Datagrams {
    /// Takes a bound socket; asks the kernel for arrival times and drop
    /// counts on it.
    pub fn new(socket: UdpSocket) -> io::Result<Self> {
        setsockopt(&socket, sockopt::ReceiveTimestampns, &true)?;
        setsockopt(&socket, sockopt::RxqOvfl, &1)?;
        Ok(Self {
            socket,
            received: MultiHeaders::preallocate(BATCH, Some(cmsg_space!(TimeSpec, u32))),
            sent: MultiHeaders::preallocate(BATCH, None),
            out: BytesMut::new(),
            out_packets: Vec::new(),
            spare: None,
            first_arrival: None,
            dropped: 0,
        })
    }

    /// How long the first datagram of the last receive that took any
    /// had waited in the socket (at `now`); taking it forgets it.
    pub fn behind(&mut self, now: SystemTime) -> Option<Duration> {
        let arrived = self.first_arrival.take()?;
        Some(now.duration_since(arrived).unwrap_or_default())
    }

    /// Datagrams the kernel dropped on this socket since it was bound
    /// (as of the last one taken).
    pub fn dropped(&self) -> u32 {
        self.dropped
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Waits at most `timeout` for a datagram to arrive.
    pub fn wait(&self, timeout: Duration) -> io::Result<()> {
        let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(self.socket.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Takes up to [`BATCH`] queued datagrams into `into`; returns how
    /// many (0: none queued).
    pub fn receive(&mut self, into: &mut Vec<Datagram>) -> io::Result<usize> {
        let mut buffer = self
            .spare
            .take()
            .unwrap_or_else(|| BytesMut::zeroed(BATCH * SLOT));
        let mut got = [(0usize, None::<SocketAddr>); BATCH];
        let (mut first_arrival, mut dropped) = (None, None);
        let received = {
            let mut slices: Vec<[IoSliceMut<'_>; 1]> = buffer
                .chunks_mut(SLOT)
                .map(|slot| [IoSliceMut::new(slot)])
                .collect();
            recvmmsg(
                self.socket.as_raw_fd(),
                &mut self.received,
                slices.iter_mut(),
                MsgFlags::MSG_DONTWAIT,
                None,
            )
            .map(|results| {
                let mut count = 0;
                for (slot, message) in results.enumerate() {
                    count = slot + 1;
                    // The first datagram is the oldest; the drop count
                    // is read from the last.
                    let (arrival, drops) = control(&message);
                    if slot == 0 {
                        first_arrival = arrival;
                    }
                    dropped = drops.or(dropped);
                    if !message.flags.contains(MsgFlags::MSG_TRUNC) {
                        got[slot] = (message.bytes, message.address.and_then(socket_addr));
                    }
                }
                count
            })
        };
        let count = match received {
            Ok(count) => count,
            Err(e) => {
                self.spare = Some(buffer);
                return match e {
                    Errno::EAGAIN | Errno::EINTR => Ok(0),
                    e => Err(e.into()),
                };
            }
        };
        if count > 0 {
            self.first_arrival = self.first_arrival.or(first_arrival);
        }
        if let Some(dropped) = dropped {
            self.dropped = dropped;
        }
        let buffer = buffer.freeze();
        for (slot, (len, from)) in got.iter().take(count).enumerate() {
            if let Some(from) = from {
                let at = slot * SLOT;
                into.push(Datagram {
                    from: *from,
                    data: buffer.slice(at..at + len),
                });
            }
        }
        Ok(count)
    }

    /// Queues a packet for the next [`Datagrams::send`].
    pub fn queue(&mut self, (packet, to): (Packet, SocketAddr)) {
        let start = self.out.len();
        packet.serialize(&mut self.out);
        self.out_packets.push((self.out.len() - start, to));
    }

    /// Sends every queued packet, [`BATCH`] per system call. A full
    /// kernel send buffer drops the rest (SRT retransmits what matters).
    pub fn send(&mut self) {
        let out = std::mem::take(&mut self.out).freeze();
        let packets = std::mem::take(&mut self.out_packets);
        let mut at = 0;
        for chunk in packets.chunks(BATCH) {
            let mut slices = Vec::with_capacity(chunk.len());
            let mut addresses = Vec::with_capacity(chunk.len());
            for &(len, to) in chunk {
                slices.push([IoSlice::new(&out[at..at + len])]);
                addresses.push(Some(SockaddrStorage::from(to)));
                at += len;
            }
            let mut sent_so_far = 0;
            while sent_so_far < slices.len() {
                match sendmmsg(
                    self.socket.as_raw_fd(),
                    &mut self.sent,
                    &slices[sent_so_far..],
                    &addresses[sent_so_far..],
                    [],
                    MsgFlags::MSG_DONTWAIT,
                ) {
                    Ok(results) => {
                        let sent = results.count();
                        if sent == 0 {
                            break;
                        }
                        sent_so_far += sent;
                    }
                    Err(Errno::EINTR) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, dropped = slices.len() - sent_so_far, "SRT send");
                        break;
                    }
                }
            }
        }
        // Keep the buffer's allocation for the next round when nothing
        // else holds it.
        if let Ok(mut reusable) = out.try_into_mut() {
            reusable.clear();
            self.out = reusable;
        }
    }
}

/// A datagram's arrival time and the socket's drop count, from its
/// control messages (the drop count comes only once there were drops).
fn control(message: &RecvMsg<'_, '_, SockaddrStorage>) -> (Option<SystemTime>, Option<u32>) {
    let (mut arrival, mut dropped) = (None, None);
    let Ok(messages) = message.cmsgs() else {
        return (arrival, dropped);
    };
    for control in messages {
        match control {
            ControlMessageOwned::ScmTimestampns(at) => {
                let since_epoch = Duration::new(
                    u64::try_from(at.tv_sec()).unwrap_or(0),
                    u32::try_from(at.tv_nsec()).unwrap_or(0),
                );
                arrival = SystemTime::UNIX_EPOCH.checked_add(since_epoch);
            }
            ControlMessageOwned::RxqOvfl(count) => dropped = Some(count),
            _ => {}
        }
    }
    (arrival, dropped)
}

fn socket_addr(address: SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    address
        .as_sockaddr_in6()
        .map(|v6| SocketAddr::V6((*v6).into()))
}

//! The SRT publishers of the load, driven the way the server drives its
//! callers: one thread runs every publisher's SRT state machine
//! (srt-protocol, no async runtime) on a fixed tick. Each tick it reads
//! what each publisher's socket has queued without blocking (ACKs, NAKs,
//! handshake answers), hands the publisher the media chunks now due,
//! runs its timers and sends the packets that produced in one `sendmmsg`.
//!
//! Each publisher has its own UDP socket, connected to the server: the
//! server tells callers apart by their address. srt-tokio's task per
//! connection, with its timers and a wake-up per packet, cost the load
//! two thirds of a core at 162 streams, a third of the machine the
//! server is measured on.

use std::io::{ErrorKind, IoSlice};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use nix::errno::Errno;
use nix::sys::socket::{sendmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
use srt_protocol::connection::DuplexConnection;
use srt_protocol::options::SocketOptions;
use srt_protocol::packet::{Packet, SeqNumber};
use srt_protocol::protocol::pending_connection::connect::Connect;
use srt_protocol::protocol::pending_connection::ConnectionResult;
use srt_protocol::settings::ConnInitSettings;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::load::{PublisherStats, SRT_LATENCY};
use crate::media::Media;

/// How often the thread wakes: the media is paced to it, and the
/// server's receive threads run on the same tick.
const TICK: Duration = Duration::from_millis(10);
/// A handshake not answered this long is started again.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);
/// Handshake packets are repeated this often until answered.
const HANDSHAKE_REPEAT: Duration = Duration::from_millis(100);
/// Connection attempts before giving up (a listener still starting,
/// such as ffmpeg's, does not answer at first).
const ATTEMPTS: u32 = 50;
/// How long a closing connection may take to say so to the server.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Packets one `sendmmsg` takes.
const BATCH: usize = 32;

/// One SRT publisher, as the step asks for it.
pub struct SrtPublish {
    pub media: Arc<Media>,
    pub addr: SocketAddr,
    pub stream_id: Option<String>,
    pub stats: Arc<PublisherStats>,
    /// When to connect.
    pub start: Instant,
    pub stop: CancellationToken,
}

/// Hands `publish` to the load's SRT thread (started on first use); the
/// receiver says when the publisher is done, with its error if any.
pub fn start(publish: SrtPublish) -> oneshot::Receiver<anyhow::Result<()>> {
    static THREAD: OnceLock<mpsc::Sender<Caller>> = OnceLock::new();
    let (done, finished) = oneshot::channel();
    let caller = Caller {
        publish,
        done: Some(done),
        state: State::Waiting,
        attempts: 0,
        pace: Pace::default(),
    };
    let thread = THREAD.get_or_init(|| {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("load-srt".into())
            .spawn(move || run(rx))
            .expect("load SRT thread");
        tx
    });
    thread.send(caller).expect("load SRT thread runs");
    finished
}

/// Where a publisher is in its media.
#[derive(Default)]
struct Pace {
    /// When the first chunk went out.
    origin: Option<Instant>,
    next: usize,
    next_keyframe: usize,
}

enum State {
    /// Until its start time.
    Waiting,
    Connecting {
        socket: UdpSocket,
        connect: Box<Connect>,
        since: Instant,
        last_sent: Instant,
    },
    Sending {
        socket: UdpSocket,
        srt: Box<DuplexConnection>,
    },
    Closing {
        socket: UdpSocket,
        srt: Box<DuplexConnection>,
        since: Instant,
    },
    /// Between two connection attempts.
    Retrying {
        at: Instant,
    },
    Done,
}

struct Caller {
    publish: SrtPublish,
    done: Option<oneshot::Sender<anyhow::Result<()>>>,
    state: State,
    attempts: u32,
    pace: Pace,
}

fn run(new_callers: mpsc::Receiver<Caller>) {
    let mut callers: Vec<Caller> = vec![];
    let mut out = Outbox::default();
    let mut next_tick = Instant::now();
    loop {
        if callers.is_empty() {
            // Nothing to drive: sleep until a publisher comes.
            match new_callers.recv() {
                Ok(caller) => callers.push(caller),
                Err(_) => return,
            }
            next_tick = Instant::now();
        }
        loop {
            match new_callers.try_recv() {
                Ok(caller) => callers.push(caller),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) if callers.is_empty() => return,
                Err(mpsc::TryRecvError::Disconnected) => break,
            }
        }
        let now = Instant::now();
        for caller in &mut callers {
            caller.step(now, &mut out);
        }
        callers.retain(|c| !matches!(c.state, State::Done));
        next_tick += TICK;
        let now = Instant::now();
        if next_tick > now {
            std::thread::sleep(next_tick - now);
        } else {
            next_tick = now;
        }
    }
}

impl Caller {
    fn step(&mut self, now: Instant, out: &mut Outbox) {
        let state = std::mem::replace(&mut self.state, State::Done);
        self.state = match state {
            State::Waiting | State::Retrying { .. } if self.publish.stop.is_cancelled() => {
                self.finish(Ok(()))
            }
            State::Waiting if now < self.publish.start => State::Waiting,
            State::Retrying { at } if now < at => State::Retrying { at },
            State::Waiting | State::Retrying { .. } => self.connect(now, out),
            State::Connecting {
                socket,
                connect,
                since,
                last_sent,
            } => self.handshake(now, out, socket, connect, since, last_sent),
            State::Sending { socket, mut srt } => {
                receive(&socket, now, &mut srt);
                if self.publish.stop.is_cancelled()
                    || self.pace.next >= self.publish.media.chunks.len()
                {
                    srt.handle_data_input(now, None);
                    flush(&socket, now, &mut srt, out);
                    State::Closing {
                        socket,
                        srt,
                        since: now,
                    }
                } else if !srt.is_open() {
                    self.finish(Err(anyhow::anyhow!("the server ended the SRT connection")))
                } else {
                    self.feed(now, &mut srt);
                    flush(&socket, now, &mut srt, out);
                    State::Sending { socket, srt }
                }
            }
            State::Closing {
                socket,
                mut srt,
                since,
            } => {
                receive(&socket, now, &mut srt);
                flush(&socket, now, &mut srt, out);
                if srt.is_open() && now - since < CLOSE_GRACE {
                    State::Closing { socket, srt, since }
                } else {
                    self.finish(Ok(()))
                }
            }
            State::Done => State::Done,
        };
    }

    /// A new socket and the first handshake packet.
    fn connect(&mut self, now: Instant, out: &mut Outbox) -> State {
        self.attempts += 1;
        let socket = match connected_socket(self.publish.addr) {
            Ok(socket) => socket,
            Err(e) => return self.finish(Err(anyhow::anyhow!("SRT socket: {e}"))),
        };
        let mut options = SocketOptions::default();
        options.sender.peer_latency = SRT_LATENCY;
        options.receiver.latency = SRT_LATENCY;
        let mut connect = Box::new(Connect::new(
            self.publish.addr,
            socket
                .local_addr()
                .map_or(self.publish.addr.ip(), |a| a.ip()),
            ConnInitSettings::from(options),
            self.publish.stream_id.clone(),
            SeqNumber::new_truncate(rand::random::<u32>()),
        ));
        if let ConnectionResult::SendPacket((packet, _)) = connect.handle_tick(now) {
            out.send(&socket, [packet]);
        }
        State::Connecting {
            socket,
            connect,
            since: now,
            last_sent: now,
        }
    }

    fn handshake(
        &mut self,
        now: Instant,
        out: &mut Outbox,
        socket: UdpSocket,
        mut connect: Box<Connect>,
        since: Instant,
        mut last_sent: Instant,
    ) -> State {
        if self.publish.stop.is_cancelled() {
            return self.finish(Ok(()));
        }
        let mut results = vec![];
        while let Some(packet) = receive_one(&socket, self.publish.addr) {
            match packet {
                Ok(packet) => results.push(connect.handle_packet(Ok(packet), now)),
                // No listener on the port yet.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
                Err(e) => return self.finish(Err(anyhow::anyhow!("SRT receive: {e}"))),
            }
        }
        if now - last_sent >= HANDSHAKE_REPEAT {
            results.push(connect.handle_tick(now));
            last_sent = now;
        }
        for result in results {
            match result {
                ConnectionResult::SendPacket((packet, _)) => out.send(&socket, [packet]),
                ConnectionResult::Connected(packet, connection) => {
                    if let Some((packet, _)) = packet {
                        out.send(&socket, [packet]);
                    }
                    return State::Sending {
                        socket,
                        srt: Box::new(DuplexConnection::new(connection)),
                    };
                }
                ConnectionResult::Reject(packet, reason) => {
                    if let Some((packet, _)) = packet {
                        out.send(&socket, [packet]);
                    }
                    return self.finish(Err(anyhow::anyhow!("SRT connection rejected: {reason}")));
                }
                ConnectionResult::Failure(e) => return self.retry(now, e.to_string()),
                _ => {}
            }
        }
        if now - since >= HANDSHAKE_TIMEOUT {
            return self.retry(now, "handshake timed out".into());
        }
        State::Connecting {
            socket,
            connect,
            since,
            last_sent,
        }
    }

    fn retry(&mut self, now: Instant, why: String) -> State {
        if self.attempts >= ATTEMPTS {
            let addr = self.publish.addr;
            return self.finish(Err(anyhow::anyhow!("SRT connect to {addr}: {why}")));
        }
        State::Retrying {
            at: now + Duration::from_millis(100),
        }
    }

    /// Gives the connection the chunks due by now (time runs from the
    /// first chunk, whenever the connection was made), and notes what was
    /// sent, how late, and when each keyframe went.
    fn feed(&mut self, now: Instant, srt: &mut DuplexConnection) {
        let (media, stats) = (&self.publish.media, &self.publish.stats);
        let elapsed = now - *self.pace.origin.get_or_insert(now);
        let from = self.pace.next;
        while self.pace.next < media.chunks.len() && media.chunks[self.pace.next].at <= elapsed {
            srt.handle_data_input(now, Some((now, media.chunk_bytes(self.pace.next))));
            self.pace.next += 1;
        }
        let next = self.pace.next;
        if from == next {
            return;
        }
        stats.note_sent(media, from..next, elapsed, &mut self.pace.next_keyframe);
    }

    fn finish(&mut self, result: anyhow::Result<()>) -> State {
        if let Some(done) = self.done.take() {
            let _ = done.send(result);
        }
        State::Done
    }
}

/// A UDP socket on loopback's side of `server`, connected to it.
fn connected_socket(server: SocketAddr) -> std::io::Result<UdpSocket> {
    let local: SocketAddr = if server.is_ipv4() {
        "127.0.0.1:0".parse().unwrap()
    } else {
        "[::1]:0".parse().unwrap()
    };
    let socket = UdpSocket::bind(local)?;
    socket.connect(server)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// One datagram queued on `socket` (connected to `from`) as an SRT
/// packet; `None` when nothing is queued. Datagrams that do not parse are
/// skipped.
fn receive_one(
    socket: &UdpSocket,
    from: SocketAddr,
) -> Option<std::io::Result<(Packet, SocketAddr)>> {
    let mut buffer = [0u8; 1500];
    loop {
        match socket.recv(&mut buffer) {
            Ok(len) => {
                let mut data = &buffer[..len];
                if let Ok(packet) = Packet::parse(&mut data, from.is_ipv6()) {
                    return Some(Ok((packet, from)));
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Some(Err(e)),
        }
    }
}

/// Everything the socket has queued, into the connection.
fn receive(socket: &UdpSocket, now: Instant, srt: &mut DuplexConnection) {
    let from = srt.settings().remote;
    while let Some(packet) = receive_one(socket, from) {
        match packet {
            Ok(packet) => srt.handle_packet_input(now, Ok(packet)),
            // The server's port is gone: SRT's idle timeout ends it.
            Err(_) => return,
        }
    }
}

/// Runs the connection's timers and sends what it has to send.
fn flush(socket: &UdpSocket, now: Instant, srt: &mut DuplexConnection, out: &mut Outbox) {
    srt.check_timers(now);
    out.send(
        socket,
        std::iter::from_fn(|| srt.next_packet(now).map(|(p, _)| p)),
    );
}

/// Serialises packets and sends them, [`BATCH`] per system call.
struct Outbox {
    bytes: BytesMut,
    lengths: Vec<usize>,
    headers: MultiHeaders<SockaddrStorage>,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            bytes: BytesMut::new(),
            lengths: vec![],
            headers: MultiHeaders::preallocate(BATCH, None),
        }
    }
}

impl Outbox {
    fn send(&mut self, socket: &UdpSocket, packets: impl IntoIterator<Item = Packet>) {
        for packet in packets {
            let start = self.bytes.len();
            packet.serialize(&mut self.bytes);
            self.lengths.push(self.bytes.len() - start);
        }
        if self.lengths.is_empty() {
            return;
        }
        let bytes: Bytes = self.bytes.split().freeze();
        let mut at = 0;
        for lengths in self.lengths.chunks(BATCH) {
            let slices: Vec<[IoSlice; 1]> = lengths
                .iter()
                .map(|&len| {
                    let slice = [IoSlice::new(&bytes[at..at + len])];
                    at += len;
                    slice
                })
                .collect();
            let addresses = vec![None; slices.len()];
            let mut sent = 0;
            while sent < slices.len() {
                match sendmmsg(
                    socket.as_raw_fd(),
                    &mut self.headers,
                    &slices[sent..],
                    &addresses[sent..],
                    [],
                    MsgFlags::MSG_DONTWAIT,
                ) {
                    Ok(results) => match results.count() {
                        0 => break,
                        count => sent += count,
                    },
                    Err(Errno::EINTR) => {}
                    // A full send buffer or a port not yet listening: SRT
                    // sends again what matters.
                    Err(_) => break,
                }
            }
        }
        self.lengths.clear();
    }
}

//! One SRT receive thread: a socket of the SRT port, the handshakes on it
//! (srt-protocol's `MultiplexListener`) and every connection it accepted
//! (srt-protocol's `DuplexConnection`, the SRT state machine without I/O).
//!
//! The thread wakes every [`TICK`], not per datagram: it takes the
//! queued datagrams in batches (for at most [`RECEIVE_BUDGET`], then it
//! goes round again without sleeping), runs the connections' timers (ACK, NAK,
//! TSBPD release, peer idle), sends the answers in one batch and, every
//! [`DELIVERY`], hands each connection's released payloads to its session
//! in one message (one wake-up of the session, not one per packet). SRT's
//! own latency window (120 ms by default) absorbs the wait.
//!
//! Nothing here waits on a session: a session that falls behind loses its
//! own payloads (counted and logged) and never holds up the thread or
//! another stream. A session that ends (its stream deleted, its media
//! refused) closes its SRT connection.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use srt_protocol::connection::{Connection, DuplexConnection};
use srt_protocol::listener::{
    AccessControlResponse, Action, Input, MultiplexListener, NextInputContext, ResultOf, SessionId,
};
use srt_protocol::packet::{
    ControlTypes, HandshakeVsInfo, KeyingMaterialMessage, Packet, RejectReason, ServerRejectReason,
    ShakeType, SrtControlPacket,
};
use srt_protocol::settings::{ConnInitSettings, KeySettings};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::datagrams::{Datagram, Datagrams, BATCH};
use super::encryption::CallerKey;
use crate::headroom::{Headroom, Persistent};

/// How often the thread wakes: SRT's ACK period (a full ACK every
/// 10 ms), so ACKs leave on time; each wake costs the same whatever it
/// finds, and at 8 streams a 5 ms tick spent a third more of the thread's
/// CPU (0.19 % of a core per stream against 0.13 %; 20 ms: 0.11 %).
const TICK: Duration = Duration::from_millis(10);
/// Longest a round takes datagrams before it runs the connections'
/// timers: a socket with seconds of datagrams queued must not hold back
/// the ACKs (callers give up on a receiver they hear nothing from for
/// 5 s, all of them at once).
const RECEIVE_BUDGET: Duration = Duration::from_millis(5);
/// How often released payloads go to the sessions.
const DELIVERY: Duration = Duration::from_millis(20);
/// Idle wait when the thread has no connection and no handshake.
const IDLE_WAIT: Duration = Duration::from_millis(250);
/// A handshake not finished by then is forgotten.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress one thread keeps at most (a flood of forged
/// handshakes is then ignored, not remembered).
const MAX_HANDSHAKES: usize = 1024;
/// Longest the thread keeps closing connections at shutdown.
const CLOSE_GRACE: Duration = Duration::from_millis(500);
/// Nice value the thread asks for (granted with CAP_SYS_NICE): when the
/// machine is saturated, taking datagrams from the socket comes before
/// the work done with them.
const RECEIVE_NICE: i32 = -5;

/// Payloads (MPEG-TS, in order) released for one session at once.
pub(super) struct Payloads {
    /// When they were handed over (the session measures its queue).
    pub sent: Instant,
    pub data: Vec<Bytes>,
}

/// A caller asking to publish, for the acceptor to decide.
pub(super) struct AccessRequest {
    pub remote: SocketAddr,
    pub stream_id: Option<String>,
    /// What the caller offers for SRT's encryption.
    pub key: CallerKey,
    pub reply: std_mpsc::Sender<AccessDecision>,
}

pub(super) struct AccessDecision {
    pub remote: SocketAddr,
    pub verdict: Verdict,
}

pub(super) enum Verdict {
    /// The session's input, the stream's name for the logs, and the
    /// encryption the connection takes.
    Accept {
        media: mpsc::Sender<Payloads>,
        stream: String,
        key: Option<KeySettings>,
    },
    Reject(RejectReason),
}

/// An accepted connection.
struct Publisher {
    srt: DuplexConnection,
    /// `None` once the session has gone: the connection is closing.
    media: Option<mpsc::Sender<Payloads>>,
    released: Vec<Bytes>,
    stream: String,
    dropped: u64,
}

impl Publisher {
    /// Hands the released payloads to the session; closes the connection
    /// when the session has gone.
    fn deliver(&mut self, now: Instant) {
        let Some(media) = &self.media else {
            self.released.clear();
            return;
        };
        if media.is_closed() {
            self.close(now);
            return;
        }
        if self.released.is_empty() {
            return;
        }
        let payloads = Payloads {
            sent: now,
            data: std::mem::take(&mut self.released),
        };
        match media.try_send(payloads) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(lost)) => {
                if self.dropped == 0 {
                    tracing::warn!(stream = %self.stream, "session behind its SRT input: dropping payloads");
                }
                self.dropped += lost.data.len() as u64;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.close(now),
        }
    }

    /// Lets the session go and tells the caller the connection ends.
    fn close(&mut self, now: Instant) {
        if self.media.take().is_some() {
            self.srt.handle_data_input(now, None);
        }
        self.released.clear();
    }
}

/// A caller in its handshake.
struct Handshake {
    /// When it was first heard.
    since: Instant,
    /// The keying material (KMREQ) of its conclusion handshake, for the
    /// acceptor to check its passphrase with.
    key_material: Option<KeyingMaterialMessage>,
}

impl Handshake {
    /// Keeps what the acceptor needs of a handshake packet.
    fn note(&mut self, packet: &Packet) {
        let Packet::Control(control) = packet else {
            return;
        };
        let ControlTypes::Handshake(shake) = &control.control_type else {
            return;
        };
        if shake.shake_type != ShakeType::Conclusion {
            return;
        }
        if let HandshakeVsInfo::V5(info) = &shake.info {
            self.key_material = match &info.ext_km {
                Some(SrtControlPacket::KeyRefreshRequest(km)) => Some(km.clone()),
                _ => None,
            };
        }
    }
}

pub(super) struct Shard {
    io: Datagrams,
    ipv6: bool,
    listener: MultiplexListener,
    publishers: HashMap<SocketAddr, Publisher>,
    /// Callers in a handshake.
    handshakes: HashMap<SocketAddr, Handshake>,
    /// Accepted by the acceptor, waiting for the handshake to finish.
    accepted: HashMap<SocketAddr, (mpsc::Sender<Payloads>, String)>,
    requests: mpsc::Sender<AccessRequest>,
    decisions: std_mpsc::Receiver<AccessDecision>,
    reply: std_mpsc::Sender<AccessDecision>,
    received: Vec<Datagram>,
    /// Told how far behind its socket the thread is.
    headroom: Arc<Headroom>,
    input_lag: Persistent,
    /// The socket's drop count already told.
    dropped: u32,
    shutdown: CancellationToken,
}

impl Shard {
    pub fn new(
        io: Datagrams,
        settings: ConnInitSettings,
        requests: mpsc::Sender<AccessRequest>,
        headroom: Arc<Headroom>,
        shutdown: CancellationToken,
    ) -> std::io::Result<Self> {
        let local = io.local_addr()?;
        let (reply, decisions) = std_mpsc::channel();
        Ok(Self {
            io,
            ipv6: local.is_ipv6(),
            listener: MultiplexListener::new(Instant::now(), local, settings),
            publishers: HashMap::new(),
            handshakes: HashMap::new(),
            accepted: HashMap::new(),
            requests,
            decisions,
            reply,
            received: Vec::with_capacity(BATCH),
            headroom,
            input_lag: Persistent::new(Instant::now()),
            dropped: 0,
            shutdown,
        })
    }

    /// Runs until shutdown, then closes every connection.
    pub fn run(mut self) {
        raise_priority();
        let mut next_delivery = Instant::now();
        let mut next_sweep = Instant::now();
        let mut stopping_since = None;
        loop {
            let started = Instant::now();
            if self.publishers.is_empty() && self.handshakes.is_empty() {
                if let Err(e) = self.io.wait(IDLE_WAIT) {
                    tracing::error!(error = %e, "SRT socket");
                }
            }
            let more_queued = self.receive_round();
            self.tell_headroom();
            let now = Instant::now();
            self.take_decisions(now);
            let deliver = now >= next_delivery;
            if deliver {
                next_delivery = now + DELIVERY;
            }
            self.run_connections(now, deliver);
            if now >= next_sweep {
                self.forget_stale_handshakes(now);
                next_sweep = now + Duration::from_secs(1);
            }
            if self.shutdown.is_cancelled() {
                let since = *stopping_since.get_or_insert_with(|| {
                    for publisher in self.publishers.values_mut() {
                        publisher.close(now);
                    }
                    now
                });
                if self.publishers.is_empty() || now - since > CLOSE_GRACE {
                    self.io.send();
                    break;
                }
            }
            self.io.send();
            let spent = started.elapsed();
            if !more_queued
                && spent < TICK
                && !(self.publishers.is_empty() && self.handshakes.is_empty())
            {
                std::thread::sleep(TICK - spent);
            }
        }
        tracing::debug!("SRT receive thread stopped");
    }

    /// Takes and handles the queued datagrams, for at most
    /// [`RECEIVE_BUDGET`]; says whether some were left queued.
    fn receive_round(&mut self) -> bool {
        let started = Instant::now();
        loop {
            let mut received = std::mem::take(&mut self.received);
            let count = match self.io.receive(&mut received) {
                Ok(count) => count,
                Err(e) => {
                    tracing::error!(error = %e, "SRT receive");
                    0
                }
            };
            let now = Instant::now();
            for datagram in received.drain(..) {
                self.on_datagram(now, datagram);
            }
            self.received = received;
            if count < BATCH {
                return false;
            }
            if now.duration_since(started) >= RECEIVE_BUDGET {
                return true;
            }
        }
    }

    /// Notes how long the oldest datagram of this round waited in the
    /// socket (none: the thread had caught up), and tells the node at
    /// the end of each period; tells it what the kernel dropped since
    /// the last round.
    fn tell_headroom(&mut self) {
        let lag = self.io.behind(SystemTime::now()).unwrap_or_default();
        if let Some(least) = self.input_lag.note(lag, Instant::now()) {
            self.headroom.note_srt_lag(least);
        }
        let dropped = self.io.dropped();
        if dropped != self.dropped {
            self.headroom
                .note_srt_dropped(u64::from(dropped.wrapping_sub(self.dropped)));
            self.dropped = dropped;
        }
    }

    fn on_datagram(&mut self, now: Instant, datagram: Datagram) {
        let Datagram { from, mut data } = datagram;
        let packet = match Packet::parse(&mut data, self.ipv6) {
            Ok(packet) => packet,
            Err(e) => {
                tracing::trace!(%from, error = ?e, "not an SRT packet");
                return;
            }
        };
        if let Some(publisher) = self.publishers.get_mut(&from) {
            let handled = std::panic::catch_unwind(AssertUnwindSafe(|| {
                publisher.srt.handle_packet_input(now, Ok((packet, from)));
            }));
            if handled.is_err() {
                // The protocol library panicked on this caller's packet:
                // it alone is let go (its session ends with its input).
                tracing::warn!(stream = %publisher.stream, remote = %from, "SRT connection dropped: a packet broke the protocol library");
                self.forget(now, from);
            }
            return;
        }
        if !self.handshakes.contains_key(&from) && self.handshakes.len() >= MAX_HANDSHAKES {
            return;
        }
        self.handshakes
            .entry(from)
            .or_insert(Handshake {
                since: now,
                key_material: None,
            })
            .note(&packet);
        self.drive_listener(now, Input::Packet(Ok((packet, from))));
    }

    /// Feeds the listener one input and carries out what it asks until
    /// it waits for the next one.
    fn drive_listener(&mut self, now: Instant, mut input: Input) {
        let caller = match &input {
            Input::Packet(Ok((_, from))) => Some(*from),
            Input::AccessResponse(Some((SessionId(remote), _))) => Some(*remote),
            _ => None,
        };
        loop {
            // srt-protocol answers some handshakes it does not expect
            // with a panic (`unimplemented!`): one caller must not stop
            // the thread every other publisher on it is received by.
            let listener = &mut self.listener;
            let handled =
                std::panic::catch_unwind(AssertUnwindSafe(|| listener.handle_input(now, input)));
            let action = match handled {
                Ok(action) => action,
                Err(_) => {
                    if let Some(remote) = caller {
                        tracing::warn!(%remote, "SRT handshake dropped: it broke the protocol library");
                        self.forget(now, remote);
                    }
                    return;
                }
            };
            let next = NextInputContext::for_action(&action);
            let done: Result<(), ()> = match action {
                Action::SendPacket(packet) => {
                    self.io.queue(packet);
                    Ok(())
                }
                Action::RequestAccess(SessionId(remote), request) => {
                    let stream_id = request.stream_id.map(|id| id.to_string());
                    let key = CallerKey {
                        key_size: request.key_size,
                        material: self
                            .handshakes
                            .get(&remote)
                            .and_then(|h| h.key_material.clone()),
                    };
                    self.request_access(remote, stream_id, key)
                }
                Action::RejectConnection(SessionId(remote), packet) => {
                    self.handshakes.remove(&remote);
                    self.accepted.remove(&remote);
                    if let Some(packet) = packet {
                        self.io.queue(packet);
                    }
                    Ok(())
                }
                Action::OpenConnection(SessionId(remote), opened) => {
                    let (packet, connection) = *opened;
                    if let Some(packet) = packet {
                        self.io.queue(packet);
                    }
                    self.open(remote, connection)
                }
                Action::DelegatePacket(SessionId(remote), packet) => {
                    match self.publishers.get_mut(&remote) {
                        Some(publisher) => {
                            publisher.srt.handle_packet_input(now, Ok(packet));
                            Ok(())
                        }
                        None => Err(()),
                    }
                }
                Action::DropConnection(SessionId(remote)) => {
                    self.handshakes.remove(&remote);
                    self.accepted.remove(&remote);
                    Ok(())
                }
                Action::UpdateStatistics(_) => Ok(()),
                Action::WaitForInput | Action::Close => return,
            };
            input = next.input_from(done);
        }
    }

    fn request_access(
        &mut self,
        remote: SocketAddr,
        stream_id: Option<String>,
        key: CallerKey,
    ) -> Result<(), ()> {
        let request = AccessRequest {
            remote,
            stream_id,
            key,
            reply: self.reply.clone(),
        };
        if self.requests.try_send(request).is_err() {
            // The acceptor is saturated (or stopping): refuse now.
            let _ = self.reply.send(AccessDecision {
                remote,
                verdict: Verdict::Reject(ServerRejectReason::Overload.into()),
            });
        }
        Ok(())
    }

    fn take_decisions(&mut self, now: Instant) {
        while let Ok(AccessDecision { remote, verdict }) = self.decisions.try_recv() {
            let response = match verdict {
                Verdict::Accept { media, stream, key } => {
                    self.accepted.insert(remote, (media, stream));
                    AccessControlResponse::Accepted(key)
                }
                Verdict::Reject(reason) => AccessControlResponse::Rejected(reason),
            };
            self.drive_listener(
                now,
                Input::AccessResponse(Some((SessionId(remote), response))),
            );
            // Accepted but not opened (the caller left meanwhile): the
            // session ends at once.
            self.accepted.remove(&remote);
        }
    }

    fn open(&mut self, remote: SocketAddr, connection: Connection) -> Result<(), ()> {
        self.handshakes.remove(&remote);
        let (media, stream) = self.accepted.remove(&remote).ok_or(())?;
        tracing::info!(%stream, %remote, "SRT publisher connected");
        self.publishers.insert(
            remote,
            Publisher {
                srt: DuplexConnection::new(connection),
                media: Some(media),
                released: Vec::new(),
                stream,
                dropped: 0,
            },
        );
        Ok(())
    }

    /// Runs every connection's timers, queues its answers, collects what
    /// it released and (when `deliver`) hands that to its session; drops
    /// the connections that closed.
    fn run_connections(&mut self, now: Instant, deliver: bool) {
        let mut closed = Vec::new();
        for (remote, publisher) in &mut self.publishers {
            publisher.srt.check_timers(now);
            while let Some(packet) = publisher.srt.next_packet(now) {
                self.io.queue(packet);
            }
            while let Some((_, payload)) = publisher.srt.next_data(now) {
                if publisher.media.is_some() {
                    publisher.released.push(payload);
                }
            }
            if deliver || !publisher.srt.is_open() {
                publisher.deliver(now);
            }
            if !publisher.srt.is_open() {
                closed.push(*remote);
            }
        }
        for remote in closed {
            if let Some(publisher) = self.publishers.remove(&remote) {
                let stats = publisher.srt.statistics();
                tracing::info!(
                    stream = %publisher.stream,
                    %remote,
                    packets = stats.rx_data,
                    lost = stats.rx_loss_data,
                    too_late = stats.rx_dropped_data,
                    dropped_behind = publisher.dropped,
                    "SRT connection closed"
                );
            }
            self.forget(now, remote);
        }
    }

    /// Forgets everything of `remote` here, and tells the listener to
    /// forget its session (it keeps one until told).
    fn forget(&mut self, now: Instant, remote: SocketAddr) {
        self.handshakes.remove(&remote);
        self.accepted.remove(&remote);
        self.publishers.remove(&remote);
        self.drive_listener(
            now,
            Input::Success(ResultOf::DropConnection(SessionId(remote))),
        );
    }

    /// Forgets handshakes that never finished.
    fn forget_stale_handshakes(&mut self, now: Instant) {
        let stale: Vec<SocketAddr> = self
            .handshakes
            .iter()
            .filter(|(_, handshake)| now - handshake.since > HANDSHAKE_TIMEOUT)
            .map(|(remote, _)| *remote)
            .collect();
        for remote in stale {
            self.forget(now, remote);
        }
    }
}

/// This thread at [`RECEIVE_NICE`] where the server may raise
/// priorities; as it is otherwise.
fn raise_priority() {
    let thread = rustix::thread::gettid();
    match rustix::process::setpriority_process(Some(thread), RECEIVE_NICE) {
        Ok(()) => tracing::debug!(nice = RECEIVE_NICE, "SRT receive thread priority raised"),
        Err(e) => tracing::debug!(error = %e, "SRT receive thread at the default priority"),
    }
}

#[cfg(test)]
mod tests;

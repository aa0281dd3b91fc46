//! The SRT receive thread driven in-process: real SRT callers (srt-tokio)
//! on loopback, and hand-made handshake datagrams for what no caller does
//! on purpose. No ffmpeg, no server.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::SinkExt;
use srt_protocol::options::{PacketCount, PacketSize, SocketOptions};
use srt_protocol::packet::{
    ControlPacket, ControlTypes, HandshakeControlInfo, HandshakeVsInfo, Packet, SeqNumber,
    ShakeType, SocketId, SocketType, TimeStamp,
};
use srt_protocol::settings::ConnInitSettings;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::super::datagrams::{self, Datagram, Datagrams};
use super::{AccessDecision, Payloads, Shard, Verdict, HANDSHAKE_TIMEOUT, MAX_HANDSHAKES};

fn shard() -> (
    Shard,
    mpsc::Receiver<super::AccessRequest>,
    CancellationToken,
) {
    let socket = datagrams::bind_group("127.0.0.1:0".parse().unwrap(), 1)
        .unwrap()
        .remove(0);
    let (requests, incoming) = mpsc::channel(16);
    let shutdown = CancellationToken::new();
    let shard = Shard::new(
        Datagrams::new(socket).unwrap(),
        ConnInitSettings::from(SocketOptions::default()),
        requests,
        Default::default(),
        shutdown.clone(),
    )
    .unwrap();
    (shard, incoming, shutdown)
}

/// The first handshake packet a caller sends, from `from`.
fn induction(from: SocketAddr) -> Datagram {
    let packet = Packet::Control(ControlPacket {
        dest_sockid: SocketId(0),
        timestamp: TimeStamp::from_micros(0),
        control_type: ControlTypes::Handshake(HandshakeControlInfo {
            init_seq_num: SeqNumber::new_truncate(1),
            max_packet_size: PacketSize(1500),
            max_flow_size: PacketCount(8192),
            socket_id: SocketId(7),
            shake_type: ShakeType::Induction,
            peer_addr: from.ip(),
            syn_cookie: 0,
            info: HandshakeVsInfo::V4(SocketType::Datagram),
        }),
    });
    let mut data = Vec::new();
    packet.serialize(&mut data);
    Datagram {
        from,
        data: Bytes::from(data),
    }
}

#[test]
fn handshakes_that_never_finish_are_bounded_and_forgotten() {
    let (mut shard, _incoming, _shutdown) = shard();
    let now = Instant::now();
    // A flood of forged first handshakes from many addresses.
    for port in 0..(MAX_HANDSHAKES as u16 + 500) {
        let from = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 1000 + port);
        shard.on_datagram(now, induction(from));
    }
    assert_eq!(shard.handshakes.len(), MAX_HANDSHAKES, "remembered at most");
    // Garbage is not a handshake.
    shard.on_datagram(
        now,
        Datagram {
            from: "10.0.0.2:9".parse().unwrap(),
            data: Bytes::from_static(b"not srt at all"),
        },
    );
    assert_eq!(shard.handshakes.len(), MAX_HANDSHAKES);
    // Not yet stale: kept; past the timeout: forgotten.
    shard.forget_stale_handshakes(now + HANDSHAKE_TIMEOUT / 2);
    assert_eq!(shard.handshakes.len(), MAX_HANDSHAKES);
    shard.forget_stale_handshakes(now + HANDSHAKE_TIMEOUT + Duration::from_secs(1));
    assert!(shard.handshakes.is_empty());
    // Room again for a real caller.
    shard.on_datagram(now, induction("10.0.0.3:5000".parse().unwrap()));
    assert_eq!(shard.handshakes.len(), 1);
}

/// Sends `count` numbered 1316-byte payloads as an SRT caller with
/// `stream_id` (at about 10 Mbit/s), then hangs up.
async fn publish(addr: SocketAddr, stream_id: &str, count: u32) {
    let mut socket = srt_tokio::SrtSocket::builder()
        .latency(Duration::from_millis(60))
        .call(addr, Some(stream_id))
        .await
        .expect("the shard accepts the caller");
    for n in 0..count {
        let mut payload = vec![0x47u8; 1316];
        payload[1..5].copy_from_slice(&n.to_be_bytes());
        socket
            .send((Instant::now(), Bytes::from(payload)))
            .await
            .unwrap();
        // About 10 Mbit/s, as an encoder sends (a burst far beyond the
        // sender's buffer would be dropped by the sender itself).
        if n % 10 == 9 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    // What is still in flight arrives before the caller hangs up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    socket.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_falls_behind_loses_only_its_own_payloads() {
    const SENT: u32 = 2000;
    let _ = tracing_subscriber::fmt()
        .with_env_filter("liveproc=debug,srt_tokio=info")
        .with_test_writer()
        .try_init();
    // A receive thread as the server runs it: the shard is made on it.
    let socket = datagrams::bind_group("127.0.0.1:0".parse().unwrap(), 1)
        .unwrap()
        .remove(0);
    let addr = socket.local_addr().unwrap();
    let (requests, mut incoming) = mpsc::channel(16);
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let thread = std::thread::spawn(move || {
        let settings = ConnInitSettings::from(SocketOptions::default());
        Shard::new(
            Datagrams::new(socket).unwrap(),
            settings,
            requests,
            Default::default(),
            stop,
        )
        .unwrap()
        .run()
    });
    // The acceptor: "slow" gets a queue of one delivery that nobody
    // reads; "fast" a roomy one that is read.
    let (slow_tx, mut slow_rx) = mpsc::channel::<Payloads>(1);
    let (fast_tx, mut fast_rx) = mpsc::channel::<Payloads>(1024);
    let acceptor = tokio::spawn(async move {
        while let Some(request) = incoming.recv().await {
            let media = match request.stream_id.as_deref() {
                Some("slow") => slow_tx.clone(),
                _ => fast_tx.clone(),
            };
            let _ = request.reply.send(AccessDecision {
                remote: request.remote,
                verdict: Verdict::Accept {
                    media,
                    stream: request.stream_id.unwrap_or_default(),
                    key: None,
                },
            });
        }
    });
    tokio::join!(publish(addr, "slow", SENT), publish(addr, "fast", SENT));
    // Every payload of the fast session, in order, although the slow one
    // stopped taking its own.
    let mut received = Vec::new();
    while received.len() < SENT as usize {
        let batch = tokio::time::timeout(Duration::from_secs(10), fast_rx.recv())
            .await
            .unwrap_or_else(|_| panic!("{} of {SENT} payloads came", received.len()))
            .expect("the fast session's input is open");
        received.extend(batch.data);
    }
    for (n, payload) in received.iter().enumerate() {
        let number = u32::from_be_bytes(payload[1..5].try_into().unwrap());
        assert_eq!(number as usize, n, "payloads in order, none lost");
    }
    // The slow session did fall behind: it holds one delivery, a small
    // part of what its caller sent.
    let held = slow_rx.try_recv().map_or(0, |batch| batch.data.len());
    assert!(held < SENT as usize / 10, "the slow session held {held}");
    shutdown.cancel();
    tokio::task::spawn_blocking(move || thread.join().unwrap())
        .await
        .unwrap();
    acceptor.abort();
}

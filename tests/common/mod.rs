//! Test helpers, by concern: [`server`] (the real `liveproc` binary, started
//! on free ports with a temporary data dir), [`grpc`] (clients with API
//! keys, streams, publishers, watchers), [`media`] (real H.264/AAC
//! MPEG-TS made by ffmpeg, published over SRT), [`images`] and [`av`]
//! (outputs checked as a viewer sees them), [`postgres`] (a private
//! PostgreSQL server for the registry's second backend), [`s3`] (a
//! private S3 server for object storage), [`rtmp`] (RTMP publishers: ffmpeg,
//! GStreamer, and a raw client for what they would not send), [`tls`] (a
//! CA and certificates made at test time, clients that trust them),
//! [`cgroup`] (a CPU limit on the server).
//!
//! Each test binary uses a part of them.
#![allow(dead_code)]

use std::time::Duration;

mod av;
pub mod cgroup;
pub mod fate;
mod grpc;
mod http;
mod images;
mod media;
pub mod postgres;
pub mod rtmp;
pub mod s3;
mod server;
pub mod tls;

#[allow(unused_imports)]
pub use av::*;
#[allow(unused_imports)]
pub use grpc::*;
#[allow(unused_imports)]
pub use http::*;
#[allow(unused_imports)]
pub use images::*;
#[allow(unused_imports)]
pub use media::*;
#[allow(unused_imports)]
pub use server::*;

/// A free TCP port on loopback (for servers that take a port number).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free loopback port below the kernel's ephemeral range, for a helper
/// server that binds it seconds later (`weed mini` starts its listeners
/// one after another). A port from [`free_port`] is an ephemeral one:
/// any outgoing connection of the tests can be given it in between, and
/// one was (`bind: address already in use`). Below the range only
/// another explicit bind can take it, and no port is handed out twice.
pub fn port_outside_ephemeral_range() -> u16 {
    use rand::Rng;
    use std::collections::HashSet;
    use std::sync::Mutex;
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let mut given = GIVEN.lock().unwrap();
    let given = given.get_or_insert_with(HashSet::new);
    let mut rng = rand::rng();
    loop {
        let port = rng.random_range(10_000..low.max(10_001));
        if given.contains(&port) {
            continue;
        }
        let free = std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok();
        if free {
            given.insert(port);
            return port;
        }
    }
}

/// Runs `start` on a thread that lives as long as the process and
/// returns what it made: a child started there with a parent-death
/// signal dies with the process, not with the test thread that asked
/// first (the signal follows the thread that started the child).
pub fn start_for_the_process<T: Send + 'static>(start: fn() -> T) -> T {
    let (started, made) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        started.send(start()).unwrap();
        loop {
            std::thread::park();
        }
    });
    made.recv().expect("a server for the whole test process")
}

/// Runs `future` with a deadline; a timeout fails the test with `what`.
pub async fn within<T>(secs: u64, what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {secs} s waiting for {what}"))
}

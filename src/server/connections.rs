//! The one TCP address that serves gRPC, grpc-web, HTTP and the
//! dashboard: an accept loop of our own over hyper-util's connection
//! builder (HTTP/1.1 and HTTP/2, chosen by the client's first bytes), so
//! that every connection gets the limits a server on the open internet
//! needs, which tonic's own server leaves unset for HTTP/1.1:
//! - a connection that has not sent a whole request head within
//!   [`Limits::header_timeout`] of connecting (HTTP/1.1 or HTTP/2) is
//!   closed, and so is an HTTP/1.1 connection that takes longer than that
//!   for any later request's headers, or sits idle between requests for
//!   longer (hyper's header-read timer, which runs only with a timer set);
//! - HTTP/2 connections are pinged while idle and closed when the peer
//!   stops answering;
//! - request heads are at most [`MAX_HEADER_BYTES`] in either protocol
//!   (HTTP/1.1 answers 431 past it);
//! - one client address holds at most [`Limits::max_per_address`]
//!   connections; more are closed at once, before any TLS handshake;
//! - with TLS, the handshake (ALPN `h2` or `http/1.1`) runs in the
//!   connection's own task and must end within the header timeout;
//! - at shutdown, accepting stops, connections are asked to finish their
//!   calls, and whatever is left after the grace period is closed.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::metrics::{self, ConnectionLabels, ReasonLabel};

/// Per-connection limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a client has to finish the TLS handshake and send a
    /// request's headers (the first request's from connecting, in either
    /// protocol), and how long an HTTP/1.1 connection may sit idle between
    /// requests.
    pub header_timeout: Duration,
    /// Most connections open at once from one client address; 0: no limit.
    pub max_per_address: usize,
}

/// Largest request head (request line or pseudo-headers and headers), in
/// either protocol: browsers and gRPC clients send a few hundred bytes.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// How often an idle HTTP/2 connection is pinged, and how long the peer
/// has to answer before the connection is closed.
const H2_KEEPALIVE: Duration = Duration::from_secs(30);
const H2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// At most one log line per this long about refused connections.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` (over TLS with `tls`) until `stop` is
/// cancelled; then lets open connections finish for up to `grace`.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    stop: CancellationToken,
    grace: Duration,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .keep_alive_interval(H2_KEEPALIVE)
        .keep_alive_timeout(H2_KEEPALIVE_TIMEOUT);
    let graceful = GracefulShutdown::new();
    let per_address = PerAddress::new(limits.max_per_address);
    let mut refusal_logged: Option<Instant> = None;
    loop {
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait, go on.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        let Some(slot) = per_address.take(peer.ip()) else {
            metrics::get()
                .http_connections_refused
                .get_or_create(&ReasonLabel {
                    reason: "per_address_limit",
                })
                .inc();
            if refusal_logged.is_none_or(|at| at.elapsed() >= REFUSAL_LOG_EVERY) {
                refusal_logged = Some(Instant::now());
                tracing::warn!(
                    client = %peer.ip(),
                    max = limits.max_per_address,
                    "connection closed: too many from one address"
                );
            }
            continue;
        };
        let _ = socket.set_nodelay(true);
        let connection = Connection {
            builder: builder.clone(),
            app: app.clone(),
            watcher: graceful.watcher(),
            header_timeout: limits.header_timeout,
            peer,
        };
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let open = metrics::get().http_connections_open.clone();
            open.inc();
            connection.handshake_and_serve(socket, tls).await;
            open.dec();
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("closing connections that did not finish within {grace:?}");
    }
}

/// What serving one accepted connection needs.
struct Connection {
    builder: auto::Builder<TokioExecutor>,
    app: axum::Router,
    watcher: Watcher,
    header_timeout: Duration,
    peer: SocketAddr,
}

impl Connection {
    async fn handshake_and_serve(self, socket: TcpStream, tls: Option<TlsAcceptor>) {
        let Some(acceptor) = tls else {
            count_connection("tcp", "none");
            return self.serve(socket).await;
        };
        let stream = match tokio::time::timeout(self.header_timeout, acceptor.accept(socket)).await
        {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return self.refused_handshake(&e.to_string()),
            Err(_) => return self.refused_handshake("timed out"),
        };
        let alpn = match stream.get_ref().1.alpn_protocol() {
            Some(b"h2") => "h2",
            Some(b"http/1.1") => "http/1.1",
            _ => "none",
        };
        count_connection("tls", alpn);
        self.serve(stream).await
    }

    fn refused_handshake(&self, error: &str) {
        metrics::get()
            .http_connections_refused
            .get_or_create(&ReasonLabel {
                reason: "tls_handshake",
            })
            .inc();
        tracing::debug!(peer = %self.peer, error, "TLS handshake failed");
    }

    async fn serve<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let requests = Arc::new(AtomicU64::new(0));
        let service = {
            let requests = Arc::clone(&requests);
            let app = self.app;
            // As tonic's own server does: `Request::remote_addr()` (the
            // audit log's peer) reads it.
            let connection = tonic::transport::server::TcpConnectInfo {
                local_addr: None,
                remote_addr: Some(self.peer),
            };
            tower::service_fn(
                move |mut request: axum::http::Request<hyper::body::Incoming>| {
                    requests.fetch_add(1, Ordering::Relaxed);
                    request.extensions_mut().insert(connection.clone());
                    let app = app.clone();
                    async move {
                        use tower::ServiceExt;
                        app.oneshot(request.map(axum::body::Body::new)).await
                    }
                },
            )
        };
        let connection = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service))
            .into_owned();
        let connection = self.watcher.watch(connection);
        close_if_silent(connection, &requests, self.header_timeout, self.peer).await;
        let requests = requests.load(Ordering::Relaxed);
        if requests == 0 {
            metrics::get().http_connections_unused.inc();
        }
        tracing::debug!(peer = %self.peer, requests, "connection closed");
    }
}

fn count_connection(transport: &'static str, alpn: &'static str) {
    metrics::get()
        .http_connections
        .get_or_create(&ConnectionLabels { transport, alpn })
        .inc();
}

/// Open connections by client address, bounded per address.
struct PerAddress {
    max: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One connection's place in [`PerAddress`], given back on drop.
struct AddressSlot {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl PerAddress {
    fn new(max: usize) -> Self {
        PerAddress {
            max,
            open: Arc::default(),
        }
    }

    /// A place for one more connection from `ip`, unless it holds `max`.
    /// IPv4 clients reaching an IPv6 socket count as their IPv4 address.
    fn take(&self, ip: IpAddr) -> Option<AddressSlot> {
        let ip = ip.to_canonical();
        let mut open = self.open.lock().expect("per-address lock");
        let count = open.entry(ip).or_insert(0);
        if self.max > 0 && *count >= self.max {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            ip,
            open: Arc::clone(&self.open),
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().expect("per-address lock");
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Runs `connection`, closing it when no request has arrived within
/// `timeout` of connecting (a client that connects and sends nothing, or
/// trickles an HTTP/2 preface, holds no socket for long).
async fn close_if_silent<C, E>(
    connection: C,
    requests: &AtomicU64,
    timeout: Duration,
    peer: std::net::SocketAddr,
) where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let deadline = async {
        tokio::time::sleep(timeout).await;
        if requests.load(Ordering::Relaxed) > 0 {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        served = connection => {
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        }
        _ = deadline => tracing::debug!(%peer, "closing a connection that sent no request in time"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_max_connections_and_gets_them_back() {
        let limit = PerAddress::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = limit.take(a).unwrap();
        let _second = limit.take(a).unwrap();
        assert!(limit.take(a).is_none(), "a third from one address");
        assert!(limit.take(b).is_some(), "another address is not counted");
        drop(first);
        assert!(
            limit.take(a).is_some(),
            "a closed connection frees its place"
        );
    }

    #[test]
    fn ipv4_mapped_clients_count_as_their_ipv4_address() {
        let limit = PerAddress::new(1);
        let _v4 = limit.take("192.0.2.1".parse().unwrap()).unwrap();
        assert!(limit.take("::ffff:192.0.2.1".parse().unwrap()).is_none());
    }

    #[test]
    fn zero_means_no_limit_and_nothing_is_kept_after_close() {
        let limit = PerAddress::new(0);
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let slots: Vec<_> = (0..1000).map(|_| limit.take(ip).unwrap()).collect();
        drop(slots);
        assert!(limit.open.lock().unwrap().is_empty());
    }
}

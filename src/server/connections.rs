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
//! - at shutdown, accepting stops, connections are asked to finish their
//!   calls, and whatever is left after the grace period is closed.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Per-connection limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a client has to send a request's headers (the first
    /// request's from connecting, in either protocol), and how long an
    /// HTTP/1.1 connection may sit idle between requests.
    pub header_timeout: Duration,
}

/// How often an idle HTTP/2 connection is pinged, and how long the peer
/// has to answer before the connection is closed.
const H2_KEEPALIVE: Duration = Duration::from_secs(30);
const H2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Serves `app` on `listener` until `stop` is cancelled; then lets open
/// connections finish for up to `grace`.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: Limits,
    stop: CancellationToken,
    grace: Duration,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEPALIVE)
        .keep_alive_timeout(H2_KEEPALIVE_TIMEOUT);
    let graceful = GracefulShutdown::new();
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
        let _ = socket.set_nodelay(true);
        let first_request = Arc::new(AtomicBool::new(false));
        let service = {
            let first_request = Arc::clone(&first_request);
            let app = app.clone();
            tower::service_fn(move |request: axum::http::Request<hyper::body::Incoming>| {
                first_request.store(true, Ordering::Relaxed);
                let app = app.clone();
                async move {
                    use tower::ServiceExt;
                    app.oneshot(request.map(axum::body::Body::new)).await
                }
            })
        };
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(socket), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(close_if_silent(
            connection,
            first_request,
            limits.header_timeout,
            peer,
        ));
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("closing connections that did not finish within {grace:?}");
    }
}

/// Runs `connection`, closing it when no request has arrived within
/// `timeout` of connecting (a client that connects and sends nothing, or
/// trickles an HTTP/2 preface, holds no socket for long).
async fn close_if_silent<C, E>(
    connection: C,
    first_request: Arc<AtomicBool>,
    timeout: Duration,
    peer: std::net::SocketAddr,
) where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let deadline = async {
        tokio::time::sleep(timeout).await;
        if first_request.load(Ordering::Relaxed) {
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

//! The RTMP listener: one TCP port for every stream, for the encoders that
//! publish over RTMP (OBS by default, vMix, Wirecast, hardware encoders,
//! `ffmpeg -f flv`). A publisher connects to the `live` application and
//! publishes with the stream's key as the stream name:
//! `rtmp://<host>:<port>/live/<stream key>`.
//!
//! Everything RTMP runs in the connection's own task ([`connection`]):
//! the handshake ([`handshake`]), the chunk stream ([`chunk`]), the
//! commands ([`amf0`], [`messages`]), and the FLV tags ([`flv`]) that
//! become the access units of the stream's session. No GStreamer
//! pipeline, no thread per stream.
//!
//! RTMPS is the same over TLS, on a port of its own with the server's
//! certificate (`rtmps://<host>:<port>/live/<stream key>`); the TLS
//! handshake runs in the connection's task and must end within
//! [`connection::SETUP_TIMEOUT`], before the RTMP setup's own.
//!
//! Connections are bounded: at most [`MAX_CONNECTIONS`] at once per
//! listener, and one that has not published within
//! [`connection::SETUP_TIMEOUT`] is closed, with small buffers until then;
//! a refused one is told why.

mod amf0;
mod chunk;
mod connection;
mod flv;
mod handshake;
mod messages;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::Ingest;

/// The RTMP application publishers use: `rtmp://host:port/live/<key>`.
pub const RTMP_APP: &str = "live";

/// Connections at once, publishing or not yet.
pub const MAX_CONNECTIONS: usize = 4096;
/// At most one "refused: too many connections" line this often.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(5);

/// Binds the RTMP port (RTMPS with `tls`); returns the bound address and
/// the accept loop, to run until `shutdown`.
pub async fn bind(
    listen: SocketAddr,
    ingest: Ingest,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, impl std::future::Future<Output = ()>)> {
    let listener = TcpListener::bind(listen).await?;
    let local = listener.local_addr()?;
    let protocol = if tls.is_some() { "RTMPS" } else { "RTMP" };
    tracing::info!(%local, protocol, "RTMP listener bound");
    Ok((local, accept(listener, ingest, tls, shutdown)))
}

async fn accept(
    listener: TcpListener,
    ingest: Ingest,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut refused_logged: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (socket, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, most often: wait, then go on.
                tracing::warn!(error = %e, "RTMP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            if refused_logged.is_none_or(|at| at.elapsed() >= REFUSAL_LOG_EVERY) {
                refused_logged = Some(Instant::now());
                tracing::warn!(%remote, max = MAX_CONNECTIONS, "RTMP connection refused: too many connections");
            }
            continue;
        };
        let _ = socket.set_nodelay(true);
        let (ingest, shutdown, tls) = (ingest.clone(), shutdown.clone(), tls.clone());
        ingest.sessions.clone().spawn(async move {
            match tls {
                None => connection::serve(socket, remote, ingest, shutdown).await,
                Some(tls) => {
                    let handshake = tokio::time::timeout(connection::SETUP_TIMEOUT, tls.accept(socket));
                    match handshake.await {
                        Ok(Ok(stream)) => connection::serve(stream, remote, ingest, shutdown).await,
                        Ok(Err(e)) => tracing::info!(%remote, error = %e, "RTMPS handshake failed"),
                        Err(_) => tracing::info!(%remote, "RTMPS connection closed: no TLS handshake in time"),
                    }
                }
            }
            drop(slot);
        });
    }
    tracing::info!("RTMP listener stopped");
}

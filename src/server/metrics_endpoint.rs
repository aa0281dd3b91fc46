//! `/metrics` on its own address (`--metrics-listen`), for Prometheus:
//! the operator's view, never exposed with the API. The gauges of the
//! server's state now (streams by state, sessions by ingest protocol) are
//! read from the stream hub at each scrape.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::metrics::{self, ProtocolLabel, StateLabel};
use crate::proto::v1 as pb;
use crate::streams::{PublisherKind, StreamHub};

const STATES: [pb::StreamState; 4] = [
    pb::StreamState::Idle,
    pb::StreamState::Live,
    pb::StreamState::Error,
    pb::StreamState::Ended,
];

/// Binds `addr` and serves until `shutdown`; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    hub: Arc<StreamHub>,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        get(move |headers: HeaderMap| {
            let hub = Arc::clone(&hub);
            async move { scrape(&hub, &headers) }
        }),
    );
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the metrics listener failed");
        }
    });
    Ok(bound)
}

/// The metrics, in OpenMetrics when the scraper asks for it (Prometheus
/// does), else in the classic text format.
fn scrape(hub: &StreamHub, headers: &HeaderMap) -> impl IntoResponse {
    let m = metrics::get();
    let mut states = [0i64; STATES.len()];
    let mut protocols = [0i64; PublisherKind::ALL.len()];
    for stream in hub.all() {
        let state = stream.state();
        if let Some(i) = STATES.iter().position(|s| *s == state) {
            states[i] += 1;
        }
        if let Some(kind) = stream.publisher_kind() {
            if let Some(i) = PublisherKind::ALL.iter().position(|k| *k == kind) {
                protocols[i] += 1;
            }
        }
    }
    for (state, n) in STATES.iter().zip(states) {
        m.streams
            .get_or_create(&StateLabel {
                state: state.as_str_name().to_ascii_lowercase(),
            })
            .set(n);
    }
    for (kind, n) in PublisherKind::ALL.iter().zip(protocols) {
        m.sessions
            .get_or_create(&ProtocolLabel {
                protocol: kind.label().to_string(),
            })
            .set(n);
    }
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    if openmetrics {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            m.render(),
        )
    } else {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            m.render_classic(),
        )
    }
}

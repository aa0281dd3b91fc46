//! Pulled streams: for a stream registered with a `source_uri`, a task that
//! keeps a pipeline pulling from it while the stream exists. Network sources
//! are retried with exponential backoff (1 s to 30 s) after they fail or
//! end; a `file://` source plays once. The pull task holds the stream's
//! publisher slot while it runs, so nobody can push into a pulled stream.
//! Before every attempt the source is checked against the server's
//! [`PullPolicy`] as it is then (names resolved, links followed).
//!
//! Every node runs the task of every pulled stream, but a node pulls only
//! while it holds the stream's lease ([`crate::cluster`]): the others try
//! again every [`crate::cluster::LEASE_RENEW_EVERY`], so when the pulling
//! node is lost another takes the stream over once its lease lapses.
//! Which node tries first is the placement's choice, the least-loaded
//! live node ([`crate::cluster::placement`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::cluster::{Cluster, LEASE_RENEW_EVERY};
use crate::error::Error;
use crate::features::FeatureEngine;
use crate::pipeline::{Outcome, Source};
use crate::proto::v1::StreamState;
use crate::pull_policy::PullPolicy;
use crate::streams::{LetGo, LiveStream, PublisherKind};

const MIN_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A session that lasted this long resets the backoff.
const HEALTHY_SESSION: Duration = Duration::from_secs(30);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts pulling `uri` into `stream` until the stream is deleted or the
/// server stops.
pub fn spawn(
    tasks: &TaskTracker,
    engine: Arc<FeatureEngine>,
    policy: Arc<PullPolicy>,
    cluster: Cluster,
    stream: Arc<LiveStream>,
    uri: String,
) {
    let span = tracing::info_span!("stream", organization = %stream.stream_ref.organization_id, stream = %stream.stream_ref.stream_id, ingest = "pull");
    tasks.spawn(run(engine, policy, cluster, stream, uri).instrument(span));
}

async fn run(
    engine: Arc<FeatureEngine>,
    policy: Arc<PullPolicy>,
    cluster: Cluster,
    stream: Arc<LiveStream>,
    uri: String,
) {
    let shown = crate::redact::uri(&uri);
    let plays_once = uri.to_ascii_lowercase().starts_with("file://");
    let cancelled = stream.cancelled().clone();
    let mut backoff = MIN_BACKOFF;
    // Since when this node has seen nobody pull the stream.
    let mut unheld_since: Option<Instant> = None;
    loop {
        if cancelled.is_cancelled() {
            break;
        }
        let started = Instant::now();
        // The source as it is now: a host may resolve elsewhere than it did
        // at creation, a file may have become a link.
        let checked = policy.check_before_pull(&uri).await;
        if let Err(refused) = &checked {
            tracing::warn!(stream = %stream.stream_ref, source = %shown, reason = %refused, "pull refused by the server's policy");
            stream.set_state(StreamState::Error, format!("source_uri {refused}"));
        }
        // Opened as checked: the file's real path, the address resolved.
        if let Ok(pinned) = checked {
            let source = Source::for_uri(&pinned);
            let since = *unheld_since.get_or_insert_with(Instant::now);
            let placed_here = cluster
                .placement()
                .here(&stream.stream_ref, since)
                .await
                .unwrap_or(true);
            if !placed_here {
                // Another node is chosen for it: give it the time to start.
                tokio::select! {
                    _ = tokio::time::sleep(LEASE_RENEW_EVERY) => {}
                    _ = cancelled.cancelled() => break,
                }
                continue;
            }
            let held = cluster.claim(&stream, PublisherKind::Pull, None).await;
            if !matches!(
                held,
                Err(Error::NodeFull { .. } | Error::NodeOverloaded { .. })
            ) {
                unheld_since = None;
            }
            match held {
                Err(Error::PublisherActive {
                    node_id: Some(node),
                    ..
                }) => {
                    // Pulled by another node: watch for it to go.
                    tracing::debug!(stream = %stream.stream_ref, %node, "pulled by another node");
                    tokio::select! {
                        _ = tokio::time::sleep(LEASE_RENEW_EVERY) => {}
                        _ = cancelled.cancelled() => break,
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!(stream = %stream.stream_ref, error = %e, "pull waiting for publisher slot");
                }
                Ok((publisher, lease)) => {
                    match super::start_pipeline(
                        &stream,
                        &source,
                        lease.fence().clone(),
                        format!("pulling {shown}"),
                    ) {
                        Err(e) => {
                            tracing::error!(stream = %stream.stream_ref, source = %shown, error = %e, "cannot start pull");
                            stream.set_state(StreamState::Error, e.to_string());
                        }
                        Ok(pipeline) => {
                            let _features = match engine.start(&stream, &pipeline.units()) {
                                Ok(features) => features,
                                // The stream was deleted meanwhile.
                                Err(_) => break,
                            };
                            tracing::info!(stream = %stream.stream_ref, source = %shown, "pulling");
                            let mut shed = None;
                            let outcome = tokio::select! {
                                outcome = pipeline.ended() => Some(outcome),
                                _ = cancelled.cancelled() => None,
                                _ = lease.lost().cancelled() => Some(Outcome::Failed("taken over".into())),
                                let_go = publisher.let_go() => {
                                    shed = Some(let_go);
                                    Some(Outcome::Failed("let go".into()))
                                }
                            };
                            match outcome {
                                // The node is overloaded: the pull waits
                                // until it takes sessions again (or another
                                // node takes the stream).
                                Some(Outcome::Failed(_)) if shed.is_some() => {
                                    pipeline.finish(DRAIN_TIMEOUT).await;
                                    let reason = match shed {
                                        Some(LetGo::Shed(reason)) => reason,
                                        _ => "let go".to_string(),
                                    };
                                    let shed = Error::Shed {
                                        stream_id: stream.stream_ref.stream_id.clone(),
                                        node_id: lease.fence().node_id.clone(),
                                        reason,
                                    };
                                    tracing::warn!(stream = %stream.stream_ref, source = %shown, reason = %shed, "pull shed");
                                    stream.set_state(StreamState::Error, shed.to_string());
                                }
                                None => {
                                    pipeline.finish(DRAIN_TIMEOUT).await;
                                    stream.set_state(StreamState::Ended, "stream stopped");
                                    break;
                                }
                                Some(Outcome::EndOfStream) => {
                                    stream.set_state(
                                        StreamState::Ended,
                                        format!("source {shown} ended"),
                                    );
                                }
                                Some(Outcome::Failed(_)) if lease.lost().is_cancelled() => {
                                    pipeline.finish(DRAIN_TIMEOUT).await;
                                    stream.set_state(
                                        StreamState::Ended,
                                        "another node took over the pull",
                                    );
                                }
                                // The bus watcher already set ERROR with the reason.
                                Some(Outcome::Failed(_)) => {}
                            }
                        }
                    }
                }
            }
        }
        if plays_once && stream.state() == StreamState::Ended {
            break;
        }
        if started.elapsed() >= HEALTHY_SESSION {
            backoff = MIN_BACKOFF;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = cancelled.cancelled() => break,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    tracing::info!(stream = %stream.stream_ref, source = %shown, "pull stopped");
}

//! Ingest: every way media reaches a stream, all feeding the same
//! per-stream pipeline through a [`session::PublishSession`] (pushed bytes)
//! or the pull task (URIs).
//!
//! - [`srt`]: one SRT listener port for all streams; the caller's `streamid`
//!   (`publish:<stream_id>:<stream_key>`) picks and authorizes the stream.
//! - [`rtmp`]: one TCP listener for all streams; the publish command's
//!   stream name is the stream's key.
//! - [`push`]: gRPC `PushMedia` (authorized in the API layer with
//!   [`Ingest::authorize_publish`]).
//! - [`pull`]: the server pulls a stream's `source_uri`.
//!
//! [`follow`] keeps the streams of this node as the shared registry says
//! (streams created, changed or deleted through other nodes).

pub mod follow;
pub mod pacing;
pub mod pull;

pub mod push;
pub mod rtmp;
pub mod session;
pub mod srt;
pub mod ts_sync;

use std::sync::Arc;

use tokio_util::task::TaskTracker;

use crate::cluster::Cluster;
use crate::error::{Error, Result};
use crate::features::FeatureEngine;
use crate::ids::StreamRef;
use crate::pipeline::{EventSink, PipelineEvent, Source, StreamPipeline};
use crate::proto::v1::StreamState;
use crate::pull_policy::PullPolicy;
use crate::registry::cluster::Fence;
use crate::registry::{Registry, StreamRecord};
use crate::streams::{LiveStream, PublisherKind, StreamHub};

/// What ingest paths share: the registry to authorize publishers, the hub
/// of running streams, and a tracker of running sessions for shutdown.
#[derive(Clone)]
pub struct Ingest {
    pub registry: Arc<Registry>,
    pub hub: Arc<StreamHub>,
    pub sessions: TaskTracker,
    pub engine: Arc<FeatureEngine>,
    /// What streams may pull from.
    pub pull_policy: Arc<PullPolicy>,
    /// This node's hold on the sessions it runs.
    pub cluster: Cluster,
}

impl Ingest {
    /// Brings a registered stream to life (at creation, at server start,
    /// or when another node created it): its runtime state, its outputs,
    /// and its pull when it has a source. A stream already alive here is
    /// returned as it is.
    pub fn add_stream(&self, record: &StreamRecord) -> Arc<LiveStream> {
        let stream_ref = StreamRef::new(&record.organization_id, &record.id);
        self.engine.attach(&stream_ref);
        let (live, added) = self.hub.add(stream_ref, record.processing.clone());
        if added {
            live.set_publish_key(&record.stream_key);
        }
        if let (true, Some(uri)) = (added, &record.source_uri) {
            self.start_pull(Arc::clone(&live), uri.clone());
        }
        live
    }

    /// Makes this node's side of a stream what the registry says: added
    /// if new here, its processing options applied if they changed.
    pub fn sync_stream(&self, record: &StreamRecord) {
        let live = self.add_stream(record);
        live.set_processing(record.processing.clone());
        if live.set_publish_key(&record.stream_key) {
            tracing::info!(stream = %live.stream_ref, "publisher disconnected: the stream key was rotated");
        }
    }

    /// Stops whatever runs for a deleted stream and forgets its outputs.
    pub fn remove_stream(&self, stream_ref: &StreamRef) {
        self.hub.remove(stream_ref);
        self.engine.forget(stream_ref);
    }

    /// Starts pulling `uri` into `stream` (see [`pull`]).
    pub fn start_pull(&self, stream: Arc<LiveStream>, uri: String) {
        pull::spawn(
            &self.sessions,
            Arc::clone(&self.engine),
            Arc::clone(&self.pull_policy),
            self.cluster.clone(),
            stream,
            uri,
        );
    }

    /// Starts a pushed session (SRT, RTMP or gRPC) on `stream`, authorized
    /// with `stream_key`: refused while it has a publisher here or on
    /// another node, this node is full, or the key was rotated since.
    pub async fn start_session(
        &self,
        stream: Arc<LiveStream>,
        kind: PublisherKind,
        stream_key: &str,
    ) -> Result<session::PublishSession> {
        let (publisher, lease) = self.cluster.claim(&stream, kind, Some(stream_key)).await?;
        session::PublishSession::start(&self.engine, stream, kind, publisher, lease)
    }

    /// The stream that `stream_id` + `stream_key` may publish to. A wrong
    /// key and an unknown stream look the same to the caller.
    pub async fn authorize_publish(
        &self,
        stream_id: &str,
        stream_key: &str,
    ) -> Result<Arc<LiveStream>> {
        let record = self.publish_record(stream_id, stream_key).await?;
        Ok(self.live(&record))
    }

    /// The record of the stream `stream_id` if `stream_key` is its
    /// publish key (SRT checks the stream's encryption with it).
    pub async fn publish_record(&self, stream_id: &str, stream_key: &str) -> Result<StreamRecord> {
        self.registry
            .stream_for_publish_key(stream_key)
            .await?
            .filter(|r| r.id == stream_id)
            .ok_or(Error::Unauthenticated)
    }

    /// The stream whose publish key is `stream_key` (RTMP names the
    /// stream by its key alone).
    pub async fn authorize_publish_key(&self, stream_key: &str) -> Result<Arc<LiveStream>> {
        let record = self
            .registry
            .stream_for_publish_key(stream_key)
            .await?
            .ok_or(Error::Unauthenticated)?;
        Ok(self.live(&record))
    }

    /// The running side of a registered stream; a stream created through
    /// another node since this one started comes to life here when first
    /// asked for.
    pub fn live(&self, record: &StreamRecord) -> Arc<LiveStream> {
        let stream_ref = StreamRef::new(&record.organization_id, &record.id);
        self.hub
            .get(&stream_ref)
            .unwrap_or_else(|| self.add_stream(record))
    }
}

/// Starts the GStreamer pipeline of a pulled session of `stream` fed by
/// `source`, its writes carrying `fence`: its counters become the
/// stream's, and what it reports becomes the stream's state and events
/// ([`pipeline_events`]).
pub(crate) fn start_pipeline(
    stream: &Arc<LiveStream>,
    source: &Source,
    fence: Fence,
    live_message: String,
) -> Result<StreamPipeline> {
    StreamPipeline::start(
        &stream.stream_ref,
        source,
        stream.new_session_stats(fence),
        pipeline_events(stream, live_message),
    )
}

/// What a session's pipeline reports, made the stream's state (LIVE with
/// `live_message` on first media, ERROR when it fails) and events.
pub(crate) fn pipeline_events(stream: &Arc<LiveStream>, live_message: String) -> EventSink {
    let live = Arc::clone(stream);
    Arc::new(move |event| match event {
        PipelineEvent::Live => live.set_state(StreamState::Live, live_message.clone()),
        PipelineEvent::TrackIgnored(message) => live.report_feature_error(message),
        PipelineEvent::Discontinuity(message) => live.report_discontinuity(message),
        PipelineEvent::Failed(message) => live.set_state(StreamState::Error, message),
    })
}

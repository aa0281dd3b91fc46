//! What both adapters ask, in one place: the gRPC services ([`crate::api`])
//! and the HTTP routes ([`crate::http`]) call this layer, and neither calls
//! the other. It finds the organization's recordings and replay clips
//! (another organization's are "not found", exactly like missing ones),
//! a session's recordings (by the registry's session index), makes
//! thumbnails at a moment of the replay window and replay segments, and
//! it is the one place that decides where media files are kept: the data
//! dir, and object storage when it is set ([`uploads`] moves recordings
//! there as they are written). Every muxing or decoding job runs
//! on the job lanes ([`FeatureEngine::run_job`]), off the async workers.

pub mod audit;
pub mod clips;
pub mod convert;
pub mod media;
pub mod peers;
pub mod quotas;
pub mod recording_frames;
pub mod recordings;
pub mod rescue;
pub mod segments;
pub mod session_clips;
pub mod session_storyboards;
pub mod storyboards;
pub mod stream_notices;
pub mod thumbnails;
pub mod uploads;

use std::sync::Arc;

use crate::auth::Authenticator;
use crate::features::FeatureEngine;
use crate::ingest::Ingest;
use crate::objects::ObjectStorage;
use crate::registry::Registry;
use crate::streams::StreamHub;
use crate::url_signing::UrlSigner;
use crate::webhooks::sink::EventSink;
use crate::webhooks::target::TargetPolicy;

/// The server's shared parts, as both adapters use them.
#[derive(Clone)]
pub struct Services {
    pub registry: Arc<Registry>,
    pub hub: Arc<StreamHub>,
    pub auth: Authenticator,
    pub ingest: Ingest,
    /// What the features produce, recordings and clips included.
    pub features: Arc<FeatureEngine>,
    /// Where publishers reach the SRT and RTMP listeners (shown in
    /// `Stream.ingest`).
    pub ingest_addrs: convert::IngestAddrs,
    /// Signs media URLs (`SignUrl`) and checks them (HTTP routes).
    pub signer: Arc<UrlSigner>,
    /// `scheme://host:port` signed URLs start with.
    pub http_public_url: String,
    /// Where recordings and clips are kept beside the data dir.
    pub objects: Option<ObjectStorage>,
    /// The other nodes, where live data of their sessions is.
    pub peers: Arc<peers::Peers>,
    /// Webhook events that report no registry change ([`crate::webhooks`]).
    pub events: Arc<EventSink>,
    /// What webhook endpoints may reach.
    pub webhook_policy: TargetPolicy,
}

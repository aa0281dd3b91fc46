//! The gRPC services of `liveproc.v1`, one file per service, sharing an
//! [`ApiState`]. Handlers authenticate, validate, call the registry and the
//! stream hub, and return `crate::error::Error`, which is turned into a
//! `tonic::Status` (with `google.rpc` details) in one place.

mod convert;
mod files;
pub mod live_processing;
pub mod organizations;
pub(crate) mod recordings;
pub(crate) mod replay;
mod signed_urls;
mod subscriber;

use std::sync::Arc;

use crate::auth::Authenticator;
use crate::features::FeatureEngine;
use crate::ingest::Ingest;
use crate::registry::Registry;
use crate::streams::StreamHub;
use crate::url_signing::UrlSigner;

/// Everything the services need.
#[derive(Clone)]
pub struct ApiState {
    pub registry: Arc<Registry>,
    pub hub: Arc<StreamHub>,
    pub auth: Authenticator,
    pub ingest: Ingest,
    /// What the features produce, recordings and clips included.
    pub features: Arc<FeatureEngine>,
    /// `host:port` publishers use for SRT (shown in `Stream.ingest.srt_url`).
    pub srt_public_addr: String,
    /// Signs media URLs (`SignUrl`) and checks them (HTTP routes).
    pub signer: Arc<UrlSigner>,
    /// `scheme://host:port` signed URLs start with.
    pub http_public_url: String,
}

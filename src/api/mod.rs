//! The gRPC services of `liveproc.v1`, one file per service, over the
//! [`crate::service`] layer the HTTP routes share. Handlers authenticate,
//! validate, call the service layer, the registry and the stream hub, and
//! return `crate::error::Error`, which is turned into a `tonic::Status`
//! (with `google.rpc` details) in one place.

pub mod cluster;
mod files;
pub mod live_processing;
pub mod organizations;
pub(crate) mod recordings;
pub(crate) mod replay;
mod signed_urls;
mod subscriber;
pub mod webhooks;

pub use crate::service::Services;

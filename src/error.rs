//! The crate's error type and its single mapping to `tonic::Status`.
//!
//! Every module returns [`Error`]; only [`From<Error> for tonic::Status`]
//! decides gRPC codes and `google.rpc` details, so a client sees the same
//! shape of error for the same problem whichever RPC it called.

use std::collections::HashMap;

use tonic::Code;

use crate::media::{is_disk_full, MediaError};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// Domain used in `google.rpc.ErrorInfo`.
pub const ERROR_DOMAIN: &str = "liveproc.v1";

/// `ErrorInfo.reason` when a feature needs a package the organization lacks.
pub const REASON_UPGRADE_NEEDED: &str = "UPGRADE_NEEDED";
/// `ErrorInfo.reason` when the stream already has a publisher.
pub const REASON_PUBLISHER_ACTIVE: &str = "PUBLISHER_ACTIVE";
/// `ErrorInfo.reason` when the stream has no live media for the request.
pub const REASON_STREAM_NOT_LIVE: &str = "STREAM_NOT_LIVE";
/// `ErrorInfo.reason` when ingested bytes are not usable media.
pub const REASON_INVALID_MEDIA: &str = "INVALID_MEDIA";
/// `ErrorInfo.reason` when an organization is at one of its quotas
/// (with a `QuotaFailure` naming it).
pub const REASON_QUOTA_EXCEEDED: &str = "QUOTA_EXCEEDED";

/// " (live on node X)" when another node holds the session.
fn on_node(node_id: &Option<String>) -> String {
    node_id
        .as_ref()
        .map(|node| format!(" (live on node {node})"))
        .unwrap_or_default()
}

/// One invalid field of a request: its path and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub description: String,
}

impl Violation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid request: {}", describe(.0))]
    InvalidArgument(Vec<Violation>),

    #[error("{kind} {:?} not found", bounded(.name, MAX_ECHOED_NAME_LEN))]
    NotFound { kind: &'static str, name: String },

    #[error("{kind} {:?} already exists", bounded(.name, MAX_ECHOED_NAME_LEN))]
    AlreadyExists { kind: &'static str, name: String },

    #[error("Upgrade needed: live processing is not enabled for organization {organization_id}; enable the live processing package to use {feature}")]
    UpgradeNeeded {
        organization_id: String,
        feature: String,
    },

    #[error("missing or unknown API key")]
    Unauthenticated,

    #[error("this API key may not call {0}")]
    PermissionDenied(&'static str),

    #[error("stream {stream_id:?} already has a publisher{}", on_node(.node_id))]
    PublisherActive {
        stream_id: String,
        /// The other node whose session it is, in a cluster.
        node_id: Option<String>,
    },

    #[error("invalid media on stream {stream_id:?}: {reason}")]
    InvalidMedia { stream_id: String, reason: String },

    #[error("stream {stream_id:?}: {what}")]
    NotLive {
        stream_id: String,
        what: &'static str,
    },

    #[error("storage error: {0}")]
    Storage(String),

    /// The disk is full: writes fail until space is freed.
    #[error("storage full: {0}")]
    StorageFull(String),

    /// Storage failed in a way that may pass (an I/O error; the store is
    /// being reopened): retry later.
    #[error("storage unavailable: {0}")]
    StorageUnavailable(String),

    #[error("media error: {0}")]
    Media(#[from] MediaError),

    #[error("shutting down")]
    ShuttingDown,

    #[error("organization {organization_id} is at its {quota} quota ({used} of {limit}); ask the operator for more")]
    QuotaExceeded {
        organization_id: String,
        /// The quota's name ([`crate::registry::Quota::name`]).
        quota: &'static str,
        limit: u64,
        used: u64,
    },

    #[error("node {node_id} is at its limit of {max_streams} live streams")]
    NodeFull { node_id: String, max_streams: u32 },

    /// The node is not keeping up with the sessions it has (admission
    /// control, [`crate::headroom`]).
    #[error(
        "node {node_id} is overloaded ({reason}) and takes no new session now; try again later"
    )]
    NodeOverloaded { node_id: String, reason: String },

    /// A session let go to keep the node's other sessions whole.
    #[error("stream {stream_id:?}: the session was ended because node {node_id} is overloaded ({reason}); publish again later")]
    Shed {
        stream_id: String,
        node_id: String,
        reason: String,
    },

    #[error("stream {stream_id:?}: another node took over its live session")]
    TakenOver { stream_id: String },

    #[error("stream {stream_id:?}: its stream key was rotated; publish again with the new key")]
    KeyRotated { stream_id: String },

    /// A write of a session another node has taken over (fencing).
    #[error("{what}: refused, another node took over the session that wrote it")]
    Fenced { what: String },
}

fn describe(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Error::InvalidArgument(vec![Violation::new(field, description)])
    }

    pub fn stream_not_found(stream_id: impl Into<String>) -> Self {
        Error::NotFound {
            kind: "stream",
            name: stream_id.into(),
        }
    }

    pub fn organization_not_found(id: impl Into<String>) -> Self {
        Error::NotFound {
            kind: "organization",
            name: id.into(),
        }
    }
}

impl From<redb::Error> for Error {
    fn from(e: redb::Error) -> Self {
        match &e {
            redb::Error::Io(io) if is_disk_full(io) => Error::StorageFull(e.to_string()),
            redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::DatabaseClosed => {
                Error::StorageUnavailable(e.to_string())
            }
            _ => Error::Storage(e.to_string()),
        }
    }
}

macro_rules! storage_error_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::from(redb::Error::from(e))
            }
        }
    )*};
}
storage_error_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

/// The longest status message sent: a message travels in a response
/// header (`grpc-message`), where clients allow about 8–16 KiB in all.
pub const MAX_MESSAGE_LEN: usize = 1024;
/// The longest resource name echoed in `google.rpc.ResourceInfo`.
const MAX_ECHOED_NAME_LEN: usize = 128;

/// `text` cut to at most `max` bytes (at a character boundary, marked
/// with `…`): what a request sent is never echoed back unbounded.
pub fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        let message = bounded(&error.to_string(), MAX_MESSAGE_LEN);
        match error {
            Error::InvalidArgument(violations) => {
                let violations: Vec<FieldViolation> = violations
                    .into_iter()
                    .map(|v| FieldViolation::new(v.field, v.description))
                    .collect();
                tonic::Status::with_error_details(
                    Code::InvalidArgument,
                    message,
                    ErrorDetails::with_bad_request(violations),
                )
            }
            Error::NotFound { kind, name } => tonic::Status::with_error_details(
                Code::NotFound,
                message,
                ErrorDetails::with_resource_info(
                    kind,
                    bounded(&name, MAX_ECHOED_NAME_LEN),
                    "",
                    "not found",
                ),
            ),
            Error::AlreadyExists { kind, name } => tonic::Status::with_error_details(
                Code::AlreadyExists,
                message,
                ErrorDetails::with_resource_info(
                    kind,
                    bounded(&name, MAX_ECHOED_NAME_LEN),
                    "",
                    "already exists",
                ),
            ),
            Error::UpgradeNeeded {
                organization_id,
                feature,
            } => tonic::Status::with_error_details(
                Code::FailedPrecondition,
                message,
                ErrorDetails::with_error_info(
                    REASON_UPGRADE_NEEDED,
                    ERROR_DOMAIN,
                    HashMap::from([
                        ("organization_id".to_string(), organization_id),
                        ("package".to_string(), "live_processing".to_string()),
                        ("feature".to_string(), feature),
                    ]),
                ),
            ),
            Error::Unauthenticated => tonic::Status::unauthenticated(message),
            Error::PermissionDenied(_) => tonic::Status::permission_denied(message),
            Error::PublisherActive { stream_id, .. } => tonic::Status::with_error_details(
                Code::FailedPrecondition,
                message,
                ErrorDetails::with_error_info(
                    REASON_PUBLISHER_ACTIVE,
                    ERROR_DOMAIN,
                    HashMap::from([("stream_id".to_string(), stream_id)]),
                ),
            ),
            Error::InvalidMedia { stream_id, .. } => tonic::Status::with_error_details(
                Code::InvalidArgument,
                message,
                ErrorDetails::with_error_info(
                    REASON_INVALID_MEDIA,
                    ERROR_DOMAIN,
                    HashMap::from([("stream_id".to_string(), stream_id)]),
                ),
            ),
            Error::NotLive { stream_id, .. } => tonic::Status::with_error_details(
                Code::FailedPrecondition,
                message,
                ErrorDetails::with_error_info(
                    REASON_STREAM_NOT_LIVE,
                    ERROR_DOMAIN,
                    HashMap::from([("stream_id".to_string(), stream_id)]),
                ),
            ),
            Error::Media(e) if e.is_disk_full() => tonic::Status::resource_exhausted(message),
            Error::Storage(_) | Error::Media(_) => tonic::Status::internal(message),
            Error::StorageFull(_) => tonic::Status::resource_exhausted(message),
            Error::StorageUnavailable(_) => tonic::Status::unavailable(message),
            Error::ShuttingDown => tonic::Status::unavailable(message),
            Error::QuotaExceeded {
                organization_id,
                quota,
                limit,
                used,
            } => {
                let mut details = ErrorDetails::with_quota_failure_violation(
                    format!("organizations/{organization_id}/quotas/{quota}"),
                    format!("{used} of {limit} used"),
                );
                details.set_error_info(
                    REASON_QUOTA_EXCEEDED,
                    ERROR_DOMAIN,
                    HashMap::from([
                        ("organization_id".to_string(), organization_id),
                        ("quota".to_string(), quota.to_string()),
                        ("limit".to_string(), limit.to_string()),
                    ]),
                );
                tonic::Status::with_error_details(Code::ResourceExhausted, message, details)
            }
            Error::NodeFull { .. } | Error::NodeOverloaded { .. } => {
                tonic::Status::resource_exhausted(message)
            }
            Error::Shed { .. } => tonic::Status::unavailable(message),
            Error::TakenOver { .. } | Error::Fenced { .. } => tonic::Status::aborted(message),
            Error::KeyRotated { .. } => tonic::Status::unauthenticated(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unbounded_input_is_never_echoed_unbounded() {
        let huge = "x".repeat(1 << 20);
        let status = tonic::Status::from(Error::stream_not_found(&huge));
        assert_eq!(status.code(), Code::NotFound);
        assert!(
            status.message().len() <= MAX_MESSAGE_LEN,
            "{}",
            status.message().len()
        );
        let details = status.get_error_details();
        let info = details.resource_info().expect("resource info");
        assert!(info.resource_name.len() <= MAX_ECHOED_NAME_LEN);
        // Cut at a character boundary.
        assert_eq!(bounded("ééé", 4), "…");
        assert_eq!(bounded("abc", 3), "abc");
        assert_eq!(bounded("abcdef", 5), "ab…");
    }
}

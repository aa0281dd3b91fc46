//! The audit log: who changed what, recorded by the API after each change
//! it makes (organizations, packages, keys, quotas, streams, deletions of
//! media, webhook endpoints). An event never holds a secret: keys and
//! passphrases are named by the action, never written.
//!
//! The event is written right after the change, not in its transaction:
//! a registry that fails between the two loses the event (logged as an
//! error with the event), not the change.

use std::net::SocketAddr;

use crate::auth::Principal;
use crate::ids;
use crate::proto::timestamp_from_millis;
use crate::proto::v1 as pb;
use crate::registry::{now_millis, AuditEvent, Registry};

/// Actions, as `ListAuditEvents` names them.
pub mod action {
    pub const ORGANIZATION_CREATE: &str = "organization.create";
    pub const PACKAGES_SET: &str = "organization.packages.set";
    pub const API_KEY_ROTATE: &str = "organization.api_key.rotate";
    pub const SIGNED_URLS_REVOKE: &str = "organization.signed_urls.revoke";
    pub const QUOTAS_SET: &str = "organization.quotas.set";
    pub const STREAM_CREATE: &str = "stream.create";
    pub const STREAM_DELETE: &str = "stream.delete";
    pub const STREAM_KEY_ROTATE: &str = "stream.key.rotate";
    pub const PROCESSING_UPDATE: &str = "stream.processing.update";
    pub const RECORDING_DELETE: &str = "recording.delete";
    pub const CLIP_DELETE: &str = "clip.delete";
    pub const WEBHOOK_ENDPOINT_CREATE: &str = "webhook_endpoint.create";
    pub const WEBHOOK_ENDPOINT_UPDATE: &str = "webhook_endpoint.update";
    pub const WEBHOOK_ENDPOINT_DELETE: &str = "webhook_endpoint.delete";
    pub const WEBHOOK_SECRET_ROTATE: &str = "webhook_endpoint.secret.rotate";
}

/// Who made a change, and from where.
pub struct Actor {
    /// `admin`, or the organization's id.
    pub name: String,
    pub peer: Option<SocketAddr>,
}

impl Actor {
    pub fn new(principal: &Principal, peer: Option<SocketAddr>) -> Self {
        let name = match principal {
            Principal::Admin => "admin".to_string(),
            Principal::Organization(id) => id.clone(),
        };
        Self { name, peer }
    }

    /// An organization acting with its own key.
    pub fn organization(id: &str, peer: Option<SocketAddr>) -> Self {
        Self::new(&Principal::Organization(id.to_string()), peer)
    }
}

/// Records that `actor` did `action` to `resource` of `organization_id`,
/// with `details` (a JSON object; `Null` for none).
pub async fn record(
    registry: &Registry,
    actor: &Actor,
    organization_id: &str,
    action: &str,
    resource: String,
    details: serde_json::Value,
) {
    let time_ms = now_millis();
    let event = AuditEvent {
        id: ids::new_audit_id(time_ms),
        time_ms,
        actor: actor.name.clone(),
        organization_id: organization_id.to_string(),
        action: action.to_string(),
        resource,
        details: if details.is_null() {
            String::new()
        } else {
            details.to_string()
        },
        peer: actor.peer.map(|p| p.ip().to_string()).unwrap_or_default(),
    };
    if let Err(e) = registry.record_audit(&event).await {
        tracing::error!(error = %e, ?event, "audit event not recorded");
    }
}

pub fn to_api(event: &AuditEvent) -> pb::AuditEvent {
    pb::AuditEvent {
        id: event.id.clone(),
        time: Some(timestamp_from_millis(event.time_ms)),
        actor: event.actor.clone(),
        organization_id: event.organization_id.clone(),
        action: event.action.clone(),
        resource: event.resource.clone(),
        details: event.details.clone(),
        peer: event.peer.clone(),
    }
}

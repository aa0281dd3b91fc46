//! The audit log: who changed what, recorded by the API after each change
//! it makes (organizations, packages, keys, quotas, streams, deletions of
//! media, webhook endpoints). An event never holds a secret: keys and
//! passphrases are named by the action, never written.
//!
//! The event is written right after the change, not in its transaction:
//! a registry that fails between the two loses the event (logged as an
//! error with the event), not the change.
//!
//! Events older than the retention (`--audit-retention-days`) are deleted
//! by [`prune`], so the log does not grow without end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

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

/// How often events past the retention are looked for.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Events deleted in one transaction.
const PRUNE_BATCH: usize = 5000;

/// Deletes the events older than `retention`, now and every
/// [`PRUNE_EVERY`], until `shutdown`. With several nodes each prunes; the
/// deletes are the same and either's are enough.
pub async fn prune(registry: Arc<Registry>, retention: Duration, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(PRUNE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let before = now_millis() - retention.as_millis() as i64;
        let mut pruned = 0;
        loop {
            match registry.prune_audit_events(before, PRUNE_BATCH).await {
                Ok(n) => {
                    pruned += n;
                    if n < PRUNE_BATCH as u64 || shutdown.is_cancelled() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot delete old audit events");
                    break;
                }
            }
        }
        if pruned > 0 {
            tracing::info!(
                pruned,
                retention_days = retention.as_secs() / 86400,
                "deleted audit events past their retention"
            );
        }
    }
}

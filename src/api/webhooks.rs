//! `liveproc.v1.Webhooks`: an organization's webhook endpoints, their
//! secrets and their delivery attempts ([`crate::webhooks`] delivers).
//! Another organization's endpoint is "not found", exactly like a missing
//! one.

use crate::service::audit::{self, action, Actor};
use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use tonic::{Request, Response, Status};

use super::Services;
use crate::error::{Error, Result};
use crate::proto::v1 as pb;
use crate::proto::v1::webhooks_server::Webhooks;
use crate::proto::{timestamp_from_millis, to_duration};
use crate::registry::webhooks::{AttemptOutcome, WebhookAttempt, WebhookEndpointRecord};
use crate::registry::{now_millis, Registry};
use crate::validate;
use crate::webhooks::{event_types, events, signature};

/// How often a watcher's endpoints are read again.
const WATCH_POLL: Duration = Duration::from_secs(2);
/// Endpoints one organization may have.
pub const MAX_ENDPOINTS: usize = 20;
/// How long the previous secret signs after a rotation, by default and
/// at most.
const DEFAULT_KEEP_PREVIOUS: Duration = Duration::from_secs(24 * 3600);
const MAX_KEEP_PREVIOUS: Duration = Duration::from_secs(7 * 24 * 3600);

pub struct WebhooksService {
    state: Services,
}

impl WebhooksService {
    pub fn new(state: Services) -> Self {
        Self { state }
    }

    async fn endpoint(&self, org_id: &str, endpoint_id: &str) -> Result<WebhookEndpointRecord> {
        validate::id("endpoint_id", endpoint_id)?;
        self.state
            .registry
            .webhook_endpoint(org_id, endpoint_id)
            .await?
            .ok_or_else(|| not_found(endpoint_id))
    }

    /// The endpoint as the API shows it; its secret only when `secret`.
    async fn to_api(
        &self,
        record: &WebhookEndpointRecord,
        secret: bool,
    ) -> Result<pb::WebhookEndpoint> {
        endpoint_to_api(&self.state.registry, record, secret).await
    }

    fn event_types(names: &[String]) -> Result<Vec<String>> {
        event_types::resolve(names).map_err(|unknown| {
            Error::invalid(
                "event_types",
                format!(
                    "{unknown:?} is not an event type (one of {})",
                    event_types::ALL.join(", ")
                ),
            )
        })
    }

    /// Records a change to an endpoint, with its settings (never its
    /// secret; its URL redacted).
    async fn audit(&self, actor: &Actor, record: &WebhookEndpointRecord, action: &str) {
        let details = serde_json::json!({
            "url": crate::redact::uri(&record.url),
            "event_types": record.event_types,
            "enabled": record.enabled,
        });
        let resource = format!("webhook_endpoints/{}", record.id);
        audit::record(
            &self.state.registry,
            actor,
            &record.organization_id,
            action,
            resource,
            details,
        )
        .await;
    }

    async fn update(&self, record: &WebhookEndpointRecord) -> Result<()> {
        if !self.state.registry.update_webhook_endpoint(record).await? {
            return Err(not_found(&record.id));
        }
        self.state
            .events
            .subscriptions_changed(&record.organization_id);
        Ok(())
    }
}

/// An endpoint as the API shows it; its secret only when `secret`.
async fn endpoint_to_api(
    registry: &Registry,
    record: &WebhookEndpointRecord,
    secret: bool,
) -> Result<pb::WebhookEndpoint> {
    let pending = registry.pending_webhook_messages(&record.id).await?;
    let now = now_millis();
    Ok(pb::WebhookEndpoint {
        id: record.id.clone(),
        url: record.url.clone(),
        event_types: record.event_types.clone(),
        secret: if secret {
            record.secret.clone()
        } else {
            String::new()
        },
        enabled: record.enabled,
        disabled_reason: record.disabled_reason.clone(),
        create_time: Some(timestamp_from_millis(record.create_time_ms)),
        pending_deliveries: pending,
        previous_secret_expire_time: (record.previous_secret.is_some()
            && record.previous_secret_until_ms > now)
            .then(|| timestamp_from_millis(record.previous_secret_until_ms)),
    })
}

/// What a watcher of endpoints is shown of one: a change to any of it but
/// its run of failures (which moves with every failed attempt).
fn visible(record: &WebhookEndpointRecord) -> WebhookEndpointRecord {
    WebhookEndpointRecord {
        failing_since_ms: 0,
        ..record.clone()
    }
}

/// Sends the organization's endpoints, then their changes, until the
/// watcher leaves: read again on every change made through this node and
/// every [`WATCH_POLL`] (changes made elsewhere, endpoints disabled).
async fn watch_endpoints(
    registry: Arc<Registry>,
    mut changes: tokio::sync::broadcast::Receiver<String>,
    org: String,
    first: Vec<WebhookEndpointRecord>,
    tx: mpsc::Sender<Result<pb::WebhookEndpointEvent, Status>>,
) {
    use pb::webhook_endpoint_event::Kind;
    let send = |kind: Kind, endpoint: pb::WebhookEndpoint| {
        tx.send(Ok(pb::WebhookEndpointEvent {
            kind: kind as i32,
            endpoint: Some(endpoint),
        }))
    };
    let mut known: BTreeMap<String, WebhookEndpointRecord> = BTreeMap::new();
    for record in first {
        let Ok(endpoint) = endpoint_to_api(&registry, &record, false).await else {
            return;
        };
        if send(Kind::Snapshot, endpoint).await.is_err() {
            return;
        }
        known.insert(record.id.clone(), visible(&record));
    }
    loop {
        tokio::select! {
            _ = tx.closed() => return,
            _ = tokio::time::sleep(WATCH_POLL) => {}
            changed = changes.recv() => {
                if matches!(&changed, Ok(o) if *o != org) {
                    continue;
                }
            }
        }
        let Ok(now) = registry.webhook_endpoints(&org).await else {
            continue;
        };
        let mut seen = BTreeMap::new();
        for record in now {
            let shown = visible(&record);
            if known.get(&record.id) != Some(&shown) {
                let Ok(endpoint) = endpoint_to_api(&registry, &record, false).await else {
                    continue;
                };
                if send(Kind::Changed, endpoint).await.is_err() {
                    return;
                }
            }
            seen.insert(record.id.clone(), shown);
        }
        for gone in known.keys().filter(|id| !seen.contains_key(*id)) {
            let endpoint = pb::WebhookEndpoint {
                id: gone.clone(),
                ..Default::default()
            };
            if send(Kind::Deleted, endpoint).await.is_err() {
                return;
            }
        }
        known = seen;
    }
}

fn not_found(endpoint_id: &str) -> Error {
    Error::NotFound {
        kind: "webhook endpoint",
        name: endpoint_id.to_string(),
    }
}

fn attempt_to_api(attempt: &WebhookAttempt) -> pb::WebhookDelivery {
    let outcome = match attempt.outcome {
        AttemptOutcome::Delivered => pb::WebhookDeliveryOutcome::Delivered,
        AttemptOutcome::Retrying => pb::WebhookDeliveryOutcome::Retrying,
        AttemptOutcome::GaveUp => pb::WebhookDeliveryOutcome::GaveUp,
    };
    pb::WebhookDelivery {
        event_id: attempt.event_id.clone(),
        event_type: attempt.event_type.clone(),
        attempt: attempt.attempt,
        attempt_time: Some(timestamp_from_millis(attempt.time_ms)),
        response_status: u32::from(attempt.status),
        error: attempt.error.clone(),
        duration: Some(to_duration(Duration::from_millis(
            attempt.duration_ms.max(0) as u64,
        ))),
        outcome: outcome as i32,
        next_attempt_time: (attempt.next_attempt_ms > 0)
            .then(|| timestamp_from_millis(attempt.next_attempt_ms)),
    }
}

#[tonic::async_trait]
impl Webhooks for WebhooksService {
    type WatchWebhookEndpointsStream =
        Pin<Box<dyn futures::Stream<Item = Result<pb::WebhookEndpointEvent, Status>> + Send>>;

    async fn watch_webhook_endpoints(
        &self,
        request: Request<pb::WatchWebhookEndpointsRequest>,
    ) -> Result<Response<Self::WatchWebhookEndpointsStream>, Status> {
        let org = self
            .state
            .auth
            .require_organization(request.metadata())
            .await?;
        let changes = self.state.events.endpoint_changes();
        let first = self.state.registry.webhook_endpoints(&org).await?;
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(watch_endpoints(
            Arc::clone(&self.state.registry),
            changes,
            org,
            first,
            tx,
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn create_webhook_endpoint(
        &self,
        request: Request<pb::CreateWebhookEndpointRequest>,
    ) -> Result<Response<pb::WebhookEndpoint>, Status> {
        let org = self
            .state
            .auth
            .require_organization(request.metadata())
            .await?;
        let actor = Actor::organization(&org, request.remote_addr());
        let req = request.into_inner();
        validate::required("url", &req.url)?;
        let url = self
            .state
            .webhook_policy
            .check_url(&req.url)
            .map_err(|reason| Error::invalid("url", reason))?;
        let event_types = Self::event_types(&req.event_types)?;
        let existing = self.state.registry.webhook_endpoints(&org).await?;
        if existing.len() >= MAX_ENDPOINTS {
            return Err(Error::invalid(
                "url",
                format!("an organization has at most {MAX_ENDPOINTS} webhook endpoints; delete one first"),
            )
            .into());
        }
        let record = WebhookEndpointRecord {
            id: crate::ids::new_webhook_endpoint_id(),
            organization_id: org.clone(),
            url,
            event_types,
            secret: signature::new_secret(),
            previous_secret: None,
            previous_secret_until_ms: 0,
            enabled: true,
            disabled_reason: String::new(),
            failing_since_ms: 0,
            create_time_ms: now_millis(),
        };
        self.state.registry.create_webhook_endpoint(&record).await?;
        self.state.events.subscriptions_changed(&org);
        tracing::info!(organization = %org, endpoint = %record.id, types = ?record.event_types, "webhook endpoint created");
        self.audit(&actor, &record, action::WEBHOOK_ENDPOINT_CREATE)
            .await;
        Ok(Response::new(self.to_api(&record, true).await?))
    }

    async fn get_webhook_endpoint(
        &self,
        request: Request<pb::GetWebhookEndpointRequest>,
    ) -> Result<Response<pb::WebhookEndpoint>, Status> {
        let org = self
            .state
            .auth
            .require_organization(request.metadata())
            .await?;
        let record = self.endpoint(&org, &request.get_ref().endpoint_id).await?;
        Ok(Response::new(self.to_api(&record, false).await?))
    }

    async fn list_webhook_endpoints(
        &self,
        request: Request<pb::ListWebhookEndpointsRequest>,
    ) -> Result<Response<pb::ListWebhookEndpointsResponse>, Status> {
        let org = self
            .state
            .auth
            .require_organization(request.metadata())
            .await?;
        let mut endpoints = Vec::new();
        for record in self.state.registry.webhook_endpoints(&org).await? {
            endpoints.push(self.to_api(&record, false).await?);
        }
        Ok(Response::new(pb::ListWebhookEndpointsResponse {
            endpoints,
        }))
    }

    async fn update_webhook_endpoint(
        &self,
        request: Request<pb::UpdateWebhookEndpointRequest>,
    ) -> Result<Response<pb::WebhookEndpoint>, Status> {
        let org = self
            .state
            .auth
            .require_organization(request.metadata())
            .await?;
        let actor = Actor::organization(&org, request.remote_addr());
        let req = request.into_inner();
        let mut record = self.endpoint(&org, &req.endpoint_id).await?;
        if !req.event_types.is_empty() {
            record.event_types = Self::event_types(&req.event_types)?;
        }
        match req.enabled {
            Some(true) => {
                // Enabled again: a new run of failures starts from the
                // next attempt (as PostgreSQL's update does it).
                if !record.enabled {
                    record.failing_since_ms = 0;
                }
                record.enabled = true;
                record.disabled_reason.clear();
            }
            Some(false) if record.enabled => {
                record.enabled = false;
                record.disabled_reason = "disabled by the organization".to_string();
            }
            _ => {}
        }
        self.update(&record).await?;
        tracing::info!(organization = %org, endpoint = %record.id, enabled = record.enabled, types = ?record.event_types, "webhook endpoint updated");
        self.audit(&actor, &record, action::WEBHOOK_ENDPOINT_UPDATE)
            .await;
        Ok(Response::new(self.to_api(&record, false).await?))
    }

    async fn delete_webhook_endpoint(
        &self,
        request: Request<pb::DeleteWebhookEndpointRequest>,
    ) -> Result<Response<pb::DeleteWebhookEndpointResponse>, Status> {
        let org = self
            .state
            .auth
            .require_organization(request.metadata())
            .await?;
        let actor = Actor::organization(&org, request.remote_addr());
        let id = &request.get_ref().endpoint_id;
        validate::id("endpoint_id", id)?;
        if !self
            .state
            .registry
            .delete_webhook_endpoint(&org, id)
            .await?
        {
            return Err(not_found(id).into());
        }
        self.state.events.subscriptions_changed(&org);
        tracing::info!(organization = %org, endpoint = %id, "webhook endpoint deleted");
        let resource = format!("webhook_endpoints/{id}");
        audit::record(
            &self.state.registry,
            &actor,
            &org,
            action::WEBHOOK_ENDPOINT_DELETE,
            resource,
            serde_json::Value::Null,
        )
        .await;
        Ok(Response::new(pb::DeleteWebhookEndpointResponse {}))
    }

    async fn rotate_webhook_secret(
        &self,
        request: Request<pb::RotateWebhookSecretRequest>,
    ) -> Result<Response<pb::WebhookEndpoint>, Status> {
        let org = self
            .state
            .auth
            .require_organization(request.metadata())
            .await?;
        let actor = Actor::organization(&org, request.remote_addr());
        let req = request.into_inner();
        let mut record = self.endpoint(&org, &req.endpoint_id).await?;
        let keep = match &req.keep_previous_for {
            None => DEFAULT_KEEP_PREVIOUS,
            Some(d) if d.seconds < 0 || d.nanos < 0 => {
                return Err(Error::invalid("keep_previous_for", "must not be negative").into())
            }
            Some(d) => Duration::new(d.seconds as u64, d.nanos as u32),
        };
        if keep > MAX_KEEP_PREVIOUS {
            return Err(Error::invalid("keep_previous_for", "must be at most 7 days").into());
        }
        let old = std::mem::replace(&mut record.secret, signature::new_secret());
        record.previous_secret = (!keep.is_zero()).then_some(old);
        record.previous_secret_until_ms = now_millis() + keep.as_millis() as i64;
        self.update(&record).await?;
        tracing::info!(organization = %org, endpoint = %record.id, keep_previous_s = keep.as_secs(), "webhook secret rotated");
        self.audit(&actor, &record, action::WEBHOOK_SECRET_ROTATE)
            .await;
        Ok(Response::new(self.to_api(&record, true).await?))
    }

    async fn list_webhook_deliveries(
        &self,
        request: Request<pb::ListWebhookDeliveriesRequest>,
    ) -> Result<Response<pb::ListWebhookDeliveriesResponse>, Status> {
        let org = self
            .state
            .auth
            .require_organization(request.metadata())
            .await?;
        let req = request.into_inner();
        let page_size = validate::page_size("page_size", req.page_size)?;
        let record = self.endpoint(&org, &req.endpoint_id).await?;
        if req.page_token.len() > 32 || !req.page_token.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::invalid("page_token", "is not a token this call gave").into());
        }
        let page = self
            .state
            .registry
            .webhook_attempts(&record.id, &req.page_token, page_size)
            .await?;
        Ok(Response::new(pb::ListWebhookDeliveriesResponse {
            deliveries: page.items.iter().map(attempt_to_api).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn send_test_webhook(
        &self,
        request: Request<pb::SendTestWebhookRequest>,
    ) -> Result<Response<pb::SendTestWebhookResponse>, Status> {
        let org = self
            .state
            .auth
            .require_organization(request.metadata())
            .await?;
        let record = self.endpoint(&org, &request.get_ref().endpoint_id).await?;
        let event = events::test(&org, &record.id);
        self.state.registry.queue_webhook_event(&event).await?;
        self.state.events.queued.notify_one();
        Ok(Response::new(pb::SendTestWebhookResponse {
            event_id: event.id,
        }))
    }
}

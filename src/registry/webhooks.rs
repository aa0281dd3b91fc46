//! The webhook records of the registry: endpoints, the outbox of events
//! waiting to be delivered to them, and the log of delivery attempts.
//!
//! An event is queued in the same transaction as the change it reports
//! (a recording catalogued, a clip stored, processing changed): one
//! message per endpoint of the organization that takes its type, so a
//! change that commits has its events, and one that is refused (fenced)
//! has none. Messages leave the outbox when delivered or given up; the
//! attempts stay in the log (pruned after [`ATTEMPTS_KEPT_FOR_MS`]).

use serde::{Deserialize, Serialize};

/// How long delivery attempts stay listed.
pub const ATTEMPTS_KEPT_FOR_MS: i64 = 7 * 24 * 3600 * 1000;

/// An organization's webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpointRecord {
    pub id: String,
    pub organization_id: String,
    pub url: String,
    /// The event types it takes (names, e.g. `stream.live`).
    pub event_types: Vec<String>,
    /// `whsec_<base64>`, the key deliveries are signed with.
    pub secret: String,
    /// The secret before the last rotation, signing beside the new one
    /// until `previous_secret_until_ms`.
    #[serde(default)]
    pub previous_secret: Option<String>,
    #[serde(default)]
    pub previous_secret_until_ms: i64,
    pub enabled: bool,
    #[serde(default)]
    pub disabled_reason: String,
    /// When the current run of failed attempts began (0: not failing).
    #[serde(default)]
    pub failing_since_ms: i64,
    pub create_time_ms: i64,
}

impl WebhookEndpointRecord {
    /// The secrets that sign a delivery at `now_ms`: the current one, and
    /// the previous one while it has not expired.
    pub fn signing_secrets(&self, now_ms: i64) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let Some(previous) = &self.previous_secret {
            if now_ms < self.previous_secret_until_ms {
                secrets.push(previous);
            }
        }
        secrets
    }

    /// Whether it takes events of type `event_type`.
    pub fn takes(&self, event_type: &str) -> bool {
        self.enabled && self.event_types.iter().any(|t| t == event_type)
    }
}

/// An event to queue for an organization's endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// The `webhook-id` of every delivery of it.
    pub id: String,
    pub organization_id: String,
    pub event_type: String,
    pub time_ms: i64,
    /// The payload's `data` (a JSON object), without its signed URL.
    pub data: String,
    /// The media route whose signed URL goes into `data.url` (empty when
    /// the event has no media).
    #[serde(default)]
    pub media_path: String,
    /// Only to this endpoint, whatever types it takes (a test event).
    #[serde(default)]
    pub endpoint_id: Option<String>,
}

/// An event queued for one endpoint, not yet delivered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookMessage {
    /// Its place in the outbox (increasing).
    pub seq: i64,
    pub endpoint_id: String,
    pub event: WebhookEvent,
    /// Attempts made so far.
    pub attempts: u32,
    pub next_attempt_ms: i64,
}

/// What an attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttemptOutcome {
    Delivered,
    /// Failed; the next attempt is due at `next_attempt_ms`.
    Retrying,
    /// Failed, and the event is past its retry period: not delivered.
    GaveUp,
}

/// One attempt to deliver one message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookAttempt {
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    /// 1 for the first.
    pub attempt: u32,
    pub time_ms: i64,
    /// The receiver's HTTP status; 0 when none came.
    pub status: u16,
    pub error: String,
    pub duration_ms: i64,
    pub outcome: AttemptOutcome,
    /// When the next attempt is due (`Retrying`), else 0.
    pub next_attempt_ms: i64,
}

/// The result of an attempt, as the registry records it.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub attempt: WebhookAttempt,
    /// Disable the endpoint (with this reason) when it has been failing
    /// since at least this time (ms since the epoch) — its retry period.
    pub disable_if_failing_since: i64,
}

/// Whether an endpoint was disabled by an attempt's result.
pub type Disabled = bool;

/// Updates `endpoint`'s run of failures with an attempt's result, and
/// disables it when that run began before the result's limit.
pub fn apply_attempt(endpoint: &mut WebhookEndpointRecord, result: &AttemptResult) -> Disabled {
    let attempt = &result.attempt;
    if attempt.outcome == AttemptOutcome::Delivered {
        endpoint.failing_since_ms = 0;
        return false;
    }
    if endpoint.failing_since_ms == 0 {
        endpoint.failing_since_ms = attempt.time_ms;
    }
    if endpoint.enabled && endpoint.failing_since_ms <= result.disable_if_failing_since {
        endpoint.enabled = false;
        endpoint.disabled_reason = format!(
            "every delivery failed since {} (last: {})",
            crate::proto::timestamp_to_rfc3339(&crate::proto::timestamp_from_millis(
                endpoint.failing_since_ms
            )),
            attempt.error
        );
        return true;
    }
    false
}

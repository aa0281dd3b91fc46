//! The delivery task: takes due messages from the registry's outbox,
//! POSTs each to its endpoint, signed, and records every attempt.
//!
//! - At least once: a message leaves the outbox only once a 2xx answer
//!   came (or it was given up), after the attempt is recorded; a server
//!   that stops mid-attempt delivers it again after its restart, with the
//!   same `webhook-id`.
//! - A failed attempt is retried after [`Settings::first_retry`], doubling
//!   up to [`Settings::max_retry`] (±10 % jitter), until the event is
//!   [`Settings::retry_for`] old; an endpoint whose every attempt failed
//!   for that long is disabled.
//! - One slow receiver holds up no one else: each endpoint has at most
//!   [`Settings::per_endpoint`] attempts in flight, and the claim skips
//!   the endpoints that are at their limit, so the others' messages are
//!   taken meanwhile. Attempts run in their own tasks, off ingest and
//!   the API.
//! - In a cluster every node delivers; claims keep two nodes off one
//!   message ([`crate::registry::webhooks`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest013 as reqwest;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::events::{self, MEDIA_URL_TTL_MS};
use super::signature;
use super::target::TargetPolicy;
use crate::registry::webhooks::{
    AttemptOutcome, AttemptResult, WebhookAttempt, WebhookEndpointRecord, WebhookMessage,
    ATTEMPTS_KEPT_FOR_MS,
};
use crate::registry::{now_millis, Registry};
use crate::url_signing::{Signer, UrlSigner};

/// How often the outbox is read when nothing woke the task.
const POLL: Duration = Duration::from_secs(1);
/// How often the outbox's size is read for the metrics.
const COUNT_EVERY: Duration = Duration::from_secs(5);
/// How often old attempts are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// Attempts in flight at most, over every endpoint.
const MAX_IN_FLIGHT: usize = 256;

/// The delivery settings (`--webhook-*`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Longest an attempt may take, connection included.
    pub timeout: Duration,
    pub first_retry: Duration,
    pub max_retry: Duration,
    /// How long an event is retried, and how long an endpoint may fail
    /// every attempt before it is disabled.
    pub retry_for: Duration,
    pub per_endpoint: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            first_retry: Duration::from_secs(5),
            max_retry: Duration::from_secs(2 * 3600),
            retry_for: Duration::from_secs(24 * 3600),
            per_endpoint: 4,
        }
    }
}

/// Where deliveries' signed media URLs point.
pub struct MediaUrls {
    pub signer: Arc<UrlSigner>,
    /// `scheme://host:port`.
    pub public_url: String,
}

impl MediaUrls {
    /// The signed URL of `path` for the event's organization, expiring a
    /// fixed time after the event (so every attempt sends the same body,
    /// unless the organization's signed URLs were revoked in between).
    fn of(&self, signer: &Signer<'_>, path: &str, event_time_ms: i64) -> String {
        let expires = (event_time_ms + MEDIA_URL_TTL_MS) / 1000;
        let token = self.signer.sign(signer, path, expires);
        format!("{}{path}?token={token}", self.public_url)
    }
}

pub struct Delivery {
    registry: Arc<Registry>,
    policy: TargetPolicy,
    client: reqwest::Client,
    media: MediaUrls,
    settings: Settings,
    /// Attempts in flight per endpoint.
    in_flight: Mutex<HashMap<String, usize>>,
    /// Told when an attempt ends or events are queued.
    wake: Arc<Notify>,
}

impl Delivery {
    pub fn new(
        registry: Arc<Registry>,
        policy: TargetPolicy,
        media: MediaUrls,
        settings: Settings,
        wake: Arc<Notify>,
    ) -> Arc<Self> {
        Arc::new(Self {
            client: policy.client(settings.timeout),
            registry,
            policy,
            media,
            settings,
            in_flight: Mutex::new(HashMap::new()),
            wake,
        })
    }

    /// Delivers until `shutdown`; attempts in flight then are left to
    /// their claims (delivered again after a restart).
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut pruned = Instant::now() - PRUNE_EVERY;
        let mut counted = Instant::now() - COUNT_EVERY;
        let mut failing = false;
        loop {
            if counted.elapsed() >= COUNT_EVERY {
                counted = Instant::now();
                if let Ok(backlog) = self.registry.webhook_backlog().await {
                    crate::metrics::get().webhook_backlog.set(backlog as i64);
                }
            }
            if pruned.elapsed() >= PRUNE_EVERY {
                pruned = Instant::now();
                let before = now_millis() - ATTEMPTS_KEPT_FOR_MS;
                if let Err(e) = self.registry.prune_webhook_attempts(before).await {
                    tracing::warn!(error = %e, "cannot prune old webhook attempts");
                }
            }
            // One more message per endpoint each round, until nothing
            // more can start now.
            loop {
                match self.claim().await {
                    Ok(0) => {
                        failing = false;
                        break;
                    }
                    Ok(_) => failing = false,
                    Err(e) => {
                        if !failing {
                            tracing::error!(error = %e, "cannot read the webhook outbox; retrying");
                        }
                        failing = true;
                        break;
                    }
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Claims at most one due message of each endpoint below its limit
    /// and starts their attempts; returns how many started. (Claiming
    /// more than an endpoint can take now would leave the rest claimed,
    /// untouched, until their claims ran out.)
    async fn claim(self: &Arc<Self>) -> crate::error::Result<usize> {
        let (busy, room) = {
            let in_flight = self.in_flight.lock().expect("in-flight lock");
            let busy: Vec<String> = in_flight
                .iter()
                .filter(|(_, n)| **n >= self.settings.per_endpoint)
                .map(|(id, _)| id.clone())
                .collect();
            (busy, MAX_IN_FLIGHT - in_flight.values().sum::<usize>())
        };
        if room == 0 {
            return Ok(0);
        }
        let claim_ms = (self.settings.timeout * 3).as_millis() as i64;
        let due = self
            .registry
            .due_webhook_messages(now_millis(), claim_ms, room, 1, &busy)
            .await?;
        let mut started = 0;
        for (message, endpoint) in due {
            let mut in_flight = self.in_flight.lock().expect("in-flight lock");
            let n = in_flight.entry(endpoint.id.clone()).or_default();
            if *n >= self.settings.per_endpoint {
                // Its claim runs out and it is taken again.
                continue;
            }
            *n += 1;
            started += 1;
            drop(in_flight);
            let this = Arc::clone(self);
            let span = tracing::info_span!("webhook", organization = %endpoint.organization_id, endpoint = %endpoint.id, event = %message.event.id);
            let attempt = async move {
                this.attempt(&message, &endpoint).await;
                let mut in_flight = this.in_flight.lock().expect("in-flight lock");
                if let Some(n) = in_flight.get_mut(&endpoint.id) {
                    *n -= 1;
                    if *n == 0 {
                        in_flight.remove(&endpoint.id);
                    }
                }
                drop(in_flight);
                this.wake.notify_one();
            };
            tokio::spawn(attempt.instrument(span));
        }
        Ok(started)
    }

    /// One attempt, recorded (retried until the registry takes it).
    async fn attempt(&self, message: &WebhookMessage, endpoint: &WebhookEndpointRecord) {
        let started = Instant::now();
        let time_ms = now_millis();
        let (status, error) = self.post(message, endpoint, time_ms).await;
        let delivered = error.is_empty();
        let number = message.attempts + 1;
        let deadline = message.event.time_ms + self.settings.retry_for.as_millis() as i64;
        let (outcome, next_attempt_ms) = if delivered {
            (AttemptOutcome::Delivered, 0)
        } else if now_millis() >= deadline {
            (AttemptOutcome::GaveUp, 0)
        } else {
            let next = now_millis() + self.backoff(number).as_millis() as i64;
            (AttemptOutcome::Retrying, next.min(deadline))
        };
        let result = AttemptResult {
            attempt: WebhookAttempt {
                endpoint_id: endpoint.id.clone(),
                event_id: message.event.id.clone(),
                event_type: message.event.event_type.clone(),
                attempt: number,
                time_ms,
                status,
                error,
                duration_ms: started.elapsed().as_millis() as i64,
                outcome,
                next_attempt_ms,
            },
            disable_if_failing_since: time_ms - self.settings.retry_for.as_millis() as i64,
        };
        let outcome_label = match outcome {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Retrying => "retrying",
            AttemptOutcome::GaveUp => "gave_up",
        };
        crate::metrics::get()
            .webhook_deliveries
            .get_or_create(&crate::metrics::OutcomeLabel {
                outcome: outcome_label,
            })
            .inc();
        match outcome {
            AttemptOutcome::Delivered => {
                tracing::debug!(r#type = %message.event.event_type, attempt = number, "webhook delivered")
            }
            AttemptOutcome::Retrying => {
                tracing::info!(r#type = %message.event.event_type, attempt = number, error = %result.attempt.error, "webhook attempt failed; will retry")
            }
            AttemptOutcome::GaveUp => {
                tracing::warn!(r#type = %message.event.event_type, attempt = number, error = %result.attempt.error, "webhook not delivered: gave up")
            }
        }
        loop {
            match self.registry.finish_webhook_attempt(message, &result).await {
                Ok(true) => {
                    tracing::warn!(reason = %result.attempt.error, "webhook endpoint disabled: every attempt failed for the retry period");
                    return;
                }
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot record a webhook attempt; retrying");
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    }

    /// POSTs the message; the status (0 when none came) and why it failed
    /// (empty when delivered).
    async fn post(
        &self,
        message: &WebhookMessage,
        endpoint: &WebhookEndpointRecord,
        now_ms: i64,
    ) -> (u16, String) {
        if let Err(refused) = self.policy.check_before_attempt(&endpoint.url) {
            return (0, format!("the URL is refused: it {refused}"));
        }
        let event = &message.event;
        let url = if event.media_path.is_empty() {
            None
        } else {
            // An organization gone since has no key: its URL would not open.
            let generation = match self.registry.organization(&event.organization_id).await {
                Ok(org) => org.map_or(0, |org| org.url_signing_generation),
                Err(e) => return (0, format!("cannot sign the media URL: {e}")),
            };
            let signer = Signer {
                organization: &event.organization_id,
                generation,
            };
            Some(self.media.of(&signer, &event.media_path, event.time_ms))
        };
        let body = events::body(event, url);
        let timestamp = now_ms / 1000;
        let signature = signature::sign(
            &endpoint.signing_secrets(now_ms),
            &event.id,
            timestamp,
            &body,
        );
        let sent = self
            .client
            .post(&endpoint.url)
            .header("content-type", "application/json")
            .header("webhook-id", &event.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                (response.status().as_u16(), String::new())
            }
            Ok(response) if response.status().is_redirection() => (
                response.status().as_u16(),
                format!(
                    "HTTP {}: redirects are not followed",
                    response.status().as_u16()
                ),
            ),
            Ok(response) => (
                response.status().as_u16(),
                format!("HTTP {}", response.status().as_u16()),
            ),
            Err(e) => (0, describe(&e, self.settings.timeout)),
        }
    }

    /// The pause before attempt `number + 1`.
    fn backoff(&self, number: u32) -> Duration {
        let base = self
            .settings
            .first_retry
            .saturating_mul(1 << number.saturating_sub(1).min(20))
            .min(self.settings.max_retry);
        base.mul_f64(rand::random_range(0.9..1.1))
    }
}

/// Why a request failed, without its URL (it may carry the receiver's
/// own secrets).
fn describe(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!("no answer within {} s", timeout.as_secs_f64());
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text = format!("{text}: {inner}");
        source = inner.source();
    }
    match error.url() {
        Some(url) => text.replace(url.as_str(), "the endpoint"),
        None => text,
    }
}

//! Webhook endpoints, the outbox and the attempt log of the embedded
//! registry ([`crate::registry::webhooks`]).
//!
//! Endpoints are keyed `org_id/endpoint_id` (with an index by id), the
//! outbox by a sequence number, attempts `endpoint_id/seq` so that an
//! endpoint's are listed by range. One node uses this registry, so a
//! claimed message is marked in memory only: a restart makes every
//! message due again, which is what at-least-once delivery needs.

use std::collections::HashMap;

use redb::{ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};

use super::{EmbeddedRegistry, META};
use crate::error::Result;
use crate::registry::webhooks::{
    apply_attempt, AttemptOutcome, AttemptResult, Disabled, WebhookAttempt, WebhookEndpointRecord,
    WebhookEvent, WebhookMessage,
};
use crate::registry::Page;

/// `org_id/endpoint_id` → JSON endpoint
pub(super) const ENDPOINTS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("webhook_endpoints");
/// endpoint id → `org_id/endpoint_id`
pub(super) const ENDPOINT_IDS: TableDefinition<&str, &str> =
    TableDefinition::new("webhook_endpoint_ids");
/// sequence → JSON message
pub(super) const MESSAGES: TableDefinition<i64, &[u8]> = TableDefinition::new("webhook_messages");
/// `endpoint_id/sequence` (zero-padded) → JSON attempt
pub(super) const ATTEMPTS: TableDefinition<&str, &[u8]> = TableDefinition::new("webhook_attempts");
/// The last sequence number handed out.
const META_SEQUENCE: &str = "webhook_sequence";

/// Claims of this process: message sequence → claimed until (ms).
#[derive(Default)]
pub(super) struct Claims(std::sync::Mutex<HashMap<i64, i64>>);

fn endpoint_key(org_id: &str, id: &str) -> String {
    format!("{org_id}/{id}")
}

fn attempt_key(endpoint_id: &str, seq: i64) -> String {
    format!("{endpoint_id}/{seq:020}")
}

/// The next sequence number, taken in `txn`.
fn next_sequence(txn: &WriteTransaction) -> Result<i64> {
    let mut meta = txn.open_table(META)?;
    let last: i64 = meta
        .get(META_SEQUENCE)?
        .and_then(|v| v.value().parse().ok())
        .unwrap_or(0);
    meta.insert(META_SEQUENCE, (last + 1).to_string().as_str())?;
    Ok(last + 1)
}

/// Queues `event` for every endpoint that takes it, in `txn`.
pub(super) fn queue_in(txn: &WriteTransaction, event: &WebhookEvent) -> Result<()> {
    let prefix = format!("{}/", event.organization_id);
    let mut targets = Vec::new();
    {
        let endpoints = txn.open_table(ENDPOINTS)?;
        for entry in endpoints.range(prefix.as_str()..)? {
            let (k, v) = entry?;
            if !k.value().starts_with(&prefix) {
                break;
            }
            let endpoint: WebhookEndpointRecord = serde_json::from_slice(v.value())?;
            let wanted = match &event.endpoint_id {
                Some(only) => *only == endpoint.id,
                None => endpoint.takes(&event.event_type),
            };
            if wanted {
                targets.push(endpoint.id);
            }
        }
    }
    for endpoint_id in targets {
        let seq = next_sequence(txn)?;
        let message = WebhookMessage {
            seq,
            endpoint_id,
            event: event.clone(),
            attempts: 0,
            next_attempt_ms: event.time_ms,
        };
        txn.open_table(MESSAGES)?
            .insert(seq, serde_json::to_vec(&message)?.as_slice())?;
    }
    Ok(())
}

impl EmbeddedRegistry {
    pub fn create_webhook_endpoint(&self, record: &WebhookEndpointRecord) -> Result<()> {
        let key = endpoint_key(&record.organization_id, &record.id);
        let txn = self.begin_write()?;
        {
            txn.open_table(ENDPOINTS)?
                .insert(key.as_str(), serde_json::to_vec(record)?.as_slice())?;
            txn.open_table(ENDPOINT_IDS)?
                .insert(record.id.as_str(), key.as_str())?;
        }
        self.commit(txn)
    }

    pub fn webhook_endpoints(&self, org_id: &str) -> Result<Vec<WebhookEndpointRecord>> {
        Ok(self
            .list_under(ENDPOINTS, &format!("{org_id}/"), "", usize::MAX)?
            .items)
    }

    pub fn webhook_endpoint(
        &self,
        org_id: &str,
        id: &str,
    ) -> Result<Option<WebhookEndpointRecord>> {
        let txn = self.begin_read()?;
        let found = txn
            .open_table(ENDPOINTS)?
            .get(endpoint_key(org_id, id).as_str())?;
        Ok(match found {
            Some(v) => Some(serde_json::from_slice(v.value())?),
            None => None,
        })
    }

    /// Replaces an endpoint; false when it is gone.
    pub fn update_webhook_endpoint(&self, record: &WebhookEndpointRecord) -> Result<bool> {
        let key = endpoint_key(&record.organization_id, &record.id);
        let txn = self.begin_write()?;
        {
            let mut endpoints = txn.open_table(ENDPOINTS)?;
            if endpoints.get(key.as_str())?.is_none() {
                return Ok(false);
            }
            endpoints.insert(key.as_str(), serde_json::to_vec(record)?.as_slice())?;
        }
        self.commit(txn)?;
        Ok(true)
    }

    /// Deletes an endpoint with its undelivered messages and its attempts.
    pub fn delete_webhook_endpoint(&self, org_id: &str, id: &str) -> Result<bool> {
        let txn = self.begin_write()?;
        {
            if txn
                .open_table(ENDPOINTS)?
                .remove(endpoint_key(org_id, id).as_str())?
                .is_none()
            {
                return Ok(false);
            }
            txn.open_table(ENDPOINT_IDS)?.remove(id)?;
            let mut messages = txn.open_table(MESSAGES)?;
            messages.retain(|_, v| {
                serde_json::from_slice::<WebhookMessage>(v).map_or(true, |m| m.endpoint_id != id)
            })?;
            let prefix = format!("{id}/");
            let mut attempts = txn.open_table(ATTEMPTS)?;
            attempts.retain(|k, _| !k.starts_with(&prefix))?;
        }
        self.commit(txn)?;
        Ok(true)
    }

    /// Messages waiting for an endpoint.
    pub fn pending_webhook_messages(&self, endpoint_id: &str) -> Result<u64> {
        let txn = self.begin_read()?;
        let mut count = 0;
        for entry in txn.open_table(MESSAGES)?.iter()? {
            let (_, v) = entry?;
            let message: WebhookMessage = serde_json::from_slice(v.value())?;
            count += u64::from(message.endpoint_id == endpoint_id);
        }
        Ok(count)
    }

    pub fn webhook_backlog(&self) -> Result<u64> {
        let txn = self.begin_read()?;
        Ok(txn.open_table(MESSAGES)?.len()?)
    }

    /// Queues an event on its own (a change kept outside the registry).
    pub fn queue_webhook_event(&self, event: &WebhookEvent) -> Result<()> {
        let txn = self.begin_write()?;
        queue_in(&txn, event)?;
        self.commit(txn)
    }

    /// Claims up to `limit` messages due at `now_ms` for `claim_ms`, with
    /// their endpoints, at most `per_endpoint` of one endpoint and none
    /// of the endpoints in `busy`.
    pub fn due_webhook_messages(
        &self,
        now_ms: i64,
        claim_ms: i64,
        limit: usize,
        per_endpoint: usize,
        busy: &[String],
    ) -> Result<Vec<(WebhookMessage, WebhookEndpointRecord)>> {
        let txn = self.begin_read()?;
        let messages = txn.open_table(MESSAGES)?;
        let ids = txn.open_table(ENDPOINT_IDS)?;
        let endpoints = txn.open_table(ENDPOINTS)?;
        let mut claims = self.webhook_claims.0.lock().expect("claims lock");
        claims.retain(|_, until| *until > now_ms);
        let mut taken: HashMap<String, usize> = HashMap::new();
        let mut out = Vec::new();
        for entry in messages.iter()? {
            if out.len() == limit {
                break;
            }
            let (seq, v) = entry?;
            if claims.contains_key(&seq.value()) {
                continue;
            }
            let message: WebhookMessage = serde_json::from_slice(v.value())?;
            if message.next_attempt_ms > now_ms || busy.contains(&message.endpoint_id) {
                continue;
            }
            let count = taken.entry(message.endpoint_id.clone()).or_default();
            if *count == per_endpoint {
                continue;
            }
            let Some(key) = ids.get(message.endpoint_id.as_str())? else {
                continue;
            };
            let Some(endpoint) = endpoints.get(key.value())? else {
                continue;
            };
            *count += 1;
            claims.insert(message.seq, now_ms + claim_ms);
            out.push((message, serde_json::from_slice(endpoint.value())?));
        }
        Ok(out)
    }

    /// Records an attempt: the message leaves the outbox when delivered
    /// or given up, else waits for its next attempt; the endpoint's run
    /// of failures is updated, and it is disabled when that run is as
    /// old as `result` says.
    pub fn finish_webhook_attempt(
        &self,
        message: &WebhookMessage,
        result: &AttemptResult,
    ) -> Result<Disabled> {
        let attempt = &result.attempt;
        let txn = self.begin_write()?;
        let disabled = {
            let seq = next_sequence(&txn)?;
            txn.open_table(ATTEMPTS)?.insert(
                attempt_key(&message.endpoint_id, seq).as_str(),
                serde_json::to_vec(attempt)?.as_slice(),
            )?;
            let mut messages = txn.open_table(MESSAGES)?;
            match attempt.outcome {
                AttemptOutcome::Retrying => {
                    let next = WebhookMessage {
                        attempts: attempt.attempt,
                        next_attempt_ms: attempt.next_attempt_ms,
                        ..message.clone()
                    };
                    if messages.get(message.seq)?.is_some() {
                        messages.insert(message.seq, serde_json::to_vec(&next)?.as_slice())?;
                    }
                }
                AttemptOutcome::Delivered | AttemptOutcome::GaveUp => {
                    messages.remove(message.seq)?;
                }
            }
            drop(messages);
            let key = endpoint_key(&message.event.organization_id, &message.endpoint_id);
            let mut endpoints = txn.open_table(ENDPOINTS)?;
            let found: Option<WebhookEndpointRecord> = match endpoints.get(key.as_str())? {
                Some(v) => Some(serde_json::from_slice(v.value())?),
                None => None,
            };
            match found {
                Some(mut endpoint) => {
                    let disabled = apply_attempt(&mut endpoint, result);
                    endpoints.insert(key.as_str(), serde_json::to_vec(&endpoint)?.as_slice())?;
                    disabled
                }
                None => false,
            }
        };
        self.commit(txn)?;
        self.webhook_claims
            .0
            .lock()
            .expect("claims lock")
            .remove(&message.seq);
        Ok(disabled)
    }

    /// An endpoint's attempts, newest first.
    pub fn webhook_attempts(
        &self,
        endpoint_id: &str,
        page_token: &str,
        page_size: usize,
    ) -> Result<Page<WebhookAttempt>> {
        let prefix = format!("{endpoint_id}/");
        let end = if page_token.is_empty() {
            format!("{endpoint_id}0")
        } else {
            format!("{prefix}{page_token}")
        };
        let txn = self.begin_read()?;
        let table = txn.open_table(ATTEMPTS)?;
        let mut items = Vec::new();
        let mut last_seq = String::new();
        let mut next_page_token = String::new();
        for entry in table.range(prefix.as_str()..end.as_str())?.rev() {
            let (k, v) = entry?;
            if items.len() == page_size {
                next_page_token = last_seq;
                break;
            }
            last_seq = k.value()[prefix.len()..].to_string();
            items.push(serde_json::from_slice(v.value())?);
        }
        Ok(Page {
            items,
            next_page_token,
        })
    }

    /// Deletes attempts made before `before_ms`; returns how many.
    pub fn prune_webhook_attempts(&self, before_ms: i64) -> Result<u64> {
        let txn = self.begin_write()?;
        let mut pruned = 0;
        {
            let mut attempts = txn.open_table(ATTEMPTS)?;
            attempts.retain(|_, v| {
                let old = serde_json::from_slice::<WebhookAttempt>(v)
                    .is_ok_and(|a| a.time_ms < before_ms);
                pruned += u64::from(old);
                !old
            })?;
        }
        self.commit(txn)?;
        Ok(pruned)
    }
}

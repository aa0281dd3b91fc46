//! Webhook endpoints, the outbox and the attempt log in PostgreSQL
//! ([`crate::registry::webhooks`], `migrations/0006_webhooks.sql`).
//!
//! Every node delivers: a node claims due messages with
//! `FOR UPDATE SKIP LOCKED` and a claim deadline, so two nodes never
//! deliver the same message at once and the messages of a node that dies
//! are due again once its claim runs out.

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::{storage_error, PgRegistry};
use crate::error::Result;
use crate::registry::webhooks::{
    apply_attempt, AttemptOutcome, AttemptResult, Disabled, WebhookAttempt, WebhookEndpointRecord,
    WebhookEvent, WebhookMessage,
};
use crate::registry::Page;

fn endpoint_from(row: &PgRow) -> sqlx::Result<WebhookEndpointRecord> {
    endpoint_from_columns(row, "")
}

/// An endpoint from `row`'s columns whose names start with `prefix`
/// (`e_` where it is joined to a message).
fn endpoint_from_columns(row: &PgRow, prefix: &str) -> sqlx::Result<WebhookEndpointRecord> {
    let column = |name: &str| format!("{prefix}{name}");
    Ok(WebhookEndpointRecord {
        id: row.try_get(column("id").as_str())?,
        organization_id: row.try_get(column("organization_id").as_str())?,
        url: row.try_get(column("url").as_str())?,
        event_types: row.try_get(column("event_types").as_str())?,
        secret: row.try_get(column("secret").as_str())?,
        previous_secret: row.try_get(column("previous_secret").as_str())?,
        previous_secret_until_ms: row.try_get(column("previous_secret_until_ms").as_str())?,
        enabled: row.try_get(column("enabled").as_str())?,
        disabled_reason: row.try_get(column("disabled_reason").as_str())?,
        failing_since_ms: row.try_get(column("failing_since_ms").as_str())?,
        create_time_ms: row.try_get(column("create_time_ms").as_str())?,
    })
}

fn message_from(row: &PgRow) -> sqlx::Result<WebhookMessage> {
    let endpoint_id: String = row.try_get("endpoint_id")?;
    Ok(WebhookMessage {
        seq: row.try_get("seq")?,
        event: WebhookEvent {
            id: row.try_get("event_id")?,
            organization_id: row.try_get("organization_id")?,
            event_type: row.try_get("event_type")?,
            time_ms: row.try_get("event_time_ms")?,
            data: row.try_get("data")?,
            media_path: row.try_get("media_path")?,
            endpoint_id: None,
        },
        endpoint_id,
        attempts: row.try_get::<i32, _>("attempts")? as u32,
        next_attempt_ms: row.try_get("next_attempt_ms")?,
    })
}

fn outcome_name(outcome: AttemptOutcome) -> &'static str {
    match outcome {
        AttemptOutcome::Delivered => "delivered",
        AttemptOutcome::Retrying => "retrying",
        AttemptOutcome::GaveUp => "gave_up",
    }
}

fn attempt_from(row: &PgRow) -> sqlx::Result<WebhookAttempt> {
    let outcome: String = row.try_get("outcome")?;
    Ok(WebhookAttempt {
        endpoint_id: row.try_get("endpoint_id")?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        attempt: row.try_get::<i32, _>("attempt")? as u32,
        time_ms: row.try_get("time_ms")?,
        status: row.try_get::<i32, _>("status")? as u16,
        error: row.try_get("error")?,
        duration_ms: row.try_get("duration_ms")?,
        outcome: match outcome.as_str() {
            "delivered" => AttemptOutcome::Delivered,
            "retrying" => AttemptOutcome::Retrying,
            _ => AttemptOutcome::GaveUp,
        },
        next_attempt_ms: row.try_get("next_attempt_ms")?,
    })
}

/// Queues `event` for every endpoint that takes it, on `conn` (inside the
/// caller's transaction).
pub(super) async fn queue_in(conn: &mut PgConnection, event: &WebhookEvent) -> Result<()> {
    sqlx::query(
        "INSERT INTO webhook_messages (endpoint_id, event_id, organization_id, event_type,
                                       event_time_ms, data, media_path, next_attempt_ms)
         SELECT id, $2, $1, $3, $4, $5, $6, $4 FROM webhook_endpoints
         WHERE organization_id = $1
           AND CASE WHEN $7::text IS NULL THEN enabled AND $3 = ANY(event_types)
                    ELSE id = $7 END",
    )
    .bind(&event.organization_id)
    .bind(&event.id)
    .bind(&event.event_type)
    .bind(event.time_ms)
    .bind(&event.data)
    .bind(&event.media_path)
    .bind(event.endpoint_id.as_deref())
    .execute(conn)
    .await
    .map_err(storage_error)?;
    Ok(())
}

impl PgRegistry {
    pub async fn create_webhook_endpoint(&self, record: &WebhookEndpointRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, organization_id, url, event_types, secret,
                 previous_secret, previous_secret_until_ms, enabled, disabled_reason,
                 failing_since_ms, create_time_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&record.id)
        .bind(&record.organization_id)
        .bind(&record.url)
        .bind(&record.event_types)
        .bind(&record.secret)
        .bind(&record.previous_secret)
        .bind(record.previous_secret_until_ms)
        .bind(record.enabled)
        .bind(&record.disabled_reason)
        .bind(record.failing_since_ms)
        .bind(record.create_time_ms)
        .execute(&self.pool)
        .await
        .map_err(storage_error)?;
        Ok(())
    }

    pub async fn webhook_endpoints(&self, org_id: &str) -> Result<Vec<WebhookEndpointRecord>> {
        let rows =
            sqlx::query("SELECT * FROM webhook_endpoints WHERE organization_id = $1 ORDER BY id")
                .bind(org_id)
                .fetch_all(&self.pool)
                .await
                .map_err(storage_error)?;
        rows.iter()
            .map(|row| endpoint_from(row).map_err(storage_error))
            .collect()
    }

    pub async fn webhook_endpoint(
        &self,
        org_id: &str,
        id: &str,
    ) -> Result<Option<WebhookEndpointRecord>> {
        let row =
            sqlx::query("SELECT * FROM webhook_endpoints WHERE organization_id = $1 AND id = $2")
                .bind(org_id)
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(storage_error)?;
        row.as_ref()
            .map(endpoint_from)
            .transpose()
            .map_err(storage_error)
    }

    /// Replaces an endpoint's settings; false when it is gone. Its run of
    /// failures is the deliveries' to keep, and is not replaced.
    pub async fn update_webhook_endpoint(&self, record: &WebhookEndpointRecord) -> Result<bool> {
        let updated = sqlx::query(
            "UPDATE webhook_endpoints SET url = $3, event_types = $4, secret = $5,
                 previous_secret = $6, previous_secret_until_ms = $7, enabled = $8,
                 disabled_reason = $9,
                 failing_since_ms = CASE WHEN $8 AND NOT enabled THEN 0 ELSE failing_since_ms END
             WHERE organization_id = $1 AND id = $2",
        )
        .bind(&record.organization_id)
        .bind(&record.id)
        .bind(&record.url)
        .bind(&record.event_types)
        .bind(&record.secret)
        .bind(&record.previous_secret)
        .bind(record.previous_secret_until_ms)
        .bind(record.enabled)
        .bind(&record.disabled_reason)
        .execute(&self.pool)
        .await
        .map_err(storage_error)?;
        Ok(updated.rows_affected() == 1)
    }

    /// Deletes an endpoint; its messages and attempts go with it.
    pub async fn delete_webhook_endpoint(&self, org_id: &str, id: &str) -> Result<bool> {
        let deleted =
            sqlx::query("DELETE FROM webhook_endpoints WHERE organization_id = $1 AND id = $2")
                .bind(org_id)
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(storage_error)?;
        Ok(deleted.rows_affected() == 1)
    }

    pub async fn pending_webhook_messages(&self, endpoint_id: &str) -> Result<u64> {
        let count: i64 =
            sqlx::query_scalar("SELECT count(*) FROM webhook_messages WHERE endpoint_id = $1")
                .bind(endpoint_id)
                .fetch_one(&self.pool)
                .await
                .map_err(storage_error)?;
        Ok(count as u64)
    }

    pub async fn webhook_backlog(&self) -> Result<u64> {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_messages")
            .fetch_one(&self.pool)
            .await
            .map_err(storage_error)?;
        Ok(count as u64)
    }

    pub async fn queue_webhook_event(&self, event: &WebhookEvent) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(storage_error)?;
        queue_in(&mut conn, event).await
    }

    /// Claims due messages (see the embedded backend for the arguments).
    pub async fn due_webhook_messages(
        &self,
        now_ms: i64,
        claim_ms: i64,
        limit: usize,
        per_endpoint: usize,
        busy: &[String],
    ) -> Result<Vec<(WebhookMessage, WebhookEndpointRecord)>> {
        let rows = sqlx::query(
            "WITH candidates AS (
                 SELECT seq, row_number() OVER (PARTITION BY endpoint_id ORDER BY next_attempt_ms, seq) AS nth
                 FROM webhook_messages
                 WHERE next_attempt_ms <= $1 AND claimed_until_ms <= $1
                   AND NOT (endpoint_id = ANY($5))
             ),
             claimed AS (
                 SELECT m.seq FROM webhook_messages m
                 WHERE m.seq IN (SELECT seq FROM candidates WHERE nth <= $4)
                   AND m.claimed_until_ms <= $1
                 ORDER BY m.next_attempt_ms, m.seq
                 LIMIT $3
                 FOR UPDATE SKIP LOCKED
             )
             UPDATE webhook_messages m SET claimed_until_ms = $1 + $2
             FROM claimed, webhook_endpoints e
             WHERE m.seq = claimed.seq AND e.id = m.endpoint_id
             RETURNING m.*, e.id AS e_id, e.organization_id AS e_organization_id, e.url AS e_url,
                 e.event_types AS e_event_types, e.secret AS e_secret,
                 e.previous_secret AS e_previous_secret,
                 e.previous_secret_until_ms AS e_previous_secret_until_ms,
                 e.enabled AS e_enabled, e.disabled_reason AS e_disabled_reason,
                 e.failing_since_ms AS e_failing_since_ms, e.create_time_ms AS e_create_time_ms",
        )
        .bind(now_ms)
        .bind(claim_ms)
        .bind(limit as i64)
        .bind(per_endpoint as i64)
        .bind(busy)
        .fetch_all(&self.pool)
        .await
        .map_err(storage_error)?;
        rows.iter()
            .map(|row| {
                let endpoint = endpoint_from_columns(row, "e_")?;
                Ok((message_from(row)?, endpoint))
            })
            .collect::<sqlx::Result<_>>()
            .map_err(storage_error)
    }

    /// Records an attempt and its consequences in one transaction.
    pub async fn finish_webhook_attempt(
        &self,
        message: &WebhookMessage,
        result: &AttemptResult,
    ) -> Result<Disabled> {
        let attempt = &result.attempt;
        let mut tx = self.pool.begin().await.map_err(storage_error)?;
        // The endpoint's row is locked first: the attempt's insert takes a
        // key-share lock on it (the foreign key), and two deliveries that
        // each held that lock and then asked for the row itself deadlocked
        // one another, again at every retry.
        let row = sqlx::query("SELECT * FROM webhook_endpoints WHERE id = $1 FOR UPDATE")
            .bind(&message.endpoint_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(storage_error)?;
        if row.is_some() {
            sqlx::query(
                "INSERT INTO webhook_attempts (endpoint_id, event_id, event_type, attempt,
                     time_ms, status, error, duration_ms, outcome, next_attempt_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&message.endpoint_id)
            .bind(&attempt.event_id)
            .bind(&attempt.event_type)
            .bind(attempt.attempt as i32)
            .bind(attempt.time_ms)
            .bind(i32::from(attempt.status))
            .bind(&attempt.error)
            .bind(attempt.duration_ms)
            .bind(outcome_name(attempt.outcome))
            .bind(attempt.next_attempt_ms)
            .execute(&mut *tx)
            .await
            .map_err(storage_error)?;
        }
        let query = match attempt.outcome {
            AttemptOutcome::Retrying => sqlx::query(
                "UPDATE webhook_messages SET attempts = $2, next_attempt_ms = $3,
                     claimed_until_ms = 0 WHERE seq = $1",
            )
            .bind(message.seq)
            .bind(attempt.attempt as i32)
            .bind(attempt.next_attempt_ms),
            AttemptOutcome::Delivered | AttemptOutcome::GaveUp => {
                sqlx::query("DELETE FROM webhook_messages WHERE seq = $1").bind(message.seq)
            }
        };
        query.execute(&mut *tx).await.map_err(storage_error)?;
        let mut disabled = false;
        if let Some(row) = row {
            let mut endpoint = endpoint_from(&row).map_err(storage_error)?;
            disabled = apply_attempt(&mut endpoint, result);
            sqlx::query(
                "UPDATE webhook_endpoints SET enabled = $2, disabled_reason = $3,
                     failing_since_ms = $4 WHERE id = $1",
            )
            .bind(&endpoint.id)
            .bind(endpoint.enabled)
            .bind(&endpoint.disabled_reason)
            .bind(endpoint.failing_since_ms)
            .execute(&mut *tx)
            .await
            .map_err(storage_error)?;
        }
        tx.commit().await.map_err(storage_error)?;
        Ok(disabled)
    }

    /// An endpoint's attempts, newest first.
    pub async fn webhook_attempts(
        &self,
        endpoint_id: &str,
        page_token: &str,
        page_size: usize,
    ) -> Result<Page<WebhookAttempt>> {
        let before: i64 = if page_token.is_empty() {
            i64::MAX
        } else {
            page_token.parse().unwrap_or(0)
        };
        let rows = sqlx::query(
            "SELECT * FROM webhook_attempts WHERE endpoint_id = $1 AND seq < $2
             ORDER BY seq DESC LIMIT $3",
        )
        .bind(endpoint_id)
        .bind(before)
        .bind(page_size as i64 + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(storage_error)?;
        let more = rows.len() > page_size;
        let rows = &rows[..rows.len().min(page_size)];
        let items = rows
            .iter()
            .map(attempt_from)
            .collect::<sqlx::Result<Vec<_>>>()
            .map_err(storage_error)?;
        let next_page_token = match rows.last() {
            Some(row) if more => row
                .try_get::<i64, _>("seq")
                .map_err(storage_error)?
                .to_string(),
            _ => String::new(),
        };
        Ok(Page {
            items,
            next_page_token,
        })
    }

    pub async fn prune_webhook_attempts(&self, before_ms: i64) -> Result<u64> {
        let pruned = sqlx::query("DELETE FROM webhook_attempts WHERE time_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await
            .map_err(storage_error)?;
        Ok(pruned.rows_affected())
    }
}

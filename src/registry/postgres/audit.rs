//! The audit log in PostgreSQL (`audit_events`), listed newest first.

use sqlx::postgres::PgRow;
use sqlx::Row;

use super::{limit, page, storage_error, PgRegistry};
use crate::error::Result;
use crate::registry::{AuditEvent, Page};

fn event_from(row: &PgRow) -> sqlx::Result<AuditEvent> {
    Ok(AuditEvent {
        id: row.try_get("id")?,
        time_ms: row.try_get("time_ms")?,
        actor: row.try_get("actor")?,
        organization_id: row.try_get("organization_id")?,
        action: row.try_get("action")?,
        resource: row.try_get("resource")?,
        details: row.try_get("details")?,
        peer: row.try_get("peer")?,
    })
}

impl PgRegistry {
    pub async fn record_audit(&self, event: &AuditEvent) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_events (id, time_ms, actor, organization_id, action, resource, details, peer)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&event.id)
        .bind(event.time_ms)
        .bind(&event.actor)
        .bind(&event.organization_id)
        .bind(&event.action)
        .bind(&event.resource)
        .bind(&event.details)
        .bind(&event.peer)
        .execute(&self.pool)
        .await
        .map_err(storage_error)?;
        Ok(())
    }

    /// Deletes up to `limit` of the events recorded before `before_ms`,
    /// oldest first; returns how many.
    pub async fn prune_audit_events(&self, before_ms: i64, limit: usize) -> Result<u64> {
        let pruned = sqlx::query(
            "DELETE FROM audit_events WHERE id IN
             (SELECT id FROM audit_events WHERE id < $1 ORDER BY id LIMIT $2)",
        )
        .bind(crate::ids::audit_id_floor(before_ms))
        .bind(limit as i64)
        .execute(&self.pool)
        .await
        .map_err(storage_error)?;
        Ok(pruned.rows_affected())
    }

    pub async fn list_audit_events(
        &self,
        org_id: Option<&str>,
        page_token: &str,
        page_size: usize,
    ) -> Result<Page<AuditEvent>> {
        // An empty token is past every id ('~' sorts after them all).
        let before = if page_token.is_empty() {
            "~"
        } else {
            page_token
        };
        let rows = sqlx::query(
            "SELECT * FROM audit_events
             WHERE ($1::text IS NULL OR organization_id = $1) AND id < $2
             ORDER BY id DESC LIMIT $3",
        )
        .bind(org_id)
        .bind(before)
        .bind(limit(page_size))
        .fetch_all(&self.pool)
        .await
        .map_err(storage_error)?;
        page(
            rows,
            page_size,
            |row| event_from(row).map_err(storage_error),
            |e| &e.id,
        )
    }
}

//! Nodes and leases in PostgreSQL ([`crate::registry::cluster`]): every
//! time is the database's `now()`, so the nodes' own clocks do not matter.

use std::time::Duration;

use sqlx::Row;

use super::{storage_error, PgRegistry};
use crate::error::Result;
use crate::ids::StreamRef;
use crate::registry::cluster::{Fence, Lease, LeaseGrant, LeaseHolder, NodeRecord};

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl PgRegistry {
    pub async fn heartbeat_node(&self, node: &NodeRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO nodes (id, advertise_url, max_streams, live_streams, cpu_percent,
                                draining, version, started_at, heartbeat_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, to_timestamp($8::float8 / 1000), now())
             ON CONFLICT (id) DO UPDATE SET
                 advertise_url = EXCLUDED.advertise_url, max_streams = EXCLUDED.max_streams,
                 live_streams = EXCLUDED.live_streams, cpu_percent = EXCLUDED.cpu_percent,
                 draining = EXCLUDED.draining, version = EXCLUDED.version,
                 started_at = EXCLUDED.started_at, heartbeat_at = now()",
        )
        .bind(&node.id)
        .bind(&node.advertise_url)
        .bind(node.max_streams as i32)
        .bind(node.live_streams as i32)
        .bind(node.cpu_percent)
        .bind(node.draining)
        .bind(&node.version)
        .bind(node.started_ms as f64)
        .execute(&self.pool)
        .await
        .map_err(storage_error)?;
        Ok(())
    }

    pub async fn list_nodes(&self) -> Result<Vec<NodeRecord>> {
        let rows = sqlx::query(
            "SELECT id, advertise_url, max_streams, live_streams, cpu_percent, draining, version,
                    (extract(epoch FROM started_at) * 1000)::bigint AS started_ms,
                    (extract(epoch FROM now() - heartbeat_at) * 1000)::bigint AS age_ms
             FROM nodes ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(storage_error)?;
        rows.iter()
            .map(|row| {
                Ok(NodeRecord {
                    id: row.try_get("id")?,
                    advertise_url: row.try_get("advertise_url")?,
                    max_streams: row.try_get::<i32, _>("max_streams")?.max(0) as u32,
                    live_streams: row.try_get::<i32, _>("live_streams")?.max(0) as u32,
                    cpu_percent: row.try_get("cpu_percent")?,
                    draining: row.try_get("draining")?,
                    version: row.try_get("version")?,
                    started_ms: row.try_get("started_ms")?,
                    heartbeat_age_ms: row.try_get::<i64, _>("age_ms")?.max(0),
                })
            })
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(storage_error)
    }

    /// Takes the lease of `stream` for `node_id` unless another node holds
    /// it; a new holder (or a new session of the same node, whose last
    /// session may not have released it yet) gets the next epoch. Another
    /// node's lease that lapsed without being released is taken only when
    /// `take_lapsed`, and the grant then names it.
    pub async fn acquire_lease(
        &self,
        stream: &StreamRef,
        node_id: &str,
        ttl: Duration,
        take_lapsed: bool,
    ) -> Result<LeaseGrant> {
        // `prev` is the row as it was, so that the grant can say whose
        // lease it took (no FOR UPDATE: the row is updated by this same
        // statement, which a locking read would then skip). Racing
        // grants are decided by ON CONFLICT, which re-checks its WHERE on
        // the latest row.
        let granted = sqlx::query(
            "WITH prev AS (
                 SELECT node_id, epoch, released FROM stream_leases
                 WHERE organization_id = $1 AND stream_id = $2
             )
             INSERT INTO stream_leases (organization_id, stream_id, node_id, epoch, expires_at, released)
             VALUES ($1, $2, $3, 1, now() + $4 * interval '1 millisecond', false)
             ON CONFLICT (organization_id, stream_id) DO UPDATE SET
                 node_id = EXCLUDED.node_id, epoch = stream_leases.epoch + 1,
                 expires_at = EXCLUDED.expires_at, released = false
             WHERE stream_leases.node_id = EXCLUDED.node_id
                OR (stream_leases.expires_at <= now() AND (stream_leases.released OR $5))
             RETURNING epoch,
                 (SELECT node_id FROM prev) AS prev_node,
                 (SELECT epoch FROM prev) AS prev_epoch,
                 (SELECT released FROM prev) AS prev_released",
        )
        .bind(&stream.organization_id)
        .bind(&stream.stream_id)
        .bind(node_id)
        .bind(millis(ttl))
        .bind(take_lapsed)
        .fetch_optional(&self.pool)
        .await
        .map_err(storage_error)?;
        if let Some(row) = granted {
            let get = || -> sqlx::Result<LeaseGrant> {
                let prev_node: Option<String> = row.try_get("prev_node")?;
                let prev_epoch: Option<i64> = row.try_get("prev_epoch")?;
                let prev_released: Option<bool> = row.try_get("prev_released")?;
                let taken_from = match (prev_node, prev_epoch, prev_released) {
                    (Some(prev), Some(epoch), Some(false)) if prev != node_id => Some(Fence {
                        node_id: prev,
                        epoch,
                    }),
                    _ => None,
                };
                Ok(LeaseGrant::Granted {
                    lease: Lease {
                        stream: stream.clone(),
                        node_id: node_id.to_string(),
                        epoch: row.try_get("epoch")?,
                    },
                    taken_from,
                })
            };
            return get().map_err(storage_error);
        }
        // Held: by whom. A lapsed lease counts as held unless this node
        // may take it, then it lapsed in between: try again.
        let held: Option<(String, bool)> = sqlx::query_as(
            "SELECT node_id, expires_at > now() FROM stream_leases
             WHERE organization_id = $1 AND stream_id = $2",
        )
        .bind(&stream.organization_id)
        .bind(&stream.stream_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(storage_error)?;
        match held {
            Some((node_id, live)) if live || !take_lapsed => Ok(LeaseGrant::HeldBy { node_id }),
            _ => Box::pin(self.acquire_lease(stream, node_id, ttl, take_lapsed)).await,
        }
    }

    /// Extends a lease still held; `false` when it was taken over (or
    /// released).
    pub async fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<bool> {
        let renewed = sqlx::query(
            "UPDATE stream_leases SET expires_at = now() + $5 * interval '1 millisecond'
             WHERE organization_id = $1 AND stream_id = $2 AND node_id = $3 AND epoch = $4
               AND NOT released",
        )
        .bind(&lease.stream.organization_id)
        .bind(&lease.stream.stream_id)
        .bind(&lease.node_id)
        .bind(lease.epoch)
        .bind(millis(ttl))
        .execute(&self.pool)
        .await
        .map_err(storage_error)?;
        Ok(renewed.rows_affected() == 1)
    }

    /// Ends a lease at once (the session ended), if it is still ours.
    pub async fn release_lease(&self, lease: &Lease) -> Result<()> {
        sqlx::query(
            "UPDATE stream_leases SET expires_at = now(), released = true
             WHERE organization_id = $1 AND stream_id = $2 AND node_id = $3 AND epoch = $4",
        )
        .bind(&lease.stream.organization_id)
        .bind(&lease.stream.stream_id)
        .bind(&lease.node_id)
        .bind(lease.epoch)
        .execute(&self.pool)
        .await
        .map_err(storage_error)?;
        Ok(())
    }

    /// Sessions of the organization's streams held now, by any node.
    pub async fn live_sessions(&self, org_id: &str, except_stream: &str) -> Result<u64> {
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM stream_leases
             WHERE organization_id = $1 AND stream_id <> $2 AND expires_at > now()",
        )
        .bind(org_id)
        .bind(except_stream)
        .fetch_one(&self.pool)
        .await
        .map_err(storage_error)?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    /// The node holding `stream`'s session now, if any.
    pub async fn lease_holder(&self, stream: &StreamRef) -> Result<Option<LeaseHolder>> {
        let row = sqlx::query(
            "SELECT node_id, epoch FROM stream_leases
             WHERE organization_id = $1 AND stream_id = $2 AND expires_at > now()",
        )
        .bind(&stream.organization_id)
        .bind(&stream.stream_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(storage_error)?;
        row.map(|row| {
            Ok(LeaseHolder {
                node_id: row.try_get("node_id")?,
                epoch: row.try_get("epoch")?,
            })
        })
        .transpose()
        .map_err(storage_error)
    }
}

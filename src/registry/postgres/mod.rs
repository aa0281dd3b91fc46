//! The PostgreSQL registry backend: the registry shared by every node
//! (`--database-url`). The schema is in `migrations/`, embedded in the
//! binary and applied at connect (sqlx takes an advisory lock for it, so
//! nodes starting together migrate once).
//!
//! Queries are built at run time (`sqlx::query`), so the build needs no
//! database. A lost connection is replaced by the pool; while the
//! database cannot be reached, calls fail with `StorageUnavailable`
//! (`UNAVAILABLE`) after [`ACQUIRE_TIMEOUT`], and work again once it is
//! back, with nothing to restart.

mod audit;
mod cluster;
mod listen;
mod webhooks;

pub use listen::PgStreamChanges;

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::Row;

use super::cluster::Fence;
use super::records::{
    now_millis, OrganizationRecord, Quota, Quotas, RecordingPart, RecordingRecord, RecordingState,
};
use super::webhooks::WebhookEvent;
use super::{secrets, ClipRecord, Page, SrtEncryption, StreamRecord};
use crate::error::{Error, Result};
use crate::options::Processing;

/// How long a call waits for a connection before it says the database is
/// unavailable.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// Connections per node.
const MAX_CONNECTIONS: u32 = 16;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A pool of connections to the registry's database.
pub struct PgRegistry {
    pool: PgPool,
}

/// The crate's error for a database error: connection trouble (the
/// database restarting, unreachable, out of connections) may pass and is
/// `StorageUnavailable`; anything else is a storage error.
fn storage_error(e: sqlx::Error) -> Error {
    let transient = match &e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 57P0x: the server is shutting
            // down or starting; 53: insufficient resources.
            code.starts_with("08") || code.starts_with("57P") || code.starts_with("53")
        }),
        _ => false,
    };
    if transient {
        Error::StorageUnavailable(format!("the registry database: {e}"))
    } else {
        Error::Storage(format!("the registry database: {e}"))
    }
}

/// `Fenced` when a fenced write changed no row.
fn fenced(rows: u64, what: impl FnOnce() -> String) -> Result<()> {
    if rows == 0 {
        return Err(Error::Fenced { what: what() });
    }
    Ok(())
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Stored form of a recording's state.
fn state_name(state: RecordingState) -> &'static str {
    match state {
        RecordingState::Recording => "recording",
        RecordingState::Complete => "complete",
        RecordingState::Recovered => "recovered",
        RecordingState::Failed => "failed",
    }
}

fn state_from_name(name: &str) -> Result<RecordingState> {
    Ok(match name {
        "recording" => RecordingState::Recording,
        "complete" => RecordingState::Complete,
        "recovered" => RecordingState::Recovered,
        "failed" => RecordingState::Failed,
        other => {
            return Err(Error::Storage(format!(
                "the registry database: unknown recording state {other:?}"
            )))
        }
    })
}

/// Unsigned counters are stored as `bigint`.
fn to_db(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn from_db(value: i64) -> u64 {
    u64::try_from(value).unwrap_or_default()
}

fn organization_from(row: &PgRow) -> sqlx::Result<OrganizationRecord> {
    Ok(OrganizationRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        live_processing: row.try_get("live_processing")?,
        api_key_hash: row.try_get("api_key_hash")?,
        create_time_ms: row.try_get("create_time_ms")?,
        url_signing_generation: row.try_get::<i32, _>("url_signing_generation")? as u32,
        quotas: row.try_get::<Json<Quotas>, _>("quotas")?.0,
    })
}

fn stream_from(row: &PgRow) -> sqlx::Result<StreamRecord> {
    let Json(processing): Json<Processing> = row.try_get("processing")?;
    Ok(StreamRecord {
        id: row.try_get("id")?,
        organization_id: row.try_get("organization_id")?,
        name: row.try_get("name")?,
        processing,
        stream_key: row.try_get("stream_key")?,
        source_uri: row.try_get("source_uri")?,
        create_time_ms: row.try_get("create_time_ms")?,
        srt_encryption: row
            .try_get::<Option<Json<SrtEncryption>>, _>("srt_encryption")?
            .map(|Json(encryption)| encryption),
    })
}

fn recording_from(row: &PgRow) -> Result<RecordingRecord> {
    let get = |row: &PgRow| -> sqlx::Result<(RecordingRecord, String)> {
        Ok((
            RecordingRecord {
                id: row.try_get("id")?,
                organization_id: row.try_get("organization_id")?,
                stream_id: row.try_get("stream_id")?,
                file_name: row.try_get("file_name")?,
                state: RecordingState::Recording,
                start_time_ms: row.try_get("start_time_ms")?,
                end_time_ms: row.try_get("end_time_ms")?,
                start_pts_ns: from_db(row.try_get("start_pts_ns")?),
                duration_ns: from_db(row.try_get("duration_ns")?),
                size_bytes: from_db(row.try_get("size_bytes")?),
                session_id: row.try_get("session_id")?,
                uploaded: row.try_get("uploaded")?,
                writer: Fence {
                    node_id: row.try_get("writer_node")?,
                    epoch: row.try_get("writer_epoch")?,
                },
            },
            row.try_get("state")?,
        ))
    };
    let (mut record, state) = get(row).map_err(storage_error)?;
    record.state = state_from_name(&state)?;
    Ok(record)
}

fn clip_from(row: &PgRow) -> sqlx::Result<ClipRecord> {
    Ok(ClipRecord {
        id: row.try_get("id")?,
        organization_id: row.try_get("organization_id")?,
        stream_id: row.try_get("stream_id")?,
        file_name: row.try_get("file_name")?,
        title: row.try_get("title")?,
        start_time_ms: row.try_get("start_time_ms")?,
        start_pts_ns: from_db(row.try_get("start_pts_ns")?),
        duration_ns: from_db(row.try_get("duration_ns")?),
        size_bytes: from_db(row.try_get("size_bytes")?),
        create_time_ms: row.try_get("create_time_ms")?,
        uploaded: row.try_get("uploaded")?,
    })
}

/// A page from rows fetched with `LIMIT page_size + 1`, ordered by id:
/// the extra row says there is a next page, whose token is the last id
/// kept.
fn page<T>(
    rows: Vec<PgRow>,
    page_size: usize,
    convert: impl Fn(&PgRow) -> Result<T>,
    id: impl Fn(&T) -> &str,
) -> Result<Page<T>> {
    let more = rows.len() > page_size;
    let items = rows
        .iter()
        .take(page_size)
        .map(convert)
        .collect::<Result<Vec<T>>>()?;
    let next_page_token = match (more, items.last()) {
        (true, Some(last)) => id(last).to_string(),
        _ => String::new(),
    };
    Ok(Page {
        items,
        next_page_token,
    })
}

/// How many streams the organization has (in a transaction or not).
async fn count_streams<'e>(executor: impl sqlx::PgExecutor<'e>, org_id: &str) -> Result<u64> {
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM streams WHERE organization_id = $1")
        .bind(org_id)
        .fetch_one(executor)
        .await
        .map_err(storage_error)?;
    Ok(from_db(count))
}

/// `LIMIT` for a page: one more row than asked, to see if there is more.
fn limit(page_size: usize) -> i64 {
    i64::try_from(page_size.saturating_add(1)).unwrap_or(i64::MAX)
}

impl PgRegistry {
    /// Connects to `url` and applies the embedded migrations. The URL's
    /// password never reaches an error message or the log.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await
            .map_err(|e| {
                Error::StorageUnavailable(crate::redact::text(&format!(
                    "cannot connect to the registry database: {e}"
                )))
            })?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| Error::Storage(format!("migrating the registry database: {e}")))?;
        Ok(Self { pool })
    }

    pub async fn probe_write(&self) -> Result<()> {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ('health_probe', $1)
             ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
        )
        .bind(now_millis().to_string())
        .execute(&self.pool)
        .await
        .map_err(storage_error)?;
        Ok(())
    }

    // ----- server settings -------------------------------------------------

    pub async fn setting(&self, name: &str) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(storage_error)
    }

    pub async fn set_setting(&self, name: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(storage_error)?;
        Ok(())
    }

    pub async fn setting_or_insert(&self, name: &str, value: &str) -> Result<String> {
        // The no-op update makes the row come back whether it was
        // inserted now or by another node before.
        sqlx::query_scalar(
            "INSERT INTO settings (name, value) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET value = settings.value
             RETURNING value",
        )
        .bind(name)
        .bind(value)
        .fetch_one(&self.pool)
        .await
        .map_err(storage_error)
    }

    // ----- organizations ---------------------------------------------------

    pub async fn create_organization(
        &self,
        name: &str,
        live_processing: bool,
    ) -> Result<(OrganizationRecord, String)> {
        let api_key = secrets::new_api_key();
        let record = OrganizationRecord {
            id: crate::ids::new_organization_id(),
            name: name.to_string(),
            live_processing,
            api_key_hash: secrets::hash_key(&api_key),
            create_time_ms: now_millis(),
            url_signing_generation: 0,
            quotas: Quotas::default(),
        };
        sqlx::query(
            "INSERT INTO organizations (id, name, live_processing, api_key_hash, create_time_ms)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&record.id)
        .bind(&record.name)
        .bind(record.live_processing)
        .bind(&record.api_key_hash)
        .bind(record.create_time_ms)
        .execute(&self.pool)
        .await
        .map_err(storage_error)?;
        Ok((record, api_key))
    }

    pub async fn import_organization(&self, record: &OrganizationRecord) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO organizations (id, name, live_processing, api_key_hash, create_time_ms, url_signing_generation, quotas)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&record.id)
        .bind(&record.name)
        .bind(record.live_processing)
        .bind(&record.api_key_hash)
        .bind(record.create_time_ms)
        .bind(record.url_signing_generation as i32)
        .bind(Json(&record.quotas))
        .execute(&self.pool)
        .await
        .map_err(storage_error)?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn organization(&self, id: &str) -> Result<Option<OrganizationRecord>> {
        let row = sqlx::query("SELECT * FROM organizations WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(storage_error)?;
        row.as_ref()
            .map(organization_from)
            .transpose()
            .map_err(storage_error)
    }

    pub async fn organization_for_api_key(&self, api_key: &str) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT id FROM organizations WHERE api_key_hash = $1")
            .bind(secrets::hash_key(api_key))
            .fetch_optional(&self.pool)
            .await
            .map_err(storage_error)
    }

    pub async fn list_organizations(
        &self,
        page_token: &str,
        page_size: usize,
    ) -> Result<Page<OrganizationRecord>> {
        let rows = sqlx::query("SELECT * FROM organizations WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(page_token)
            .bind(limit(page_size))
            .fetch_all(&self.pool)
            .await
            .map_err(storage_error)?;
        page(
            rows,
            page_size,
            |row| organization_from(row).map_err(storage_error),
            |o| &o.id,
        )
    }

    pub async fn set_live_processing(&self, id: &str, enabled: bool) -> Result<OrganizationRecord> {
        let row =
            sqlx::query("UPDATE organizations SET live_processing = $2 WHERE id = $1 RETURNING *")
                .bind(id)
                .bind(enabled)
                .fetch_optional(&self.pool)
                .await
                .map_err(storage_error)?
                .ok_or_else(|| Error::organization_not_found(id))?;
        organization_from(&row).map_err(storage_error)
    }

    pub async fn set_quotas(&self, id: &str, quotas: &Quotas) -> Result<OrganizationRecord> {
        let row = sqlx::query("UPDATE organizations SET quotas = $2 WHERE id = $1 RETURNING *")
            .bind(id)
            .bind(Json(quotas))
            .fetch_optional(&self.pool)
            .await
            .map_err(storage_error)?
            .ok_or_else(|| Error::organization_not_found(id))?;
        organization_from(&row).map_err(storage_error)
    }

    pub async fn rotate_api_key(&self, id: &str) -> Result<(OrganizationRecord, String)> {
        let api_key = secrets::new_api_key();
        let row =
            sqlx::query("UPDATE organizations SET api_key_hash = $2, url_signing_generation = url_signing_generation + 1 WHERE id = $1 RETURNING *")
                .bind(id)
                .bind(secrets::hash_key(&api_key))
                .fetch_optional(&self.pool)
                .await
                .map_err(storage_error)?
                .ok_or_else(|| Error::organization_not_found(id))?;
        Ok((organization_from(&row).map_err(storage_error)?, api_key))
    }

    pub async fn rotate_url_signing(&self, id: &str) -> Result<OrganizationRecord> {
        let row = sqlx::query(
            "UPDATE organizations SET url_signing_generation = url_signing_generation + 1 \
             WHERE id = $1 RETURNING *",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(storage_error)?
        .ok_or_else(|| Error::organization_not_found(id))?;
        organization_from(&row).map_err(storage_error)
    }

    // ----- streams ---------------------------------------------------------

    pub async fn stream_count(&self, org_id: &str) -> Result<u64> {
        count_streams(&self.pool, org_id).await
    }

    /// Bytes of the organization's recordings and clips, as catalogued.
    pub async fn stored_bytes(&self, org_id: &str) -> Result<u64> {
        let total: i64 = sqlx::query_scalar(
            "SELECT (SELECT coalesce(sum(size_bytes), 0) FROM recordings WHERE organization_id = $1)::bigint
                  + (SELECT coalesce(sum(size_bytes), 0) FROM clips WHERE organization_id = $1)::bigint",
        )
        .bind(org_id)
        .fetch_one(&self.pool)
        .await
        .map_err(storage_error)?;
        Ok(from_db(total))
    }

    pub async fn rotate_stream_key(&self, org_id: &str, stream_id: &str) -> Result<StreamRecord> {
        let row = sqlx::query(
            "UPDATE streams SET stream_key = $3 WHERE organization_id = $1 AND id = $2 RETURNING *",
        )
        .bind(org_id)
        .bind(stream_id)
        .bind(secrets::new_stream_key())
        .fetch_optional(&self.pool)
        .await
        .map_err(storage_error)?
        .ok_or_else(|| Error::stream_not_found(stream_id))?;
        stream_from(&row).map_err(storage_error)
    }

    /// Stores a new stream; with `quota`, refuses it when the
    /// organization has its quota of streams. Creations of one
    /// organization are serialized by a transaction lock, so that two
    /// nodes creating at once cannot both take the last one.
    pub async fn create_stream(
        &self,
        record: &StreamRecord,
        quota: Option<&OrganizationRecord>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(storage_error)?;
        if let Some(org) = quota {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('streams of ' || $1, 0))")
                .bind(&record.organization_id)
                .execute(&mut *tx)
                .await
                .map_err(storage_error)?;
            let count = count_streams(&mut *tx, &record.organization_id).await?;
            org.check_quota(Quota::Streams, count)?;
        }
        let inserted = sqlx::query(
            "INSERT INTO streams (organization_id, id, name, processing, stream_key, source_uri, create_time_ms, srt_encryption)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&record.organization_id)
        .bind(&record.id)
        .bind(&record.name)
        .bind(Json(&record.processing))
        .bind(&record.stream_key)
        .bind(&record.source_uri)
        .bind(record.create_time_ms)
        .bind(record.srt_encryption.as_ref().map(Json))
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => tx.commit().await.map_err(storage_error),
            Err(e) if is_unique_violation(&e) => Err(Error::AlreadyExists {
                kind: "stream",
                name: record.id.clone(),
            }),
            Err(e) => Err(storage_error(e)),
        }
    }

    pub async fn stream(&self, org_id: &str, stream_id: &str) -> Result<Option<StreamRecord>> {
        let row = sqlx::query("SELECT * FROM streams WHERE organization_id = $1 AND id = $2")
            .bind(org_id)
            .bind(stream_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(storage_error)?;
        row.as_ref()
            .map(stream_from)
            .transpose()
            .map_err(storage_error)
    }

    pub async fn stream_for_publish_key(&self, publish_key: &str) -> Result<Option<StreamRecord>> {
        let row = sqlx::query("SELECT * FROM streams WHERE stream_key = $1")
            .bind(publish_key)
            .fetch_optional(&self.pool)
            .await
            .map_err(storage_error)?;
        row.as_ref()
            .map(stream_from)
            .transpose()
            .map_err(storage_error)
    }

    pub async fn list_streams(
        &self,
        org_id: &str,
        page_token: &str,
        page_size: usize,
    ) -> Result<Page<StreamRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM streams WHERE organization_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(org_id)
        .bind(page_token)
        .bind(limit(page_size))
        .fetch_all(&self.pool)
        .await
        .map_err(storage_error)?;
        page(
            rows,
            page_size,
            |row| stream_from(row).map_err(storage_error),
            |s| &s.id,
        )
    }

    pub async fn all_streams(&self) -> Result<Vec<StreamRecord>> {
        let rows = sqlx::query("SELECT * FROM streams ORDER BY organization_id, id")
            .fetch_all(&self.pool)
            .await
            .map_err(storage_error)?;
        rows.iter()
            .map(stream_from)
            .collect::<sqlx::Result<_>>()
            .map_err(storage_error)
    }

    pub async fn delete_stream(&self, org_id: &str, stream_id: &str) -> Result<StreamRecord> {
        let row =
            sqlx::query("DELETE FROM streams WHERE organization_id = $1 AND id = $2 RETURNING *")
                .bind(org_id)
                .bind(stream_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(storage_error)?
                .ok_or_else(|| Error::stream_not_found(stream_id))?;
        stream_from(&row).map_err(storage_error)
    }

    pub async fn set_processing(
        &self,
        org_id: &str,
        stream_id: &str,
        processing: &Processing,
        event: Option<&WebhookEvent>,
    ) -> Result<StreamRecord> {
        let mut tx = self.pool.begin().await.map_err(storage_error)?;
        let row = sqlx::query(
            "UPDATE streams SET processing = $3 WHERE organization_id = $1 AND id = $2 RETURNING *",
        )
        .bind(org_id)
        .bind(stream_id)
        .bind(Json(processing))
        .fetch_optional(&mut *tx)
        .await
        .map_err(storage_error)?
        .ok_or_else(|| Error::stream_not_found(stream_id))?;
        if let Some(event) = event {
            webhooks::queue_in(&mut tx, event).await?;
        }
        tx.commit().await.map_err(storage_error)?;
        stream_from(&row).map_err(storage_error)
    }

    // ----- recordings ------------------------------------------------------

    /// Inserts or updates a recording, fenced by its writer: an update
    /// must come from the writer the row names, and a new row is refused
    /// once the stream's lease is held by another node at a later epoch.
    pub async fn put_recording(
        &self,
        record: &RecordingRecord,
        event: Option<&WebhookEvent>,
    ) -> Result<()> {
        let query = sqlx::query(
            "INSERT INTO recordings (id, organization_id, stream_id, session_id, file_name, state,
                                     start_time_ms, end_time_ms, start_pts_ns, duration_ns, size_bytes,
                                     uploaded, writer_node, writer_epoch)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14
             WHERE EXISTS (SELECT 1 FROM recordings WHERE id = $1)
                OR NOT EXISTS (SELECT 1 FROM stream_leases l
                               WHERE l.organization_id = $2 AND l.stream_id = $3
                                 AND $13 <> '' AND l.node_id <> $13 AND l.epoch > $14)
             ON CONFLICT (id) DO UPDATE SET
                 session_id = EXCLUDED.session_id, file_name = EXCLUDED.file_name,
                 state = EXCLUDED.state, start_time_ms = EXCLUDED.start_time_ms,
                 end_time_ms = EXCLUDED.end_time_ms, start_pts_ns = EXCLUDED.start_pts_ns,
                 duration_ns = EXCLUDED.duration_ns, size_bytes = EXCLUDED.size_bytes,
                 uploaded = EXCLUDED.uploaded
             WHERE recordings.organization_id = EXCLUDED.organization_id
               AND recordings.stream_id = EXCLUDED.stream_id
               AND recordings.writer_node = EXCLUDED.writer_node
               AND recordings.writer_epoch = EXCLUDED.writer_epoch",
        )
        .bind(&record.id)
        .bind(&record.organization_id)
        .bind(&record.stream_id)
        .bind(&record.session_id)
        .bind(&record.file_name)
        .bind(state_name(record.state))
        .bind(record.start_time_ms)
        .bind(record.end_time_ms)
        .bind(to_db(record.start_pts_ns))
        .bind(to_db(record.duration_ns))
        .bind(to_db(record.size_bytes))
        .bind(record.uploaded)
        .bind(&record.writer.node_id)
        .bind(record.writer.epoch);
        let written = self.write_with_event(query, event).await?;
        fenced(written, || format!("recording {}", record.id))
    }

    /// Runs a write, and queues `event` in the same transaction when the
    /// write changed a row; returns the rows changed.
    async fn write_with_event(
        &self,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
        event: Option<&WebhookEvent>,
    ) -> Result<u64> {
        let Some(event) = event else {
            let done = query.execute(&self.pool).await.map_err(storage_error)?;
            return Ok(done.rows_affected());
        };
        let mut tx = self.pool.begin().await.map_err(storage_error)?;
        let written = query
            .execute(&mut *tx)
            .await
            .map_err(storage_error)?
            .rows_affected();
        if written > 0 {
            webhooks::queue_in(&mut tx, event).await?;
        }
        tx.commit().await.map_err(storage_error)?;
        Ok(written)
    }

    /// Makes `to` the writer of a recording still written by the writer
    /// `record` names and not wholly uploaded; false when it is not (any
    /// more): another node took it first, or it was finished.
    pub async fn take_over_recording(&self, record: &RecordingRecord, to: &Fence) -> Result<bool> {
        let taken = sqlx::query(
            "UPDATE recordings SET writer_node = $2, writer_epoch = $3
             WHERE id = $1 AND writer_node = $4 AND writer_epoch = $5 AND NOT uploaded",
        )
        .bind(&record.id)
        .bind(&to.node_id)
        .bind(to.epoch)
        .bind(&record.writer.node_id)
        .bind(record.writer.epoch)
        .execute(&self.pool)
        .await
        .map_err(storage_error)?;
        Ok(taken.rows_affected() == 1)
    }

    pub async fn recording(&self, org_id: &str, id: &str) -> Result<Option<RecordingRecord>> {
        let row = sqlx::query("SELECT * FROM recordings WHERE id = $1 AND organization_id = $2")
            .bind(id)
            .bind(org_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(storage_error)?;
        row.as_ref().map(recording_from).transpose()
    }

    pub async fn list_recordings(
        &self,
        org_id: &str,
        stream_id: &str,
        page_token: &str,
        page_size: usize,
    ) -> Result<Page<RecordingRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM recordings
             WHERE organization_id = $1 AND stream_id = $2 AND id > $3
             ORDER BY id LIMIT $4",
        )
        .bind(org_id)
        .bind(stream_id)
        .bind(page_token)
        .bind(limit(page_size))
        .fetch_all(&self.pool)
        .await
        .map_err(storage_error)?;
        page(rows, page_size, recording_from, |r| &r.id)
    }

    pub async fn session_recordings(
        &self,
        org_id: &str,
        stream_id: &str,
        session_id: &str,
    ) -> Result<Vec<RecordingRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM recordings
             WHERE organization_id = $1 AND stream_id = $2 AND session_id = $3 AND session_id <> ''
             ORDER BY id",
        )
        .bind(org_id)
        .bind(stream_id)
        .bind(session_id)
        .fetch_all(&self.pool)
        .await
        .map_err(storage_error)?;
        rows.iter().map(recording_from).collect()
    }

    pub async fn recording_at(
        &self,
        org_id: &str,
        stream_id: &str,
        at_ms: i64,
    ) -> Result<Option<RecordingRecord>> {
        let row = sqlx::query(
            "SELECT * FROM recordings
             WHERE organization_id = $1 AND stream_id = $2 AND start_time_ms <= $3
             ORDER BY id DESC LIMIT 1",
        )
        .bind(org_id)
        .bind(stream_id)
        .bind(at_ms)
        .fetch_optional(&self.pool)
        .await
        .map_err(storage_error)?;
        let record = row.as_ref().map(recording_from).transpose()?;
        Ok(record.and_then(|r| crate::registry::records::holds(r, at_ms)))
    }

    pub async fn delete_recording(&self, record: &RecordingRecord) -> Result<()> {
        sqlx::query("DELETE FROM recordings WHERE id = $1 AND organization_id = $2")
            .bind(&record.id)
            .bind(&record.organization_id)
            .execute(&self.pool)
            .await
            .map_err(storage_error)?;
        Ok(())
    }

    pub async fn unfinished_recordings(&self) -> Result<Vec<RecordingRecord>> {
        let rows = sqlx::query("SELECT * FROM recordings WHERE state = 'recording' ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(storage_error)?;
        rows.iter().map(recording_from).collect()
    }

    /// Records a part, if `writer` still writes the recording and it is
    /// not finished.
    pub async fn put_recording_part(&self, writer: &Fence, part: &RecordingPart) -> Result<()> {
        let written = sqlx::query(
            "INSERT INTO recording_parts (recording_id, seq, part_offset, size_bytes)
             SELECT $1, $2, $3, $4
             WHERE EXISTS (SELECT 1 FROM recordings
                           WHERE id = $1 AND writer_node = $5 AND writer_epoch = $6
                             AND NOT uploaded)
             ON CONFLICT (recording_id, seq) DO UPDATE SET
                 part_offset = EXCLUDED.part_offset, size_bytes = EXCLUDED.size_bytes",
        )
        .bind(&part.recording_id)
        .bind(i32::try_from(part.seq).unwrap_or(i32::MAX))
        .bind(to_db(part.offset))
        .bind(to_db(part.size))
        .bind(&writer.node_id)
        .bind(writer.epoch)
        .execute(&self.pool)
        .await
        .map_err(storage_error)?;
        fenced(written.rows_affected(), || {
            format!("part {} of recording {}", part.seq, part.recording_id)
        })
    }

    pub async fn recording_parts(&self, recording_id: &str) -> Result<Vec<RecordingPart>> {
        let rows = sqlx::query(
            "SELECT seq, part_offset, size_bytes FROM recording_parts
             WHERE recording_id = $1 ORDER BY seq",
        )
        .bind(recording_id)
        .fetch_all(&self.pool)
        .await
        .map_err(storage_error)?;
        rows.iter()
            .map(|row| {
                Ok(RecordingPart {
                    recording_id: recording_id.to_string(),
                    seq: u32::try_from(row.try_get::<i32, _>("seq")?).unwrap_or_default(),
                    offset: from_db(row.try_get("part_offset")?),
                    size: from_db(row.try_get("size_bytes")?),
                })
            })
            .collect::<sqlx::Result<_>>()
            .map_err(storage_error)
    }

    pub async fn recordings_to_upload(&self) -> Result<Vec<RecordingRecord>> {
        let rows = sqlx::query("SELECT * FROM recordings WHERE NOT uploaded ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(storage_error)?;
        rows.iter().map(recording_from).collect()
    }

    // ----- replay clips ----------------------------------------------------

    /// Stores a clip; one cut by a session (`writer`) is refused once the
    /// stream's lease is held by another node at a later epoch.
    pub async fn put_clip(
        &self,
        clip: &ClipRecord,
        writer: Option<&Fence>,
        event: Option<&WebhookEvent>,
    ) -> Result<()> {
        let query = sqlx::query(
            "INSERT INTO clips (id, organization_id, stream_id, file_name, title, start_time_ms,
                                start_pts_ns, duration_ns, size_bytes, create_time_ms, uploaded)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11
             WHERE $12::text IS NULL
                OR NOT EXISTS (SELECT 1 FROM stream_leases l
                               WHERE l.organization_id = $2 AND l.stream_id = $3
                                 AND l.node_id <> $12 AND l.epoch > $13)
             ON CONFLICT (id) DO UPDATE SET
                 file_name = EXCLUDED.file_name, title = EXCLUDED.title,
                 start_time_ms = EXCLUDED.start_time_ms, start_pts_ns = EXCLUDED.start_pts_ns,
                 duration_ns = EXCLUDED.duration_ns, size_bytes = EXCLUDED.size_bytes,
                 uploaded = EXCLUDED.uploaded
             WHERE clips.organization_id = EXCLUDED.organization_id
               AND clips.stream_id = EXCLUDED.stream_id",
        )
        .bind(&clip.id)
        .bind(&clip.organization_id)
        .bind(&clip.stream_id)
        .bind(&clip.file_name)
        .bind(&clip.title)
        .bind(clip.start_time_ms)
        .bind(to_db(clip.start_pts_ns))
        .bind(to_db(clip.duration_ns))
        .bind(to_db(clip.size_bytes))
        .bind(clip.create_time_ms)
        .bind(clip.uploaded)
        .bind(writer.map(|w| w.node_id.as_str()))
        .bind(writer.map_or(0, |w| w.epoch));
        let written = self.write_with_event(query, event).await?;
        fenced(written, || format!("replay clip {}", clip.id))
    }

    pub async fn clip(&self, org_id: &str, id: &str) -> Result<Option<ClipRecord>> {
        let row = sqlx::query("SELECT * FROM clips WHERE id = $1 AND organization_id = $2")
            .bind(id)
            .bind(org_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(storage_error)?;
        row.as_ref()
            .map(clip_from)
            .transpose()
            .map_err(storage_error)
    }

    pub async fn list_clips(
        &self,
        org_id: &str,
        stream_id: &str,
        page_token: &str,
        page_size: usize,
    ) -> Result<Page<ClipRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM clips
             WHERE organization_id = $1 AND stream_id = $2 AND id > $3
             ORDER BY id LIMIT $4",
        )
        .bind(org_id)
        .bind(stream_id)
        .bind(page_token)
        .bind(limit(page_size))
        .fetch_all(&self.pool)
        .await
        .map_err(storage_error)?;
        page(
            rows,
            page_size,
            |row| clip_from(row).map_err(storage_error),
            |c| &c.id,
        )
    }

    pub async fn delete_clip(&self, clip: &ClipRecord) -> Result<()> {
        sqlx::query("DELETE FROM clips WHERE id = $1 AND organization_id = $2")
            .bind(&clip.id)
            .bind(&clip.organization_id)
            .execute(&self.pool)
            .await
            .map_err(storage_error)?;
        Ok(())
    }
}

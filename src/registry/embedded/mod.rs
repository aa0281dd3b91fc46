//! The embedded registry backend: every record in a `redb` database
//! under the data dir (the single-node default).
//!
//! Every change is one ACID write transaction committed with redb's default
//! (immediate) durability: once a call returns, the change survives a crash
//! or `kill -9`. Streams are scoped by organization (`org_id/stream_id`), so
//! two organizations may use the same client-chosen stream id and neither
//! can learn that the other's exists.

mod audit;
mod cluster;
mod media;
mod webhooks;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;

use super::cluster::{LocalLeases, NodeRecord};
use super::records::{
    now_millis, OrganizationRecord, Quota, Quotas, RecordingRecord, StreamRecord,
};
use super::webhooks::WebhookEvent;
use super::{secrets, Page};

use crate::error::{Error, Result};
use crate::options::Processing;
use crate::runtime::blocking;

/// organization id → JSON `OrganizationRecord`
const ORGANIZATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("organizations");
/// SHA-256 of an API key → organization id
const API_KEYS: TableDefinition<&str, &str> = TableDefinition::new("api_keys");
/// `org_id/stream_id` → JSON `StreamRecord`
const STREAMS: TableDefinition<&str, &[u8]> = TableDefinition::new("streams");
/// stream key → `org_id/stream_id`
const STREAM_KEYS: TableDefinition<&str, &str> = TableDefinition::new("stream_keys");
/// settings of the server itself (admin key hash, ...)
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");

const META_HEALTH_PROBE: &str = "health_probe";
/// Set once the recordings' session index has been filled.
const META_SESSION_INDEX: &str = "recording_session_index";

/// The redb database of the registry.
///
/// After an I/O error (a full disk) redb refuses every later transaction
/// until the database is opened again; the registry does that itself on
/// the next transaction, so writes work again as soon as space is back,
/// without a restart.
pub struct EmbeddedRegistry {
    path: PathBuf,
    db: RwLock<Option<Arc<Database>>>,
    /// This node's last heartbeat ([`cluster`]).
    node: std::sync::Mutex<Option<(NodeRecord, std::time::Instant)>>,
    leases: LocalLeases,
    /// Outbox messages this process is delivering.
    webhook_claims: webhooks::Claims,
}

fn stream_key(org_id: &str, stream_id: &str) -> String {
    format!("{org_id}/{stream_id}")
}

/// How many keys of `table` start with `prefix`.
fn count_under(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    prefix: &str,
) -> Result<u64> {
    let mut count = 0;
    for entry in table.range(prefix..)? {
        let (key, _) = entry?;
        if !key.value().starts_with(prefix) {
            break;
        }
        count += 1;
    }
    Ok(count)
}

/// Pages of the file redb keeps in memory. Its default, 1 GiB, would let
/// a registry that only grows, such as its audit log, take that much: the
/// cache fills with every page written until it reaches its size (the
/// heap grew 0.25 MiB per 640 audit events until then, which is what the
/// 2-hour soak's heap did with 32 MiB). The hot set, organizations, keys
/// and the streams of the moment, is small, and a page not cached is read
/// from the system's page cache.
const CACHE_BYTES: usize = 8 * 1024 * 1024;

impl EmbeddedRegistry {
    /// Opens (or creates) the registry database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let db = Self::open_db(path)?;
        let registry = Self {
            path: path.to_path_buf(),
            db: RwLock::new(Some(Arc::new(db))),
            node: Default::default(),
            leases: LocalLeases::default(),
            webhook_claims: Default::default(),
        };
        registry.upgrade()?;
        Ok(registry)
    }

    /// Brings a registry written by an earlier version up to date: the
    /// recordings' session index is filled once.
    fn upgrade(&self) -> Result<()> {
        let txn = self.begin_read()?;
        let done = txn.open_table(META)?.get(META_SESSION_INDEX)?.is_some();
        drop(txn);
        if done {
            return Ok(());
        }
        let indexed = self.index_sessions::<RecordingRecord>(&media::RECORDINGS)?;
        let txn = self.begin_write()?;
        txn.open_table(META)?.insert(META_SESSION_INDEX, "1")?;
        self.commit(txn)?;
        if indexed > 0 {
            tracing::info!(
                recordings = indexed,
                "registry upgraded: recordings indexed by session"
            );
        }
        Ok(())
    }

    fn open_db(path: &Path) -> Result<Database> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)?;
        let txn = db.begin_write()?;
        {
            txn.open_table(ORGANIZATIONS)?;
            txn.open_table(API_KEYS)?;
            txn.open_table(STREAMS)?;
            txn.open_table(STREAM_KEYS)?;
            txn.open_table(META)?;
            txn.open_table(webhooks::ENDPOINTS)?;
            txn.open_table(webhooks::ENDPOINT_IDS)?;
            txn.open_table(webhooks::MESSAGES)?;
            txn.open_table(webhooks::ATTEMPTS)?;
            for catalogue in [&media::RECORDINGS, &media::CLIPS] {
                txn.open_table(catalogue.items)?;
                txn.open_table(catalogue.ids)?;
                if let Some(sessions) = catalogue.sessions {
                    txn.open_table(sessions)?;
                }
                if let Some(pending) = catalogue.pending {
                    txn.open_table(pending)?;
                }
                if let Some(parts) = catalogue.parts {
                    txn.open_table(parts)?;
                }
            }
        }
        txn.commit()?;
        Ok(db)
    }

    /// The open database, opened again if the last one failed.
    fn database(&self) -> Result<Arc<Database>> {
        if let Some(db) = self.db.read().expect("registry lock").as_ref() {
            return Ok(Arc::clone(db));
        }
        let mut slot = self.db.write().expect("registry lock");
        if let Some(db) = slot.as_ref() {
            return Ok(Arc::clone(db));
        }
        let db = Arc::new(Self::open_db(&self.path)?);
        *slot = Some(Arc::clone(&db));
        drop(slot);
        tracing::info!(path = %self.path.display(), "registry reopened after a storage error");
        Ok(db)
    }

    /// Notes a storage failure: the database is dropped, to be opened
    /// again by the next transaction (once every transaction still using
    /// it has finished).
    fn failed<T>(&self, result: Result<T>) -> Result<T> {
        if matches!(
            result,
            Err(Error::StorageFull(_) | Error::StorageUnavailable(_))
        ) {
            *self.db.write().expect("registry lock") = None;
        }
        result
    }

    fn begin_write(&self) -> Result<redb::WriteTransaction> {
        let db = self.database()?;
        let txn = db.begin_write().map_err(Error::from);
        self.failed(txn)
    }

    fn begin_read(&self) -> Result<redb::ReadTransaction> {
        let db = self.database()?;
        let txn = db.begin_read().map_err(Error::from);
        self.failed(txn)
    }

    /// Commits `txn`; a failed commit (disk full) marks the database for
    /// reopening. The commit waits for the disk (fsync), so it runs as
    /// blocking work: the async task calling it does not stall its worker's
    /// other tasks.
    fn commit(&self, txn: redb::WriteTransaction) -> Result<()> {
        let committed = blocking(|| txn.commit()).map_err(Error::from);
        self.failed(committed)
    }

    /// Whether a write can be made now: a small write to the settings
    /// table, committed (the health check).
    pub fn probe_write(&self) -> Result<()> {
        let txn = self.begin_write()?;
        txn.open_table(META)?
            .insert(META_HEALTH_PROBE, now_millis().to_string().as_str())?;
        self.commit(txn)
    }

    // ----- server settings -------------------------------------------------

    /// A server setting.
    pub fn setting(&self, name: &str) -> Result<Option<String>> {
        let txn = self.begin_read()?;
        let table = txn.open_table(META)?;
        Ok(table.get(name)?.map(|v| v.value().to_string()))
    }

    pub fn set_setting(&self, name: &str, value: &str) -> Result<()> {
        let txn = self.begin_write()?;
        txn.open_table(META)?.insert(name, value)?;
        self.commit(txn)
    }

    /// The setting's value, storing `value` first if it has none.
    pub fn setting_or_insert(&self, name: &str, value: &str) -> Result<String> {
        let txn = self.begin_write()?;
        let stored = {
            let mut table = txn.open_table(META)?;
            let existing = table.get(name)?.map(|v| v.value().to_string());
            match existing {
                Some(stored) => stored,
                None => {
                    table.insert(name, value)?;
                    value.to_string()
                }
            }
        };
        self.commit(txn)?;
        Ok(stored)
    }

    // ----- organizations ---------------------------------------------------

    /// Stores an organization as it is (id, key hash), unless one with its
    /// id exists; says whether it was stored.
    pub fn import_organization(&self, record: &OrganizationRecord) -> Result<bool> {
        let txn = self.begin_write()?;
        {
            let mut orgs = txn.open_table(ORGANIZATIONS)?;
            if orgs.get(record.id.as_str())?.is_some() {
                return Ok(false);
            }
            orgs.insert(record.id.as_str(), serde_json::to_vec(record)?.as_slice())?;
            txn.open_table(API_KEYS)?
                .insert(record.api_key_hash.as_str(), record.id.as_str())?;
        }
        self.commit(txn)?;
        Ok(true)
    }

    /// Creates an organization and returns it with its new API key (the only
    /// time the key is seen in clear).
    pub fn create_organization(
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
        let txn = self.begin_write()?;
        {
            txn.open_table(ORGANIZATIONS)?
                .insert(record.id.as_str(), serde_json::to_vec(&record)?.as_slice())?;
            txn.open_table(API_KEYS)?
                .insert(record.api_key_hash.as_str(), record.id.as_str())?;
        }
        self.commit(txn)?;
        Ok((record, api_key))
    }

    pub fn organization(&self, id: &str) -> Result<Option<OrganizationRecord>> {
        let txn = self.begin_read()?;
        let table = txn.open_table(ORGANIZATIONS)?;
        let found = table.get(id)?;
        Ok(match found {
            Some(v) => Some(serde_json::from_slice(v.value())?),
            None => None,
        })
    }

    /// The organization an API key belongs to.
    pub fn organization_for_api_key(&self, api_key: &str) -> Result<Option<String>> {
        let hash = secrets::hash_key(api_key);
        let txn = self.begin_read()?;
        let table = txn.open_table(API_KEYS)?;
        Ok(table.get(hash.as_str())?.map(|v| v.value().to_string()))
    }

    pub fn list_organizations(
        &self,
        page_token: &str,
        page_size: usize,
    ) -> Result<Page<OrganizationRecord>> {
        self.list_under(ORGANIZATIONS, "", page_token, page_size)
    }

    pub fn set_live_processing(&self, id: &str, enabled: bool) -> Result<OrganizationRecord> {
        self.update_organization(id, |org| {
            org.live_processing = enabled;
            Ok(None)
        })
        .map(|(org, _)| org)
    }

    /// Replaces the API key of an organization; the old one stops working,
    /// and so do the URLs signed before.
    pub fn rotate_api_key(&self, id: &str) -> Result<(OrganizationRecord, String)> {
        let api_key = secrets::new_api_key();
        let (org, _) = self.update_organization(id, |org| {
            org.url_signing_generation += 1;
            let old = std::mem::replace(&mut org.api_key_hash, secrets::hash_key(&api_key));
            Ok(Some(old))
        })?;
        Ok((org, api_key))
    }

    pub fn set_quotas(&self, id: &str, quotas: &Quotas) -> Result<OrganizationRecord> {
        self.update_organization(id, |org| {
            org.quotas = *quotas;
            Ok(None)
        })
        .map(|(org, _)| org)
    }

    /// Refuses every URL the organization signed until now.
    pub fn rotate_url_signing(&self, id: &str) -> Result<OrganizationRecord> {
        self.update_organization(id, |org| {
            org.url_signing_generation += 1;
            Ok(None)
        })
        .map(|(org, _)| org)
    }

    /// Read-modify-write of one organization in one transaction. `change`
    /// may return the hash of an API key to retire.
    fn update_organization(
        &self,
        id: &str,
        change: impl FnOnce(&mut OrganizationRecord) -> Result<Option<String>>,
    ) -> Result<(OrganizationRecord, Option<String>)> {
        let txn = self.begin_write()?;
        let (record, retired) = {
            let mut orgs = txn.open_table(ORGANIZATIONS)?;
            let mut record: OrganizationRecord = match orgs.get(id)? {
                Some(v) => serde_json::from_slice(v.value())?,
                None => return Err(Error::organization_not_found(id)),
            };
            let retired = change(&mut record)?;
            orgs.insert(id, serde_json::to_vec(&record)?.as_slice())?;
            if let Some(old) = &retired {
                let mut keys = txn.open_table(API_KEYS)?;
                keys.remove(old.as_str())?;
                keys.insert(record.api_key_hash.as_str(), id)?;
            }
            (record, retired)
        };
        self.commit(txn)?;
        Ok((record, retired))
    }

    // ----- streams ---------------------------------------------------------

    /// Stores a new stream; `AlreadyExists` if the organization has one with
    /// the same id.
    pub fn create_stream(
        &self,
        record: &StreamRecord,
        quota: Option<&OrganizationRecord>,
    ) -> Result<()> {
        let key = stream_key(&record.organization_id, &record.id);
        // Writes are serialized: counting in the write transaction makes
        // the quota exact under concurrent creations.
        let txn = self.begin_write()?;
        {
            let mut streams = txn.open_table(STREAMS)?;
            if streams.get(key.as_str())?.is_some() {
                return Err(Error::AlreadyExists {
                    kind: "stream",
                    name: record.id.clone(),
                });
            }
            if let Some(org) = quota {
                let prefix = format!("{}/", record.organization_id);
                let count = count_under(&streams, &prefix)?;
                org.check_quota(Quota::Streams, count)?;
            }
            streams.insert(key.as_str(), serde_json::to_vec(record)?.as_slice())?;
            txn.open_table(STREAM_KEYS)?
                .insert(record.stream_key.as_str(), key.as_str())?;
        }
        self.commit(txn)?;
        Ok(())
    }

    /// How many streams the organization has.
    pub fn stream_count(&self, org_id: &str) -> Result<u64> {
        let txn = self.begin_read()?;
        let table = txn.open_table(STREAMS)?;
        count_under(&table, &format!("{org_id}/"))
    }

    pub fn stream(&self, org_id: &str, stream_id: &str) -> Result<Option<StreamRecord>> {
        let key = stream_key(org_id, stream_id);
        let txn = self.begin_read()?;
        let table = txn.open_table(STREAMS)?;
        let found = table.get(key.as_str())?;
        Ok(match found {
            Some(v) => Some(serde_json::from_slice(v.value())?),
            None => None,
        })
    }

    /// The stream a publish key belongs to.
    pub fn stream_for_publish_key(&self, publish_key: &str) -> Result<Option<StreamRecord>> {
        let txn = self.begin_read()?;
        let keys = txn.open_table(STREAM_KEYS)?;
        let Some(key) = keys.get(publish_key)?.map(|v| v.value().to_string()) else {
            return Ok(None);
        };
        let streams = txn.open_table(STREAMS)?;
        let found = streams.get(key.as_str())?;
        Ok(match found {
            Some(v) => Some(serde_json::from_slice(v.value())?),
            None => None,
        })
    }

    pub fn list_streams(
        &self,
        org_id: &str,
        page_token: &str,
        page_size: usize,
    ) -> Result<Page<StreamRecord>> {
        self.list_under(STREAMS, &format!("{org_id}/"), page_token, page_size)
    }

    /// Every stream of every organization (server start-up).
    pub fn all_streams(&self) -> Result<Vec<StreamRecord>> {
        let txn = self.begin_read()?;
        let table = txn.open_table(STREAMS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (_, v) = entry?;
            out.push(serde_json::from_slice(v.value())?);
        }
        Ok(out)
    }

    /// Deletes a stream; `NotFound` if the organization has none by that id.
    pub fn delete_stream(&self, org_id: &str, stream_id: &str) -> Result<StreamRecord> {
        let key = stream_key(org_id, stream_id);
        let txn = self.begin_write()?;
        let record: StreamRecord = {
            let mut streams = txn.open_table(STREAMS)?;
            let record: StreamRecord = match streams.remove(key.as_str())? {
                Some(v) => serde_json::from_slice(v.value())?,
                None => return Err(Error::stream_not_found(stream_id)),
            };
            txn.open_table(STREAM_KEYS)?
                .remove(record.stream_key.as_str())?;
            record
        };
        self.commit(txn)?;
        Ok(record)
    }

    /// Replaces the processing options of a stream, queuing `event`.
    /// Gives a stream a new publish key; the old one stops at once.
    pub fn rotate_stream_key(&self, org_id: &str, stream_id: &str) -> Result<StreamRecord> {
        let key = stream_key(org_id, stream_id);
        let txn = self.begin_write()?;
        let record = {
            let mut streams = txn.open_table(STREAMS)?;
            let mut record: StreamRecord = match streams.get(key.as_str())? {
                Some(v) => serde_json::from_slice(v.value())?,
                None => return Err(Error::stream_not_found(stream_id)),
            };
            let old = std::mem::replace(&mut record.stream_key, secrets::new_stream_key());
            streams.insert(key.as_str(), serde_json::to_vec(&record)?.as_slice())?;
            let mut keys = txn.open_table(STREAM_KEYS)?;
            keys.remove(old.as_str())?;
            keys.insert(record.stream_key.as_str(), key.as_str())?;
            record
        };
        self.commit(txn)?;
        Ok(record)
    }

    pub fn set_processing(
        &self,
        org_id: &str,
        stream_id: &str,
        processing: &Processing,
        event: Option<&WebhookEvent>,
    ) -> Result<StreamRecord> {
        let key = stream_key(org_id, stream_id);
        let txn = self.begin_write()?;
        let record = {
            let mut streams = txn.open_table(STREAMS)?;
            let mut record: StreamRecord = match streams.get(key.as_str())? {
                Some(v) => serde_json::from_slice(v.value())?,
                None => return Err(Error::stream_not_found(stream_id)),
            };
            record.processing = processing.clone();
            streams.insert(key.as_str(), serde_json::to_vec(&record)?.as_slice())?;
            record
        };
        if let Some(event) = event {
            webhooks::queue_in(&txn, event)?;
        }
        self.commit(txn)?;
        Ok(record)
    }
}

impl EmbeddedRegistry {
    /// One page of the JSON records of `table` whose keys start with
    /// `prefix`, in key order, after the key `prefix + page_token` (the
    /// token is the last key of the previous page, without the prefix).
    pub(crate) fn list_under<T: DeserializeOwned>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        prefix: &str,
        page_token: &str,
        page_size: usize,
    ) -> Result<Page<T>> {
        let start = format!("{prefix}{page_token}");
        let txn = self.begin_read()?;
        let table = txn.open_table(table)?;
        let mut items = Vec::new();
        let mut last_key = String::new();
        let mut more = false;
        for entry in table.range(start.as_str()..)? {
            let (k, v) = entry?;
            let key = k.value();
            if key == start {
                // The token names the last row of the previous page.
                continue;
            }
            if !key.starts_with(prefix) {
                break;
            }
            if items.len() == page_size {
                more = true;
                break;
            }
            items.push(serde_json::from_slice(v.value())?);
            last_key = key[prefix.len()..].to_string();
        }
        Ok(Page {
            items,
            next_page_token: if more { last_key } else { String::new() },
        })
    }
}

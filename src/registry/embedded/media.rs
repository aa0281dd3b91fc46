//! Catalogues of media files that belong to a stream (recordings, replay
//! clips): items keyed `org_id/stream_id/item_id` so a stream's items list
//! in id order, plus an index by item id, and for recordings an index by
//! publishing session (`org_id/stream_id/session_id/item_id`), so that a
//! session's recordings are found without reading the stream's others; an
//! item of another organization is never returned.

use redb::{ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::EmbeddedRegistry;
use crate::error::Result;
use crate::registry::cluster::Fence;
use crate::registry::webhooks::WebhookEvent;
use crate::registry::{ClipRecord, Page, RecordingPart, RecordingRecord, RecordingState};

/// The tables of one catalogue.
pub(super) struct Catalogue {
    pub items: TableDefinition<'static, &'static str, &'static [u8]>,
    pub ids: TableDefinition<'static, &'static str, &'static str>,
    /// Items by publishing session: `org/stream/session/id` to the item's
    /// key (recordings).
    pub sessions: Option<TableDefinition<'static, &'static str, &'static str>>,
    /// Items still to be uploaded to object storage: id to the item's key.
    pub pending: Option<TableDefinition<'static, &'static str, &'static str>>,
    /// Parts in object storage: `item_id/seq` to a JSON part (recordings).
    pub parts: Option<TableDefinition<'static, &'static str, &'static [u8]>>,
}

pub(super) const RECORDINGS: Catalogue = Catalogue {
    items: TableDefinition::new("recordings"),
    ids: TableDefinition::new("recording_ids"),
    sessions: Some(TableDefinition::new("recording_sessions")),
    pending: Some(TableDefinition::new("recordings_to_upload")),
    parts: Some(TableDefinition::new("recording_parts")),
};

pub(super) const CLIPS: Catalogue = Catalogue {
    items: TableDefinition::new("clips"),
    ids: TableDefinition::new("clip_ids"),
    sessions: None,
    pending: None,
    parts: None,
};

/// An item of a catalogue.
pub(super) trait Item: Serialize + DeserializeOwned {
    fn id(&self) -> &str;
    fn organization_id(&self) -> &str;
    fn stream_id(&self) -> &str;
    /// Bytes of its file.
    fn size_bytes(&self) -> u64;
    /// The publishing session it belongs to, if it is indexed by one.
    fn session_id(&self) -> Option<&str> {
        None
    }
    /// Whether it still has to be uploaded to object storage.
    fn pending(&self) -> bool {
        false
    }
    fn key(&self) -> String {
        format!(
            "{}/{}/{}",
            self.organization_id(),
            self.stream_id(),
            self.id()
        )
    }
    fn session_key(&self) -> Option<String> {
        let session = self.session_id().filter(|s| !s.is_empty())?;
        Some(format!(
            "{}/{}/{}/{}",
            self.organization_id(),
            self.stream_id(),
            session,
            self.id()
        ))
    }
}

macro_rules! item {
    ($t:ty $(, $session:ident)?) => {
        impl Item for $t {
            fn id(&self) -> &str {
                &self.id
            }
            fn organization_id(&self) -> &str {
                &self.organization_id
            }
            fn stream_id(&self) -> &str {
                &self.stream_id
            }
            fn size_bytes(&self) -> u64 {
                self.size_bytes
            }
            $(
                fn session_id(&self) -> Option<&str> {
                    Some(&self.$session)
                }
                fn pending(&self) -> bool {
                    self.upload_pending()
                }
            )?
        }
    };
}
item!(RecordingRecord, session_id);
item!(ClipRecord);

impl RecordingRecord {
    fn upload_pending(&self) -> bool {
        !self.uploaded
    }
}

/// The key of a part: ordered by sequence within its item.
fn part_key(item_id: &str, seq: u32) -> String {
    format!("{item_id}/{seq:010}")
}

impl EmbeddedRegistry {
    fn put_item<T: Item>(
        &self,
        catalogue: &Catalogue,
        item: &T,
        event: Option<&WebhookEvent>,
    ) -> Result<()> {
        let key = item.key();
        let txn = self.begin_write()?;
        if let Some(event) = event {
            super::webhooks::queue_in(&txn, event)?;
        }
        {
            txn.open_table(catalogue.items)?
                .insert(key.as_str(), serde_json::to_vec(item)?.as_slice())?;
            txn.open_table(catalogue.ids)?
                .insert(item.id(), key.as_str())?;
            if let (Some(sessions), Some(session_key)) = (catalogue.sessions, item.session_key()) {
                txn.open_table(sessions)?
                    .insert(session_key.as_str(), key.as_str())?;
            }
            if let Some(pending) = catalogue.pending {
                let mut pending = txn.open_table(pending)?;
                if item.pending() {
                    pending.insert(item.id(), key.as_str())?;
                } else {
                    pending.remove(item.id())?;
                }
            }
        }
        self.commit(txn)?;
        Ok(())
    }

    fn get_item<T: Item>(
        &self,
        catalogue: &Catalogue,
        org_id: &str,
        id: &str,
    ) -> Result<Option<T>> {
        let txn = self.begin_read()?;
        let ids = txn.open_table(catalogue.ids)?;
        let Some(key) = ids.get(id)?.map(|v| v.value().to_string()) else {
            return Ok(None);
        };
        if !key.starts_with(&format!("{org_id}/")) {
            return Ok(None);
        }
        let items = txn.open_table(catalogue.items)?;
        let found = items.get(key.as_str())?;
        Ok(match found {
            Some(v) => Some(serde_json::from_slice(v.value())?),
            None => None,
        })
    }

    fn list_items<T: Item>(
        &self,
        catalogue: &Catalogue,
        org_id: &str,
        stream_id: &str,
        page_token: &str,
        page_size: usize,
    ) -> Result<Page<T>> {
        let prefix = format!("{org_id}/{stream_id}/");
        self.list_under(catalogue.items, &prefix, page_token, page_size)
    }

    /// The bytes of every item of the organization's in a catalogue.
    fn bytes_of<T: Item>(&self, catalogue: &Catalogue, org_id: &str) -> Result<u64> {
        let prefix = format!("{org_id}/");
        let txn = self.begin_read()?;
        let items = txn.open_table(catalogue.items)?;
        let mut total = 0;
        for entry in items.range(prefix.as_str()..)? {
            let (key, value) = entry?;
            if !key.value().starts_with(&prefix) {
                break;
            }
            let item: T = serde_json::from_slice(value.value())?;
            total += item.size_bytes();
        }
        Ok(total)
    }

    /// Bytes of the organization's recordings and clips, as catalogued
    /// (a recording counts once its file is closed).
    pub fn stored_bytes(&self, org_id: &str) -> Result<u64> {
        Ok(self.bytes_of::<RecordingRecord>(&RECORDINGS, org_id)?
            + self.bytes_of::<ClipRecord>(&CLIPS, org_id)?)
    }

    fn delete_item<T: Item>(&self, catalogue: &Catalogue, item: &T) -> Result<()> {
        let txn = self.begin_write()?;
        {
            txn.open_table(catalogue.items)?
                .remove(item.key().as_str())?;
            txn.open_table(catalogue.ids)?.remove(item.id())?;
            if let (Some(sessions), Some(session_key)) = (catalogue.sessions, item.session_key()) {
                txn.open_table(sessions)?.remove(session_key.as_str())?;
            }
            if let Some(pending) = catalogue.pending {
                txn.open_table(pending)?.remove(item.id())?;
            }
            if let Some(parts) = catalogue.parts {
                let mut parts = txn.open_table(parts)?;
                let prefix = format!("{}/", item.id());
                let keys: Vec<String> = parts
                    .range(prefix.as_str()..)?
                    .map(|entry| entry.map(|(k, _)| k.value().to_string()))
                    .take_while(|k| k.as_ref().map_or(true, |k| k.starts_with(&prefix)))
                    .collect::<Result<_, _>>()?;
                for key in keys {
                    parts.remove(key.as_str())?;
                }
            }
        }
        self.commit(txn)?;
        Ok(())
    }

    /// Fills a catalogue's session index from its items, once: for a
    /// registry written before the index existed. Returns how many items
    /// were indexed.
    pub(super) fn index_sessions<T: Item>(&self, catalogue: &Catalogue) -> Result<usize> {
        let Some(sessions) = catalogue.sessions else {
            return Ok(0);
        };
        let txn = self.begin_write()?;
        let mut indexed = 0;
        {
            let items = txn.open_table(catalogue.items)?;
            let mut index = txn.open_table(sessions)?;
            for entry in items.iter()? {
                let (k, v) = entry?;
                let item: T = serde_json::from_slice(v.value())?;
                if let Some(session_key) = item.session_key() {
                    index.insert(session_key.as_str(), k.value())?;
                    indexed += 1;
                }
            }
        }
        self.commit(txn)?;
        Ok(indexed)
    }

    // ----- recordings ------------------------------------------------------

    /// Adds or replaces a recording in the catalogue.
    pub fn put_recording(
        &self,
        record: &RecordingRecord,
        event: Option<&WebhookEvent>,
    ) -> Result<()> {
        self.put_item(&RECORDINGS, record, event)
    }

    /// Makes `to` the writer of a recording `record`'s writer still
    /// writes and that is not wholly uploaded.
    pub fn take_over_recording(&self, record: &RecordingRecord, to: &Fence) -> Result<bool> {
        let current = self.recording(&record.organization_id, &record.id)?;
        match current {
            Some(mut current) if current.writer == record.writer && !current.uploaded => {
                current.writer = to.clone();
                self.put_recording(&current, None)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// A recording of the organization's, by id.
    pub fn recording(&self, org_id: &str, id: &str) -> Result<Option<RecordingRecord>> {
        self.get_item(&RECORDINGS, org_id, id)
    }

    /// The recordings of one stream, oldest first.
    pub fn list_recordings(
        &self,
        org_id: &str,
        stream_id: &str,
        page_token: &str,
        page_size: usize,
    ) -> Result<Page<RecordingRecord>> {
        self.list_items(&RECORDINGS, org_id, stream_id, page_token, page_size)
    }

    /// The recordings of one publishing session of a stream, oldest
    /// first, through the session index.
    pub fn session_recordings(
        &self,
        org_id: &str,
        stream_id: &str,
        session_id: &str,
    ) -> Result<Vec<RecordingRecord>> {
        let sessions = RECORDINGS
            .sessions
            .expect("recordings are indexed by session");
        let prefix = format!("{org_id}/{stream_id}/{session_id}/");
        let txn = self.begin_read()?;
        let index = txn.open_table(sessions)?;
        let items = txn.open_table(RECORDINGS.items)?;
        let mut out = Vec::new();
        for entry in index.range(prefix.as_str()..)? {
            let (k, key) = entry?;
            if !k.value().starts_with(&prefix) {
                break;
            }
            if let Some(v) = items.get(key.value())? {
                out.push(serde_json::from_slice(v.value())?);
            }
        }
        Ok(out)
    }

    /// [`crate::registry::Registry::recording_at`]: the stream's
    /// recordings newest first (ids follow time) until one started at or
    /// before `at_ms`.
    pub fn recording_at(
        &self,
        org_id: &str,
        stream_id: &str,
        at_ms: i64,
    ) -> Result<Option<RecordingRecord>> {
        let prefix = format!("{org_id}/{stream_id}/");
        // '0' follows '/': the end of the stream's keys.
        let end = format!("{org_id}/{stream_id}0");
        let txn = self.begin_read()?;
        let items = txn.open_table(RECORDINGS.items)?;
        for entry in items.range(prefix.as_str()..end.as_str())?.rev() {
            let (_, value) = entry?;
            let record: RecordingRecord = serde_json::from_slice(value.value())?;
            if record.start_time_ms <= at_ms {
                return Ok(crate::registry::records::holds(record, at_ms));
            }
        }
        Ok(None)
    }

    pub fn delete_recording(&self, record: &RecordingRecord) -> Result<()> {
        self.delete_item(&RECORDINGS, record)
    }

    /// Every recording still marked as being written (after a crash).
    pub fn unfinished_recordings(&self) -> Result<Vec<RecordingRecord>> {
        let txn = self.begin_read()?;
        let table = txn.open_table(RECORDINGS.items)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (_, v) = entry?;
            let record: RecordingRecord = serde_json::from_slice(v.value())?;
            if record.state == RecordingState::Recording {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// Records a part of a recording in object storage.
    /// One node: no other writer to fence.
    pub fn put_recording_part(&self, _writer: &Fence, part: &RecordingPart) -> Result<()> {
        let parts = RECORDINGS.parts.expect("recordings have parts");
        let txn = self.begin_write()?;
        txn.open_table(parts)?.insert(
            part_key(&part.recording_id, part.seq).as_str(),
            serde_json::to_vec(part)?.as_slice(),
        )?;
        self.commit(txn)
    }

    /// The parts of a recording in object storage, in order.
    pub fn recording_parts(&self, recording_id: &str) -> Result<Vec<RecordingPart>> {
        let parts = RECORDINGS.parts.expect("recordings have parts");
        let prefix = format!("{recording_id}/");
        let txn = self.begin_read()?;
        let table = txn.open_table(parts)?;
        let mut out = Vec::new();
        for entry in table.range(prefix.as_str()..)? {
            let (k, v) = entry?;
            if !k.value().starts_with(&prefix) {
                break;
            }
            out.push(serde_json::from_slice(v.value())?);
        }
        Ok(out)
    }

    /// Recordings not yet wholly in object storage, oldest first.
    pub fn recordings_to_upload(&self) -> Result<Vec<RecordingRecord>> {
        let pending = RECORDINGS.pending.expect("recordings can be pending");
        let txn = self.begin_read()?;
        let index = txn.open_table(pending)?;
        let items = txn.open_table(RECORDINGS.items)?;
        let mut out = Vec::new();
        for entry in index.iter()? {
            let (_, key) = entry?;
            if let Some(v) = items.get(key.value())? {
                out.push(serde_json::from_slice(v.value())?);
            }
        }
        Ok(out)
    }

    // ----- replay clips ----------------------------------------------------

    /// One node: no other writer to fence.
    pub fn put_clip(
        &self,
        clip: &ClipRecord,
        _writer: Option<&Fence>,
        event: Option<&WebhookEvent>,
    ) -> Result<()> {
        self.put_item(&CLIPS, clip, event)
    }

    pub fn clip(&self, org_id: &str, id: &str) -> Result<Option<ClipRecord>> {
        self.get_item(&CLIPS, org_id, id)
    }

    pub fn list_clips(
        &self,
        org_id: &str,
        stream_id: &str,
        page_token: &str,
        page_size: usize,
    ) -> Result<Page<ClipRecord>> {
        self.list_items(&CLIPS, org_id, stream_id, page_token, page_size)
    }

    pub fn delete_clip(&self, clip: &ClipRecord) -> Result<()> {
        self.delete_item(&CLIPS, clip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recording(org: &str, stream: &str, id: &str, session: &str) -> RecordingRecord {
        RecordingRecord {
            id: id.into(),
            organization_id: org.into(),
            stream_id: stream.into(),
            file_name: format!("{id}.mp4"),
            state: RecordingState::Complete,
            start_time_ms: 0,
            end_time_ms: 0,
            start_pts_ns: 0,
            duration_ns: 0,
            size_bytes: 0,
            session_id: session.into(),
            uploaded: false,
            writer: Default::default(),
        }
    }

    fn ids(records: &[RecordingRecord]) -> Vec<&str> {
        records.iter().map(|r| r.id.as_str()).collect()
    }

    #[test]
    fn a_registry_from_before_the_index_is_indexed_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.redb");
        {
            let registry = EmbeddedRegistry::open(&path).unwrap();
            registry
                .put_recording(&recording("org", "cam", "rec_1", "ses_a"), None)
                .unwrap();
            // As an earlier version left it: no index rows, no mark.
            let txn = registry.begin_write().unwrap();
            txn.open_table(RECORDINGS.sessions.unwrap())
                .unwrap()
                .retain(|_, _| false)
                .unwrap();
            txn.open_table(super::super::META)
                .unwrap()
                .remove(super::super::META_SESSION_INDEX)
                .unwrap();
            registry.commit(txn).unwrap();
            assert!(registry
                .session_recordings("org", "cam", "ses_a")
                .unwrap()
                .is_empty());
        }
        let registry = EmbeddedRegistry::open(&path).unwrap();
        let found = registry.session_recordings("org", "cam", "ses_a").unwrap();
        assert_eq!(ids(&found), vec!["rec_1"]);
    }
}

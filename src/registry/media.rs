//! Catalogues of media files that belong to a stream (recordings, replay
//! clips): items keyed `org_id/stream_id/item_id` so a stream's items list
//! in id order, plus an index by item id; an item of another organization
//! is never returned.

use redb::{ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Page, RecordingRecord, RecordingState, Registry};
use crate::error::Result;
use crate::registry::ClipRecord;

/// The two tables of one catalogue.
pub(super) struct Catalogue {
    pub items: TableDefinition<'static, &'static str, &'static [u8]>,
    pub ids: TableDefinition<'static, &'static str, &'static str>,
}

pub(super) const RECORDINGS: Catalogue = Catalogue {
    items: TableDefinition::new("recordings"),
    ids: TableDefinition::new("recording_ids"),
};

pub(super) const CLIPS: Catalogue = Catalogue {
    items: TableDefinition::new("clips"),
    ids: TableDefinition::new("clip_ids"),
};

/// An item of a catalogue.
pub(super) trait Item: Serialize + DeserializeOwned {
    fn id(&self) -> &str;
    fn organization_id(&self) -> &str;
    fn stream_id(&self) -> &str;
    fn key(&self) -> String {
        format!(
            "{}/{}/{}",
            self.organization_id(),
            self.stream_id(),
            self.id()
        )
    }
}

macro_rules! item {
    ($t:ty) => {
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
        }
    };
}
item!(RecordingRecord);
item!(ClipRecord);

impl Registry {
    fn put_item<T: Item>(&self, catalogue: &Catalogue, item: &T) -> Result<()> {
        let key = item.key();
        let txn = self.begin_write()?;
        {
            txn.open_table(catalogue.items)?
                .insert(key.as_str(), serde_json::to_vec(item)?.as_slice())?;
            txn.open_table(catalogue.ids)?
                .insert(item.id(), key.as_str())?;
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

    fn delete_item<T: Item>(&self, catalogue: &Catalogue, item: &T) -> Result<()> {
        let txn = self.begin_write()?;
        {
            txn.open_table(catalogue.items)?
                .remove(item.key().as_str())?;
            txn.open_table(catalogue.ids)?.remove(item.id())?;
        }
        self.commit(txn)?;
        Ok(())
    }

    // ----- recordings ------------------------------------------------------

    /// Adds or replaces a recording in the catalogue.
    pub fn put_recording(&self, record: &RecordingRecord) -> Result<()> {
        self.put_item(&RECORDINGS, record)
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

    // ----- replay clips ----------------------------------------------------

    pub fn put_clip(&self, clip: &ClipRecord) -> Result<()> {
        self.put_item(&CLIPS, clip)
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

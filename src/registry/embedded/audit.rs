//! The audit log of the embedded registry: events keyed by their id
//! (which sorts by time), with an index `org_id/event_id` to list one
//! organization's. Listed newest first.

use redb::{ReadableTable, TableDefinition};

use super::EmbeddedRegistry;
use crate::error::Result;
use crate::registry::{AuditEvent, Page};

/// event id → JSON event
const EVENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("audit_events");
/// `org_id/event_id` → event id
const BY_ORGANIZATION: TableDefinition<&str, &str> =
    TableDefinition::new("audit_events_by_organization");

impl EmbeddedRegistry {
    pub fn record_audit(&self, event: &AuditEvent) -> Result<()> {
        let txn = self.begin_write()?;
        {
            txn.open_table(EVENTS)?
                .insert(event.id.as_str(), serde_json::to_vec(event)?.as_slice())?;
            let key = format!("{}/{}", event.organization_id, event.id);
            txn.open_table(BY_ORGANIZATION)?
                .insert(key.as_str(), event.id.as_str())?;
        }
        self.commit(txn)
    }

    /// Deletes up to `limit` of the events recorded before `before_ms`,
    /// oldest first (ids sort by time); returns how many.
    pub fn prune_audit_events(&self, before_ms: i64, limit: usize) -> Result<u64> {
        let cutoff = crate::ids::audit_id_floor(before_ms);
        let txn = self.begin_write()?;
        let mut pruned = 0;
        {
            let mut events = txn.open_table(EVENTS)?;
            let mut index = txn.open_table(BY_ORGANIZATION)?;
            let old: Vec<(String, String)> = events
                .range(..cutoff.as_str())?
                .take(limit)
                .map(|entry| {
                    let (id, value) = entry?;
                    let org = serde_json::from_slice::<AuditEvent>(value.value())
                        .map(|e| e.organization_id)
                        .unwrap_or_default();
                    Ok((id.value().to_string(), org))
                })
                .collect::<Result<_>>()?;
            for (id, org) in &old {
                events.remove(id.as_str())?;
                index.remove(format!("{org}/{id}").as_str())?;
                pruned += 1;
            }
        }
        self.commit(txn)?;
        Ok(pruned)
    }

    pub fn list_audit_events(
        &self,
        org_id: Option<&str>,
        page_token: &str,
        page_size: usize,
    ) -> Result<Page<AuditEvent>> {
        let txn = self.begin_read()?;
        let events = txn.open_table(EVENTS)?;
        // Ids of the page and one more (to tell whether there is more),
        // newest first, before the token.
        let ids: Vec<String> = match org_id {
            None => {
                let range = if page_token.is_empty() {
                    events.range::<&str>(..)?
                } else {
                    events.range(..page_token)?
                };
                range
                    .rev()
                    .take(page_size + 1)
                    .map(|entry| entry.map(|(k, _)| k.value().to_string()))
                    .collect::<Result<_, _>>()?
            }
            Some(org_id) => {
                let index = txn.open_table(BY_ORGANIZATION)?;
                let prefix = format!("{org_id}/");
                let end = if page_token.is_empty() {
                    // Just past every key of the prefix ('/' + 1 is '0').
                    format!("{org_id}0")
                } else {
                    format!("{prefix}{page_token}")
                };
                index
                    .range(prefix.as_str()..end.as_str())?
                    .rev()
                    .take(page_size + 1)
                    .map(|entry| entry.map(|(_, v)| v.value().to_string()))
                    .collect::<Result<_, _>>()?
            }
        };
        let more = ids.len() > page_size;
        let mut items = Vec::with_capacity(page_size);
        for id in ids.iter().take(page_size) {
            if let Some(value) = events.get(id.as_str())? {
                items.push(serde_json::from_slice::<AuditEvent>(value.value())?);
            }
        }
        let next_page_token = match (more, items.last()) {
            (true, Some(last)) => last.id.clone(),
            _ => String::new(),
        };
        Ok(Page {
            items,
            next_page_token,
        })
    }
}

//! What each organization uses of the quotas the media path enforces
//! itself, without waiting for the registry: bytes stored (recordings and
//! clips) and replay memory on this node. Replay buffers and recorders
//! add what they hold or write as they go (atomics, no lock); the limits
//! and the catalogued bytes come from the registry, refreshed by the
//! service layer every few seconds, and at once by `SetQuotas`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;

use crate::error::Result;
use crate::registry::{Quota, Quotas};

/// One organization's use on this node.
#[derive(Debug, Default)]
pub struct OrgUsage {
    organization_id: String,
    stored_limit: AtomicU64,
    /// Recordings and clips in the catalogue, at the last refresh.
    catalogued: AtomicU64,
    /// Written to recording files still open here (not yet catalogued
    /// with their size).
    recording: AtomicI64,
    replay_limit: AtomicU64,
    /// Media bytes its replay buffers hold in memory here.
    replay: AtomicI64,
}

impl OrgUsage {
    fn new(organization_id: &str) -> Self {
        Self {
            organization_id: organization_id.to_string(),
            ..Self::default()
        }
    }

    pub fn organization_id(&self) -> &str {
        &self.organization_id
    }

    /// Bytes stored: catalogued, and written to files open here.
    pub fn stored_bytes(&self) -> u64 {
        let recording = self.recording.load(Ordering::Relaxed).max(0) as u64;
        self.catalogued.load(Ordering::Relaxed) + recording
    }

    /// Refuses more stored bytes once the quota is reached.
    pub fn check_stored(&self) -> Result<()> {
        Quota::StoredBytes.check(
            &self.organization_id,
            self.stored_limit.load(Ordering::Relaxed),
            self.stored_bytes(),
        )
    }

    /// Bytes written to (or, negative, closed out of) open recordings.
    pub fn add_recording(&self, bytes: i64) {
        self.recording.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Bytes just catalogued (a clip), until the next count.
    pub fn add_catalogued(&self, bytes: u64) {
        self.catalogued.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The catalogued bytes, as the registry now counts them.
    pub fn set_catalogued(&self, bytes: u64) {
        self.catalogued.store(bytes, Ordering::Relaxed);
    }

    pub fn replay_bytes(&self) -> u64 {
        self.replay.load(Ordering::Relaxed).max(0) as u64
    }

    /// Media bytes taken into (or, negative, let go of) replay memory.
    pub fn add_replay(&self, bytes: i64) {
        self.replay.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Whether its replay buffers hold more than its quota here.
    pub fn replay_over(&self) -> bool {
        let limit = self.replay_limit.load(Ordering::Relaxed);
        limit > 0 && self.replay_bytes() > limit
    }

    /// Refuses more replay once the quota is reached.
    pub fn check_replay(&self) -> Result<()> {
        Quota::ReplayMemoryBytes.check(
            &self.organization_id,
            self.replay_limit.load(Ordering::Relaxed),
            self.replay_bytes(),
        )
    }

    pub fn set_limits(&self, quotas: &Quotas) {
        self.stored_limit
            .store(quotas.stored_bytes, Ordering::Relaxed);
        self.replay_limit
            .store(quotas.replay_memory_bytes, Ordering::Relaxed);
    }
}

/// Every organization's use on this node.
#[derive(Debug, Default)]
pub struct UsageLedger {
    orgs: DashMap<String, Arc<OrgUsage>>,
}

impl UsageLedger {
    /// The organization's use (created empty, without limits, when first
    /// asked for).
    pub fn of(&self, organization_id: &str) -> Arc<OrgUsage> {
        if let Some(usage) = self.orgs.get(organization_id) {
            return Arc::clone(&usage);
        }
        Arc::clone(
            &self
                .orgs
                .entry(organization_id.to_string())
                .or_insert_with(|| Arc::new(OrgUsage::new(organization_id))),
        )
    }

    /// The organizations known here.
    pub fn organizations(&self) -> Vec<Arc<OrgUsage>> {
        self.orgs.iter().map(|e| Arc::clone(e.value())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn stored_bytes_count_catalogued_and_open_files() {
        let ledger = UsageLedger::default();
        let usage = ledger.of("org");
        assert!(usage.check_stored().is_ok(), "no limit");
        usage.set_limits(&Quotas {
            stored_bytes: 1000,
            ..Quotas::default()
        });
        usage.set_catalogued(600);
        usage.add_recording(300);
        assert!(usage.check_stored().is_ok());
        usage.add_recording(100);
        let Err(Error::QuotaExceeded { quota, used, .. }) = ledger.of("org").check_stored() else {
            panic!("over the quota");
        };
        assert_eq!((quota, used), ("stored_bytes", 1000));
        // The file closes and is catalogued: the same bytes, counted once.
        usage.add_recording(-400);
        usage.set_catalogued(1000);
        assert_eq!(usage.stored_bytes(), 1000);
    }

    #[test]
    fn replay_memory_is_over_past_its_limit() {
        let usage = UsageLedger::default().of("org");
        usage.add_replay(5000);
        assert!(!usage.replay_over(), "no limit");
        usage.set_limits(&Quotas {
            replay_memory_bytes: 4000,
            ..Quotas::default()
        });
        assert!(usage.replay_over());
        usage.add_replay(-1000);
        assert!(!usage.replay_over());
        assert!(usage.check_replay().is_err(), "at the limit: no more");
    }
}

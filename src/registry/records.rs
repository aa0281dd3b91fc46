//! Records stored in the registry (JSON values in redb tables).

use serde::{Deserialize, Serialize};

use super::cluster::Fence;
use crate::error::{Error, Result};
use crate::options::Processing;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrganizationRecord {
    pub id: String,
    pub name: String,
    /// The live processing package.
    pub live_processing: bool,
    /// SHA-256 (hex) of the current API key.
    pub api_key_hash: String,
    pub create_time_ms: i64,
    /// Which of the organization's URL-signing keys is current: raised
    /// by each rotation, which refuses every URL signed before it.
    #[serde(default)]
    pub url_signing_generation: u32,
    /// Limits the operator set.
    #[serde(default)]
    pub quotas: Quotas,
}

/// Limits the operator sets on an organization; 0 is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Quotas {
    /// Streams registered.
    pub streams: u64,
    /// Streams live at once, on every node together.
    pub live_sessions: u64,
    /// Bytes of recordings and replay clips kept.
    pub stored_bytes: u64,
    /// Bytes of media its replay buffers hold in memory, on each node.
    pub replay_memory_bytes: u64,
}

/// One of the [`Quotas`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    Streams,
    LiveSessions,
    StoredBytes,
    ReplayMemoryBytes,
}

impl Quota {
    /// Its name in the API (`Quotas` fields, `QuotaFailure` subjects).
    pub fn name(self) -> &'static str {
        match self {
            Quota::Streams => "streams",
            Quota::LiveSessions => "live_sessions",
            Quota::StoredBytes => "stored_bytes",
            Quota::ReplayMemoryBytes => "replay_memory_bytes",
        }
    }

    /// Refuses one more when `used` has reached `limit` (0: no limit).
    pub fn check(self, organization_id: &str, limit: u64, used: u64) -> Result<()> {
        if limit > 0 && used >= limit {
            return Err(Error::QuotaExceeded {
                organization_id: organization_id.to_string(),
                quota: self.name(),
                limit,
                used,
            });
        }
        Ok(())
    }
}

impl Quotas {
    pub fn limit(&self, quota: Quota) -> u64 {
        match quota {
            Quota::Streams => self.streams,
            Quota::LiveSessions => self.live_sessions,
            Quota::StoredBytes => self.stored_bytes,
            Quota::ReplayMemoryBytes => self.replay_memory_bytes,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamRecord {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub processing: Processing,
    /// The publish secret of the stream (shown to its organization).
    pub stream_key: String,
    /// Pulled from this URI instead of being pushed, when set.
    pub source_uri: Option<String>,
    pub create_time_ms: i64,
    /// SRT's own encryption, which every SRT publisher must then use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srt_encryption: Option<SrtEncryption>,
}

/// The AES encryption a stream asks of its SRT publishers (SRT's
/// `passphrase` and `pbkeylen`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SrtEncryption {
    /// 10–79 URL-safe characters (shown to the organization).
    pub passphrase: String,
    /// AES key length in bytes (16, 24 or 32); 0 takes the caller's.
    pub key_length: u8,
}

impl OrganizationRecord {
    /// Refuses one more of `quota` when `used` has reached its limit.
    pub fn check_quota(&self, quota: Quota, used: u64) -> Result<()> {
        quota.check(&self.id, self.quotas.limit(quota), used)
    }

    /// Refuses processing the organization's packages do not include. A
    /// stream without processing is always allowed.
    pub fn check_packages(&self, processing: &Processing) -> Result<()> {
        if processing.any_enabled() && !self.live_processing {
            return Err(Error::UpgradeNeeded {
                organization_id: self.id.clone(),
                feature: processing.enabled_features().collect::<Vec<_>>().join(", "),
            });
        }
        Ok(())
    }
}

/// State of a recording file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordingState {
    Recording,
    Complete,
    Recovered,
    /// Closing failed and the file could not be finished.
    Failed,
}

/// One recording file in the catalogue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordingRecord {
    pub id: String,
    pub organization_id: String,
    pub stream_id: String,
    /// File name inside the stream's recordings folder.
    pub file_name: String,
    pub state: RecordingState,
    pub start_time_ms: i64,
    pub end_time_ms: i64,
    pub start_pts_ns: u64,
    pub duration_ns: u64,
    pub size_bytes: u64,
    /// The publishing session the file belongs to (empty for files
    /// recorded before sessions had ids).
    #[serde(default)]
    pub session_id: String,
    /// Every part is in object storage and the init segment is final: the
    /// local file is no longer needed ([`RecordingPart`]).
    #[serde(default)]
    pub uploaded: bool,
    /// The session writing it (its node and lease epoch), or the node that
    /// took it over to finish it: writes with another fence are refused.
    #[serde(default)]
    pub writer: Fence,
}

/// `record`, if it holds the wall-clock time `at_ms` (it started at or
/// before it): it ended at or after it, or is still being recorded.
pub fn holds(record: RecordingRecord, at_ms: i64) -> Option<RecordingRecord> {
    let open = record.state == RecordingState::Recording;
    (record.start_time_ms <= at_ms && (open || at_ms <= record.end_time_ms)).then_some(record)
}

/// A piece of a recording in object storage: the init segment (`seq` 0)
/// or a fragment (1, 2, ...). Joined in order they are the recording's
/// MP4 file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingPart {
    pub recording_id: String,
    pub seq: u32,
    /// Where the part starts in the joined file.
    pub offset: u64,
    pub size: u64,
}

/// A replay clip: a moment of a stream saved as an MP4 file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClipRecord {
    pub id: String,
    pub organization_id: String,
    pub stream_id: String,
    pub file_name: String,
    pub title: String,
    pub start_time_ms: i64,
    pub start_pts_ns: u64,
    pub duration_ns: u64,
    pub size_bytes: u64,
    pub create_time_ms: i64,
    /// The file is in object storage.
    #[serde(default)]
    pub uploaded: bool,
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// A change an operator or an organization made, as the audit log keeps
/// it. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Sorts by time ([`crate::ids::new_audit_id`]).
    pub id: String,
    pub time_ms: i64,
    /// Whose key made the change: `admin`, or the organization's id.
    pub actor: String,
    /// The organization whose resource changed.
    pub organization_id: String,
    /// What was done, e.g. `stream.create`.
    pub action: String,
    /// What it was done to, e.g. `streams/cam1`.
    pub resource: String,
    /// A JSON object of what changed, or empty.
    pub details: String,
    /// The client address the call came from, when known.
    pub peer: String,
}

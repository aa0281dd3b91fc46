//! Identities: [`StreamRef`] (streams are scoped by organization) and
//! the generated ids of organizations, streams, sessions, recordings and
//! clips.
//! Recording and clip ids start with their creation time, so listing a
//! folder or a table by id lists them in time order.

use std::fmt;

use rand::RngCore;

/// The identity of a stream: streams are scoped by organization.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamRef {
    pub organization_id: String,
    pub stream_id: String,
}

impl StreamRef {
    pub fn new(organization_id: impl Into<String>, stream_id: impl Into<String>) -> Self {
        Self {
            organization_id: organization_id.into(),
            stream_id: stream_id.into(),
        }
    }
}

impl fmt::Display for StreamRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.organization_id, self.stream_id)
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// A new organization id (`org_` + 16 hex digits).
pub fn new_organization_id() -> String {
    format!("org_{}", random_hex(8))
}

/// A new generated stream id (`st_` + 16 hex digits).
pub fn new_stream_id() -> String {
    format!("st_{}", random_hex(8))
}

/// A new recording id: `rec_`, the creation time in ms (12 hex digits),
/// then 6 random hex digits.
pub fn new_recording_id(now_ms: i64) -> String {
    format!("rec_{now_ms:012x}{}", &random_hex(3))
}

/// A new audit event id: `aud_`, the time in ms (12 hex digits), a
/// sequence number of this process (6 hex digits: events of the same
/// millisecond keep their order), then 4 random hex digits (nodes).
pub fn new_audit_id(now_ms: i64) -> String {
    static SEQUENCE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let sequence = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed) & 0xff_ffff;
    format!("aud_{now_ms:012x}{sequence:06x}{}", &random_hex(2))
}

/// The least audit id of an event recorded at `time_ms` or later: every
/// id of an earlier event sorts before it.
pub fn audit_id_floor(time_ms: i64) -> String {
    format!("aud_{:012x}", time_ms.max(0))
}

/// A new publishing session id: `ses_`, the start time in ms (12 hex
/// digits), then 6 random hex digits.
pub fn new_session_id(now_ms: i64) -> String {
    format!("ses_{now_ms:012x}{}", &random_hex(3))
}

/// A new replay clip id: `clip_`, the creation time in ms (12 hex
/// digits), then 6 random hex digits.
pub fn new_clip_id(now_ms: i64) -> String {
    format!("clip_{now_ms:012x}{}", &random_hex(3))
}

/// A new webhook endpoint id (`whe_` + 16 hex digits).
pub fn new_webhook_endpoint_id() -> String {
    format!("whe_{}", random_hex(8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_their_shape_and_sort_by_time() {
        let a = new_recording_id(0x10);
        let b = new_recording_id(0x11);
        assert_eq!(a.len(), 4 + 12 + 6);
        assert!(a < b);
        assert!(new_clip_id(1).starts_with("clip_000000000001"));
        assert_ne!(new_stream_id(), new_stream_id());
        assert_eq!(new_organization_id().len(), 4 + 16);
    }
}

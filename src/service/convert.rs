//! Conversions from registry records to API messages.

use crate::proto::timestamp_from_millis;
use crate::proto::v1 as pb;
use crate::registry::{OrganizationRecord, StreamRecord};

/// An organization as the API shows it; `api_key` only when just issued.
pub fn organization(record: &OrganizationRecord, api_key: Option<String>) -> pb::Organization {
    let live_processing = if record.live_processing {
        pb::PackageState::Enabled
    } else {
        pb::PackageState::UpgradeNeeded
    };
    pb::Organization {
        id: record.id.clone(),
        name: record.name.clone(),
        packages: Some(pb::Packages {
            live_processing: live_processing as i32,
        }),
        api_key: api_key.unwrap_or_default(),
        create_time: Some(timestamp_from_millis(record.create_time_ms)),
        quotas: Some(super::quotas::to_api(&record.quotas)),
    }
}

/// Where publishers reach this server's ingest listeners.
#[derive(Debug, Clone, Default)]
pub struct IngestAddrs {
    /// `host:port` of the SRT listener.
    pub srt: String,
    /// `host:port` of the RTMP listener, when there is one.
    pub rtmp: Option<String>,
    /// `host:port` of the RTMPS listener, when there is one.
    pub rtmps: Option<String>,
}

/// The SRT URL an encoder publishes `record` to, with the passphrase
/// (URL-safe as validated) and key length its SRT encryption asks for.
pub fn srt_url(srt_public_addr: &str, record: &StreamRecord) -> String {
    let mut url = format!(
        "srt://{srt_public_addr}?streamid=publish:{}:{}&mode=caller",
        record.id, record.stream_key
    );
    if let Some(encryption) = &record.srt_encryption {
        url.push_str(&format!("&passphrase={}", encryption.passphrase));
        if encryption.key_length != 0 {
            url.push_str(&format!("&pbkeylen={}", encryption.key_length));
        }
    }
    url
}

/// How an encoder reaches `record` over SRT, RTMP and RTMPS.
pub fn ingest_info(addrs: &IngestAddrs, record: &StreamRecord) -> pb::IngestInfo {
    let server = |scheme: &str, addr: &Option<String>| {
        addr.as_ref()
            .map(|addr| format!("{scheme}://{addr}/{}", crate::ingest::rtmp::RTMP_APP))
            .unwrap_or_default()
    };
    let url = |server: &str| {
        if server.is_empty() {
            String::new()
        } else {
            format!("{server}/{}", record.stream_key)
        }
    };
    let rtmp_server = server("rtmp", &addrs.rtmp);
    let rtmps_server = server("rtmps", &addrs.rtmps);
    pb::IngestInfo {
        srt_url: srt_url(&addrs.srt, record),
        stream_key: record.stream_key.clone(),
        rtmp_url: url(&rtmp_server),
        rtmps_url: url(&rtmps_server),
        rtmp_stream_key: if rtmp_server.is_empty() && rtmps_server.is_empty() {
            String::new()
        } else {
            record.stream_key.clone()
        },
        rtmp_server,
        rtmps_server,
        srt_encryption: record
            .srt_encryption
            .as_ref()
            .map(|encryption| pb::SrtEncryption {
                passphrase: encryption.passphrase.clone(),
                key_length: u32::from(encryption.key_length),
            }),
    }
}

pub fn stream(
    record: &StreamRecord,
    state: pb::StreamState,
    stats: Option<pb::IngestStats>,
    replay_window: Option<pb::ReplayWindow>,
    addrs: &IngestAddrs,
) -> pb::Stream {
    pb::Stream {
        id: record.id.clone(),
        name: record.name.clone(),
        organization_id: record.organization_id.clone(),
        state: state as i32,
        processing: Some(record.processing.to_proto()),
        ingest: Some(ingest_info(addrs, record)),
        create_time: Some(timestamp_from_millis(record.create_time_ms)),
        source_uri: record.source_uri.clone().unwrap_or_default(),
        ingest_stats: stats,
        replay_window,
        node_id: String::new(),
    }
}

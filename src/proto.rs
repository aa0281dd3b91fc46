//! Code generated from `proto/liveproc/v1` by `build.rs`, and the encoded
//! descriptor set served by gRPC reflection, and the codec the generated
//! services use ([`codec`]).

pub mod codec;

#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("liveproc.v1");
    include!(concat!(env!("OUT_DIR"), "/liveproc.v1.serde.rs"));
}

/// Encoded `FileDescriptorSet` of the API, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("liveproc_descriptor");

/// A `google.protobuf.Timestamp` from milliseconds since the Unix epoch.
pub fn timestamp_from_millis(ms: i64) -> pbjson_types::Timestamp {
    pbjson_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// Milliseconds since the Unix epoch of a `google.protobuf.Timestamp`.
pub fn timestamp_to_millis(ts: &pbjson_types::Timestamp) -> i64 {
    ts.seconds * 1000 + i64::from(ts.nanos) / 1_000_000
}

/// A `google.protobuf.Timestamp` written in RFC 3339, as the JSON mapping
/// writes it, in UTC with `Z` (`2026-11-26T12:00:00.123Z`).
pub fn timestamp_to_rfc3339(ts: &pbjson_types::Timestamp) -> String {
    match serde_json::to_value(ts) {
        Ok(serde_json::Value::String(text)) => match text.strip_suffix("+00:00") {
            Some(utc) => format!("{utc}Z"),
            None => text,
        },
        _ => String::new(),
    }
}

/// A `google.protobuf.Timestamp` read from RFC 3339 text.
pub fn timestamp_from_rfc3339(text: &str) -> Option<pbjson_types::Timestamp> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).ok()
}

/// A `google.protobuf.Duration` from a `std::time::Duration`.
pub fn to_duration(d: std::time::Duration) -> pbjson_types::Duration {
    pbjson_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_and_write_rfc_3339() {
        let ts = timestamp_from_millis(1_795_000_000_123);
        assert_eq!(timestamp_to_rfc3339(&ts), "2026-11-18T11:06:40.123Z");
        assert_eq!(timestamp_from_rfc3339("2026-11-18T11:06:40.123Z"), Some(ts));
        assert_eq!(
            timestamp_from_rfc3339("2026-11-18T12:06:40.123+01:00"),
            Some(ts)
        );
        assert_eq!(timestamp_from_rfc3339("yesterday"), None);
    }
}

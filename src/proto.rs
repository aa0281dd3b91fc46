//! Code generated from `proto/liveproc/v1` by `build.rs`, and the encoded
//! descriptor set served by gRPC reflection, and the codec the generated
//! services use ([`codec`]).

pub mod codec;

#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("liveproc.v1");
}

/// Encoded `FileDescriptorSet` of the API, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("liveproc_descriptor");

/// A `google.protobuf.Timestamp` from milliseconds since the Unix epoch.
pub fn timestamp_from_millis(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// Milliseconds since the Unix epoch of a `google.protobuf.Timestamp`.
pub fn timestamp_to_millis(ts: &prost_types::Timestamp) -> i64 {
    ts.seconds * 1000 + i64::from(ts.nanos) / 1_000_000
}

/// A `google.protobuf.Duration` from a `std::time::Duration`.
pub fn to_duration(d: std::time::Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

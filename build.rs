//! Generates the gRPC server and client code and the reflection descriptor
//! set from `proto/liveproc/v1/*.proto`, after checking that the
//! dashboard's bundle (embedded in the binary) has been built.
//!
//! The protos are compiled by `protox`, a protobuf compiler in Rust that
//! carries the well-known types (`google/protobuf/*.proto`): the build needs
//! no system `protoc` and no include tree.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The dashboard is embedded (src/http/dashboard.rs): its bundle must
    // have been built.
    for file in ["index.html", "app.js", "app.css"] {
        let path = PathBuf::from("dashboard/dist").join(file);
        if !path.exists() {
            return Err(format!(
                "{} is missing: build the dashboard first (make dashboard)",
                path.display()
            )
            .into());
        }
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let protos = [
        "proto/liveproc/v1/processing.proto",
        "proto/liveproc/v1/organizations.proto",
        "proto/liveproc/v1/live_processing.proto",
        "proto/liveproc/v1/cluster.proto",
        "proto/liveproc/v1/webhooks.proto",
    ];
    // The set holds the protos and everything they import, as
    // `protoc --include_imports` would write it: reflection needs both.
    let descriptors = protox::compile(protos, ["proto"])?;
    std::fs::write(
        out_dir.join("liveproc_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        // The well-known types from `pbjson-types`: prost's with serde's
        // proto3 JSON mapping (webhook payloads are the API's JSON).
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        // Media payloads as `bytes::Bytes`: shared between subscribers
        // without copies.
        .bytes(".")
        // Prost's codec, with malformed requests answered INVALID_ARGUMENT
        // instead of INTERNAL (src/proto/codec.rs).
        .codec_path("crate::proto::codec::ProtoCodec")
        .compile_fds(descriptors.clone())?;
    // serde for every message, in the proto3 JSON mapping.
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors.encode_to_vec())?
        .build(&[".liveproc"])?;
    println!("cargo:rerun-if-changed=proto");
    // The registry's schema migrations are embedded by `sqlx::migrate!`.
    println!("cargo:rerun-if-changed=migrations");
    Ok(())
}

//! Generates the gRPC server and client code and the reflection descriptor
//! set from `proto/liveproc/v1/*.proto`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let protos = [
        "proto/liveproc/v1/processing.proto",
        "proto/liveproc/v1/organizations.proto",
        "proto/liveproc/v1/live_processing.proto",
    ];
    tonic_prost_build::configure()
        // Media payloads as `bytes::Bytes`: shared between subscribers
        // without copies.
        .bytes(".")
        .file_descriptor_set_path(out_dir.join("liveproc_descriptor.bin"))
        .compile_protos(&protos, &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}

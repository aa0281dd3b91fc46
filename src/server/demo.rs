//! `--demo`: a demo organization with live processing enabled and a demo
//! stream fed by the built-in test pattern, so `make run` shows a working
//! server at once. The demo organization's API key is kept in `demo.key`
//! (mode 0600) in the data dir so that restarts print the same one.

use std::net::SocketAddr;

use crate::options::{
    ClipFormat, ImageFormat, MotionClip, Processing, Recording, Replay, Span, Thumbnail,
    DEFAULT_PREVIEW_WIDTH,
};
use crate::registry::{now_millis, secrets, StreamRecord};
use crate::service::Services;
use crate::store::write_secret;
use crate::store::DataDir;

const DEMO_STREAM_ID: &str = "demo";

fn demo_processing() -> Processing {
    Processing {
        thumbnail: Some(Thumbnail {
            interval_seconds: 10,
            format: ImageFormat::Jpeg,
            width: None,
            height: None,
        }),
        motion_clip: Some(MotionClip {
            duration_seconds: 3,
            interval_seconds: 10,
            format: ClipFormat::Mp4,
            width: DEFAULT_PREVIEW_WIDTH,
        }),
        recording: Some(Recording {
            segment: Span::Seconds(60),
        }),
        replay: Some(Replay {
            buffer: Span::Seconds(60),
        }),
    }
}

/// Creates what is missing of the demo and prints how to use it.
pub async fn ensure(data: &DataDir, state: &Services, grpc_addr: SocketAddr) -> anyhow::Result<()> {
    let key_path = data.demo_key_file();
    let mut existing = None;
    if let Ok(key) = std::fs::read_to_string(&key_path) {
        let key = key.trim().to_string();
        if let Some(org) = state.registry.organization_for_api_key(&key).await? {
            existing = Some((org, key));
        }
    }
    let (org_id, api_key) = match existing {
        Some(found) => found,
        None => {
            let (org, key) = state.registry.create_organization("Demo", true).await?;
            write_secret(&key_path, &key)?;
            (org.id, key)
        }
    };

    if state
        .registry
        .stream(&org_id, DEMO_STREAM_ID)
        .await?
        .is_none()
    {
        let record = StreamRecord {
            id: DEMO_STREAM_ID.to_string(),
            organization_id: org_id.clone(),
            name: "Demo test pattern".to_string(),
            processing: demo_processing(),
            stream_key: secrets::new_stream_key(),
            source_uri: Some("test://pattern".to_string()),
            create_time_ms: now_millis(),
            srt_encryption: None,
        };
        state.registry.create_stream(&record, None).await?;
        state.ingest.add_stream(&record);
    }

    println!(
        "liveproc demo: organization {org_id}, stream \"{DEMO_STREAM_ID}\" (built-in test pattern)"
    );
    println!("  organization API key: {api_key}");
    let public_url = &state.http_public_url;
    println!("  dashboard: {public_url}/#key={api_key}");
    // Over TLS grpcurl checks the certificate with the system's roots.
    let plaintext = if public_url.starts_with("https:") {
        ""
    } else {
        " -plaintext"
    };
    println!("  try: {}{plaintext} -H 'authorization: Bearer {api_key}' -d '{{\"stream_id\":\"{DEMO_STREAM_ID}\"}}' {grpc_addr} liveproc.v1.LiveProcessing/WatchStream", grpcurl());
    Ok(())
}

/// How to run grpcurl from where the server was started: the one on the
/// PATH, else the one `make run` installs into `target/py`.
fn grpcurl() -> String {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("grpcurl").is_file()));
    let installed = std::path::Path::new("target/py/bin/grpcurl");
    if !on_path && installed.is_file() {
        return format!("./{}", installed.display());
    }
    "grpcurl".to_string()
}

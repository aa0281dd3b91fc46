//! Events made from the API's resources. `data` is the resource in the
//! API's JSON mapping (what `grpcurl` or a JSON client shows), with what a
//! receiver needs beside it: a `message` for stream events that have a
//! reason, and (added at delivery, [`body`]) a signed `url` for media.
//!
//! Events that report one state of one resource (a recording ready, a
//! clip ready) have an id made from that resource's, so that reporting it
//! twice (a write retried) gives receivers the same `webhook-id` to
//! deduplicate by.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::event_types as types;
use crate::proto::v1 as pb;
use crate::registry::now_millis;
use crate::registry::webhooks::WebhookEvent;

/// How long the signed URL of a delivery works, from the event's time:
/// longer than deliveries are retried.
pub const MEDIA_URL_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

/// A new event id: `msg_`, the time in ms (12 hex digits), 8 random hex
/// digits.
pub fn new_event_id(now_ms: i64) -> String {
    format!("msg_{now_ms:012x}{:08x}", rand::random::<u32>())
}

/// The id of the event `event_type` of the resource `resource_id`.
fn event_id_of(event_type: &str, resource_id: &str) -> String {
    let digest = Sha256::digest(format!("{event_type}/{resource_id}").as_bytes());
    format!("msg_{}", hex::encode(&digest[..12]))
}

fn event(
    id: String,
    organization_id: &str,
    event_type: &str,
    data: serde_json::Value,
    media_path: String,
) -> WebhookEvent {
    let now = now_millis();
    WebhookEvent {
        id,
        organization_id: organization_id.to_string(),
        event_type: event_type.to_string(),
        time_ms: now,
        data: data.to_string(),
        media_path,
        endpoint_id: None,
    }
}

fn json(resource: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(resource).unwrap_or_default()
}

/// `stream.live`, `stream.ended` or `stream.error` (with why), or
/// `stream.processing_changed`: the stream without its ingest details
/// (the publish key is not sent out).
pub fn stream(event_type: &str, stream: &pb::Stream, message: &str) -> WebhookEvent {
    let stream = pb::Stream {
        ingest: None,
        ..stream.clone()
    };
    let mut data = json(&stream);
    if !message.is_empty() {
        data["message"] = message.into();
    }
    event(
        new_event_id(now_millis()),
        &stream.organization_id,
        event_type,
        data,
        String::new(),
    )
}

/// `recording.ready`: a recording complete and downloadable.
pub fn recording_ready(organization_id: &str, recording: &pb::Recording) -> WebhookEvent {
    event(
        event_id_of(types::RECORDING_READY, &recording.id),
        organization_id,
        types::RECORDING_READY,
        json(recording),
        format!("/v1/recordings/{}.mp4", recording.id),
    )
}

/// `replay_clip.ready`: a replay clip stored.
pub fn replay_clip_ready(organization_id: &str, clip: &pb::ReplayClip) -> WebhookEvent {
    event(
        event_id_of(types::REPLAY_CLIP_READY, &clip.id),
        organization_id,
        types::REPLAY_CLIP_READY,
        json(clip),
        format!("/v1/clips/{}.mp4", clip.id),
    )
}

/// `motion_clip.created`, without the clip's bytes.
pub fn motion_clip_created(organization_id: &str, clip: &pb::MotionClip) -> WebhookEvent {
    let data = json(&pb::MotionClip {
        data: Default::default(),
        ..clip.clone()
    });
    event(
        new_event_id(now_millis()),
        organization_id,
        types::MOTION_CLIP_CREATED,
        data,
        format!("/v1/streams/{}/motion.mp4", clip.stream_id),
    )
}

/// `thumbnail.created`, without the picture's bytes.
pub fn thumbnail_created(organization_id: &str, thumbnail: &pb::Thumbnail) -> WebhookEvent {
    let data = json(&pb::Thumbnail {
        data: Default::default(),
        ..thumbnail.clone()
    });
    event(
        new_event_id(now_millis()),
        organization_id,
        types::THUMBNAIL_CREATED,
        data,
        format!("/v1/streams/{}/thumbnail.jpg", thumbnail.stream_id),
    )
}

/// `webhook.test`, to one endpoint only.
pub fn test(organization_id: &str, endpoint_id: &str) -> WebhookEvent {
    WebhookEvent {
        endpoint_id: Some(endpoint_id.to_string()),
        ..event(
            new_event_id(now_millis()),
            organization_id,
            types::WEBHOOK_TEST,
            serde_json::json!({ "endpointId": endpoint_id }),
            String::new(),
        )
    }
}

/// The body of a delivery: `{"type", "timestamp", "data"}`, with `url`
/// in `data` when the event has media. The same event gives the same
/// bytes on every attempt (the URL's expiry comes from the event's time).
pub fn body(event: &WebhookEvent, url: Option<String>) -> Vec<u8> {
    let mut data: serde_json::Value =
        serde_json::from_str(&event.data).unwrap_or_else(|_| serde_json::json!({}));
    if let (Some(url), Some(object)) = (url, data.as_object_mut()) {
        object.insert("url".to_string(), url.into());
    }
    let timestamp =
        crate::proto::timestamp_to_rfc3339(&crate::proto::timestamp_from_millis(event.time_ms));
    serde_json::to_vec(&serde_json::json!({
        "type": event.event_type,
        "timestamp": timestamp,
        "data": data,
    }))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recording_event_is_the_api_json_with_its_url() {
        let recording = pb::Recording {
            id: "rec_1".into(),
            stream_id: "cam".into(),
            size_bytes: 1234,
            state: pb::RecordingState::Complete as i32,
            ..Default::default()
        };
        let event = recording_ready("org_a", &recording);
        assert_eq!(event.id, recording_ready("org_a", &recording).id);
        assert_eq!(event.media_path, "/v1/recordings/rec_1.mp4");
        let body: serde_json::Value =
            serde_json::from_slice(&body(&event, Some("https://x/y?token=t".into()))).unwrap();
        assert_eq!(body["type"], "recording.ready");
        assert_eq!(body["data"]["id"], "rec_1");
        assert_eq!(body["data"]["streamId"], "cam");
        // int64/uint64 are strings and enums are names in the JSON mapping.
        assert_eq!(body["data"]["sizeBytes"], "1234");
        assert_eq!(body["data"]["state"], "COMPLETE");
        assert_eq!(body["data"]["url"], "https://x/y?token=t");
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn stream_events_leave_the_publish_key_out() {
        let stream_pb = pb::Stream {
            id: "cam".into(),
            organization_id: "org_a".into(),
            ingest: Some(pb::IngestInfo {
                srt_url: "srt://x".into(),
                stream_key: "sk_secret".into(),
                rtmp_url: "rtmp://x/live/sk_secret".into(),
                rtmp_server: "rtmp://x/live".into(),
                rtmp_stream_key: "sk_secret".into(),
                rtmps_url: "rtmps://x/live/sk_secret".into(),
                rtmps_server: "rtmps://x/live".into(),
                srt_encryption: Some(pb::SrtEncryption {
                    passphrase: "pp_secret_words".into(),
                    key_length: 32,
                }),
            }),
            ..Default::default()
        };
        let event = stream(types::STREAM_ERROR, &stream_pb, "bad media");
        assert!(!event.data.contains("sk_secret"));
        assert!(!event.data.contains("pp_secret"));
        let body: serde_json::Value = serde_json::from_slice(&body(&event, None)).unwrap();
        assert_eq!(body["data"]["message"], "bad media");
        assert_eq!(body["data"]["id"], "cam");
        assert!(body["data"].get("url").is_none());
    }
}

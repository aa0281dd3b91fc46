//! `SignUrl`: a media route's URL with a token, for one of the caller's
//! own resources (another organization's is "not found", as everywhere).

use super::Services;
use crate::error::{Error, Result};
use crate::media::now_millis;
use crate::proto::v1 as pb;
use crate::service::{clips, recordings};
use crate::url_signing::Signer;
use crate::validate;

/// Used when the request leaves `ttl_seconds` at 0.
const DEFAULT_TTL_SECONDS: u32 = 3600;
/// Longest a signed URL may work: 7 days.
const MAX_TTL_SECONDS: u32 = 7 * 24 * 3600;

const ROUTES: &str = "/v1/streams/{stream_id}/thumbnail.jpg (.png, .webp), \
/v1/streams/{stream_id}/motion.mp4 (.gif), /v1/streams/{stream_id}/replay.m3u8 (ll.m3u8), \
/v1/streams/{stream_id}/storyboard.vtt (clip.mp4), \
/v1/streams/{stream_id}/sessions/{session_id}/recordings.m3u8 (storyboard.vtt, clip.mp4), /v1/recordings/{recording_id}.mp4 or /v1/clips/{clip_id}.mp4";

pub async fn sign(
    state: &Services,
    organization_id: &str,
    request: &pb::SignUrlRequest,
) -> Result<pb::SignUrlResponse> {
    validate::path("path", &request.path)?;
    let ttl = match request.ttl_seconds {
        0 => DEFAULT_TTL_SECONDS,
        ttl if ttl <= MAX_TTL_SECONDS => ttl,
        _ => {
            return Err(Error::invalid(
                "ttl_seconds",
                format!("must be 1–{MAX_TTL_SECONDS} (7 days), or 0 for {DEFAULT_TTL_SECONDS}"),
            ))
        }
    };
    check_resource(state, organization_id, &request.path).await?;
    let expires = now_millis() / 1000 + i64::from(ttl);
    let generation = state
        .registry
        .organization(organization_id)
        .await?
        .ok_or_else(|| Error::organization_not_found(organization_id))?
        .url_signing_generation;
    let signer = Signer {
        organization: organization_id,
        generation,
    };
    let token = state.signer.sign(&signer, &request.path, expires);
    Ok(pb::SignUrlResponse {
        url: format!("{}{}?token={token}", state.http_public_url, request.path),
        expire_time: Some(pbjson_types::Timestamp {
            seconds: expires,
            nanos: 0,
        }),
    })
}

/// Fails unless `path` is a media route of a resource of the organization.
async fn check_resource(state: &Services, organization_id: &str, path: &str) -> Result<()> {
    let not_a_route = || Error::invalid("path", format!("must be one of {ROUTES}"));
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["", "v1", "streams", stream_id, file]
            if matches!(
                *file,
                "thumbnail.jpg"
                    | "thumbnail.png"
                    | "thumbnail.webp"
                    | "motion.mp4"
                    | "motion.gif"
                    | "replay.m3u8"
                    | "ll.m3u8"
                    | "storyboard.vtt"
                    | "clip.mp4"
            ) =>
        {
            state
                .registry
                .stream(organization_id, stream_id)
                .await?
                .map(|_| ())
                .ok_or_else(|| Error::stream_not_found(*stream_id))
        }
        ["", "v1", "streams", stream_id, "sessions", session_id, "recordings.m3u8" | "storyboard.vtt" | "clip.mp4"] => {
            recordings::of_session(state, organization_id, stream_id, session_id)
                .await
                .map(|_| ())
        }
        ["", "v1", "recordings", file] => {
            let id = file.strip_suffix(".mp4").ok_or_else(not_a_route)?;
            recordings::find(state, organization_id, id)
                .await
                .map(|_| ())
        }
        ["", "v1", "clips", file] => {
            let id = file.strip_suffix(".mp4").ok_or_else(not_a_route)?;
            clips::find(state, organization_id, id).await.map(|_| ())
        }
        _ => Err(not_a_route()),
    }
}

//! A stream's storyboard over HTTP: `storyboard.vtt` (WebVTT cues over the
//! replay window, each naming a tile of a sheet by `#xywh`) and
//! `storyboard/{n}.jpg` (sheet `n`). Reached with a signed URL, the VTT
//! signs each sheet URL with the same expiry, like the replay playlist.

use std::sync::Arc;

use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::access::Access;
use super::error::{HttpError, HttpResult};
use super::HttpState;
use crate::service::storyboards;
use crate::streams::LiveStream;

/// A sheet changes while tiles are added to it (the live edge's).
const SHEET_MAX_AGE: u32 = 5;

/// `storyboard.vtt`.
pub async fn vtt(
    state: &HttpState,
    access: &Access,
    live: &Arc<LiveStream>,
) -> HttpResult<Response> {
    let base = format!("/v1/streams/{}/storyboard", live.stream_ref.stream_id);
    let body = storyboards::vtt(&state.services, live, |n| {
        access.link(state, &format!("{base}/{n}.jpg"))
    })
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/vtt; charset=utf-8".to_string()),
            (header::CACHE_CONTROL, "no-cache".to_string()),
        ],
        body,
    )
        .into_response())
}

/// `storyboard/{n}.jpg`.
pub async fn sheet(
    state: &HttpState,
    access: &Access,
    live: &Arc<LiveStream>,
    file: &str,
) -> HttpResult<Response> {
    let n: i64 = file
        .strip_suffix(".jpg")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| HttpError::not_found(format!("storyboard sheet {file:?}")))?;
    let jpeg = storyboards::sheet(&state.services, live, n).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg".to_string()),
            (header::CACHE_CONTROL, access.cache_control(SHEET_MAX_AGE)),
        ],
        jpeg,
    )
        .into_response())
}

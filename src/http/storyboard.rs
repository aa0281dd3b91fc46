//! Storyboards over HTTP: a stream's `storyboard.vtt` (WebVTT cues over
//! the replay window, each naming a tile of a sheet by `#xywh`) and
//! `storyboard/{n}.jpg` (sheet `n`); the same under
//! `sessions/{session}/` over a session's recordings. Reached with a
//! signed URL, the VTT signs each sheet URL with the same expiry, like the
//! playlists.

use std::sync::Arc;

use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::access::Access;
use super::error::{HttpError, HttpResult};
use super::HttpState;
use crate::service::{session_storyboards, storyboards};
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
    Ok(vtt_response(body))
}

/// `storyboard/{n}.jpg`.
pub async fn sheet(
    state: &HttpState,
    access: &Access,
    live: &Arc<LiveStream>,
    file: &str,
) -> HttpResult<Response> {
    let jpeg = storyboards::sheet(&state.services, live, sheet_number(file)?).await?;
    Ok(sheet_response(access, jpeg))
}

/// `sessions/{session}/storyboard.vtt`.
pub async fn session_vtt(
    state: &HttpState,
    access: &Access,
    live: &Arc<LiveStream>,
    session_id: &str,
) -> HttpResult<Response> {
    let base = format!(
        "/v1/streams/{}/sessions/{session_id}/storyboard",
        live.stream_ref.stream_id
    );
    let body = session_storyboards::vtt(&state.services, &live.stream_ref, session_id, |n| {
        access.link(state, &format!("{base}/{n}.jpg"))
    })
    .await?;
    Ok(vtt_response(body))
}

/// `sessions/{session}/storyboard/{n}.jpg`.
pub async fn session_sheet(
    state: &HttpState,
    access: &Access,
    live: &Arc<LiveStream>,
    session_id: &str,
    file: &str,
) -> HttpResult<Response> {
    let n = sheet_number(file)?;
    let jpeg = session_storyboards::sheet(&state.services, &live.stream_ref, session_id, n).await?;
    Ok(sheet_response(access, jpeg))
}

/// `n` of `{n}.jpg`.
fn sheet_number(file: &str) -> HttpResult<i64> {
    file.strip_suffix(".jpg")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| HttpError::not_found(format!("storyboard sheet {file:?}")))
}

fn sheet_response(access: &Access, jpeg: bytes::Bytes) -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/jpeg".to_string()),
            (header::CACHE_CONTROL, access.cache_control(SHEET_MAX_AGE)),
        ],
        jpeg,
    )
        .into_response()
}

fn vtt_response(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/vtt; charset=utf-8".to_string()),
            (header::CACHE_CONTROL, "no-cache".to_string()),
        ],
        body,
    )
        .into_response()
}

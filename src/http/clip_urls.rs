//! `clip.mp4?start=<RFC 3339>&end=<RFC 3339>`: the frames shown from
//! `start` until just before `end`, as an MP4 cut when asked for and not
//! kept (to keep one, `CreateReplayClip` or `CreateSessionClip`). Of a
//! stream, from its replay window; of a session, from its recordings.
//! The cut is made in memory (at most ten minutes) and served with byte
//! ranges like any file.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;

use super::access::Access;
use super::error::{HttpError, HttpResult};
use super::files::send_media;
use super::HttpState;
use crate::service::media::Media;
use crate::service::{clips, session_clips};
use crate::streams::LiveStream;

/// Where the range comes from.
pub enum Source<'a> {
    Replay(&'a Arc<LiveStream>),
    Session(&'a Arc<LiveStream>, &'a str),
}

/// The clip of the request's `start..end` out of `source`.
pub async fn serve(
    state: &HttpState,
    access: &Access,
    source: Source<'_>,
    request: Request,
) -> HttpResult<Response> {
    let (start, end) = (time(&request, "start")?, time(&request, "end")?);
    let services = &state.services;
    let bytes = match source {
        Source::Replay(live) => clips::replay_bytes(services, live, start, end).await?,
        Source::Session(live, session) => {
            session_clips::bytes(services, &live.stream_ref, session, (start, end)).await?
        }
    };
    send_media(
        Media::memory(bytes),
        &format!("{start}-{end}"),
        access,
        request,
    )
    .await
}

/// The query parameter `name`, an RFC 3339 time, in ms since the epoch.
fn time(request: &Request, name: &str) -> HttpResult<i64> {
    let value = super::query_value(request, name).ok_or_else(|| {
        HttpError::new(
            StatusCode::BAD_REQUEST,
            format!("{name}: an RFC 3339 time is required"),
        )
    })?;
    crate::proto::timestamp_from_rfc3339(&value)
        .map(|ts| crate::proto::timestamp_to_millis(&ts))
        .ok_or_else(|| {
            HttpError::new(
                StatusCode::BAD_REQUEST,
                format!("{name}: {value:?} is not an RFC 3339 time"),
            )
        })
}

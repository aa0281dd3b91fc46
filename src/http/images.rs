//! A stream's latest images over HTTP: `thumbnail.{jpg,png,webp}` (or the
//! frame at `?at=<RFC 3339>`, from the replay window or a recording) and
//! `motion.{mp4,gif}`.
//! Each answer carries an `ETag` (the item's sequence) and a short
//! `Cache-Control`, so pages polling a thumbnail mostly get 304s.
//!
//! A stream makes its thumbnails in the format its processing options
//! name; another image extension gets the same thumbnail re-encoded, once
//! per thumbnail and format ([`crate::features::Conversions`]). Motion
//! clips come in their own format only; asking for another says which.

use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::access::Access;
use super::error::{HttpError, HttpResult};
use super::HttpState;
use crate::features::JobLane;
use crate::options::ImageFormat;
use crate::proto::v1 as pb;
use crate::streams::LiveStream;

/// How long a browser or CDN may reuse the latest image (thumbnails come
/// every 10 s at the most often).
const LATEST_MAX_AGE: u32 = 2;
/// A frame at a given time never changes.
const FIXED_MAX_AGE: u32 = 3600;

/// Every image format, for finding one by its extension.
const IMAGE_FORMATS: [ImageFormat; 3] = [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::Webp];

fn clip_type(format: pb::ClipFormat) -> (&'static str, &'static str) {
    match format {
        pb::ClipFormat::Gif => ("gif", "image/gif"),
        _ => ("mp4", "video/mp4"),
    }
}

/// `thumbnail.<extension>`: the latest, or the frame at `at`.
pub async fn thumbnail(
    state: &HttpState,
    access: &Access,
    live: &Arc<LiveStream>,
    extension: &str,
    at: Option<&str>,
    headers: &HeaderMap,
) -> HttpResult<Response> {
    let (thumbnail, max_age) = match at {
        Some(at) => {
            let at = crate::proto::timestamp_from_rfc3339(at).ok_or_else(|| {
                HttpError::new(
                    StatusCode::BAD_REQUEST,
                    "at must be an RFC 3339 time, e.g. 2026-11-26T12:00:00Z",
                )
            })?;
            let at = crate::proto::timestamp_to_millis(&at);
            let thumbnail = crate::service::thumbnails::at(&state.services, live, at).await?;
            (thumbnail, FIXED_MAX_AGE)
        }
        None => {
            let latest = state
                .services
                .features
                .outputs(&live.stream_ref)?
                .thumbnails
                .latest()
                .ok_or_else(|| HttpError::not_found("thumbnail"))?;
            (latest, LATEST_MAX_AGE)
        }
    };
    let wanted = IMAGE_FORMATS
        .into_iter()
        .find(|f| f.extension() == extension)
        .ok_or_else(|| HttpError::not_found("image format"))?;
    let tag = format!(
        "\"t{}-{}.{}\"",
        thumbnail.sequence,
        thumbnail
            .pts
            .map_or(0, |p| p.seconds * 1000 + i64::from(p.nanos) / 1_000_000),
        wanted.extension()
    );
    let made = ImageFormat::from_proto(thumbnail.format());
    let data = if made == wanted || super::client_has(headers, &tag) {
        thumbnail.data
    } else {
        let outputs = state.services.features.outputs(&live.stream_ref)?;
        match outputs.conversions.get(&tag) {
            Some(image) => image,
            None => {
                // A decode and an encode, like a thumbnail: in the same
                // job slots, at the same lower priority.
                let image = state
                    .services
                    .features
                    .run_job(JobLane::Still, move || {
                        crate::features::still::convert(&thumbnail.data, made, wanted)
                    })
                    .await?;
                outputs.conversions.put(tag.clone(), image.clone());
                image
            }
        }
    };
    Ok(send(
        headers,
        &tag,
        wanted.mime_type(),
        access.cache_control(max_age),
        data,
    ))
}

/// `motion.<extension>`: the latest motion clip.
pub fn motion_clip(
    state: &HttpState,
    access: &Access,
    live: &Arc<LiveStream>,
    extension: &str,
    headers: &HeaderMap,
) -> HttpResult<Response> {
    let clip = state
        .services
        .features
        .outputs(&live.stream_ref)?
        .motion_clips
        .latest()
        .ok_or_else(|| HttpError::not_found("motion clip"))?;
    let (made, content_type) = clip_type(clip.format());
    if made != extension {
        return Err(wrong_format("motion clips", made));
    }
    let tag = format!("\"m{}\"", clip.sequence);
    Ok(send(
        headers,
        &tag,
        content_type,
        access.cache_control(LATEST_MAX_AGE),
        clip.data,
    ))
}

fn wrong_format(what: &str, made: &str) -> HttpError {
    HttpError::new(
        StatusCode::NOT_FOUND,
        format!("this stream's {what} are .{made} (its processing options choose the format)"),
    )
}

/// The body, or 304 when the client has this `tag` already.
pub fn send(
    headers: &HeaderMap,
    tag: &str,
    content_type: &'static str,
    cache_control: String,
    body: Bytes,
) -> Response {
    let mut response = if super::client_has(headers, tag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type)], body).into_response()
    };
    let headers = response.headers_mut();
    if let Ok(tag) = HeaderValue::from_str(tag) {
        headers.insert(header::ETAG, tag);
    }
    if let Ok(cache) = HeaderValue::from_str(&cache_control) {
        headers.insert(header::CACHE_CONTROL, cache);
    }
    response
}

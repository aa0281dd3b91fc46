//! A stream's latest images over HTTP: `thumbnail.{jpg,png,webp}` (or the
//! frame at `?at=<RFC 3339>` from the replay window) and `motion.{mp4,gif}`.
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
use crate::options::ImageFormat;
use crate::proto::v1 as pb;
use crate::streams::LiveStream;

/// How long a browser or CDN may reuse the latest image (thumbnails come
/// every 10 s at the most often).
const LATEST_MAX_AGE: u32 = 2;
/// A frame at a given time never changes.
const FIXED_MAX_AGE: u32 = 3600;

const IMAGE_TYPES: [(ImageFormat, &str, &str); 3] = [
    (ImageFormat::Jpeg, "jpg", "image/jpeg"),
    (ImageFormat::Png, "png", "image/png"),
    (ImageFormat::Webp, "webp", "image/webp"),
];

/// The format of a thumbnail as made.
fn made_as(format: pb::ImageFormat) -> ImageFormat {
    match format {
        pb::ImageFormat::Png => ImageFormat::Png,
        pb::ImageFormat::Webp => ImageFormat::Webp,
        pb::ImageFormat::Jpeg | pb::ImageFormat::Unspecified => ImageFormat::Jpeg,
    }
}

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
            let at: prost_types::Timestamp = at.parse().map_err(|_| {
                HttpError::new(
                    StatusCode::BAD_REQUEST,
                    "at must be an RFC 3339 time, e.g. 2026-11-26T12:00:00Z",
                )
            })?;
            let thumbnail = crate::api::replay::thumbnail_at(&state.api, live, &at).await?;
            (thumbnail, FIXED_MAX_AGE)
        }
        None => {
            let latest = state
                .api
                .features
                .outputs(&live.stream_ref)?
                .thumbnails
                .latest()
                .ok_or_else(|| HttpError::not_found("thumbnail"))?;
            (latest, LATEST_MAX_AGE)
        }
    };
    let (wanted, extension, content_type) = IMAGE_TYPES
        .into_iter()
        .find(|(_, e, _)| *e == extension)
        .ok_or_else(|| HttpError::not_found("image format"))?;
    let tag = format!(
        "\"t{}-{}.{extension}\"",
        thumbnail.sequence,
        thumbnail
            .pts
            .map_or(0, |p| p.seconds * 1000 + i64::from(p.nanos) / 1_000_000)
    );
    let made = made_as(thumbnail.format());
    let data = if made == wanted || super::client_has(headers, &tag) {
        thumbnail.data
    } else {
        let outputs = state.api.features.outputs(&live.stream_ref)?;
        match outputs.conversions.get(&tag) {
            Some(image) => image,
            None => {
                let image = tokio::task::spawn_blocking(move || {
                    crate::features::still::convert(&thumbnail.data, made, wanted)
                })
                .await
                .map_err(|_| crate::error::Error::ShuttingDown)?
                .map_err(crate::error::Error::from)?;
                outputs.conversions.put(tag.clone(), image.clone());
                image
            }
        }
    };
    Ok(send(
        headers,
        &tag,
        content_type,
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
        .api
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

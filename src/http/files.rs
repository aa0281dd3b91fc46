//! Recordings and replay clips as files: `GET`/`HEAD` with byte ranges
//! (`Range` → 206), `ETag`/`If-None-Match`, and `Last-Modified`, so that a
//! `<video>` element, a player or a CDN can seek in them and reuse them.
//! A local file is served by tower-http's `ServeFile`; a file in object
//! storage by [`send_media`], which answers one byte range (a request for
//! several gets the whole file, as RFC 9110 allows). Either way the bytes
//! are read in chunks as the client takes them, so a slow client holds no
//! more than one.

use std::ops::Range;
use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::ServeFile;

use super::access::Access;
use super::error::{HttpError, HttpResult};
use super::HttpState;
use crate::service::media::Media;
use crate::service::{clips, recordings};

/// What a file route serves.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// `/v1/recordings/<id>.mp4`.
    Recording,
    /// `/v1/clips/<id>.mp4`: a replay clip's share link.
    Clip,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Recording => "recording",
            Kind::Clip => "clip",
        }
    }
}

/// The organization's recording or clip `id`.
pub async fn serve(
    state: &HttpState,
    access: &Access,
    kind: Kind,
    id: &str,
    request: Request<Body>,
) -> HttpResult<Response> {
    let organization = &access.organization_id;
    let media = match kind {
        Kind::Recording => {
            let record = recordings::find(&state.services, organization, id).await?;
            recordings::media(&state.services, &record).await
        }
        Kind::Clip => {
            let clip = clips::find(&state.services, organization, id).await?;
            clips::media(&state.services, &clip).await
        }
    }
    .map_err(|_| HttpError::not_found(kind.name()))?;
    match media.local_path() {
        Some(path) => send_file(path.to_path_buf(), access, request, kind.name()).await,
        None => send_media(media, id, access, request).await,
    }
}

/// A file in object storage or memory: `GET` or `HEAD`, whole or one
/// byte range; `id` names its content (with its length, the `ETag`).
pub(super) async fn send_media(
    media: Media,
    id: &str,
    access: &Access,
    request: Request<Body>,
) -> HttpResult<Response> {
    // A stored file does not change: its id and length name it.
    let tag = format!("\"{:x}-{id}\"", media.len);
    let response = if super::client_has(request.headers(), &tag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let range = request
            .headers()
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .map(|v| byte_range(v, media.len));
        let (status, range) = match range {
            None | Some(Ok(None)) => (StatusCode::OK, 0..media.len),
            Some(Ok(Some(range))) => (StatusCode::PARTIAL_CONTENT, range),
            Some(Err(())) => {
                let mut refused = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
                if let Ok(value) = HeaderValue::from_str(&format!("bytes */{}", media.len)) {
                    refused.headers_mut().insert(header::CONTENT_RANGE, value);
                }
                return Ok(refused);
            }
        };
        let body = if request.method() == axum::http::Method::HEAD {
            Body::empty()
        } else {
            Body::from_stream(media.read(range.clone()).await?)
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        headers.insert(
            header::CONTENT_LENGTH,
            HeaderValue::from(range.end - range.start),
        );
        if status == StatusCode::PARTIAL_CONTENT {
            let value = format!("bytes {}-{}/{}", range.start, range.end - 1, media.len);
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(header::CONTENT_RANGE, value);
            }
        }
        response
    };
    Ok(with_tag_and_caching(response, &tag, access))
}

/// The one byte range of a `Range` header over `len` bytes: `Ok(None)`
/// for a header to ignore (several ranges, another unit, malformed),
/// `Err` when the range is past the end.
fn byte_range(value: &str, len: u64) -> Result<Option<Range<u64>>, ()> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (first, last) = (first.trim(), last.trim());
    let range = match (first.parse::<u64>(), last.parse::<u64>()) {
        // bytes=a-b and bytes=a-
        (Ok(a), Ok(b)) if a <= b => a..(b + 1).min(len),
        (Ok(a), Err(_)) if last.is_empty() => a..len,
        // bytes=-n: the last n bytes
        (Err(_), Ok(n)) if first.is_empty() && n > 0 => len.saturating_sub(n)..len,
        _ => return Ok(None),
    };
    if range.start >= len {
        return Err(());
    }
    Ok(Some(range))
}

async fn send_file(
    path: PathBuf,
    access: &Access,
    request: Request<Body>,
    what: &str,
) -> HttpResult<Response> {
    let meta = tokio::fs::metadata(&path)
        .await
        .map_err(|_| HttpError::not_found(what))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis());
    // The size and time of the last write: a recording still being
    // written changes both.
    let tag = format!("\"{:x}-{:x}\"", meta.len(), modified);
    let response = if super::client_has(request.headers(), &tag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let served = ServeFile::new_with_mime(&path, &mime_mp4())
            .oneshot(request)
            .await
            .map_err(|e| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        served.map(Body::new)
    };
    Ok(with_tag_and_caching(response, &tag, access))
}

/// A file response with its `ETag` and the caller's `Cache-Control`.
fn with_tag_and_caching(mut response: Response, tag: &str, access: &Access) -> Response {
    let headers = response.headers_mut();
    if let Ok(tag) = HeaderValue::from_str(tag) {
        headers.insert(header::ETAG, tag);
    }
    if let Ok(cache) = HeaderValue::from_str(&access.cache_control(60)) {
        headers.insert(header::CACHE_CONTROL, cache);
    }
    response
}

fn mime_mp4() -> mime::Mime {
    "video/mp4".parse().expect("a valid MIME type")
}

#[cfg(test)]
mod tests {
    use super::byte_range;

    #[test]
    fn byte_ranges_as_rfc_9110_reads_them() {
        assert_eq!(byte_range("bytes=0-99", 1000), Ok(Some(0..100)));
        assert_eq!(byte_range("bytes=900-", 1000), Ok(Some(900..1000)));
        assert_eq!(byte_range("bytes=900-5000", 1000), Ok(Some(900..1000)));
        assert_eq!(byte_range("bytes=-100", 1000), Ok(Some(900..1000)));
        assert_eq!(byte_range("bytes=-5000", 1000), Ok(Some(0..1000)));
        assert_eq!(byte_range("bytes=1000-", 1000), Err(()));
        assert_eq!(byte_range("bytes=0-1,5-9", 1000), Ok(None));
        assert_eq!(byte_range("items=0-1", 1000), Ok(None));
        assert_eq!(byte_range("bytes=9-1", 1000), Ok(None));
    }
}

//! Recordings and replay clips as files: `GET`/`HEAD` with byte ranges
//! (`Range` → 206), `ETag`/`If-None-Match`, and `Last-Modified`, so that a
//! `<video>` element, a player or a CDN can seek in them and reuse them.
//! Range handling is tower-http's `ServeFile`; the file is read in chunks
//! as the client takes them, so a slow client holds no more than one.

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
    let path = match kind {
        Kind::Recording => {
            let record = recordings::find(&state.services, organization, id).await?;
            recordings::file(&state.services, &record)
        }
        Kind::Clip => {
            let clip = clips::find(&state.services, organization, id).await?;
            clips::file(&state.services, &clip)
        }
    };
    send_file(path, access, request, kind.name()).await
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
    let mut response = if super::client_has(request.headers(), &tag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let served = ServeFile::new_with_mime(&path, &mime_mp4())
            .oneshot(request)
            .await
            .map_err(|e| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        served.map(Body::new)
    };
    let headers = response.headers_mut();
    if let Ok(tag) = HeaderValue::from_str(&tag) {
        headers.insert(header::ETAG, tag);
    }
    if let Ok(cache) = HeaderValue::from_str(&access.cache_control(60)) {
        headers.insert(header::CACHE_CONTROL, cache);
    }
    Ok(response)
}

fn mime_mp4() -> mime::Mime {
    "video/mp4".parse().expect("a valid MIME type")
}

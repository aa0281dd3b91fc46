//! What liveproc makes, as URLs for browsers, players and CDNs, served on
//! the gRPC listen address (requests that are not gRPC come here):
//!
//! | route | what |
//! |---|---|
//! | `GET /v1/streams/{id}/thumbnail.{jpg,png,webp}` | the latest thumbnail; `?at=<RFC 3339>` a frame of the replay window, or a recording's keyframe ([`images`]) |
//! | `GET /v1/streams/{id}/motion.{mp4,gif}` | the latest motion clip ([`images`]) |
//! | `GET /v1/streams/{id}/replay.m3u8`, `replay/{n}.ts` | HLS over the replay window ([`hls`]) |
//! | `GET /v1/streams/{id}/ll.m3u8`, `ll/{file}` | low-latency HLS over the same window: fMP4 segments and parts, blocking reload, delta playlists ([`ll_hls`]) |
//! | `GET /v1/streams/{id}/storyboard.vtt`, `storyboard/{n}.jpg` | hover previews of the replay window: WebVTT cues into sprite sheets ([`storyboard`]) |
//! | `GET /v1/streams/{id}/clip.mp4?start=&end=` | the frames from one RFC 3339 time to another, cut from the replay window when asked for ([`clip_urls`]) |
//! | `GET /v1/streams/{id}/sessions/{session}/recordings.m3u8` | HLS over one session's recordings ([`vod`]) |
//! | `GET /v1/streams/{id}/sessions/{session}/clip.mp4?start=&end=` | the same, cut from the session's recordings ([`clip_urls`]) |
//! | `GET /v1/streams/{id}/sessions/{session}/storyboard.vtt`, `storyboard/{n}.jpg` | hover previews of that playlist ([`storyboard`]) |
//! | `GET /v1/recordings/{id}.mp4` | a recording, with byte ranges ([`files`]) |
//! | `GET /v1/clips/{id}.mp4` | a replay clip: its share link ([`files`]) |
//! | `GET /` | the dashboard ([`dashboard`]) |
//!
//! Every media route needs the organization's API key (`Authorization: Bearer`)
//! or a signed URL's `token` ([`access`], [`crate::url_signing`]). A stream, recording
//! or clip of another organization is answered exactly like a missing one.
//!
//! The live routes of a stream whose session runs on another node
//! (thumbnails, motion clips, HLS and storyboards of the replay window) redirect there
//! (`307`, the same path and query: a signed URL is valid on every node).

pub mod access;
mod clip_urls;
mod dashboard;
mod error;
mod files;
mod hls;
mod images;
mod ll_hls;
mod storyboard;
mod vod;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

use self::access::Access;
use self::error::{HttpError, HttpResult};
use crate::ids::StreamRef;
use crate::service::peers::LiveAt;
use crate::service::Services;
use crate::streams::LiveStream;

/// Requests one server serves at once over HTTP; past it, callers wait
/// (a slow client holds at most one file chunk or segment).
pub const MAX_CONCURRENT_REQUESTS: usize = 1024;

#[derive(Clone)]
pub struct HttpState {
    pub services: Services,
    /// Who to ask for the live processing package, shown by the dashboard
    /// where it says "Upgrade needed".
    pub operator_contact: Arc<str>,
}

/// The HTTP routes: media, and the dashboard (compressed: its script is
/// half a megabyte).
pub fn router(state: HttpState) -> Router {
    let dashboard = dashboard::routes().layer(tower_http::compression::CompressionLayer::new());
    Router::new()
        .merge(dashboard)
        .route("/v1/streams/{stream_id}/{file}", get(stream_file))
        .route(
            "/v1/streams/{stream_id}/{folder}/{file}",
            get(stream_folder_file),
        )
        .route(
            "/v1/streams/{stream_id}/sessions/{session_id}/{file}",
            get(session_file),
        )
        .route(
            "/v1/streams/{stream_id}/sessions/{session_id}/storyboard/{file}",
            get(session_storyboard_sheet),
        )
        .route("/v1/{kind}/{file}", get(file))
        .route_layer(axum::middleware::from_fn(
            crate::metrics::requests::count_http,
        ))
        .fallback(not_found)
        // Media and errors are never to be sniffed into something else
        // (an image or a JSON error read as HTML).
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(tower::limit::ConcurrencyLimitLayer::new(
            MAX_CONCURRENT_REQUESTS,
        ))
        .with_state(state)
}

async fn not_found() -> HttpError {
    crate::metrics::requests::count_http_status("unmatched".into(), 404);
    HttpError::new(StatusCode::NOT_FOUND, "no such route")
}

/// The caller's access for this request.
async fn access(state: &HttpState, headers: &HeaderMap, uri: &Uri) -> HttpResult<Access> {
    access::check(state, headers, uri.path(), uri.query()).await
}

/// The caller's stream (another organization's is "not found").
fn stream(state: &HttpState, access: &Access, stream_id: &str) -> HttpResult<Arc<LiveStream>> {
    state
        .services
        .hub
        .get(&StreamRef::new(&access.organization_id, stream_id))
        .ok_or_else(|| HttpError::not_found(format!("stream {stream_id:?}")))
}

/// A redirect to the node running the session of the caller's stream,
/// when that is another node.
async fn to_holder(
    state: &HttpState,
    access: &Access,
    stream_id: &str,
    uri: &Uri,
) -> HttpResult<Option<Response>> {
    let stream = StreamRef::new(&access.organization_id, stream_id);
    let LiveAt::Peer(peer) = state.services.peers.live_at(&stream).await? else {
        return Ok(None);
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let location = format!("{}{path}", peer.url.trim_end_matches('/'));
    let location = HeaderValue::try_from(location).map_err(|_| {
        HttpError::new(
            StatusCode::BAD_GATEWAY,
            "the session's node has no usable address",
        )
    })?;
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::TEMPORARY_REDIRECT;
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, location);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(Some(response))
}

/// The query parameter `name`.
fn query_value(request: &Request, name: &str) -> Option<String> {
    url::form_urlencoded::parse(request.uri().query()?.as_bytes())
        .find(|(n, _)| n == name)
        .map(|(_, value)| value.into_owned())
}

async fn stream_file(
    State(state): State<HttpState>,
    Path((stream_id, file)): Path<(String, String)>,
    request: Request,
) -> HttpResult<Response> {
    let access = access(&state, request.headers(), request.uri()).await?;
    if let Some(redirect) = to_holder(&state, &access, &stream_id, request.uri()).await? {
        return Ok(redirect);
    }
    let live = stream(&state, &access, &stream_id)?;
    let headers = request.headers();
    match file.split_once('.') {
        Some(("thumbnail", extension @ ("jpg" | "png" | "webp"))) => {
            let at = query_value(&request, "at");
            images::thumbnail(&state, &access, &live, extension, at.as_deref(), headers).await
        }
        Some(("motion", extension @ ("mp4" | "gif"))) => {
            images::motion_clip(&state, &access, &live, extension, headers)
        }
        Some(("replay", "m3u8")) => hls::playlist(&state, &access, &live),
        Some(("ll", "m3u8")) => {
            let asked = ll_hls::Request::parse(request.uri().query())?;
            ll_hls::playlist(&state, &access, &live, asked).await
        }
        Some(("storyboard", "vtt")) => storyboard::vtt(&state, &access, &live).await,
        Some(("clip", "mp4")) => {
            clip_urls::serve(&state, &access, clip_urls::Source::Replay(&live), request).await
        }
        _ => Err(not_found().await),
    }
}

/// `replay/{n}.ts`, `ll/{file}` and `storyboard/{n}.jpg`.
async fn stream_folder_file(
    State(state): State<HttpState>,
    Path((stream_id, folder, file)): Path<(String, String, String)>,
    request: Request,
) -> HttpResult<Response> {
    let access = access(&state, request.headers(), request.uri()).await?;
    if let Some(redirect) = to_holder(&state, &access, &stream_id, request.uri()).await? {
        return Ok(redirect);
    }
    let live = stream(&state, &access, &stream_id)?;
    match folder.as_str() {
        "replay" => {
            let sequence = file
                .strip_suffix(".ts")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| HttpError::not_found(format!("replay segment {file:?}")))?;
            hls::segment(&state, &access, &live, sequence).await
        }
        "storyboard" => storyboard::sheet(&state, &access, &live, &file).await,
        "ll" => ll_hls::file(&state, &access, &live, &file).await,
        _ => Err(not_found().await),
    }
}

/// `recordings.m3u8`, `storyboard.vtt` and `clip.mp4` of a session.
async fn session_file(
    State(state): State<HttpState>,
    Path((stream_id, session_id, file)): Path<(String, String, String)>,
    request: Request,
) -> HttpResult<Response> {
    let access = access(&state, request.headers(), request.uri()).await?;
    match file.as_str() {
        "recordings.m3u8" => vod::playlist(&state, &access, &stream_id, &session_id).await,
        "storyboard.vtt" => {
            let live = stream(&state, &access, &stream_id)?;
            storyboard::session_vtt(&state, &access, &live, &session_id).await
        }
        "clip.mp4" => {
            let live = stream(&state, &access, &stream_id)?;
            let source = clip_urls::Source::Session(&live, &session_id);
            clip_urls::serve(&state, &access, source, request).await
        }
        _ => Err(not_found().await),
    }
}

/// `storyboard/{n}.jpg` of a session.
async fn session_storyboard_sheet(
    State(state): State<HttpState>,
    Path((stream_id, session_id, file)): Path<(String, String, String)>,
    request: Request,
) -> HttpResult<Response> {
    let access = access(&state, request.headers(), request.uri()).await?;
    let live = stream(&state, &access, &stream_id)?;
    storyboard::session_sheet(&state, &access, &live, &session_id, &file).await
}

/// `/v1/recordings/<id>.mp4` or `/v1/clips/<id>.mp4`.
async fn file(
    State(state): State<HttpState>,
    Path((kind, file)): Path<(String, String)>,
    request: Request<Body>,
) -> HttpResult<Response> {
    let access = access(&state, request.headers(), request.uri()).await?;
    let kind = match kind.as_str() {
        "recordings" => files::Kind::Recording,
        "clips" => files::Kind::Clip,
        _ => return Err(not_found().await),
    };
    let id = file
        .strip_suffix(".mp4")
        .ok_or_else(|| HttpError::not_found(kind.name()))?;
    files::serve(&state, &access, kind, id, request).await
}

/// Whether the client holds `tag` already (`If-None-Match`), compared
/// weakly as RFC 9110 asks: `W/"x"` and `"x"` are the same version.
fn client_has(headers: &axum::http::HeaderMap, tag: &str) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let ours = opaque(tag);
    headers
        .get_all(axum::http::header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || opaque(t) == ours)
}

#[cfg(test)]
mod tests {
    use axum::http::{header, HeaderMap, HeaderValue};

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn if_none_match_compares_weakly() {
        assert!(super::client_has(&with("\"abc\""), "\"abc\""));
        assert!(super::client_has(&with("W/\"abc\""), "\"abc\""));
        assert!(super::client_has(&with("\"x\", W/\"abc\""), "\"abc\""));
        assert!(super::client_has(&with("*"), "\"abc\""));
        assert!(!super::client_has(&with("W/\"abd\""), "\"abc\""));
        assert!(!super::client_has(&HeaderMap::new(), "\"abc\""));
    }
}

//! HLS over a stream's replay window: `replay.m3u8` lists every GOP the
//! buffer holds as one MPEG-TS segment (`replay/<sequence>.ts`), oldest
//! first, each with its `EXT-X-PROGRAM-DATE-TIME` (when it was received).
//! It is a live playlist whose media sequence advances as old GOPs leave
//! the window, so a player can seek back to the window's start and return
//! to the live edge; it gets `EXT-X-ENDLIST` once the session has ended.
//! A new format (another resolution or codec) starts with
//! `EXT-X-DISCONTINUITY`.
//!
//! Reached with a signed URL, the playlist signs each segment URL with the
//! same expiry, so a player needs nothing but the playlist's URL.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::access::Access;
use super::error::{HttpError, HttpResult};
use super::HttpState;
use crate::features::replay::buffer::{Gop, Lookup};
use crate::service::segments;
use crate::streams::LiveStream;

pub(super) const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";

/// The playlist of `live`'s replay window.
pub fn playlist(
    state: &HttpState,
    access: &Access,
    live: &Arc<LiveStream>,
) -> HttpResult<Response> {
    let outputs = state.services.features.outputs(&live.stream_ref)?;
    let replay = &outputs.replay;
    let gops = replay.range(Duration::ZERO, Duration::MAX);
    if gops.is_empty() {
        return Err(empty_window(live));
    }
    let base = format!("/v1/streams/{}/replay", live.stream_ref.stream_id);
    let body = render(&gops, replay.session_ended(), |sequence| {
        access.link(state, &format!("{base}/{sequence}.ts"))
    });
    Ok((
        [
            (header::CONTENT_TYPE, PLAYLIST_TYPE.to_string()),
            (header::CACHE_CONTROL, "no-cache".to_string()),
        ],
        body,
    )
        .into_response())
}

/// Why a playlist of `live`'s window has nothing to list: a session that
/// has just begun has no complete GOP yet, "not yet" (503, which players
/// retry), not "no such thing".
pub(super) fn empty_window(live: &LiveStream) -> HttpError {
    let starting = live.has_publisher() && live.processing().borrow().replay.is_some();
    if starting {
        HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the replay window has no complete GOP yet; retry in a second",
        )
    } else {
        HttpError::new(
            StatusCode::NOT_FOUND,
            "the replay window is empty (is replay enabled and the stream live?)",
        )
    }
}

/// The playlist text for `gops`; `url` names a segment.
fn render(gops: &[Arc<Gop>], ended: bool, url: impl Fn(u64) -> String) -> String {
    let target = gops
        .iter()
        .map(|g| g.duration().as_secs_f64().ceil() as u64)
        .max()
        .unwrap_or(1)
        .max(1);
    let mut out = String::new();
    let _ = writeln!(out, "#EXTM3U");
    let _ = writeln!(out, "#EXT-X-VERSION:3");
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", gops[0].sequence);
    let mut format = gops[0].format.clone();
    for gop in gops {
        if gop.format != format {
            let _ = writeln!(out, "#EXT-X-DISCONTINUITY");
            format = gop.format.clone();
        }
        let _ = writeln!(
            out,
            "#EXT-X-PROGRAM-DATE-TIME:{}",
            rfc3339_millis(gop.start_ms)
        );
        let _ = writeln!(out, "#EXTINF:{:.3},", gop.duration().as_secs_f64());
        let _ = writeln!(out, "{}", url(gop.sequence));
    }
    if ended {
        let _ = writeln!(out, "#EXT-X-ENDLIST");
    }
    out
}

/// `replay/<sequence>.ts`: one GOP as MPEG-TS (made once, kept with the
/// GOP while it is in memory).
pub async fn segment(
    state: &HttpState,
    access: &Access,
    live: &Arc<LiveStream>,
    sequence: u64,
) -> HttpResult<Response> {
    let outputs = state.services.features.outputs(&live.stream_ref)?;
    let gop = match outputs.replay.get(sequence) {
        Lookup::Found(gop) => gop,
        Lookup::Evicted(_) | Lookup::Pending => {
            return Err(HttpError::not_found(format!("replay segment {sequence}")))
        }
    };
    let bytes = segments::mpeg_ts(&state.services, &gop).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "video/mp2t".to_string()),
            // A segment never changes; it only leaves the window.
            (header::CACHE_CONTROL, access.cache_control(600)),
        ],
        bytes,
    )
        .into_response())
}

/// `2026-11-26T12:00:00.123Z` for ms since the epoch.
pub(super) fn rfc3339_millis(ms: i64) -> String {
    crate::proto::timestamp_to_rfc3339(&crate::proto::timestamp_from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_date_times_are_rfc3339() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_millis(1_795_000_000_123),
            "2026-11-18T11:06:40.123Z"
        );
    }
}

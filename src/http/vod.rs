//! HLS over one publishing session's recordings:
//! `/v1/streams/{id}/sessions/{session}/recordings.m3u8`. Every file is
//! fragmented MP4, so the playlist points into the files themselves with
//! byte ranges (served by [`super::files`]): each file's `ftyp` + `moov` is
//! its `EXT-X-MAP`, the rest one segment. Each file's timeline starts at
//! zero, so files after the first start with `EXT-X-DISCONTINUITY`.
//!
//! While the session is still recording, the playlist is an `EVENT`
//! playlist of the files already complete (a segment never changes once
//! listed); after it, a `VOD` playlist with `EXT-X-ENDLIST`. A file whose
//! closing failed is left out.

use std::fmt::Write as _;
use std::time::Duration;

use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::access::Access;
use super::error::HttpResult;
use super::HttpState;
use crate::service::recordings;

/// One file of the playlist.
struct Entry {
    url: String,
    init_length: u64,
    size: u64,
    duration: Duration,
    start_ms: i64,
}

/// The session's playlist.
pub async fn playlist(
    state: &HttpState,
    access: &Access,
    stream_id: &str,
    session_id: &str,
) -> HttpResult<Response> {
    let (playable, recording) = recordings::playable_of_session(
        &state.services,
        &access.organization_id,
        stream_id,
        session_id,
    )
    .await?;
    let entries: Vec<Entry> = playable
        .into_iter()
        .map(|p| Entry {
            url: format!("/v1/recordings/{}.mp4", p.record.id),
            init_length: p.init_length,
            size: p.record.size_bytes,
            duration: Duration::from_nanos(p.record.duration_ns),
            start_ms: p.record.start_time_ms,
        })
        .collect();
    let body = render(&entries, !recording, |path| access.link(state, path));
    Ok((
        [
            (header::CONTENT_TYPE, super::hls::PLAYLIST_TYPE.to_string()),
            (header::CACHE_CONTROL, "no-cache".to_string()),
        ],
        body,
    )
        .into_response())
}

/// The playlist text; `link` makes a path fetchable by the client.
fn render(entries: &[Entry], ended: bool, link: impl Fn(&str) -> String) -> String {
    let target = entries
        .iter()
        .map(|e| e.duration.as_secs_f64().ceil() as u64)
        .max()
        .unwrap_or(1)
        .max(1);
    let mut out = String::new();
    let _ = writeln!(out, "#EXTM3U");
    // Byte ranges of EXT-X-MAP need version 6.
    let _ = writeln!(out, "#EXT-X-VERSION:6");
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:0");
    let kind = if ended { "VOD" } else { "EVENT" };
    let _ = writeln!(out, "#EXT-X-PLAYLIST-TYPE:{kind}");
    let _ = writeln!(out, "#EXT-X-INDEPENDENT-SEGMENTS");
    for (i, entry) in entries.iter().enumerate() {
        let url = link(&entry.url);
        if i > 0 {
            let _ = writeln!(out, "#EXT-X-DISCONTINUITY");
        }
        let _ = writeln!(
            out,
            "#EXT-X-MAP:URI=\"{url}\",BYTERANGE=\"{}@0\"",
            entry.init_length
        );
        let _ = writeln!(
            out,
            "#EXT-X-PROGRAM-DATE-TIME:{}",
            super::hls::rfc3339_millis(entry.start_ms)
        );
        let _ = writeln!(out, "#EXTINF:{:.3},", entry.duration.as_secs_f64());
        let _ = writeln!(
            out,
            "#EXT-X-BYTERANGE:{}@{}",
            entry.size - entry.init_length,
            entry.init_length
        );
        let _ = writeln!(out, "{url}");
    }
    if ended {
        let _ = writeln!(out, "#EXT-X-ENDLIST");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, seconds: u64) -> Entry {
        Entry {
            url: format!("/v1/recordings/{id}.mp4"),
            init_length: 800,
            size: 10_800,
            duration: Duration::from_secs(seconds),
            start_ms: 1_795_000_000_000,
        }
    }

    #[test]
    fn files_are_byte_ranges_after_their_own_init_segment() {
        let text = render(&[entry("a", 4), entry("b", 6)], true, str::to_string);
        assert!(text.contains("#EXT-X-TARGETDURATION:6\n"));
        assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"));
        assert!(text.contains("#EXT-X-MAP:URI=\"/v1/recordings/a.mp4\",BYTERANGE=\"800@0\"\n"));
        assert!(text.contains("#EXT-X-BYTERANGE:10000@800\n/v1/recordings/b.mp4\n"));
        assert_eq!(text.matches("#EXT-X-DISCONTINUITY").count(), 1);
        assert!(text.ends_with("#EXT-X-ENDLIST\n"));
    }

    #[test]
    fn a_session_still_recording_is_an_event_playlist_without_end() {
        let text = render(&[entry("a", 4)], false, str::to_string);
        assert!(text.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"));
        assert!(!text.contains("ENDLIST"));
    }
}

//! Low-latency HLS over a stream's replay window: `ll.m3u8` lists every
//! GOP the buffer holds as an fMP4 segment (`ll/<sequence>.m4s`, after
//! the init segment `ll/<sequence>.init.mp4` of its format), like
//! `replay.m3u8` does in MPEG-TS, so the rewind window is the replay
//! window; the newest GOPs are also listed as parts of about 0.27 s
//! (`ll/<sequence>.<part>.m4s`, `INDEPENDENT=YES` on each GOP's first),
//! the open GOP by its parts alone, and the next part as a preload hint.
//!
//! - Blocking playlist reload: `_HLS_msn=<m>[&_HLS_part=<p>]` waits until
//!   that part (or a later GOP) is in, at most three target durations.
//! - A request for the hinted part waits for it the same way.
//! - Delta playlists: `_HLS_skip=YES` leaves out the segments older than
//!   `CAN-SKIP-UNTIL` (six target durations) with `EXT-X-SKIP`.
//!
//! Every time is on the stream's own timeline; `EXT-X-PROGRAM-DATE-TIME`
//! is when the GOP's keyframe reached the server, so a player's distance
//! from live is its distance from the media's arrival.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::access::Access;
use super::error::{HttpError, HttpResult};
use super::hls::{empty_window, rfc3339_millis, PLAYLIST_TYPE};
use super::HttpState;
use crate::features::replay::buffer::{Gop, Lookup};
use crate::features::replay::parts::{LiveParts, Newest, PartedGop};
use crate::features::StreamOutputs;
use crate::media::TrackFormat;
use crate::service::segments;
use crate::streams::LiveStream;

/// What the playlist request asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// `_HLS_msn` and `_HLS_part`: wait for that part.
    pub wait_for: Option<(u64, usize)>,
    /// `_HLS_skip=YES`.
    pub skip: bool,
}

impl Request {
    pub fn parse(query: Option<&str>) -> HttpResult<Request> {
        let mut request = Request::default();
        let (mut msn, mut part) = (None, None);
        let bad = |name: &str| {
            HttpError::new(
                StatusCode::BAD_REQUEST,
                format!("{name} must be a whole number"),
            )
        };
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match &*name {
                "_HLS_msn" => msn = Some(value.parse::<u64>().map_err(|_| bad("_HLS_msn"))?),
                "_HLS_part" => part = Some(value.parse::<usize>().map_err(|_| bad("_HLS_part"))?),
                "_HLS_skip" => request.skip = value == "YES" || value == "v2",
                _ => {}
            }
        }
        request.wait_for = match (msn, part) {
            (Some(msn), part) => Some((msn, part.unwrap_or(0))),
            (None, Some(_)) => {
                return Err(HttpError::new(
                    StatusCode::BAD_REQUEST,
                    "_HLS_part needs _HLS_msn",
                ))
            }
            (None, None) => None,
        };
        Ok(request)
    }
}

/// How far ahead of the newest part a blocking request may ask.
const MOST_AHEAD: u64 = 2;

/// Waits until `parts` has part `part` of GOP `sequence` (or a later
/// GOP), at most `limit`; `false` when it did not come in time.
async fn wait_for(
    parts: &LiveParts,
    (sequence, part): (u64, usize),
    limit: Duration,
) -> HttpResult<bool> {
    let mut newest = parts.subscribe();
    let now = *newest.borrow_and_update();
    if sequence > now.sequence + MOST_AHEAD {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "_HLS_msn {sequence} is more than {MOST_AHEAD} ahead of the newest ({})",
                now.sequence
            ),
        ));
    }
    let reached = |n: &Newest| n.reached(sequence, part);
    Ok(tokio::time::timeout(limit, newest.wait_for(reached))
        .await
        .is_ok_and(|r| r.is_ok()))
}

/// The target duration: the longest GOP, whole seconds up.
fn target_duration(gops: &[Arc<Gop>]) -> u64 {
    gops.iter()
        .map(|g| g.duration().as_secs_f64().ceil() as u64)
        .max()
        .unwrap_or(1)
        .max(1)
}

/// `ll.m3u8` of `live`'s replay window.
pub async fn playlist(
    state: &HttpState,
    access: &Access,
    live: &Arc<LiveStream>,
    request: Request,
) -> HttpResult<Response> {
    let outputs = state.services.features.outputs(&live.stream_ref)?;
    if let Some(wanted) = request.wait_for {
        let gops = outputs.replay.range(Duration::ZERO, Duration::MAX);
        let limit = Duration::from_secs(3 * target_duration(&gops));
        if !wait_for(&outputs.parts, wanted, limit).await? && !outputs.replay.session_ended() {
            return Err(HttpError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "that part did not come in time; is the stream still live?",
            ));
        }
    }
    let gops = outputs.replay.range(Duration::ZERO, Duration::MAX);
    let parted = outputs.parts.gops();
    if gops.is_empty() && parted.is_empty() {
        return Err(empty_window(live));
    }
    let base = format!("/v1/streams/{}/ll", live.stream_ref.stream_id);
    let listing = Listing {
        gops: &gops,
        parted: &parted,
        part_target: outputs.parts.part_target(),
        ended: outputs.replay.session_ended(),
        skip: request.skip,
    };
    let body = listing.render(|file| access.link(state, &format!("{base}/{file}")));
    Ok((
        [
            (header::CONTENT_TYPE, PLAYLIST_TYPE.to_string()),
            (header::CACHE_CONTROL, "no-cache".to_string()),
        ],
        body,
    )
        .into_response())
}

/// What a playlist lists.
struct Listing<'a> {
    /// Complete GOPs of the window.
    gops: &'a [Arc<Gop>],
    /// The newest GOPs' parts (the last one perhaps still open).
    parted: &'a [PartedGop],
    part_target: Duration,
    ended: bool,
    skip: bool,
}

impl Listing<'_> {
    /// The playlist text; `url` names a file under `ll/`.
    fn render(&self, url: impl Fn(&str) -> String) -> String {
        let target = target_duration(self.gops);
        let part_target = self.part_target.as_secs_f64();
        let skip_until = 6 * target;
        let mut out = String::new();
        let _ = writeln!(out, "#EXTM3U");
        let _ = writeln!(out, "#EXT-X-VERSION:9");
        let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
        let _ = writeln!(
            out,
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.3},CAN-SKIP-UNTIL={skip_until}",
            3.0 * part_target
        );
        let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={part_target:.3}");
        let first = self
            .gops
            .first()
            .map(|g| g.sequence)
            .or(self.parted.first().map(|g| g.sequence))
            .unwrap_or(0);
        let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{first}");
        // Segments that end more than CAN-SKIP-UNTIL before the newest
        // media may be left out.
        let skipped = if self.skip {
            let newest_end = self.gops.last().map_or(Duration::ZERO, |g| g.end_pts);
            let horizon = newest_end.saturating_sub(Duration::from_secs(skip_until));
            self.gops
                .iter()
                .take_while(|g| g.end_pts <= horizon)
                .count()
        } else {
            0
        };
        if skipped > 0 {
            let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
        }
        let mut format = None;
        // A segment's format, its init segment after a change, and its
        // program date.
        let mut begin =
            |out: &mut String, own: &Option<Arc<TrackFormat>>, sequence: u64, ms: i64| {
                if format.as_ref() != Some(own) {
                    if format.is_some() {
                        let _ = writeln!(out, "#EXT-X-DISCONTINUITY");
                    }
                    format = Some(own.clone());
                    let init = url(&format!("{sequence}.init.mp4"));
                    let _ = writeln!(out, "#EXT-X-MAP:URI=\"{init}\"");
                }
                let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", rfc3339_millis(ms));
            };
        for gop in &self.gops[skipped..] {
            begin(&mut out, &gop.format, gop.sequence, gop.start_ms);
            if let Some(parted) = self.parted.iter().find(|p| p.sequence == gop.sequence) {
                write_parts(&mut out, parted, &url);
            }
            let _ = writeln!(out, "#EXTINF:{:.3},", gop.duration().as_secs_f64());
            let _ = writeln!(out, "{}", url(&format!("{}.m4s", gop.sequence)));
        }
        // The open GOP, by its parts.
        let listed = self.gops.last().map(|g| g.sequence);
        let open = self
            .parted
            .last()
            .filter(|p| listed.is_none_or(|l| p.sequence > l));
        if let Some(open) = open {
            begin(
                &mut out,
                &open.keyframe.format,
                open.sequence,
                open.start_ms,
            );
            write_parts(&mut out, open, &url);
        }
        if self.ended {
            let _ = writeln!(out, "#EXT-X-ENDLIST");
        } else {
            let (sequence, part) = match open.or(self.parted.last()) {
                Some(p) if !p.complete => (p.sequence, p.parts.len()),
                Some(p) => (p.sequence + 1, 0),
                None => (listed.map_or(0, |l| l + 1), 0),
            };
            let hint = url(&format!("{sequence}.{part}.m4s"));
            let _ = writeln!(out, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{hint}\"");
        }
        out
    }
}

fn write_parts(out: &mut String, gop: &PartedGop, url: &impl Fn(&str) -> String) {
    for (index, part) in gop.parts.iter().enumerate() {
        let independent = if part.independent {
            ",INDEPENDENT=YES"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "#EXT-X-PART:DURATION={:.3},URI=\"{}\"{independent}",
            part.duration.as_secs_f64(),
            url(&format!("{}.{index}.m4s", gop.sequence))
        );
    }
}

/// A file under `ll/`: `<sequence>.init.mp4`, `<sequence>.m4s` or
/// `<sequence>.<part>.m4s`.
pub async fn file(
    state: &HttpState,
    access: &Access,
    live: &Arc<LiveStream>,
    name: &str,
) -> HttpResult<Response> {
    let outputs = state.services.features.outputs(&live.stream_ref)?;
    let missing = || HttpError::not_found(format!("low-latency HLS file {name:?}"));
    let number = |text: &str| text.parse::<u64>().map_err(|_| missing());
    let (bytes, content_type) = if let Some(sequence) = name.strip_suffix(".init.mp4") {
        (init(state, &outputs, number(sequence)?).await?, "video/mp4")
    } else {
        let stem = name.strip_suffix(".m4s").ok_or_else(missing)?;
        let bytes = match stem.split_once('.') {
            Some((sequence, part)) => {
                let wanted = (number(sequence)?, number(part)? as usize);
                part_bytes(&outputs, wanted).await?
            }
            None => {
                let gop = match outputs.replay.get(number(stem)?) {
                    Lookup::Found(gop) => gop,
                    Lookup::Evicted(_) | Lookup::Pending => return Err(missing()),
                };
                segments::fmp4(&state.services, &gop).await?.1
            }
        };
        (bytes, "video/iso.segment")
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            // A file never changes; it only leaves the window.
            (header::CACHE_CONTROL, access.cache_control(600)),
        ],
        bytes,
    )
        .into_response())
}

/// Part `index` of GOP `sequence`; the hinted next part is waited for.
async fn part_bytes(outputs: &StreamOutputs, (sequence, index): (u64, usize)) -> HttpResult<Bytes> {
    let missing = || HttpError::not_found(format!("part {index} of segment {sequence}"));
    let found = match outputs.parts.part(sequence, index) {
        Some(found) => found,
        None => {
            let newest = outputs.parts.newest();
            let hinted = !newest.reached(sequence, index)
                && (sequence == newest.sequence || (sequence == newest.sequence + 1 && index == 0));
            if !hinted {
                return Err(missing());
            }
            let limit = 3 * outputs.parts.part_target().max(Duration::from_millis(500));
            wait_for(&outputs.parts, (sequence, index), limit).await?;
            outputs.parts.part(sequence, index).ok_or_else(missing)?
        }
    };
    let (gop, part) = found;
    Ok(segments::part(&gop, &part, index)?)
}

/// The init segment of the format GOP `sequence` starts: the one its
/// segment is muxed with, or, for the open GOP, of its parts' tracks.
async fn init(state: &HttpState, outputs: &StreamOutputs, sequence: u64) -> HttpResult<Bytes> {
    if let Lookup::Found(gop) = outputs.replay.get(sequence) {
        return Ok(segments::fmp4(&state.services, &gop).await?.0);
    }
    let parted = outputs
        .parts
        .gops()
        .into_iter()
        .find(|g| g.sequence == sequence)
        .ok_or_else(|| HttpError::not_found(format!("init segment {sequence}")))?;
    Ok(segments::parts_init(&parted)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_and_skip_parameters_are_read() {
        assert_eq!(Request::parse(None).unwrap(), Request::default());
        assert_eq!(
            Request::parse(Some("token=x&_HLS_msn=12&_HLS_part=3&_HLS_skip=YES")).unwrap(),
            Request {
                wait_for: Some((12, 3)),
                skip: true
            }
        );
        assert_eq!(
            Request::parse(Some("_HLS_msn=12")).unwrap().wait_for,
            Some((12, 0))
        );
        assert!(Request::parse(Some("_HLS_part=3")).is_err());
        assert!(Request::parse(Some("_HLS_msn=x")).is_err());
    }
}

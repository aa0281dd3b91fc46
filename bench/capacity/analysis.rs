//! Turns what the load sent and what its subscribers received into
//! latencies and gaps: each received item is matched to the keyframe it
//! started at, through its PTS, anchored once per stream.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::load::PublisherStats;
use crate::media::Media;
use crate::watch::Arrival;

/// p50 / p99 / max of a set of latencies, in ms.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn of(mut ms: Vec<f64>) -> Latency {
        if ms.is_empty() {
            return Latency::default();
        }
        ms.sort_by(f64::total_cmp);
        Latency {
            count: ms.len(),
            p50_ms: percentile(&ms, 50.0),
            p99_ms: percentile(&ms, 99.0),
            max_ms: *ms.last().unwrap(),
        }
    }
}

/// The `p`th percentile of sorted values (nearest rank).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms_between(later: SystemTime, earlier: SystemTime) -> f64 {
    match later.duration_since(earlier) {
        Ok(d) => d.as_secs_f64() * 1e3,
        Err(e) => -e.duration().as_secs_f64() * 1e3,
    }
}

/// A capture time is whole milliseconds; a keyframe pushed over gRPC can
/// be captured within the millisecond the load noted it sent.
const CAPTURE_ROUNDING: std::time::Duration = std::time::Duration::from_millis(1);

/// Maps a stream's server-side PTS to the file's keyframes.
pub struct KeyframeClock<'a> {
    media: &'a Media,
    sent: &'a PublisherStats,
    /// Server PTS minus file PTS, seconds.
    offset: f64,
}

impl<'a> KeyframeClock<'a> {
    /// Anchors on the first thumbnail: its keyframe is the last one fully
    /// sent before the server captured it (keyframes are a GOP apart, far
    /// more than the way from the load to the server). The capture time
    /// is whole milliseconds, so "before" allows [`CAPTURE_ROUNDING`].
    pub fn anchor(
        media: &'a Media,
        sent: &'a PublisherStats,
        thumbnails: &[Arrival],
    ) -> Option<KeyframeClock<'a>> {
        let first = thumbnails.first()?;
        let captured = first.captured?;
        let index = (0..media.keyframes.len()).rev().find(|&k| {
            sent.keyframe_sent_at(k)
                .is_some_and(|t| t <= captured + CAPTURE_ROUNDING)
        })?;
        Some(KeyframeClock {
            media,
            sent,
            offset: first.pts - media.keyframes[index].pts as f64 / 90_000.0,
        })
    }

    /// The keyframe an item with server PTS `pts` starts at.
    pub fn keyframe(&self, pts: f64) -> Option<usize> {
        self.media.keyframe_near((pts - self.offset) * 90_000.0)
    }

    /// From keyframe `index` fully sent to `arrival`, ms.
    pub fn since_sent(&self, index: usize, arrival: SystemTime) -> Option<f64> {
        Some(ms_between(arrival, self.sent.keyframe_sent_at(index)?))
    }
}

/// Latencies of one stream's items, as raw ms values.
#[derive(Default)]
pub struct StreamLatencies {
    /// Keyframe fully sent by the load → its thumbnail at the subscriber.
    pub thumbnail: Vec<f64>,
    /// Keyframe captured by the server → its thumbnail at the subscriber.
    pub thumbnail_from_capture: Vec<f64>,
    /// GOP fully sent (the next keyframe fully sent, which is what closes
    /// a GOP) → its replay segment at the subscriber.
    pub replay_segment: Vec<f64>,
}

/// Latencies of items that arrived in `window`.
pub fn stream_latencies(
    media: &Media,
    sent: &PublisherStats,
    thumbnails: &[Arrival],
    replay: &[Arrival],
    window: (SystemTime, SystemTime),
) -> StreamLatencies {
    let mut out = StreamLatencies::default();
    let Some(clock) = KeyframeClock::anchor(media, sent, thumbnails) else {
        return out;
    };
    let inside = |a: &&Arrival| a.at >= window.0 && a.at <= window.1;
    for thumb in thumbnails.iter().filter(inside) {
        if let Some(ms) = clock
            .keyframe(thumb.pts)
            .and_then(|k| clock.since_sent(k, thumb.at))
        {
            out.thumbnail.push(ms);
        }
        if let Some(captured) = thumb.captured {
            out.thumbnail_from_capture
                .push(ms_between(thumb.at, captured));
        }
    }
    for segment in replay.iter().filter(inside) {
        if let Some(ms) = clock
            .keyframe(segment.pts)
            .and_then(|k| clock.since_sent(k + 1, segment.at))
        {
            out.replay_segment.push(ms);
        }
    }
    out
}

/// Sequence numbers missing between consecutive arrivals, plus what the
/// server said was skipped.
pub fn gaps(arrivals: &[Arrival]) -> u64 {
    let jumps: u64 = arrivals
        .windows(2)
        .map(|w| w[1].sequence.saturating_sub(w[0].sequence + 1))
        .sum();
    jumps + arrivals.iter().map(|a| a.skipped).sum::<u64>()
}

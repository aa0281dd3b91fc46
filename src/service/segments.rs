//! Replay segments, as HLS and `SubscribeReplay` send them: one GOP as
//! MPEG-TS, or as fragmented MP4 (init segment and fragment). Made on the
//! bulk job lane (a spilled GOP is read back from disk there too), once
//! per GOP and format: the GOP keeps what was made while it is in memory.
//! Low-latency parts (a few frames each) are muxed in place, once.

use std::sync::Arc;

use bytes::Bytes;

use super::Services;
use crate::error::Result;
use crate::features::replay::buffer::Gop;
use crate::features::replay::parts::{Part, PartedGop};
use crate::features::replay::segment;
use crate::features::JobLane;

/// The GOP as MPEG-TS.
pub async fn mpeg_ts(services: &Services, gop: &Arc<Gop>) -> Result<Bytes> {
    if let Some(made) = gop.made_mpeg_ts() {
        return Ok(made);
    }
    let gop = Arc::clone(gop);
    services
        .features
        .run_job(JobLane::Bulk, move || segment::mpeg_ts(&gop))
        .await
}

/// The GOP as fragmented MP4: (init segment, fragment).
pub async fn fmp4(services: &Services, gop: &Arc<Gop>) -> Result<(Bytes, Bytes)> {
    if let Some(made) = gop.made_fmp4() {
        return Ok(made);
    }
    let gop = Arc::clone(gop);
    services
        .features
        .run_job(JobLane::Bulk, move || segment::fmp4(&gop))
        .await
}

/// Part `index` of `gop` as an fMP4 fragment (small: made in place, once).
pub fn part(gop: &PartedGop, part: &Part, index: usize) -> Result<Bytes> {
    Ok(segment::part_fmp4(gop, part, index)?)
}

/// The init segment of the tracks of an open GOP's parts.
pub fn parts_init(gop: &PartedGop) -> Result<Bytes> {
    Ok(segment::init_fmp4(&gop.keyframe, gop.audio.as_ref())?)
}

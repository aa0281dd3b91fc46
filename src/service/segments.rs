//! Replay segments, as HLS and `SubscribeReplay` send them: one GOP as
//! MPEG-TS, or as fragmented MP4 (init segment and fragment). Made on the
//! bulk job lane (a spilled GOP is read back from disk there too), once
//! per GOP and format: the GOP keeps what was made while it is in memory.

use std::sync::Arc;

use bytes::Bytes;

use super::Services;
use crate::error::Result;
use crate::features::replay::buffer::Gop;
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

//! Storyboards of a stream's replay window: the tiles its slots still
//! lack are made (each a keyframe decoded and scaled, on the bulk job lane,
//! as many at once as the lane has slots; one request at a time per
//! stream makes them, so each is made once), then the WebVTT or a sheet
//! is answered from what the stream keeps
//! ([`crate::features::storyboard`]).

use std::sync::Arc;

use bytes::Bytes;

use super::Services;
use crate::error::{Error, Result};
use crate::features::replay::buffer::Gop;
use crate::features::storyboard::{Tile, Wanted};
use crate::features::{JobLane, StreamOutputs};
use crate::media::{MediaError, MediaResult};
use crate::options::ImageFormat;
use crate::streams::LiveStream;

/// The WebVTT of the stream's storyboard; `sheet_url` names a sheet.
pub async fn vtt(
    services: &Services,
    live: &Arc<LiveStream>,
    sheet_url: impl Fn(i64) -> String,
) -> Result<String> {
    let (outputs, window) = filled(services, live).await?;
    let first = window.first().map_or(0, |g| g.start_ms);
    let end = window.last().map_or(0, |g| g.end_ms);
    let origin = live
        .session_stats()
        .map(|s| s.start_ms())
        .filter(|&start| start > 0 && start <= first)
        .unwrap_or(first);
    Ok(outputs.storyboard.vtt(end, origin, sheet_url))
}

/// Sheet `n` of the stream's storyboard, as a JPEG.
pub async fn sheet(services: &Services, live: &Arc<LiveStream>, n: i64) -> Result<Bytes> {
    let (outputs, _) = filled(services, live).await?;
    let composed = services
        .features
        .run_job(JobLane::Bulk, move || outputs.storyboard.sheet(n))
        .await?;
    composed.ok_or_else(|| Error::NotFound {
        kind: "storyboard sheet",
        name: n.to_string(),
    })
}

/// The stream's outputs and replay window, once every slot of the window
/// has its tile.
async fn filled(
    services: &Services,
    live: &Arc<LiveStream>,
) -> Result<(Arc<StreamOutputs>, Vec<Arc<Gop>>)> {
    let outputs = services.features.outputs(&live.stream_ref)?;
    let window = outputs
        .replay
        .range(std::time::Duration::ZERO, std::time::Duration::MAX);
    if window.is_empty() {
        return Err(Error::NotLive {
            stream_id: live.stream_ref.stream_id.clone(),
            what: "the replay buffer is empty (is replay enabled and the stream live?)",
        });
    }
    let storyboard = &outputs.storyboard;
    let _making = storyboard.making.lock().await;
    let width = storyboard.layout().tile_width;
    let wanted = storyboard.refresh(&window);
    let made = futures::future::join_all(wanted.into_iter().map(|Wanted { slot, gop }| {
        let job = services
            .features
            .run_job(JobLane::Bulk, move || make_tile(&gop, width));
        async move { (slot, job.await) }
    }))
    .await;
    for (slot, tile) in made {
        match tile {
            Ok(tile) => storyboard.insert(slot, tile),
            // A GOP that cannot be decoded leaves a hole, not an error.
            Err(e) => tracing::debug!(slot, error = %e, "no storyboard tile"),
        }
    }
    drop(_making);
    Ok((outputs, window))
}

/// The tile of `gop`: its keyframe, `width` pixels wide.
fn make_tile(gop: &Gop, width: u32) -> MediaResult<Tile> {
    let units = gop.units().map_err(MediaError::io("reading replay"))?;
    let keyframe = units
        .iter()
        .find(|u| u.codec.is_video() && u.keyframe)
        .ok_or_else(|| MediaError::Unsupported("a GOP without a keyframe".into()))?;
    let still =
        crate::features::still_makers::encode(keyframe, Some(width), None, ImageFormat::Jpeg)?;
    Ok(Tile {
        gop: gop.sequence,
        start_ms: gop.start_ms,
        width: still.width,
        height: still.height,
        jpeg: still.data,
    })
}

//! Replay clips of an organization: made from the replay buffer,
//! catalogued, found, their files, and deletion.

use std::path::PathBuf;
use std::sync::Arc;

use super::media::Media;
use super::Services;
use crate::error::{Error, Result};
use bytes::Bytes;

use crate::features::replay::clips::{self, ClipLength, ClipStart, Cut};
use crate::ids::StreamRef;
use crate::proto::v1 as pb;
use crate::proto::{timestamp_from_millis, to_duration};
use crate::registry::cluster::Fence;
use crate::registry::ClipRecord;
use crate::streams::LiveStream;
use crate::validate;
use crate::webhooks::events;
use std::time::Duration;

/// The longest clip made in memory for a URL.
pub const LONGEST_IN_MEMORY: Duration = Duration::from_secs(600);

/// A replay clip of the organization's.
pub async fn find(services: &Services, org_id: &str, clip_id: &str) -> Result<ClipRecord> {
    validate::id("clip_id", clip_id)?;
    services
        .registry
        .clip(org_id, clip_id)
        .await?
        .ok_or_else(|| Error::NotFound {
            kind: "replay clip",
            name: clip_id.to_string(),
        })
}

/// Where a clip's file is.
pub fn file(services: &Services, clip: &ClipRecord) -> PathBuf {
    services
        .features
        .data()
        .clips_dir(&StreamRef::new(&clip.organization_id, &clip.stream_id))
        .join(&clip.file_name)
}

/// A clip's bytes, wherever they are.
pub async fn media(services: &Services, clip: &ClipRecord) -> Result<Media> {
    match (&services.objects, clip.uploaded) {
        (Some(objects), true) => Ok(Media::pieces(
            objects.clone(),
            vec![(objects.clip(clip), clip.size_bytes)],
        )),
        _ => Media::file(file(services, clip)).await,
    }
}

/// Cuts a clip of `duration_seconds` from `start` out of the stream's
/// replay buffer (at keyframes, remuxed; or to the frame until an end
/// time) and catalogues it.
pub async fn create(
    services: &Services,
    live: &Arc<LiveStream>,
    start: ClipStart,
    length: ClipLength,
    title: String,
) -> Result<ClipRecord> {
    validate::name("title", &title)?;
    let cut = clips::cut(&services.features, &live.stream_ref, start, length)?;
    // Cut from this node's buffer: fenced by the session that filled it.
    let writer = live.session_stats().map(|s| s.fence().clone());
    catalogue(services, &live.stream_ref, cut, title, writer).await
}

/// The MP4 of the replay window from `start_ms` until just before
/// `end_ms` (wall-clock), to the frame, made in memory and not kept.
pub async fn replay_bytes(
    services: &Services,
    live: &Arc<LiveStream>,
    start_ms: i64,
    end_ms: i64,
) -> Result<Bytes> {
    check_in_memory_length(start_ms, end_ms)?;
    let cut = clips::cut(
        &services.features,
        &live.stream_ref,
        ClipStart::Time(start_ms),
        ClipLength::Until(end_ms),
    )?;
    clips::bytes(&services.features, cut).await
}

/// A clip made in memory runs at most [`LONGEST_IN_MEMORY`].
pub(super) fn check_in_memory_length(start_ms: i64, end_ms: i64) -> Result<()> {
    if end_ms.saturating_sub(start_ms) > LONGEST_IN_MEMORY.as_millis() as i64 {
        return Err(Error::invalid(
            "end",
            format!(
                "a clip URL runs at most {} s (CreateReplayClip and CreateSessionClip make longer ones)",
                LONGEST_IN_MEMORY.as_secs()
            ),
        ));
    }
    Ok(())
}

/// Writes `cut` as a clip of `stream`, puts the file in object storage
/// (before the clip is listed; if the store cannot take it now, the clip
/// is served from this node's disk) and catalogues it; `writer` fences
/// the catalogue write.
pub(super) async fn catalogue(
    services: &Services,
    stream: &StreamRef,
    cut: Cut,
    title: String,
    writer: Option<Fence>,
) -> Result<ClipRecord> {
    let usage = services.features.usage().of(&stream.organization_id);
    usage.check_stored()?;
    let started = std::time::Instant::now();
    let mut record = clips::save(&services.features, stream, cut, title).await?;
    // Counted at once: the next refresh counts it from the catalogue.
    usage.add_catalogued(record.size_bytes);
    if let Some(objects) = &services.objects {
        let path = file(services, &record);
        match objects.upload_file(&objects.clip(&record), &path).await {
            Ok(()) => {
                record.uploaded = true;
                let _ = tokio::fs::remove_file(&path).await;
            }
            Err(e) => {
                tracing::error!(clip = %record.id, error = %e, "replay clip kept on local disk: object storage failed");
            }
        }
    }
    let event = events::replay_clip_ready(&record.organization_id, &to_proto(&record));
    if let Err(e) = services
        .registry
        .put_clip(&record, writer.as_ref(), Some(&event))
        .await
    {
        if let (Some(objects), true) = (&services.objects, record.uploaded) {
            let _ = objects.delete(&objects.clip(&record)).await;
        }
        let _ = tokio::fs::remove_file(file(services, &record)).await;
        return Err(e);
    }
    tracing::info!(
        stream = %stream,
        clip = %record.id,
        bytes = record.size_bytes,
        media_ms = record.duration_ns / 1_000_000,
        took_ms = started.elapsed().as_secs_f64() * 1000.0,
        "replay clip created"
    );
    Ok(record)
}

/// A clip as the API shows it.
pub fn to_proto(clip: &ClipRecord) -> pb::ReplayClip {
    pb::ReplayClip {
        id: clip.id.clone(),
        stream_id: clip.stream_id.clone(),
        start_time: Some(timestamp_from_millis(clip.start_time_ms)),
        duration: Some(to_duration(Duration::from_nanos(clip.duration_ns))),
        size_bytes: clip.size_bytes,
        create_time: Some(timestamp_from_millis(clip.create_time_ms)),
        title: clip.title.clone(),
        start_pts: Some(to_duration(Duration::from_nanos(clip.start_pts_ns))),
    }
}

/// Deletes a clip and its file.
pub async fn delete(services: &Services, org_id: &str, clip_id: &str) -> Result<()> {
    let clip = find(services, org_id, clip_id).await?;
    services.registry.delete_clip(&clip).await?;
    if let (Some(objects), true) = (&services.objects, clip.uploaded) {
        objects.delete(&objects.clip(&clip)).await?;
    }
    let _ = std::fs::remove_file(file(services, &clip));
    tracing::info!(clip = %clip.id, "replay clip deleted");
    Ok(())
}

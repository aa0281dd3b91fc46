//! Recordings of an organization: found by id or by publishing session
//! (through the registry's session index), their files, and deletion.

use std::path::PathBuf;

use super::media::Media;
use super::Services;
use crate::container::fmp4;
use crate::error::{Error, Result};
use crate::features::JobLane;
use crate::media::MediaError;
use crate::registry::{RecordingRecord, RecordingState};
use crate::validate;

fn not_found(kind: &'static str, id: &str) -> Error {
    Error::NotFound {
        kind,
        name: id.to_string(),
    }
}

/// A recording of the organization's.
pub async fn find(
    services: &Services,
    org_id: &str,
    recording_id: &str,
) -> Result<RecordingRecord> {
    validate::id("recording_id", recording_id)?;
    services
        .registry
        .recording(org_id, recording_id)
        .await?
        .ok_or_else(|| not_found("recording", recording_id))
}

/// The recordings of one publishing session of the organization's stream,
/// oldest first; `NOT_FOUND` when there are none.
pub async fn of_session(
    services: &Services,
    org_id: &str,
    stream_id: &str,
    session_id: &str,
) -> Result<Vec<RecordingRecord>> {
    validate::stream_id("stream_id", stream_id)?;
    validate::id("session_id", session_id)?;
    let found = services
        .registry
        .session_recordings(org_id, stream_id, session_id)
        .await?;
    if found.is_empty() {
        return Err(not_found("session with recordings", session_id));
    }
    Ok(found)
}

/// Where a recording's file is on this node (its spool, once it is in
/// object storage).
pub fn file(services: &Services, record: &RecordingRecord) -> PathBuf {
    services.features.recordings().path(record)
}

/// A recording's bytes, wherever they are.
pub async fn media(services: &Services, record: &RecordingRecord) -> Result<Media> {
    match (&services.objects, record.uploaded) {
        (Some(objects), true) => {
            let parts = services.registry.recording_parts(&record.id).await?;
            Ok(Media::objects(objects.clone(), record.clone(), parts))
        }
        _ => Media::file(file(services, record)).await,
    }
}

/// Deletes a finished recording and its file.
pub async fn delete(services: &Services, org_id: &str, recording_id: &str) -> Result<()> {
    let record = find(services, org_id, recording_id).await?;
    if record.state == RecordingState::Recording {
        return Err(Error::invalid(
            "recording_id",
            "is still being recorded; delete it once it is complete",
        ));
    }
    let path = file(services, &record);
    let parts = services.registry.recording_parts(&record.id).await?;
    services.registry.delete_recording(&record).await?;
    if let Some(objects) = &services.objects {
        for part in &parts {
            objects
                .delete(&objects.recording_part(&record, part.seq))
                .await?;
        }
    }
    if let Err(e) = std::fs::remove_file(&path) {
        if parts.is_empty() {
            tracing::warn!(recording = %record.id, error = %e, "recording file already gone");
        }
    }
    tracing::info!(recording = %record.id, "recording deleted");
    Ok(())
}

/// A finished recording with where its media starts in the file (the
/// length of its `ftyp` + `moov`), for playlists that read files by byte
/// range.
pub struct Playable {
    pub record: RecordingRecord,
    pub init_length: u64,
}

/// The finished recordings of a session that hold media, with their
/// header lengths (read from the files on the bulk job lane), and whether
/// the session is still recording.
pub async fn playable_of_session(
    services: &Services,
    org_id: &str,
    stream_id: &str,
    session_id: &str,
) -> Result<(Vec<Playable>, bool)> {
    let records = of_session(services, org_id, stream_id, session_id).await?;
    let recording = records.iter().any(|r| r.state == RecordingState::Recording);
    let done: Vec<RecordingRecord> = records
        .into_iter()
        .filter(|r| {
            matches!(
                r.state,
                RecordingState::Complete | RecordingState::Recovered
            )
        })
        .collect();
    // In object storage the init segment is the first part; on disk the
    // file's boxes say where it ends (read on the bulk job lane).
    let mut playable = Vec::with_capacity(done.len());
    let mut local = Vec::new();
    for record in done {
        if services.objects.is_some() && record.uploaded {
            let parts = services.registry.recording_parts(&record.id).await?;
            if let Some(init) = parts.first().filter(|_| parts.len() > 1) {
                playable.push(Playable {
                    init_length: init.size,
                    record,
                });
            }
        } else {
            let path = file(services, &record);
            local.push((record, path));
        }
    }
    let from_files = services
        .features
        .run_job(JobLane::Bulk, move || {
            Ok::<_, MediaError>(
                local
                    .into_iter()
                    .filter_map(|(record, path)| {
                        let init_length = fmp4::init_segment_length(&path).ok()?;
                        (record.size_bytes > init_length).then_some(Playable {
                            record,
                            init_length,
                        })
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .await?;
    playable.extend(from_files);
    playable.sort_by(|a, b| a.record.id.cmp(&b.record.id));
    Ok((playable, recording))
}

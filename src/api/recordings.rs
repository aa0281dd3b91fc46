//! The recording RPCs of `LiveProcessing`: the catalogue of a stream's VOD
//! files, resumable downloads, deletion.

use super::{files, ApiState};
use crate::error::{Error, Result};
use crate::features::recording::to_proto;
use crate::proto::v1 as pb;
use crate::registry::{RecordingRecord, RecordingState};
use crate::validate;

fn not_found(id: &str) -> Error {
    Error::NotFound {
        kind: "recording",
        name: id.to_string(),
    }
}

/// A recording of the organization's.
pub fn find(state: &ApiState, org_id: &str, recording_id: &str) -> Result<RecordingRecord> {
    validate::id("recording_id", recording_id)?;
    state
        .registry
        .recording(org_id, recording_id)?
        .ok_or_else(|| not_found(recording_id))
}

/// The recordings of one publishing session of the organization's
/// stream, oldest first; `NOT_FOUND` when there are none.
pub fn of_session(
    state: &ApiState,
    org_id: &str,
    stream_id: &str,
    session_id: &str,
) -> Result<Vec<RecordingRecord>> {
    validate::id("session_id", session_id)?;
    let mut found = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = state
            .registry
            .list_recordings(org_id, stream_id, &page_token, 1000)?;
        found.extend(
            page.items
                .into_iter()
                .filter(|r| r.session_id == session_id),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    if found.is_empty() {
        return Err(Error::NotFound {
            kind: "session with recordings",
            name: session_id.to_string(),
        });
    }
    Ok(found)
}

pub fn list(
    state: &ApiState,
    org_id: &str,
    req: &pb::ListRecordingsRequest,
) -> Result<pb::ListRecordingsResponse> {
    let page_size = validate::page_size("page_size", req.page_size)?;
    let page =
        state
            .registry
            .list_recordings(org_id, &req.stream_id, &req.page_token, page_size)?;
    let store = &state.features.recordings();
    Ok(pb::ListRecordingsResponse {
        recordings: page.items.iter().map(|r| to_proto(r, store)).collect(),
        next_page_token: page.next_page_token,
    })
}

pub fn get(state: &ApiState, org_id: &str, recording_id: &str) -> Result<pb::Recording> {
    let record = find(state, org_id, recording_id)?;
    Ok(to_proto(&record, state.features.recordings()))
}

pub fn delete(state: &ApiState, org_id: &str, recording_id: &str) -> Result<()> {
    let record = find(state, org_id, recording_id)?;
    if record.state == RecordingState::Recording {
        return Err(Error::invalid(
            "recording_id",
            "is still being recorded; delete it once it is complete",
        ));
    }
    let path = state.features.recordings().path(&record);
    state.registry.delete_recording(&record)?;
    if let Err(e) = std::fs::remove_file(&path) {
        tracing::warn!(recording = %record.id, error = %e, "recording file already gone");
    }
    tracing::info!(recording = %record.id, "recording deleted");
    Ok(())
}

/// Streams the file from `offset`; a file still being recorded is sent as
/// far as it is written.
pub async fn download(
    state: &ApiState,
    org_id: &str,
    req: &pb::DownloadRecordingRequest,
) -> Result<files::Chunks> {
    let record = find(state, org_id, &req.recording_id)?;
    files::stream(state.features.recordings().path(&record), req.offset).await
}

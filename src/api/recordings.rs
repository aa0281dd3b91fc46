//! The recording RPCs of `LiveProcessing`: the catalogue of a stream's VOD
//! files, resumable downloads (finding, files and deletion are the
//! service layer's: [`crate::service::recordings`]).

use super::{files, Services};
use crate::error::Result;
use crate::features::recording::to_proto;
use crate::proto::v1 as pb;
use crate::service::recordings;
use crate::validate;

pub async fn list(
    state: &Services,
    org_id: &str,
    req: &pb::ListRecordingsRequest,
) -> Result<pb::ListRecordingsResponse> {
    let page_size = validate::page_size("page_size", req.page_size)?;
    let page = state
        .registry
        .list_recordings(org_id, &req.stream_id, &req.page_token, page_size)
        .await?;
    let store = &state.features.recordings();
    Ok(pb::ListRecordingsResponse {
        recordings: page.items.iter().map(|r| to_proto(r, store)).collect(),
        next_page_token: page.next_page_token,
    })
}

pub async fn get(state: &Services, org_id: &str, recording_id: &str) -> Result<pb::Recording> {
    let record = recordings::find(state, org_id, recording_id).await?;
    Ok(to_proto(&record, state.features.recordings()))
}

/// Streams the file from `offset`; a file still being recorded is sent as
/// far as it is written.
pub async fn download(
    state: &Services,
    org_id: &str,
    req: &pb::DownloadRecordingRequest,
) -> Result<files::Chunks> {
    let record = recordings::find(state, org_id, &req.recording_id).await?;
    files::stream(recordings::media(state, &record).await?, req.offset).await
}

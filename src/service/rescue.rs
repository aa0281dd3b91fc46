//! Recordings whose writer is gone, finished from object storage by
//! another node.
//!
//! A recording is uploaded part by part as it is written
//! ([`super::uploads`]); what its node had not uploaded when it died is
//! lost, and what it had is the recording. Some node must then finish it:
//! read its duration from the init segment and the last uploaded fragment,
//! rewrite the init segment with it, and catalogue it RECOVERED. Which
//! node, and when:
//! - **At start** ([`recover_lost`]), this node's own recordings (by the
//!   node id) whose files are not on its disk: the data dir was lost with
//!   the machine.
//! - **On takeover** ([`Rescuer::run`]): this node took a stream's lease
//!   that another node let lapse ([`crate::cluster::Takeover`]); that
//!   session's recordings are finished at once, before the old node can
//!   write more of them.
//! - **Lost nodes**: every [`RESCUE_EVERY`], recordings whose writer's
//!   heartbeat is older than [`LOST_AFTER`] (a pushed stream whose
//!   publisher did not come back, a closed recording that was still
//!   uploading). Only while this node has itself reached the registry for
//!   longer than that, so that a database outage, after which every node
//!   looks lost for a moment, takes nobody's work.
//!
//! Each recording is first taken over in the registry (its writer becomes
//! this node: one compare-and-set, so that exactly one node finishes it,
//! and the old writer's later writes are refused), then finished.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cluster::heartbeat::{HEARTBEAT_EVERY, LOST_AFTER};
use crate::cluster::{Reachability, Takeover};
use crate::container::fmp4;
use crate::error::{Error, Result};
use crate::features::recording::RecordingStore;
use crate::objects::ObjectStorage;
use crate::registry::cluster::Fence;
use crate::registry::{RecordingRecord, RecordingState, Registry};

/// How often recordings of lost nodes are looked for.
pub const RESCUE_EVERY: Duration = Duration::from_secs(5);

/// Finishes recordings that other nodes left.
pub struct Rescuer {
    pub registry: Arc<Registry>,
    pub objects: ObjectStorage,
    /// This node.
    pub node_id: String,
    pub reachability: Arc<Reachability>,
}

impl Rescuer {
    /// Finishes the sessions taken over by this node as they come, and
    /// those of lost nodes every [`RESCUE_EVERY`], until `stop`.
    pub async fn run(
        self,
        mut takeovers: mpsc::UnboundedReceiver<Takeover>,
        stop: CancellationToken,
    ) {
        loop {
            tokio::select! {
                taken = takeovers.recv() => match taken {
                    Some(taken) => self.finish_session(&taken).await,
                    None => return,
                },
                _ = tokio::time::sleep(RESCUE_EVERY) => self.finish_lost_nodes().await,
                _ = stop.cancelled() => return,
            }
        }
    }

    /// Finishes what the session taken over left unfinished.
    async fn finish_session(&self, taken: &Takeover) {
        let left = match self.registry.recordings_to_upload().await {
            Ok(left) => left,
            Err(e) => {
                tracing::error!(stream = %taken.stream, error = %e, "cannot list the recordings of a session taken over; the lost-node check will finish them");
                return;
            }
        };
        for record in left.into_iter().filter(|r| {
            r.writer == taken.from
                && r.organization_id == taken.stream.organization_id
                && r.stream_id == taken.stream.stream_id
        }) {
            self.finish(record, &taken.to).await;
        }
    }

    /// Finishes the recordings of nodes that stopped heartbeating.
    async fn finish_lost_nodes(&self) {
        if !self.reachability.steady_for(LOST_AFTER + HEARTBEAT_EVERY) {
            return;
        }
        let (nodes, left) = match tokio::try_join!(
            self.registry.list_nodes(),
            self.registry.recordings_to_upload()
        ) {
            Ok(found) => found,
            Err(e) => {
                tracing::debug!(error = %e, "cannot look for recordings of lost nodes");
                return;
            }
        };
        let alive: HashSet<String> = nodes
            .into_iter()
            .filter(|n| n.heartbeat_age_ms < LOST_AFTER.as_millis() as i64)
            .map(|n| n.id)
            .collect();
        for record in left {
            if record.writer.is_of(&self.node_id) || alive.contains(&record.writer.node_id) {
                continue;
            }
            let to = Fence {
                node_id: self.node_id.clone(),
                epoch: record.writer.epoch,
            };
            self.finish(record, &to).await;
        }
    }

    /// Takes `record` over for `to` and finishes it.
    async fn finish(&self, record: RecordingRecord, to: &Fence) {
        let (id, from) = (record.id.clone(), record.writer.node_id.clone());
        match take_over_and_finish(&self.registry, &self.objects, record, to).await {
            Ok(true) => {
                tracing::warn!(recording = %id, from_node = %from, "finished a recording its node left unfinished");
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(recording = %id, error = %e, "cannot finish a recording from object storage")
            }
        }
    }
}

/// At start, before the local recovery: this node's recordings not
/// wholly uploaded (being written, or closed just before) whose files are
/// not on its disk are finished from what object storage has of them.
/// Returns how many were.
pub async fn recover_lost(
    registry: &Registry,
    objects: &ObjectStorage,
    recordings: &RecordingStore,
    node_id: &str,
) -> Result<usize> {
    let mut recovered = 0;
    for record in registry.recordings_to_upload().await? {
        if !record.writer.is_of(node_id) {
            continue;
        }
        if tokio::fs::try_exists(recordings.path(&record))
            .await
            .unwrap_or(false)
        {
            continue;
        }
        let (id, to) = (record.id.clone(), record.writer.clone());
        match take_over_and_finish(registry, objects, record, &to).await {
            Ok(true) => recovered += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::error!(recording = %id, error = %e, "cannot recover a recording from object storage")
            }
        }
    }
    Ok(recovered)
}

/// Makes `to` the writer of `record` (unless another node was first) and
/// finishes it from what was uploaded; false when it was not this node's
/// to finish, or nothing was uploaded.
async fn take_over_and_finish(
    registry: &Registry,
    objects: &ObjectStorage,
    mut record: RecordingRecord,
    to: &Fence,
) -> Result<bool> {
    if !registry.take_over_recording(&record, to).await? {
        return Ok(false);
    }
    record.writer = to.clone();
    finish_from_objects(registry, objects, record).await
}

/// Finishes a recording whose file is nowhere: what was uploaded is the
/// recording. Its duration is read from the init segment and the last
/// uploaded fragment, the init segment is rewritten with it, and the
/// recording is catalogued RECOVERED. Returns false when nothing was
/// uploaded.
async fn finish_from_objects(
    registry: &Registry,
    objects: &ObjectStorage,
    mut record: RecordingRecord,
) -> Result<bool> {
    let parts = registry.recording_parts(&record.id).await?;
    let (Some(init), Some(last)) = (parts.first(), parts.last()) else {
        return Ok(false);
    };
    if last.seq == 0 {
        return Ok(false);
    }
    let read = |seq: u32, size: u64| {
        let key = objects.recording_part(&record, seq);
        async move {
            let chunks: Vec<Bytes> = objects
                .read(&key, 0..size)
                .await?
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<_>>()?;
            Ok::<_, Error>(chunks.concat())
        }
    };
    let init_bytes = read(0, init.size).await?;
    let last_bytes = read(last.seq, last.size).await?;
    let duration = fmp4::duration_of(&init_bytes, &last_bytes)?;
    let patched = fmp4::init_with_duration(&init_bytes, duration)?;
    objects
        .put(&objects.recording_part(&record, 0), Bytes::from(patched))
        .await?;
    record.duration_ns = duration.as_nanos() as u64;
    record.end_time_ms = record.start_time_ms + duration.as_millis() as i64;
    record.size_bytes = last.offset + last.size;
    record.state = RecordingState::Recovered;
    record.uploaded = true;
    let event = crate::features::recording::ready_event(&record);
    registry.put_recording(&record, event.as_ref()).await?;
    tracing::warn!(
        recording = %record.id,
        parts = parts.len(),
        duration_ms = duration.as_millis() as u64,
        "recovered a recording from object storage (its node is gone)"
    );
    Ok(true)
}

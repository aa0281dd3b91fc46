//! Start-up recovery: recordings still marked RECORDING were being written
//! when the server died. Their files hold every fragment completed before
//! that. Each is finalized and catalogued RECOVERED:
//! - a file of liveproc's own fragmented MP4 writer is repaired in place
//!   ([`fmp4::repair`]: a partly written last fragment is cut off and the
//!   duration written), reading only box headers and the last fragment's
//!   index;
//! - any other (written by `mp4mux` in earlier versions) is remuxed into a
//!   seekable faststart MP4 (`filesrc ! qtdemux ! mp4mux faststart=true`,
//!   no re-encode) that replaces the original atomically.
//!
//! If both fail the original stays as it is: files are never deleted.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;

use super::RecordingStore;
use crate::container::fmp4;
use crate::gst_util::{element, play_to_end};
use crate::media::{MediaError, MediaResult};
use crate::registry::RecordingState;

/// How long finalizing one file may take.
const REMUX_TIMEOUT: Duration = Duration::from_secs(120);

/// Catalogues every unfinished recording of this node's (`node_id`; in a
/// cluster the others' are theirs); returns how many. Files are repaired
/// as blocking work, one at a time.
pub async fn recover(store: &RecordingStore, node_id: &str) -> usize {
    let unfinished = match store.registry().unfinished_recordings().await {
        Ok(list) => list
            .into_iter()
            .filter(|r| r.writer.is_of(node_id))
            .collect::<Vec<_>>(),
        Err(e) => {
            tracing::error!(error = %e, "cannot list unfinished recordings");
            return 0;
        }
    };
    let count = unfinished.len();
    for mut record in unfinished {
        let path = store.path(&record);
        let repair = path.clone();
        let finalized = tokio::task::spawn_blocking(move || finalize(&repair))
            .await
            .unwrap_or_else(|e| Err(MediaError::Malformed(format!("the repair stopped: {e}"))));
        match finalized {
            Ok(duration) => {
                record.duration_ns = duration.as_nanos() as u64;
                record.end_time_ms = record.start_time_ms + duration.as_millis() as i64;
            }
            Err(e) => {
                tracing::warn!(recording = %record.id, error = %e, "cannot finalize; keeping the file as written");
            }
        }
        record.size_bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
        record.state = RecordingState::Recovered;
        tracing::warn!(
            recording = %record.id,
            stream = %record.stream_id,
            bytes = record.size_bytes,
            duration_ms = record.duration_ns / 1_000_000,
            "recovered a recording left unfinished by a crash"
        );
        let event = store
            .ready_on_close()
            .then(|| super::ready_event(&record))
            .flatten();
        if let Err(e) = store
            .registry()
            .put_recording(&record, event.as_ref())
            .await
        {
            tracing::error!(recording = %record.id, error = %e, "cannot catalogue a recovered recording");
        }
    }
    count
}

/// Finalizes `path` in place; returns its duration.
pub fn finalize(path: &Path) -> MediaResult<Duration> {
    match fmp4::repair(path) {
        Ok(repaired) => {
            if repaired.truncated > 0 {
                tracing::info!(
                    path = %path.display(),
                    bytes = repaired.truncated,
                    "cut off a partly written last fragment"
                );
            }
            Ok(repaired.duration)
        }
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "not a direct fMP4 file; remuxing");
            remux_in_place(path)
        }
    }
}

/// Remuxes `path` into a faststart MP4 in place; returns its duration.
fn remux_in_place(path: &Path) -> MediaResult<Duration> {
    let tmp = path.with_extension("finalizing.mp4");
    let result = remux(path, &tmp);
    match result {
        Ok(duration) if duration > Duration::ZERO => {
            std::fs::rename(&tmp, path)?;
            Ok(duration)
        }
        Ok(_) => {
            let _ = std::fs::remove_file(&tmp);
            Err(MediaError::Malformed("no media in the file".into()))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn remux(src: &Path, dst: &Path) -> MediaResult<Duration> {
    let pipeline = gst::Pipeline::new();
    let filesrc = element("filesrc")?;
    filesrc.set_property("location", src.to_string_lossy().as_ref());
    let demux = element("qtdemux")?;
    let mux = gst::ElementFactory::make("mp4mux")
        .property("faststart", true)
        .build()
        .map_err(|_| MediaError::MissingElement("mp4mux".into()))?;
    let filesink = element("filesink")?;
    filesink.set_property("location", dst.to_string_lossy().as_ref());
    pipeline.add_many([&filesrc, &demux, &mux, &filesink])?;
    filesrc.link(&demux)?;
    mux.link(&filesink)?;

    // The end of the media: the largest PTS + duration reaching the muxer.
    let end = Arc::new(Mutex::new(Duration::ZERO));
    let (pipeline_weak, mux_weak) = (pipeline.downgrade(), mux.downgrade());
    let end_for_pads = Arc::clone(&end);
    demux.connect_pad_added(move |_, pad| {
        let (Some(pipeline), Some(mux)) = (pipeline_weak.upgrade(), mux_weak.upgrade()) else {
            return;
        };
        let kind = if pad.name().starts_with("video") {
            "video_%u"
        } else {
            "audio_%u"
        };
        let Ok(queue) = gst::ElementFactory::make("queue").build() else {
            return;
        };
        let _ = pipeline.add(&queue);
        let _ = queue.sync_state_with_parent();
        let (Some(qsink), Some(qsrc), Some(mux_pad)) = (
            queue.static_pad("sink"),
            queue.static_pad("src"),
            mux.request_pad_simple(kind),
        ) else {
            return;
        };
        if pad.link(&qsink).is_err() || qsrc.link(&mux_pad).is_err() {
            return;
        }
        let end = Arc::clone(&end_for_pads);
        qsrc.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(buffer) = info.buffer() {
                if let Some(pts) = buffer.pts() {
                    let stop = pts + buffer.duration().unwrap_or(gst::ClockTime::ZERO);
                    let mut end = end.lock().expect("end lock");
                    *end = (*end).max(Duration::from_nanos(stop.nseconds()));
                }
            }
            gst::PadProbeReturn::Ok
        });
    });

    play_to_end(&pipeline, REMUX_TIMEOUT)?;
    let end = *end.lock().expect("end lock");
    Ok(end)
}

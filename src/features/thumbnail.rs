//! Thumbnails: one still per `interval_seconds` of stream time, from the
//! first keyframe at or after each boundary (and the first keyframe of the
//! session). Only that keyframe is decoded; delta frames never reach a
//! decoder, and the decoder (kept between thumbnails, [`still_makers`])
//! holds nothing of the stream between them. The result goes to
//! the stream's thumbnail feed and to disk (latest only).

use std::sync::Arc;

use super::driver::Feature;
use super::periodic::Periodic;
use super::{still_makers, FeatureEngine, JobLane, StreamOutputs};
use crate::media::AccessUnit;
use crate::options::{Processing, Thumbnail as Settings};
use crate::proto::v1 as pb;
use crate::proto::{timestamp_from_millis, to_duration};
use crate::streams::LiveStream;
use crate::webhooks::{event_types, events};

pub struct Thumbnails {
    engine: Arc<FeatureEngine>,
    stream: Arc<LiveStream>,
    outputs: Arc<StreamOutputs>,
    settings: Settings,
    periodic: Periodic,
}

impl Thumbnails {
    pub fn new(
        engine: Arc<FeatureEngine>,
        stream: Arc<LiveStream>,
        outputs: Arc<StreamOutputs>,
        settings: Settings,
    ) -> Self {
        Self {
            engine,
            stream,
            outputs,
            periodic: Periodic::new(settings.interval_seconds),
            settings,
        }
    }
}

impl Feature for Thumbnails {
    type Settings = Settings;

    fn settings(processing: &Processing) -> Option<Settings> {
        processing.thumbnail
    }

    fn retune(&mut self, settings: Settings) {
        self.periodic.retune(settings.interval_seconds);
        self.settings = settings;
    }

    fn on_unit(&mut self, unit: AccessUnit) {
        let Some(pts) = unit.pts.filter(|_| unit.codec.is_video() && unit.keyframe) else {
            return;
        };
        if !self.periodic.take(pts) {
            return;
        }
        let settings = self.settings;
        let captured_ms = unit.received_ms;
        let (engine, stream, outputs) = (
            Arc::clone(&self.engine),
            Arc::clone(&self.stream),
            Arc::clone(&self.outputs),
        );
        self.periodic.run(
            &self.engine,
            JobLane::Still,
            &self.stream,
            &self.outputs,
            |o| &o.thumbnails,
            "thumbnail",
            move || still_makers::encode(&unit, settings.width, settings.height, settings.format),
            move |image| async move {
                if let Some(stats) = stream.session_stats() {
                    stats.add_thumbnail_frames_decoded(image.decoded_frames);
                }
                let thumbnail = outputs.thumbnails.publish(|sequence| pb::Thumbnail {
                    stream_id: stream.stream_ref.stream_id.clone(),
                    sequence,
                    pts: Some(to_duration(pts)),
                    capture_time: Some(timestamp_from_millis(captured_ms)),
                    width: image.width,
                    height: image.height,
                    format: settings.format.to_proto() as i32,
                    data: image.data,
                });
                tracing::debug!(stream = %stream.stream_ref, sequence = thumbnail.sequence, bytes = thumbnail.data.len(), "thumbnail");
                crate::metrics::get()
                    .thumbnail_latency
                    .observe((crate::media::now_millis() - captured_ms).max(0) as f64 / 1000.0);
                let organization_id = &stream.stream_ref.organization_id;
                engine.events().emit(organization_id, event_types::THUMBNAIL_CREATED, || {
                    events::thumbnail_created(organization_id, &thumbnail)
                });
                let stream_ref = stream.stream_ref.clone();
                let saved = tokio::task::spawn_blocking(move || {
                    engine.thumbnail_store.save(&stream_ref, &thumbnail)
                })
                .await;
                if let Ok(Err(e)) = saved {
                    tracing::warn!(stream = %stream.stream_ref, error = %e, "cannot store the latest thumbnail");
                }
            },
        );
    }

    fn on_gap(&mut self, skipped: u64) {
        tracing::warn!(stream = %self.stream.stream_ref, skipped, "thumbnails fell behind");
    }

    fn end(self) {}
}

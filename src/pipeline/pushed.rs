//! The pipeline of a pushed session (SRT, gRPC `PushMedia`, RTMP), in Rust
//! and in the session's own task: each chunk of MPEG-TS is demultiplexed
//! ([`super::ts_demux`]), or media comes demultiplexed by its protocol
//! ([`Elementary`], RTMP), and is framed into access units
//! ([`super::framer`]) as it arrives; the units go to the features'
//! broadcast directly.
//! No GStreamer pipeline, no thread, no queue between the socket and the
//! features: per stream, the work is a pass over the bytes.
//!
//! It reports what the GStreamer pipeline of pulled sources reports
//! ([`PipelineEvent`]): LIVE on the first access unit, tracks of other
//! codecs, and failure when no supported media came within
//! [`NO_MEDIA_TIMEOUT`]. Audio off the video's timeline is held back by
//! the same [`TimelineGuard`].

use std::sync::Arc;

use tokio::sync::broadcast;
use tokio::time::Instant;

use super::elementary::Elementary;
use super::framer::Framer;
use super::timeline::TimelineGuard;
use super::ts_demux::{stream_type, DemuxEvent, Pes, StreamType, TsDemux};
use super::{
    EventSink, Outcome, PipelineEvent, SessionStats, NO_MEDIA, NO_MEDIA_TIMEOUT, UNIT_BUFFER,
};
use crate::ids::StreamRef;
use crate::media::{AccessUnit, Codec};

pub struct PushedPipeline {
    stream: StreamRef,
    demux: TsDemux,
    framer: Framer,
    found: Vec<DemuxEvent>,
    framed: Vec<AccessUnit>,
    units: broadcast::Sender<AccessUnit>,
    stats: Arc<SessionStats>,
    events: EventSink,
    timeline: TimelineGuard,
    started: Instant,
    went_live: bool,
    /// Stream types already reported as not decoded.
    reported: Vec<u8>,
    /// The codecs noted in the stats.
    noted: (Option<Codec>, Option<Codec>),
}

/// The name of a PMT stream type that is not decoded, for the message.
fn stream_type_name(kind: u8) -> String {
    match stream_type(kind) {
        StreamType::Other(name) => name.to_string(),
        _ => format!("stream type {kind:#04x}"),
    }
}

impl PushedPipeline {
    /// A pipeline for a new session of `stream`, counting into `stats` and
    /// reporting to `events`.
    pub fn start(stream: &StreamRef, stats: Arc<SessionStats>, events: EventSink) -> Self {
        let (units, _) = broadcast::channel(UNIT_BUFFER);
        Self {
            stream: stream.clone(),
            demux: TsDemux::default(),
            framer: Framer::default(),
            found: Vec::new(),
            framed: Vec::new(),
            units,
            stats,
            events,
            timeline: TimelineGuard::new(stream.to_string()),
            started: Instant::now(),
            went_live: false,
            reported: Vec::new(),
            noted: (None, None),
        }
    }

    /// A handle to subscribe to access units (features that start and
    /// stop during the session).
    pub fn units(&self) -> broadcast::Sender<AccessUnit> {
        self.units.clone()
    }

    /// Access units sent that the slowest feature has not taken yet.
    pub fn backlog(&self) -> usize {
        self.units.len()
    }

    /// The counters of this session.
    pub fn stats(&self) -> &Arc<SessionStats> {
        &self.stats
    }

    /// Demultiplexes and frames `data`; the access units go out at once.
    pub fn push(&mut self, data: &[u8]) {
        let mut found = std::mem::take(&mut self.found);
        self.demux.push(data, &mut found);
        self.handle(&mut found);
        self.found = found;
    }

    fn handle(&mut self, found: &mut Vec<DemuxEvent>) {
        for event in found.drain(..) {
            match event {
                DemuxEvent::Programme {
                    video,
                    audio,
                    unsupported,
                } => self.programme(video, audio, &unsupported),
                DemuxEvent::Pes(pes) if pes.codec.is_video() => self.video(pes),
                DemuxEvent::Pes(pes) => {
                    let mut framed = std::mem::take(&mut self.framed);
                    self.framer.audio(pes, &mut framed);
                    self.report_jump();
                    for unit in framed.drain(..) {
                        self.emit(unit);
                    }
                    self.framed = framed;
                }
            }
        }
    }

    fn video(&mut self, pes: Pes) {
        let unit = self.framer.video(pes);
        self.report_jump();
        if let Some(unit) = unit {
            self.emit(unit);
        }
    }

    /// Takes one item of media already demultiplexed by its protocol
    /// (RTMP); its access units go out at once.
    pub fn push_elementary(&mut self, media: Elementary) {
        match media {
            Elementary::VideoConfig {
                codec,
                vps,
                sps,
                pps,
            } => {
                if self.framer.video_codec() != Some(codec) {
                    tracing::info!(stream = %self.stream, video = ?codec, "video track");
                    self.framer.programme(Some(codec));
                }
                self.framer.set_parameter_sets(vps, sps, pps);
            }
            Elementary::Video {
                codec,
                pts,
                dts,
                data,
            } => self.video(Pes {
                codec,
                pts: Some(pts),
                dts: Some(dts),
                data,
            }),
            Elementary::AudioConfig(format) => self.framer.set_audio_format(format),
            Elementary::Audio { pts, data } => {
                let unit = self.framer.raw_audio(pts, data);
                self.report_jump();
                if let Some(unit) = unit {
                    self.emit(unit);
                }
            }
            Elementary::Unsupported(name) => self.ignore_track(name),
        }
    }

    /// Says once that a track of an unsupported codec is ignored.
    fn ignore_track(&mut self, name: String) {
        tracing::warn!(stream = %self.stream, track = %name, "ignoring a track of an unsupported codec");
        (self.events)(PipelineEvent::TrackIgnored(format!(
            "unsupported codec {name} ignored (video must be H.264 or H.265, audio AAC)"
        )));
    }

    /// Says so when the publisher's clock jumped.
    fn report_jump(&mut self) {
        let Some(jump) = self.framer.take_jump() else {
            return;
        };
        let message = format!(
            "the publisher's clock jumped {:+.3} s at {:.3} s of the session: the media goes on at once on the session's timeline, in a new recording file",
            jump.by_ns as f64 / 1e9,
            jump.at.as_secs_f64()
        );
        tracing::warn!(stream = %self.stream, by_s = jump.by_ns as f64 / 1e9, "{message}");
        (self.events)(PipelineEvent::Discontinuity(message));
    }

    fn programme(&mut self, video: Option<Codec>, audio: Option<Codec>, unsupported: &[u8]) {
        tracing::info!(stream = %self.stream, ?video, ?audio, "programme");
        self.framer.programme(video);
        for &kind in unsupported {
            if self.reported.contains(&kind) {
                continue;
            }
            self.reported.push(kind);
            self.ignore_track(stream_type_name(kind));
        }
    }

    fn emit(&mut self, unit: AccessUnit) {
        if unit.codec.is_video() {
            self.stats.add_video_frame(unit.keyframe);
            if self.noted.0 != Some(unit.codec) {
                if let Some(format) = self.framer.picture() {
                    self.noted.0 = Some(unit.codec);
                    self.stats
                        .set_video(unit.codec.name(), format.width, format.height);
                }
            }
            if let Some(pts) = unit.pts {
                self.timeline.on_video(pts, unit.keyframe);
            }
        } else {
            self.stats.add_audio_frame();
            if self.noted.1 != Some(unit.codec) {
                self.noted.1 = Some(unit.codec);
                self.stats.set_audio(unit.codec.name());
            }
            if unit.pts.is_some_and(|pts| !self.timeline.admit_audio(pts)) {
                return;
            }
        }
        if !self.went_live {
            self.went_live = true;
            (self.events)(PipelineEvent::Live);
        }
        if self.units.receiver_count() > 0 {
            let _ = self.units.send(unit);
        }
    }

    /// Resolves, with the reason, when the session has shown no supported
    /// media within [`NO_MEDIA_TIMEOUT`] (and reports it); never once it
    /// has.
    pub async fn no_media(&self) -> String {
        if self.went_live {
            return std::future::pending().await;
        }
        tokio::time::sleep_until(self.started + NO_MEDIA_TIMEOUT).await;
        let message = format!(
            "no supported media (H.264 or H.265 video, AAC audio) within {} s",
            NO_MEDIA_TIMEOUT.as_secs()
        );
        tracing::warn!(stream = %self.stream, "{message}");
        (self.events)(PipelineEvent::Failed(message.clone()));
        message
    }

    /// Ends the session: what was still being gathered goes out.
    pub fn finish(mut self) -> Outcome {
        let mut found = std::mem::take(&mut self.found);
        self.demux.flush(&mut found);
        self.handle(&mut found);
        if self.went_live {
            Outcome::EndOfStream
        } else {
            Outcome::Failed(NO_MEDIA.to_string())
        }
    }
}

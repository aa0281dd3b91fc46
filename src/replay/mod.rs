//! Replay: an in-memory ring buffer of the newest GOPs of each stream
//! ([`buffer`]), filled by a feature that groups the session's access
//! units into GOPs; segments served to rewinding subscribers as MPEG-TS
//! ([`segment`]); and replay clips cut from it on keyframes and remuxed to
//! MP4 ([`clips`]).

pub mod buffer;
pub mod clips;
mod fmp4_boxes;
pub mod segment;
pub mod spill;
mod ts_mux;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;

use crate::options::{Processing, Replay as Settings, Span};
use crate::pipeline::AccessUnit;
use crate::processing::driver::Feature;
use crate::registry::now_millis;
use crate::streams::LiveStream;

/// The window a setting asks for (`None`: the whole session).
pub fn window(settings: &Settings) -> Option<Duration> {
    match settings.buffer {
        Span::Seconds(s) => Some(Duration::from_secs(s.into())),
        Span::EntireStream => None,
    }
}

/// Fills the stream's replay buffer with whole GOPs, and spills old ones
/// to disk with `entire_stream`.
pub struct ReplayFeature {
    stream: Arc<LiveStream>,
    /// The GOP being collected, from its keyframe.
    current: Vec<AccessUnit>,
    /// Where this session's spilled GOPs go.
    spill_dir: PathBuf,
    spills: TaskTracker,
}

impl ReplayFeature {
    pub fn new(
        stream: Arc<LiveStream>,
        settings: Settings,
        spill_root: &Path,
        spills: TaskTracker,
    ) -> Self {
        // A new session (or replay just turned on): a new timeline.
        stream.replay.clear();
        stream.replay.set_window(window(&settings));
        let spill_dir = spill_root.join(stream.replay.label());
        let _ = std::fs::remove_dir_all(&spill_dir);
        Self {
            stream,
            current: Vec::new(),
            spill_dir,
            spills,
        }
    }

    fn close_gop(&mut self, end_pts: Duration, end_ms: i64) {
        if self.current.is_empty() {
            return;
        }
        let units = std::mem::take(&mut self.current);
        let (_, spill) = self.stream.replay.push(units, end_pts, end_ms);
        if spill.is_empty() {
            return;
        }
        let (stream, dir) = (Arc::clone(&self.stream), self.spill_dir.clone());
        self.spills.spawn_blocking(move || {
            if let Err(e) = std::fs::create_dir_all(&dir) {
                tracing::error!(stream = %stream.stream_ref, error = %e, "replay: cannot create the spill folder");
                return;
            }
            for gop in spill {
                let path = dir.join(format!("{:010}.gop", gop.sequence));
                let written = gop.units().and_then(|units| spill::write(&path, &units));
                match written {
                    Ok(()) => stream.replay.spilled(&gop, path),
                    Err(e) => {
                        tracing::error!(stream = %stream.stream_ref, error = %e, "replay: cannot spill a GOP; it stays in memory");
                    }
                }
            }
        });
    }
}

impl Feature for ReplayFeature {
    type Settings = Settings;

    fn settings(processing: &Processing) -> Option<Settings> {
        processing.replay
    }

    fn retune(&mut self, settings: Settings) {
        self.stream.replay.set_window(window(&settings));
    }

    fn on_unit(&mut self, unit: AccessUnit) {
        let Some(pts) = unit.pts else { return };
        if unit.codec.is_video() && unit.keyframe {
            self.close_gop(pts, unit.received_ms);
            self.current.push(unit);
        } else if !self.current.is_empty() {
            self.current.push(unit);
        }
    }

    fn on_gap(&mut self, skipped: u64) {
        // The GOP has a hole: drop it rather than serve broken media.
        tracing::warn!(stream = %self.stream.stream_ref, skipped, "replay fell behind; dropping a GOP");
        self.current.clear();
    }

    fn end(mut self) {
        // The last GOP ends where its last video frame ends.
        let end = self
            .current
            .iter()
            .filter(|u| u.codec.is_video())
            .filter_map(|u| u.pts.map(|p| p + u.duration.unwrap_or_default()))
            .max();
        if let Some(end) = end {
            self.close_gop(end, now_millis());
        }
    }
}

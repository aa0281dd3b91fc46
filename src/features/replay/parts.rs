//! Low-latency HLS parts of a stream's newest GOPs: as the replay feature
//! gathers a GOP, it hands over each run of about [`PART_MIN`] of video
//! (and the audio that came with it) as a part, the first starting at the
//! keyframe; the GOP's last part follows when the GOP closes, just before
//! it enters the replay buffer under the same sequence number. The parts
//! are the units themselves (shared `Bytes`), muxed to fMP4 fragments only
//! when a player asks, once per part. Parts are kept for the open GOP and
//! the few before it, where a low-latency player joins; older GOPs are
//! whole segments of the replay window. A [`watch`] of the newest part
//! lets blocking playlist reloads and preload-hinted part requests wait
//! for it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use crate::media::{AccessUnit, MediaResult};

/// A part closes at the first video frame this far after its start.
pub const PART_MIN: Duration = Duration::from_millis(260);
/// The part target a playlist declares, unless a part ran longer (a
/// frame rate under 10 per second).
pub const PART_TARGET: Duration = Duration::from_millis(300);
/// Complete GOPs whose parts are kept besides the open one.
const KEPT_COMPLETE: usize = 3;

/// One part: a run of a GOP's units, video first at a frame edge.
#[derive(Debug)]
pub struct Part {
    /// From its first video frame to the next part's.
    pub duration: Duration,
    /// Starts with the GOP's keyframe.
    pub independent: bool,
    units: Vec<AccessUnit>,
    muxed: OnceLock<Bytes>,
}

impl Part {
    /// Its units, in arrival order.
    #[cfg(test)]
    pub fn units(&self) -> &[AccessUnit] {
        &self.units
    }

    /// The part as an fMP4 fragment (`moof` + `mdat`), made by `mux` on
    /// first use and kept.
    pub fn fmp4(
        &self,
        mux: impl FnOnce(&[AccessUnit]) -> MediaResult<Bytes>,
    ) -> MediaResult<Bytes> {
        if let Some(made) = self.muxed.get() {
            return Ok(made.clone());
        }
        let made = mux(&self.units)?;
        Ok(self.muxed.get_or_init(|| made).clone())
    }
}

/// The parts of one GOP.
#[derive(Debug, Clone)]
pub struct PartedGop {
    /// Its replay sequence number (the HLS media sequence number).
    pub sequence: u64,
    /// Its keyframe (the track format for muxing) and an audio unit of
    /// the session, if any.
    pub keyframe: AccessUnit,
    pub audio: Option<AccessUnit>,
    /// Wall-clock time the keyframe was received, ms since the epoch.
    pub start_ms: i64,
    pub parts: Vec<Arc<Part>>,
    /// Its last part is in.
    pub complete: bool,
}

/// Where the newest part is: its GOP's sequence, and how many parts that
/// GOP has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Newest {
    pub sequence: u64,
    pub parts: usize,
}

impl Newest {
    /// Whether part `part` of GOP `sequence` is in, or a later GOP has
    /// begun (a part index past a GOP's last part is the next GOP's).
    pub fn reached(&self, sequence: u64, part: usize) -> bool {
        self.sequence > sequence || (self.sequence == sequence && self.parts > part)
    }
}

#[derive(Debug, Default)]
struct Inner {
    gops: VecDeque<PartedGop>,
    /// The newest audio unit of the session (the audio track's format).
    audio: Option<AccessUnit>,
    /// The longest part of the session.
    longest: Duration,
}

/// The parts of a stream's newest GOPs.
#[derive(Debug)]
pub struct LiveParts {
    inner: Mutex<Inner>,
    newest: watch::Sender<Newest>,
}

impl Default for LiveParts {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            newest: watch::channel(Newest::default()).0,
        }
    }
}

impl LiveParts {
    /// Drops every part (a new session, or replay turned off).
    pub fn clear(&self) {
        let mut inner = self.inner.lock().expect("parts lock");
        *inner = Inner::default();
    }

    /// Adds a part of GOP `sequence` (`units` in arrival order, the video
    /// of the first part starting with the keyframe); `last` closes the
    /// GOP.
    pub fn push(&self, sequence: u64, units: Vec<AccessUnit>, duration: Duration, last: bool) {
        let Some(first_video) = units.iter().find(|u| u.codec.is_video()).cloned() else {
            if !last {
                return;
            }
            // A last part without video (audio only): the GOP is done.
            let mut inner = self.inner.lock().expect("parts lock");
            if let Some(gop) = inner.gops.back_mut().filter(|g| g.sequence == sequence) {
                gop.complete = true;
            }
            return;
        };
        let mut inner = self.inner.lock().expect("parts lock");
        if let Some(audio) = units.iter().rev().find(|u| !u.codec.is_video()) {
            inner.audio = Some(audio.clone());
        }
        inner.longest = inner.longest.max(duration);
        let audio = inner.audio.clone();
        let open = inner.gops.back().is_some_and(|g| g.sequence == sequence);
        if !open {
            // A part of a new GOP: it must start at its keyframe.
            if !first_video.keyframe {
                return;
            }
            inner.gops.push_back(PartedGop {
                sequence,
                start_ms: first_video.received_ms,
                keyframe: first_video.clone(),
                audio: None,
                parts: Vec::new(),
                complete: false,
            });
            while inner.gops.len() > KEPT_COMPLETE + 1 {
                inner.gops.pop_front();
            }
        }
        let gop = inner.gops.back_mut().expect("a GOP was just ensured");
        gop.audio = gop.audio.take().or(audio);
        gop.parts.push(Arc::new(Part {
            duration,
            independent: gop.parts.is_empty(),
            units,
            muxed: OnceLock::new(),
        }));
        gop.complete = last;
        let newest = Newest {
            sequence,
            parts: gop.parts.len(),
        };
        drop(inner);
        self.newest.send_replace(newest);
    }

    /// Drops the open GOP's parts (it is not going into the buffer).
    pub fn abandon_open(&self) {
        let mut inner = self.inner.lock().expect("parts lock");
        if inner.gops.back().is_some_and(|g| !g.complete) {
            inner.gops.pop_back();
        }
    }

    /// The GOPs with parts, oldest first.
    pub fn gops(&self) -> Vec<PartedGop> {
        self.inner
            .lock()
            .expect("parts lock")
            .gops
            .iter()
            .cloned()
            .collect()
    }

    /// Part `index` of GOP `sequence`, with that GOP.
    pub fn part(&self, sequence: u64, index: usize) -> Option<(PartedGop, Arc<Part>)> {
        let inner = self.inner.lock().expect("parts lock");
        let gop = inner.gops.iter().find(|g| g.sequence == sequence)?;
        let part = Arc::clone(gop.parts.get(index)?);
        Some((gop.clone(), part))
    }

    /// The part target to declare: [`PART_TARGET`], or the longest part.
    pub fn part_target(&self) -> Duration {
        PART_TARGET.max(self.inner.lock().expect("parts lock").longest)
    }

    /// Follows the newest part.
    pub fn subscribe(&self) -> watch::Receiver<Newest> {
        self.newest.subscribe()
    }

    /// The newest part now.
    pub fn newest(&self) -> Newest {
        *self.newest.borrow()
    }
}

//! One publishing session of a stream: who it is (its id, and the fence
//! its writes carry) and its counters: what the encoder sends (codecs,
//! picture size) and how much of it arrived. Counters are updated
//! lock-free from the pipeline's streaming threads; read by `GetStream`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use prometheus_client::metrics::counter::Counter;

use crate::media::now_millis;
use crate::proto::timestamp_from_millis;
use crate::proto::v1 as pb;
use crate::registry::cluster::Fence;

fn frames_counter(track: &'static str) -> Counter {
    crate::metrics::get()
        .ingest_frames
        .get_or_create(&crate::metrics::TrackLabel { track })
        .clone()
}

#[derive(Debug, Default, Clone)]
struct Tracks {
    video_codec: String,
    width: u32,
    height: u32,
    audio_codec: String,
}

#[derive(Debug, Default)]
pub struct SessionStats {
    /// The session's id: recordings name it, to be played as one.
    id: String,
    /// The session's lease: what its writes (recordings, clips) carry.
    fence: Fence,
    start_ms: AtomicI64,
    bytes_received: AtomicU64,
    video_frames: AtomicU64,
    video_keyframes: AtomicU64,
    audio_frames: AtomicU64,
    thumbnail_frames_decoded: AtomicU64,
    tracks: Mutex<Tracks>,
    /// The server's frame counters (metrics).
    video_in: Counter,
    audio_in: Counter,
}

impl SessionStats {
    pub fn started_now(fence: Fence) -> Self {
        let now = now_millis();
        Self {
            id: crate::ids::new_session_id(now),
            fence,
            start_ms: AtomicI64::new(now),
            video_in: frames_counter("video"),
            audio_in: frames_counter("audio"),
            ..Self::default()
        }
    }

    /// When the session started (ms since the epoch).
    pub fn start_ms(&self) -> i64 {
        self.start_ms.load(Ordering::Relaxed)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    pub fn add_bytes(&self, n: u64) {
        self.bytes_received.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_video_frame(&self, keyframe: bool) {
        self.video_frames.fetch_add(1, Ordering::Relaxed);
        self.video_in.inc();
        if keyframe {
            self.video_keyframes.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn add_audio_frame(&self) {
        self.audio_frames.fetch_add(1, Ordering::Relaxed);
        self.audio_in.inc();
    }

    pub fn add_thumbnail_frames_decoded(&self, n: u64) {
        self.thumbnail_frames_decoded
            .fetch_add(n, Ordering::Relaxed);
    }

    pub fn set_video(&self, codec: &str, width: u32, height: u32) {
        let mut tracks = self.tracks.lock().expect("stats lock");
        tracks.video_codec = codec.to_string();
        tracks.width = width;
        tracks.height = height;
    }

    pub fn set_audio(&self, codec: &str) {
        self.tracks.lock().expect("stats lock").audio_codec = codec.to_string();
    }

    pub fn to_proto(&self) -> pb::IngestStats {
        let tracks = self.tracks.lock().expect("stats lock").clone();
        let start = self.start_ms.load(Ordering::Relaxed);
        pb::IngestStats {
            session_start_time: (start != 0).then(|| timestamp_from_millis(start)),
            session_id: self.id.clone(),
            video_codec: tracks.video_codec,
            width: tracks.width,
            height: tracks.height,
            audio_codec: tracks.audio_codec,
            video_frames: self.video_frames.load(Ordering::Relaxed),
            video_keyframes: self.video_keyframes.load(Ordering::Relaxed),
            audio_frames: self.audio_frames.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            thumbnail_frames_decoded: self.thumbnail_frames_decoded.load(Ordering::Relaxed),
        }
    }
}

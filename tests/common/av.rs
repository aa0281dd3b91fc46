//! Checks of a media output's tracks, audio as well as video, as a player
//! would see them: ffprobe's packet count and start time of each track, and
//! a full decode by ffmpeg that must print no error.
//!
//! The expected counts come from the source: every test medium (and the
//! demo test pattern) is 30 fps video with 48 kHz AAC (1024 samples a
//! frame) and a 1 s GOP in the ffmpeg-made files, 2 s in the test pattern.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Frames per second of the test media.
pub const SOURCE_FPS: f64 = 30.0;
/// AAC frames per second of the test media (48 kHz, 1024 samples a frame).
pub const SOURCE_AAC_FPS: f64 = 48_000.0 / 1024.0;

/// One track as ffprobe sees it.
#[derive(Debug, Clone)]
pub struct TrackProbe {
    pub codec: String,
    pub packets: u64,
    /// Start time in seconds (after edit lists).
    pub start: f64,
}

/// The video and audio tracks of a media file.
#[derive(Debug)]
pub struct AvProbe {
    pub video: Option<TrackProbe>,
    pub audio: Option<TrackProbe>,
    path: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

/// Probes `data` (written to a temp file as `name`, whose extension helps
/// ffprobe).
pub fn probe_av(data: &[u8], name: &str) -> AvProbe {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, data).unwrap();
    let mut probe = probe_av_file(&path);
    probe._dir = Some(dir);
    probe
}

/// [`probe_av`] of a file.
pub fn probe_av_file(path: &Path) -> AvProbe {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json", "-count_packets"])
        .args([
            "-show_entries",
            "stream=codec_type,codec_name,nb_read_packets,start_time",
        ])
        .arg(path)
        .output()
        .expect("ffprobe is installed");
    assert!(
        out.status.success(),
        "ffprobe failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let track = |kind: &str| {
        json["streams"]
            .as_array()?
            .iter()
            .find(|s| s["codec_type"] == kind)
            .map(|s| TrackProbe {
                codec: s["codec_name"].as_str().unwrap_or_default().to_string(),
                packets: s["nb_read_packets"]
                    .as_str()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
                start: s["start_time"]
                    .as_str()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(f64::NAN),
            })
    };
    AvProbe {
        video: track("video"),
        audio: track("audio"),
        path: path.to_path_buf(),
        _dir: None,
    }
}

impl AvProbe {
    /// The picture type of the first video frame shown ("I" for a
    /// keyframe), as ffprobe decodes it.
    pub fn first_picture_type(&self) -> String {
        let out = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-select_streams",
                "v:0",
                "-read_intervals",
                "%+#1",
            ])
            .args([
                "-show_entries",
                "frame=pict_type,key_frame",
                "-of",
                "csv=p=0",
            ])
            .arg(&self.path)
            .output()
            .expect("ffprobe is installed");
        let text = String::from_utf8_lossy(&out.stdout);
        let first = text
            .lines()
            .next()
            .unwrap_or_default()
            .trim_end_matches(',');
        // "key_frame,pict_type": 1,I for a keyframe.
        match first.split(',').collect::<Vec<_>>()[..] {
            ["1", kind] => kind.to_string(),
            [_, kind] => format!("{kind} (not a key frame)"),
            _ => format!("no frame ({first:?})"),
        }
    }

    /// What `ffmpeg -v error` prints while decoding every track.
    pub fn decode_errors(&self) -> String {
        let decode = Command::new("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-v", "error", "-i"])
            .arg(&self.path)
            .args(["-map", "0", "-f", "null", "-"])
            .output()
            .expect("ffmpeg is installed");
        let mut errors = String::from_utf8_lossy(&decode.stderr).into_owned();
        if !decode.status.success() {
            errors.push_str(&format!("\nffmpeg exited with {}", decode.status));
        }
        errors
    }

    /// Asserts what every output of an audio+video source must be: both
    /// tracks, each with about `seconds` of packets (within `slack_s`, one
    /// GOP), starting within one frame of each other, decoding cleanly.
    pub fn assert_audio_and_video(&self, what: &str, seconds: f64, slack_s: f64) {
        self.assert_tracks(what, seconds, slack_s);
        let errors = self.decode_errors();
        assert!(
            errors.trim().is_empty(),
            "{what}: ffmpeg reported while decoding: {errors}"
        );
    }

    fn assert_tracks(&self, what: &str, seconds: f64, slack_s: f64) {
        let video = self
            .video
            .as_ref()
            .unwrap_or_else(|| panic!("{what}: no video track ({self:?})"));
        let audio = self
            .audio
            .as_ref()
            .unwrap_or_else(|| panic!("{what}: no audio track ({self:?})"));
        let expect = |rate: f64, packets: u64, kind: &str| {
            let want = seconds * rate;
            let slack = slack_s * rate;
            assert!(
                (packets as f64 - want).abs() <= slack,
                "{what}: {packets} {kind} packets, expected {want:.0} ± {slack:.0} ({seconds:.2} s ± {slack_s} s); {self:?}"
            );
        };
        expect(SOURCE_FPS, video.packets, "video");
        expect(SOURCE_AAC_FPS, audio.packets, "audio");
        let one_frame = (1.0 / SOURCE_FPS).max(1.0 / SOURCE_AAC_FPS) + 0.001;
        assert!(
            (video.start - audio.start).abs() <= one_frame,
            "{what}: video starts at {:.3} s, audio at {:.3} s (more than a frame apart)",
            video.start,
            audio.start
        );
    }
}

//! Test media made with ffmpeg (H.264/H.265 + AAC in MPEG-TS, cached per
//! test process), and publishers that send it over SRT.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// Makes `seconds` of 640x360 30 fps test video + a sine tone in MPEG-TS
/// with ffmpeg, GOP 1 s, encoded with `codec_args`.
fn make_ts(name: &str, seconds: u32, codec_args: &[&str]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("liveproc-media-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args(["-g", "30", "-keyint_min", "30", "-sc_threshold", "0"])
        .args(["-pix_fmt", "yuv420p"])
        .args(codec_args)
        .args(["-f", "mpegts"])
        .arg(&path)
        .status()
        .expect("ffmpeg is installed");
    assert!(status.success(), "ffmpeg failed to make {name}");
    path
}

/// `seconds` of H.264 + AAC (GOP 1 s), the test pattern with a tone.
fn h264_aac_ts(seconds: u32) -> PathBuf {
    make_ts(
        &format!("h264_aac_{seconds}s.ts"),
        seconds,
        &[
            "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", "-b:a", "96k",
        ],
    )
}

/// 10 s of H.264 + AAC, made once per test binary.
pub fn test_ts() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| h264_aac_ts(10))
}

/// 25 s of H.264 + AAC, made once per test binary.
pub fn test_ts_25s() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| h264_aac_ts(25))
}

/// 45 s of H.264 + AAC, made once per test binary: a session long
/// enough to rewind in while a browser looks at it.
pub fn test_ts_45s() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| h264_aac_ts(45))
}

/// 6 s of H.264 (noise, near-lossless: about 70 MB) + AAC, made once per
/// test binary: a recording far larger than socket buffers.
pub fn heavy_ts() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        make_ts(
            "h264_aac_heavy_6s.ts",
            6,
            &[
                "-vf",
                "noise=alls=80:allf=t+u",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-qp",
                "4",
                "-c:a",
                "aac",
                "-b:a",
                "96k",
            ],
        )
    })
}

/// 5 s of H.265 + AAC, made once per test binary.
pub fn test_hevc_ts() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        make_ts(
            "h265_aac_5s.ts",
            5,
            &[
                "-c:v",
                "libx265",
                "-preset",
                "ultrafast",
                "-x265-params",
                "log-level=error",
                "-c:a",
                "aac",
                "-b:a",
                "96k",
            ],
        )
    })
}

/// 5 s of H.265 without B-frames (decode order is display order) + AAC,
/// made once per test binary.
pub fn test_hevc_ts_without_b_frames() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        make_ts(
            "h265_aac_5s_no_b.ts",
            5,
            &[
                "-c:v",
                "libx265",
                "-preset",
                "ultrafast",
                "-x265-params",
                "log-level=error:bframes=0",
                "-c:a",
                "aac",
                "-b:a",
                "96k",
            ],
        )
    })
}

/// `seconds` of H.264 + AAC at `size`, timestamps from `offset` s.
pub fn ts_part(
    dir: &std::path::Path,
    name: &str,
    size: &str,
    seconds: u32,
    offset: u32,
) -> Vec<u8> {
    ts_part_of(dir, name, size, seconds, offset, true)
}

/// `seconds` of H.264 alone at `size`, timestamps from `offset` s.
pub fn video_ts_part(
    dir: &std::path::Path,
    name: &str,
    size: &str,
    seconds: u32,
    offset: u32,
) -> Vec<u8> {
    ts_part_of(dir, name, size, seconds, offset, false)
}

fn ts_part_of(
    dir: &std::path::Path,
    name: &str,
    size: &str,
    seconds: u32,
    offset: u32,
    audio: bool,
) -> Vec<u8> {
    let path = dir.join(name);
    let mut ffmpeg = Command::new("ffmpeg");
    ffmpeg
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={size}:rate=30"),
        ]);
    if audio {
        ffmpeg.args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]);
    }
    let status = ffmpeg
        .args([
            "-t",
            &seconds.to_string(),
            "-g",
            "30",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-c:v", "libx264", "-preset", "veryfast"])
        .args(if audio {
            ["-c:a", "aac"]
        } else {
            ["-an", "-sn"]
        })
        .args(["-output_ts_offset", &offset.to_string(), "-f", "mpegts"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(path).unwrap()
}

/// 10 s of AAC audio alone (no video track).
pub fn audio_only_ts() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("liveproc-media-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("aac_only_10s.ts");
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-t", "10", "-c:a", "aac", "-b:a", "96k", "-f", "mpegts"])
            .arg(&path)
            .status()
            .expect("ffmpeg is installed");
        assert!(status.success(), "ffmpeg failed to make aac_only_10s.ts");
        path
    })
}

/// 20 s of MPEG-2 video + MP2 audio: valid MPEG-TS that liveproc does not
/// take (no H.264/H.265/AAC).
pub fn unsupported_ts() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        make_ts(
            "mpeg2_mp2_20s.ts",
            20,
            &["-c:v", "mpeg2video", "-b:v", "500k", "-c:a", "mp2"],
        )
    })
}

/// Publishes a file over SRT in real time (`ffmpeg -re`), as an encoder would.
/// The caller lingers at the end until the server has every packet (in
/// live mode libsrt drops what is unacknowledged when it closes).
pub fn srt_publish(url: &str, file: &Path) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
        .arg(file)
        .args(["-c", "copy", "-f", "mpegts", &format!("{url}&linger=2")])
        .stdin(Stdio::null())
        .spawn()
        .expect("start ffmpeg")
}

/// Publishes a file over SRT as fast as it reads (no `-re`): far ahead of
/// real time.
pub fn srt_publish_fast(url: &str, file: &Path) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "quiet", "-i"])
        .arg(file)
        .args(["-c", "copy", "-f", "mpegts", &format!("{url}&linger=5")])
        .stdin(Stdio::null())
        .spawn()
        .expect("start ffmpeg")
}

/// Waits for a child process in a blocking thread.
pub async fn wait_child(mut child: Child) -> std::process::ExitStatus {
    tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap()
}

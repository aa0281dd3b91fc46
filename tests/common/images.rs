//! Checks of images and media as a viewer sees them: ffprobe's view of a
//! file, a source frame decoded by ffmpeg, PSNR between pictures, and
//! whether a picture is blank.

use std::path::Path;
use std::process::Command;

/// Every video frame ffmpeg presents of the MP4 `mp4`, as RGB.
pub fn mp4_frames_rgb(mp4: &[u8], width: usize, height: usize) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.mp4");
    std::fs::write(&path, mp4).unwrap();
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&path)
        .args(["-map", "0:v:0", "-fps_mode", "passthrough"])
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks(width * height * 3)
        .map(<[u8]>::to_vec)
        .collect()
}

/// Asserts that the MP4 `clip` (640 × 360, H.264 and AAC) presents
/// exactly `frames` frames in ffmpeg, the first being frame `first` of
/// `source` and the last `first + frames - 1` (≥ 35 dB, and closer than
/// the frame after each); returns how long it plays, in seconds.
pub fn assert_clip_is_frames(clip: &[u8], source: &Path, first: u32, frames: u32) -> f64 {
    let probe = ffprobe(clip);
    let codecs: Vec<&str> = probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_name"].as_str().unwrap())
        .collect();
    assert_eq!(codecs, ["h264", "aac"]);
    let shown = mp4_frames_rgb(clip, 640, 360);
    assert_eq!(shown.len() as u32, frames, "frames ffmpeg presents");
    for (index, frame) in [(0, first), (shown.len() - 1, first + frames - 1)] {
        let db = psnr(&shown[index], &source_frame_rgb(source, frame));
        assert!(
            db >= 35.0,
            "clip frame {index} vs source frame {frame}: {db:.1} dB"
        );
        let off = psnr(&shown[index], &source_frame_rgb(source, frame + 1));
        assert!(
            db > off,
            "clip frame {index} is closer to frame {} ({off:.1} dB)",
            frame + 1
        );
    }
    probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// `ffprobe` of a media file (or bytes written to a temp file) as JSON.
pub fn ffprobe(data: &[u8]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probe.bin");
    std::fs::write(&path, data).unwrap();
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            "-count_frames",
        ])
        .arg(&path)
        .output()
        .expect("ffprobe is installed");
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Frame `index` of a media file decoded by ffmpeg, as RGB24 at its size.
pub fn source_frame_rgb(file: &Path, index: u32) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(["-vf", &format!("select=eq(n\\,{index})"), "-frames:v", "1"])
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg is installed");
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Checks a storyboard tile against frame `index` of a 640×360 source
/// scaled to 160×90: close to it, and clearly closer than to the frame
/// 1.5 s before it (after it, at the start; JPEG's halved chroma at 160 px costs the test pattern's
/// saturated bars a few dB, so a fixed threshold alone would be loose).
pub fn assert_tile_is_frame(tile: &image::RgbImage, file: &Path, index: u32, what: &str) {
    let scaled = |frame: u32| {
        let full = image::RgbImage::from_raw(640, 360, source_frame_rgb(file, frame)).unwrap();
        image::imageops::resize(&full, 160, 90, image::imageops::FilterType::Triangle)
    };
    let right = psnr(tile.as_raw(), scaled(index).as_raw());
    let other = if index >= 45 { index - 45 } else { index + 45 };
    let wrong = psnr(tile.as_raw(), scaled(other).as_raw());
    assert!(
        right >= 20.0 && right > wrong + 4.0,
        "{what} vs source frame {index}: {right:.1} dB (frame {other}: {wrong:.1} dB)"
    );
}

/// Peak signal-to-noise ratio of two RGB24 images of the same size, dB.
pub fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "images differ in size");
    let mse = a
        .iter()
        .zip(b)
        .map(|(x, y)| {
            let d = *x as f64 - *y as f64;
            d * d
        })
        .sum::<f64>()
        / a.len() as f64;
    if mse == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (255.0 * 255.0 / mse).log10()
}

/// PSNR of the luma (BT.601 weights) of two RGB24 images, dB: what a
/// picture shows, whatever its format did to chroma. A JPEG thumbnail is
/// YCbCr 4:2:0, like its source, and decoders upsample chroma each their
/// own way (the image crate smooths it, ffmpeg's reference repeats it):
/// at the test pattern's saturated edges that alone costs the RGB
/// channels ~8 dB.
pub fn luma_psnr(a: &[u8], b: &[u8]) -> f64 {
    let luma = |rgb: &[u8]| -> Vec<u8> {
        rgb.chunks_exact(3)
            .map(|p| {
                (0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64).round() as u8
            })
            .collect()
    };
    psnr(&luma(a), &luma(b))
}

/// Checks that `picture` (RGB24, a still image's decode) shows frame
/// `frame` of `source`: its luma within 35 dB of that frame's and closer
/// to it than to the frames just before and after it.
pub fn assert_picture_is_frame(picture: &[u8], source: &Path, frame: u32, what: &str) {
    let db = luma_psnr(picture, &source_frame_rgb(source, frame));
    let neighbours: Vec<(u32, f64)> = [frame.checked_sub(1), Some(frame + 1)]
        .into_iter()
        .flatten()
        .map(|other| (other, luma_psnr(picture, &source_frame_rgb(source, other))))
        .collect();
    assert!(
        db >= 35.0 && neighbours.iter().all(|&(_, other)| db > other),
        "{what} vs source frame {frame}: {db:.1} dB luma (neighbours: {neighbours:?})"
    );
}

/// Standard deviation of the bytes of an image: near 0 for a blank one.
pub fn spread(pixels: &[u8]) -> f64 {
    let n = pixels.len() as f64;
    let mean = pixels.iter().map(|&p| p as f64).sum::<f64>() / n;
    (pixels
        .iter()
        .map(|&p| (p as f64 - mean).powi(2))
        .sum::<f64>()
        / n)
        .sqrt()
}

/// ffprobe's entry of the video stream of `data`.
pub fn ffprobe_video(data: &[u8]) -> serde_json::Value {
    ffprobe(data)["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .find(|s| s["codec_type"] == "video")
        .expect("a video stream")
        .clone()
}

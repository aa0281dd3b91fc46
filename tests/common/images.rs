//! Checks of images and media as a viewer sees them: ffprobe's view of a
//! file, a source frame decoded by ffmpeg, PSNR between pictures, and
//! whether a picture is blank.

use std::path::Path;
use std::process::Command;

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

//! Output picture sizes: scaling a source to a requested width and/or
//! height, keeping its aspect ratio and the even sizes 4:2:0 video needs.

/// An even size (what 4:2:0 video needs), at least 2.
pub fn even(x: f64) -> u32 {
    ((x / 2.0).round() as u32 * 2).max(2)
}

/// The output size for a source of `src` scaled to `width` and/or
/// `height`, keeping the aspect ratio (fitting inside when both are set).
pub fn fit(src: (u32, u32), width: Option<u32>, height: Option<u32>) -> (u32, u32) {
    let (sw, sh) = (src.0 as f64, src.1 as f64);
    match (width, height) {
        (None, None) => src,
        (Some(w), None) => (even(w as f64), even(w as f64 * sh / sw)),
        (None, Some(h)) => (even(h as f64 * sw / sh), even(h as f64)),
        (Some(w), Some(h)) => {
            let scale = (w as f64 / sw).min(h as f64 / sh);
            (even(sw * scale), even(sh * scale))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn fit_keeps_aspect() {
        assert_eq!(fit((1920, 1080), None, None), (1920, 1080));
        assert_eq!(fit((1920, 1080), Some(320), None), (320, 180));
        assert_eq!(fit((1920, 1080), None, Some(360)), (640, 360));
        assert_eq!(fit((1920, 1080), Some(320), Some(320)), (320, 180));
        assert_eq!(fit((640, 360), Some(100), None), (100, 56));
    }
}

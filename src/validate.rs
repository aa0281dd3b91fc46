//! Every range rule of the API in one place: processing option ranges,
//! stream ids, names and URIs. Each check reports the full field path
//! (`processing.thumbnail.interval_seconds`) and the allowed range, and all
//! violations of a request are reported together.

use std::ops::RangeInclusive;

use crate::error::{Error, Result, Violation};
use crate::options::{
    ClipFormat, ImageFormat, MotionClip, Processing, Recording, Replay, Span, Thumbnail,
    DEFAULT_PREVIEW_WIDTH,
};
use crate::proto::v1 as pb;
use crate::registry::SrtEncryption;

pub const THUMBNAIL_INTERVAL: RangeInclusive<u32> = 10..=3600;
pub const MOTION_CLIP_DURATION: RangeInclusive<u32> = 1..=60;
pub const MOTION_CLIP_INTERVAL: RangeInclusive<u32> = 10..=3600;
pub const THUMBNAIL_SIZE: RangeInclusive<u32> = 16..=7680;
pub const PREVIEW_WIDTH: RangeInclusive<u32> = 16..=1920;
/// Recording segments and replay buffers: at least one second.
pub const MIN_SPAN_SECONDS: u32 = 1;

pub const MAX_NAME_LEN: usize = 200;
pub const MAX_STREAM_ID_LEN: usize = 64;
/// The longest id of any other resource a request may name (generated
/// ids are 16–24 characters); longer ones cannot exist.
pub const MAX_ID_LEN: usize = 128;
/// The longest resource path a request may name (`SignUrl`).
pub const MAX_PATH_LEN: usize = 1024;

fn check_range(
    violations: &mut Vec<Violation>,
    field: &str,
    value: u32,
    range: RangeInclusive<u32>,
) {
    if !range.contains(&value) {
        violations.push(Violation::new(
            field,
            format!(
                "must be between {} and {} (got {value})",
                range.start(),
                range.end()
            ),
        ));
    }
}

fn parse_span(
    violations: &mut Vec<Violation>,
    field_prefix: &str,
    duration_seconds: u32,
    entire_stream: bool,
) -> Span {
    if entire_stream {
        if duration_seconds != 0 {
            violations.push(Violation::new(
                format!("{field_prefix}.duration_seconds"),
                "must be 0 (unset) when entire_stream is true",
            ));
        }
        return Span::EntireStream;
    }
    if duration_seconds < MIN_SPAN_SECONDS {
        violations.push(Violation::new(
            format!("{field_prefix}.duration_seconds"),
            format!(
                "must be at least {MIN_SPAN_SECONDS} second, or set entire_stream (got {duration_seconds})"
            ),
        ));
    }
    Span::Seconds(duration_seconds)
}

fn thumbnail(violations: &mut Vec<Violation>, prefix: &str, t: &pb::ThumbnailOptions) -> Thumbnail {
    check_range(
        violations,
        &format!("{prefix}.interval_seconds"),
        t.interval_seconds,
        THUMBNAIL_INTERVAL,
    );
    let mut size = |name: &str, value: u32| {
        (value != 0).then(|| {
            check_range(
                violations,
                &format!("{prefix}.{name}"),
                value,
                THUMBNAIL_SIZE,
            );
            value
        })
    };
    let (width, height) = (size("width", t.width), size("height", t.height));
    let format = match pb::ImageFormat::try_from(t.format) {
        Ok(f) => ImageFormat::from_proto(f),
        Err(_) => {
            violations.push(Violation::new(
                format!("{prefix}.format"),
                "must be JPEG, PNG or WEBP",
            ));
            ImageFormat::Jpeg
        }
    };
    Thumbnail {
        interval_seconds: t.interval_seconds,
        format,
        width,
        height,
    }
}

fn motion_clip(
    violations: &mut Vec<Violation>,
    prefix: &str,
    m: &pb::MotionClipOptions,
) -> MotionClip {
    check_range(
        violations,
        &format!("{prefix}.duration_seconds"),
        m.duration_seconds,
        MOTION_CLIP_DURATION,
    );
    check_range(
        violations,
        &format!("{prefix}.interval_seconds"),
        m.interval_seconds,
        MOTION_CLIP_INTERVAL,
    );
    let format = match pb::ClipFormat::try_from(m.format) {
        Ok(f) => ClipFormat::from_proto(f),
        Err(_) => {
            violations.push(Violation::new(
                format!("{prefix}.format"),
                "must be MP4, MP4_PREVIEW or GIF",
            ));
            ClipFormat::Mp4
        }
    };
    let width = match m.width {
        0 => DEFAULT_PREVIEW_WIDTH,
        w => {
            check_range(violations, &format!("{prefix}.width"), w, PREVIEW_WIDTH);
            w
        }
    };
    MotionClip {
        duration_seconds: m.duration_seconds,
        interval_seconds: m.interval_seconds,
        format,
        width,
    }
}

/// Parses and range-checks the processing options of a request whose field
/// is named `field` (e.g. `processing`). Disabled features are ignored.
pub fn processing(field: &str, options: Option<&pb::ProcessingOptions>) -> Result<Processing> {
    let Some(options) = options else {
        return Ok(Processing::default());
    };
    let mut violations = Vec::new();

    let thumbnail = options
        .thumbnail
        .as_ref()
        .filter(|t| t.enabled)
        .map(|t| thumbnail(&mut violations, &format!("{field}.thumbnail"), t));
    let motion_clip = options
        .motion_clip
        .as_ref()
        .filter(|m| m.enabled)
        .map(|m| motion_clip(&mut violations, &format!("{field}.motion_clip"), m));

    let recording = options
        .recording
        .as_ref()
        .filter(|r| r.enabled)
        .map(|r| Recording {
            segment: parse_span(
                &mut violations,
                &format!("{field}.recording"),
                r.duration_seconds,
                r.entire_stream,
            ),
        });

    let replay = options
        .replay
        .as_ref()
        .filter(|r| r.enabled)
        .map(|r| Replay {
            buffer: parse_span(
                &mut violations,
                &format!("{field}.replay"),
                r.duration_seconds,
                r.entire_stream,
            ),
        });

    if !violations.is_empty() {
        return Err(Error::InvalidArgument(violations));
    }
    Ok(Processing {
        thumbnail,
        motion_clip,
        recording,
        replay,
    })
}

/// A client-chosen stream id: 1–64 of `[A-Za-z0-9_-]`.
pub fn stream_id(field: &str, id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_STREAM_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("must be 1–{MAX_STREAM_ID_LEN} characters of A-Z, a-z, 0-9, '_' and '-'"),
        ))
    }
}

/// The id of an existing resource (organization, recording, clip,
/// session, stream key), checked before any lookup: required, at most
/// [`MAX_ID_LEN`] visible ASCII characters. What cannot exist is refused
/// here, so that an unbounded value never reaches a lookup, a log line
/// or an error message.
pub fn id(field: &str, value: &str) -> Result<()> {
    bounded_token(field, value, MAX_ID_LEN)
}

/// A resource path a request names (`SignUrl`): required, at most
/// [`MAX_PATH_LEN`] visible ASCII characters.
pub fn path(field: &str, value: &str) -> Result<()> {
    bounded_token(field, value, MAX_PATH_LEN)
}

fn bounded_token(field: &str, value: &str, max: usize) -> Result<()> {
    required(field, value)?;
    if value.len() > max || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(
            field,
            format!("must be 1–{max} visible ASCII characters"),
        ));
    }
    Ok(())
}

/// A required field of a request.
pub fn required(field: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        Err(Error::invalid(field, "is required"))
    } else {
        Ok(())
    }
}

/// A display name: at most 200 characters, no control characters.
pub fn name(field: &str, name: &str) -> Result<()> {
    if name.chars().count() > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            format!("must be at most {MAX_NAME_LEN} characters without control characters"),
        ));
    }
    Ok(())
}

/// SRT's passphrase length (the SRT specification's).
pub const SRT_PASSPHRASE_LEN: RangeInclusive<usize> = 10..=79;

/// A stream's SRT encryption: a passphrase of 10–79 URL-safe characters
/// (empty: the caller of this makes one) and a key length of
/// 0, 16, 24 or 32 bytes. Both fields are reported together.
pub fn srt_encryption(
    field: &str,
    encryption: Option<&pb::SrtEncryption>,
) -> Result<Option<SrtEncryption>> {
    let Some(encryption) = encryption else {
        return Ok(None);
    };
    let mut violations = Vec::new();
    let passphrase = &encryption.passphrase;
    // URL-safe, so that the passphrase reads the same in every encoder's
    // URL: ffmpeg takes `passphrase=` without percent-decoding it.
    let url_safe = passphrase
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !passphrase.is_empty() && (!SRT_PASSPHRASE_LEN.contains(&passphrase.len()) || !url_safe) {
        violations.push(Violation::new(
            format!("{field}.passphrase"),
            format!(
                "must be {}–{} characters of A-Z, a-z, 0-9, '-', '.', '_' and '~' (or empty for one made by the server)",
                SRT_PASSPHRASE_LEN.start(),
                SRT_PASSPHRASE_LEN.end()
            ),
        ));
    }
    let key_length = match encryption.key_length {
        length @ (0 | 16 | 24 | 32) => length as u8,
        _ => {
            violations.push(Violation::new(
                format!("{field}.key_length"),
                "must be 16, 24 or 32 (AES-128, -192, -256), or 0 for the caller's",
            ));
            0
        }
    };
    if !violations.is_empty() {
        return Err(Error::InvalidArgument(violations));
    }
    Ok(Some(SrtEncryption {
        passphrase: passphrase.clone(),
        key_length,
    }))
}

/// Page size of a List call: 0 means the default.
pub fn page_size(field: &str, requested: u32) -> Result<usize> {
    match requested {
        0 => Ok(100),
        1..=1000 => Ok(requested as usize),
        _ => Err(Error::invalid(field, "must be at most 1000")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thumb(interval: u32) -> pb::ProcessingOptions {
        pb::ProcessingOptions {
            thumbnail: Some(pb::ThumbnailOptions {
                enabled: true,
                interval_seconds: interval,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn fields(err: Error) -> Vec<String> {
        match err {
            Error::InvalidArgument(v) => v.into_iter().map(|v| v.field).collect(),
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn thumbnail_interval_bounds() {
        assert!(processing("processing", Some(&thumb(10))).is_ok());
        assert!(processing("processing", Some(&thumb(3600))).is_ok());
        for bad in [0, 9, 3601] {
            let err = processing("processing", Some(&thumb(bad))).unwrap_err();
            assert_eq!(fields(err), ["processing.thumbnail.interval_seconds"]);
        }
    }

    #[test]
    fn disabled_feature_is_not_checked() {
        let mut options = thumb(1);
        options.thumbnail.as_mut().unwrap().enabled = false;
        assert_eq!(
            processing("processing", Some(&options)).unwrap(),
            Processing::default()
        );
    }

    #[test]
    fn all_violations_reported_together() {
        let options = pb::ProcessingOptions {
            motion_clip: Some(pb::MotionClipOptions {
                enabled: true,
                duration_seconds: 61,
                interval_seconds: 9,
                ..Default::default()
            }),
            recording: Some(pb::RecordingOptions {
                enabled: true,
                duration_seconds: 0,
                entire_stream: false,
            }),
            replay: Some(pb::ReplayOptions {
                enabled: true,
                duration_seconds: 0,
                entire_stream: true,
            }),
            ..Default::default()
        };
        let err = processing("processing", Some(&options)).unwrap_err();
        assert_eq!(
            fields(err),
            [
                "processing.motion_clip.duration_seconds",
                "processing.motion_clip.interval_seconds",
                "processing.recording.duration_seconds",
            ]
        );
    }

    #[test]
    fn entire_stream_spans() {
        let options = pb::ProcessingOptions {
            recording: Some(pb::RecordingOptions {
                enabled: true,
                duration_seconds: 0,
                entire_stream: true,
            }),
            replay: Some(pb::ReplayOptions {
                enabled: true,
                duration_seconds: 1,
                entire_stream: false,
            }),
            ..Default::default()
        };
        let p = processing("processing", Some(&options)).unwrap();
        assert_eq!(p.recording.unwrap().segment, Span::EntireStream);
        assert_eq!(p.replay.unwrap().buffer, Span::Seconds(1));
        assert_eq!(p.to_proto(), options);
    }

    #[test]
    fn stream_ids() {
        assert!(stream_id("stream_id", "cam-1_A").is_ok());
        for bad in ["", "a/b", "a b", &"x".repeat(65)] {
            assert!(stream_id("stream_id", bad).is_err(), "{bad:?}");
        }
    }
}

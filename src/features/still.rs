//! One still image: `appsrc ! parse ! decode ! scale ! convert ! encode !
//! appsink`, a pipeline for one image: the frame at a chosen moment (the
//! units from the GOP's keyframe up to that frame; only the frame wanted
//! reaches the encoder). Thumbnails, one keyframe each, use the same chain
//! kept from one to the next ([`super::still_makers`]). [`convert`] re-encodes an
//! image made in one format into another.

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::geometry::fit;
use crate::gst_util;
use crate::gst_util::element;
use crate::media::AccessUnit;
use crate::media::{MediaError, MediaResult};
use crate::options::ImageFormat;

pub struct Still {
    pub width: u32,
    pub height: u32,
    pub data: Bytes,
    /// Presentation time of the frame shown.
    pub pts: Option<std::time::Duration>,
    /// Frames the decoder produced to make it.
    pub decoded_frames: u64,
}

fn encoder(format: ImageFormat) -> MediaResult<gst::Element> {
    Ok(match format {
        ImageFormat::Jpeg => gst::ElementFactory::make("jpegenc")
            .property("quality", 85i32)
            .build()
            .map_err(|_| MediaError::MissingElement("jpegenc".into()))?,
        ImageFormat::Png => element("pngenc")?,
        ImageFormat::Webp => gst::ElementFactory::make("webpenc")
            .property("quality", 80f32)
            .build()
            .map_err(|_| MediaError::MissingElement("webpenc".into()))?,
    })
}

/// The caps of `keyframe`'s track, and the size of its picture scaled to
/// fit the size asked (aspect kept).
pub(super) fn caps_and_size(
    keyframe: &AccessUnit,
    width: Option<u32>,
    height: Option<u32>,
) -> MediaResult<(gst::Caps, (u32, u32))> {
    let caps = crate::gst_format::caps_of_unit(keyframe)
        .ok_or_else(|| MediaError::Unsupported("keyframe without a track format".into()))?;
    let source_size = keyframe
        .picture_size()
        .ok_or_else(|| MediaError::Unsupported("keyframe format without picture size".into()))?;
    Ok((caps, fit(source_size, width, height)))
}

/// The raw pictures a `format` encoder is fed (at `size`, square pixels;
/// any size when `None`). JPEG takes 4:2:0 planes, their colours mapped to
/// JFIF's on the way in ([`super::jfif`]); the others RGB, each encoder
/// doing its own (full-range) conversion. Either way colours match the
/// source (limited-range YUV given to an encoder as it is comes out
/// washed out).
pub(super) fn raw_caps(format: ImageFormat, size: Option<(u32, u32)>) -> gst::Caps {
    let pixels = match format {
        ImageFormat::Jpeg => "I420",
        ImageFormat::Png | ImageFormat::Webp => "RGB",
    };
    let caps = gst::Caps::builder("video/x-raw").field("format", pixels);
    match size {
        Some((width, height)) => caps
            .field("width", width as i32)
            .field("height", height as i32)
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .build(),
        None => caps.build(),
    }
}

/// What follows a decoder: `videoscale ! videoconvert ! capsfilter (raw
/// at size) ! <format> encoder`; the capsfilter also alone, to change the
/// size later.
pub(super) fn picture_chain(
    format: ImageFormat,
    size: Option<(u32, u32)>,
) -> MediaResult<(Vec<gst::Element>, gst::Element)> {
    let filter = gst::ElementFactory::make("capsfilter")
        .property("caps", raw_caps(format, size))
        .build()?;
    let encoder = encoder(format)?;
    if format == ImageFormat::Jpeg {
        super::jfif::convert_before(&encoder)?;
    }
    let chain = vec![
        element("videoscale")?,
        element("videoconvert")?,
        filter.clone(),
        encoder,
    ];
    Ok((chain, filter))
}

/// Decodes `units` (a keyframe, then the frames after it in decode order)
/// and encodes the first frame shown at or after `at` (PTS), or the first
/// frame when `at` is `None`. Blocking.
pub fn encode_at(
    units: &[&AccessUnit],
    at: Option<std::time::Duration>,
    width: Option<u32>,
    height: Option<u32>,
    format: ImageFormat,
) -> MediaResult<Still> {
    let keyframe = *units
        .first()
        .ok_or_else(|| MediaError::Unsupported("no frames to decode".into()))?;
    let (caps, (out_w, out_h)) = caps_and_size(keyframe, width, height)?;

    let pipeline = gst::Pipeline::new();
    let src = gst_util::unit_source(&caps);
    let (parse, decode) = gst_util::video_decoder(keyframe.codec)?;
    let (chain, _) = picture_chain(format, Some((out_w, out_h)))?;
    let scale = chain[0].clone();
    let sink = gst_app::AppSink::builder().sync(false).build();
    let mut elements = vec![src.upcast_ref(), &parse, &decode];
    elements.extend(chain.iter());
    elements.push(sink.upcast_ref());
    pipeline.add_many(&elements)?;
    gst::Element::link_many(&elements)?;

    let offset = keyframe.decode_time().unwrap_or_default();
    if let Some(at) = at {
        // Frames shown before the moment wanted are decoded (they are
        // references) but go no further.
        let from = gst::ClockTime::from_nseconds(at.saturating_sub(offset).as_nanos() as u64);
        // Frames after it are not encoded either.
        let pad = scale
            .static_pad("sink")
            .ok_or_else(|| MediaError::Unsupported("videoscale without pad".into()))?;
        let passed = std::sync::atomic::AtomicBool::new(false);
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let early = info
                .buffer()
                .is_some_and(|b| b.pts().is_some_and(|pts| pts < from));
            if early || passed.swap(true, std::sync::atomic::Ordering::SeqCst) {
                return gst::PadProbeReturn::Drop;
            }
            gst::PadProbeReturn::Ok
        });
    }
    let decoded = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = std::sync::Arc::clone(&decoded);
    decode
        .static_pad("src")
        .ok_or_else(|| MediaError::Unsupported("decoder without src pad".into()))?
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    gst_util::feed(&src, units, offset)?;
    let samples = gst_util::collect(&pipeline, &sink)?;
    // One image: the first frame that passed.
    let data = gst_util::concat(&samples[..samples.len().min(1)])?;
    let pts = samples
        .first()
        .and_then(|s| s.buffer().and_then(|b| b.pts()))
        .map(|pts| offset + std::time::Duration::from_nanos(pts.nseconds()));
    if data.is_empty() {
        return Err(MediaError::Unsupported(
            "the keyframe decoded to no image".into(),
        ));
    }
    Ok(Still {
        width: out_w,
        height: out_h,
        data: Bytes::from(data),
        pts,
        decoded_frames: decoded.load(std::sync::atomic::Ordering::Relaxed),
    })
}

fn image_decoder(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => "jpegdec",
        ImageFormat::Png => "pngdec",
        ImageFormat::Webp => "webpdec",
    }
}

/// `image` (encoded as `from`) encoded as `to`, at the same size:
/// `appsrc ! <from>dec ! videoconvert ! RGB ! <to>enc ! appsink`.
/// Blocking.
pub fn convert(image: &Bytes, from: ImageFormat, to: ImageFormat) -> MediaResult<Bytes> {
    let pipeline = gst::Pipeline::new();
    let src = gst_util::unit_source(&gst::Caps::builder(from.mime_type()).build());
    let decode = element(image_decoder(from))?;
    let (chain, _) = picture_chain(to, None)?;
    let sink = gst_app::AppSink::builder().sync(false).build();
    let mut elements = vec![src.upcast_ref(), &decode];
    elements.extend(chain.iter());
    elements.push(sink.upcast_ref());
    pipeline.add_many(&elements)?;
    gst::Element::link_many(&elements)?;
    let mut buffer = gst::Buffer::from_slice(image.clone());
    buffer
        .get_mut()
        .expect("a new buffer")
        .set_pts(gst::ClockTime::ZERO);
    src.push_buffer(buffer)?;
    src.end_of_stream()?;
    let samples = gst_util::collect(&pipeline, &sink)?;
    let data = gst_util::concat(&samples[..samples.len().min(1)])?;
    if data.is_empty() {
        return Err(MediaError::Unsupported(
            "the image decoded to nothing".into(),
        ));
    }
    Ok(Bytes::from(data))
}

//! Where the crate's typed media meets GStreamer, in one place: caps made
//! from a [`TrackFormat`] (for the still, clip and preview pipelines),
//! buffers made from access units and back (sharing their bytes), the
//! codec and track format of a pulled source's caps, and the parser each
//! codec's track goes through. `media/` and `container/` know nothing of
//! GStreamer; everything GStreamer needs of them is made here.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gstreamer as gst;

use crate::media::{now_millis, AccessUnit, Codec, MediaError, TrackFormat};

/// The caps of a track of `format`: what a parser downstream of an
/// `appsrc` fed with its units expects (byte-stream, whole access units;
/// ADTS-framed or raw AAC).
pub fn caps_of(format: &TrackFormat, adts: bool) -> gst::Caps {
    match format {
        TrackFormat::H264(video) | TrackFormat::H265(video) => {
            let name = if format.codec() == Codec::H265 {
                "video/x-h265"
            } else {
                "video/x-h264"
            };
            let p = video.picture;
            gst::Caps::builder(name)
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .field("parsed", true)
                .field("width", p.width as i32)
                .field("height", p.height as i32)
                .field("chroma-format", p.chroma_name())
                .field("bit-depth-luma", p.bit_depth_luma)
                .field("bit-depth-chroma", p.bit_depth_chroma)
                .build()
        }
        TrackFormat::Aac(aac) => {
            let builder = gst::Caps::builder("audio/mpeg")
                .field("mpegversion", 4i32)
                .field("framed", true)
                .field("rate", aac.rate().unwrap_or(48_000) as i32)
                .field("channels", i32::from(aac.channels.max(1)));
            if adts {
                builder.field("stream-format", "adts").build()
            } else {
                let config = gst::Buffer::from_slice(aac.audio_specific_config());
                builder
                    .field("stream-format", "raw")
                    .field("codec_data", config)
                    .build()
            }
        }
    }
}

/// The caps of the track `unit` belongs to.
pub fn caps_of_unit(unit: &AccessUnit) -> Option<gst::Caps> {
    let adts = crate::media::aac::adts_header_len(&unit.data).is_some();
    unit.format.as_deref().map(|f| caps_of(f, adts))
}

/// The codec of a pulled track's caps, if liveproc handles it.
pub fn codec_of_caps(caps: &gst::CapsRef) -> Option<Codec> {
    let s = caps.structure(0)?;
    match s.name().as_str() {
        "video/x-h264" => Some(Codec::H264),
        "video/x-h265" => Some(Codec::H265),
        // MPEG-1 layer 1-3 audio is not AAC; versions 2 and 4 (or an
        // unfixed template) are.
        "audio/mpeg" => match s.get::<i32>("mpegversion") {
            Ok(1) => None,
            _ => Some(Codec::Aac),
        },
        _ => None,
    }
}

/// The track format that raw AAC caps carry (`codec_data`); video and
/// ADTS tracks carry theirs in their units.
pub fn raw_aac_format(caps: &gst::CapsRef) -> Option<Arc<TrackFormat>> {
    let config = caps.structure(0)?.get::<gst::Buffer>("codec_data").ok()?;
    let map = config.map_readable().ok()?;
    TrackFormat::of_audio_specific_config(&map)
}

/// The parser element of a codec's track and the caps it must produce:
/// byte-stream, whole access units, and parameter sets in front of every
/// keyframe so that any GOP decodes alone.
pub fn parser(codec: Codec) -> (&'static str, Option<&'static str>) {
    match codec {
        Codec::H264 => (
            "h264parse",
            Some("video/x-h264,stream-format=byte-stream,alignment=au"),
        ),
        Codec::H265 => (
            "h265parse",
            Some("video/x-h265,stream-format=byte-stream,alignment=au"),
        ),
        Codec::Aac => ("aacparse", None),
    }
}

/// A buffer sharing `unit`'s bytes, with its timestamps moved by
/// `-offset`, marked as one whole access unit.
pub fn buffer_of(unit: &AccessUnit, offset: Duration) -> gst::Buffer {
    let mut buffer = gst::Buffer::from_slice(unit.data.clone());
    let shift = |t: Option<Duration>| {
        t.map(|t| gst::ClockTime::from_nseconds(t.saturating_sub(offset).as_nanos() as u64))
    };
    {
        let b = buffer.get_mut().expect("new buffer is writable");
        b.set_pts(shift(unit.pts));
        b.set_dts(shift(unit.dts));
        b.set_duration(
            unit.duration
                .map(|d| gst::ClockTime::from_nseconds(d.as_nanos() as u64)),
        );
        if !unit.keyframe {
            b.set_flags(gst::BufferFlags::DELTA_UNIT);
        }
        // A whole access unit: a parser downstream ends the frame here
        // instead of waiting for the next start code (which shifts every
        // timestamp by one frame and leaves frames without PTS).
        b.set_flags(gst::BufferFlags::MARKER);
    }
    buffer
}

/// A parsed buffer as an access unit of a track of `format`, without
/// copying its bytes.
pub fn unit_of(
    codec: Codec,
    buffer: gst::Buffer,
    format: Option<Arc<TrackFormat>>,
) -> Option<AccessUnit> {
    let to_duration = |t: Option<gst::ClockTime>| t.map(|t| Duration::from_nanos(t.nseconds()));
    let pts = to_duration(buffer.pts());
    let dts = to_duration(buffer.dts());
    let duration = to_duration(buffer.duration());
    let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
    let mapped = buffer.into_mapped_buffer_readable().ok()?;
    Some(AccessUnit {
        codec,
        pts,
        dts,
        duration,
        keyframe,
        data: Bytes::from_owner(mapped),
        format,
        received_ms: now_millis(),
        discontinuity: false,
    })
}

impl From<gst::glib::BoolError> for MediaError {
    fn from(e: gst::glib::BoolError) -> Self {
        MediaError::pipeline(e)
    }
}

impl From<gst::StateChangeError> for MediaError {
    fn from(_: gst::StateChangeError) -> Self {
        MediaError::Pipeline("pipeline failed to change state".into())
    }
}

impl From<gst::PadLinkError> for MediaError {
    fn from(e: gst::PadLinkError) -> Self {
        MediaError::Pipeline(format!("linking pads: {e:?}"))
    }
}

impl From<gst::FlowError> for MediaError {
    fn from(e: gst::FlowError) -> Self {
        MediaError::Pipeline(format!("pushing media: {e:?}"))
    }
}
